"""Fill gaps, learned from this scene: self-validated, never worse than the best classical fill
on the scene's own selection blocks, with its accuracy on report blocks and a confidence layer.

1. Sample windows of the scene (all of it when small) and lay real cloud shapes on their clear
   pixels: evaluation gaps on selection and report blocks, training layouts on training blocks.
2. Every applicable classical fill and bundled model predicts the evaluation gaps; the best
   two on the selection blocks feed a network adapted to the scene, trained within the time
   budget on the training layouts, which corrects the best one.
3. The best candidate on the selection blocks is chosen; then, once, every candidate is scored
   on the report blocks. A confidence model is fitted on the errors of the choice outside the
   report blocks and checked on them.
4. The chosen candidate fills the real gaps of the whole scene, streamed by blocks (only gap
   pixels change), with the confidence layer in the same pass.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ...dependencies import require
from ...errors import GapfillError, MissingDependencyError
from ...evaluate.metrics import Scaling
from ...learned.onnx_session import LogFn, no_log
from ...masks.haze_fringe import HAZE_BANDS, HazeFringe, measure_haze_fringe
from ...progress import CancelledFn, ProgressFn, check_cancelled, never_cancelled, no_progress
from ...raster.access import Grid, Window, crop, expand_window
from ...raster.fill_engine import Block, FillReport, SideOutput, fill_image, has_gaps
from ...raster.sentinel2_bands import band_indices, band_names
from ..pyramid_fill import COARSE_SHARE
from .candidates import (
    HISTOGRAM,
    IDW,
    PYRAMID,
    TEMPORAL,
    Candidate,
    bundled_candidates,
    classical_candidates,
    predict_all,
    streamed_pyramid,
)
from .confidence import ConfidenceModel, calibration_warning, pixel_features
from .inputs import SceneInputs, SceneWindow
from .layouts import REPORT, SELECT, STOP, TRAIN, sample_windows
from .network import (
    MARGIN,
    AdaptedNetwork,
    Example,
    FeatureSpec,
    Standardiser,
    despeckled,
    train_adapted,
)
from .saved_network import SavedNetwork
from .validation import (
    Score,
    ValidationWindow,
    block_errors,
    cropped_truth,
    lay_layouts,
    metric_scaling,
    pixels_of,
    ranking_layouts,
    read_window,
    score,
    training_pixels,
)

ADAPTED = "adapted network"
CONTEXT = 128  # pixels read around a sampled window for the candidates' context
MIN_SCORED = 200  # evaluation pixels a split needs before its scores mean anything
REPORT_COST = 2.2  # report scoring / ranking scoring: 22.0 s / 10.2 s, 2048² with two dates
MIN_TRAINING_SHARE = 0.1  # of the budget, left for training after the examples, or no network
CONFIDENCE_BANDS = ["expected absolute error", "90 % upper bound of the absolute error"]


@dataclass(frozen=True)
class SceneSettings:
    """How much the fill learns: a time budget for learning (the final fill comes on top),
    an optional step limit (reproducible runs), the sample of a large scene."""

    budget_minutes: float = 5.0
    max_steps: int | None = None
    seed: int = 0
    device: str = "auto"
    windows: int = 6
    window_size: int = 512
    layouts: int = 4
    bundled: bool = True
    adapt: bool = True
    threads: int = 2
    block_size: int = 1024  # of the final fill: the pyramid's context is a smaller share of it
    source_margin: int | None = None  # px around the gaps no fill reads; None: measured haze


DEFAULT_SETTINGS = SceneSettings()
MEASURED = -1  # the source margin's value for "measured on the scene" (Processing, CLI, jobs)
MAX_SOURCE_MARGIN = 64
BUDGET_RANGE = (0.1, 600.0)  # minutes a user may give for learning (Processing, CLI, jobs)


def budget_setting(minutes: float) -> float:
    """A time budget as a user gives it (Processing, CLI, jobs), checked."""
    low, high = BUDGET_RANGE
    if not low <= minutes <= high:
        raise GapfillError(
            f"The time budget {minutes:g} min is out of range: give {low:g} to {high:g} minutes."
        )
    return minutes


def margin_setting(value: int) -> int | None:
    """A source margin as given (px, or `MEASURED`) as `SceneSettings` takes it."""
    if not MEASURED <= value <= MAX_SOURCE_MARGIN:
        raise GapfillError(
            f"The source margin {value} is out of range: give {MEASURED} (measured on the "
            f"scene), 0 (every clear pixel is read) or up to {MAX_SOURCE_MARGIN} px."
        )
    return None if value == MEASURED else value


@dataclass
class CandidateResult:
    """Scores of a candidate: `ranking` on the training and selection blocks (fills that learn
    nothing from the scene are ranked on both: more pixels, steadier), `selection` on the
    selection blocks alone (where a trained network is compared), `report` after the choice."""

    name: str
    kind: str
    selection: Score | None = None
    ranking: Score | None = None
    report: Score | None = None

    @property
    def rank(self) -> float:
        return _psnr(self.ranking if self.ranking is not None else self.selection)


@dataclass
class SceneResult:
    """What the run found and did, for the log, the report and the algorithm's outputs."""

    fill: FillReport
    chosen: str
    candidates: list[CandidateResult]
    scaling: Scaling
    data_range: float
    windows: int
    pixels: dict[str, int]
    network: dict[str, Any] | None = None
    confidence: dict[str, Any] | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    source_margin: int = 0  # px around the gaps no fill read (haze the mask missed)
    confidence_layer: str | None = None  # the confidence layer written, if one was

    def result_of(self, name: str) -> CandidateResult:
        return next(c for c in self.candidates if c.name == name)

    @property
    def best_classical(self) -> CandidateResult:
        classical = [c for c in self.candidates if c.kind == "classical"]
        return max(classical, key=lambda c: c.rank)

    def summary(self) -> list[str]:
        """The three lines of the log."""
        chosen, classical = self.result_of(self.chosen), self.best_classical
        if chosen.selection is None:
            return [self.notes[0], f"Chosen: {self.chosen}, not validated.",
                    "No report: nothing was measured on this scene."]
        names = ", ".join(c.name for c in self.candidates)
        line1 = (
            f"Learned from this scene: {self.pixels['training']} simulated-gap pixels to train, "
            f"{self.pixels['selection']} to choose, {self.pixels['report']} to report, in "
            f"{self.windows} window(s); candidates: {names}."
        )
        line2 = (
            f"Chosen: {self.chosen} (selection PSNR {_psnr(chosen.selection):.2f} dB; best "
            f"classical, {classical.name}: {_psnr(classical.selection):.2f} dB there)."
        )
        if chosen.report is None:
            line3 = "Too few report pixels to say how good the fill is on this scene."
        else:
            line3 = (
                f"On the report blocks (never used to train or choose): {self.chosen} "
                f"{_text(chosen.report)}"
                + (", the best classical fill." if chosen is classical else
                   f"; {classical.name} {_text(classical.report)}.")
            )
            if self.confidence:
                line3 += (
                    f" Confidence layer: rank correlation with the true error "
                    f"{self.confidence['report']['rank_correlation']:.2f}, the 90 % bound "
                    f"holds for {100 * self.confidence['report']['coverage_90']:.0f} % of pixels."
                )
        return [line1, line2, line3]


