"""Distance of every pixel to the nearest pixel of a set (GDAL's proximity, in C)."""

from __future__ import annotations

import numpy as np
from osgeo import gdal


def distance_to(targets: np.ndarray) -> np.ndarray:
    """(h, w) float32 Euclidean distance in pixels to the nearest True pixel of `targets`
    (0 on them; the image diagonal when there is none)."""
    height, width = targets.shape
    if not targets.any():
        return np.full((height, width), float(np.hypot(height, width)), dtype=np.float32)
    memory = gdal.GetDriverByName("MEM")
    source = memory.Create("", width, height, 1, gdal.GDT_Byte)
    source.GetRasterBand(1).WriteArray(targets.astype(np.uint8))
    result = memory.Create("", width, height, 1, gdal.GDT_Float32)
    gdal.ComputeProximity(
        source.GetRasterBand(1), result.GetRasterBand(1),
        ["VALUES=1", "DISTUNITS=PIXEL", "USE_INPUT_NODATA=NO"],
    )
    return result.GetRasterBand(1).ReadAsArray()
