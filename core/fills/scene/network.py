"""The network adapted to a scene: a residual on the best candidate, trained on the scene.

Inputs: the target with its hidden pixels zeroed and where it is visible, the distance to the
nearest visible pixel, the two best candidates' predictions (the other dates come in through
the temporal fills among them: given raw as well, they cost the network its win on the demo's
scene), the SAR and the DEM, each band standardised on the scene. Output: a correction added
to the best candidate. The last layer starts at zero, so before training the network *is* that
candidate; the state kept is the best on the selection blocks (the untrained one included),
and its correction is then shrunk by the factor that scores best there. So on the selection
blocks it can only be as good as or better than the candidate it starts from.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ...dependencies import require
from ...errors import Cancelled
from ...progress import CancelledFn, ProgressFn, check_cancelled, never_cancelled, no_progress
from ...raster.morphology import box_sum
from ..torch_device import deterministic, resolve_device

if TYPE_CHECKING:
    from .inputs import SceneWindow

PURPOSE = "Fill gaps, learned from this scene"
WIDTH, LEVELS = 24, 4
MULTIPLE = 2 ** (LEVELS - 1)
MARGIN = 48  # context each output pixel needs (its receptive half-width is about 40 px)
CROP = 128
LEARNING_RATE = 2e-3
PATIENCE = 12  # selection checks without progress before training stops
SHRINK = (0.25, 0.5, 0.75, 1.0)
DISTANCE_SCALE = 32.0  # pixels: the distance channel is log1p(distance / scale)
# The SAR is read as its mean over (2r+1)² pixels, as SAR is multilooked before use: raw, its
# speckle is learnt as texture (make demo's single-date scene at 1150 steps: more pale blotches
# in the large gaps); on sen12mscr (c) gap filling 32.89 dB against 32.80 (BENCHMARKS.md).
SAR_SMOOTHING = 2
CHECKS_AFTER = len(SHRINK) + 1  # selection checks' worth of work after the training


@dataclass(frozen=True)
class Standardiser:
    """Per-band (value − centre) / spread, robust (median and inter-percentile range)."""

    centre: np.ndarray
    spread: np.ndarray

    @classmethod
    def fit(cls, samples: np.ndarray) -> Standardiser:
        """From (bands, n) valid samples."""
        if samples.shape[1] == 0:
            bands = samples.shape[0]
            return cls(np.zeros(bands), np.ones(bands))
        centre = np.median(samples, axis=1)
        low, high = np.percentile(samples, (2, 98), axis=1)
        return cls(centre, np.maximum((high - low) / 4.0, 1e-6))

    def apply(self, values: np.ndarray) -> np.ndarray:
        return (values - self.centre[:, None, None]) / self.spread[:, None, None]

    def invert(self, values: np.ndarray) -> np.ndarray:
        return values * self.spread[:, None, None] + self.centre[:, None, None]

    def to_json(self) -> dict[str, list[float]]:
        return {"centre": self.centre.tolist(), "spread": self.spread.tolist()}


@dataclass
class FeatureSpec:
    """What the network reads, and how each layer is standardised."""

    target: Standardiser
    base: str  # the candidate it corrects
    second: str | None  # another candidate given as input
    sar: Standardiser | None = None
    dem: Standardiser | None = None

    @property
    def channels(self) -> int:
        bands = len(self.target.centre)
        count = bands + 2 + bands * (2 if self.second else 1)
        if self.sar is not None:
            count += len(self.sar.centre) + 1
        if self.dem is not None:
            count += len(self.dem.centre)
        return count

    def features(
        self, window: SceneWindow, hidden: np.ndarray, predictions: dict[str, np.ndarray]
    ) -> np.ndarray:
        """(channels, h, w) float32 for one window and its hidden pixels."""
        from ...raster.proximity import distance_to  # GDAL: features are built beside the data

        visible = ~hidden & np.isfinite(window.target).all(axis=0)
        scaled = np.where(visible, self.target.apply(np.nan_to_num(window.target)), 0.0)
        distance = np.log1p(distance_to(visible) / DISTANCE_SCALE)
        parts = [scaled, visible[None], distance[None]]
        parts += [self._prediction(predictions[self.base])]
        if self.second:
            parts.append(self._prediction(predictions[self.second]))
        if self.sar is not None:
            valid = np.isfinite(window.sar).all(axis=0)
            parts += [np.where(valid, self.sar.apply(despeckled(window.sar)), 0.0), valid[None]]
        if self.dem is not None:
            parts.append(np.nan_to_num(self.dem.apply(window.dem)))
        return np.concatenate(parts).astype(np.float32)

    def _prediction(self, values: np.ndarray) -> np.ndarray:
        return np.nan_to_num(self.target.apply(values))

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target.to_json(),
            "base": self.base,
            "second": self.second,
            "sar": self.sar.to_json() if self.sar else None,
            "dem": self.dem.to_json() if self.dem else None,
            "sar_smoothing": SAR_SMOOTHING,
        }


def despeckled(sar: np.ndarray) -> np.ndarray:
    """The SAR bands (NaN where not valid) as their local means over the valid pixels
    (`SAR_SMOOTHING`), as the network reads them; NaN where they were."""
    valid = np.isfinite(sar).all(axis=0)
    count = np.maximum(box_sum(valid.astype(np.float64), SAR_SMOOTHING), 1.0)
    means = np.stack([box_sum(np.where(valid, band, 0.0), SAR_SMOOTHING) for band in sar]) / count
    return np.where(valid, means, np.nan)


@dataclass
class Example:
    """One window under one layout of hidden pixels: features, the base candidate (scaled),
    the truth (scaled) and where the loss (or the score) is taken."""

    features: np.ndarray
    base: np.ndarray
    truth: np.ndarray
    where: np.ndarray


def build_network(channels: int, bands: int, width: int = WIDTH, levels: int = LEVELS) -> Any:
    """A U-Net of `levels` resolutions, two 3×3 convolutions each, a zero-initialised head."""
    torch = require("torch", PURPOSE)
    nn = torch.nn

    def convs(a: int, b: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(a, b, 3, padding=1, padding_mode="reflect"), nn.LeakyReLU(0.1),
            nn.Conv2d(b, b, 3, padding=1, padding_mode="reflect"), nn.LeakyReLU(0.1),
        )

    class ResidualUNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.down = nn.ModuleList(
                [convs(channels, width)] + [convs(width, width) for _ in range(levels - 1)]
            )
            self.up = nn.ModuleList([convs(2 * width, width) for _ in range(levels - 1)])
            self.head = nn.Conv2d(width, bands, 1)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

        def forward(self, x):
            skips = []
            for index, layer in enumerate(self.down):
                if index:
                    x = nn.functional.avg_pool2d(x, 2)
                x = layer(x)
                skips.append(x)
            for layer, skip in zip(self.up, reversed(skips[:-1]), strict=True):
                x = nn.functional.interpolate(x, size=skip.shape[-2:], mode="bilinear")
                x = layer(torch.cat([x, skip], 1))
            return self.head(x)

    return ResidualUNet()


def _padded(array: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """Reflect-pad the last two axes to the network's size multiple."""
    height, width = array.shape[-2:]
    pad_h, pad_w = -height % MULTIPLE, -width % MULTIPLE
    if pad_h or pad_w:
        mode = "reflect" if min(height, width) > max(pad_h, pad_w) else "edge"
        array = np.pad(array, [(0, 0)] * (array.ndim - 2) + [(0, pad_h), (0, pad_w)], mode=mode)
    return array, (height, width)


