"""Where a scene is validated: sample windows, their blocks split into training, stopping,
selection and report, and real cloud shapes laid on their clear pixels.

Training blocks teach the adapted network; stopping blocks pick its state and the scale of its
correction; selection blocks decide, block by block, whether it beats the fill it corrects (and
rank the fills that learn nothing); report blocks are scored once, after every choice.

Shapes come from the scene itself (its real gap mask, the other dates' masks in the same window),
flipped and shifted with wrap-around, so simulated gaps have the sizes and outlines the real
ones have; only when the scene holds too few shapes are smooth random blobs added.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...evaluate.simulate_gaps import FLIPS, MaskLayout, lay_mask
from ...raster.access import Window
from ...raster.morphology import box_mean

TRAIN, SELECT, REPORT, STOP = 0, 1, 2, 3
SPLIT_NAMES = {TRAIN: "training", STOP: "stopping", SELECT: "selection", REPORT: "report"}
SHARES = {STOP: 0.125, SELECT: 0.1875, REPORT: 0.1875}  # the rest trains
MIN_FRACTION, MAX_FRACTION = 0.2, 0.5  # of the clear pixels a layout hides
MAX_COPIES = 12
USEFUL_PATTERN = (0.002, 0.9)  # a pattern covering more than this hides everything when laid


def block_size(height: int, width: int) -> int:
    """Side of the split blocks: a quarter of the window, between 32 and 256 pixels (gaps are
    not clipped to them; training targets keep a buffer from the scored pixels)."""
    return int(np.clip(min(height, width) // 4, 32, 256))


def split_blocks(
    height: int, width: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(h, w) int8 split labels by square blocks (at least one block of each split when there
    are enough blocks) and (h, w) int32 block numbers."""
    size = block_size(height, width)
    rows, cols = -(-height // size), -(-width // size)
    count = rows * cols
    order = rng.permutation(count)
    labels = np.full(count, TRAIN, dtype=np.int8)
    start = 0
    for split, share in SHARES.items():
        take = max(1, round(share * count)) if count >= len(SHARES) + 1 else 0
        labels[order[start : start + take]] = split
        start += take
    cell = np.ones((size, size), dtype=np.int32)
    numbers = np.kron(np.arange(count, dtype=np.int32).reshape(rows, cols), cell)
    return labels[numbers][:height, :width], numbers[:height, :width]


def target_fraction(gap_fraction: float) -> float:
    """Share of the clear pixels a layout hides: like the scene's real gaps, within bounds."""
    return float(np.clip(gap_fraction, MIN_FRACTION, MAX_FRACTION))


def _blobs(shape: tuple[int, int], fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth random blobs covering about `fraction` of the window."""
    radius = max(4, min(shape) // 16)
    field = rng.random(shape)
    for _ in range(3):
        field = box_mean(field, radius)
    return field >= np.quantile(field, 1.0 - fraction)


@dataclass
class ShapeSource:
    """The real cloud shapes of one window, drawn from at random."""

    patterns: list[np.ndarray]

    @classmethod
    def of(cls, masks: list[np.ndarray]) -> ShapeSource:
        low, high = USEFUL_PATTERN
        return cls([mask for mask in masks if low <= mask.mean() <= high])

    def lay(
        self, region: np.ndarray, fraction: float, rng: np.random.Generator
    ) -> np.ndarray:
        """Simulated gaps inside `region` (the clear pixels where gaps may go) covering about
        `fraction` of it: copies of real shapes, flipped and shifted, until enough is hidden;
        a copy that alone would hide far too much is skipped."""
        height, width = region.shape
        goal = fraction * region.sum()
        laid = np.zeros_like(region)
        for _ in range(MAX_COPIES if self.patterns else 0):
            if laid.sum() >= goal:
                break
            pattern = self.patterns[rng.integers(len(self.patterns))]
            layout = MaskLayout(
                shift=(int(rng.integers(width)), int(rng.integers(height))),
                flip=FLIPS[rng.integers(len(FLIPS))],
            )
            copy = lay_mask(pattern, width, height, layout) & region & ~laid
            if laid.sum() + copy.sum() <= 1.5 * goal:
                laid |= copy
        if laid.sum() < 0.5 * goal:
            laid |= _blobs(region.shape, fraction, rng) & region
        return laid


def sample_windows(
    width: int, height: int, size: int, count: int, rng: np.random.Generator
) -> list[Window]:
    """The whole image when it is small (at most `count` windows of `size`² pixels), else
    candidate windows of `size` pixels on a regular grid in a random order, for the caller to
    keep the first `count` that hold both clear pixels and gaps."""
    if width * height <= count * size * size:
        return [(0, 0, width, height)]
    xs = range(0, max(width - size, 0) + 1, size)
    ys = range(0, max(height - size, 0) + 1, size)
    grid = [(x, y, min(size, width - x), min(size, height - y)) for y in ys for x in xs]
    return [grid[i] for i in rng.permutation(len(grid))]
