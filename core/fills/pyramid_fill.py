"""Spatial fill by pyramid interpolation ("pull-push", Gortler et al. 1996), streamed by blocks.

Pull: the image is averaged 2×2 by 2×2 into coarser levels, each pixel weighted by how much
clear data it holds. Push: from the coarsest level down, every pixel keeps its own value in
proportion to its weight and takes the rest from the smoothed coarser level. Gaps are filled
with the mean of what surrounds them at the scale of the gap, without the wedges and streaks of
inverse-distance filling along the gap edges, in time linear in the pixels (no search).

The pyramid stops at level `levels_for(max_distance)`: a gap pixel farther than about
`max_distance` from any clear pixel stays unfilled, like the search distance of inverse-distance
filling. Because every level's cells sit on one grid, a block read with `pyramid_halo` pixels
around it, its origin on that grid, gives exactly the whole-image result.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import GapfillError
from ..progress import CancelledFn, ProgressFn, check_cancelled, never_cancelled, no_progress
from ..raster.access import crop
from ..raster.fill_engine import Block, FillReport, TargetImage, fill_image

DEFAULT_DISTANCE = 256


def levels_for(max_distance: int) -> int:
    """Pyramid levels whose coarsest cell spans at least `max_distance` pixels."""
    if max_distance < 1:
        raise GapfillError(f"The maximum distance must be at least 1 pixel (got {max_distance}).")
    return max(1, math.ceil(math.log2(max_distance)))


def pyramid_halo(max_distance: int) -> int:
    """Context each block needs: the coarsest cell, plus how far the smoothing of every level
    reaches (one cell of each level: 2 + 4 + … + 2^levels)."""
    cell = 2 ** levels_for(max_distance)
    return 3 * cell


def _pull(values: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One coarser level: weighted 2×2 means and their weights (capped at 1)."""
    height, width = weight.shape
    rows, cols = -(-height // 2), -(-width // 2)
    pad = ((0, 2 * rows - height), (0, 2 * cols - width))
    weighted = np.pad(values * weight, ((0, 0), *pad)).reshape(-1, rows, 2, cols, 2).sum((2, 4))
    total = np.pad(weight, pad).reshape(rows, 2, cols, 2).sum((1, 3))
    mean = np.divide(weighted, total, out=np.zeros_like(weighted), where=total > 0)
    return mean, np.minimum(total, 1.0)


def _box3(array: np.ndarray) -> np.ndarray:
    """3×3 sum of the last two axes, edges repeated."""
    height, width = array.shape[-2:]
    padded = np.pad(array, [(0, 0)] * (array.ndim - 2) + [(1, 1), (1, 1)], mode="edge")
    return sum(
        padded[..., dy : dy + height, dx : dx + width] for dy in range(3) for dx in range(3)
    )


def _push(
    fine: np.ndarray, weight: np.ndarray, coarse: np.ndarray, known: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Blend a level with the smoothed, upsampled coarser one; `known` marks coarse pixels that
    hold a value (a normalised smoothing ignores the others)."""
    height, width = weight.shape
    up_values = np.repeat(np.repeat(coarse * known, 2, axis=-2), 2, axis=-1)[..., :height, :width]
    up_known = np.repeat(np.repeat(known, 2, axis=0), 2, axis=1)[:height, :width].astype(float)
    support = _box3(up_known)
    smooth = np.divide(
        _box3(up_values), support, out=np.zeros_like(up_values), where=support > 0
    )
    blended = weight * fine + (1.0 - weight) * smooth
    return blended, (weight > 0) | (support > 0)


def pyramid_fill_arrays(
    data: np.ndarray,
    clear: np.ndarray,
    max_distance: int = DEFAULT_DISTANCE,
    cancelled: CancelledFn = never_cancelled,
) -> tuple[np.ndarray, np.ndarray]:
    """Fill every band of `data` (bands, h, w) where `clear` (h, w) is False. Returns (values,
    reached): clear pixels keep their values; unreached gap pixels are NaN."""
    values = np.where(clear, data, 0.0).astype(np.float64)
    weight = clear.astype(np.float64)
    levels = [(values, weight)]
    for _ in range(levels_for(max_distance)):
        check_cancelled(cancelled)
        values, weight = _pull(values, weight)
        levels.append((values, weight))
    coarse, known = levels[-1][0], levels[-1][1] > 0
    for fine, fine_weight in reversed(levels[:-1]):
        check_cancelled(cancelled)
        coarse, known = _push(fine, fine_weight, coarse, known)
    filled = np.where(known, coarse, np.nan)
    filled[:, clear] = data[:, clear]
    return filled, known


def fill_by_pyramid(
    target: TargetImage,
    output: str | Path,
    *,
    max_distance: int = DEFAULT_DISTANCE,
    block_size: int = 1024,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> FillReport:
    """Fill the gaps of `target` by pyramid interpolation, up to about `max_distance` pixels
    from the clear pixels; blocks are aligned on the pyramid's coarsest cells."""
    cell = 2 ** levels_for(max_distance)
    block_size = max(cell, block_size // cell * cell)

    def compute(block: Block):
        values, reached = pyramid_fill_arrays(block.data, ~block.gap, max_distance, cancelled)
        return crop(values, block.inner), crop(reached, block.inner)

    return fill_image(
        target,
        output,
        compute,
        halo=pyramid_halo(max_distance),
        block_size=block_size,
        require_clear=True,
        progress=progress,
        cancelled=cancelled,
    )
