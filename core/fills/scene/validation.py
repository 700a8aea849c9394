"""Self-validation on the scene: windows with simulated gaps, every candidate scored on them.

Each sampled window is read with context around it. Its core is cut into blocks split into
training, selection and report. Whole real shapes are laid on the clear pixels, across block
borders, so simulated gaps are as large as real ones (a gap clipped to a block would be easier
than the real gaps: every pixel near an edge). One layout, the *evaluation* gaps, is scored on
the selection and report blocks only; further layouts, laid on the clear pixels the evaluation
gaps leave, are the training targets on the training blocks only. The evaluation gaps of the
selection and report blocks stay hidden in everything a network sees while it trains, so their
true values reach it only as the truth it is scored against, never as an input.

A small scene holds few evaluation pixels, and a choice on a few hundred is mostly luck; the
fills that learn nothing are then also ranked on further evaluation layouts on the same blocks
(never the report blocks, never the network: it has seen those pixels as inputs).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np

from ...evaluate.metrics import Metrics, MetricsAccumulator, Scaling
from ...evaluate.seams import boundary_jump
from ...raster.access import Window, crop
from ...raster.proximity import distance_to
from .inputs import SceneInputs, SceneWindow
from .layouts import TRAIN, ShapeSource, split_blocks, target_fraction

OUTSIDE = -1  # split label of the context around a window's core
MIN_BUFFER, MAX_BUFFER = 8, 32


def metric_scaling(samples: np.ndarray, integer: bool) -> tuple[Scaling, float]:
    """How scores compare values: Sentinel-2 DN / 10000 clipped to [0, 1] for integer images
    of DN, else as stored with the clear values' 0.5–99.5 % span as data range."""
    if integer and samples.size and np.percentile(samples, 99) > 100:
        return Scaling(), 1.0
    if not samples.size:
        return Scaling(divisor=1.0, clip=None), 1.0
    low, high = np.percentile(samples, (0.5, 99.5))
    return Scaling(divisor=1.0, clip=None), float(max(high - low, 1e-9))


@dataclass
class ValidationWindow:
    """One window: what is stored of it (its core plus the network's margin), the split labels,
    the evaluation gaps and the training layouts, all on the stored area."""

    area: Window  # stored area, in scene pixels
    core: Window  # the core inside the stored area
    truth: np.ndarray  # (bands, h, w) float32, NaN where the target has no data
    gap: np.ndarray  # real gaps
    split: np.ndarray  # TRAIN / STOP / SELECT / REPORT in the core, OUTSIDE around it
    blocks: np.ndarray  # block numbers in the core, OUTSIDE around it
    evaluation: np.ndarray  # simulated gaps of the selection and report blocks
    training: list[np.ndarray]  # further layouts, hidden everywhere, trained on in TRAIN
    trainable: np.ndarray  # where training targets may lie
    seen: np.ndarray  # how many other dates have a usable pixel there
    predictions: dict[str, np.ndarray] = field(default_factory=dict)  # float32, evaluation
    source: int = 0  # the sampled window it lays gaps on: its blocks are that window's
    margin: int = 0  # the scene's source margin: simulated gaps hide it too, as real ones do

    @property
    def hidden(self) -> np.ndarray:
        """What every candidate is denied while it is scored (evaluation gaps in every block,
        with their margin)."""
        return self.gap | self._grown(self.evaluation)

    @property
    def shown(self) -> np.ndarray:
        """The pixels a fill of the hidden ones would keep: all but the real and simulated gaps
        (the margin around them keeps its values)."""
        return ~(self.gap | self.evaluation) & np.isfinite(self.truth).all(axis=0)

    def _grown(self, simulated: np.ndarray) -> np.ndarray:
        """Simulated gaps and the clear pixels within the source margin of them, which the
        fills are denied as they are around the real gaps (`SceneInputs.source_margin`)."""
        return simulated if self.margin <= 0 else distance_to(simulated) <= self.margin

    def scored(self, *splits: int) -> np.ndarray:
        """Evaluation gaps of the blocks of `splits`."""
        return self.evaluation & np.isin(self.split, splits)

    def trained(self, layout: np.ndarray) -> np.ndarray:
        """The pixels of a training layout the loss is taken on: in the training blocks, away
        from the scored pixels by the buffer."""
        return layout & self.trainable

    def training_hidden(self, layout: np.ndarray) -> np.ndarray:
        """What a network is denied while it trains on `layout`: the real gaps, the layout and
        the evaluation gaps of the selection and report blocks, with their margin."""
        return self.gap | self._grown(layout | (self.evaluation & (self.split != TRAIN)))

    def training_layouts(self) -> list[np.ndarray]:
        """Every layout the network trains on: the evaluation layout itself (its pixels in the
        training blocks) and the further layouts."""
        return [self.evaluation, *self.training]


def read_window(
    inputs: SceneInputs, core: Window, context: int, margin: int
) -> tuple[SceneWindow, Window, Window]:
    """The window read with `context` around `core` (clipped to the scene), the stored area
    (core plus `margin`) inside it, and the core inside the stored area."""
    grid = inputs.target.grid
    x, y, w, h = core

    def around(pad: int) -> Window:
        x0, y0 = max(0, x - pad), max(0, y - pad)
        return x0, y0, min(grid.width, x + w + pad) - x0, min(grid.height, y + h + pad) - y0

    outer, stored = around(context), around(margin)
    scene = inputs.read(outer)
    in_outer = (stored[0] - outer[0], stored[1] - outer[1], stored[2], stored[3])
    core_in_stored = (x - stored[0], y - stored[1], w, h)
    return scene, in_outer, core_in_stored