@dataclass
class AdaptedNetwork:
    """A trained correction and how to feed it; `shrink` scales the correction."""

    spec: FeatureSpec
    network: Any
    device: str
    shrink: float = 1.0
    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    stopped_by: str = "steps"

    def correction(self, features: np.ndarray) -> np.ndarray:
        """The scaled correction (bands, h, w) for (channels, h, w) features."""
        torch = require("torch", PURPOSE)
        padded, (height, width) = _padded(features)
        with torch.no_grad():
            tensor = torch.from_numpy(np.ascontiguousarray(padded))[None].to(self.device)
            out = self.network(tensor)[0, :, :height, :width]
        return out.cpu().numpy().astype(np.float64)

    def predict(
        self, window: SceneWindow, hidden: np.ndarray, predictions: dict[str, np.ndarray]
    ) -> np.ndarray:
        """The corrected base candidate (bands, h, w) in the target's units."""
        features = self.spec.features(window, hidden, predictions)
        base = self.spec.target.apply(predictions[self.spec.base])
        return self.spec.target.invert(base + self.shrink * self.correction(features))


ScoreFn = Callable[[AdaptedNetwork], float]  # the network as it is → its selection score


def _augment(rng: np.random.Generator, *arrays: np.ndarray) -> list[np.ndarray]:
    """The same random flip and quarter turn of every array's last two axes."""
    turns, flip = int(rng.integers(4)), bool(rng.integers(2))
    out = []
    for array in arrays:
        array = np.rot90(array, turns, axes=(-2, -1))
        out.append(np.ascontiguousarray(array[..., ::-1] if flip else array))
    return out


