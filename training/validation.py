"""Validation: the loss, the Evaluate algorithm's metrics and the health of each output band of
a model on a patch split.

Predictions are brought back to raw units with the output's scaling (`unscale_bands`, clipped
to its bounds as the fill engine does) and compared as 'Evaluate fill' compares them
(Sentinel-2 DN / 10000 clipped to [0, 1]). A band whose predictions on the gap pixels are
stuck at a clip bound, or do not vary where the truth does, has collapsed: `BandHealth` says
so, and training warns about it and refuses to export such a model unless forced.

No torch here (predictions may come from ONNX Runtime); tensors are accepted and moved to numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.evaluate.metrics import NO_SCALING, SENTINEL2_REFLECTANCE, Metrics, MetricsAccumulator
from ..core.evaluate.metrics import Scaling as MetricScaling
from ..core.learned.model_card import BandScaling
from ..core.learned.scaling import unscale_bands
from ..core.progress import CancelledFn, check_cancelled, never_cancelled
from .datasets import DN_RANGE, REFLECTANCE_RANGE, PatchDataset

METRIC_KEYS = ("mae", "rmse", "psnr", "ssim", "sam", "ndvi_mae")  # ndvi_mae: with B4 and B8
STUCK_FRACTION = 0.5  # of the gap pixels at a clip bound (where the truth hardly is): stuck
FLAT_RATIO = 0.01  # prediction spread below this share of the truth's: no variance
MIN_PIXELS = 50  # fewer evaluated pixels than this: no verdict on a band


def evaluation_scaling(scalings: Sequence[BandScaling]) -> MetricScaling | None:
    """How 'Evaluate fill' compares raw values of an output with these band scalings:
    Sentinel-2 DN / 10000 clipped to [0, 1] when the bands are clipped to [0, 10000],
    reflectance clipped to [0, 1] when clipped to [0, 1]; None otherwise (the metrics are
    then measured on network values)."""
    if any(item.db for item in scalings):
        return None
    bounds = {(item.clip_min, item.clip_max) for item in scalings}
    if bounds == {DN_RANGE}:
        return SENTINEL2_REFLECTANCE
    if bounds == {REFLECTANCE_RANGE}:
        return MetricScaling(divisor=1.0, clip=REFLECTANCE_RANGE)
    return None


@dataclass(frozen=True)
class BandHealth:
    """How one output band's predictions behave on the evaluated pixels, in raw units."""

    band: str
    pixels: int
    mean: float
    std: float
    truth_std: float
    at_bound: float  # fraction of the predictions at a clip bound
    truth_at_bound: float
    bound: float | None  # the bound most predictions sit at

    @property
    def collapsed(self) -> str:
        """Why the band has collapsed ('' when it has not)."""
        if self.pixels < MIN_PIXELS:
            return ""
        if self.at_bound >= STUCK_FRACTION and self.truth_at_bound < 0.05:
            return f"stuck at the bound {self.bound:g} on {self.at_bound:.0%} of the pixels"
        if self.truth_std > 0 and self.std <= FLAT_RATIO * self.truth_std:
            return f"flat ({self.mean:.4g} ± {self.std:.2g}; truth ± {self.truth_std:.3g})"
        return ""


def collapsed_bands(health: Sequence[BandHealth]) -> dict[str, str]:
    """Band → why it collapsed, for the bands that did."""
    return {item.band: item.collapsed for item in health if item.collapsed}


def collapse_warning(collapsed: Mapping[str, str], where: str) -> str:
    """The loud message about collapsed bands."""
    listing = ", ".join(f"{band} {reason}" for band, reason in collapsed.items())
    return (
        f"WARNING: output band(s) {', '.join(collapsed)} collapsed {where} (no variance, or "
        f"stuck at a bound): {listing}. Such a model fills them with one flat value: train "
        "longer (more epochs or samples per epoch), or check that those bands hold data."
    )


class HealthAccumulator:
    """Per-band sums of predictions and truths on evaluated pixels, and counts at bounds."""

    def __init__(self, scalings: Sequence[BandScaling], bands: Sequence[str]) -> None:
        self.bands = list(bands)
        count = len(self.bands)
        self.low = np.array([-np.inf if s.clip_min is None else s.clip_min for s in scalings])
        self.high = np.array([np.inf if s.clip_max is None else s.clip_max for s in scalings])
        span = np.where(np.isfinite(self.high - self.low), self.high - self.low, 0.0)
        self.tolerance = 1e-4 * span
        self.sums = np.zeros((5, count))  # n, Σp, Σp², Σt, Σt²
        self.bound_counts = np.zeros((3, count))  # predictions at low, at high; truth at either

    def add(self, predicted: np.ndarray, truth: np.ndarray, where: np.ndarray) -> None:
        p, t = predicted[:, where].astype(np.float64), truth[:, where].astype(np.float64)
        if not p.size:
            return
        self.sums += [
            np.full(len(p), p.shape[1]), p.sum(1), (p * p).sum(1), t.sum(1), (t * t).sum(1)
        ]
        low, high = (self.low + self.tolerance)[:, None], (self.high - self.tolerance)[:, None]
        self.bound_counts += [
            (p <= low).sum(1), (p >= high).sum(1), ((t <= low) | (t >= high)).sum(1)
        ]

    def result(self) -> tuple[BandHealth, ...]:
        n, sp, spp, st, stt = self.sums
        bands = []
        for index, band in enumerate(self.bands):
            count = max(n[index], 1.0)
            mean = sp[index] / count
            std = math.sqrt(max(spp[index] / count - mean**2, 0.0))
            truth_mean = st[index] / count
            truth_std = math.sqrt(max(stt[index] / count - truth_mean**2, 0.0))
            at_low, at_high, truth_bound = self.bound_counts[:, index] / count
            bound = self.low[index] if at_low >= at_high else self.high[index]
            bands.append(
                BandHealth(
                    band,
                    int(n[index]),
                    float(mean),
                    std,
                    truth_std,
                    float(max(at_low, at_high)),
                    float(truth_bound),
                    float(bound) if math.isfinite(bound) else None,
                )
            )
        return tuple(bands)


