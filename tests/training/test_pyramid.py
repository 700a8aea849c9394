"""`unet-pyramid`: its long skip is the push-pull fill of the target from its clear pixels, and
its context margin bounds what a pixel in a gap reads."""

from __future__ import annotations

import pytest
import torch

from gapfill.training.networks import get_model
from gapfill.training.networks.pyramid import pyramid_fill, pyramid_reach

ROLES = {"target": 3, "gap_mask": 1, "sar": 2}


def test_the_fill_keeps_clear_pixels_and_interpolates_the_gaps():
    rows = torch.arange(64, dtype=torch.float32).view(1, 1, 64, 1).expand(1, 2, 64, 64)
    values = torch.stack([torch.full((64, 64), 3.0), rows[0, 0] / 10]).unsqueeze(0)
    valid = torch.ones(1, 1, 64, 64)
    valid[..., 20:40, 24:44] = 0  # a 20 px gap
    filled = pyramid_fill(values * valid, valid, 4)
    clear = valid.expand_as(values) == 1
    assert torch.equal(filled[clear], values[clear])
    gap = ~clear[0, 0]
    torch.testing.assert_close(filled[0, 0][gap], torch.full((int(gap.sum()),), 3.0))
    error = (filled[0, 1][gap] - values[0, 1][gap]).abs()
    assert error.mean() < 0.2 and error.max() < 0.6  # a ramp of 2 across the gap


def test_a_block_without_clear_pixels_is_the_mean_and_nothing_is_infinite():
    filled = pyramid_fill(torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32), 4)
    assert torch.equal(filled, torch.zeros_like(filled))


def test_untrained_the_output_is_the_pyramid_fill():
    torch.manual_seed(0)
    model = get_model("unet-pyramid", ROLES, 3, width=4, depth=2).eval()
    with torch.no_grad():
        generator = torch.Generator().manual_seed(1)
        target, sar = torch.rand(2, 3, 32, 32, generator=generator), torch.rand(2, 2, 32, 32)
        gap = (torch.rand(2, 1, 32, 32, generator=generator) > 0.7).float()
        output = model(target, gap, sar)
    torch.testing.assert_close(output, pyramid_fill(target, 1 - gap, model.levels))
    assert model.levels == 5 and model.size_multiple == 32 and model.context_margin % 32 == 0


def test_the_target_under_the_gap_mask_is_never_read():
    """Clouds under the mask (as the fill engine feeds a cloudy image) change nothing."""
    torch.manual_seed(0)
    model = get_model("unet-pyramid", ROLES, 3, width=4, depth=2).eval()
    torch.nn.init.normal_(model.head.weight)
    generator = torch.Generator().manual_seed(3)
    target, sar = torch.rand(1, 3, 32, 32, generator=generator), torch.rand(1, 2, 32, 32)
    gap = (torch.rand(1, 1, 32, 32, generator=generator) > 0.6).float()
    cloudy = torch.where(gap.bool(), torch.full_like(target, 5.0), target)
    with torch.no_grad():
        torch.testing.assert_close(model(cloudy, gap, sar), model(target * (1 - gap), gap, sar))


def test_pixels_beyond_the_margin_do_not_change_a_pixel_deep_in_a_gap():
    """The margin holds where the pyramid reaches farthest: few clear pixels around."""
    torch.manual_seed(1)
    model = get_model("unet-pyramid", ROLES, 3, width=4, depth=2).eval()
    torch.nn.init.normal_(model.head.weight)  # a trained residual: the U-Net reads too
    margin = model.context_margin
    assert margin >= pyramid_reach(model.levels)
    size, centre = 2 * margin + 64, margin + 32
    generator = torch.Generator().manual_seed(2)
    inputs = [
        torch.rand(1, channels, size, size, generator=generator) for channels in ROLES.values()
    ]
    inputs[1] = (torch.rand(1, 1, size, size, generator=generator) > 0.02).float()
    changed = [tensor.clone() for tensor in inputs]
    far = torch.ones(size, size, dtype=torch.bool)
    far[centre - margin : centre + margin + 1, centre - margin : centre + margin + 1] = False
    for tensor in changed:
        tensor[..., far] = torch.rand(tensor.shape[1], int(far.sum()), generator=generator)
    changed[1] = (changed[1] > 0.5).float()
    with torch.no_grad():
        a = model(*inputs)[..., centre, centre]
        b = model(*changed)[..., centre, centre]
    assert torch.equal(a, b)  # exactly: the pyramid's reach less and it differs by about 1e-6


def test_roles_and_band_check():
    with pytest.raises(ValueError, match="target with the 13 output bands"):
        get_model("unet-pyramid", ROLES, 13, width=4, depth=2)
    with pytest.raises(ValueError, match="needs the roles gap_mask"):
        get_model("unet-pyramid", {"target": 3, "sar": 2}, 3, width=4, depth=2)


def test_a_trained_pyramid_network_fills_a_raster_alike_in_any_tiling(sen12, data_dir, tmp_path):
    """One real epoch on SEN12MS-CR patches, exported to ONNX, filling a held-out sample: clear
    pixels kept, gaps filled, and tiles of 256 px (each with its context margin) give the
    pixels of one whole-image tile: the margin bounds what the pyramid reads."""
    import numpy as np
    from osgeo import gdal

    from gapfill.core.learned.model_card import read_card
    from gapfill.core.learned.onnx_fill_raster import fill_raster_with_model
    from gapfill.training.cli import main

    run = tmp_path / "run"
    status = main([
        "train", "--dataset", str(sen12), "--output", str(run), "--architecture",
        "unet-pyramid", "--roles", "target", "gap_mask", "--width", "4", "--depth", "2",
        "--epochs", "1", "--epoch-samples", "0", "--force-export", "--no-progress-bar",
    ])  # fmt: skip
    assert status == 0
    card = read_card(run / "model.onnx")
    assert card.architecture.startswith("unet-pyramid ") and card.context_margin % 32 == 0
    assert card.validation_metrics["baselines"]["verdict"] in ("beats", "loses")
    folder = data_dir / "sen12mscr"
    target, mask = str(folder / "5278_s2_cloudy.tif"), str(folder / "5278_cloudmask.tif")
    filled = {}
    for tile in (256, 512):
        output = tmp_path / f"filled_{tile}.tif"
        report = fill_raster_with_model(
            run / "model.onnx", target, output, {}, gap_mask_path=mask, tile_size=tile,
            device="cpu",
        )  # fmt: skip
        assert report.unfilled == 0
        filled[tile] = gdal.Open(str(output)).ReadAsArray()
    cloudy = gdal.Open(target).ReadAsArray()
    gap = gdal.Open(mask).ReadAsArray() == 1
    np.testing.assert_array_equal(filled[256][:, ~gap], cloudy[:, ~gap])
    assert (filled[256][:, gap] != cloudy[:, gap]).any()
    difference = np.abs(filled[256].astype(int) - filled[512].astype(int))
    assert difference.max() <= 1  # float32 sums in another order: a DN of rounding at most
