"""The baseline verdict at the end of every training: the model against the classical fills.

On the validation patches, real cloud shapes (the run's cloud masks, else the dataset's own gap
masks) are laid on the clear image (the reference, or the clear target) and the removed pixels
are filled by the model, by both spatial fills of 'Fill gaps spatially' (inverse-distance
interpolation, `fill_nodata_arrays`, and pyramid interpolation, `pyramid_fill_arrays`, its
default) and, when the dataset holds other dates, by histogram
matching of the earlier date, then the later one (the core of 'Fill gaps from other dates').
Each is scored against the same clear image as 'Evaluate fill' scores ('pure gap filling', the
protocol the project decides defaults on). The result is the card's `baselines` entry
(`core.learned.baselines`): the table, the verdict, and the output bands that collapsed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.fills.histogram_matched_fill import matched_values
from ..core.fills.pyramid_fill import pyramid_fill_arrays
from ..core.fills.spatial_fill import fill_nodata_arrays
from ..core.learned import baselines
from ..core.learned.model_card import BandScaling
from ..core.learned.scaling import unscale_bands
from ..core.progress import CancelledFn, check_cancelled, never_cancelled
from .datasets import CloudShapes, Manifest, PatchDataset, read_manifest, role_scalings
from .validation import (
    HealthAccumulator,
    accumulator,
    batches,
    collapse_warning,
    collapsed_bands,
    evaluation_scaling,
    metrics_row,
)

LogFn = Callable[[str], None]
Predict = Callable[[Mapping[str, Any]], Any]
MODEL = "model"
SPATIAL, PYRAMID, HISTOGRAM = baselines.SPATIAL, baselines.PYRAMID, baselines.HISTOGRAM
OTHER_DATES = ("optical_before", "optical_after")
SPATIAL_DISTANCE = 300  # px: as far as bench_quality's spatial fills reach
MATCH_RADIUS, MATCH_MIN_PIXELS = 15, 50  # 'Fill gaps from other dates' defaults


def cloud_shapes(
    manifest: Manifest, cloud_masks: Sequence[str], cover: Sequence[float]
) -> tuple[CloudShapes | None, str]:
    """The cloud shapes of the verdict and where they come from ('' when there are none)."""
    cover = (float(cover[0]), float(cover[1])) if len(cover) == 2 else (0.05, 0.6)
    if cloud_masks:
        return CloudShapes.from_specs(cloud_masks, cover), ", ".join(cloud_masks)
    shapes = CloudShapes.of_dataset(manifest, cover)
    return shapes, "the real gap masks of the dataset's training patches" if shapes else ""


def _spatial_fills(data: np.ndarray, clear: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(values, reached) of both spatial fills of 'Fill gaps spatially' (no smoothing)."""
    pyramid, reached = pyramid_fill_arrays(data, clear, SPATIAL_DISTANCE)
    return {
        SPATIAL: fill_nodata_arrays(data, clear, SPATIAL_DISTANCE, 0),
        PYRAMID: (np.nan_to_num(pyramid), reached),
    }


def _filled(values: np.ndarray, truth: np.ndarray, gap: np.ndarray) -> np.ndarray:
    return np.where(gap[np.newaxis], values, truth)


