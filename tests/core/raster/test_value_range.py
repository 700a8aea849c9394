"""The scale check's sample: windows spread over the image, valid pixels only."""

from __future__ import annotations

import numpy as np
from osgeo import gdal

from gapfill.core.raster.value_range import SAMPLE_GRID, sample_spread, sample_windows


def test_windows_cover_a_large_image_and_a_small_one_is_read_whole():
    windows = sample_windows(10980, 10980)
    assert len(windows) == SAMPLE_GRID**2
    assert min(x for x, *_ in windows) == 0 and max(x + w for x, _, w, _ in windows) == 10980
    assert sample_windows(200, 100) == [(0, 0, 200, 100)]


def test_spread_leaves_no_data_and_nan_out(tmp_path):
    rng = np.random.default_rng(0)
    path = str(tmp_path / "image.tif")
    dataset = gdal.GetDriverByName("GTiff").Create(path, 1200, 900, 2, gdal.GDT_Float32,
                                                   ["TILED=YES", "COMPRESS=DEFLATE"])
    for index in (1, 2):
        values = rng.uniform(1000, 3000, (900, 1200)).astype(np.float32)
        values[:, :600] = -9999  # no data: half the image
        values[::7, 600:] = np.nan
        band = dataset.GetRasterBand(index)
        band.SetNoDataValue(-9999)
        band.WriteArray(values)
    spread = sample_spread(dataset, [1, 2])
    assert 1000 <= spread.low < 1100 and 1900 < spread.median < 2100 and 2900 < spread.high <= 3000
    dataset.GetRasterBand(1).Fill(-9999)
    dataset.GetRasterBand(2).Fill(-9999)
    assert sample_spread(dataset, [1, 2]) is None
