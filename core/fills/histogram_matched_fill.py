"""Other dates with local linear histogram matching (USGS Landsat 7 SLC-off gap fill).

Each band of a date is adjusted by a gain and offset that match its local mean and standard
deviation to the target's, fitted in a moving window on the pixels clear in both images. Where
the window holds too few such pixels, the fit over the whole block (plus halo) is used, and
where even that is empty, the value is copied.

The closest date may also be fitted by local linear regression instead (least squares in the
same window: gain = covariance / variance, as the regression fills of SLC-off gaps do): where the
dates agree little, the fit leans toward the target's local mean instead of copying the date's
texture at full contrast; its expected error is the smallest a local linear map can have.

Two ways to use the dates: the closest usable date per gap pixel (the USGS method), or every
usable date, weighted by how well its matched values explain the target's clear pixels around
the gap (the inverse of their mean squared residual there: inverse-variance weighting, as in
weighted multi-temporal regression fills). The nearest date is not always the most alike: a
date of another crop stage, haze or a harvest between is weighed down where it differs.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from ..errors import GapfillError
from ..progress import CancelledFn, ProgressFn, check_cancelled, never_cancelled, no_progress
from ..raster.access import crop
from ..raster.fill_engine import Block, FillReport, TargetImage
from ..raster.morphology import box_sum
from .edge_correction import fill_from_dates
from .other_dates import OtherDate
from .temporal_interpolation import Observation

MIN_STD = 1e-6
MIN_ERROR = 1e-12  # a residual of 0 (the same image) weighs 1e12, not infinity; a date
# without a clear pixel in common with the target in the block weighs 1e-12: it fills
# only where no other date can


def gain_offset(
    n: np.ndarray, sum_t: np.ndarray, sum_tt: np.ndarray, sum_s: np.ndarray, sum_ss: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gain and offset mapping the source's mean/std onto the target's (n > 0 everywhere)."""
    mean_t, mean_s = sum_t / n, sum_s / n
    std_t = np.sqrt(np.maximum(sum_tt / n - mean_t**2, 0.0))
    std_s = np.sqrt(np.maximum(sum_ss / n - mean_s**2, 0.0))
    gain = np.where(std_s > MIN_STD, std_t / np.maximum(std_s, MIN_STD), 1.0)
    return gain, mean_t - gain * mean_s