def assess(
    predict: Predict,
    manifest: Manifest,
    roles: Sequence[str],
    scalings: Mapping[str, Sequence[BandScaling]],
    output_scaling: Sequence[BandScaling],
    output_bands: Sequence[str],
    size: int,
    shapes: CloudShapes | None,
    shapes_source: str,
    *,
    seed: int = 0,
    limit: int = 0,
    batch_size: int = 8,
    cancelled: CancelledFn = never_cancelled,
) -> dict[str, Any]:
    """The `baselines` entry of a model (`predict`: batch → network values) on the
    validation split of `manifest`, pure gap filling."""
    measured = evaluation_scaling(output_scaling)
    common = {
        "protocol": baselines.PURE_GAP_FILLING,
        "metric_scaling": measured.describe() if measured else "network values",
    }
    if shapes is None:
        return {
            **common,
            "evaluated_on": "",
            "verdict": baselines.NOT_MEASURED,
            "summary": "No cloud shapes to lay on the clear patches: give cloud masks (a "
            "cloud-mask raster of your area) to get the verdict against the classical fills.",
            "methods": {},
        }
    others = [role for role in OTHER_DATES if role in manifest.roles]
    others = [role for role in others if manifest.roles[role].bands == tuple(output_bands)]
    every = list(dict.fromkeys([*roles, *others]))
    every_scaling = {**role_scalings(manifest, others), **scalings}
    data = PatchDataset(
        manifest, "validation", every, every_scaling, size=size, shapes=shapes, seed=seed,
        limit=limit, clear_target=True,
    )  # fmt: skip
    if not len(data):
        return {
            **common,
            "evaluated_on": "",
            "verdict": baselines.NOT_MEASURED,
            "summary": "The dataset has no validation patch to measure on.",
            "methods": {},
        }
    methods = [MODEL, SPATIAL, PYRAMID] + ([HISTOGRAM] if others else [])
    scores = {method: accumulator(output_bands, measured) for method in methods}
    health = HealthAccumulator(output_scaling, output_bands)
    pixels = 0
    for batch in batches(data, batch_size):
        check_cancelled(cancelled)
        predicted = np.asarray(_numpy(predict(batch)), dtype=np.float32)
        for index in range(predicted.shape[0]):
            truth = unscale_bands(batch["reference"][index], output_scaling)
            known = batch["known"][index, 0] == 1
            gap = batch["gap"][index, 0] == 1
            evaluate = batch["evaluate"][index, 0] == 1
            truth[:, ~known] = np.nan
            clear = ~gap & known
            model = unscale_bands(predicted[index], output_scaling)
            if measured is None:
                model, truth = predicted[index], np.where(known, batch["reference"][index], np.nan)
            fills = {MODEL: _filled(model, truth, gap)}
            plain = np.nan_to_num(truth)
            for method, (values, reached) in _spatial_fills(plain, clear).items():
                spatial = _filled(values.astype(np.float32), truth, gap)
                spatial[:, gap & ~reached] = np.nan
                fills[method] = spatial
            if others:
                matched = np.full_like(truth, np.nan)
                for role in others:
                    source = unscale_bands(batch["inputs"][role][index], every_scaling[role])
                    adjusted = matched_values(
                        plain, clear, source, np.ones(gap.shape, bool), MATCH_RADIUS,
                        MATCH_MIN_PIXELS,
                    )  # fmt: skip
                    take = gap & ~np.isfinite(matched).all(axis=0)
                    matched[:, take] = adjusted[:, take]
                fills[HISTOGRAM] = _filled(matched, truth, gap)
            for method, filled in fills.items():
                scores[method].add(truth, filled, evaluate)
            health.add(model, truth, evaluate)
            pixels += int(evaluate.sum())
    collapsed = collapsed_bands(health.result())
    results = {}
    for method, acc in scores.items():
        metrics = acc.result()
        row = metrics_row(metrics)
        results[method] = {
            **{key: row[key] for key in ("mae", "rmse", "psnr", "ssim", "sam", "ndvi_mae")},
            "filled_fraction": float(metrics.filled_fraction),
        }
    return baselines.baselines(
        results,
        model=MODEL,
        classical=[method for method in methods if method != MODEL],
        collapsed_bands=collapsed,
        evaluated_on=(
            f"{len(data)} validation patches of {size} px of {manifest.name}, {pixels} gap pixels "
            f"from the cloud shapes of {shapes_source} (seed {seed})"
        ),
        **common,
    )


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        return value.detach().float().cpu().numpy()
    return np.asarray(value)


def log_assessment(entry: Mapping[str, Any], log: LogFn) -> None:
    """Print the table and the verdict; loud when the model lost or bands collapsed."""
    log(baselines.describe(entry))
    if entry.get("collapsed_bands"):
        log(collapse_warning(entry["collapsed_bands"], "on pure gap filling"))
    if entry.get("verdict") == baselines.LOSES:
        log(f"WARNING: the model lost to {entry['best_classical']}: see the verdict above.")


def checkpoint_predictor(state: Mapping[str, Any], device: str = "cpu") -> Predict:
    """The network of a checkpoint as a batch → network values function (torch)."""
    import torch

    from .networks import model_from_config

    model = model_from_config(state["model_config"])
    model.load_state_dict(state["model"])
    model = model.to(device).eval()

    def predict(batch: Mapping[str, Any]) -> np.ndarray:
        with torch.no_grad():
            inputs = [torch.from_numpy(batch["inputs"][role]).to(device) for role in model.roles]
            return model(*inputs).float().cpu().numpy()

    return predict


def assess_state(
    state: Mapping[str, Any], *, cancelled: CancelledFn = never_cancelled
) -> dict[str, Any]:
    """The verdict of a checkpoint's network on the dataset it was trained on."""
    from .export import scalings_of

    config, info = state.get("config", {}), state["card"]
    manifest = read_manifest(config["dataset"])
    shapes, source = cloud_shapes(
        manifest, config.get("cloud_masks", []), config.get("gap_cover", [])
    )
    roles = [item["role"] for item in info["inputs"]]
    scalings = {item["role"]: scalings_of(item["scaling"]) for item in info["inputs"]}
    output = scalings_of(info["output"]["scaling"])
    truth = "reference" if "reference" in manifest.roles else "target"
    return assess(
        checkpoint_predictor(state),
        manifest,
        roles,
        {**scalings, truth: output},
        output,
        info["output"]["bands"],
        int(info["patch_size"]),
        shapes,
        source,
        seed=int(config.get("seed", 0)),
        limit=int(config.get("validation_limit", 0)),
        batch_size=int(config.get("batch_size", 8)),
        cancelled=cancelled,
    )


def assess_checkpoint(
    path: str | Path,
    *,
    log: LogFn = lambda _message: None,
    cancelled: CancelledFn = never_cancelled,
) -> dict[str, Any]:
    """Measure a checkpoint's verdict, log it and keep it in the checkpoint (its export then
    writes it into the card)."""
    from .checkpoints import load_checkpoint, save_checkpoint

    state = load_checkpoint(path)
    entry = assess_state(state, cancelled=cancelled)
    log(f"Baseline verdict of {Path(path).name} (epoch {state.get('epoch')}):")
    log_assessment(entry, log)
    save_checkpoint(path, {**state, "assessment": entry})
    return entry
