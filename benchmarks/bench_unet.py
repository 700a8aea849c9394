"""The benchmark network: a width-32, three-level U-Net for S2 (13 bands) + S1 (2) + gap mask.

A representative CPU model, not a trained one: random weights with a fixed seed. Encoder and
decoder have two 3×3 convolutions per level (32, 64, 128 channels at full, 1/2 and 1/4
resolution), max pooling down, nearest upsampling and concatenated skips up, a 1×1 head and a
long skip adding the cloudy S2 input (as in DSen2-CR). About 230 kFLOP per output pixel.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

S2_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
S1_BANDS = ("VV", "VH")
WIDTH = 32
SEED = 12
CONTEXT_MARGIN = 24  # px, a multiple of SIZE_MULTIPLE covering the receptive half-width (~22 px)
SIZE_MULTIPLE = 8


def build_unet(seed: int = SEED) -> Any:
    """The U-Net (torch.nn.Module, eval mode) with weights drawn from `seed`."""
    import torch
    from torch import nn

    def double(in_channels: int, out_channels: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.ReLU(),
        )

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            channels = len(S2_BANDS) + len(S1_BANDS) + 1
            self.down1 = double(channels, WIDTH)
            self.down2 = double(WIDTH, 2 * WIDTH)
            self.bottom = double(2 * WIDTH, 4 * WIDTH)
            self.up2 = double(6 * WIDTH, 2 * WIDTH)
            self.up1 = double(3 * WIDTH, WIDTH)
            self.head = nn.Conv2d(WIDTH, len(S2_BANDS), 1)

        def forward(self, s2: torch.Tensor, s1: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            pool, up = nn.functional.max_pool2d, nn.functional.interpolate
            level1 = self.down1(torch.cat([s2, s1, mask], dim=1))
            level2 = self.down2(pool(level1, 2))
            x = self.bottom(pool(level2, 2))
            x = self.up2(torch.cat([up(x, scale_factor=2.0, mode="nearest"), level2], dim=1))
            x = self.up1(torch.cat([up(x, scale_factor=2.0, mode="nearest"), level1], dim=1))
            return s2 + self.head(x)

    torch.manual_seed(seed)
    return UNet().eval()


def flop_per_pixel(network: Any, size: int = 64) -> float:
    """FLOPs per input pixel of the convolutions (2 per multiply-add, bias included), counted
    on a forward pass with hooks."""
    import torch

    flops = [0]

    def count(module: Any, _inputs: Any, output: Any) -> None:
        kernel = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
        flops[0] += output.numel() * (2 * kernel + 1)

    hooks = [
        module.register_forward_hook(count)
        for module in network.modules()
        if isinstance(module, torch.nn.Conv2d)
    ]
    with torch.no_grad():
        network(*(torch.zeros(1, bands, size, size) for bands in (13, 2, 1)))
    for hook in hooks:
        hook.remove()
    return flops[0] / size**2


def receptive_half_width(network: Any, size: int = 128) -> int:
    """How far (px) from an output pixel its inputs reach, from the gradient of that pixel."""
    import torch

    torch.manual_seed(0)
    inputs = [torch.rand(1, bands, size, size, requires_grad=True) for bands in (13, 2, 1)]
    network(*inputs)[0, :, size // 2, size // 2].sum().backward()
    reach = sum(item.grad.abs().sum(dim=(0, 1)) for item in inputs) > 0
    rows, columns = reach.nonzero(as_tuple=True)
    return int(max((rows - size // 2).abs().max(), (columns - size // 2).abs().max()))


def export_unet(path: Path, tile_size: int, seed: int = SEED) -> Any:
    """Export the U-Net to ONNX (dynamic batch, height, width) with its card; return the card."""
    import torch

    from gapfill.core.learned.model_card import (
        BandScaling,
        ModelCard,
        ModelInput,
        TensorCard,
        write_card,
    )

    network = build_unet(seed)
    names = ["s2", "s1", "mask"]
    dummies = tuple(torch.zeros(1, bands, 64, 64) for bands in (13, 2, 1))
    axes = {0: "batch", 2: "height", 3: "width"}
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # the TorchScript exporter announces its deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            network,
            dummies,
            str(path),
            dynamo=False,
            input_names=names,
            output_names=["filled"],
            dynamic_axes={key: axes for key in [*names, "filled"]},
            opset_version=17,
        )
    reflectance = BandScaling(scale=1e-4, clip_min=0.0, clip_max=10000.0)
    sar = BandScaling(offset=-25.0, scale=0.04, clip_min=-25.0, clip_max=0.0)
    card = ModelCard(
        name="bench-unet32",
        inputs=(
            ModelInput("s2", S2_BANDS, (reflectance,) * len(S2_BANDS), "target"),
            ModelInput("s1", S1_BANDS, (sar,) * len(S1_BANDS), "sar"),
            ModelInput("mask", ("gap",), (BandScaling(),), "gap_mask"),
        ),
        output=TensorCard("filled", S2_BANDS, (reflectance,) * len(S2_BANDS)),
        context_margin=CONTEXT_MARGIN,
        size_multiple=SIZE_MULTIPLE,
        recommended_tile_size=tile_size,
        architecture=f"U-Net, width {WIDTH}, three levels, long skip on S2",
        description=f"random weights (seed {seed}): a representative CPU load for benchmarks only",
        licence="GPL-2.0-or-later",
        training_data="none",
        validation_metrics={},
    )
    write_card(path, card)
    return card
