"""What every network shares: its input roles, size multiple and context margin.

A network takes one tensor per input role, in `roles` order (the ONNX input names), and returns
the output image at the input's height and width. `size_multiple` is what heights and widths must
be multiples of; `context_margin` is how far, in pixels, an output pixel sees into its input
(half the receptive field, measured: see `measure_margin`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from ..datasets import INPUT_ROLES


class GapfillNet(nn.Module):
    """Base of the architectures: subclasses set the class variables and build layers."""

    architecture: ClassVar[str] = ""
    required_roles: ClassVar[tuple[str, ...]] = ()
    default_roles: ClassVar[tuple[str, ...] | None] = None  # None: every input role available
    default_width: ClassVar[int] = 32
    default_depth: ClassVar[int] = 3
    probe_width: ClassVar[int] = 2  # width of the narrow copy that measures the margin
    description: ClassVar[str] = ""

    def __init__(
        self, inputs: Mapping[str, int], out_channels: int, width: int = 0, depth: int = 0
    ) -> None:
        super().__init__()
        unknown = [role for role in inputs if role not in INPUT_ROLES]
        if unknown:
            raise ValueError(f"unknown input roles {unknown}")
        missing = [role for role in self.required_roles if role not in inputs]
        if missing:
            raise ValueError(f"{self.architecture} needs the roles {', '.join(missing)}")
        self.inputs = {role: int(inputs[role]) for role in INPUT_ROLES if role in inputs}
        self.roles = tuple(self.inputs)
        self.out_channels = int(out_channels)
        self.width = int(width or self.default_width)
        self.depth = int(depth or self.default_depth)

    @classmethod
    def multiple_for(cls, depth: int) -> int:
        """The size multiple of a network of this depth (1 when it does not downsample)."""
        return 1

    @property
    def size_multiple(self) -> int:
        return self.multiple_for(self.depth)

    @property
    def context_margin(self) -> int:
        return measure_margin(type(self), tuple(self.inputs.items()), self.out_channels, self.depth)

    def config(self) -> dict[str, Any]:
        """What rebuilds the network (stored in checkpoints)."""
        return {
            "architecture": self.architecture,
            "inputs": dict(self.inputs),
            "out_channels": self.out_channels,
            "width": self.width,
            "depth": self.depth,
        }

    def exported(self) -> nn.Module:
        """The module that becomes the ONNX graph (the generator of a GAN)."""
        return self

    def split_inputs(self, inputs: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        return [inputs[role] for role in self.roles]


def zero_bias(layer: nn.Module) -> nn.Module:
    """Zero the bias of a network's output layer, so that an untrained network starts near
    0 in every band: each band's mean in the centred scaling the training package gives
    optical outputs (`datasets.default_scaling`). PyTorch's default bias, uniform in
    ±1/√fan-in (±0.18 at width 32), would start some bands far off and, clipped at a bound,
    dead."""
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)
    return layer


def concat(tensors: tuple[torch.Tensor, ...] | list[torch.Tensor]) -> torch.Tensor:
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors, dim=1)


@functools.lru_cache(maxsize=64)
def measure_margin(
    cls: type[GapfillNet], inputs: tuple[tuple[str, int], ...], out_channels: int, depth: int
) -> int:
    """The receptive-field half-size of an architecture, measured on a narrow copy.

    The copy has positive weights, biases and inputs (and normalisation in eval mode), so every
    activation is positive and no ReLU hides a dependency: the gradient of one output pixel is
    non-zero exactly on its receptive field. The largest distance from the pixel to that field,
    over the pixel's phases modulo the size multiple, is the margin. Width does not change it.
    """
    probe = cls(dict(inputs), out_channels, width=cls.probe_width, depth=depth).double().eval()
    with torch.no_grad():
        for parameter in probe.parameters():
            parameter.copy_(parameter.abs() + 0.01)
        for module in probe.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
    multiple = probe.size_multiple
    size = max(64, 4 * multiple)
    generator = torch.Generator().manual_seed(0)
    while True:
        margin, touches = _probe(probe, inputs, size, multiple, generator)
        if not touches:
            return margin
        if size >= 2048:
            raise RuntimeError(f"the receptive field of {cls.architecture} exceeds 1024 px")
        size *= 2


def _probe(
    probe: GapfillNet,
    inputs: tuple[tuple[str, int], ...],
    size: int,
    multiple: int,
    generator: torch.Generator,
) -> tuple[int, bool]:
    """One backward pass: sample `phase` of a batch holds the output pixel of that phase."""
    tensors = {}
    for role, channels in inputs:
        shape = (multiple, channels, size, size)
        values = torch.rand(*shape, generator=generator, dtype=torch.float64)
        tensors[role] = torch.zeros_like(values) if role == "gap_mask" else values + 0.5
        tensors[role].requires_grad_(True)
    output = probe(*probe.split_inputs(tensors))
    centre = size // 2 // multiple * multiple
    pixels = torch.arange(multiple) + centre
    picked = output[torch.arange(multiple), :, pixels, pixels]
    gradients = torch.autograd.grad(picked.sum(), list(tensors.values()))
    support = sum(gradient.abs().sum(dim=1) for gradient in gradients) > 0  # (phase, h, w)
    margin, touches = 0, False
    for phase in range(multiple):
        pixel = centre + phase
        rows = torch.nonzero(support[phase].any(dim=1)).flatten()
        columns = torch.nonzero(support[phase].any(dim=0)).flatten()
        first_row, last_row = int(rows.min()), int(rows.max())
        first_column, last_column = int(columns.min()), int(columns.max())
        touches |= first_row == 0 or first_column == 0
        touches |= last_row == size - 1 or last_column == size - 1
        margin = max(
            margin,
            pixel - first_row,
            last_row - pixel,
            pixel - first_column,
            last_column - pixel,
        )
    return margin, touches


def flops_per_pixel(model: GapfillNet, size: int = 64) -> float:
    """Floating-point operations per output pixel of the convolutions (2 × multiply-adds), at
    a `size` × `size` input: the cost that inference speed follows."""
    size = -(-size // model.size_multiple) * model.size_multiple
    total = 0

    def count(module: nn.Module, args: tuple[torch.Tensor, ...], output: object) -> None:
        nonlocal total
        output = output[0] if isinstance(output, tuple) else output
        kernel = module.kernel_size[0] * module.kernel_size[1]
        if isinstance(module, nn.ConvTranspose2d):
            total += args[0].numel() * module.out_channels * kernel // module.groups
        else:
            total += output.numel() * module.in_channels * kernel // module.groups

    exported = model.exported()
    hooks = [
        module.register_forward_hook(count)
        for module in exported.modules()
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d))
    ]
    device = next(exported.parameters()).device
    try:
        with torch.no_grad():
            exported.eval()
            exported(*[torch.zeros(1, c, size, size, device=device) for c in model.inputs.values()])
    finally:
        for hook in hooks:
            hook.remove()
    return 2.0 * total / (size * size)


def parameter_count(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())
