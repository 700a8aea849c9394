"""Each architecture: a forward pass, one optimisation step that lowers the loss on a fixed
batch, and an ONNX export whose ONNX Runtime output matches PyTorch's; context margins."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gapfill.core.learned.model_card import read_card
from gapfill.core.learned.onnx_session import create_session
from gapfill.training import export as export_module
from gapfill.training.config import DEFAULT_LOSS, TrainConfig
from gapfill.training.datasets import PatchDataset, read_manifest, role_scalings
from gapfill.training.export import ExportError, card_info, export_model
from gapfill.training.loop import Stepper
from gapfill.training.networks import REGISTRY, flops_per_pixel, get_model, measure_margin

SMALL = {  # architecture: (input roles, width, depth) — tiny, for CPU tests
    "unet-fusion": (("target", "gap_mask", "sar"), 4, 2),
    "deepgapfill": (("sar", "optical_before", "optical_after"), 4, 2),
    "dsen2cr": (("target", "sar"), 8, 2),
    "pconv-unet": (("target", "gap_mask", "sar"), 4, 2),
    "cgan": (("target", "gap_mask", "sar"), 4, 1),
    "unet-blend": (("target", "gap_mask", "optical_before", "optical_after"), 4, 2),
    "unet-pyramid": (("target", "gap_mask", "sar"), 4, 2),
}


def test_every_architecture_is_tested():
    assert set(SMALL) == set(REGISTRY)


def fixed_batch(synthetic, roles):
    manifest = read_manifest(synthetic)
    dataset = PatchDataset(manifest, "train", roles, role_scalings(manifest, [*roles, "reference"]))
    batch = torch.utils.data.default_collate([dataset[index] for index in range(4)])
    return manifest, dataset, batch


def build(name, manifest):
    roles, width, depth = SMALL[name]
    torch.manual_seed(0)
    inputs = {role: len(manifest.roles[role].bands) for role in roles}
    return get_model(name, inputs, 3, width=width, depth=depth)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_forward_pass(name, synthetic):
    manifest, _, batch = fixed_batch(synthetic, SMALL[name][0])
    model = build(name, manifest).eval()
    with torch.no_grad():
        output = model(*[batch["inputs"][role] for role in model.roles])
    assert output.shape == (4, 3, 32, 32)
    assert torch.isfinite(output).all()
    assert model.roles == SMALL[name][0]
    assert 32 % model.size_multiple == 0


@pytest.mark.parametrize("name", sorted(SMALL))
def test_one_step_lowers_the_loss(name, synthetic):
    manifest, _, batch = fixed_batch(synthetic, SMALL[name][0])
    stepper = Stepper(
        build(name, manifest),
        DEFAULT_LOSS[name],
        TrainConfig(learning_rate=1e-3),
        torch.device("cpu"),
    )

    def objective() -> float:  # the reconstruction loss, batch statistics as in training
        stepper.model.train()
        with torch.no_grad():
            return float(stepper.reconstruction(stepper.network(*stepper.inputs(batch)), batch))

    before = objective()
    stepper.step(batch)
    assert objective() < before


@pytest.mark.parametrize("name", sorted(SMALL))
def test_export_and_parity(name, synthetic, tmp_path):
    manifest, dataset, batch = fixed_batch(synthetic, SMALL[name][0])
    model = build(name, manifest).eval()
    bands = {role: info.bands for role, info in manifest.roles.items()}
    info = card_info(
        model.roles, bands, dataset.scalings, "reference", patch_size=32, training_data="synthetic"
    )
    logs = []
    path = tmp_path / f"{name}.onnx"
    card = export_model(
        model, info, path, metrics={"mae": 0.1, "psnr": float("inf")}, log=logs.append
    )
    assert read_card(path) == card
    assert card.validation_metrics == {"mae": 0.1, "psnr": None}
    assert card.context_margin == model.context_margin
    assert card.recommended_tile_size % card.size_multiple == 0
    assert [item.role for item in card.inputs] == list(model.roles)
    assert "training patches 32 px" in logs[0] and "32×32" not in logs[0]  # another shape
    # ONNX Runtime at yet another, non-square shape, against PyTorch
    multiple = model.size_multiple
    height, width = (
        3 * multiple * (1 if multiple > 4 else 4),
        5 * multiple * (1 if multiple > 4 else 4),
    )
    inputs = [torch.rand(2, c, height, width) for c in model.inputs.values()]
    with torch.no_grad():
        expected = model(*inputs).numpy()
    session = create_session(path, "cpu")
    feeds = {role: tensor.numpy() for role, tensor in zip(model.roles, inputs, strict=True)}
    actual = session.run(["filled"], feeds)[0]
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert list(tmp_path.iterdir()) == [path]


def test_export_fails_when_onnx_runtime_disagrees(synthetic, tmp_path, monkeypatch):
    manifest, dataset, _ = fixed_batch(synthetic, SMALL["unet-fusion"][0])
    model = build("unet-fusion", manifest).eval()
    bands = {role: info.bands for role, info in manifest.roles.items()}
    info = card_info(
        model.roles, bands, dataset.scalings, "reference", patch_size=32, training_data="synthetic"
    )
    monkeypatch.setattr(export_module, "PARITY_TOLERANCE", -1.0)
    with pytest.raises(ExportError, match="disagree"):
        export_model(model, info, tmp_path / "model.onnx")
    assert not list(tmp_path.iterdir())


def test_margins_are_receptive_fields():
    """DSen2-CR: 2 convolutions per block plus head and tail; a plain 2-conv U-Net level: 2."""
    inputs = (("target", 3), ("sar", 2))
    assert measure_margin(REGISTRY["dsen2cr"], inputs, 3, 3) == 2 * 3 + 2
    assert measure_margin(REGISTRY["unet-fusion"], inputs, 3, 1) == 2


@pytest.mark.parametrize(
    "name", ["unet-fusion", "deepgapfill", "pconv-unet", "cgan", "unet-pyramid"]
)
def test_pixels_beyond_the_margin_do_not_change_the_output(name):
    roles, width, depth = SMALL[name]
    torch.manual_seed(1)
    channels = {role: 1 if role == "gap_mask" else 2 for role in roles}
    model = get_model(name, channels, 2, width=width, depth=depth).eval()
    margin, multiple = model.context_margin, model.size_multiple
    size = -(-(2 * margin + 2 * multiple + 8) // multiple) * multiple
    inputs = [torch.rand(1, c, size, size) for c in model.inputs.values()]
    if "gap_mask" in model.roles:
        index = model.roles.index("gap_mask")
        inputs[index] = (inputs[index] > 0.5).float()
    centre = size // 2
    changed = [tensor.clone() for tensor in inputs]
    far = torch.ones(size, size, dtype=torch.bool)
    far[centre - margin : centre + margin + 1, centre - margin : centre + margin + 1] = False
    for tensor in changed:
        tensor[..., far] = torch.rand(int(far.sum()))
    with torch.no_grad():
        a = model(*inputs)[..., centre, centre]
        b = model(*changed)[..., centre, centre]
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_unet_fusion_default_costs_about_230_kflop_per_pixel():
    model = get_model("unet-fusion", {"target": 13, "gap_mask": 1, "sar": 2}, 13)
    assert (model.width, model.depth) == (32, 3)
    assert 180e3 < flops_per_pixel(model) < 250e3


def test_unknown_architecture_and_wrong_dsen2cr_bands():
    with pytest.raises(ValueError, match="Unknown architecture 'resnet'"):
        get_model("resnet", {"target": 3}, 3)
    with pytest.raises(ValueError, match="same bands"):
        get_model("dsen2cr", {"target": 3, "sar": 2}, 4, width=4, depth=1)
