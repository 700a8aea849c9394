"""Evaluate a trained model (ONNX file or checkpoint) on a split of a patch dataset, with the
validation of the training loop: MAE, RMSE, PSNR, SSIM and SAM on the gap pixels.

An ONNX model is fed as the fill engine feeds it (its card's roles, bands and scaling; no data as
0) through ONNX Runtime, so no torch is needed for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import GapfillError
from ..core.learned.model_card import BandScaling, card_of_session
from ..core.learned.onnx_session import Device, create_session
from ..core.progress import CancelledFn, never_cancelled
from .assessment import assess, cloud_shapes, log_assessment
from .datasets import CloudShapes, DatasetError, PatchDataset, read_manifest, truth_role
from .validation import batches, collapsed_bands, metrics_row, validate

LogFn = Callable[[str], None]


def _dataset(
    folder: str | Path | Sequence[str | Path],
    split: str,
    roles: Mapping[str, Sequence[str]],
    scalings: Mapping[str, Sequence[BandScaling]],
    output_bands: Sequence[str],
    multiple: int,
    *,
    cloud_masks: Sequence[str],
    limit: int,
    seed: int,
) -> PatchDataset:
    manifest = read_manifest(folder)
    folder = manifest.where
    truth = truth_role(manifest)
    for role, bands in [*roles.items(), (truth, output_bands)]:
        if role == "gap_mask":
            continue  # always available, one band
        if role not in manifest.roles:
            raise DatasetError(
                f"The model needs the role '{role}', which the dataset {folder} does not have."
            )
        if tuple(manifest.roles[role].bands) != tuple(bands):
            raise DatasetError(
                f"The model takes the {role} bands {', '.join(bands)}; the dataset has "
                f"{', '.join(manifest.roles[role].bands)}."
            )
    size = manifest.patch_size // multiple * multiple
    if size == 0:
        raise DatasetError(
            f"The patches ({manifest.patch_size} px) are smaller than the model's size multiple "
            f"({multiple} px)."
        )
    shapes = None
    if truth == "target":
        if not cloud_masks:
            raise DatasetError(
                "The dataset has no 'reference' role: give cloud masks ({cloud_masks}) to "
                "simulate the gaps to evaluate on.",
                options=("cloud_masks",),
            )
        shapes = CloudShapes.from_specs(cloud_masks)
    return PatchDataset(
        manifest,
        split,
        list(roles),
        {**scalings},
        size=size,
        shapes=shapes,
        seed=seed,
        limit=limit,
    )


def evaluate_model(
    model: str | Path,
    dataset: str | Path | Sequence[str | Path],
    *,
    split: str = "validation",
    batch_size: int = 8,
    device: Device = "auto",
    cloud_masks: Sequence[str] = (),
    limit: int = 0,
    seed: int = 0,
    log: LogFn = lambda _message: None,
    cancelled: CancelledFn = never_cancelled,
) -> dict[str, Any]:
    """Metrics of `model` (.onnx, or a .pt checkpoint) on a split of `dataset`."""
    path = Path(model)
    if path.suffix.lower() == ".onnx":
        session = create_session(path, device, log=log)
        card = card_of_session(session, f"'{path}'")
        roles = {item.role: item.bands for item in card.inputs}
        scalings = {item.role: item.scaling for item in card.inputs}
        names = {item.role: item.name for item in card.inputs}
        multiple = card.size_multiple
        output_bands, output_scaling = card.output.bands, card.output.scaling

        def predict(batch: Mapping[str, Any]) -> np.ndarray:
            feeds = {names[role]: batch["inputs"][role] for role in roles}
            return session.run([card.output.name], feeds)[0]

    elif path.suffix.lower() == ".pt":
        predict, roles, scalings, output_bands, output_scaling, multiple = _torch_predictor(
            path, device
        )
    else:
        raise GapfillError(f"'{path}' is neither an ONNX model (.onnx) nor a checkpoint (.pt).")
    manifest_truth = truth_role(read_manifest(dataset))
    data = _dataset(
        dataset,
        split,
        roles,
        {**scalings, manifest_truth: output_scaling},
        output_bands,
        multiple,
        cloud_masks=cloud_masks,
        limit=limit,
        seed=seed,
    )
    result = validate(
        predict, batches(data, batch_size), output_scaling, output_bands, cancelled=cancelled
    )
    shapes, source = cloud_shapes(data.manifest, cloud_masks, ())
    verdict = assess(
        predict,
        data.manifest,
        list(roles),
        {**scalings, data.truth: output_scaling},
        output_scaling,
        output_bands,
        data.size,
        shapes,
        source,
        seed=seed,
        limit=limit,
        batch_size=batch_size,
        cancelled=cancelled,
    )
    log_assessment(verdict, log)
    return {
        "model": str(path),
        "dataset": data.manifest.where,
        "split": split,
        "patches": len(data),
        "evaluated_on": result.note,
        **metrics_row(result.metrics),
        "collapsed_bands": collapsed_bands(result.health),
        "baselines": verdict,
    }


def _torch_predictor(path: Path, device: str) -> tuple[Any, ...]:
    import torch

    from .checkpoints import load_checkpoint
    from .export import scalings_of
    from .networks import model_from_config

    state = load_checkpoint(path)
    model = model_from_config(state["model_config"])
    model.load_state_dict(state["model"])
    use = "cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    model = model.to(use).eval()
    info = state["card"]
    roles = {item["role"]: tuple(item["bands"]) for item in info["inputs"]}
    scalings = {item["role"]: scalings_of(item["scaling"]) for item in info["inputs"]}

    def predict(batch: Mapping[str, Any]) -> np.ndarray:
        with torch.no_grad():
            inputs = [torch.from_numpy(batch["inputs"][role]).to(use) for role in model.roles]
            return model(*inputs).float().cpu().numpy()

    return (
        predict,
        roles,
        scalings,
        tuple(info["output"]["bands"]),
        scalings_of(info["output"]["scaling"]),
        model.size_multiple,
    )
