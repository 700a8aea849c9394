"""Build gap mask with the field-made detectors, and Fill from other dates building the other
dates' masks itself, through processing.run and qgis_process on real data."""

import sys

import numpy as np
import processing
import pytest
from qgis.core import QgsProcessingException

from feedback import RecordingFeedback
from gapfill.algorithms.install_dependencies import InstallDependencies
from qgis_runner import QgisProcess, QgisProcessError
from rasters import read, same_georeference

TARGET, CLOUDY, CLEAR = "2018-03-07", "2018-02-25", "2018-03-22"


@pytest.fixture(scope="module")
def series(data_dir):
    return data_dir / "sen12mscr_ts"


def test_automatic_is_the_default_and_runs_ukis_csmask(provider, series, tmp_path):
    feedback = RecordingFeedback()
    target = series / f"s2_{TARGET}.tif"
    result = processing.run(
        "gapfill:buildgapmask",
        {"INPUT": str(target), "OUTPUT": str(tmp_path / "mask.tif")},
        feedback=feedback,
    )
    assert "Automatic mask method: ukis-csmask (clouds and shadows)." in feedback.lines
    assert result["METHOD_USED"].startswith("ukis-csmask 6-band L1C model")
    assert "cells of 3 × 3 px" in result["METHOD_USED"]
    assert "haze buffer" in result["METHOD_USED"]
    assert 0.6 < result["GAP_FRACTION"] < 1.0
    assert same_georeference(result["OUTPUT"], target)
    mask = read(result["OUTPUT"])[0]
    assert set(np.unique(mask)) <= {0, 1}
    blue = read(target)[1].astype(float)
    assert blue[mask == 1].mean() > 1.5 * blue[mask == 0].mean()


def test_classes_threshold_and_buffer(provider, series, tmp_path):
    def fraction(**parameters) -> float:
        result = processing.run("gapfill:buildgapmask", {
            "INPUT": str(series / f"s2_{TARGET}.tif"), "METHOD": 6,
            "OUTPUT": str(tmp_path / "m.tif"), **parameters,
        })
        return result["GAP_FRACTION"]

    both = fraction(HAZE_BUFFER=0)
    clouds, shadows = fraction(FLAG=[0], HAZE_BUFFER=0), fraction(FLAG=[1], HAZE_BUFFER=0)
    assert both == pytest.approx(clouds + shadows, abs=1e-9) and clouds > 0.3
    assert fraction(FLAG=[0], HAZE_BUFFER=0, CLOUD_THRESHOLD=0.2) > clouds
    assert fraction(FLAG=[0], HAZE_BUFFER=100) > clouds
    assert fraction(FLAG=[0]) > clouds  # the default haze buffer


def test_s2cloudless_and_what_it_refuses(provider, data_dir, tmp_path):
    feedback = RecordingFeedback()
    result = processing.run("gapfill:buildgapmask", {
        "INPUT": str(data_dir / "sen12mscr" / "5278_s2_cloudy.tif"), "METHOD": 7,
        "PIXEL_SIZE": 10, "OUTPUT": str(tmp_path / "m.tif"),
    }, feedback=feedback)
    assert result["METHOD_USED"].startswith("s2cloudless 1.7.3")
    assert 0.5 < result["GAP_FRACTION"] < 0.95
    with pytest.raises(QgsProcessingException, match="s2cloudless needs the Sentinel-2 bands"):
        processing.run("gapfill:buildgapmask", {
            "INPUT": str(data_dir / "cloud_labels" / "s2_l1c_6band.tif"), "METHOD": 7,
            "OUTPUT": str(tmp_path / "refused.tif"),
        })
    assert not (tmp_path / "refused.tif").exists()


def test_a_missing_package_names_the_fix(provider, data_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "s2cloudless", None)  # importing it raises ImportError
    with pytest.raises(QgsProcessingException) as error:
        processing.run("gapfill:buildgapmask", {
            "INPUT": str(data_dir / "sen12mscr" / "5278_s2_cloudy.tif"), "METHOD": 7,
            "OUTPUT": str(tmp_path / "m.tif"),
        })
    message = str(error.value)
    assert "needs the Python package 's2cloudless'" in message
    assert "Install dependencies" in message and "pip install s2cloudless" in message
    assert not (tmp_path / "m.tif").exists()


def test_fill_builds_the_masks_of_the_other_dates(provider, series, tmp_path):
    """Without their masks, a cloudy other date is masked the way Build gap mask does it,
    instead of being copied into the gaps."""
    target = series / f"s2_{TARGET}.tif"
    mask = processing.run("gapfill:buildgapmask", {
        "INPUT": str(target), "OUTPUT": str(tmp_path / "mask.tif"),
    })["OUTPUT"]
    filled, logs = {}, {}
    for name, masking in (("built", 0), ("none", 1)):
        feedback = RecordingFeedback()
        result = processing.run("gapfill:filltemporal", {
            "INPUT": str(target), "GAP_MASK": mask,
            "OTHER_DATES": [str(series / f"s2_{CLOUDY}.tif"), str(series / f"s2_{CLEAR}.tif")],
            "OTHER_MASK_METHOD": masking, "METHOD": 0,
            "OUTPUT": str(tmp_path / f"{name}.tif"),
        }, feedback=feedback)
        filled[name], logs[name] = read(result["OUTPUT"]).astype(float), feedback.lines
    assert "No gap masks of the other dates given: building them." in logs["built"]
    assert any("Automatic mask method: ukis-csmask" in line for line in logs["built"])
    assert not any("building them" in line for line in logs["none"])
    gap = read(mask)[0] == 1
    clear = read(series / f"s2_{CLEAR}.tif").astype(float)
    errors = {name: np.abs(values - clear)[:, gap].mean() for name, values in filled.items()}
    assert errors["built"] < 0.5 * errors["none"]  # the clouds of 02-25 stay out


def test_install_dependencies_offers_the_detectors(qgis_processing):
    feedback = RecordingFeedback()
    result = processing.run(InstallDependencies(), {"DRY_RUN": True, "MASKS": True},
                            feedback=feedback)
    resolve, _ = result["COMMANDS"].splitlines()
    assert resolve.endswith("ukis-csmask==1.0.0 s2cloudless==1.7.3")


def test_detectors_through_qgis_process(data_dir, tmp_path):
    qgis = QgisProcess(tmp_path / "qgis")
    image = data_dir / "sen12mscr_pairs" / "ROIs1868_summer_135_p268_s2_cloudy.tif"
    result = qgis.run("gapfill:buildgapmask", {
        "INPUT": image, "METHOD": 6, "UKIS_MODEL": 1, "FLAG": 0, "OUTPUT": tmp_path / "m.tif",
    })["results"]
    assert result["METHOD_USED"].startswith("ukis-csmask 4-band L1C model")
    assert same_georeference(result["OUTPUT"], image)
    with pytest.raises(QgisProcessError, match="trained on L1C"):
        qgis.run("gapfill:buildgapmask", {
            "INPUT": image, "METHOD": 7, "PRODUCT_LEVEL": 2, "OUTPUT": tmp_path / "l2a.tif",
        })
