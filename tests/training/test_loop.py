"""The training loop: resume, cancel, refusals, outputs, the cGAN's two optimisers."""

from __future__ import annotations

import csv

import pytest
import torch
import yaml

from gapfill.core.errors import Cancelled, GapfillError, flag_name
from gapfill.core.learned.model_card import read_card
from gapfill.training.checkpoints import load_checkpoint
from gapfill.training.config import TrainConfig
from gapfill.training.datasets import DatasetError
from gapfill.training.loop import train

TINY = {
    "width": 4,
    "depth": 2,
    "batch_size": 4,
    "learning_rate": 3e-3,
    "epoch_samples": 0,
    "force_export": True,  # networks this small leave some bands flat: tested on their own
}


def quiet(_message: str) -> None:
    pass


def test_resume_gives_the_weights_of_an_uninterrupted_run(synthetic, tmp_path):
    settings = {**TINY, "dataset": str(synthetic), "epochs": 2, "export": "none"}
    whole = train(TrainConfig(**settings, output=str(tmp_path / "whole")), log=quiet)
    assert whole.epochs == 2 and len(whole.history) == 2

    steps = {"count": 0}

    def cancel_in_second_epoch() -> bool:  # 6 patches, batches of 4: 2 steps per epoch
        steps["count"] += 1
        return steps["count"] > 3

    split = tmp_path / "split"
    with pytest.raises(Cancelled):
        train(
            TrainConfig(**settings, output=str(split)), cancelled=cancel_in_second_epoch, log=quiet
        )
    assert load_checkpoint(split / "last.pt")["epoch"] == 1
    resumed = train(TrainConfig(**settings, output=str(split), resume=True), log=quiet)
    assert resumed.epochs == 2

    expected, actual = load_checkpoint(whole.last), load_checkpoint(resumed.last)
    for name, tensor in expected["model"].items():
        torch.testing.assert_close(actual["model"][name], tensor, rtol=0, atol=0)
    torch.testing.assert_close(
        actual["optimizers"][0]["state"], expected["optimizers"][0]["state"], rtol=0, atol=0
    )
    assert [row["train_loss"] for row in actual["history"]] == [
        row["train_loss"] for row in expected["history"]
    ]


def test_outputs_of_a_run(synthetic, tmp_path):
    lines: list[str] = []
    fractions: list[float] = []
    result = train(
        TrainConfig(
            **TINY,
            dataset=str(synthetic),
            output=str(tmp_path / "run"),
            epochs=2,
            name="tiny",
            licence="CC-BY-4.0",
        ),
        progress=fractions.append,
        log=lines.append,
    )
    folder = tmp_path / "run"
    assert result.onnx == folder / "model.onnx"
    assert {path.name for path in folder.iterdir()} == {
        "best.pt",
        "last.pt",
        "log.csv",
        "curves.png",
        "config.yaml",
        "model.onnx",
    }
    card = read_card(result.onnx)
    assert (card.name, card.licence) == ("tiny", "CC-BY-4.0")
    assert card.validation_metrics["epoch"] == result.best_epoch
    assert card.validation_metrics["mae"] == pytest.approx(result.metrics["mae"])
    assert card.validation_metrics["metric_scaling"] == "DN / 10000, clipped to [0, 1]"
    assert [item.role for item in card.inputs] == [
        "target",
        "gap_mask",
        "sar",
        "optical_before",
        "optical_after",
        "dem",
    ]
    with (folder / "log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["1", "2"] and float(rows[0]["mae"]) > 0
    resolved = yaml.safe_load((folder / "config.yaml").read_text())
    assert (resolved["loss"], resolved["width"], resolved["epochs"]) == ("masked-l1-sam", 4, 2)
    assert resolved["roles"][:3] == ["target", "gap_mask", "sar"]
    assert sum("Epoch" in line and "PSNR" in line for line in lines) == 2
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert (folder / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_cgan_trains_generator_and_discriminator(synthetic, tmp_path):
    result = train(
        TrainConfig(
            dataset=str(synthetic),
            output=str(tmp_path / "gan"),
            architecture="cgan",
            roles=["target", "gap_mask", "sar"],
            width=4,
            depth=1,
            epochs=1,
            batch_size=4,
            epoch_samples=0,
            force_export=True,
        ),
        log=quiet,
    )
    state = load_checkpoint(result.last)
    assert len(state["optimizers"]) == 2
    assert any(name.startswith("discriminator.") for name in state["model"])
    assert [item.role for item in read_card(result.onnx).inputs] == ["target", "gap_mask", "sar"]


def test_refusals(synthetic, make_synthetic, tmp_path):
    def config(**options):
        return TrainConfig(
            **{
                **TINY,
                "dataset": str(synthetic),
                "output": str(tmp_path / "x"),
                "epochs": 1,
                **options,
            }
        )

    no_dates = make_synthetic(tmp_path / "no_dates", ("target", "gap_mask", "sar", "reference"))
    with pytest.raises(DatasetError, match="needs the role.*optical_before.*optical_after"):
        train(config(dataset=str(no_dates), architecture="deepgapfill"), log=quiet)
    small = make_synthetic(tmp_path / "small", size=8)
    with pytest.raises(DatasetError, match="8 px, smaller than the 16 px"):
        train(config(dataset=str(small), architecture="pconv-unet", depth=4), log=quiet)
    with pytest.raises(GapfillError, match="needs a discriminator"):
        train(config(loss="adversarial"), log=quiet)
    clear = make_synthetic(tmp_path / "clear", ("target", "sar"))
    with pytest.raises(DatasetError, match="no 'reference' role.*with 'cloud_masks'") as error:
        train(config(dataset=str(clear)), log=quiet)
    assert "Give some with --cloud-masks (e.g." in error.value.worded(flag_name)
    no_gaps = make_synthetic(tmp_path / "no_gaps", ("target", "sar", "reference"))
    with pytest.raises(DatasetError, match="learns on gap pixels only") as error:
        train(config(dataset=str(no_gaps)), log=quiet)
    assert "cloud masks (--cloud-masks)" in error.value.worded(flag_name)
    with pytest.raises(DatasetError, match="role\\(s\\) dem"):
        train(config(dataset=str(no_dates), roles=["target", "dem"]), log=quiet)
    train(config(export="none"), log=quiet)
    with pytest.raises(GapfillError, match="previous run.*with 'resume'"):
        train(config(), log=quiet)
    assert not (tmp_path / "missing").exists()
    with pytest.raises(GapfillError, match="Nothing to resume"):
        train(config(output=str(tmp_path / "missing"), resume=True), log=quiet)
    (tmp_path / "a_file").write_text("kept")
    with pytest.raises(GapfillError, match="training folder .*a_file' is a file"):
        train(config(output=str(tmp_path / "a_file")), log=quiet)
    assert (tmp_path / "a_file").read_text() == "kept"


def test_early_stopping(synthetic, tmp_path):
    """Updates of 1e-30 leave float32 weights as they are: no progress after epoch 1."""
    result = train(
        TrainConfig(
            **{**TINY, "learning_rate": 1e-30},
            dataset=str(synthetic),
            output=str(tmp_path / "run"),
            epochs=5,
            patience=1,
            export="none",
        ),
        log=quiet,
    )
    assert result.stopped_early and result.epochs == 2 and result.best_epoch == 1
