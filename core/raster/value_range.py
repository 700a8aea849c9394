"""Cheap looks at the values of a raster, to catch inputs on the wrong scale (or bands without
any data) before any work: the valid pixels of small windows spread over the image, and their
percentiles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from osgeo import gdal

from ..errors import GapfillError
from .access import Window, band_descriptions, read_bands, read_valid
from .validity import BandMasks

SAMPLE_PIXELS = 256  # images of at most SAMPLE_PIXELS² pixels are read whole
SAMPLE_GRID, SAMPLE_WINDOW = 8, 32  # else 8 × 8 windows of 32 px: 65,536 pixels per band
BACKSCATTER_LIMIT = 60.0  # |value| beyond it is no backscatter, in dB or linear
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


def could_be_backscatter(spread: Spread) -> bool:
    """Whether values can be SAR backscatter at all, in dB or linear: beyond ±60 they cannot
    (−60 dB is below any sensor's noise floor; optical DN run to thousands)."""
    return spread.magnitude <= BACKSCATTER_LIMIT


def looks_like_linear_backscatter(spread: Spread) -> bool:
    """SAR backscatter in dB is mostly negative over land and water; linear backscatter is
    never negative and rarely above 10."""
    return spread.low >= 0 and spread.high <= 10


def sample_windows(width: int, height: int) -> list[Window]:
    """A grid of small windows spread over the image (the whole image when it is small): a
    few blocks per band, where a decimated read of a tiled, compressed image decodes all of
    them (minutes at 10980², for a check that needs a sample)."""
    if width * height <= SAMPLE_PIXELS**2:
        return [(0, 0, width, height)]
    size_x, size_y = min(width, SAMPLE_WINDOW), min(height, SAMPLE_WINDOW)
    xs = np.linspace(0, width - size_x, SAMPLE_GRID).round().astype(int)
    ys = np.linspace(0, height - size_y, SAMPLE_GRID).round().astype(int)
    return sorted({(int(x), int(y), size_x, size_y) for y in ys for x in xs})


def sample_spread(dataset: gdal.Dataset, bands: list[int]) -> Spread | None:
    """The spread of `bands` (1-based) over the valid pixels (no-data, masks and NaN left out)
    of windows spread over the image; None when no pixel is valid."""
    values = []
    for window in sample_windows(dataset.RasterXSize, dataset.RasterYSize):
        data = read_bands(dataset, window, bands).astype(np.float64)
        valid = read_valid(dataset, window) & np.isfinite(data).all(axis=0)
        values.append(data[:, valid].ravel())
    pooled = np.concatenate(values)
    if not pooled.size:
        return None
    low, median, high = np.percentile(pooled, [1, 50, 99])
    return Spread(float(low), float(median), float(high))


def check_every_band_has_data(dataset: gdal.Dataset, path: str) -> None:
    """Refuse a target with bands that have no valid value in windows spread over the image
    while other bands have some there: no pixel has every band, so every pixel would be a gap
    and the fill would replace the other bands' clear values."""
    masks, descriptions = BandMasks(dataset), band_descriptions(dataset)
    seen = np.zeros(len(descriptions), bool)
    for window in sample_windows(dataset.RasterXSize, dataset.RasterYSize):
        seen |= masks.valid(window, read_bands(dataset, window)).any(axis=(1, 2))
    if seen.all() or not seen.any():
        return
    empty = [f"{band + 1} ({descriptions[band]})" if descriptions[band] else str(band + 1)
             for band in np.flatnonzero(~seen)]
    raise GapfillError(
        f"The target '{path}' has no data at all in band(s) {', '.join(empty)} (every value "
        "no-data or NaN), so no pixel has every band: drop the band (Processing › GDAL › "
        "Raster conversion › Rearrange bands, or gdal_translate -b) or give it values, and "
        "run again."
    )


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
