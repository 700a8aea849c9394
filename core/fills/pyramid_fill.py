"""Spatial fill by pyramid interpolation ("pull-push", Gortler et al. 1996), streamed by blocks.

Pull: the image is averaged 2×2 by 2×2 into coarser levels, each pixel weighted by how much
clear data it holds. Push: from the coarsest level down, every pixel keeps its own value in
proportion to its weight and takes the rest from the smoothed coarser level. Gaps are filled
with the mean of what surrounds them at the scale of the gap, without the wedges and streaks of
inverse-distance filling along the gap edges, in time linear in the pixels (no search).

On the finest `RELAXED_LEVELS` levels a few Jacobi steps of Laplace's equation then smooth the
fill into the clear pixels around it (a membrane between the gap edges), which removes the step
that plain pull-push leaves at a gap's edge.

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
RELAXED_LEVELS, RELAX_STEPS = 4, 4


def levels_for(max_distance: int) -> int:
    """Pyramid levels whose coarsest cell spans at least `max_distance` pixels."""
    if max_distance < 1:
        raise GapfillError(f"The maximum distance must be at least 1 pixel (got {max_distance}).")
    return max(1, math.ceil(math.log2(max_distance)))


def pyramid_halo(max_distance: int) -> int:
    """Context each block needs: the coarsest cell, plus how far the smoothing of every level
    reaches (one cell of each level: 2 + 4 + … + 2^levels)."""
    cell = 2 ** levels_for(max_distance)
    relaxation = RELAX_STEPS * (2**RELAXED_LEVELS - 1)
    return 3 * cell + -(-relaxation // cell) * cell  # a whole number of cells: blocks align


def _pull(values: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One coarser level: weighted 2×2 means and their weights (capped at 1)."""
    height, width = weight.shape
    rows, cols = -(-height // 2), -(-width // 2)
    pad = ((0, 2 * rows - height), (0, 2 * cols - width))
    weighted = np.pad(values * weight, ((0, 0), *pad)).reshape(-1, rows, 2, cols, 2).sum((2, 4))
    total = np.pad(weight, pad).reshape(rows, 2, cols, 2).sum((1, 3))
    mean = np.divide(weighted, total, out=np.zeros_like(weighted), where=total > 0)
    return mean, np.minimum(total, 1.0)


def _upsample(array: np.ndarray, axis: int, length: int) -> np.ndarray:
    """Twice as many samples along `axis` (cropped to `length`), each the 3-tap box mean of the
    nearest-neighbour upsampling: (1, 2)/3 of the two nearest coarse samples, edges repeated."""
    array = np.moveaxis(array, axis, -1)
    previous = np.concatenate([array[..., :1], array[..., :-1]], axis=-1)
    following = np.concatenate([array[..., 1:], array[..., -1:]], axis=-1)
    out = np.empty((*array.shape[:-1], 2 * array.shape[-1]), dtype=array.dtype)
    out[..., 0::2] = (previous + 2 * array) / 3
    out[..., 1::2] = (2 * array + following) / 3
    return np.moveaxis(out[..., :length], -1, axis)


def _push(
    fine: np.ndarray, weight: np.ndarray, coarse: np.ndarray, known: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Blend a level with the smoothed, upsampled coarser one (3×3 box of its nearest
    upsampling, computed separably on the coarse grid); `known` marks coarse pixels that hold
    a value (a normalised smoothing ignores the others)."""
    height, width = weight.shape
    support = _upsample(_upsample(known.astype(fine.dtype), 0, height), 1, width)
    smooth = _upsample(_upsample(coarse * known, -2, height), -1, width)
    np.divide(smooth, support, out=smooth, where=support > 0)
    smooth[..., support <= 0] = 0
    blended = weight * fine + (1 - weight) * smooth
    return blended, (weight > 0) | (support > 0)


def _four(array: np.ndarray) -> np.ndarray:
    """Sum of the four neighbours over the last two axes, edges repeated."""
    out = np.empty_like(array)
    out[..., 1:, :] = array[..., :-1, :]
    out[..., 0, :] = array[..., 0, :]
    out[..., :-1, :] += array[..., 1:, :]
    out[..., -1, :] += array[..., -1, :]
    out[..., :, 1:] += array[..., :, :-1]
    out[..., :, 0] += array[..., :, 0]
    out[..., :, :-1] += array[..., :, 1:]
    out[..., :, -1] += array[..., :, -1]
    return out


def _relax(
    values: np.ndarray, fine: np.ndarray, weight: np.ndarray, known: np.ndarray
) -> np.ndarray:
    """Jacobi steps of Laplace's equation where the level is not wholly clear: each pixel
    keeps its own share (`weight`) and takes the rest from the mean of its known neighbours.
    The pyramid runs in float32: it halves the work, and no DN needs more."""
    own = weight * fine
    rest = 1 - weight
    everywhere = bool(known.all())
    if not everywhere:
        mask = known.astype(values.dtype)
        count = _four(mask)
        inverse = np.divide(1.0, count, out=np.zeros_like(count), where=count > 0)
    for _ in range(RELAX_STEPS):
        if everywhere:
            neighbours = _four(values)
            neighbours *= 0.25
        else:
            neighbours = _four(values * mask) * inverse
            neighbours = np.where(count > 0, neighbours, values)
        neighbours *= rest
        neighbours += own
        values = neighbours
    return values


def pyramid_fill_arrays(
    data: np.ndarray,
    clear: np.ndarray,
    max_distance: int = DEFAULT_DISTANCE,
    cancelled: CancelledFn = never_cancelled,
) -> tuple[np.ndarray, np.ndarray]:
    """Fill every band of `data` (bands, h, w) where `clear` (h, w) is False. Returns (values,
    reached): clear pixels keep their values; unreached gap pixels are NaN."""
    values = np.where(clear, data, 0.0).astype(np.float32)
    weight = clear.astype(np.float32)
    levels = [(values, weight)]
    for _ in range(levels_for(max_distance)):
        check_cancelled(cancelled)
        values, weight = _pull(values, weight)
        levels.append((values, weight))
    coarse, known = levels[-1][0], levels[-1][1] > 0
    for level in range(len(levels) - 2, -1, -1):
        check_cancelled(cancelled)
        fine, fine_weight = levels[level]
        coarse, known = _push(fine, fine_weight, coarse, known)
        if level < RELAXED_LEVELS:
            coarse = _relax(coarse, fine, fine_weight, known)
    filled = np.where(known, coarse, np.nan).astype(np.float64)
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
