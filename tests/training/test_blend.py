"""`unet-blend`: its long skip is the learned blend of the before/after dates."""

from __future__ import annotations

import pytest
import torch

from gapfill.training.networks import get_model

ROLES = {"target": 3, "gap_mask": 1, "optical_before": 3, "optical_after": 3}


def blend_with_head(weight_logit: float):
    torch.manual_seed(0)
    model = get_model("unet-blend", ROLES, 3, width=4, depth=2).eval()
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
        model.head.bias[0] = weight_logit
    return model


def inputs():
    generator = torch.Generator().manual_seed(1)
    return [torch.rand(2, channels, 16, 16, generator=generator) for channels in ROLES.values()]


@pytest.mark.parametrize(("logit", "expected"), [(0.0, "mean"), (50.0, "before"), (-50.0, "after")])
def test_output_is_the_blend_when_the_residual_is_zero(logit, expected):
    target, gap, before, after = inputs()
    with torch.no_grad():
        output = blend_with_head(logit)(target, gap, before, after)
    wanted = {"mean": (before + after) / 2, "before": before, "after": after}[expected]
    torch.testing.assert_close(output, wanted)


def test_roles_order_and_band_check():
    model = get_model("unet-blend", ROLES, 3, width=4, depth=2)
    assert model.roles == tuple(ROLES)
    assert (model.before, model.after) == (2, 3)
    with pytest.raises(ValueError, match="optical_before with the 13 output bands"):
        get_model("unet-blend", ROLES, 13, width=4, depth=2)
