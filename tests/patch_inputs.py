"""Inputs shared by the tests of the training-data preparation (statistics to extraction)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SERIES = "sen12mscr_ts"
CLOUDY, EARLIER, CLEAR = "2018-03-07", "2018-02-25", "2018-04-26"


def date(data_dir: Path, day: str) -> Path:
    return data_dir / SERIES / f"s2_{day}.tif"


def build_mask(data_dir: Path, folder: Path, day: str = CLOUDY) -> Path:
    """The spectral gap mask (1 = cloud or shadow) of a date of the real time series."""
    from gapfill.core.masks.gap_mask import MaskSettings, build_gap_mask

    output = folder / f"mask_{day}.tif"
    build_gap_mask(str(date(data_dir, day)), output, MaskSettings(method="spectral"))
    return output


def with_nodata(source: Path, output: Path, window: tuple[int, int, int, int]) -> Path:
    """A copy of a real image with no-data = 0 and the (x, y, w, h) window set to 0."""
    from osgeo import gdal

    copy = gdal.Translate(str(output), str(source), noData=0)
    x, y, w, h = window
    for index in range(1, copy.RasterCount + 1):
        copy.GetRasterBand(index).WriteArray(np.zeros((h, w), dtype=np.uint16), x, y)
    copy = None
    return output
