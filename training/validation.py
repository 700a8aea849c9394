"""Validation: the loss and the Evaluate algorithm's metrics of a model on a patch split.

No torch here (predictions may come from ONNX Runtime); tensors are accepted and moved to numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.evaluate.metrics import NO_SCALING, Metrics, MetricsAccumulator, Scaling
from ..core.learned.model_card import BandScaling
from ..core.learned.scaling import unscale_bands
from ..core.progress import CancelledFn, check_cancelled, never_cancelled

METRIC_KEYS = ("mae", "rmse", "psnr", "ssim", "sam", "ndvi_mae")  # ndvi_mae: with B4 and B8


def metric_scaling(scalings: Sequence[BandScaling]) -> Scaling | None:
    """The Evaluate algorithm's scaling equal to a uniform band scaling (raw → network units),
    e.g. DN / 10000 clipped to [0, 1] for Sentinel-2; None when bands differ or use dB."""
    first = scalings[0]
    if any(item != first for item in scalings) or first.db:
        return None
    if first.clip_min is None or first.clip_max is None or first.scale <= 0:
        return None
    return Scaling(
        divisor=1.0 / first.scale,
        offset=-first.offset,
        clip=(
            (first.clip_min - first.offset) * first.scale,
            (first.clip_max - first.offset) * first.scale,
        ),
    )


@dataclass
class Validation:
    loss: float
    metrics: Metrics | None
    note: str = ""


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


def validate(
    predict: Callable[[Mapping[str, Any]], Any],
    loader: Iterator[Mapping[str, Any]] | Any,
    output_scaling: Sequence[BandScaling],
    bands: Sequence[str],
    loss: Callable[[Any, Mapping[str, Any]], float] | None = None,
    *,
    cancelled: CancelledFn = never_cancelled,
) -> Validation:
    """Loss and metrics over a validation loader; `predict(batch)` returns network values.

    Metrics are measured on the gap pixels whose truth is known (`evaluate`), on values scaled
    like the Evaluate algorithm scales them; when the split has no gap pixel at all, on every
    known pixel (the note says so).
    """
    scaling = metric_scaling(output_scaling)
    names = list(bands)
    ndvi = (names.index("B4"), names.index("B8")) if {"B4", "B8"} <= set(names) else None

    def accumulator() -> MetricsAccumulator:
        return MetricsAccumulator(
            len(names), scaling=scaling or NO_SCALING, data_range=1.0, ndvi_bands=ndvi
        )

    gaps, everything = accumulator(), accumulator()
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
            if scaling is None:
                filled, truth = predicted[index], reference[index].copy()
            else:
                filled = unscale_bands(predicted[index], output_scaling)
                truth = unscale_bands(reference[index], output_scaling)
            truth[:, ~known[index]] = np.nan
            if evaluate[index].any():
                gaps.add(truth, filled, evaluate[index])
                gap_pixels += int(evaluate[index].sum())
            if not gap_pixels and known[index].any():  # needed only while no gap is seen
                everything.add(truth, filled, known[index])
            count += 1
    mean_loss = (
        sum(value * size for value, size in losses) / max(1, sum(size for _, size in losses))
        if losses
        else math.nan
    )
    if count == 0:
        return Validation(mean_loss, None, "no validation patch")
    if gap_pixels:
        return Validation(mean_loss, gaps.result(), "gap pixels")
    if everything.evaluated.sum():
        return Validation(mean_loss, everything.result(), "all known pixels (no gap pixel)")
    return Validation(mean_loss, None, "no known pixel")


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        return value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=np.float32)
