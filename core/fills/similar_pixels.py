"""Other dates through similar pixels: each gap pixel takes another date's value plus the change
that the pixels most like it made between that date and the target.

Histogram matching maps a date onto the target by one gain and offset per window, so inside a
large gap (no target pixel in the window) every land cover gets the block's average change. But
a field that was harvested and the forest beside it changed differently, and the other date
says which is which: the pixels that looked like this one on that date (its spectrum and its
place, as in NSPI, Chen et al. 2011, the Landsat SLC-off gap filler) and are clear on both
dates show the change this pixel most likely made. Per date: the `NEIGHBOURS` most similar clear
pixels of the block (six bands, standardised, and the position: `POSITION_SCALE` px count as
much as one standard deviation in every band), their change averaged by inverse distance and
added to the pixel's value on that date. The dates are then averaged with weights inverse to
each one's error on clear pixels nearby, predicted the same way as if hidden.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..dependencies import require
from ..progress import CancelledFn, ProgressFn, check_cancelled, never_cancelled, no_progress
from ..raster.access import crop
from ..raster.fill_engine import Block, FillReport, TargetImage
from ..raster.morphology import box_sum
from .edge_correction import fill_from_dates
from .other_dates import OtherDate
from .temporal_interpolation import Observation

SIMILARITY_BANDS = ("B2", "B3", "B4", "B8", "B11", "B12")  # visible, NIR and SWIR: land cover
NEIGHBOURS = 15
POSITION_SCALE = 64.0  # px that weigh as much as one standard deviation in every band
SEARCH_HALO = 64  # context a block reads around it: similar pixels are sought there too
PROBE_SHARE = 8  # one clear pixel in this many is predicted as if hidden, to weigh the dates
MAX_PROBES = 16384
WEIGHT_RADIUS = 32  # px: a date's error is measured on the probes this near
MIN_PROBES = 8  # fewer near a pixel: the date's error over the whole window is used
MIN_POOL = 50  # fewer clear pixels on both dates: the date is not used in the block
APPROXIMATION = 2.0  # neighbours within (1 + this) × the exact k-th distance: faster, same fill
QUERY_CHUNK = 16384  # pixels per neighbour query (bounds the gathered changes' memory)
MIN_ERROR = 1e-12
PURPOSE = "Filling from other dates through similar pixels"


def similarity_bands(descriptions: list[str] | None, bands: int) -> list[int]:
    """The target's bands that say what a pixel is: `SIMILARITY_BANDS` where the bands are
    named so (at least three of them), else every band."""
    names = [name.upper() for name in descriptions or []]
    found = [names.index(band) for band in SIMILARITY_BANDS if band in names]
    return found if len(found) >= 3 else list(range(bands))


def _one_date(
    target: np.ndarray, clear: np.ndarray, values: np.ndarray, usable: np.ndarray,
    bands: list[int], rng: np.random.Generator, cancelled: CancelledFn,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """One date's prediction of the pixels not clear (values, reached) and its mean squared
    error around each pixel, on probe pixels predicted as if hidden (the window's where too
    few probes are near: a date hazy in places weighs less there only); None when too few
    pixels are clear on both dates."""
    spatial = require("scipy.spatial", PURPOSE)
    pool = np.flatnonzero((clear & usable).ravel())
    asked = np.flatnonzero((~clear & usable).ravel())
    if pool.size < MIN_POOL:
        return None
    count, (height, width) = values.shape[0], clear.shape
    described = values[bands].reshape(len(bands), -1).T
    mean, spread = described[pool].mean(axis=0), described[pool].std(axis=0) + 1e-9
    rows, columns = np.divmod(np.arange(height * width), width)
    position = np.stack([rows, columns], axis=1) * (np.sqrt(len(bands)) / POSITION_SCALE)
    features = np.concatenate([(described - mean) / spread, position], axis=1)
    tree = spatial.cKDTree(features[pool])
    flat_values, flat_target = values.reshape(count, -1), target.reshape(count, -1)
    change = flat_target[:, pool] - flat_values[:, pool]

    def predict(pixels: np.ndarray, skip: int) -> np.ndarray:
        """The pixels' values on the date plus their similar pixels' change (`skip`: the
        nearest ones left out, the pixel itself when it is in the pool)."""
        out = np.empty((count, pixels.size))
        for start in range(0, pixels.size, QUERY_CHUNK):
            check_cancelled(cancelled)
            chunk = pixels[start:start + QUERY_CHUNK]
            distance, index = tree.query(
                features[chunk], k=NEIGHBOURS + skip, eps=APPROXIMATION, workers=-1
            )
            distance, index = distance[:, skip:], index[:, skip:]
            weight = 1.0 / (distance + 1e-3)
            weight /= weight.sum(axis=1, keepdims=True)
            out[:, start:start + chunk.size] = (
                (change[:, index] * weight).sum(axis=2) + flat_values[:, chunk]
            )
        return out

    probes = min(MAX_PROBES, max(MIN_POOL, pool.size // PROBE_SHARE))
    probe = np.sort(rng.choice(pool, probes, replace=False))
    squared, probed = np.zeros(height * width), np.zeros(height * width)
    squared[probe] = np.mean((predict(probe, 1) - flat_target[:, probe]) ** 2, axis=0)
    probed[probe] = 1.0
    near = box_sum(probed.reshape(height, width), WEIGHT_RADIUS)
    local = box_sum(squared.reshape(height, width), WEIGHT_RADIUS) / np.maximum(near, 1.0)
    error = np.where(near >= MIN_PROBES, local, squared.sum() / probes)
    prediction = np.zeros((count, height * width))
    prediction[:, asked] = predict(asked, 0)
    return prediction.reshape(values.shape), ~clear & usable, error


def similar_pixel_values(
    target: np.ndarray, clear: np.ndarray, observations: list[Observation], bands: list[int],
    origin: tuple[int, int], cancelled: CancelledFn = never_cancelled,
) -> tuple[np.ndarray, np.ndarray]:
    """Every pixel not `clear` of the window (`target` (bands, h, w)) from every usable date
    through its similar pixels, the dates weighted inversely to their error nearby. `origin`:
    the window's first pixel in the image, which seeds the probe draw (the same window gives
    the same fill). (values, filled) over the whole window."""
    rng = np.random.default_rng([*origin])
    total = np.zeros(target.shape)
    weights = np.zeros(clear.shape)
    for _, values, usable in observations:
        found = _one_date(target, clear, values, usable, bands, rng, cancelled)
        if found is None:
            continue
        prediction, reached, error = found
        weight = reached / (error + MIN_ERROR)
        total += prediction * weight
        weights += weight
    filled = weights > 0
    return np.divide(total, weights, out=np.zeros_like(total), where=filled), filled


def fill_by_similar_pixels(
    target: TargetImage,
    others: list[OtherDate],
    output: str | Path,
    *,
    edge_correction: bool = False,
    block_size: int = 512,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> FillReport:
    """Fill the target's gaps from every usable date through similar pixels (with
    `edge_correction`, corrected to the target around each gap). No date is preferred for
    being nearer: each weighs by how well it predicts."""
    require("scipy.spatial", PURPOSE)
    bands = similarity_bands(target.descriptions, target.bands)

    def predict(block: Block) -> tuple[np.ndarray, np.ndarray]:
        values, filled = similar_pixel_values(
            block.data, ~block.gap, block.sources, bands, block.outer[:2], cancelled
        )
        return crop(values, block.inner), crop(filled, block.inner)

    return fill_from_dates(
        target, others, output, predict, halo=SEARCH_HALO, edge_correction=edge_correction,
        block_size=block_size, progress=progress, cancelled=cancelled,
    )