def regression_gain_offset(
    n: np.ndarray, sum_t: np.ndarray, sum_ts: np.ndarray, sum_s: np.ndarray, sum_ss: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares gain and offset predicting the target from the source (n > 0); a flat
    source predicts the target's mean."""
    mean_t, mean_s = sum_t / n, sum_s / n
    variance = np.maximum(sum_ss / n - mean_s**2, 0.0)
    flat = variance <= MIN_STD**2
    gain = np.where(flat, 0.0, (sum_ts / n - mean_t * mean_s) / np.where(flat, 1.0, variance))
    return gain, mean_t - gain * mean_s


def _fit(sums: list, n: np.ndarray, regression: bool) -> tuple[np.ndarray, np.ndarray]:
    """Gain and offset from the sums (t, tt or with `regression` ts, s, ss) over n pixels."""
    return (regression_gain_offset if regression else gain_offset)(n, *sums)


def matched_values(
    target: np.ndarray,
    target_clear: np.ndarray,
    source: np.ndarray,
    usable: np.ndarray,
    radius: int,
    min_pixels: int,
    regression: bool = False,
) -> np.ndarray:
    """The source adjusted band by band to the target's local statistics (`regression`: by the
    target's local least-squares fit on it) (same shape)."""
    common = (target_clear & usable).astype(np.float64)
    n_local = box_sum(common, radius)
    local = n_local >= min_pixels
    n_block = common.sum()
    adjusted = source.copy()
    for band in range(source.shape[0]):
        t, s = target[band] * common, source[band] * common
        products = [t, t * (source[band] if regression else target[band]), s, s * source[band]]
        if n_block > 0:
            totals = [np.float64(p.sum()) for p in products]
            gain, offset = _fit(totals, np.float64(n_block), regression)
        else:
            gain, offset = 1.0, 0.0
        adjusted[band] = gain * source[band] + offset
        if local.any():
            n = np.where(local, n_local, 1.0)
            local_gain, local_offset = _fit(
                [box_sum(p, radius) for p in products], n, regression
            )
            adjusted[band][local] = (local_gain * source[band] + local_offset)[local]
    return adjusted


def fill_nearest_matched(
    target_date: date,
    block: Block,
    observations: list[Observation],
    radius: int,
    min_pixels: int,
    cancelled: CancelledFn = never_cancelled,
    regression: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Per gap pixel, the temporally nearest usable date, histogram-matched (`regression`: its
    local least-squares fit). (values, filled)."""
    clear = ~block.gap
    core_gap = crop(block.gap, block.inner)
    values = np.zeros(crop(block.data, block.inner).shape)
    filled = np.zeros(core_gap.shape, dtype=bool)
    for _, data, usable in sorted(observations, key=lambda o: abs((o[0] - target_date).days)):
        check_cancelled(cancelled)
        take = core_gap & ~filled & crop(usable, block.inner)
        if not take.any():
            continue
        adjusted = matched_values(
            block.data, clear, data, usable, radius, min_pixels, regression
        )
        values[:, take] = crop(adjusted, block.inner)[:, take]
        filled |= take
        if filled[core_gap].all():
            break
    return values, filled


def fill_weighted_matched(
    block: Block, observations: list[Observation], radius: int, min_pixels: int,
    cancelled: CancelledFn = never_cancelled,
) -> tuple[np.ndarray, np.ndarray]:
    """Per gap pixel, every usable date histogram-matched, averaged with weights inverse to its
    matched values' mean squared residual (summed over bands) against the target's clear
    pixels in the window around (over the block where the window holds fewer than
    `min_pixels`). (values, filled)"""
    clear = ~block.gap
    core_gap = crop(block.gap, block.inner)
    total = np.zeros(crop(block.data, block.inner).shape)
    weights = np.zeros(core_gap.shape)
    for _, data, usable in observations:
        check_cancelled(cancelled)
        take = core_gap & crop(usable, block.inner)
        if not take.any():
            continue
        adjusted = matched_values(block.data, clear, data, usable, radius, min_pixels)
        common = clear & usable
        residual = np.square(adjusted - block.data).sum(axis=0) * common
        count = box_sum(common.astype(np.float64), radius)
        overall = residual.sum() / common.sum() if common.any() else 1.0 / MIN_ERROR
        error = np.where(
            count >= min_pixels, box_sum(residual, radius) / np.maximum(count, 1.0), overall
        )
        weight = np.where(take, 1.0 / (crop(error, block.inner) + MIN_ERROR), 0.0)
        total += crop(adjusted, block.inner) * weight
        weights += weight
    filled = weights > 0
    values = np.divide(total, weights, out=np.zeros_like(total), where=filled)
    return values, filled


def fill_matched(
    target_date: date, block: Block, observations: list[Observation], radius: int,
    min_pixels: int, cancelled: CancelledFn = never_cancelled, *, weighted: bool = False,
    regression: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """A block's gaps from the nearest date matched (`regression`: fitted), or (`weighted`)
    from every date matched and weighted by its fit. (values, filled)"""
    if weighted:
        return fill_weighted_matched(block, observations, radius, min_pixels, cancelled)
    return fill_nearest_matched(
        target_date, block, observations, radius, min_pixels, cancelled, regression
    )


def fill_by_histogram_matching(
    target: TargetImage,
    target_date: date,
    others: list[OtherDate],
    output: str | Path,
    *,
    radius: int = 15,
    min_pixels: int = 50,
    weighted: bool = False,
    regression: bool = False,
    edge_correction: bool = False,
    block_size: int = 512,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> FillReport:
    """Fill the target's gaps from the nearest usable date matched to the target locally
    (`regression`: fitted by local least squares; `weighted`: from every usable date matched,
    weighted by its fit); with `edge_correction`, corrected to the target around each gap.
    Weighted fills match, never regress: an average of fits each already drawn toward the
    local mean would be drawn twice (measured: 0.18 and 0.44 dB below matching,
    BENCHMARKS.md)."""
    if weighted and regression:
        raise GapfillError(
            "Weighted histogram matching and local linear regression are two methods: choose "
            "one (weighted: every clear date, matched; regression: the nearest date)."
        )

    def compute(block: Block):
        return fill_matched(target_date, block, block.sources, radius, min_pixels, cancelled,
                            weighted=weighted, regression=regression)

    return fill_from_dates(
        target, others, output, compute, halo=radius, edge_correction=edge_correction,
        block_size=block_size, progress=progress, cancelled=cancelled,
    )
