"""The guard and the verdict: collapsed output bands found and refused at export, the baseline
verdict of every run in its card, card metrics of the exported checkpoint, one learning-rate
plan across resumes, several datasets read as one, samples per epoch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from gapfill.core.learned import baselines
from gapfill.core.learned.model_card import BandScaling, describe_card, read_card
from gapfill.training.checkpoints import load_checkpoint, save_checkpoint
from gapfill.training.config import TrainConfig
from gapfill.training.datasets import StackedRows, read_manifest
from gapfill.training.export import ExportError, export_checkpoint
from gapfill.training.loop import RatePlan, train
from gapfill.training.make_dataset import sen12mscr_scenes, write_dataset
from gapfill.training.validation import BandHealth, HealthAccumulator, collapsed_bands

TINY = {"width": 4, "depth": 2, "batch_size": 4, "learning_rate": 3e-3, "epoch_samples": 0}


def quiet(_message: str) -> None:
    pass


@pytest.fixture(scope="module")
def run(synthetic, tmp_path_factory):
    """Three epochs on the synthetic dataset (which has other dates: histogram matching too)."""
    folder = tmp_path_factory.mktemp("verdict") / "run"
    lines: list[str] = []
    result = train(
        TrainConfig(**TINY, dataset=[str(synthetic)], output=str(folder), epochs=3,
                    force_export=True),
        log=lines.append,
    )  # fmt: skip
    return result, lines


def test_every_run_ends_with_the_verdict_in_its_card(run):
    result, lines = run
    entry = result.assessment
    classical = ["spatial IDW", "spatial pyramid", "histogram matching"]
    assert set(entry["methods"]) == {"model", *classical}
    assert entry["verdict"] in (baselines.BEATS, baselines.LOSES)
    assert entry["classical"] == classical
    assert entry["protocol"] == baselines.PURE_GAP_FILLING
    for scores in entry["methods"].values():
        assert 0 < scores["mae"] < 1 and scores["filled_fraction"] == 1.0
    assert any(line.startswith("Baseline verdict: the model") for line in lines)
    card = read_card(result.onnx)
    assert card.validation_metrics["baselines"] == entry
    text = describe_card(card)
    assert "Baseline verdict" in text and "histogram matching" in text
    assert load_checkpoint(result.best)["assessment"] == entry


def test_card_metrics_are_those_of_the_exported_checkpoint(run, tmp_path):
    result, _ = run
    state = load_checkpoint(result.last)
    row = state["history"][-1]
    exported = tmp_path / "last.onnx"
    export_checkpoint(result.last, exported, force=True)
    metrics = read_card(exported).validation_metrics
    assert metrics["epoch"] == state["epoch"] == 3
    assert metrics["mae"] == pytest.approx(row["mae"])
    assert metrics["psnr"] == pytest.approx(row["psnr"])
    assert metrics["baselines"]["verdict"] in (baselines.BEATS, baselines.LOSES)  # measured now


def test_a_dead_band_is_found_and_refused_at_export(run, tmp_path):
    """The failure of issue 14: an output band below 0 everywhere, clipped to 0 DN."""
    result, _ = run
    state = load_checkpoint(result.last)
    head = next(name for name in state["model"] if name.startswith("head.") and "bias" in name)
    state["model"][head] = state["model"][head].clone()
    state["model"][head][1] = -1000.0  # B3
    state.pop("assessment", None)
    dead = tmp_path / "dead.pt"
    save_checkpoint(dead, {**state, "collapsed_bands": {}})
    with pytest.raises(ExportError, match=r"B3 stuck at the bound 0"):
        export_checkpoint(dead, tmp_path / "dead.onnx")
    assert not (tmp_path / "dead.onnx").exists()
    lines: list[str] = []
    export_checkpoint(dead, tmp_path / "dead.onnx", force=True, log=lines.append)
    entry = read_card(tmp_path / "dead.onnx").validation_metrics["baselines"]
    assert list(entry["collapsed_bands"]) == ["B3"]
    assert any("WARNING: output band(s) B3 collapsed" in line for line in lines)


def test_band_health():
    scaling = [BandScaling(scale=1e-4, clip_min=0.0, clip_max=10000.0)] * 3
    health = HealthAccumulator(scaling, ["B2", "B3", "B4"])
    rng = np.random.default_rng(0)
    truth = rng.uniform(500, 1500, (3, 40, 40))
    predicted = truth + rng.normal(0, 50, truth.shape)
    predicted[1] = 0.0  # stuck at the lower bound
    predicted[2] = 900.0 + rng.normal(0, 0.5, (40, 40))  # flat where the truth varies
    health.add(predicted, truth, np.ones((40, 40), bool))
    found = collapsed_bands(health.result())
    assert list(found) == ["B3", "B4"]
    assert found["B3"].startswith("stuck at the bound 0") and found["B4"].startswith("flat")
    assert not BandHealth("B1", 10, 0, 0, 1, 1, 0, 0).collapsed  # too few pixels to judge


def test_resume_to_more_epochs_follows_one_schedule(synthetic, tmp_path):
    """3 epochs, then resumed to 6: the rate goes on down from where it was (issue 14:
    it climbed from 2e-5 back to 1.5e-3); a failed resume leaves config.yaml as it was."""
    settings = {**TINY, "dataset": [str(synthetic)], "output": str(tmp_path / "r"),
                "export": "none"}  # fmt: skip
    train(TrainConfig(**settings, epochs=3), log=quiet)
    before = (tmp_path / "r" / "config.yaml").read_text()
    with pytest.raises(Exception, match="Resume with the same architecture"):
        train(TrainConfig(**{**settings, "width": 8}, epochs=6, resume=True), log=quiet)
    assert (tmp_path / "r" / "config.yaml").read_text() == before
    lines: list[str] = []
    result = train(TrainConfig(**settings, epochs=6, resume=True), log=lines.append)
    rates = [row["learning_rate"] for row in result.history]
    assert len(rates) == 6 and all(b <= a for a, b in zip(rates, rates[1:], strict=False))
    assert rates[3] == pytest.approx(RatePlan(0, 3, 3e-3, 3e-5, "cosine").at(3))
    assert rates[5] < rates[3] and any("without climbing back" in line for line in lines)
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["epochs"] == 6


def test_several_datasets_are_read_as_one(data_dir, make_synthetic, tmp_path):
    scenes = sen12mscr_scenes(data_dir / "sen12mscr", ["4287", "5254"])
    first = write_dataset(tmp_path / "a", scenes[:1], 64, stride=128, validation=0.25)
    second = write_dataset(tmp_path / "b", scenes[1:], 64, stride=128, validation=0.25)
    both = read_manifest([tmp_path / "a", tmp_path / "b" / "manifest.json"])
    assert both.splits == {
        split: first.splits[split] + second.splits[split] for split in first.splits
    }
    arrays = both.arrays("train")
    rows = first.splits["train"]
    np.testing.assert_array_equal(arrays["target"][rows], second.arrays("train")["target"][0])
    np.testing.assert_array_equal(arrays["target"][:1][0], first.arrays("train")["target"][0])
    other = make_synthetic(tmp_path / "other")
    with pytest.raises(Exception, match="cannot be read as one"):
        read_manifest([tmp_path / "a", other])
    stacked = StackedRows([np.zeros((2, 1)), np.ones((3, 1))])
    assert stacked.shape == (5, 1) and stacked[4][0] == 1 and stacked[[1, 2]].tolist() == [[0], [1]]


def test_samples_per_epoch_draw_small_splits_again(synthetic, tmp_path):
    result = train(
        TrainConfig(**{**TINY, "epoch_samples": 20}, dataset=[str(synthetic)],
                    output=str(tmp_path / "s"), epochs=1, export="none"),
        log=quiet,
    )  # fmt: skip
    state = load_checkpoint(result.last)
    assert int(state["optimizers"][0]["state"][0]["step"]) == 5  # 20 samples, batches of 4
    assert torch.is_tensor(state["model"]["head.weight"])


def test_make_dataset_by_scene(data_dir, tmp_path):
    scenes = sen12mscr_scenes(data_dir / "sen12mscr", ["4287", "5254", "5278"])
    manifest = write_dataset(tmp_path / "d", scenes[:2], 64, validation_scenes=scenes[2:],
                             validation_stride=128)  # fmt: skip
    assert manifest.splits == {"train": 32, "validation": 4}
    assert manifest.split_method == "by scene"
