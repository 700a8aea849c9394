"""The fills that compete on a scene: every applicable classical fill and bundled model.

A candidate predicts the target's bands on a window where `hidden` pixels are unknown (the real
gaps, plus the simulated ones while validating). Gap pixels a candidate cannot reach (no other
date there, too far from clear pixels) are completed by pyramid interpolation, so that every
candidate fills the same pixels and the scores compare; pixels beyond the pyramid's reach stay
NaN (no data in the output).
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ...learned.bundled_models import BundledModel, bundled_models
from ...learned.input_scale import checked_input
from ...learned.onnx_fill import fill_arrays
from ...learned.onnx_fill_raster import resolve_bands
from ...learned.onnx_session import LogFn, create_session, no_log
from ...progress import CancelledFn, ProgressFn, never_cancelled, no_progress
from ...raster.access import Window, crop
from ...raster.fill_engine import Block
from ...raster.value_range import sample_spread
from ..edge_correction import edge_corrected_prediction, edge_halo
from ..histogram_matched_fill import fill_matched
from ..pyramid_fill import (
    coarse_pyramid,
    pyramid_fill_arrays,
    pyramid_halo,
    streamed_halo,
)
from ..similar_pixels import SEARCH_HALO, similar_pixel_values, similarity_bands
from ..spatial_fill import fill_nodata_arrays
from ..temporal_interpolation import interpolate_in_time
from .inputs import SceneInputs, SceneWindow

Kind = Literal["classical", "bundled", "adapted"]
PYRAMID = "spatial pyramid"
IDW = "spatial IDW"
TEMPORAL = "temporal interpolation"
HISTOGRAM = "histogram matching"
WEIGHTED_HISTOGRAM = "weighted histogram matching"
REGRESSION = "local linear regression"
TEMPORAL_EDGES = "edge-corrected temporal interpolation"
HISTOGRAM_EDGES = "edge-corrected histogram matching"
SIMILAR = "similar pixels"
IDW_DISTANCE = 100  # Fill gaps spatially's default search distance
PYRAMID_DISTANCE = 256
HISTOGRAM_RADIUS, HISTOGRAM_MIN_PIXELS = 15, 50  # Fill gaps from other dates' defaults

Predict = Callable[[SceneWindow, np.ndarray, CancelledFn], np.ndarray]


@dataclass(frozen=True)
class Candidate:
    """A fill that competes: its name in the report, its kind, the context it reads around a
    window (pixels), and its prediction (bands, h, w), NaN where it reaches no value."""

    name: str
    kind: Kind
    halo: int
    predict: Predict


def _visible(window: SceneWindow, hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The target with hidden pixels zeroed, and where it is visible."""
    visible = ~hidden & np.isfinite(window.target).all(axis=0)
    return np.where(visible, window.target, 0.0), visible


def _pyramid(window: SceneWindow, hidden: np.ndarray, cancelled: CancelledFn) -> np.ndarray:
    data, visible = _visible(window, hidden)
    return pyramid_fill_arrays(data, visible, PYRAMID_DISTANCE, cancelled)[0]


