"""A fill from other dates corrected to the gap's edge.

Another date differs from the target by what changed in between (growth, harvest, haze, sun
and view angles), and much of that change is smooth in space. It can be measured where the
target is visible: on a ring of clear pixels around each gap, predicted by the fill as if they
were hidden. That difference, interpolated into the gap by pyramid interpolation, corrects the
fill, like Poisson image editing: the texture comes from the other dates, the level from the
target around the gap, and no step is left at the gap's edge. Where no ring pixel is within
reach the fill stays as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..progress import CancelledFn, ProgressFn, never_cancelled, no_progress
from ..raster.access import crop
from ..raster.fill_engine import Block, ComputeFn, FillReport, TargetImage, fill_image
from ..raster.morphology import dilate
from .pyramid_fill import aligned_pyramid_fill, levels_for, pyramid_halo

if TYPE_CHECKING:
    from .other_dates import OtherDate

EDGE_RING = 2  # pixels of the ring around each gap where the difference is measured
EDGE_DISTANCE = 64  # how far into a gap the difference is carried (pyramid's reach)


def edge_halo() -> int:
    """Context a block needs around it for the correction to be exact (ring, pyramid and
    one coarsest cell of alignment)."""
    return EDGE_RING + pyramid_halo(EDGE_DISTANCE) + 2 ** levels_for(EDGE_DISTANCE)


def edge_ring(hidden: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """The visible pixels within `EDGE_RING` of a hidden one."""
    return dilate(hidden, EDGE_RING) & visible


def correct_to_edges(
    prediction: np.ndarray,
    target: np.ndarray,
    hidden: np.ndarray,
    ring: np.ndarray,
    origin: tuple[int, int],
    cancelled: CancelledFn = never_cancelled,
) -> np.ndarray:
    """`prediction` (bands, h, w), made with the `ring` hidden too, corrected in the `hidden`
    pixels by the interpolated difference target − prediction on the ring; the visible pixels
    are the target's, unreached hidden ones stay NaN. `origin`: the window's first pixel in
    the image (blocks agree where they overlap)."""
    known = ring & np.isfinite(prediction).all(axis=0)
    difference = np.where(known, target - prediction, 0.0)
    correction, reached = aligned_pyramid_fill(
        difference, known, origin, EDGE_DISTANCE, cancelled
    )
    out = np.where(hidden & reached, prediction + correction, prediction)
    visible = ~hidden & np.isfinite(target).all(axis=0)
    out[:, visible] = target[:, visible]
    return out


def edge_corrected_prediction(
    predict: Callable[[np.ndarray], np.ndarray],
    target: np.ndarray,
    hidden: np.ndarray,
    origin: tuple[int, int],
    cancelled: CancelledFn = never_cancelled,
) -> np.ndarray:
    """`predict(hidden pixels)` (values, NaN where it reaches none) run with the ring hidden
    too, then corrected to the gap's edge (`correct_to_edges`)."""
    visible = ~hidden & np.isfinite(target).all(axis=0)
    ring = edge_ring(~visible, visible)  # also around pixels read as unknown (a source margin)
    return correct_to_edges(predict(hidden | ring), target, hidden, ring, origin, cancelled)


def edge_corrected(
    predict: Callable[[Block], tuple[np.ndarray, np.ndarray]],
    cancelled: CancelledFn = never_cancelled,
) -> ComputeFn:
    """A fill engine's compute: `predict` (values and filled over the whole block it is given,
    its gaps hidden), corrected to the gap's edge. Its blocks need `edge_halo()` more context
    than `predict`'s own."""

    def compute(block: Block) -> tuple[np.ndarray, np.ndarray]:
        height, width = block.gap.shape

        def over_block(hidden: np.ndarray) -> np.ndarray:
            whole = replace(block, window=block.outer, inner=(0, 0, width, height), gap=hidden)
            values, filled = predict(whole)
            return np.where(filled, values, np.nan)

        corrected = edge_corrected_prediction(
            over_block, block.data, block.gap, block.outer[:2], cancelled
        )
        reached = np.isfinite(corrected).all(axis=0)
        return crop(corrected, block.inner), crop(reached, block.inner)

    return compute


def fill_from_dates(
    target: TargetImage,
    others: list[OtherDate],
    output: str | Path,
    compute: Callable[[Block], tuple[np.ndarray, np.ndarray]],
    *,
    halo: int = 0,
    edge_correction: bool = False,
    block_size: int = 512,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> FillReport:
    """Stream the target through `compute` (its blocks' `sources`: every other date as an
    observation, read with `halo` of context), corrected to the gaps' edges when asked."""

    def read_sources(window):
        return [(other.date, *other.read(window)) for other in others]

    return fill_image(
        target,
        output,
        edge_corrected(compute, cancelled) if edge_correction else compute,
        read_sources=read_sources,
        halo=halo + (edge_halo() if edge_correction else 0),
        block_size=block_size,
        progress=progress,
        cancelled=cancelled,
    )
