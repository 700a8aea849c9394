"""Small real ONNX models, built with the `onnx` package once per session, with their model cards.

Each network concatenates its inputs and runs 3×3 convolutions, so its receptive field is known:
`plain` reaches 2 px (two convolutions), `pooled` reaches 6 px and needs sizes that are
multiples of 2 (average pooling, a convolution at half resolution, nearest upsampling). The
graphs are written node by node (no PyTorch), so the ONNX fills are tested where torch is not
installed (the QGIS 3.40 root of `make test-lts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

S2_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
S1_BANDS = ("VV", "VH")
FEATURES = 8


@dataclass(frozen=True)
class BuiltModel:
    path: Path
    card: object  # gapfill.core.learned.model_card.ModelCard


def build_network(
    in_channels: int, out_channels: int, pooled: bool, seed: int
) -> tuple[list, list]:
    """Nodes and weights of the network on the input 'x' (output 'filled'): 3×3 convolutions
    with ReLU, initialised like PyTorch's (uniform within 1/√fan-in)."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, weights = [], []

    def conv(source: str, target: str, channels_in: int, channels_out: int) -> None:
        bound = 1.0 / np.sqrt(channels_in * 9)
        for suffix, shape in (("w", (channels_out, channels_in, 3, 3)), ("b", (channels_out,))):
            array = rng.uniform(-bound, bound, shape).astype(np.float32)
            weights.append(numpy_helper.from_array(array, f"{target}_{suffix}"))
        nodes.append(
            helper.make_node(
                "Conv", [source, f"{target}_w", f"{target}_b"], [target], pads=[1, 1, 1, 1]
            )
        )

    conv("x", "first", in_channels, FEATURES)
    nodes.append(helper.make_node("Relu", ["first"], ["first_relu"]))
    last_input = "first_relu"
    if pooled:
        nodes.append(
            helper.make_node(
                "AveragePool", ["first_relu"], ["pooled"], kernel_shape=[2, 2], strides=[2, 2]
            )
        )
        conv("pooled", "middle", FEATURES, FEATURES)
        nodes.append(helper.make_node("Relu", ["middle"], ["middle_relu"]))
        scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
        weights.append(scales)
        nodes.append(
            helper.make_node(
                "Resize",
                ["middle_relu", "", "scales"],
                ["upsampled"],
                mode="nearest",
                coordinate_transformation_mode="asymmetric",
                nearest_mode="floor",
            )
        )
        last_input = "upsampled"
    conv(last_input, "filled", FEATURES, out_channels)
    return nodes, weights


def build_model(
    folder: Path,
    name: str,
    inputs: list[tuple[str, str, tuple[str, ...], object]],
    output_bands: tuple[str, ...],
    output_scaling: object,
    *,
    pooled: bool = False,
    seed: int = 0,
    with_card: bool = True,
    fixed: bool = False,
) -> BuiltModel:
    """Write a network taking `inputs` (name, role, bands, scaling per band) with its card.

    `fixed`: static shapes, batches of 2 tiles of 32 × 32 px, instead of dynamic ones.
    """
    import onnx
    from onnx import TensorProto, helper

    from gapfill.core.learned.model_card import ModelCard, ModelInput, TensorCard, write_card

    channels = sum(len(bands) for _, _, bands, _ in inputs)
    nodes, weights = build_network(channels, len(output_bands), pooled, seed)
    names = [input_name for input_name, _, _, _ in inputs]
    nodes.insert(0, helper.make_node("Concat", names, ["x"], axis=1))

    def shape(count: int) -> list:
        return [2, count, 32, 32] if fixed else ["batch", count, "height", "width"]

    graph = helper.make_graph(
        nodes,
        name,
        [
            helper.make_tensor_value_info(input_name, TensorProto.FLOAT, shape(len(bands)))
            for input_name, _, bands, _ in inputs
        ],
        [helper.make_tensor_value_info("filled", TensorProto.FLOAT, shape(len(output_bands)))],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    path = folder / f"{name}.onnx"
    onnx.save(model, str(path))
    card = ModelCard(
        name=name,
        inputs=tuple(
            ModelInput(input_name, bands, (scaling,) * len(bands), role)
            for input_name, role, bands, scaling in inputs
        ),
        output=TensorCard("filled", output_bands, (output_scaling,) * len(output_bands)),
        context_margin=6 if pooled else 2,
        size_multiple=2 if pooled else 1,
        recommended_tile_size=32,
        architecture="tiny test network",
        description="random weights, for tests of the engine only",
        licence="GPL-2.0-or-later",
        training_data="none",
        validation_metrics={"mae": 0.5},
    )
    if with_card:
        write_card(path, card)
    return BuiltModel(path, card)


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuiltModel]:
    """The test networks: `plain`/`pooled` on 3-band rasters with a SAR and the gap mask,
    `fixed` (the weights of `plain`) with static shapes, `sen12` for the real SEN12MS-CR
    samples, `nocard` without a card."""
    from gapfill.core.learned.model_card import BandScaling

    folder = tmp_path_factory.mktemp("models")
    unit = BandScaling()
    rgb = ("red", "green", "blue")
    small = [
        ("optical", "target", rgb, BandScaling(offset=100.0, scale=0.01)),
        ("radar", "sar", ("VV",), BandScaling(db=True, clip_min=-30.0, clip_max=10.0, scale=0.1)),
        ("mask", "gap_mask", ("gap",), unit),
    ]
    reflectance = BandScaling(scale=1e-4, clip_min=0.0, clip_max=10000.0)
    sen12 = [
        ("s2", "target", S2_BANDS, reflectance),
        ("s1", "sar", S1_BANDS, BandScaling(offset=-25.0, scale=0.04, clip_min=-25.0, clip_max=0)),
        ("mask", "gap_mask", ("gap",), unit),
    ]
    out = BandScaling(offset=100.0, scale=0.01)
    return {
        "plain": build_model(folder, "plain", small, rgb, out),
        "fixed": build_model(folder, "fixed", small, rgb, out, fixed=True),
        "pooled": build_model(folder, "pooled", small, rgb, out, pooled=True, seed=1),
        "sen12": build_model(folder, "sen12", sen12, S2_BANDS, reflectance, seed=2),
        "nocard": build_model(folder, "nocard", small, rgb, out, with_card=False),
    }