def _psnr(score_: Score | None) -> float:
    return -math.inf if score_ is None or math.isnan(score_.psnr) else score_.psnr


def _text(score_: Score | None) -> str:
    if score_ is None:
        return "not scored"
    sam = score_.metrics.sam
    return f"PSNR {score_.psnr:.2f} dB" + (f", SAM {sam:.2f}°" if sam is not None else "")


class _Stages:
    """Progress over the stages of a run, each a share of the whole."""

    def __init__(self, progress: ProgressFn, shares: dict[str, float]) -> None:
        self.progress, self.shares, self.done = progress, shares, 0.0

    def stage(self, name: str) -> ProgressFn:
        start, share = self.done, self.shares[name]
        self.done += share
        return lambda fraction: self.progress(start + share * min(max(fraction, 0.0), 1.0))


def _ndvi_bands(inputs: SceneInputs) -> tuple[int, int] | None:
    """Red and near-infrared indices when the target is a Sentinel-2 image, for NDVI errors."""
    try:
        names = band_names(inputs.target.descriptions)
        indices = band_indices(names, ["B4", "B8"], "The NDVI error")
    except GapfillError:
        return None
    return indices["B4"], indices["B8"]


Sampled = list[tuple[SceneWindow, Window, Window]]  # each read: (scene, stored area, core)


def _sample(
    inputs: SceneInputs,
    settings: SceneSettings,
    rng: np.random.Generator,
    cancelled: CancelledFn,
) -> Sampled:
    """The windows read for validation, each (scene, stored area, core)."""
    grid = inputs.target.grid
    chosen = []
    for core in sample_windows(
        grid.width, grid.height, settings.window_size, settings.windows, rng
    ):
        check_cancelled(cancelled)
        scene, stored, inner = read_window(inputs, core, CONTEXT, MARGIN)
        area = scene.cropped(stored)
        clear = area.clear
        if clear.mean() < 0.05 and len(chosen) + 1 < settings.windows:
            continue  # mostly gaps: another window teaches more
        chosen.append((scene, stored, inner))
        if len(chosen) == settings.windows:
            break
    return chosen