@dataclass
class Validation:
    loss: float
    metrics: Metrics | None
    note: str = ""
    health: tuple[BandHealth, ...] = ()


def metrics_row(metrics: Metrics | None) -> dict[str, Any]:
    """The overall metrics as plain Python numbers (None when not measured)."""
    keys = METRIC_KEYS
    if metrics is None:
        return {**dict.fromkeys(keys), "evaluated": 0}
    values = {key: getattr(metrics, key) for key in keys}
    return {
        **{key: None if value is None else float(value) for key, value in values.items()},
        "evaluated": int(metrics.evaluated),
    }


def ndvi_bands(bands: Sequence[str]) -> tuple[int, int] | None:
    names = list(bands)
    return (names.index("B4"), names.index("B8")) if {"B4", "B8"} <= set(names) else None


def accumulator(bands: Sequence[str], scaling: MetricScaling | None) -> MetricsAccumulator:
    """The Evaluate algorithm's metrics of raw values of these bands (`evaluation_scaling`)."""
    return MetricsAccumulator(
        len(bands), scaling=scaling or NO_SCALING, data_range=1.0, ndvi_bands=ndvi_bands(bands)
    )


def validate(
    predict: Callable[[Mapping[str, Any]], Any],
    loader: Iterator[Mapping[str, Any]] | Any,
    output_scaling: Sequence[BandScaling],
    bands: Sequence[str],
    loss: Callable[[Any, Mapping[str, Any]], float] | None = None,
    *,
    cancelled: CancelledFn = never_cancelled,
) -> Validation:
    """Loss, metrics and band health over a validation loader; `predict(batch)` returns
    network values.

    Metrics are measured on the gap pixels whose truth is known (`evaluate`), on raw values
    scaled like the Evaluate algorithm scales them; when the split has no gap pixel at all, on
    every known pixel (the note says so).
    """
    scaling = evaluation_scaling(output_scaling)
    gaps, everything = accumulator(bands, scaling), accumulator(bands, scaling)
    gap_health = HealthAccumulator(output_scaling, bands)
    known_health = HealthAccumulator(output_scaling, bands)
    losses, count, gap_pixels = [], 0, 0
    for batch in loader:
        check_cancelled(cancelled)
        prediction = predict(batch)
        if loss is not None:
            losses.append((loss(prediction, batch), len(batch["reference"])))
        predicted = _numpy(prediction)
        reference = _numpy(batch["reference"])
        known = _numpy(batch["known"])[:, 0] == 1
        evaluate = _numpy(batch["evaluate"])[:, 0] == 1
        for index in range(predicted.shape[0]):
            filled = unscale_bands(predicted[index], output_scaling)
            truth = unscale_bands(reference[index], output_scaling)
            if scaling is None:
                filled, truth = predicted[index], reference[index].copy()
            truth[:, ~known[index]] = np.nan
            if evaluate[index].any():
                gaps.add(truth, filled, evaluate[index])
                gap_health.add(filled, truth, evaluate[index])
                gap_pixels += int(evaluate[index].sum())
            if not gap_pixels and known[index].any():  # needed only while no gap is seen
                everything.add(truth, filled, known[index])
                known_health.add(filled, truth, known[index])
            count += 1
    mean_loss = (
        sum(value * size for value, size in losses) / max(1, sum(size for _, size in losses))
        if losses
        else math.nan
    )
    if count == 0:
        return Validation(mean_loss, None, "no validation patch")
    if gap_pixels:
        return Validation(mean_loss, gaps.result(), "gap pixels", gap_health.result())
    if everything.evaluated.sum():
        return Validation(
            mean_loss,
            everything.result(),
            "all known pixels (no gap pixel)",
            known_health.result(),
        )
    return Validation(mean_loss, None, "no known pixel")


def batches(dataset: PatchDataset, size: int) -> Iterator[dict[str, Any]]:
    """Stacked samples, without torch."""
    for start in range(0, len(dataset), size):
        samples = [dataset[index] for index in range(start, min(start + size, len(dataset)))]
        yield _stack(samples)


def _stack(samples: Sequence[Any]) -> Any:
    if isinstance(samples[0], dict):
        return {key: _stack([sample[key] for sample in samples]) for key in samples[0]}
    return np.stack(samples)


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        return value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=np.float32)
