"""Describe model and Fill gaps with a model in real QGIS and qgis_process, with small real ONNX
models (built with onnx.helper in the tests) on the georeferenced SEN12MS-CR sample."""

import json

import numpy as np
import processing
import pytest
from qgis.core import QgsApplication, QgsProcessingException

from feedback import RecordingFeedback
from qgis_runner import QgisProcess, QgisProcessError
from rasters import read, same_georeference

SAMPLE = "ROIs1868_summer_19_p30"


@pytest.fixture(scope="module")
def sample(provider, data_dir, tmp_path_factory):
    folder = data_dir / "sen12mscr_georef"
    cloudy = folder / f"{SAMPLE}_s2_cloudy.tif"
    mask = processing.run(
        "gapfill:buildgapmask",
        {"INPUT": str(cloudy), "OUTPUT": str(tmp_path_factory.mktemp("m") / "mask.tif")},
    )["OUTPUT"]
    return {"cloudy": str(cloudy), "sar": str(folder / f"{SAMPLE}_s1.tif"), "mask": mask}


def test_describe_model(provider, models):
    result = processing.run("gapfill:describemodel", {"MODEL": str(models["sen12"].path)})
    assert "sar" in result["DESCRIPTION"] and "VV" in result["DESCRIPTION"]
    card = json.loads(result["CARD_JSON"])
    assert [item["role"] for item in card["inputs"]] == ["target", "sar", "gap_mask"]
    assert "Baseline verdict: none" in result["DESCRIPTION"]


def test_a_model_that_lost_is_described_and_warned_about(models, sample, tmp_path):
    """A card whose verdict says the model lost to spatial IDW: Describe model shows the
    table, Fill gaps with a model logs it and warns."""
    import dataclasses
    import shutil

    from gapfill.core.learned import baselines
    from gapfill.core.learned.model_card import read_card, write_card

    model = tmp_path / "lost.onnx"
    shutil.copy(models["sen12"].path, model)
    scores = {"mae": 0.03, "rmse": 0.04, "psnr": 28.0, "ssim": 0.8, "sam": 9.0}
    entry = baselines.baselines(
        {"model": scores, "spatial IDW": {**scores, "psnr": 31.0, "sam": 7.0}},
        model="model", classical=["spatial IDW"], protocol=baselines.PURE_GAP_FILLING,
        evaluated_on="test patches", metric_scaling="DN / 10000, clipped to [0, 1]",
    )  # fmt: skip
    card = read_card(model)
    write_card(model, dataclasses.replace(card, validation_metrics={"baselines": entry}))
    described = processing.run("gapfill:describemodel", {"MODEL": str(model)})["DESCRIPTION"]
    assert "Baseline verdict: the model LOSES" in described and "spatial IDW" in described
    feedback = RecordingFeedback()
    processing.run(
        "gapfill:fillgaps",
        {"MODEL": str(model), "INPUT": sample["cloudy"], "GAP_MASK": sample["mask"],
         "SAR": sample["sar"], "DEVICE": 1, "OUTPUT": str(tmp_path / "filled.tif")},
        feedback=feedback,
    )  # fmt: skip
    assert any("Baseline verdict: the model LOSES" in line for line in feedback.lines)
    assert any("This model LOST to spatial IDW" in line for line in feedback.warnings)


def test_the_target_image_comes_before_the_model(plugin):
    algorithm = QgsApplication.processingRegistry().algorithmById("gapfill:fillgaps")
    names = [p.name() for p in algorithm.parameterDefinitions()]
    assert names[:3] == ["INPUT", "GAP_MASK", "MODEL"]


def test_fill_with_model(models, sample, tmp_path):
    feedback = RecordingFeedback()
    result = processing.run(
        "gapfill:fillgaps",
        {
            "MODEL": str(models["sen12"].path),
            "INPUT": sample["cloudy"],
            "SAR": sample["sar"],
            "GAP_MASK": sample["mask"],
            "TILE_SIZE": 128,
            "OUTPUT": str(tmp_path / "filled.tif"),
        },
        feedback=feedback,
    )
    gap = read(sample["mask"])[0] == 1
    cloudy, filled = read(sample["cloudy"]), read(result["OUTPUT"])
    assert same_georeference(result["OUTPUT"], sample["cloudy"])
    np.testing.assert_array_equal(filled[:, ~gap], cloudy[:, ~gap])
    assert result["FILLED_PIXELS"] == gap.sum() > 0
    assert any("CPUExecutionProvider" in line for line in feedback.lines)


def test_fill_refuses_a_missing_role_and_a_model_without_card(models, sample, tmp_path):
    parameters = {"INPUT": sample["cloudy"], "OUTPUT": str(tmp_path / "out.tif")}
    with pytest.raises(QgsProcessingException, match="sar"):
        processing.run("gapfill:fillgaps", {**parameters, "MODEL": str(models["sen12"].path)})
    with pytest.raises(QgsProcessingException, match="card"):
        processing.run(
            "gapfill:fillgaps",
            {**parameters, "MODEL": str(models["nocard"].path), "SAR": sample["sar"]},
        )
    assert not (tmp_path / "out.tif").exists()


def test_fill_with_model_in_qgis_process(models, sample, tmp_path):
    qgis = QgisProcess(tmp_path / "qgis")
    result = qgis.run(
        "gapfill:fillgaps",
        {
            "MODEL": models["sen12"].path,
            "INPUT": sample["cloudy"],
            "SAR": sample["sar"],
            "GAP_MASK": sample["mask"],
            "DEVICE": 1,
            "OUTPUT": tmp_path / "filled.tif",
        },
    )
    assert result["results"]["UNFILLED_PIXELS"] == 0
    assert same_georeference(tmp_path / "filled.tif", sample["cloudy"])


def test_missing_onnxruntime_gives_the_install_command(models, tmp_path):
    """QGIS's own Python without the venv: the plugin loads, the model algorithm explains."""
    qgis = QgisProcess(tmp_path / "bare", python_paths=[])
    with pytest.raises(QgisProcessError, match=r"onnxruntime[\s\S]*-m pip install") as error:
        qgis.run("gapfill:describemodel", {"MODEL": models["sen12"].path})
    message = " ".join(str(error.value).split())  # qgis_process wraps long lines
    assert "`qgis_process run gapfill:installdependencies`" in message
    assert "`qgis_process.bin run gapfill:installdependencies`" in message
