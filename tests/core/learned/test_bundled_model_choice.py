"""Choosing the bundled model that fits a fill's inputs, among those whose card's verdict says
they beat the classical fills (real cards of real ONNX files)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from gapfill.core.errors import GapfillError, flag_name
from gapfill.core.learned import baselines
from gapfill.core.learned.bundled_models import bundled_models, choose_bundled_model
from gapfill.core.learned.model_card import read_card, write_card

SCORES = {"mae": 0.03, "rmse": 0.04, "psnr": 30.0, "ssim": 0.8, "sam": 5.0}


def stamped(source: Path, target: Path, psnr_against: float | None) -> Path:
    """A copy of a test model whose card says it scored PSNR 30 dB, SAM 5° against a spatial
    IDW of `psnr_against` dB and 6° (no verdict at all when None)."""
    shutil.copy(source, target)
    metrics: dict = {"mae": 0.03}
    if psnr_against is not None:
        metrics["baselines"] = baselines.baselines(
            {"model": SCORES, "spatial IDW": {**SCORES, "psnr": psnr_against, "sam": 6.0}},
            model="model", classical=["spatial IDW"], protocol=baselines.PURE_GAP_FILLING,
            evaluated_on="test", metric_scaling="DN / 10000",
        )  # fmt: skip
    write_card(target, dataclasses.replace(read_card(target), validation_metrics=metrics))
    return target


def test_only_a_model_that_beat_the_classical_fills_is_chosen(models, tmp_path: Path) -> None:
    stamped(models["plain"].path, tmp_path / "plain.onnx", 28.0)  # beats IDW
    stamped(models["sen12"].path, tmp_path / "sen12.onnx", 33.0)  # loses to IDW
    chosen = choose_bundled_model({"sar", "dem"}, 3, tmp_path)
    assert chosen.path.name == "plain.onnx" and chosen.is_default
    with pytest.raises(GapfillError) as error:
        choose_bundled_model({"sar"}, 13, tmp_path)
    message = str(error.value)
    assert "never chosen for you" in message and "sen12.onnx: The model LOSES" in message
    assert "give the model file ('model')" in message
    assert "give the model file (--model)" in error.value.worded(flag_name)


def test_a_model_without_verdict_is_no_default(models, tmp_path: Path) -> None:
    stamped(models["plain"].path, tmp_path / "plain.onnx", None)
    with pytest.raises(GapfillError, match="plain.onnx: no baseline verdict"):
        choose_bundled_model({"sar"}, 3, tmp_path)


def test_the_model_using_most_of_the_given_layers_wins(models, tmp_path: Path) -> None:
    stamped(models["plain"].path, tmp_path / "plain.onnx", 28.0)
    stamped(models["sen12"].path, tmp_path / "sen12.onnx", 28.0)
    assert choose_bundled_model({"sar", "dem"}, 3, tmp_path).path.name == "plain.onnx"
    assert choose_bundled_model({"sar"}, 13, tmp_path).path.name == "sen12.onnx"


def test_no_fitting_model_is_refused_with_what_each_one_needs(models, tmp_path: Path) -> None:
    stamped(models["sen12"].path, tmp_path / "sen12.onnx", 28.0)
    with pytest.raises(GapfillError) as error:
        choose_bundled_model(set(), 13, tmp_path)
    message = str(error.value)
    assert "No bundled model fills a 13-band target from no other layer" in message
    assert "sen12.onnx needs a 13-band target, a SAR image" in message


def test_every_shipped_model_carries_a_verdict() -> None:
    """The bundled cards are stamped: a default is one whose verdict is 'beats'."""
    for model in bundled_models():
        verdict = model.verdict
        assert verdict is not None, f"{model.path.name} has no baseline verdict"
        assert model.is_default == (verdict["verdict"] == baselines.BEATS)
        assert verdict["summary"] and verdict["methods"]
