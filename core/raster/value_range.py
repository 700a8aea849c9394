"""Cheap looks at the values of a raster, to catch inputs on the wrong scale before any work:
a decimated read (at most 256 × 256 px per band) of the valid pixels, and their percentiles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from osgeo import gdal

from ..errors import GapfillError

SAMPLE_PIXELS = 256  # per side of the decimated read
SCALE_RATIO = 50.0  # two images of one place whose magnitudes differ more are on other scales


@dataclass(frozen=True)
class Spread:
    """The 1st, 50th and 99th percentiles of a raster's valid values (bands pooled)."""

    low: float
    median: float
    high: float

    @property
    def magnitude(self) -> float:
        return max(abs(self.low), abs(self.high))

    def text(self) -> str:
        return f"{self.low:.4g} to {self.high:.4g}"


def sample_spread(dataset: gdal.Dataset, bands: list[int]) -> Spread | None:
    """The spread of `bands` (1-based) over their valid pixels (no-data, masks and NaN left
    out), from a nearest-neighbour decimated read; None when no pixel is valid."""
    width, height = dataset.RasterXSize, dataset.RasterYSize
    size = {"buf_xsize": min(width, SAMPLE_PIXELS), "buf_ysize": min(height, SAMPLE_PIXELS)}
    values = []
    for index in bands:
        band = dataset.GetRasterBand(index)
        data = band.ReadAsArray(0, 0, width, height, **size).astype(np.float64)
        flags = band.GetMaskBand().ReadAsArray(0, 0, width, height, **size)
        valid = np.isfinite(data) & (flags > 0)
        values.append(data[valid])
    pooled = np.concatenate(values) if values else np.empty(0)
    if not pooled.size:
        return None
    low, median, high = np.percentile(pooled, [1, 50, 99])
    return Spread(float(low), float(median), float(high))


def check_same_scale(
    reference: Spread | None, other: Spread | None, path: str, role: str, reference_role: str
) -> None:
    """Refuse an image whose values are on another scale than the reference's (e.g. a
    reflectance 0–1 date next to a target in DN 0–10000): every fill from it would be off."""
    if reference is None or other is None or min(reference.magnitude, other.magnitude) <= 0:
        return
    ratio = other.magnitude / reference.magnitude
    if 1 / SCALE_RATIO <= ratio <= SCALE_RATIO:
        return
    raise GapfillError(
        f"The {role} '{path}' holds values of {other.text()} (1st to 99th percentile) where "
        f"the {reference_role} holds {reference.text()}: they are on different scales (e.g. "
        "reflectance 0–1 against digital numbers 0–10000). Bring both to one scale (Prepare › "
        "Scale raster / Unscale raster, or the raster calculator) and run again."
    )