def _crop(example: Example, rng: np.random.Generator) -> tuple[np.ndarray, ...] | None:
    """A random square crop holding loss pixels (None when the example has none)."""
    height, width = example.where.shape
    size = min(CROP, height, width) // MULTIPLE * MULTIPLE
    if size < MULTIPLE or not example.where.any():
        return None
    for _ in range(8):
        y, x = int(rng.integers(height - size + 1)), int(rng.integers(width - size + 1))
        where = example.where[y : y + size, x : x + size]
        if where.any():
            window = (slice(y, y + size), slice(x, x + size))
            return (
                example.features[(slice(None), *window)].astype(np.float32),
                example.base[(slice(None), *window)],
                example.truth[(slice(None), *window)], where,
            )
    return None


def train_adapted(
    spec: FeatureSpec,
    training: list[Example],
    selection: ScoreFn,
    *,
    budget_seconds: float,
    max_steps: int | None = None,
    seed: int = 0,
    device: str = "auto",
    threads: int = 2,
    initial_state: dict[str, Any] | None = None,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> AdaptedNetwork:
    """Train on `training` until the budget, `max_steps` or no progress on the selection score
    (`selection(network)`, higher is better), from `initial_state` (a saved network's weights)
    or from a network that equals the base candidate; keep the best state (the first one
    included), then the best shrink factor (0 when none beats the base candidate)."""
    torch = require("torch", PURPOSE)
    device = resolve_device(device, PURPOSE)
    usable = [example for example in training if example.where.any()]
    bands = len(spec.target.centre)
    with deterministic(seed, threads, PURPOSE):
        rng = np.random.default_rng(seed)
        network = build_network(spec.channels, bands).to(device)
        if initial_state is not None:
            network.load_state_dict(initial_state)
        adapted = AdaptedNetwork(spec, network, device)
        network.eval()
        start = time.monotonic()
        best_score = selection_score = selection(adapted)
        check_seconds = time.monotonic() - start
        adapted.shrink = 0.0
        base_score = selection(adapted) if initial_state is not None else selection_score
        adapted.shrink = 1.0
        best_state = {k: v.clone() for k, v in network.state_dict().items()}
        adapted.history.append({"step": 0, "selection": selection_score, "loss": math.nan})
        optimiser = torch.optim.Adam(network.parameters(), lr=LEARNING_RATE)
        step, checks_without_progress, losses = 0, 0, []
        interval, stopped_by = 50, "steps"
        while usable:
            if max_steps is not None and step >= max_steps:
                break
            # the budget holds what follows the training too: the shrink factors' checks and
            # the windows' predictions, each about one selection check
            if time.monotonic() - start + CHECKS_AFTER * check_seconds >= budget_seconds:
                stopped_by = "time budget"
                break
            if cancelled():
                raise Cancelled("the run was cancelled")
            crop = _crop(usable[step % len(usable)], rng)
            step += 1
            if crop is None:
                continue
            features, base, truth, where = _augment(rng, *crop)
            network.train()
            to = lambda a: torch.from_numpy(a)[None].to(device)  # noqa: E731
            prediction = to(base) + network(to(features))
            weight = to(where[None].astype(np.float32))
            loss = ((prediction - to(truth)).abs() * weight).sum() / (weight.sum() * bands)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
            fraction = step / max_steps if max_steps else 0.0
            progress(min(1.0, max(fraction, (time.monotonic() - start) / budget_seconds)))
            if step % interval:
                continue
            network.eval()
            checked = time.monotonic()
            selection_score = selection(adapted)
            check_seconds = time.monotonic() - checked
            adapted.history.append(
                {"step": step, "selection": selection_score, "loss": float(np.mean(losses))}
            )
            losses = []
            if max_steps is None:  # bounded by time: checks take at most a fifth of it
                per_step = (checked - start) / step
                interval = max(50, int(4 * check_seconds / max(per_step, 1e-6)) // 50 * 50)
            # bounded by steps, the checks stay every 50 steps: the same run on any machine
            if selection_score > best_score + 1e-3:
                best_score, checks_without_progress = selection_score, 0
                best_state = {k: v.clone() for k, v in network.state_dict().items()}
            else:
                checks_without_progress += 1
                if checks_without_progress >= PATIENCE:
                    stopped_by = "no progress on the selection blocks"
                    break
            check_cancelled(cancelled)
        network.load_state_dict(best_state)
        network.eval()
        adapted.steps, adapted.stopped_by = step, stopped_by
        scores = {}
        for factor in SHRINK:
            adapted.shrink = factor
            scores[factor] = selection(adapted)
        adapted.shrink = max(scores, key=lambda f: (scores[f], -f))
        if scores[adapted.shrink] <= base_score:
            adapted.shrink = 0.0
    return adapted
