"""The `gapfill` command: parses, runs one command, turns errors into a message and an exit code.

Exit codes: 0 done; 1 an unexpected error (a bug: the traceback is shown, please report it)
or a system error (disk full, permission); 2 bad input or usage (the message says what to
do); 3 an optional package is missing (the message gives the pip command); 130 interrupted or
cancelled (no output was written).
"""

from __future__ import annotations

import argparse
import configparser
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..core.errors import Cancelled, GapfillError, MissingDependencyError, flag_name
from .session import Session

PROGRAM = "gapfill"
EXTRAS = {"onnxruntime": "models", "torch": "training", "onnx": "training", "pyyaml": "training"}
USAGE, MISSING, INTERRUPTED, FAILED = 2, 3, 130, 1


NO_GDAL = (
    "GDAL's Python bindings (osgeo.gdal_array, on numpy) cannot be imported ({error}). They are "
    "not a pip dependency of gapfill: install them with the system (Debian/Ubuntu: sudo apt "
    "install python3-gdal, then make the virtual environment with --system-site-packages; "
    "conda: conda install -c conda-forge gdal), or build them with pip install 'gapfill[gdal]' "
    "(needs libgdal-dev of the system's GDAL version and a compiler)."
)


def build_parser() -> argparse.ArgumentParser:
    from . import commands, fill

    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Fill clouds, shadows and no-data gaps in optical satellite images, "
        "headless: the engine of the Gapfill QGIS plugin, without QGIS.",
        epilog="Exit codes: 0 done, 1 unexpected or system error, 2 bad input, 3 missing "
        "package, 130 interrupted. 'gapfill COMMAND --help' tells each command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true",
                        help="print the result as one JSON document on stdout")
    common.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bar and no information on stderr (warnings stay)")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.register(subcommands, common, ("mask",))
    fill.register(subcommands, common)
    commands.register(subcommands, common, ("timeseries", "evaluate", "describe"))
    subcommands.add_parser(
        "train", add_help=False,
        help="train, export, evaluate models: the training package "
        "(gapfill train --help; needs the 'training' extra)",
    )
    return parser


def version() -> str:
    """The plugin's version, from metadata.txt (which the package ships too)."""
    metadata = configparser.ConfigParser()
    metadata.read(Path(__file__).resolve().parent.parent / "metadata.txt", encoding="utf-8")
    return metadata["general"]["version"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        from osgeo import gdal_array  # noqa: F401 - the engine's ground (it imports numpy)
    except ImportError as error:
        return Session().fail(NO_GDAL.format(error=error), MISSING)
    if argv[:1] == ["train"]:  # everything after it belongs to the training package's parser
        from ..training.cli import main as train

        return train(argv[1:], prog=f"{PROGRAM} train")
    arguments = build_parser().parse_args(argv)
    session = Session(json=arguments.json, quiet=arguments.quiet)
    try:
        with gdal_return_codes():
            result, summary = arguments.run(arguments, session)
    except (Cancelled, KeyboardInterrupt):
        return session.fail("Interrupted: no output was written.", INTERRUPTED)
    except MissingDependencyError as error:
        return session.fail(missing_package(error), MISSING)
    except GapfillError as error:
        return session.fail(error.worded(flag_name), USAGE)
    except OSError as error:
        return session.fail(str(error), FAILED)
    session.emit(result, summary)
    return 0


@contextmanager
def gdal_return_codes() -> Iterator[None]:
    """GDAL's mode of the engine, chosen explicitly: return codes, not exceptions (GDAL 3.10
    warns on every run until a program chooses; the mode before is restored)."""
    from osgeo import gdal

    previous = gdal.GetUseExceptions()
    gdal.DontUseExceptions()
    try:
        yield
    finally:
        if previous:
            gdal.UseExceptions()


def missing_package(error: MissingDependencyError) -> str:
    """The engine's message, with the fix for this Python instead of QGIS's."""
    from ..core.dependencies import pip_command

    fix = f"Install it into this Python: {pip_command(error.distribution)}"
    if extra := EXTRAS.get(error.distribution):
        fix += f" (or the '{extra}' extra of gapfill: pip install 'gapfill[{extra}]')"
    return f"{error.problem} {fix}."
