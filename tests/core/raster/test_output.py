"""A GeoTIFF output is closed for good before it is published (renamed, then checksummed by
a distributed run's manifest), so that nothing rewrites it afterwards."""

from __future__ import annotations

import gc

import numpy as np
from osgeo import gdal

from gapfill.core.distributed.manifest import sha256
from gapfill.core.raster.access import Grid
from gapfill.core.raster.output import GeoTiffWriter, atomic_path, descriptors_of


def test_an_output_is_closed_before_it_is_published_even_when_a_cycle_holds_it(tmp_path):
    path = tmp_path / "out.tif"
    grid = Grid(64, 64, (500000.0, 10.0, 0.0, 5000000.0, 0.0, -10.0), "")
    gc.disable()  # only the publishing may collect the cycle
    try:
        with atomic_path(path) as temporary:
            writer = GeoTiffWriter(temporary, grid, 3, np.uint16, nodata=0,
                                   descriptions=["B2", "B3", "B4"])
            writer.write((0, 0, 64, 64),
                         np.arange(3 * 64 * 64, dtype=np.uint16).reshape(3, 64, 64))
            cycle: list = [writer.dataset]
            cycle.append(cycle)  # what a lingering traceback or closure would do
            assert descriptors_of(temporary) == 1  # open while written
            del cycle
            writer.close()
        assert descriptors_of(path) == 0
        written = sha256(path)
        gc.collect()
        assert sha256(path) == written  # nothing left to write it later
    finally:
        gc.enable()
    dataset = gdal.Open(str(path))
    assert dataset.GetRasterBand(2).GetDescription() == "B3"
    assert int(dataset.GetRasterBand(3).ReadAsArray()[63, 63]) == 3 * 64 * 64 - 1
