"""Network architectures and their registry (`get_model(name, ...)`)."""

from __future__ import annotations

from collections.abc import Mapping

from ..config import ARCHITECTURES
from .base import GapfillNet, flops_per_pixel, measure_margin, parameter_count
from .blend import UNetBlend
from .cgan import ConditionalGAN
from .deepgapfill import DeepGapfill
from .dsen2cr import DSen2CR
from .pconv import PConvUNet
from .pyramid import UNetPyramid
from .unet import UNetFusion

REGISTRY: dict[str, type[GapfillNet]] = {
    cls.architecture: cls
    for cls in (UNetFusion, DeepGapfill, DSen2CR, PConvUNet, ConditionalGAN, UNetBlend, UNetPyramid)
}
assert tuple(sorted(REGISTRY)) == tuple(sorted(ARCHITECTURES))


def architecture(name: str) -> type[GapfillNet]:
    """The class of an architecture, for its roles and size multiple before building it."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"Unknown architecture '{name}': use one of {', '.join(REGISTRY)}."
        ) from None


def get_model(
    name: str,
    inputs: Mapping[str, int],
    out_channels: int,
    *,
    width: int = 0,
    depth: int = 0,
    **options: object,
) -> GapfillNet:
    """Build an architecture for `inputs` (role → channels) and `out_channels` output bands."""
    return architecture(name)(inputs, out_channels, width=width, depth=depth, **options)


def model_from_config(config: Mapping[str, object]) -> GapfillNet:
    """Rebuild a network from `GapfillNet.config()` (as stored in checkpoints)."""
    options = dict(config)
    name = str(options.pop("architecture"))
    inputs = options.pop("inputs")
    out_channels = options.pop("out_channels")
    return get_model(name, inputs, out_channels, **options)


__all__ = [
    "REGISTRY",
    "GapfillNet",
    "architecture",
    "flops_per_pixel",
    "get_model",
    "measure_margin",
    "model_from_config",
    "parameter_count",
]