def streamed_pyramid(
    inputs: SceneInputs, progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> tuple[Predict, int]:
    """The pyramid fill of the scene's real gaps for the final pass, block by block over the
    scene's coarse levels (built here, in one pass): (predict, context it needs)."""
    grid = inputs.target.grid
    coarse = coarse_pyramid(
        inputs.read_clear, (0, 0, grid.width, grid.height),
        PYRAMID_DISTANCE, progress=progress, cancelled=cancelled,
    )
    if coarse is None:
        return _pyramid, pyramid_halo(PYRAMID_DISTANCE)

    def predict(window: SceneWindow, hidden: np.ndarray, cancelled: CancelledFn) -> np.ndarray:
        data, visible = _visible(window, hidden)
        return coarse.fill(data, visible, window.window, cancelled)[0]

    return predict, streamed_halo()


def _inverse_distance(
    window: SceneWindow, hidden: np.ndarray, cancelled: CancelledFn
) -> np.ndarray:
    data, visible = _visible(window, hidden)
    values, reached = fill_nodata_arrays(data, visible, IDW_DISTANCE, 0, cancelled)
    values[:, visible] = data[:, visible]
    return np.where(reached | visible, values, np.nan)


def _temporal(inputs: SceneInputs) -> Predict:
    def predict(window: SceneWindow, hidden: np.ndarray, cancelled: CancelledFn) -> np.ndarray:
        data, visible = _visible(window, hidden)
        values, filled = interpolate_in_time(inputs.target_date, window.observations, cancelled)
        values[:, visible] = data[:, visible]
        return np.where(filled | visible, values, np.nan)

    return predict


def _histogram(inputs: SceneInputs, weighted: bool = False, regression: bool = False) -> Predict:
    """Histogram matching from the nearest date (`regression`: its local least-squares fit),
    or (`weighted`) from every date by its fit."""

    def predict(window: SceneWindow, hidden: np.ndarray, cancelled: CancelledFn) -> np.ndarray:
        data, visible = _visible(window, hidden)
        height, width = hidden.shape
        block = Block(window.window, (0, 0, width, height), data, ~visible, data, None)
        values, filled = fill_matched(
            inputs.target_date, block, window.observations, HISTOGRAM_RADIUS,
            HISTOGRAM_MIN_PIXELS, cancelled, weighted=weighted, regression=regression,
        )
        values[:, visible] = data[:, visible]
        return np.where(filled | visible, values, np.nan)

    return predict


def _similar(inputs: SceneInputs) -> Predict:
    """Every date through the pixels most like each gap pixel on it (`similar_pixels`)."""
    bands = similarity_bands(inputs.target.descriptions, inputs.target.bands)

    def predict(window: SceneWindow, hidden: np.ndarray, cancelled: CancelledFn) -> np.ndarray:
        data, visible = _visible(window, hidden)
        values, filled = similar_pixel_values(
            data, visible, window.observations, bands, window.window[:2], cancelled
        )
        values[:, visible] = data[:, visible]
        return np.where(filled | visible, values, np.nan)

    return predict


def _edge_corrected(fill: Predict) -> Predict:
    """`fill` corrected to the target around each gap (`edge_correction`)."""

    def predict(window: SceneWindow, hidden: np.ndarray, cancelled: CancelledFn) -> np.ndarray:
        return edge_corrected_prediction(
            lambda grown: fill(window, grown, cancelled), window.target, hidden,
            window.window[:2], cancelled,
        )

    return predict


def classical_candidates(inputs: SceneInputs) -> list[Candidate]:
    """Spatial fills always; temporal ones (histogram matching also from every date weighted
    by its fit, and the nearest date's local regression), as they are and corrected to the
    gap's edge, and similar pixels (where scipy is there), when other dates (and the target's
    date) are given."""
    found = [
        Candidate(PYRAMID, "classical", pyramid_halo(PYRAMID_DISTANCE), _pyramid),
        Candidate(IDW, "classical", IDW_DISTANCE, _inverse_distance),
    ]
    if inputs.dated:
        temporal, histogram = _temporal(inputs), _histogram(inputs)
        found += [
            Candidate(TEMPORAL, "classical", 0, temporal),
            Candidate(HISTOGRAM, "classical", HISTOGRAM_RADIUS, histogram),
            Candidate(WEIGHTED_HISTOGRAM, "classical", HISTOGRAM_RADIUS,
                      _histogram(inputs, weighted=True)),
            Candidate(REGRESSION, "classical", HISTOGRAM_RADIUS,
                      _histogram(inputs, regression=True)),
            Candidate(TEMPORAL_EDGES, "classical", edge_halo(), _edge_corrected(temporal)),
            Candidate(
                HISTOGRAM_EDGES, "classical", HISTOGRAM_RADIUS + edge_halo(),
                _edge_corrected(histogram),
            ),
        ]
        if importlib.util.find_spec("scipy") is not None:
            found.append(Candidate(SIMILAR, "classical", SEARCH_HALO, _similar(inputs)))
    return found


class _BundledPredictor:
    """A bundled model run in memory on a window, its bands mapped to the target's."""

    def __init__(self, model: BundledModel, inputs: SceneInputs, device: str, log: LogFn):
        self.card = model.card
        self.inputs = inputs
        self.session = create_session(model.path, device, log=log)
        target = inputs.target
        self.bands = [
            band - 1
            for band in resolve_bands(
                target.path, target.descriptions, self.card.output.bands, None, "target", log
            )
        ]
        spread = sample_spread(target.dataset, [band + 1 for band in self.bands])
        checked_input(self.card.input_for("target"), spread, target.path, "target image", log)
        self.sar_bands: list[int] = []
        if inputs.sar is not None and self.card.input_for("sar") is not None:
            sar = inputs.sar
            descriptions = [
                sar.dataset.GetRasterBand(i + 1).GetDescription() for i in range(sar.bands)
            ]
            wanted = self.card.input_for("sar").bands
            self.sar_bands = [
                b - 1 for b in resolve_bands(sar.path, descriptions, wanted, None, "SAR", log)
            ]

    def __call__(
        self, window: SceneWindow, hidden: np.ndarray, cancelled: CancelledFn
    ) -> np.ndarray:
        target = np.where(hidden, np.nan, window.target)
        sources: dict[str, Any] = {"target": target[self.bands]}
        for item in self.card.auxiliary_inputs:
            if item.role == "sar":
                sources["sar"] = window.sar[self.sar_bands]
            elif item.role in ("optical_before", "optical_after"):
                later = item.role == "optical_after"
                sources[item.role] = window.nearest(self.inputs.target_date, later)[self.bands]
            elif item.role == "dem":
                sources["dem"] = window.dem
        predicted = fill_arrays(
            self.session, self.card, sources, hidden, cancelled=cancelled
        ).astype(np.float64)
        values = np.full(window.target.shape, np.nan)
        values[self.bands] = predicted
        return values


def bundled_candidates(
    inputs: SceneInputs, device: str = "auto", log: LogFn = no_log
) -> list[Candidate]:
    """Every bundled model whose inputs this scene has and whose output covers every band."""
    found = []
    for model in bundled_models():
        if not model.roles <= inputs.roles or model.card.input_for("time_series") is not None:
            continue
        if len(model.card.output.bands) != inputs.target.bands:
            continue
        try:
            predictor = _BundledPredictor(model, inputs, device, log)
        except ValueError as error:  # bands that do not match: not a candidate here
            log(f"Bundled model {model.path.name} left out: {error}")
            continue
        halo = max(model.card.context_margin, 2 * model.card.size_multiple)
        found.append(Candidate(model.path.stem, "bundled", halo, predictor))
    return found


def predict_all(
    candidates: list[Candidate],
    window: SceneWindow,
    hidden: np.ndarray,
    cancelled: CancelledFn = never_cancelled,
    keep: Window | None = None,
    pyramid_fill: Predict = _pyramid,
    seconds: dict[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """Every candidate's prediction, its unreached pixels completed by the pyramid fill, cut
    to `keep` (a part of the window) as soon as it is made, so memory holds one whole one.
    `pyramid_fill`: how the pyramid is computed (`streamed_pyramid` in the final pass);
    `seconds`: each candidate's time is added there."""
    region = keep or (0, 0, window.shape[1], window.shape[0])
    timings = {} if seconds is None else seconds
    started = time.monotonic()
    pyramid = crop(pyramid_fill(window, hidden, cancelled), region)
    timings[PYRAMID] = timings.get(PYRAMID, 0.0) + time.monotonic() - started
    predictions = {}
    for candidate in candidates:
        started = time.monotonic()
        values = pyramid if candidate.name == PYRAMID else crop(
            candidate.predict(window, hidden, cancelled), region
        )
        predictions[candidate.name] = np.where(np.isnan(values), pyramid, values)
        if candidate.name != PYRAMID:
            timings[candidate.name] = (
                timings.get(candidate.name, 0.0) + time.monotonic() - started
            )
    return predictions
