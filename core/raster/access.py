"""Raster access through GDAL: opening with clear errors, grids, windows and validity masks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from osgeo import gdal, osr

from ..errors import RasterOpenError

Window = tuple[int, int, int, int]  # x offset, y offset, width, height (pixels)


@contextmanager
def quiet_gdal() -> Iterator[None]:
    """Silence GDAL's own error printing for a block; errors are turned into our messages."""
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        yield
    finally:
        gdal.PopErrorHandler()


def open_raster(path: str | Path, role: str = "raster") -> gdal.Dataset:
    """Open read-only, or raise `RasterOpenError` naming the role and GDAL's reason."""
    with quiet_gdal():
        gdal.ErrorReset()
        try:
            dataset = gdal.Open(str(path), gdal.GA_ReadOnly)
            reason = gdal.GetLastErrorMsg()
        except RuntimeError as error:  # bindings with exceptions on (GDAL ≥ 3.9's default)
            dataset, reason = None, str(error)
    if dataset is None:
        file = Path(path)
        if not file.exists() and "/vsi" not in str(path):
            what = "does not exist. Check the path"
        elif file.is_file() and file.stat().st_size == 0:
            what = "is empty (0 bytes): it was not written completely. Make it again"
        elif file.is_file() and not os.access(file, os.R_OK):
            what = "cannot be read (no permission). Give read permission or copy it"
        else:
            what = (f"is not a raster GDAL can read ({reason or 'unknown format'}). Give a "
                    "raster file (e.g. GeoTIFF); check that it is not a text file renamed")
        raise RasterOpenError(f"The {role} '{path}' {what}.")
    if dataset.RasterCount == 0:
        raise RasterOpenError(f"The {role} '{path}' has no raster bands.")
    kind = dataset.GetRasterBand(1).DataType
    if gdal.DataTypeIsComplex(kind):
        raise RasterOpenError(
            f"The {role} '{path}' holds complex values ({gdal.GetDataTypeName(kind)}, e.g. SAR "
            "in single-look complex form); Gapfill reads real values. Give the intensity or "
            "backscatter instead (e.g. |value|² with the raster calculator, or SNAP's "
            "calibration to sigma0 in dB)."
        )
    return dataset


@dataclass(frozen=True)
class Grid:
    """A pixel grid: size, geotransform and CRS (WKT, empty when not georeferenced)."""

    width: int
    height: int
    geotransform: tuple[float, ...]
    projection: str

    @classmethod
    def of(cls, dataset: gdal.Dataset) -> Grid:
        return cls(
            dataset.RasterXSize,
            dataset.RasterYSize,
            tuple(dataset.GetGeoTransform(can_return_null=False)),
            dataset.GetProjection() or "",
        )

    @property
    def georeferenced(self) -> bool:
        return bool(self.projection) and self.geotransform != (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) in the grid's CRS, for north-up grids."""
        x0, dx, _, y0, _, dy = self.geotransform
        xs = (x0, x0 + dx * self.width)
        ys = (y0, y0 + dy * self.height)
        return min(xs), min(ys), max(xs), max(ys)

    def window(self, window: Window) -> Grid:
        """The grid of a window of this one (a tile of a mosaic): same CRS and pixel size."""
        x, y, width, height = window
        x0, dx, rx, y0, ry, dy = self.geotransform
        origin = (x0 + x * dx + y * rx, y0 + x * ry + y * dy)
        return Grid(width, height, (origin[0], dx, rx, origin[1], ry, dy), self.projection)

    def same_as(self, other: Grid, tolerance: float = 1e-6) -> bool:
        """Same size, transform (to a fraction of a pixel) and CRS."""
        if (self.width, self.height) != (other.width, other.height):
            return False
        pixel = max(abs(self.geotransform[1]), abs(self.geotransform[5]), 1e-12)
        pairs = zip(self.geotransform, other.geotransform, strict=True)
        if any(abs(a - b) > tolerance * pixel for a, b in pairs):
            return False
        return same_crs(self.projection, other.projection)


def same_crs(wkt_a: str, wkt_b: str) -> bool:
    """True when both are empty or describe the same CRS."""
    if not wkt_a or not wkt_b:
        return not wkt_a and not wkt_b
    a, b = osr.SpatialReference(), osr.SpatialReference()
    a.ImportFromWkt(wkt_a)
    b.ImportFromWkt(wkt_b)
    return bool(a.IsSame(b))


