"""The model card: the versioned JSON document in an ONNX model's metadata that says everything
inference needs (inputs with roles, bands and scaling, output, margin, tile sizes, provenance).

It is the contract between the training package (which writes it with `write_card`) and the fill
algorithm (which reads it with `read_card`): band selection and scaling come from the card, never
from the user's memory. A model without a valid card, or whose graph does not match it, is refused.

Scaling of one band, raw pixel value → network value (`scaling.scale_bands`)::

    v = 10·log10(raw) if db else raw       # dB conversion of linear backscatter
    v = clip(v, clip_min, clip_max)         # in raw (or dB) units; null = no bound
    network = (v − offset) · scale

The output's scaling is inverted (network → raw) the same way, backwards.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from ..dependencies import require
from ..errors import GapfillError

MAX_CONTEXT_MARGIN = 1024  # px per side
MAX_TILE_SIZE = 8192  # px per side
CARD_KEY = "gapfill_model_card"  # key of the card in the ONNX model's metadata_props
CARD_FORMAT = "gapfill-model-card"
CARD_VERSION = 1

Role = Literal["target", "gap_mask", "sar", "optical_before", "optical_after", "dem", "time_series"]
ROLES: tuple[str, ...] = get_args(Role)
ROLE_LABELS = {
    "target": "target optical image",
    "gap_mask": "gap mask",
    "sar": "SAR image",
    "optical_before": "earlier optical image",
    "optical_after": "later optical image",
    "dem": "DEM",
    "time_series": "time series",
}
INTERNAL_ROLES = ("target", "gap_mask")  # fed from the target and its gaps, not from other layers
FEEDABLE_TYPES = ("float32", "float16")  # element types the engine can feed and read
FIX_HINT = (
    "Export the model with Gapfill's training package, or add a card with "
    "core.learned.model_card.write_card."
)


class ModelCardError(GapfillError):
    """A model has no card, an invalid card, or a graph that does not match its card."""


@dataclass(frozen=True)
class BandScaling:
    """How one band's raw values become network values (see the module docstring)."""

    offset: float = 0.0
    scale: float = 1.0
    db: bool = False
    clip_min: float | None = None
    clip_max: float | None = None


@dataclass(frozen=True)
class TensorCard:
    """One tensor of the network: its ONNX name, its bands (channel axis) and their scaling."""

    name: str
    bands: tuple[str, ...]
    scaling: tuple[BandScaling, ...]


@dataclass(frozen=True)
class ModelInput(TensorCard):
    """An input tensor and the role of the layer that feeds it."""

    role: str


@dataclass(frozen=True)
class ModelCard:
    """Everything inference needs to know about a model; `context_margin` is in pixels."""

    name: str
    inputs: tuple[ModelInput, ...]
    output: TensorCard
    context_margin: int
    size_multiple: int = 1
    recommended_tile_size: int = 256
    architecture: str = ""
    description: str = ""
    licence: str = ""
    training_data: str = ""
    validation_metrics: Mapping[str, Any] = field(default_factory=dict)
    version: int = CARD_VERSION

    def input_for(self, role: str) -> ModelInput | None:
        return next((item for item in self.inputs if item.role == role), None)

    @property
    def auxiliary_inputs(self) -> tuple[ModelInput, ...]:
        """Inputs fed by other layers (SAR, other dates, DEM…), not by the target itself."""
        return tuple(item for item in self.inputs if item.role not in INTERNAL_ROLES)


# ---------------------------------------------------------------- JSON → card


class _Invalid(ValueError):
    """One structural problem of a card's JSON, with its path (e.g. `inputs[0].bands`)."""


_REQUIRED = object()
_CHECKS = {
    "text": (lambda v: isinstance(v, str), "a text"),
    "integer": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "number": (
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "a number",
    ),
    "optional number": (
        lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)),
        "a number or null",
    ),
    "boolean": (lambda v: isinstance(v, bool), "true or false"),
    "list": (lambda v: isinstance(v, list), "a list"),
    "object": (lambda v: isinstance(v, dict), "an object"),
}


