"""Export a trained network to ONNX with its model card, checked before it is written.

The graph has dynamic batch, height and width (TorchScript exporter, `dynamo=False`), one input
per role named after the role, and one output, `filled`. The card says the roles, bands and
scaling the network was trained with, its context margin and size multiple, and its validation
metrics. Before the file appears (written to a temporary file, then renamed): `onnx.checker`
with `full_check`, the card checked against the graph, and ONNX Runtime compared with PyTorch on
an input of a shape other than the training patches; a relative difference above 1e-4 fails.
"""

from __future__ import annotations

import copy
import io
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.dependencies import require
from ..core.errors import GapfillError
from ..core.learned.model_card import (
    SCALING_KEYS,
    BandScaling,
    ModelCard,
    ModelInput,
    TensorCard,
    write_card,
)
from ..core.learned.onnx_session import create_session
from .checkpoints import load_checkpoint
from .networks import GapfillNet, model_from_config

OUTPUT_NAME = "filled"
OPSET = 17
PARITY_TOLERANCE = 1e-4
LogFn = Callable[[str], None]


class ExportError(GapfillError):
    """The exported graph fails a check (ONNX checker, card, parity with PyTorch)."""


def scaling_dicts(scalings: Sequence[BandScaling]) -> list[dict[str, Any]]:
    """Plain Python values (checkpoints load with weights_only=True: no numpy scalars)."""
    return [{key: _plain(getattr(item, key)) for key in SCALING_KEYS} for item in scalings]


