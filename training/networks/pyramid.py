"""`unet-pyramid`: the `unet-fusion` U-Net as a residual on a pyramid fill of the target.

For single-date filling: the target's clear pixels are spread into its gaps by a push-pull
pyramid (averages of the clear pixels over 2, 4, … 2^LEVELS px blocks, brought back down with
bilinear upsampling, each level filling only what the finer one lacks: a smooth interpolation
from the gap's edges, like spatial IDW), and the U-Net, which sees every input role and that
fill, adds a residual correction (texture, the colours Sentinel-1 points to). The plain U-Net
must reproduce each band's level from its context and, on a scene unlike its training scenes,
misses it by far more than spatial IDW (BENCHMARKS.md, "Training defaults" (B)); this network
starts from the scene's own values around the gap.

Blocks of 2^LEVELS px without any clear pixel take the value 0 (each band's training mean in
the centred scaling); the residual then carries the whole prediction, as in `unet-fusion`.
The target must hold the output bands, in the output's scaling (the training package scales
them alike).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import torch
from torch.nn import functional

from .unet import UNetFusion, double_conv

LEVELS = 4  # blocks of 16 px: a filled pixel reads clear pixels up to 30 px away
MEASURE_SIZE = 256  # px: the probe of the pyramid's reach (at least 4 coarsest blocks)


def pyramid_fill(values: torch.Tensor, valid: torch.Tensor, levels: int = LEVELS) -> torch.Tensor:
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
def pyramid_reach(levels: int = LEVELS) -> int:
    """How far, in pixels, a filled pixel reads clear pixels (measured: the gradient of a pixel
    in a gap with sparse clear pixels around, over its phases modulo 2^levels)."""
    multiple = 2**levels
    size = max(MEASURE_SIZE, 8 * multiple)
    generator = torch.Generator().manual_seed(0)
    valid = (torch.rand(multiple, 1, size, size, generator=generator) < 0.02).double()
    values = torch.rand(multiple, 1, size, size, generator=generator, dtype=torch.float64)
    values.requires_grad_(True)
    centre = size // 2
    pixels = torch.arange(multiple) + centre
    valid[torch.arange(multiple), :, pixels, pixels] = 0.0
    output = pyramid_fill(values, valid, levels)
    picked = output[torch.arange(multiple), 0, pixels, pixels]
    (gradient,) = torch.autograd.grad(picked.sum(), [values])
    reach = 0
    for phase in range(multiple):
        rows, columns = torch.nonzero(gradient[phase, 0] != 0, as_tuple=True)
        pixel = centre + phase
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
        self.target = self.roles.index("target")
        self.mask = self.roles.index("gap_mask")

    @classmethod
    def multiple_for(cls, depth: int) -> int:
        return max(super().multiple_for(depth), 2**LEVELS)

    @property
    def context_margin(self) -> int:
        """The U-Net's field over the pyramid fill's reach, rounded up to the size multiple
        (tiles then start on the pyramid's block grid, so tiles agree where they overlap)."""
        margin = super().context_margin + pyramid_reach()
        return -(-margin // self.size_multiple) * self.size_multiple

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        target = inputs[self.target]
        valid = 1.0 - inputs[self.mask].clamp(0.0, 1.0)
        filled = pyramid_fill(target, valid)
        return filled + super().forward(*inputs, filled)
