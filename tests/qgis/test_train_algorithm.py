"""Train model in real QGIS: processing.run of the algorithm on a tiny real dataset (SEN12MS-CR
patches), cancel, refusals, and the message when torch is missing (qgis_process)."""

from __future__ import annotations

from pathlib import Path

import processing
import pytest
from qgis.core import QgsApplication, QgsProcessingException

from feedback import RecordingFeedback
from gapfill.algorithms.train_model import TrainModel
from gapfill.core.learned.model_card import read_card
from gapfill.training.checkpoints import load_checkpoint
from gapfill.training.config import ARCHITECTURES
from gapfill.training.make_dataset import sen12mscr_scenes, write_dataset
from qgis_runner import QgisProcess, QgisProcessError


@pytest.fixture(scope="module")
def dataset(data_dir, tmp_path_factory):
    """24 training and 8 validation patches of 32 px from two real SEN12MS-CR samples."""
    folder = tmp_path_factory.mktemp("train") / "dataset"
    scenes = sen12mscr_scenes(data_dir / "sen12mscr", ["4287", "5254"])
    write_dataset(folder, scenes, 32, stride=64, validation=0.25)
    return folder


def parameters(dataset: Path, output: Path, **extra) -> dict:
    return {
        "DATASET": str(dataset),
        "ARCHITECTURE": ARCHITECTURES.index("unet-fusion"),
        "EPOCHS": 1,
        "BATCH_SIZE": 8,
        "LEARNING_RATE": 0.003,
        "DEVICE": 1,  # CPU
        "WIDTH": 4,
        "DEPTH": 2,
        "EPOCH_SAMPLES": 0,
        "FORCE_EXPORT": True,  # one epoch of a width-4 network: some bands are flat
        "OUTPUT": str(output),
        **extra,
    }


def test_train_one_epoch(qgis_processing, dataset, tmp_path):
    feedback = RecordingFeedback()
    output = tmp_path / "model.onnx"
    result = processing.run(TrainModel(), parameters(dataset, output), feedback=feedback)
    assert result["OUTPUT"] == str(output)
    card = read_card(output)
    assert [item.role for item in card.inputs] == ["target", "gap_mask", "sar"]
    folder = tmp_path / "model_training"
    assert result["RUN_FOLDER"] == str(folder)
    assert Path(result["CURVES"]) == folder / "curves.png" and Path(result["CURVES"]).is_file()
    assert Path(result["LOG"]).is_file() and Path(result["CHECKPOINT"]).is_file()
    assert result["BEST_EPOCH"] == 1 and result["PSNR"] > 0 and 0 < result["SSIM"] <= 1
    assert result["MAE"] == pytest.approx(card.validation_metrics["mae"])
    assert any(line.startswith("Epoch 1/1") and "SAM" in line for line in feedback.lines)
    assert result["VERDICT"] in ("beats", "loses")
    assert card.validation_metrics["baselines"]["verdict"] == result["VERDICT"]
    assert any(line.startswith("Baseline verdict: the model") for line in feedback.lines)


def test_cancel_keeps_the_last_checkpoint_and_writes_no_model(qgis_processing, dataset, tmp_path):
    output = tmp_path / "model.onnx"
    with pytest.raises(QgsProcessingException, match="Cancelled.*last.pt.*no ONNX model"):
        processing.run(
            TrainModel(),
            parameters(dataset, output, EPOCHS=2),
            feedback=RecordingFeedback(cancel_above=60),
        )
    assert not output.exists()
    assert load_checkpoint(tmp_path / "model_training" / "last.pt")["epoch"] == 1
    result = processing.run(TrainModel(), parameters(dataset, output, EPOCHS=2, RESUME=True))
    assert result["BEST_EPOCH"] in (1, 2) and output.is_file()
    assert load_checkpoint(tmp_path / "model_training" / "last.pt")["epoch"] == 2


def test_refusals(qgis_processing, dataset, tmp_path):
    output = tmp_path / "model.onnx"
    with pytest.raises(QgsProcessingException, match="optical_before, optical_after"):
        processing.run(
            TrainModel(),
            parameters(dataset, output, ARCHITECTURE=ARCHITECTURES.index("deepgapfill")),
        )
    with pytest.raises(QgsProcessingException, match="32 px, smaller than the 64 px") as error:
        processing.run(
            TrainModel(),
            parameters(dataset, output, ARCHITECTURE=ARCHITECTURES.index("pconv-unet"), DEPTH=6),
        )
    # the option is named as this dialog and qgis_process call it, not as the command line does
    assert "shallower network ('Depth' (DEPTH))." in str(error.value)
    assert "--" not in str(error.value)
    assert not output.exists()


def test_several_scenes_train_as_one(qgis_processing, dataset, data_dir, tmp_path):
    other = tmp_path / "other_scene"
    write_dataset(other, sen12mscr_scenes(data_dir / "sen12mscr", ["5278"]), 32, stride=64,
                  validation=0.25)  # fmt: skip
    feedback = RecordingFeedback()
    processing.run(
        TrainModel(),
        parameters(dataset, tmp_path / "m.onnx", MORE_DATASETS=[str(other / "manifest.json")]),
        feedback=feedback,
    )
    assert any("36 training samples per epoch" in line for line in feedback.lines)  # 24 + 12


def test_errors_name_the_parameters(qgis_processing, data_dir, tmp_path):
    with pytest.raises(QgsProcessingException, match="No patch dataset in"):
        processing.run(TrainModel(), parameters(tmp_path, tmp_path / "m.onnx"))
    clear = tmp_path / "clear"
    write_dataset(clear, [{"target": data_dir / "sen12mscr" / "5278_s2_clear.tif"}], 32,
                  stride=64, validation=0.25)  # fmt: skip
    with pytest.raises(QgsProcessingException) as error:
        processing.run(TrainModel(), parameters(clear, tmp_path / "m.onnx"))
    assert "(CLOUD_MASKS)" in str(error.value) and "--" not in str(error.value)
    assert not (tmp_path / "m.onnx").exists()


def test_missing_torch_gives_the_install_command(provider, dataset, tmp_path):
    """QGIS's own Python without the venv: the plugin loads, the algorithm says what to do."""
    if QgsApplication.processingRegistry().algorithmById("gapfill:trainmodel") is None:
        pytest.skip("gapfill:trainmodel is not registered in the provider yet")
    qgis = QgisProcess(tmp_path / "bare", python_paths=[])
    with pytest.raises(QgisProcessError, match=r"torch[\s\S]*-m pip install"):
        qgis.run("gapfill:trainmodel", {"DATASET": dataset, "OUTPUT": tmp_path / "m.onnx"})
