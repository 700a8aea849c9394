"""The command line on a tiny real dataset (SEN12MS-CR), and a model trained by the package
running in the fill engine."""

from __future__ import annotations

import contextlib
import csv
import io
import json

import numpy as np
import pytest
import yaml
from osgeo import gdal

from gapfill.core.learned.model_card import read_card
from gapfill.core.learned.onnx_fill_raster import fill_raster_with_model
from gapfill.training.cli import main

SAMPLE = "5278"  # 61 % cloud, not in the training dataset


@pytest.fixture(scope="module")
def trained(sen12, tmp_path_factory):
    """One epoch through the command line's entry point, options from YAML and flags (the
    `python -m` launch itself is tested under torchrun, test_distributed.py)."""
    folder = tmp_path_factory.mktemp("cli")
    config = folder / "train.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "dataset": str(sen12),
                "architecture": "unet-fusion",
                "width": 4,
                "depth": 2,
                "epochs": 5,
                "batch-size": 8,
                "learning_rate": 0.003,
                "epoch_samples": 0,
                "force_export": True,  # a 1-epoch width-4 network: some bands are flat
            }
        )
    )
    run = folder / "run"
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        status = main(
            [
                "train",
                "--config",
                str(config),
                "--epochs",
                "1",
                "--output",
                str(run),
                "--name",
                "tiny SEN12MS-CR",
            ]
        )
    assert status == 0
    return run, output.getvalue()


def test_train_one_epoch_through_the_cli(trained):
    run, stdout = trained
    assert "Epoch 1/1" in stdout and "PSNR" in stdout and "ONNX model:" in stdout
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert (resolved["epochs"], resolved["width"], resolved["learning_rate"]) == (1, 4, 0.003)
    assert resolved["roles"] == ["target", "gap_mask", "sar"]
    assert resolved["loss"] == "masked-l1-sam"  # the default of unet-fusion
    with (run / "log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1 and float(rows[0]["psnr"]) > 0 and int(rows[0]["evaluated"]) > 0
    card = read_card(run / "model.onnx")
    assert card.name == "tiny SEN12MS-CR"
    assert card.input_for("target").bands[8] == "B8A"
    assert card.input_for("sar").bands == ("VV", "VH")
    assert "gap pixels" in card.validation_metrics["evaluated_on"]


def test_model_trained_by_the_package_fills_a_raster(trained, data_dir, tmp_path):
    run, _ = trained
    folder = data_dir / "sen12mscr"
    target = str(folder / f"{SAMPLE}_s2_cloudy.tif")
    mask = str(folder / f"{SAMPLE}_cloudmask.tif")
    output = tmp_path / "filled.tif"
    report = fill_raster_with_model(
        run / "model.onnx",
        target,
        output,
        {"sar": str(folder / f"{SAMPLE}_s1.tif")},
        gap_mask_path=mask,
        device="cpu",
    )
    cloudy = gdal.Open(target).ReadAsArray()
    filled = gdal.Open(str(output)).ReadAsArray()
    gap = gdal.Open(mask).ReadAsArray() == 1
    assert report.filled == gap.sum() > 0 and report.unfilled == 0
    np.testing.assert_array_equal(filled[:, ~gap], cloudy[:, ~gap])
    assert (filled[:, gap] != cloudy[:, gap]).any()


def test_export_evaluate_and_info(trained, sen12, tmp_path, capsys):
    run, _ = trained
    exported = tmp_path / "again.onnx"
    assert (
        main(
            [
                "export",
                str(run / "best.pt"),
                str(exported),
                "--name",
                "again",
                "--force",
                "--parity-size",
                "40",
                "48",
            ]
        )
        == 0
    )
    assert "48×40 px" in capsys.readouterr().out
    assert read_card(exported).name == "again"
    for model in (exported, run / "best.pt"):
        assert main(["evaluate", str(model), "--dataset", str(sen12)]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["patches"] == 8 and result["evaluated_on"] == "gap pixels"
        assert 0 < result["mae"] < 1
    assert main(["info", str(sen12)]) == 0
    assert "24 train, 8 validation patches of 32 px" in capsys.readouterr().out
    assert main(["info", str(run / "last.pt")]) == 0
    assert "epoch 1 of 1" in capsys.readouterr().out
    assert main(["info", str(exported)]) == 0
    assert "Context margin" in capsys.readouterr().out
    assert main(["info", "--architecture", "dsen2cr", "--width", "8", "--depth", "2"]) == 0
    assert "context margin 6 px" in capsys.readouterr().out


def test_errors_are_one_clear_message(tmp_path, capsys):
    assert main(["train", "--dataset", str(tmp_path), "--output", str(tmp_path / "r")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: No patch dataset in") and "Traceback" not in error
    assert main(["info", str(tmp_path / "nothing.txt")]) == 2
    assert main(["train", "--dataset", str(tmp_path), "--epochs", "0"]) == 2  # named as a flag
    assert "error: The option --epochs is 0; it must be ≥ 1." in capsys.readouterr().err
    config = tmp_path / "bad.yaml"
    config.write_text("epochz: 3\n")
    assert main(["train", "--config", str(config)]) == 2
    assert "Unknown training option 'epochz'" in capsys.readouterr().err


def test_make_dataset_command(data_dir, tmp_path, capsys):
    folder = data_dir / "sen12mscr"
    assert (
        main(
            [
                "make-dataset",
                str(tmp_path / "d"),
                "--patch-size",
                "128",
                "--validation",
                "0.25",
                "--scene",
                f"target={folder / '1302_s2_cloudy.tif'}",
                f"sar={folder / '1302_s1.tif'}",
                "--scene",
                f"target={folder / '316_s2_cloudy.tif'}",
                f"sar={folder / '316_s1.tif'}",
            ]
        )
        == 0
    )
    assert "6 train, 2 validation patches of 128 px" in capsys.readouterr().out
    held = [f"target={folder / '4287_s2_cloudy.tif'}", f"sar={folder / '4287_s1.tif'}"]
    trained = [f"target={folder / '1302_s2_cloudy.tif'}", f"sar={folder / '1302_s1.tif'}"]
    split = ["make-dataset", str(tmp_path / "s"), "--patch-size", "128", "--scene", *trained]
    assert main([*split, "--validation-scene", *held]) == 0
    assert "4 train, 4 validation patches of 128 px (by scene split" in capsys.readouterr().out
