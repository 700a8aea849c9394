"""Option types and checks every command shares."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from pathlib import Path

from ..core.errors import GapfillError

DEVICES = ("auto", "cpu", "cuda")


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number ≥ 1")
    return value


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number ≥ 0")
    return value


def margin(text: str) -> int:
    """A source margin: -1 (measured on the scene) or 0 to 64 px, as in Processing."""
    from ..core.fills.scene.fill_scene import MAX_SOURCE_MARGIN, MEASURED

    value = int(text)
    if not MEASURED <= value <= MAX_SOURCE_MARGIN:
        raise argparse.ArgumentTypeError(
            f"{text} is not -1 (measured) or a whole number 0-{MAX_SOURCE_MARGIN}"
        )
    return value


def budget(text: str) -> float:
    """A time budget in minutes, within the range Processing accepts."""
    from ..core.errors import GapfillError
    from ..core.fills.scene.fill_scene import budget_setting

    try:
        return budget_setting(float(text))
    except GapfillError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def check_output(
    output: str, inputs: Iterable[str | None], overwrite: bool, raster: bool = True
) -> None:
    """Refuse an output that is one of the inputs (inputs are never modified), an existing
    file unless `overwrite` (a command line should not silently replace a result), and what
    Processing refuses too: a folder, an unwritable place, a raster name not ending in .tif."""
    from ..core.raster.output import check_output_file, files_read_by  # GDAL: once a command runs

    target = Path(output)
    for path in filter(None, inputs):
        same = target.exists() and Path(path).exists() and os.path.samefile(target, path)
        if same or os.path.realpath(output) in files_read_by(path):
            through = "" if same else f" (read through '{path}')"
            raise GapfillError(
                f"The output '{output}' is one of the inputs{through}; inputs are never "
                "modified. Choose another output file."
            )
    check_output_file("", output, raster)
    if target.exists() and not overwrite:
        raise GapfillError(
            f"The output '{output}' exists. Choose another file, or give --overwrite to "
            "replace it."
        )
