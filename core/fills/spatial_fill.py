"""Spatial inverse-distance filling from the gap edges (GDAL FillNodata), streamed by blocks.

Each block is read with a halo of `max_distance` pixels so that every pixel it can fill sees
the same clear pixels as in a whole-image run. Whether a pixel was reached is learned by
interpolating an indicator band (1 on clear pixels) with the same mask: FillNodata leaves
unreached pixels untouched, so they keep 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from osgeo import gdal

from ..progress import CancelledFn, ProgressFn, check_cancelled, never_cancelled, no_progress
from ..raster.access import crop
from ..raster.fill_engine import Block, FillReport, TargetImage, fill_image


def fill_nodata_arrays(
    data: np.ndarray,
    clear: np.ndarray,
    max_distance: int,
    smoothing: int,
    cancelled: CancelledFn = never_cancelled,
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse-distance fill of every band where `clear` is False. Returns (values, reached)."""
    bands, height, width = data.shape
    memory = gdal.GetDriverByName("MEM")
    stack = memory.Create("", width, height, bands + 1, gdal.GDT_Float32)
    mask = memory.Create("", width, height, 1, gdal.GDT_Byte)
    mask.GetRasterBand(1).WriteArray(clear.astype(np.uint8))
    mask_band = mask.GetRasterBand(1)
    planes = list(data) + [clear.astype(np.float32)]
    values = np.empty((bands + 1, height, width), dtype=np.float64)
    for index, plane in enumerate(planes, start=1):
        check_cancelled(cancelled)
        band = stack.GetRasterBand(index)
        band.WriteArray(np.where(clear, plane, 0).astype(np.float32))
        # blocks are small: keep FillNodata's work rasters in memory, never in the current folder
        gdal.FillNodata(band, mask_band, max_distance, smoothing, ["TEMP_FILE_DRIVER=MEM"])
        values[index - 1] = band.ReadAsArray()
    return values[:bands], values[bands] > 0.5


def fill_spatially(
    target: TargetImage,
    output: str | Path,
    *,
    max_distance: int = 100,
    smoothing: int = 0,
    block_size: int = 1024,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> FillReport:
    """Fill gaps of `target` from their edges, up to `max_distance` pixels away."""

    def compute(block: Block):
        values, reached = fill_nodata_arrays(
            block.data, ~block.gap, max_distance, smoothing, cancelled
        )
        return crop(values, block.inner), crop(reached, block.inner)

    return fill_image(
        target,
        output,
        compute,
        halo=max_distance + smoothing,
        block_size=block_size,
        require_clear=True,
        progress=progress,
        cancelled=cancelled,
    )
