"""Temporal linear interpolation: each gap pixel from the nearest usable earlier and later dates."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from ..progress import CancelledFn, ProgressFn, check_cancelled, never_cancelled, no_progress
from ..raster.fill_engine import Block, FillReport, TargetImage
from .edge_correction import fill_from_dates
from .other_dates import OtherDate

Observation = tuple[date, np.ndarray, np.ndarray]  # date, (bands, h, w) values, (h, w) usable


def nearest_side(
    target_date: date, observations: list[Observation], later: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, value and day distance of the closest usable date on one side (inf: none)."""
    side = [o for o in observations if (o[0] > target_date) == later]
    side.sort(key=lambda o: abs((o[0] - target_date).days))
    bands, height, width = observations[0][1].shape
    values = np.zeros((bands, height, width))
    distance = np.full((height, width), np.inf)
    for when, data, usable in side:
        take = usable & np.isinf(distance)
        values[:, take] = data[:, take]
        distance[take] = abs((when - target_date).days)
    return values, distance


def interpolate_in_time(
    target_date: date, observations: list[Observation], cancelled: CancelledFn = never_cancelled
) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation between the nearest usable earlier and later observation; where
    only one side has one, its value (nearest-date fallback). Returns (values, filled)."""
    before, d_before = nearest_side(target_date, observations, later=False)
    check_cancelled(cancelled)
    after, d_after = nearest_side(target_date, observations, later=True)
    has_before, has_after = np.isfinite(d_before), np.isfinite(d_after)
    both = has_before & has_after
    weight_after = np.zeros_like(d_before)
    weight_after[both] = d_before[both] / np.maximum(d_before[both] + d_after[both], 1e-9)
    weight_after[has_after & ~has_before] = 1.0
    values = before + (after - before) * weight_after
    return values, has_before | has_after


def fill_by_temporal_interpolation(
    target: TargetImage,
    target_date: date,
    others: list[OtherDate],
    output: str | Path,
    *,
    edge_correction: bool = False,
    block_size: int = 512,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> FillReport:
    """Fill the target's gaps from the other dates, block by block; with `edge_correction`,
    corrected to the target around each gap (`edge_correction.edge_corrected`)."""
    def compute(block: Block):
        return interpolate_in_time(target_date, block.sources, cancelled)

    return fill_from_dates(
        target, others, output, compute, edge_correction=edge_correction,
        block_size=block_size, progress=progress, cancelled=cancelled,
    )
