"""Inputs on the scale the model card expects, checked cheaply before a model runs: values on
another scale are refused with the fix, linear SAR backscatter where the card wants dB is
converted (said in the log), and a card whose output scaling cannot give the target's values
is refused."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..errors import GapfillError
from ..raster.value_range import Spread, looks_like_linear_backscatter
from .model_card import BandScaling, ModelCard, ModelInput
from .onnx_session import LogFn

NETWORK_REACH = 20.0  # network values beyond ±this are not expected from unbounded scalings
TOO_SMALL = 200.0  # values this many times smaller than the expected span: another scale
OUTSIDE_SHARE = 0.5  # at most this share of values more than one span outside the range


def expected_range(scalings: Sequence[BandScaling]) -> tuple[float, float]:
    """The raw values a card's scaling is made for (dB when the input must already be dB):
    its clip bounds, else what maps to network values within ±NETWORK_REACH."""
    lows, highs = [], []
    for scaling in scalings:
        reach = NETWORK_REACH / abs(scaling.scale) if scaling.scale else float("inf")
        lows.append(scaling.offset - reach if scaling.clip_min is None else scaling.clip_min)
        highs.append(scaling.offset + reach if scaling.clip_max is None else scaling.clip_max)
    return min(lows), max(highs)


def _wants_db(scalings: Sequence[BandScaling]) -> bool:
    low, high = expected_range(scalings)
    return not any(s.db for s in scalings) and low <= -10 and high <= 10


def checked_input(
    item: ModelInput, spread: Spread | None, path: str, label: str, log: LogFn
) -> ModelInput:
    """`item` as the fill should use it for these values: unchanged, or converting linear
    backscatter to dB; values on another scale raise a `GapfillError` that says what to do."""
    if spread is None or any(s.db for s in item.scaling):
        return item  # no valid value, or the card converts linear values itself
    low, high = expected_range(item.scaling)
    if _wants_db(item.scaling) and looks_like_linear_backscatter(spread):
        log(
            f"The {label} '{path}' holds values of {spread.text()}, linear backscatter, where "
            f"the model expects dB ({low:g} to {high:g}): converted to dB (10·log10); zero or "
            "negative backscatter has no dB value and counts as no data."
        )
        return dataclasses.replace(
            item, scaling=tuple(dataclasses.replace(s, db=True) for s in item.scaling)
        )
    span = high - low
    small = spread.magnitude < span / TOO_SMALL and spread.high - spread.low < span / TOO_SMALL
    if small or _outside_share(spread, low - span, high + span) > OUTSIDE_SHARE:
        raise GapfillError(
            f"The {label} '{path}' holds values of {spread.text()} (1st to 99th percentile), "
            f"but the model expects {low:g} to {high:g} for its {item.role} input: the values "
            "are on another scale (e.g. reflectance 0–1 where digital numbers 0–10000 are "
            "expected, or another quantity altogether). Scale the layer to the model's units "
            "(Prepare › Scale raster / Unscale raster) or choose a model made for this data."
        )
    return item


def _outside_share(spread: Spread, low: float, high: float) -> float:
    """A rough share of values outside [low, high] from three percentiles."""
    points = (spread.low, spread.median, spread.high)
    return sum(not low <= value <= high for value in points) / len(points)


def check_output_scale(card: ModelCard, source: str) -> None:
    """Refuse a card whose output scaling cannot give values like its target input's (e.g. a
    scale that sends every pixel to the type's maximum)."""
    same = next((i for i in card.inputs if i.bands == card.output.bands), None)
    if same is None:
        return
    low, high = expected_range(card.output.scaling)
    in_low, in_high = expected_range(same.scaling)
    spans = (high - low, in_high - in_low)
    if min(spans) > 0 and max(spans) / min(spans) <= 100 and low < in_high and high > in_low:
        return
    raise GapfillError(
        f"The card of {source} is inconsistent: its output scaling gives values of {low:g} to "
        f"{high:g}, while its {same.role} input, the same bands, expects {in_low:g} to "
        f"{in_high:g}. Every filled pixel would be wrong; export the model again with the "
        "scaling it was trained with."
    )