def _plain(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    return None if value is None else float(value)


def scalings_of(dicts: Sequence[Mapping[str, Any]]) -> tuple[BandScaling, ...]:
    return tuple(BandScaling(**dict(item)) for item in dicts)


def card_info(
    roles: Sequence[str],
    bands: Mapping[str, Sequence[str]],
    scalings: Mapping[str, Sequence[BandScaling]],
    output_role: str,
    *,
    patch_size: int,
    training_data: str,
) -> dict[str, Any]:
    """What the card needs from the dataset, as plain values (kept in checkpoints)."""
    return {
        "inputs": [
            {"role": role, "bands": list(bands[role]), "scaling": scaling_dicts(scalings[role])}
            for role in roles
        ],
        "output": {
            "bands": list(bands[output_role]),
            "scaling": scaling_dicts(scalings[output_role]),
        },
        "patch_size": patch_size,
        "training_data": training_data,
    }


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value


def recommended_tile(tile_size: int, margin: int, multiple: int) -> int:
    """The card's tile size: at least `tile_size` and 4 margins, a multiple of `multiple`."""
    size = max(tile_size, 4 * margin + multiple, multiple)
    return -(-size // multiple) * multiple


def build_card(
    model: GapfillNet,
    info: Mapping[str, Any],
    *,
    metrics: Mapping[str, Any] | None = None,
    name: str = "",
    description: str = "",
    licence: str = "",
    tile_size: int = 256,
) -> ModelCard:
    margin, multiple = model.context_margin, model.size_multiple
    settings = f"width {model.width}, depth {model.depth}"
    return ModelCard(
        name=name or f"{model.architecture} gap filler",
        inputs=tuple(
            ModelInput(
                item["role"], tuple(item["bands"]), scalings_of(item["scaling"]), item["role"]
            )
            for item in info["inputs"]
        ),
        output=TensorCard(
            OUTPUT_NAME, tuple(info["output"]["bands"]), scalings_of(info["output"]["scaling"])
        ),
        context_margin=margin,
        size_multiple=multiple,
        recommended_tile_size=recommended_tile(tile_size, margin, multiple),
        architecture=f"{model.architecture} ({settings})",
        description=description or f"{model.description}; trained with Gapfill's training package",
        licence=licence,
        training_data=str(info.get("training_data", "")),
        validation_metrics=_finite(dict(metrics or {})),
    )


def parity_shape(info: Mapping[str, Any], multiple: int) -> tuple[int, int]:
    """A height and width unlike the training patches, both multiples of `multiple`."""
    size = int(info.get("patch_size", 64))
    return size + multiple, size + 2 * multiple


def _inputs(
    model: GapfillNet, height: int, width: int, batch: int, seed: int = 0
) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    tensors = []
    for role, channels in model.inputs.items():
        values = torch.rand(batch, channels, height, width, generator=generator)
        tensors.append((values > 0.7).float() if role == "gap_mask" else values)
    return tensors


def export_model(
    model: GapfillNet,
    info: Mapping[str, Any],
    output: str | Path,
    *,
    metrics: Mapping[str, Any] | None = None,
    name: str = "",
    description: str = "",
    licence: str = "",
    tile_size: int = 256,
    parity_size: Sequence[int] | None = None,
    log: LogFn = lambda _message: None,
) -> ModelCard:
    """Export `model` with its card to `output` (an .onnx path); returns the card."""
    onnx = require("onnx", "Exporting a model to ONNX")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    card = build_card(
        model,
        info,
        metrics=metrics,
        name=name,
        description=description,
        licence=licence,
        tile_size=tile_size,
    )
    module = copy.deepcopy(model.exported()).cpu().float().eval()
    multiple = model.size_multiple
    size = int(info.get("patch_size", 64))
    dummies = _inputs(model, size, size, 1)
    axes = {0: "batch", 2: "height", 3: "width"}
    names = list(model.roles)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(
            module,
            tuple(dummies),
            buffer,
            dynamo=False,
            input_names=names,
            output_names=[OUTPUT_NAME],
            dynamic_axes={key: axes for key in [*names, OUTPUT_NAME]},
            opset_version=OPSET,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as error:
        raise ExportError(f"The exported ONNX graph is invalid: {error}") from error
    write_card(proto, card)
    data = proto.SerializeToString()
    height, width = parity_size or parity_shape(info, multiple)
    if height % multiple or width % multiple:
        raise ExportError(
            f"The parity check size {height}×{width} is not a multiple of {multiple} px."
        )
    difference = check_parity(module, data, model, height, width)
    log(
        f"Export check: ONNX Runtime vs PyTorch at {width}×{height} px (training patches "
        f"{size} px): largest relative difference {difference:.2e} (limit {PARITY_TOLERANCE:g})."
    )
    temporary = output.with_name(f".{output.name}.partial")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, output)
    finally:
        temporary.unlink(missing_ok=True)
    return card


def check_parity(
    module: torch.nn.Module, data: bytes, model: GapfillNet, height: int, width: int
) -> float:
    """Largest |ONNX Runtime − PyTorch| relative to the largest |PyTorch| output, on a batch of
    2 random inputs; raises `ExportError` above `PARITY_TOLERANCE`."""
    inputs = _inputs(model, height, width, 2, seed=1)
    with torch.no_grad():
        expected = module(*inputs).numpy()
    session = create_session(data, "cpu")
    feeds = {role: tensor.numpy() for role, tensor in zip(model.roles, inputs, strict=True)}
    actual = session.run([OUTPUT_NAME], feeds)[0]
    if actual.shape != expected.shape:
        raise ExportError(
            f"ONNX Runtime returns shape {actual.shape} where PyTorch returns {expected.shape} "
            f"for a {width}×{height} px input."
        )
    scale = max(float(np.abs(expected).max()), 1e-6)
    difference = float(np.abs(actual - expected).max()) / scale
    if not difference <= PARITY_TOLERANCE:
        raise ExportError(
            f"ONNX Runtime and PyTorch disagree on a {width}×{height} px input: largest "
            f"relative difference {difference:.2e} (limit {PARITY_TOLERANCE:g}). The export is "
            "not written."
        )
    return difference


def checkpoint_metrics(state: Mapping[str, Any]) -> dict[str, Any]:
    """The validation metrics of the checkpoint's own epoch (not of the best epoch)."""
    if state.get("metrics"):
        return dict(state["metrics"])
    epoch = state.get("epoch")
    row = next((row for row in state.get("history", []) if row.get("epoch") == epoch), {})
    keys = ("mae", "rmse", "psnr", "ssim", "sam", "ndvi_mae")
    return {"epoch": epoch, **{key: row[key] for key in keys if row.get(key) is not None}}


def export_checkpoint(
    checkpoint: str | Path,
    output: str | Path,
    *,
    name: str = "",
    description: str = "",
    licence: str = "",
    tile_size: int = 0,
    parity_size: Sequence[int] | None = None,
    force: bool = False,
    log: LogFn = lambda _message: None,
) -> ModelCard:
    """Export the network of a checkpoint (best.pt or last.pt of a run) with its card: the
    metrics of that checkpoint's epoch and its baseline verdict (measured now when the
    checkpoint has none). A network with collapsed output bands is refused unless `force`."""
    from .assessment import assess_state, log_assessment

    state = load_checkpoint(checkpoint)
    model = model_from_config(state["model_config"])
    model.load_state_dict(state["model"])
    config = state.get("config", {})
    assessment = state.get("assessment")
    if assessment is None:
        try:
            assessment = assess_state(state)
        except (GapfillError, FileNotFoundError, KeyError) as error:
            log(
                "WARNING: no baseline verdict for the card: the training data cannot be read "
                f"({error})."
            )
            assessment = {}
        else:
            log_assessment(assessment, log)
    collapsed = dict(assessment.get("collapsed_bands") or state.get("collapsed_bands") or {})
    if collapsed and not force:
        listing = ", ".join(f"{band} {reason}" for band, reason in collapsed.items())
        raise ExportError(
            f"Not exported: {len(collapsed)} output band(s) of '{checkpoint}' collapsed "
            f"({listing}): "
            "the model would fill them with one flat value. Train longer or with a lower "
            "learning rate; to export it anyway, force the export."
        )
    if collapsed:
        log(f"WARNING: exporting despite {len(collapsed)} collapsed output band(s), as forced.")
    metrics = checkpoint_metrics(state)
    if assessment:
        metrics["baselines"] = assessment
    return export_model(
        model,
        state["card"],
        output,
        metrics=metrics,
        name=name or config.get("name", ""),
        description=description or config.get("description", ""),
        licence=licence or config.get("licence", ""),
        tile_size=tile_size or config.get("tile_size", 256),
        parity_size=parity_size or config.get("parity_size") or None,
        log=log,
    )