def iter_windows(width: int, height: int, block: int) -> Iterator[Window]:
    """Row-major blocks of at most `block`×`block` pixels, the last row/column clipped."""
    for y in range(0, height, block):
        for x in range(0, width, block):
            yield x, y, min(block, width - x), min(block, height - y)


def region_windows(width: int, height: int, block: int, region: Window) -> Iterator[Window]:
    """The blocks of `iter_windows` that lie in `region`, whose edges are on the block grid
    (or the image's edge): exactly the blocks a whole-image run makes there."""
    x0, y0, w, h = region
    for y in range(y0, y0 + h, block):
        for x in range(x0, x0 + w, block):
            yield x, y, min(block, width - x), min(block, height - y)


def window_count(width: int, height: int, block: int) -> int:
    return -(-width // block) * -(-height // block)


def expand_window(window: Window, halo: int, width: int, height: int) -> tuple[Window, Window]:
    """The window grown by `halo` (clipped to the image) and the core's position inside it."""
    x, y, w, h = window
    x0, y0 = max(0, x - halo), max(0, y - halo)
    x1, y1 = min(width, x + w + halo), min(height, y + h + halo)
    return (x0, y0, x1 - x0, y1 - y0), (x - x0, y - y0, w, h)


def crop(array: np.ndarray, inner: Window) -> np.ndarray:
    """The `inner` window of the last two axes of `array`."""
    x, y, w, h = inner
    return array[..., y : y + h, x : x + w]


def read_bands(dataset: gdal.Dataset, window: Window, bands: list[int] | None = None) -> np.ndarray:
    """Read (bands, h, w) in the native data type; `bands` are 1-based, default all data bands."""
    x, y, w, h = window
    band_list = bands or list(range(1, data_band_count(dataset) + 1))
    array = dataset.ReadAsArray(x, y, w, h, band_list=band_list)
    if array is None:
        raise RasterOpenError(
            f"Reading window {window} of '{dataset.GetDescription()}' failed: "
            f"{gdal.GetLastErrorMsg()}"
        )
    return array.reshape(len(band_list), h, w)


def data_band_count(dataset: gdal.Dataset) -> int:
    """Bands that hold data: an alpha band added by warping is not one of them."""
    count = dataset.RasterCount
    last = dataset.GetRasterBand(count)
    if count > 1 and last.GetColorInterpretation() == gdal.GCI_AlphaBand:
        return count - 1
    return count


def read_valid(dataset: gdal.Dataset, window: Window) -> np.ndarray:
    """Boolean (h, w): True where every data band has data (no-data values, mask bands, and the
    alpha band that warping adds: GDAL treats an alpha band as a mask only on 2- and 4-band
    datasets, so it is read explicitly). NaN and ±inf are never data, with or without a
    no-data value (GDAL's mask bands count them valid when none is set)."""
    x, y, w, h = window
    valid = np.ones((h, w), dtype=bool)
    if data_band_count(dataset) < dataset.RasterCount:
        valid &= dataset.GetRasterBand(dataset.RasterCount).ReadAsArray(x, y, w, h) > 0
    floating = np.issubdtype(numpy_dtype(dataset), np.floating)
    masked = True  # still to apply the mask bands
    for index in range(1, data_band_count(dataset) + 1):
        band = dataset.GetRasterBand(index)
        if floating:
            valid &= np.isfinite(band.ReadAsArray(x, y, w, h))
        if masked and band.GetMaskFlags() != gdal.GMF_ALL_VALID:
            valid &= band.GetMaskBand().ReadAsArray(x, y, w, h) > 0
            masked = not band.GetMaskFlags() & gdal.GMF_PER_DATASET
        elif not floating and not masked:
            break
    return valid


def band_descriptions(dataset: gdal.Dataset) -> list[str]:
    return [
        dataset.GetRasterBand(i).GetDescription() for i in range(1, data_band_count(dataset) + 1)
    ]


def nodata_value(dataset: gdal.Dataset) -> float | None:
    return dataset.GetRasterBand(1).GetNoDataValue()


def numpy_dtype(dataset: gdal.Dataset) -> np.dtype:
    from osgeo import gdal_array

    return np.dtype(gdal_array.GDALTypeCodeToNumericTypeCode(dataset.GetRasterBand(1).DataType))
