"""GeoTIFF outputs are closed for good when their writer closes, so that nothing rewrites a
file after it is published (renamed, checksummed by a distributed run's manifest)."""

from __future__ import annotations

import gc

import numpy as np
from osgeo import gdal

from gapfill.core.distributed.manifest import sha256
from gapfill.core.raster.access import Grid
from gapfill.core.raster.output import GeoTiffWriter, descriptors_of


def test_a_writer_closes_its_file_even_when_a_reference_cycle_holds_the_dataset(tmp_path):
    path = tmp_path / "out.tif"
    grid = Grid(64, 64, (500000.0, 10.0, 0.0, 5000000.0, 0.0, -10.0), "")
    writer = GeoTiffWriter(path, grid, 3, np.uint16, nodata=0, descriptions=["B2", "B3", "B4"])
    writer.write((0, 0, 64, 64), np.arange(3 * 64 * 64, dtype=np.uint16).reshape(3, 64, 64))
    cycle: list = [writer.dataset]
    cycle.append(cycle)  # what a lingering traceback or closure would do
    assert descriptors_of(path) == 1  # open while written
    gc.disable()  # only the writer may collect it
    try:
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