def _object(value: Any, path: str, known: tuple[str, ...]) -> dict[str, Any]:
    """`value` as a JSON object, refusing keys the card format does not define (typos)."""
    if not isinstance(value, dict):
        raise _Invalid(f"{path} must be an object, not {json.dumps(value)[:60]}")
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise _Invalid(f"{path} has unknown keys {', '.join(unknown)} (known: {', '.join(known)})")
    return value


def _get(obj: dict[str, Any], key: str, kind: str, path: str, default: Any = _REQUIRED) -> Any:
    where = f"{path}.{key}" if path else key
    if key not in obj:
        if default is _REQUIRED:
            raise _Invalid(f"{where} is missing")
        return default
    check, expected = _CHECKS[kind]
    value = obj[key]
    if not check(value):
        raise _Invalid(f"{where} must be {expected}, not {json.dumps(value)[:60]}")
    return value


def _texts(obj: dict[str, Any], key: str, path: str) -> tuple[str, ...]:
    values = _get(obj, key, "list", path)
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise _Invalid(f"{path}.{key}[{index}] must be a text, not {json.dumps(value)[:60]}")
    return tuple(values)


SCALING_KEYS = ("offset", "scale", "db", "clip_min", "clip_max")
TENSOR_KEYS = ("name", "bands", "scaling")
CARD_KEYS = (
    "format",
    "version",
    "name",
    "architecture",
    "description",
    "licence",
    "training_data",
    "validation_metrics",
    "inputs",
    "output",
    "context_margin",
    "size_multiple",
    "recommended_tile_size",
)


def _scaling(value: Any, path: str) -> BandScaling:
    obj = _object(value, path, SCALING_KEYS)
    return BandScaling(
        offset=float(_get(obj, "offset", "number", path, 0.0)),
        scale=float(_get(obj, "scale", "number", path, 1.0)),
        db=_get(obj, "db", "boolean", path, False),
        clip_min=_optional_float(_get(obj, "clip_min", "optional number", path, None)),
        clip_max=_optional_float(_get(obj, "clip_max", "optional number", path, None)),
    )


def _optional_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _tensor_fields(obj: dict[str, Any], path: str) -> dict[str, Any]:
    scalings = _get(obj, "scaling", "list", path)
    return {
        "name": _get(obj, "name", "text", path),
        "bands": _texts(obj, "bands", path),
        "scaling": tuple(
            _scaling(item, f"{path}.scaling[{index}]") for index, item in enumerate(scalings)
        ),
    }


def card_from_json(text: str, source: str = "the model") -> ModelCard:
    """Parse and validate a card; `source` names the model in error messages."""
    try:
        document = json.loads(text)
        obj = _object(document, "the card", CARD_KEYS)
        card_format = _get(obj, "format", "text", "")
        if card_format != CARD_FORMAT:
            raise _Invalid(f"format is '{card_format}', not '{CARD_FORMAT}'")
        version = _get(obj, "version", "integer", "")
        if version > CARD_VERSION or version < 1:
            raise ModelCardError(
                f"The model card of {source} has format version {version}; this version of "
                f"Gapfill reads versions 1 to {CARD_VERSION}. Update the Gapfill plugin."
            )
        inputs = []
        for index, item in enumerate(_get(obj, "inputs", "list", "")):
            path = f"inputs[{index}]"
            fields = _object(item, path, ("role", *TENSOR_KEYS))
            inputs.append(
                ModelInput(**_tensor_fields(fields, path), role=_get(fields, "role", "text", path))
            )
        output = _object(_get(obj, "output", "object", ""), "output", TENSOR_KEYS)
        card = ModelCard(
            name=_get(obj, "name", "text", ""),
            inputs=tuple(inputs),
            output=TensorCard(**_tensor_fields(output, "output")),
            context_margin=_get(obj, "context_margin", "integer", ""),
            size_multiple=_get(obj, "size_multiple", "integer", "", 1),
            recommended_tile_size=_get(obj, "recommended_tile_size", "integer", "", 256),
            architecture=_get(obj, "architecture", "text", "", ""),
            description=_get(obj, "description", "text", "", ""),
            licence=_get(obj, "licence", "text", "", ""),
            training_data=_get(obj, "training_data", "text", "", ""),
            validation_metrics=_get(obj, "validation_metrics", "object", "", {}),
            version=version,
        )
    except json.JSONDecodeError as error:
        raise ModelCardError(
            f"The model card of {source} is not valid JSON ({error}). {FIX_HINT}"
        ) from error
    except _Invalid as error:
        raise ModelCardError(
            f"The model card of {source} is invalid: {error}. {FIX_HINT}"
        ) from None
    validate_card(card, source)
    return card


