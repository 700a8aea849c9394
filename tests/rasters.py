"""Small raster helpers for assertions in tests."""

import numpy as np


def read(path) -> np.ndarray:
    """The whole raster as (bands, h, w)."""
    from osgeo import gdal

    dataset = gdal.Open(str(path))
    array = dataset.ReadAsArray()
    return array.reshape(dataset.RasterCount, dataset.RasterYSize, dataset.RasterXSize)


def same_georeference(a, b) -> bool:
    from osgeo import gdal

    first, second = gdal.Open(str(a)), gdal.Open(str(b))
    return (
        first.GetGeoTransform() == second.GetGeoTransform()
        and first.GetProjection() == second.GetProjection()
        and (first.RasterXSize, first.RasterYSize) == (second.RasterXSize, second.RasterYSize)
    )
