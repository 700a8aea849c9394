"""Which pixels of values already read hold data, without reading the bands a second time.

`raster.read_valid` asks GDAL's mask bands, which re-reads the data when the mask is a no-data
value. Statistics, scaling and patch extraction already hold the values, so plain no-data
values are compared here instead, all bands at once; other masks (mask bands, the alpha band
of warped sources) are still read. How each band marks no data is looked up once per dataset.
"""

from __future__ import annotations

import numpy as np
from osgeo import gdal

from .access import Window, data_band_count, numpy_dtype


class BandMasks:
    """The no-data rules of every data band of a dataset, applied to values read from it."""

    def __init__(self, dataset: gdal.Dataset) -> None:
        self.dataset = dataset
        dtype = numpy_dtype(dataset)
        self.floating = np.issubdtype(dtype, np.floating)  # NaN and ±inf are never data
        self.compared: list[int] = []  # 0-based bands with a no-data value
        nodata: list[float] = []
        self.mask_bands: list[int] = []  # 0-based bands whose mask band must be read
        bands = data_band_count(dataset)
        for index in range(bands):
            band = dataset.GetRasterBand(index + 1)
            flags = band.GetMaskFlags()
            if flags == gdal.GMF_NODATA:
                value = band.GetNoDataValue()
                if representable(value, dtype) and not np.isnan(value):  # NaN: not finite
                    self.compared.append(index)
                    nodata.append(value)
            elif flags != gdal.GMF_ALL_VALID:
                self.mask_bands.append(index)
        # compared in the band's own type, as GDAL does
        self.nodata = np.array(nodata, dtype=dtype)[:, np.newaxis, np.newaxis]
        self.all_compared = self.compared == list(range(bands))
        self.alpha = bands < dataset.RasterCount

    def valid(self, window: Window, values: np.ndarray) -> np.ndarray:
        """(bands, h, w) booleans for `values` = every data band over `window`."""
        x, y, w, h = window
        if self.all_compared:
            valid = values != self.nodata
        else:
            valid = np.ones(values.shape, dtype=bool)
            if self.compared:
                valid[self.compared] = values[self.compared] != self.nodata
        if self.floating:
            valid &= np.isfinite(values)
        for index in self.mask_bands:
            mask = self.dataset.GetRasterBand(index + 1).GetMaskBand()
            valid[index] &= mask.ReadAsArray(x, y, w, h) > 0
        if self.alpha:  # the alpha band a warped VRT adds
            valid &= self.dataset.GetRasterBand(self.dataset.RasterCount).ReadAsArray(
                x, y, w, h
            ) > 0
        return valid


def representable(value: float, dtype: np.dtype) -> bool:
    """Whether a no-data value can occur in the type (e.g. not −9999 in an unsigned band)."""
    if np.issubdtype(dtype, np.floating):
        return True
    info = np.iinfo(dtype)
    return float(value).is_integer() and info.min <= value <= info.max
