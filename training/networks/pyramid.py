"""`unet-pyramid`: the `unet-fusion` U-Net as a residual on a pyramid fill of the target.

For single-date filling: the target's clear pixels are spread into its gaps by a push-pull
pyramid (averages of the clear pixels over 2, 4, … 2^levels px blocks, brought back down with
bilinear upsampling, each level filling only what the finer one lacks: a smooth interpolation
from the gap's edges, like spatial IDW), and the U-Net, which sees every input role and that
fill, adds a residual correction (texture, the colours Sentinel-1 points to). Its output layer
starts at zero, so the untrained network is that fill. The target's values under the gap mask
(clouds, when the fill engine feeds a cloudy image) never enter: the network reads on real
clouds what it read on the simulated gaps it was trained on. The plain U-Net
must reproduce each band's level from its context and, on a scene unlike its training scenes,
misses it by far more than spatial IDW (BENCHMARKS.md, "Training defaults" (B)); this network
starts from the scene's own values around the gap.

The pyramid has LEVELS_OVER_DEPTH more levels than the U-Net (7 for 4: blocks of 128 px, a
filled pixel reads clear pixels up to 254 px away, where 4 levels, 30 px, left most of a large
gap at 0). Blocks of 2^levels px without any clear pixel take the value 0 (each band's training
mean in the centred scaling); the residual then carries the whole prediction there.
The target must hold the output bands, in the output's scaling (the training package scales
them alike).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional

from .base import measure_margin
from .unet import UNetFusion, double_conv

LEVELS_OVER_DEPTH = 3
MEASURE_SIZE = 256  # px: the probe of the pyramid's reach (at least 4 coarsest blocks)


def pyramid_fill(values: torch.Tensor, valid: torch.Tensor, levels: int) -> torch.Tensor:
    """`values` (N, C, H, W) with their pixels where `valid` (N, 1, H, W) is 0 filled from the
    valid ones (push-pull); valid pixels are kept exactly. H and W: multiples of 2^levels."""
    sums, weights = [values * valid], [valid]
    for _ in range(levels):
        sums.append(functional.avg_pool2d(sums[-1], 2))
        weights.append(functional.avg_pool2d(weights[-1], 2))
    filled = sums[-1] / weights[-1].clamp_min(1e-6)  # mean of the clear pixels, 0 without
    for level in reversed(range(levels)):
        coarse = functional.interpolate(filled, scale_factor=2.0, mode="bilinear")
        filled = sums[level] + (1.0 - weights[level]) * coarse
    return filled


@functools.lru_cache(maxsize=8)
def pyramid_reach(levels: int) -> int:
    """How far, in pixels, a filled pixel reads clear pixels (measured: the gradient of a pixel
    in a gap with sparse clear pixels around, over its phases modulo 2^levels)."""
    multiple = 2**levels
    size = max(MEASURE_SIZE, 8 * multiple)
    generator = torch.Generator().manual_seed(0)
    centre, reach = size // 2, 0
    for phase in range(multiple):  # one at a time: 128 phases of 1024² px at 7 levels
        valid = (torch.rand(1, 1, size, size, generator=generator) < 0.02).double()
        values = torch.rand(1, 1, size, size, generator=generator, dtype=torch.float64)
        values.requires_grad_(True)
        pixel = centre + phase
        valid[0, 0, pixel, pixel] = 0.0
        output = pyramid_fill(values, valid, levels)
        (gradient,) = torch.autograd.grad(output[0, 0, pixel, pixel], [values])
        rows, columns = torch.nonzero(gradient[0, 0] != 0, as_tuple=True)
        reach = max(reach, int((rows - pixel).abs().max()), int((columns - pixel).abs().max()))
    return reach


class UNetPyramid(UNetFusion):
    architecture = "unet-pyramid"
    required_roles = ("target", "gap_mask")
    description = (
        "U-Net residual on a pyramid fill of the target from its clear pixels (single date)"
    )

    def __init__(
        self, inputs: Mapping[str, int], out_channels: int, width: int = 0, depth: int = 0
    ) -> None:
        super().__init__(inputs, out_channels, width, depth)
        if self.inputs["target"] != out_channels:
            raise ValueError(
                f"unet-pyramid needs a target with the {out_channels} output bands, not "
                f"{self.inputs['target']}"
            )
        first = self.down[0][0]
        self.down[0] = double_conv(first.in_channels + out_channels, first.out_channels)
        self.levels = self.depth + LEVELS_OVER_DEPTH
        self.target = self.roles.index("target")
        self.mask = self.roles.index("gap_mask")
        nn.init.zeros_(self.head.weight)  # untrained, it is the pyramid fill: training moves
        # away from that classical fill only where the gradient of the training gaps says so

    @classmethod
    def multiple_for(cls, depth: int) -> int:
        return max(super().multiple_for(depth), 2 ** (depth + LEVELS_OVER_DEPTH))

    @property
    def context_margin(self) -> int:
        """The U-Net's field over the pyramid fill's reach, rounded up to the size multiple
        (tiles then start on the pyramid's block grid, so tiles agree where they overlap)."""
        field = measure_margin(UNetFusion, tuple(self.inputs.items()), self.out_channels,
                               self.depth)  # the U-Net's, measured at its own size multiple
        margin = field + pyramid_reach(self.levels)
        return -(-margin // self.size_multiple) * self.size_multiple

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        valid = 1.0 - inputs[self.mask].clamp(0.0, 1.0)
        target = inputs[self.target] * valid
        filled = pyramid_fill(target, valid, self.levels)
        seen = [target if index == self.target else item for index, item in enumerate(inputs)]
        return filled + super().forward(*seen, filled)