# ---------------------------------------------------------------- card → JSON


def _scaling_dict(scaling: BandScaling) -> dict[str, Any]:
    return {key: getattr(scaling, key) for key in SCALING_KEYS}


def _tensor_dict(tensor: TensorCard) -> dict[str, Any]:
    return {
        "name": tensor.name,
        "bands": list(tensor.bands),
        "scaling": [_scaling_dict(item) for item in tensor.scaling],
    }


def card_to_dict(card: ModelCard) -> dict[str, Any]:
    """The card as a JSON-ready dict, every field explicit."""
    return {
        "format": CARD_FORMAT,
        "version": card.version,
        "name": card.name,
        "architecture": card.architecture,
        "description": card.description,
        "licence": card.licence,
        "training_data": card.training_data,
        "validation_metrics": dict(card.validation_metrics),
        "inputs": [{"role": item.role, **_tensor_dict(item)} for item in card.inputs],
        "output": _tensor_dict(card.output),
        "context_margin": card.context_margin,
        "size_multiple": card.size_multiple,
        "recommended_tile_size": card.recommended_tile_size,
    }


def card_to_json(card: ModelCard, indent: int | None = 2) -> str:
    return json.dumps(card_to_dict(card), indent=indent, ensure_ascii=False, allow_nan=False)


# ---------------------------------------------------------------- readable form


def describe_scaling(scaling: BandScaling) -> str:
    """One band's scaling in words, e.g. `10·log10(x), clipped to [-25, 0], (v + 25) × 0.04`."""
    steps = ["10·log10(x)"] if scaling.db else []
    if scaling.clip_min is not None or scaling.clip_max is not None:
        low = "−∞" if scaling.clip_min is None else f"{scaling.clip_min:g}"
        high = "+∞" if scaling.clip_max is None else f"{scaling.clip_max:g}"
        steps.append(f"clipped to [{low}, {high}]")
    value = "v"
    if scaling.offset:
        sign = "−" if scaling.offset > 0 else "+"
        value = f"(v {sign} {abs(scaling.offset):g})"
    if scaling.scale != 1:
        value += f" × {scaling.scale:g}"
    if value != "v":
        steps.append(value)
    return ", ".join(steps) or "as is"


def _describe_tensor(tensor: TensorCard) -> list[str]:
    lines = [f"bands ({len(tensor.bands)}): {', '.join(tensor.bands)}"]
    if len(set(tensor.scaling)) == 1:
        lines.append(f"scaling of every band: {describe_scaling(tensor.scaling[0])}")
    else:
        lines += [
            f"scaling of {band}: {describe_scaling(scaling)}"
            for band, scaling in zip(tensor.bands, tensor.scaling, strict=False)
        ]
    return [f"    {line}" for line in lines]