def _clear_samples(sampled: Sampled, bands: int) -> np.ndarray:
    """Up to 20,000 clear pixels of each window (bands, n): the scale of the scene's values."""
    samples = []
    for scene, stored, _ in sampled:
        area = scene.cropped(stored)
        clear = area.clear
        samples.append(area.target[:, clear][:, :: max(1, clear.sum() // 20000)])
    return np.concatenate(samples, axis=1) if samples else np.zeros((bands, 0))


# The final fill with the adapted network may take at most this many learning budgets.
FINAL_FILL_BUDGETS = 2


def _final_fill_estimate(grid: Grid, windows: list[ValidationWindow], seconds: float) -> float:
    """Seconds to fill the whole scene from `seconds` a fill (the network: with every
    candidate) took on the sampled windows, scaled by area (the streamed pyramid of the final
    pass costs less than the windows' own)."""
    sampled = sum(w.truth.shape[1] * w.truth.shape[2] for w in windows)
    return seconds * grid.width * grid.height / max(sampled, 1)


def _affordable_first(
    ranked: list[CandidateResult], seconds: dict[str, float], grid: Grid,
    windows: list[ValidationWindow], budget_minutes: float, notes: list[str], log: LogFn,
) -> list[CandidateResult]:
    """The ranking, with a first fill whose fill of the whole scene (its time on the sampled
    windows, scaled to the scene) would take more than `FINAL_FILL_BUDGETS` learning budgets
    moved behind the first one that would not (similar pixels on a large scene on a laptop);
    the note says so."""
    allowed = FINAL_FILL_BUDGETS * 60.0 * budget_minutes
    estimate = {r.name: _final_fill_estimate(grid, windows, seconds.get(r.name, 0.0))
                for r in ranked}
    if estimate[ranked[0].name] <= allowed:
        return ranked
    affordable = next((r for r in ranked if estimate[r.name] <= allowed), None)
    if affordable is None:
        return ranked
    first = ranked[0]
    notes.append(
        f"{first.name} ranked first, but filling the whole scene with it would take about "
        f"{estimate[first.name] / 60:.0f} min on this machine, more than {FINAL_FILL_BUDGETS} "
        f"times the budget: {affordable.name} fills instead. Give a budget of "
        f"{math.ceil(estimate[first.name] / 60 / FINAL_FILL_BUDGETS)} min or more to use it."
    )
    log(notes[-1])
    return [affordable, *(r for r in ranked if r is not affordable)]


def _off_the_haze(
    inputs: SceneInputs,
    sampled: Sampled,
    margin: int | None,
    notes: list[str],
    log: LogFn,
) -> tuple[SceneInputs, Sampled]:
    """The scene read with the source margin (`margin`, or the haze measured around the gaps
    of the sampled windows), and those windows read again with it."""
    if margin is None:
        fringe = _haze_fringe(inputs, sampled)
        margin = fringe.margin
        if margin:
            notes.append(fringe.message())
        log(fringe.message())
    elif margin:
        log(f"Clear pixels within {margin} px of the gaps are not used as sources (as set).")
    if not margin:
        return inputs, sampled
    inputs = replace(inputs, source_margin=margin)
    return inputs, [(inputs.read(scene.window), stored, inner) for scene, stored, inner in sampled]


def _haze_fringe(inputs: SceneInputs, sampled: Sampled) -> HazeFringe:
    try:
        bands = band_indices(band_names(inputs.target.descriptions), list(HAZE_BANDS), "")
    except GapfillError:
        return HazeFringe(0, None)
    areas = [scene.cropped(stored) for scene, stored, _ in sampled]
    return measure_haze_fringe([(a.target, a.gap) for a in areas], *bands.values())


def _unvalidated_choice(candidates: list[Candidate]) -> Candidate:
    """Without clear pixels to learn from: histogram matching when other dates exist (of the
    fills from other dates the one that needs fewest clear pixels: from a handful, regression
    would flatten the gap to their mean, matching keeps the date's texture), else a bundled
    model (it needs no clear pixels), else pyramid interpolation."""
    by_name = {c.name: c for c in candidates}
    if HISTOGRAM in by_name:
        return by_name[HISTOGRAM]
    bundled = [c for c in candidates if c.kind == "bundled"]
    return bundled[0] if bundled else by_name[PYRAMID]


def _auxiliary_standardiser(windows: list[SceneWindow], kind: str) -> Standardiser | None:
    arrays = [getattr(w, kind) for w in windows]
    if arrays[0] is None:
        return None
    if kind == "sar":
        arrays = [despeckled(a) for a in arrays]
    flat = np.concatenate([a.reshape(a.shape[0], -1) for a in arrays], axis=1)
    return Standardiser.fit(flat[:, np.isfinite(flat).all(axis=0)][:, ::7])


def _stopping_psnr(
    windows: list[ValidationWindow], examples: list[Example], spec: FeatureSpec,
    scaling: Scaling, data_range: float,
) -> Callable[[AdaptedNetwork], float]:
    """PSNR of the network on the stopping blocks' gaps, pooled over the windows."""

    def psnr(network: AdaptedNetwork) -> float:
        total, count = 0.0, 0
        for window, example in zip(windows, examples, strict=True):
            if not example.where.any():
                continue
            correction = network.correction(example.features.astype(np.float32))
            values = spec.target.invert(example.base + network.shrink * correction)
            error = scaling.apply(values[:, example.where]) - scaling.apply(
                window.truth[:, example.where]
            )
            total += float((error**2).sum())
            count += error.size
        mse = total / max(count, 1)
        return math.inf if mse == 0 else 10 * math.log10(data_range**2 / mse)

    return psnr


def fill_scene(
    inputs: SceneInputs,
    output: str | Path,
    settings: SceneSettings = DEFAULT_SETTINGS,
    *,
    confidence_output: str | Path | None = None,
    start_from: SavedNetwork | None = None,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
    log: LogFn = no_log,
) -> tuple[SceneResult, dict[str, Any]]:
    """Validate every candidate on the scene, fill its gaps with the best, and return what was
    found (and the chosen candidate's pieces, for the report and the saved model). The adapted
    network starts from `start_from` when given (a network saved on a neighbouring scene)."""
    started = time.monotonic()
    deadline = started + 60.0 * settings.budget_minutes
    stages = _Stages(progress, {"sample": 0.05, "candidates": 0.15, "training": 0.45,
                                "report": 0.05, "fill": 0.30})
    rng = np.random.default_rng(settings.seed)
    target = inputs.target

    notes: list[str] = []
    if not has_gaps(target, cancelled=cancelled):  # a clear scene: minutes of learning for nothing
        return _copy_of_a_clear_scene(inputs, output, settings, confidence_output, notes,
                                      stages.stage("fill"), cancelled, log)
    inputs, sampled = _off_the_haze(
        inputs, _sample(inputs, settings, rng, cancelled), settings.source_margin, notes, log
    )
    samples = _clear_samples(sampled, target.bands)
    integer = not np.issubdtype(target.dtype, np.floating)
    scaling, data_range = metric_scaling(samples, integer)
    candidates = classical_candidates(inputs)
    if settings.bundled:
        try:
            candidates += bundled_candidates(inputs, settings.device, log)
        except MissingDependencyError as error:
            notes.append(f"Bundled models left out: {error}")
    if start_from is not None:
        _check_start(start_from, inputs, candidates)
    windows: list[ValidationWindow] = []
    sample_stage = stages.stage("sample")
    for index, (scene, stored, inner) in enumerate(sampled):
        split, blocks, evaluation, training, trainable = lay_layouts(
            scene, stored, inner, settings.layouts, rng
        )
        area = scene.cropped(stored)
        windows.append(ValidationWindow(
            stored, inner, cropped_truth(scene, stored), area.gap, split, blocks, evaluation,
            training, trainable, dates_seeing(area), source=index, margin=inputs.source_margin,
        ))
        sample_stage((index + 1) / len(sampled))
    pixels = {"training": training_pixels(windows), "selection": pixels_of(windows, SELECT),
              "report": pixels_of(windows, REPORT)}
    if pixels["selection"] < MIN_SCORED:
        fallback = _unvalidated_choice(candidates)
        notes.append(
            f"Not validated: the scene has too few clear pixels to learn from "
            f"({pixels['selection']} selection pixels after laying simulated gaps, at least "
            f"{MIN_SCORED} are needed); {fallback.name} fills it, and how well is not known."
        )
        log(notes[-1])
        _no_confidence_layer(confidence_output, TOO_FEW_ERRORS, notes, log)
        result = SceneResult(
            FillReport(), fallback.name, [CandidateResult(c.name, c.kind) for c in candidates],
            scaling, data_range, len(windows), pixels, notes=notes,
            source_margin=inputs.source_margin,
        )
        result.fill = _final_fill(
            inputs, output, candidates, fallback.name, None, None, None, None, settings,
            stages.stage("fill"), cancelled,
        )
        return result, {"windows": windows, "network": None, "confidence": None}

    candidate_stage = stages.stage("candidates")
    candidates_started = time.monotonic()
    candidate_seconds: dict[str, float] = {}
    for index, (window, (scene, stored, _)) in enumerate(zip(windows, sampled, strict=True)):
        hidden = _on_scene(window.hidden, scene, stored)
        predictions = predict_all(
            candidates, scene, hidden, cancelled, keep=stored, seconds=candidate_seconds
        )
        window.predictions = {k: v.astype(np.float32) for k, v in predictions.items()}
        candidate_stage((index + 1) / len(windows))
    candidates_seconds = time.monotonic() - candidates_started
    ranking_windows = windows + _ranking_layouts(
        windows, sampled, candidates, pixels["selection"], settings.seed, cancelled
    )
    pixels["ranking"] = pixels_of(ranking_windows, TRAIN, STOP, SELECT)
    if len(ranking_windows) > len(windows):
        log(f"Few selection pixels: the fills that learn nothing are ranked on "
            f"{len(ranking_windows) // len(windows) - 1} more layouts of simulated gaps "
            f"({pixels['ranking']} pixels).")
    ndvi = _ndvi_bands(inputs)

    def scored(name: str, *splits: int, among: list[ValidationWindow] = windows) -> Score:
        predictions = {i: w.predictions[name] for i, w in enumerate(among)}
        return score(among, predictions, splits, scaling, data_range, ndvi, REPORT in splits)

    ranking_started = time.monotonic()
    results = [
        CandidateResult(c.name, c.kind, scored(c.name, SELECT),
                        scored(c.name, TRAIN, STOP, SELECT, among=ranking_windows))
        for c in candidates
    ]
    # the report blocks' scores (all metrics) after the training cost about REPORT_COST times
    # this ranking on the sampled windows' layouts: the training leaves that much of the
    # budget to them
    report_reserve = REPORT_COST * (time.monotonic() - ranking_started) * (
        len(windows) / len(ranking_windows)
    )
    ranked = sorted(results, key=lambda r: r.rank, reverse=True)
    log("Ranking PSNR (every block but the report ones): "
        + ", ".join(f"{r.name} {r.rank:.2f} dB" for r in ranked))
    ranked = _with_prior(ranked, ranking_windows, scaling, log)
    ranked = _affordable_first(
        ranked, candidate_seconds, target.grid, windows, settings.budget_minutes, notes, log
    )
    del ranking_windows  # their predictions: up to the windows' size again

    network, network_info = None, None
    training_stage = stages.stage("training")
    if settings.adapt:
        try:
            require("torch", "The network adapted to the scene")
            # a new network is built only when the budget leaves it time to train once its
            # examples (the two fills it corrects, on every training layout) are made; a
            # saved one corrects as it is
            examples = _examples_seconds(windows, candidate_seconds, ranked)
            left = deadline - report_reserve - time.monotonic() - examples
            if start_from is not None or left > MIN_TRAINING_SHARE * 60 * settings.budget_minutes:
                network = _adapt(
                    inputs, windows, sampled, candidates, ranked, samples, scaling,
                    data_range, settings, deadline - report_reserve, start_from,
                    training_stage, cancelled,
                )
            if network is not None and network.steps == 0 and start_from is None:
                network = None  # untrained, it is its base fill: nothing to choose or score
            if (network is None or network.steps == 0) and settings.max_steps != 0:
                notes.append(budget_spent_note(
                    settings.budget_minutes, time.monotonic() - started, len(windows),
                    candidate_seconds,
                ))
                log(notes[-1])
        except MissingDependencyError as error:
            notes.append(f"No network adapted to the scene: {error}")
    if network is not None:
        network_started = time.monotonic()
        for window, (scene, stored, _) in zip(windows, sampled, strict=True):
            area = scene.cropped(stored)
            window.predictions[ADAPTED] = network.predict(
                area, window.hidden, {k: v.astype(np.float64) for k, v in
                                      window.predictions.items()}
            ).astype(np.float32)
        final_estimate = _final_fill_estimate(
            target.grid, windows, candidates_seconds + time.monotonic() - network_started
        )
        results.append(CandidateResult(ADAPTED, "adapted", scored(ADAPTED, SELECT)))
        better, blocks = _blocks_won(windows, ADAPTED, network.spec.base, scaling)
        accepted = network.shrink > 0 and blocks > 0 and better >= required_wins(blocks)
        if accepted and final_estimate > FINAL_FILL_BUDGETS * 60.0 * settings.budget_minutes:
            accepted = False
            notes.append(
                f"The adapted network won on the selection blocks, but filling the whole scene "
                f"with it (it and every candidate on each block) would take about "
                f"{final_estimate / 60:.0f} min on this device, more than "
                f"{FINAL_FILL_BUDGETS} times the budget: {network.spec.base} fills instead. "
                "Give a larger budget, or a GPU (Device)."
            )
            log(notes[-1])
        network_info = {
            "base": network.spec.base, "second": network.spec.second, "steps": network.steps,
            "stopped_by": network.stopped_by, "shrink": network.shrink,
            "selection_blocks_won": better, "selection_blocks": blocks, "accepted": accepted,
            "history": network.history,
            "started_from": start_from.path.name if start_from else None,
        }
        verdict = "chosen" if accepted else f"not chosen (it must win on {required_wins(blocks)})"
        start = f" (started from {start_from.path.name})" if start_from else ""
        log(f"Adapted network{start}: better than {network.spec.base} on {better} of {blocks} "
            f"selection blocks: {verdict}.")
    training_stage(1.0)

    # The choice: the best-ranked fill, unless the network corrects it better on every
    # selection block (blocks never used to train it or to stop its training).
    chosen = ranked[0]
    if network_info is not None and network_info["accepted"]:
        chosen = results[-1]
    report_stage = stages.stage("report")
    enough = pixels["report"] >= MIN_SCORED
    for result in results:
        if enough:
            result.report = scored(result.name, REPORT)
    runner_up = _disagreement_partner(chosen.name, network_info, results)
    confidence_model, confidence_info = _confidence(
        windows, chosen.name, runner_up.name if runner_up else None, inputs, enough
    )
    warning = calibration_warning(confidence_info["report"]) if confidence_info else None
    if warning and confidence_output is not None:
        notes.append(warning)
        log(warning)
    if confidence_model is None:
        _no_confidence_layer(confidence_output, TOO_FEW_ERRORS, notes, log)
        confidence_output = None
    report_stage(1.0)

    result = SceneResult(
        FillReport(), chosen.name, results, scaling, data_range, len(windows), pixels,
        network_info, confidence_info, notes=notes, source_margin=inputs.source_margin,
    )
    result.seconds["learning"] = time.monotonic() - started
    for line in result.summary():
        log(line)
    fill_started = time.monotonic()
    result.fill = _final_fill(
        inputs, output, candidates, chosen.name, network,
        runner_up.name if runner_up else None, confidence_model, confidence_output,
        settings, stages.stage("fill"), cancelled,
    )
    result.confidence_layer = None if confidence_output is None else str(confidence_output)
    result.seconds["fill"] = time.monotonic() - fill_started
    pieces = {"windows": windows, "network": network, "confidence": confidence_model}
    return result, pieces


# The fills that learn nothing, best first by their means over the real cases of BENCHMARKS.md
# ("Quality", gap filling): the order a scene must overturn with evidence, not by a hair.
# Fills added since (weighted matching, local regression, the edge-corrected ones) won on some
# cases and lost on others: they prove their lead on the scene.
PRIOR = (HISTOGRAM, PYRAMID, TEMPORAL, IDW)


def _ranking_errors(windows: list[ValidationWindow], name: str, scaling: Scaling) -> dict:
    """`name`'s squared error per block of every split but the report."""
    errors: dict = {}
    for split in (TRAIN, STOP, SELECT):
        errors |= block_errors(windows, name, split, scaling)
    return errors


def _with_prior(
    ranked: list[CandidateResult], windows: list[ValidationWindow], scaling: Scaling, log: LogFn
) -> list[CandidateResult]:
    """The ranking led by its best fill that beats the available fill coming first in `PRIOR`
    on enough ranking blocks (the network's sign test), else by that fill: a lead of a few
    hundredths of a dB on one scene is noise, and the benchmarks' order is then the better
    bet. A fill that fails the test does not hide one ranked below it that passes."""
    available = [r for r in ranked if r.name in PRIOR]
    if not available:
        return ranked
    preferred = min(available, key=lambda r: PRIOR.index(r.name))
    if preferred is ranked[0]:
        return ranked
    theirs = _ranking_errors(windows, preferred.name, scaling)
    for challenger in ranked:
        if challenger is preferred:
            break
        ours = _ranking_errors(windows, challenger.name, scaling)
        wins = sum(ours[k][0] < theirs[k][0] for k in ours)
        if wins >= required_wins(len(ours)):
            return [challenger, *(r for r in ranked if r is not challenger)]
        log(f"{challenger.name} leads {preferred.name} on {wins} of {len(ours)} ranking "
            f"blocks, too few to overturn the benchmarks' order.")
    log(f"{preferred.name} goes first.")
    return [preferred, *(r for r in ranked if r is not preferred)]


def _disagreement_partner(
    chosen: str, network_info: dict[str, Any] | None, results: list[CandidateResult]
) -> CandidateResult | None:
    """The fill the confidence layer compares the chosen one with: the adapted network's base,
    else the pyramid fill (cheap on a whole scene, unlike inverse distance or a model, which
    would multiply the final fill's time); none when the pyramid is chosen."""
    partner = network_info["base"] if chosen == ADAPTED and network_info else PYRAMID
    if partner == chosen:
        return None
    return next((r for r in results if r.name == partner), None)


def required_wins(blocks: int) -> int:
    """Selection blocks the network must win: all of them when there are fewer than five, else
    so many that a coin would win as many less than once in 20 times (a one-sided sign test)."""
    if blocks < 5:
        return blocks
    for wins in range(blocks + 1):
        tail = sum(math.comb(blocks, k) for k in range(wins, blocks + 1)) / 2**blocks
        if tail <= 0.05:
            return wins
    return blocks


def _blocks_won(
    windows: list[ValidationWindow], name: str, base: str, scaling: Scaling
) -> tuple[int, int]:
    """On how many selection blocks `name` has a lower squared error than `base`, of how many."""
    ours = block_errors(windows, name, SELECT, scaling)
    theirs = block_errors(windows, base, SELECT, scaling)
    return sum(ours[k][0] < theirs[k][0] for k in ours), len(ours)


def dates_seeing(scene: SceneWindow) -> np.ndarray:
    """How many other dates have a usable pixel at each pixel of the window."""
    counts = np.zeros(scene.shape)
    for _, _, usable in scene.observations:
        counts += usable
    return counts


RANKING_PIXELS = 5000  # selection pixels a choice among fills that learn nothing should rest on
MAX_RANKING_LAYOUTS = 7


def _ranking_layouts(
    windows: list[ValidationWindow], sampled: list, candidates: list[Candidate],
    selection_pixels: int, seed: int, cancelled: CancelledFn,
) -> list[ValidationWindow]:
    """On a scene with fewer than RANKING_PIXELS selection pixels, further evaluation layouts
    on the same blocks, predicted by every candidate (none of them learns from the scene):
    enough for about RANKING_PIXELS, at most MAX_RANKING_LAYOUTS per window."""
    count = min(MAX_RANKING_LAYOUTS, math.ceil(RANKING_PIXELS / max(selection_pixels, 1)) - 1)
    if count <= 0:
        return []
    rng = np.random.default_rng([seed, 1])  # its own stream: the rest of the run draws as before
    extra = []
    for window, (scene, stored, _) in zip(windows, sampled, strict=True):
        for layout in ranking_layouts(window, scene, stored, count, rng):
            hidden = _on_scene(layout.hidden, scene, stored)
            predictions = predict_all(candidates, scene, hidden, cancelled, keep=stored)
            layout.predictions = {k: v.astype(np.float32) for k, v in predictions.items()}
            extra.append(layout)
    return extra


def _on_scene(mask: np.ndarray, scene: SceneWindow, stored: tuple) -> np.ndarray:
    """A mask of the stored area placed on the whole window read (the context is not
    hidden beyond its real gaps)."""
    full = scene.gap.copy()
    x, y, w, h = stored
    full[y : y + h, x : x + w] |= mask
    return full


def _examples_seconds(
    windows: list[ValidationWindow], candidate_seconds: dict[str, float],
    ranked: list[CandidateResult],
) -> float:
    """What the network's examples will cost: the two fills it corrects (the best ranked), made
    for every training layout of every window, at what they cost for one layout of each."""
    corrected = sum(candidate_seconds.get(r.name, 0.0) for r in ranked[:2])
    layouts = sum(len(w.training_layouts()) for w in windows) / max(len(windows), 1)
    return corrected * layouts


def budget_spent_note(budget_minutes: float, elapsed: float, windows: int,
                      candidate_seconds: dict[str, float]) -> str:
    """Why the network did not train, and which candidates took the budget: the user can
    give more minutes, or fewer windows."""
    dearest = sorted(candidate_seconds.items(), key=lambda item: -item[1])[:3]
    return (
        f"The budget of {budget_minutes:g} min was spent before the network could train "
        f"({elapsed:.0f} s had passed; the candidates' fills of {windows} window(s) took "
        f"{sum(candidate_seconds.values()):.0f} s, the dearest: "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in dearest)
        + "): give a larger budget or fewer windows."
    )


def _adapt(
    inputs: SceneInputs,
    windows: list[ValidationWindow],
    sampled: list,
    candidates: list[Candidate],
    ranked: list[CandidateResult],
    samples: np.ndarray,
    scaling: Scaling,
    data_range: float,
    settings: SceneSettings,
    deadline: float,
    start_from: SavedNetwork | None,
    progress: ProgressFn,
    cancelled: CancelledFn,
) -> AdaptedNetwork:
    """Build the training and selection examples and train the network within the budget:
    a correction of the best two candidates, or of those a saved network corrects (the
    inputs standardised on this scene either way)."""
    order = [r.name for r in ranked]
    spec = FeatureSpec(
        target=Standardiser.fit(samples),
        base=start_from.base if start_from else order[0],
        second=start_from.second if start_from else (order[1] if len(order) > 1 else None),
        sar=_auxiliary_standardiser([s for s, _, _ in sampled], "sar"),
        dem=_auxiliary_standardiser([s for s, _, _ in sampled], "dem"),
    )
    needed = [c for c in candidates if c.name in (spec.base, spec.second)]
    training, stopping = [], []
    for window, (scene, stored, _) in zip(windows, sampled, strict=True):
        check_cancelled(cancelled)
        area = scene.cropped(stored)
        truth = spec.target.apply(np.nan_to_num(window.truth.astype(np.float64)))
        evaluation_predictions = {k: v.astype(np.float64) for k, v in window.predictions.items()}
        stopping.append(_example(spec, area, window.hidden, evaluation_predictions, truth,
                                 window.scored(STOP)))
        for layout in window.training_layouts():
            hidden = window.training_hidden(layout)
            predictions = predict_all(
                needed, scene, _on_scene(hidden, scene, stored), cancelled, keep=stored
            )
            training.append(
                _example(spec, area, hidden, predictions, truth, window.trained(layout))
            )
    score_fn = _stopping_psnr(windows, stopping, spec, scaling, data_range)
    budget = max(deadline - time.monotonic(), 1.0)
    return train_adapted(
        spec, training, score_fn, budget_seconds=budget, max_steps=settings.max_steps,
        seed=settings.seed, device=settings.device, threads=settings.threads,
        initial_state=start_from.state if start_from else None,
        progress=progress, cancelled=cancelled,
    )


def _check_start(
    start_from: SavedNetwork, inputs: SceneInputs, candidates: list[Candidate]
) -> None:
    """Refuse, before any work, a saved network this run cannot use."""
    start_from.check_fits(
        inputs.target.bands, inputs.sar.bands if inputs.sar else 0,
        inputs.dem.bands if inputs.dem else 0,
    )
    names = {c.name for c in candidates}
    missing = [n for n in (start_from.base, start_from.second) if n and n not in names]
    if missing:
        raise GapfillError(
            f"The adapted network '{start_from.path.name}' corrects {' and '.join(missing)}, "
            f"which this run cannot make (its fills: {', '.join(sorted(names))}). Give the "
            "layers its scene had (other dates with their dates for the temporal fills), or "
            "leave out {start_network}.", options=("start_network",),
        )


def _example(
    spec: FeatureSpec, area: SceneWindow, hidden: np.ndarray,
    predictions: dict[str, np.ndarray], truth: np.ndarray, where: np.ndarray,
) -> Example:
    features = spec.features(area, hidden, predictions).astype(np.float16)
    base = spec.target.apply(predictions[spec.base]).astype(np.float32)
    return Example(features, base, truth.astype(np.float32), where)


def _disagreement(
    first: np.ndarray, second: np.ndarray | None, spread: np.ndarray
) -> np.ndarray:
    """Mean over the bands of |first − second| / spread (0 where either has no value)."""
    if second is None:
        return np.zeros(first.shape[1:])
    difference = np.abs(first - second) / spread[:, None, None]
    return np.where(np.isfinite(difference), difference, 0.0).mean(axis=0)


def _confidence(
    windows: list[ValidationWindow], chosen: str, runner_up: str | None,
    inputs: SceneInputs, enough: bool,
) -> tuple[ConfidenceModel | None, dict[str, Any] | None]:
    """Fit the error model on the gaps of every block but the report ones (the selection
    blocks alone when the choice is the adapted network, which learned on the others), check
    it on the report gaps."""
    spread = _spread(windows)
    fitting = (SELECT,) if chosen == ADAPTED else (TRAIN, STOP, SELECT)
    rows: dict[int, list[np.ndarray]] = {SELECT: [], REPORT: []}
    errors: dict[int, list[np.ndarray]] = {SELECT: [], REPORT: []}
    for window in windows:
        chosen_values = window.predictions[chosen].astype(np.float64)
        second = window.predictions[runner_up].astype(np.float64) if runner_up else None
        visible = ~window.hidden & np.isfinite(window.truth).all(axis=0)
        disagreement = _disagreement(chosen_values, second, spread)
        for split in rows:
            splits = fitting if split == SELECT else (split,)
            where = window.scored(*splits) & np.isfinite(chosen_values).all(axis=0)
            rows[split].append(pixel_features(
                window.hidden, visible, window.seen, len(inputs.others), disagreement, where
            ))
            errors[split].append(np.abs(chosen_values - window.truth)[:, where].mean(axis=0))
    features = {s: np.concatenate(rows[s]) for s in rows}
    error = {s: np.concatenate(errors[s]) for s in errors}
    if len(error[SELECT]) < MIN_SCORED:
        return None, None
    model = ConfidenceModel.fit(features[SELECT], error[SELECT], spread)
    info: dict[str, Any] = {"model": model.to_json(), "runner_up": runner_up}
    info["selection"] = model.calibration(features[SELECT], error[SELECT])
    info["report"] = model.calibration(features[REPORT], error[REPORT]) if enough else None
    return model, info if enough else None


def _copy_of_a_clear_scene(
    inputs: SceneInputs, output: str | Path, settings: SceneSettings,
    confidence_output: str | Path | None, notes: list[str], progress: ProgressFn,
    cancelled: CancelledFn, log: LogFn,
) -> tuple[SceneResult, dict[str, Any]]:
    """A target without gap pixels is copied as every fill copies it: nothing is learned,
    validated or written beside it."""
    notes.append("The target has no gap pixels: nothing was learned or validated.")
    log(notes[-1])
    _no_confidence_layer(confidence_output, "no pixel is filled", notes, log)
    candidates = classical_candidates(inputs)
    result = SceneResult(
        FillReport(), PYRAMID, [CandidateResult(c.name, c.kind) for c in candidates],
        Scaling(), 1.0, 0, {"training": 0, "selection": 0, "report": 0}, notes=notes,
    )
    result.fill = _final_fill(inputs, output, candidates, PYRAMID, None, None, None, None,
                              settings, progress, cancelled)
    return result, {"windows": [], "network": None, "confidence": None}


TOO_FEW_ERRORS = (
    "the scene has too few clear pixels to measure the fill's errors on, so nothing could say "
    "how wrong each pixel may be"
)


def _no_confidence_layer(asked: str | Path | None, why: str, notes: list[str], log: LogFn) -> None:
    """Say that the confidence layer asked for is not written, and `why`: the fill goes on, and
    no output claims a layer that does not exist."""
    if asked is not None:
        notes.append(f"No confidence layer was written to '{asked}': {why}.")
        log(notes[-1])


def _spread(windows: list[ValidationWindow]) -> np.ndarray:
    truth = np.concatenate(
        [w.truth[:, ~w.hidden & np.isfinite(w.truth).all(axis=0)] for w in windows], axis=1
    )
    if truth.shape[1] == 0:
        return np.ones(truth.shape[0])
    low, high = np.percentile(truth, (2, 98), axis=1)
    return np.maximum(high - low, 1e-6)


def _final_fill(
    inputs: SceneInputs,
    output: str | Path,
    candidates: list[Candidate],
    chosen: str,
    network: AdaptedNetwork | None,
    runner_up: str | None,
    confidence: ConfidenceModel | None,
    confidence_output: str | Path | None,
    settings: SceneSettings,
    progress: ProgressFn,
    cancelled: CancelledFn,
) -> FillReport:
    """Stream the whole scene through the chosen candidate (and the confidence layer)."""
    names = {chosen} if chosen != ADAPTED else {network.spec.base, network.spec.second}
    if confidence_output is not None and runner_up:
        names.add(runner_up)
    needed = [c for c in candidates if c.name in names]
    pyramid, pyramid_context = streamed_pyramid(
        inputs, lambda f: progress(COARSE_SHARE * f), cancelled
    )
    # every prediction is completed by the pyramid, so its context is always needed
    context = max([c.halo for c in needed if c.name != PYRAMID] + [pyramid_context])
    halo = context + (MARGIN if chosen == ADAPTED else 0)
    side = None if confidence_output is None else SideOutput(confidence_output, CONFIDENCE_BANDS)

    def compute(block: Block) -> tuple[np.ndarray, ...]:
        scene: SceneWindow = block.sources
        height, width = scene.shape
        # the network reads only its margin around the block, not the candidates' context
        region, inner = expand_window(block.inner, MARGIN, width, height)
        predictions = predict_all(
            needed, scene, scene.gap, cancelled, keep=region, pyramid_fill=pyramid
        )
        scene = scene.cropped(region)
        if chosen == ADAPTED:
            values = network.predict(scene, scene.gap, predictions)
        else:
            values = predictions[chosen]
        core = crop(values, inner)
        filled = np.isfinite(core).all(axis=0)
        if side is None:
            return core, filled
        visible = scene.clear
        second = predictions.get(runner_up) if runner_up else None
        disagreement = _disagreement(values, second, confidence.scale)
        where = np.zeros_like(scene.gap)
        x, y, w, h = inner
        where[y : y + h, x : x + w] = crop(scene.gap, inner) & filled
        features = pixel_features(
            scene.gap, visible, dates_seeing(scene), len(inputs.others), disagreement, where
        )
        layer = np.full((2, h, w), np.nan, dtype=np.float32)
        expected, upper = confidence.predict(features)
        layer[0][crop(where, inner)] = expected
        layer[1][crop(where, inner)] = upper
        return core, filled, layer

    return fill_image(
        inputs.target,
        output,
        compute,
        read_sources=inputs.read,
        halo=halo,
        block_size=settings.block_size,
        workers=1,
        require_clear=inputs.sar is None and not inputs.others,
        side=side,
        progress=lambda f: progress(COARSE_SHARE + (1 - COARSE_SHARE) * f),
        cancelled=cancelled,
    )

