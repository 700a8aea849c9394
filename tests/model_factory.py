"""Small real ONNX models, built with PyTorch once per session, with their model cards.

Each network concatenates its inputs and runs 3×3 convolutions, so its receptive field is known:
`plain` reaches 2 px (two convolutions), `pooled` reaches 6 px and needs sizes that are
multiples of 2 (average pooling, a convolution at half resolution, nearest upsampling).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

S2_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
S1_BANDS = ("VV", "VH")


@dataclass(frozen=True)
class BuiltModel:
    path: Path
    card: object  # gapfill.core.learned.model_card.ModelCard


def build_network(in_channels: int, out_channels: int, pooled: bool, seed: int):
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first = nn.Conv2d(in_channels, 8, 3, padding=1)
            self.middle = nn.Conv2d(8, 8, 3, padding=1) if pooled else None
            self.last = nn.Conv2d(8, out_channels, 3, padding=1)

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            x = torch.relu(self.first(torch.cat(inputs, dim=1)))
            if self.middle is not None:
                x = nn.functional.avg_pool2d(x, 2)
                x = torch.relu(self.middle(x))
                x = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
            return self.last(x)

    torch.manual_seed(seed)
    return Net().eval()


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
    """Export a network taking `inputs` (name, role, bands, scaling per band) with its card.

    `fixed`: static shapes, batches of 2 tiles of 32 × 32 px, instead of dynamic ones.
    """
    import torch

    from gapfill.core.learned.model_card import ModelCard, ModelInput, TensorCard, write_card

    channels = sum(len(bands) for _, _, bands, _ in inputs)
    network = build_network(channels, len(output_bands), pooled, seed)
    batch, size = (2, 32) if fixed else (1, 16)
    dummies = tuple(torch.zeros(batch, len(bands), size, size) for _, _, bands, _ in inputs)
    names = [input_name for input_name, _, _, _ in inputs]
    axes = {0: "batch", 2: "height", 3: "width"}
    path = folder / f"{name}.onnx"
    with warnings.catch_warnings():  # the TorchScript exporter announces its deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            network,
            dummies,
            str(path),
            dynamo=False,
            input_names=names,
            output_names=["filled"],
            dynamic_axes=None if fixed else {key: axes for key in [*names, "filled"]},
            opset_version=17,
        )
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