def describe_card(card: ModelCard) -> str:
    """The card in readable form, for users to see what a model needs before running it."""
    from . import baselines

    metrics = {key: value for key, value in card.validation_metrics.items() if key != "baselines"}
    entry = baselines.of_metrics(card.validation_metrics)
    verdict_text = (
        baselines.describe(entry)
        if entry
        else "Baseline verdict: none (the card does not compare the model with the classical "
        "fills; measure it with 'Evaluate fill' next to 'Fill gaps spatially')"
    )
    lines = [f"Model: {card.name}" + (f" ({card.architecture})" if card.architecture else "")]
    lines += [card.description] if card.description else []
    lines += [f"Licence: {card.licence or 'not stated'}"]
    lines += [f"Trained on: {card.training_data or 'not stated'}"]
    lines += ["Inputs:"]
    for item in card.inputs:
        lines.append(
            f"  - {ROLE_LABELS.get(item.role, item.role)} (role '{item.role}', "
            f"tensor '{item.name}')"
        )
        lines += _describe_tensor(item)
    lines += [f"Output (tensor '{card.output.name}'), scaling inverted after the network:"]
    lines += _describe_tensor(card.output)
    lines += [
        f"Context margin: {card.context_margin} px; tile sizes: multiples of "
        f"{card.size_multiple} px, {card.recommended_tile_size} px recommended",
        "Validation metrics: " + (json.dumps(metrics) if metrics else "none"),
        verdict_text,
        f"Card format version: {card.version}",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- semantic checks


def _tensor_problems(tensor: TensorCard, label: str) -> list[str]:
    problems = []
    if not tensor.name:
        problems.append(f"{label} has an empty name (the ONNX tensor name)")
    if not tensor.bands:
        problems.append(f"{label} lists no bands")
    duplicates = sorted({band for band in tensor.bands if tensor.bands.count(band) > 1})
    if duplicates:
        problems.append(f"{label} lists bands {', '.join(duplicates)} more than once")
    if len(tensor.scaling) != len(tensor.bands):
        problems.append(
            f"{label} has {len(tensor.scaling)} scalings for {len(tensor.bands)} bands "
            "(one scaling per band)"
        )
    for band, scaling in zip(tensor.bands, tensor.scaling, strict=False):
        where = f"{label}, band {band}"
        if not math.isfinite(scaling.offset):
            problems.append(f"{where}: offset must be finite")
        if not math.isfinite(scaling.scale) or scaling.scale == 0:
            problems.append(f"{where}: scale must be finite and non-zero")
        low, high = scaling.clip_min, scaling.clip_max
        if low is not None and high is not None and low > high:
            problems.append(f"{where}: clip_min {low} is above clip_max {high}")
    return problems


def _input_label(item: ModelInput) -> str:
    return f"input '{item.name}' ({ROLE_LABELS.get(item.role, item.role)})"


def validate_card(card: ModelCard, source: str = "the model") -> None:
    """Raise `ModelCardError` listing every problem of the card, or return silently."""
    problems = []
    if not card.name.strip():
        problems.append("name is empty")
    if not card.inputs:
        problems.append("inputs is empty: the card lists no input tensor")
    names = [item.name for item in card.inputs]
    roles = [item.role for item in card.inputs]
    for item in card.inputs:
        label = _input_label(item)
        if item.role not in ROLES:
            problems.append(f"{label}: role '{item.role}' is not one of {', '.join(ROLES)}")
        problems += _tensor_problems(item, label)
    for repeated, what in ((names, "name"), (roles, "role")):
        duplicates = sorted({value for value in repeated if repeated.count(value) > 1})
        if duplicates:
            problems.append(f"several inputs have the {what} {', '.join(duplicates)}")
    if card.inputs and set(roles) <= {"gap_mask"}:
        problems.append("the only input is the gap mask: a model needs some image to fill from")
    gap_input = card.input_for("gap_mask")
    series_input = card.input_for("time_series")
    gap_bands = {1} if series_input is None else {1, len(series_input.bands)}
    if gap_input is not None and len(gap_input.bands) not in gap_bands:
        problems.append(
            f"{_input_label(gap_input)} must have exactly one band (1 = gap)"
            + ("" if series_input is None else " or one per date of the time series")
        )
    problems += _tensor_problems(card.output, "the output")
    target_input = card.input_for("target")
    if target_input is not None:
        missing = [band for band in target_input.bands if band not in card.output.bands]
        if missing:
            problems.append(
                f"{_input_label(target_input)} takes bands {', '.join(missing)} that the output "
                "does not have (the target's bands are a subset of the output bands)"
            )
    if card.context_margin < 0:
        problems.append(f"context_margin is {card.context_margin}; it must be 0 or more pixels")
    elif card.context_margin > MAX_CONTEXT_MARGIN:
        problems.append(
            f"context_margin is {card.context_margin} px; more than {MAX_CONTEXT_MARGIN} px of "
            "context per side is no network's need (and would not fit in memory)"
        )
    if not 1 <= card.recommended_tile_size <= MAX_TILE_SIZE:
        problems.append(
            f"recommended_tile_size is {card.recommended_tile_size}; it must be 1 to "
            f"{MAX_TILE_SIZE} px"
        )
    if card.size_multiple < 1:
        problems.append(f"size_multiple is {card.size_multiple}; it must be 1 or more")
    elif card.recommended_tile_size % card.size_multiple:
        problems.append(
            f"recommended_tile_size {card.recommended_tile_size} is not a multiple of "
            f"size_multiple {card.size_multiple}"
        )
    if card.recommended_tile_size <= 2 * card.context_margin:
        problems.append(
            f"recommended_tile_size {card.recommended_tile_size} leaves nothing inside twice the "
            f"context_margin ({card.context_margin} px)"
        )
    try:
        json.dumps(dict(card.validation_metrics), allow_nan=False)
    except (TypeError, ValueError):
        problems.append(
            "validation_metrics must hold JSON values (numbers, texts, lists, objects), "
            "without NaN or infinity"
        )
    if problems:
        listing = "\n".join(f"- {problem}" for problem in problems)
        raise ModelCardError(f"The model card of {source} is invalid:\n{listing}\n{FIX_HINT}")


# ---------------------------------------------------------------- card ↔ ONNX graph


@dataclass(frozen=True)
class GraphTensor:
    """A graph input or output: static dims are ints, dynamic ones None; shape None = unknown."""

    name: str
    shape: tuple[int | None, ...] | None
    element_type: str  # numpy dtype name ("float32") or ONNX's own name when it has none


ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64"}


def graph_of_session(session: Any) -> tuple[list[GraphTensor], list[GraphTensor]]:
    """Inputs and outputs of an onnxruntime.InferenceSession."""

    def tensor(arg: Any) -> GraphTensor:
        shape = tuple(dim if isinstance(dim, int) else None for dim in arg.shape)
        return GraphTensor(arg.name, shape, ORT_TYPES.get(arg.type, arg.type))

    return [tensor(arg) for arg in session.get_inputs()], [
        tensor(arg) for arg in session.get_outputs()
    ]


def graph_of_onnx(model: Any) -> tuple[list[GraphTensor], list[GraphTensor]]:
    """Inputs (initializers excluded) and outputs of an onnx.ModelProto."""
    onnx = require("onnx", "Reading an ONNX graph")
    graph = model.graph
    initializers = {item.name for item in graph.initializer}

    def tensor(value: Any) -> GraphTensor:
        tensor_type = value.type.tensor_type
        shape = None
        if tensor_type.HasField("shape"):
            dims = tensor_type.shape.dim
            shape = tuple(dim.dim_value if dim.HasField("dim_value") else None for dim in dims)
        try:
            element = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name
        except (KeyError, ValueError, TypeError):
            element = onnx.TensorProto.DataType.Name(tensor_type.elem_type).lower()
        return GraphTensor(value.name, shape, element)

    inputs = [tensor(value) for value in graph.input if value.name not in initializers]
    return inputs, [tensor(value) for value in graph.output]


def _graph_tensor_problems(spec: TensorCard, tensor: GraphTensor, label: str) -> list[str]:
    problems = []
    if tensor.element_type not in FEEDABLE_TYPES:
        problems.append(
            f"{label} is of type {tensor.element_type} in the network; Gapfill feeds and reads "
            f"{' or '.join(FEEDABLE_TYPES)}"
        )
    if tensor.shape is None:
        return problems
    if len(tensor.shape) != 4:
        problems.append(
            f"{label} has {len(tensor.shape)} dimensions in the network; Gapfill uses "
            "(batch, bands, height, width)"
        )
    elif tensor.shape[1] is not None and tensor.shape[1] != len(spec.bands):
        problems.append(
            f"{label} has {tensor.shape[1]} channels in the network but the card lists "
            f"{len(spec.bands)} bands ({', '.join(spec.bands)})"
        )
    return problems


def check_graph(
    card: ModelCard,
    inputs: list[GraphTensor],
    outputs: list[GraphTensor],
    source: str = "the model",
) -> None:
    """Raise `ModelCardError` unless the graph's inputs and output are the card's, band for band."""
    problems = []
    graph_inputs = {tensor.name: tensor for tensor in inputs}
    described = {item.name for item in card.inputs}
    for item in card.inputs:
        label = _input_label(item)
        if item.name not in graph_inputs:
            problems.append(
                f"the card's {label} is not an input of the network (its inputs: "
                f"{', '.join(graph_inputs) or 'none'})"
            )
            continue
        problems += _graph_tensor_problems(item, graph_inputs[item.name], label)
    for name in graph_inputs:
        if name not in described:
            problems.append(f"the network's input '{name}' is not described by the card")
    graph_outputs = {tensor.name: tensor for tensor in outputs}
    label = f"output '{card.output.name}'"
    if card.output.name not in graph_outputs:
        problems.append(
            f"the card's {label} is not an output of the network (its outputs: "
            f"{', '.join(graph_outputs) or 'none'})"
        )
    else:
        problems += _graph_tensor_problems(card.output, graph_outputs[card.output.name], label)
    if problems:
        listing = "\n".join(f"- {problem}" for problem in problems)
        raise ModelCardError(
            f"The network of {source} does not match its model card:\n{listing}\n{FIX_HINT}"
        )


# ---------------------------------------------------------------- reading and writing


def card_of_session(session: Any, source: str = "the model") -> ModelCard:
    """The card of a loaded model, checked against its graph."""
    text = session.get_modelmeta().custom_metadata_map.get(CARD_KEY)
    if text is None:
        raise ModelCardError(
            f"There is no Gapfill model card in {source} (metadata key '{CARD_KEY}'), so Gapfill "
            "cannot know its inputs, bands and scaling. " + FIX_HINT
        )
    card = card_from_json(text, source)
    check_graph(card, *graph_of_session(session), source)
    return card


def read_card(onnx_path: str | Path) -> ModelCard:
    """Read and check the card of an ONNX file (loads it on the CPU)."""
    from .onnx_session import create_session

    return card_of_session(create_session(onnx_path, "cpu"), f"'{onnx_path}'")


def write_card(model: str | Path | Any, card: ModelCard) -> Any:
    """Store `card` in an ONNX file (rewritten in place) or an onnx.ModelProto (modified).

    The card is validated and checked against the graph first. Returns the ModelProto.
    """
    onnx = require("onnx", "Writing a model card")
    is_path = isinstance(model, (str, Path))
    source = f"'{model}'" if is_path else "the model"
    validate_card(card, source)
    proto = onnx.load(str(model)) if is_path else model
    check_graph(card, *graph_of_onnx(proto), source)
    others = [entry for entry in proto.metadata_props if entry.key != CARD_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(others)
    entry = proto.metadata_props.add()
    entry.key, entry.value = CARD_KEY, card_to_json(card)
    if is_path:
        path = Path(model)
        temporary = path.with_name(f".{path.name}.partial")
        try:
            onnx.save(proto, str(temporary))
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    return proto
