"""Optional Python packages, imported on first use with an exact install command when missing.

QGIS must start and `qgis_process` must list the algorithms without onnxruntime or torch, so
they are imported inside the functions that need them, through `require`.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

from .errors import MissingDependencyError

PYTHON_NAME = re.compile(r"^python(\d+(\.\d+)?)?(\.exe)?$", re.IGNORECASE)


def qgis_process_command(arguments: str) -> str:
    """A `qgis_process run` command as the user types it, also where Debian 12's wrapper
    passes an option QGIS 3.22 rejects and `qgis_process.bin` must be called instead."""
    return f"`qgis_process run {arguments}` (Debian 12: `qgis_process.bin run {arguments}`)"


INSTALLER_HINT = (
    "Install it with Gapfill's 'Install dependencies' algorithm (menu Plugins › Gapfill › "
    f"Install dependencies…, or {qgis_process_command('gapfill:installdependencies')}), which "
    "puts it in a folder of your QGIS profile and leaves QGIS's own Python packages untouched."
)


def python_executable() -> str:
    """The Python interpreter running this code, also inside QGIS.

    Embedded in QGIS, `sys.executable` is QGIS itself or whatever `python3` comes first on the
    PATH (a pyenv shim, say), so the interpreter of `sys.prefix` (OSGeo4W, Linux packages,
    QGIS.app, a virtual environment) is preferred; then a Python-named `sys.executable`; then
    plain `python3`.
    """
    prefix = Path(sys.prefix)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [
        prefix / "bin" / f"python{version}",
        prefix / "bin" / "python3",
        prefix / "bin" / "python",
        prefix / "python.exe",
        prefix / "python3.exe",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    if sys.executable and PYTHON_NAME.match(Path(sys.executable).name):
        return sys.executable
    return "python3"


def pip_command(*requirements: str) -> str:
    """The shell command installing `requirements` into this Python without upgrading numpy.

    numpy is pinned below its next major version: the GDAL bindings that QGIS ships are built
    against the installed numpy major, and pip would otherwise bring a newer one.
    """
    numpy_major = int(np.__version__.split(".")[0])
    return command_line(
        [python_executable(), "-m", "pip", "install", *requirements, f"numpy<{numpy_major + 1}"]
    )


def command_line(arguments: list[str]) -> str:
    """`arguments` as one line to paste into this system's shell."""
    if os.name == "nt":  # cmd.exe: double quotes keep '<' from being a redirection
        return " ".join(f'"{argument}"' for argument in arguments)
    return shlex.join(arguments)


def require(module_name: str, purpose: str, distribution: str | None = None) -> ModuleType:
    """Import `module_name`, or raise `MissingDependencyError` saying how to install it.

    `distribution` is the pip name when it differs from the module's (default: the module's
    top-level name).
    """
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        distribution = distribution or module_name.split(".")[0]
        problem = (
            f"{purpose} needs the Python package '{distribution}', which cannot be imported "
            f"({error})."
        )
        raise MissingDependencyError(
            f"{problem} {INSTALLER_HINT} Or install it by hand into the Python that QGIS uses "
            f"with:\n    {pip_command(distribution)}\nthen restart QGIS.",
            problem=problem,
            distribution=distribution,
        ) from error