def lay_layouts(
    scene: SceneWindow,
    stored: Window,
    core: Window,
    layouts: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray], np.ndarray]:
    """(split labels, block numbers, evaluation gaps, training layouts, where training targets
    may lie) on
    the stored area, from the real shapes of the window: its own gaps and every other date's."""
    area = scene.cropped(stored)
    height, width = area.shape
    split = np.full((height, width), OUTSIDE, dtype=np.int8)
    blocks = np.full((height, width), OUTSIDE, dtype=np.int32)
    cx, cy, cw, ch = core
    split[cy : cy + ch, cx : cx + cw], blocks[cy : cy + ch, cx : cx + cw] = split_blocks(
        ch, cw, rng
    )
    clear, shapes, fraction = _shapes(area, split)
    evaluation = shapes.lay(clear, fraction, rng)
    scored = evaluation & (split != TRAIN) & (split != OUTSIDE)
    training = [shapes.lay(clear & ~scored, fraction, rng) for _ in range(layouts)]
    trainable = (split == TRAIN) & (distance_to(scored) > buffer_width(area.gap, clear))
    return split, blocks, evaluation, training, trainable


def _shapes(area: SceneWindow, split: np.ndarray) -> tuple[np.ndarray, ShapeSource, float]:
    """The clear pixels of a window, the real shapes to lay on them and the share to hide."""
    clear = area.clear
    shapes = ShapeSource.of([area.gap] + [~usable for _, _, usable in area.observations])
    inside = split != OUTSIDE
    return clear, shapes, target_fraction(float(area.gap[inside].mean()) if inside.any() else 0.0)


def ranking_layouts(
    window: ValidationWindow, scene: SceneWindow, stored: Window, count: int,
    rng: np.random.Generator,
) -> list[ValidationWindow]:
    """`count` more evaluation layouts of a window, on its blocks, for ranking the fills that
    learn nothing (their arrays shared with the window's; no training layouts)."""
    clear, shapes, fraction = _shapes(scene.cropped(stored), window.split)
    return [
        replace(window, evaluation=shapes.lay(clear, fraction, rng), training=[], predictions={})
        for _ in range(count)
    ]


def buffer_width(gap: np.ndarray, clear: np.ndarray) -> float:
    """How far training targets stay from scored pixels: the median distance of the real gap
    pixels to the nearest clear pixel (8 to 32 px). A real gap pixel is that far from anything
    a network could have learnt at; a scored pixel next to a training target would be easier."""
    if not gap.any() or not clear.any():
        return float(MIN_BUFFER)
    distance = distance_to(clear)[gap]
    return float(np.clip(np.median(distance), MIN_BUFFER, MAX_BUFFER))


@dataclass
class Score:
    """A candidate's metrics on one split, and its seam ratio there."""

    metrics: Metrics
    seam: float

    @property
    def psnr(self) -> float:
        return self.metrics.psnr


def score(
    windows: Iterable[ValidationWindow],
    prediction: dict[int, np.ndarray],
    splits: tuple[int, ...],
    scaling: Scaling,
    data_range: float,
    ndvi_bands: tuple[int, int] | None = None,
    full: bool = True,
) -> Score:
    """Metrics of the predictions (window index → (bands, h, w)) on the evaluation gaps of the
    blocks of `splits`, pooled over the windows, and the boundary jump against the truth's;
    SSIM only when `full` (choices are made on PSNR; the report has every metric)."""
    windows = list(windows)
    accumulator = MetricsAccumulator(
        windows[0].truth.shape[0], scaling=scaling, data_range=data_range, ndvi_bands=ndvi_bands,
        ssim=full,
    )
    jump = truth_jump = 0.0
    pairs = truth_pairs = 0
    for index, window in enumerate(windows):
        where = window.scored(*splits)
        if not where.any():
            continue
        values = prediction[index]
        accumulator.add(np.nan_to_num(window.truth), values, where)
        visible = window.shown
        written = np.where(visible & window.hidden, window.truth, values)  # a margin keeps its own
        scaled, truth = scaling.apply(written), scaling.apply(window.truth)
        total, count = boundary_jump(scaled, where, visible)
        jump, pairs = jump + total, pairs + count
        total, count = boundary_jump(truth, where, visible)
        truth_jump, truth_pairs = truth_jump + total, truth_pairs + count
    seam = math.nan
    if pairs and truth_pairs and truth_jump > 0:
        seam = (jump / pairs) / (truth_jump / truth_pairs)
    return Score(accumulator.result(), seam)


def block_errors(
    windows: Iterable[ValidationWindow], name: str, split: int, scaling: Scaling
) -> dict[tuple[int, int], tuple[float, int]]:
    """(window, block) → (sum of squared errors, values) of a candidate on a split's blocks,
    over every layout laid on them."""
    errors: dict[tuple[int, int], tuple[float, int]] = {}
    for window in windows:
        where = window.scored(split)
        prediction = scaling.apply(window.predictions[name])
        truth = scaling.apply(window.truth)
        for block in np.unique(window.blocks[where]):
            pixels = where & (window.blocks == block)
            error = (prediction[:, pixels] - truth[:, pixels]) ** 2
            total, values = errors.get((window.source, int(block)), (0.0, 0))
            errors[(window.source, int(block))] = (
                total + float(np.nansum(error)), values + int(error.size)
            )
    return errors


def pixels_of(windows: Iterable[ValidationWindow], *splits: int) -> int:
    return int(sum(window.scored(*splits).sum() for window in windows))


def training_pixels(windows: Iterable[ValidationWindow]) -> int:
    return int(sum(
        sum(int(w.trained(layout).sum()) for layout in w.training_layouts()) for w in windows
    ))


def cropped_truth(scene: SceneWindow, stored: Window) -> np.ndarray:
    return crop(scene.target, stored).astype(np.float32)
