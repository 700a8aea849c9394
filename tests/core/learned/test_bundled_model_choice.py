"""Choosing the bundled model that fits a fill's inputs (real cards of real ONNX files)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gapfill.core.errors import GapfillError
from gapfill.core.learned.bundled_models import MODELS_FOLDER, bundled_models, choose_bundled_model


def test_the_shipped_single_date_model_fits_a_sentinel2_target_with_sar() -> None:
    assert {model.path.name for model in bundled_models()} >= {"s1s2_unet_small.onnx"}
    chosen = choose_bundled_model({"sar"}, 13)
    assert chosen.path == MODELS_FOLDER / "s1s2_unet_small.onnx"
    assert chosen.roles == {"sar"}


def test_the_multidate_model_fits_two_other_dates_and_says_what_beat_it() -> None:
    chosen = choose_bundled_model({"optical_before", "optical_after", "sar"}, 13)
    assert chosen.path.name == "s2_multidate_unet_blend.onnx"  # uses two of the three layers
    method, scores = chosen.outscored_by()
    assert method == "histogram matching"
    assert scores["psnr"] > chosen.card.validation_metrics["psnr"]


def test_no_fitting_model_is_refused_with_what_each_one_needs() -> None:
    with pytest.raises(GapfillError) as error:
        choose_bundled_model(set(), 13)
    message = str(error.value)
    assert "No bundled model fills a 13-band target from no other layer" in message
    assert "s1s2_unet_small.onnx needs a 13-band target, a SAR image" in message
    with pytest.raises(GapfillError, match="fills a 4-band target from a SAR image"):
        choose_bundled_model({"sar"}, 4)


def test_the_model_using_most_of_the_given_layers_wins(models, tmp_path: Path) -> None:
    for name in ("plain", "sen12"):
        shutil.copy(models[name].path, tmp_path / f"{name}.onnx")
    assert choose_bundled_model({"sar", "dem"}, 3, tmp_path).path.name == "plain.onnx"
    assert choose_bundled_model({"sar"}, 13, tmp_path).path.name == "sen12.onnx"
