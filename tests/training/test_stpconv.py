"""3-D partial convolutions (values and mask update by hand), masked-pixel independence, the
STPConv network, and its ONNX export with card and parity."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gapfill.training.networks.stpconv import PartialConv3d, STPConv  # noqa: E402


def test_partial_conv3d_matches_hand_computed_values():
    layer = PartialConv3d(1, 1, kernel_size=(1, 1, 3), padding=(0, 0, 1), bias=True)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.0, 2.0, 3.0]).view(1, 1, 1, 1, 3))
        layer.bias.fill_(0.5)
    x = torch.tensor([10.0, 20.0, 30.0, 40.0, 50.0]).view(1, 1, 1, 1, 5)
    mask = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0]).view(1, 1, 1, 1, 5)
    out, updated = layer(x, mask)
    # windows (pad, 10, 20) (10, 20, 30) (20, 30, 40) (30, 40, 50) (40, 50, pad); valid cells
    # 1, 1, 0, 1, 1; sum(W·X·M) = 2·10, 1·10, 0, 3·50, 2·50; ratio 3/valid
    expected = [20 * 3 + 0.5, 10 * 3 + 0.5, 0.0, 150 * 3 + 0.5, 100 * 3 + 0.5]
    np.testing.assert_allclose(out.flatten().detach().numpy(), expected, rtol=1e-6)
    assert updated.flatten().tolist() == [1.0, 1.0, 0.0, 1.0, 1.0]


def test_masked_inputs_have_no_influence():
    torch.manual_seed(0)
    model = STPConv(steps=6, width=4, depth=2).eval()
    series = torch.randn(1, 6, 16, 16)
    gap = (torch.rand(1, 6, 16, 16) > 0.6).float()
    changed = series + gap * torch.randn(1, 6, 16, 16) * 100.0  # only gap pixels change
    with torch.no_grad():
        assert torch.equal(model(series, gap), model(changed, gap))


def test_stpconv_export_has_a_card_and_matches_pytorch(tmp_path):
    from gapfill.core.learned.model_card import read_card
    from gapfill.training.stpconv_train import check_parity, export

    torch.manual_seed(0)
    model = STPConv(steps=5, width=4, depth=2)
    path = export(model, tmp_path / "tiny.onnx", 0.03, 100.0, {"mae": 0.1}, ["a"], ["b"])
    card = read_card(path)
    assert card.input_for("time_series").bands == ("t1", "t2", "t3", "t4", "t5")
    assert len(card.input_for("gap_mask").bands) == 5
    assert card.size_multiple == 4 and card.context_margin >= 4
    assert check_parity(model, path, size=(20, 36)) < 1e-4
