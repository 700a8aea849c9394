"""Fill gaps, learned from this scene, in real QGIS and through qgis_process: a tiny run on a
real sample with its real cloud mask laid on the clear image (without torch, as on QGIS 3.40,
the classical fills and the bundled models compete)."""

from __future__ import annotations

import json

import numpy as np
import processing
import pytest
from osgeo import gdal
from qgis.core import QgsProcessingException

from feedback import RecordingFeedback
from qgis_runner import QgisProcess
from rasters import read, same_georeference

SAMPLE = "ROIs1868_summer_135_p269"  # a georeferenced pair: the output keeps the CRS


@pytest.fixture(scope="module")
def scene(provider, data_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fillscene")
    clear = folder / "clear.tif"
    gdal.Translate(str(clear), str(data_dir / f"sen12mscr_pairs/{SAMPLE}_s2_clear.tif"),
                   srcWin=[0, 0, 128, 128])
    mask = folder / "cloudmask.tif"
    gdal.Translate(str(mask), str(data_dir / "sen12mscr/4287_cloudmask.tif"),
                   srcWin=[64, 64, 128, 128])
    simulated = processing.run("gapfill:simulategaps", {
        "INPUT": str(clear), "GAP_SOURCE": str(mask), "OUTPUT": str(folder / "cloudy.tif"),
        "GAP_MASK": str(folder / "gaps.tif"), "EVALUATION_MASK": str(folder / "evaluation.tif"),
    })
    return {"clear": clear, **{k: simulated[k] for k in ("OUTPUT", "GAP_MASK")}}


def parameters(scene, folder, **extra) -> dict:
    return {
        "INPUT": str(scene["OUTPUT"]), "GAP_MASK": str(scene["GAP_MASK"]), "BUDGET": 1,
        "MAX_STEPS": 20, "OUTPUT": str(folder / "filled.tif"), **extra,
    }


def test_processing_run_fills_reports_and_writes_confidence(scene, tmp_path):
    feedback = RecordingFeedback()
    result = processing.run("gapfill:fillscene", parameters(
        scene, tmp_path, CONFIDENCE=str(tmp_path / "confidence.tif"),
        REPORT_FOLDER=str(tmp_path / "report"),
    ), feedback=feedback)
    assert result["UNFILLED_PIXELS"] == 0 and result["FILLED_PIXELS"] > 1000
    assert result["CHOSEN"] and result["REPORT_PSNR"] > 20 and result["CLASSICAL_PSNR"] > 20
    gaps = read(scene["GAP_MASK"])[0] == 1
    filled, cloudy = read(result["OUTPUT"]), read(scene["OUTPUT"])
    np.testing.assert_array_equal(filled[:, ~gaps], cloudy[:, ~gaps])
    assert same_georeference(result["OUTPUT"], scene["clear"])
    assert any(line.startswith("Chosen: ") for line in feedback.lines)
    assert any("On the report blocks" in line for line in feedback.lines)
    document = json.loads((tmp_path / "report" / "scene_report.json").read_text())
    assert document["chosen"] == result["CHOSEN"]
    assert read(result["CONFIDENCE"]).shape == (2, 128, 128)



def test_a_scene_without_gaps_is_copied_without_learning(scene, tmp_path):
    """A clear scene took the whole learning budget before its copy was written."""
    clear_mask = tmp_path / "no_cloud.tif"
    gdal.Translate(str(clear_mask), str(scene["GAP_MASK"]), scaleParams=[[0, 255, 0, 0]])
    feedback = RecordingFeedback()
    result = processing.run("gapfill:fillscene", {
        "INPUT": str(scene["clear"]), "GAP_MASK": str(clear_mask), "BUDGET": 10,
        "OUTPUT": str(tmp_path / "copy.tif"),
        "REPORT_FOLDER": str(tmp_path / "report"), "CONFIDENCE": str(tmp_path / "c.tif"),
    }, feedback=feedback)
    assert result["FILLED_PIXELS"] == 0 and "CONFIDENCE" not in result
    np.testing.assert_array_equal(read(result["OUTPUT"]), read(scene["clear"]))
    assert any("nothing was learned or validated" in text for text in feedback.warnings)
    assert not any(line.startswith("Ranking PSNR") for line in feedback.lines)
    assert json.loads((tmp_path / "report" / "scene_report.json").read_text())["windows"] == 0

def test_a_scene_too_cloudy_to_measure_is_filled_without_claiming_a_confidence_layer(
    provider, data_dir, tmp_path
):
    """97 % cloud: nothing can be validated, so no confidence layer can be made; the result
    named one that was never written."""
    sample = data_dir / "sen12mscr"
    feedback = RecordingFeedback()
    result = processing.run("gapfill:fillscene", {
        "INPUT": str(sample / "4294_s2_cloudy.tif"), "GAP_MASK": str(sample / "4294_cloudmask.tif"),
        "BUDGET": 0.1, "OUTPUT": str(tmp_path / "filled.tif"),
        "CONFIDENCE": str(tmp_path / "confidence.tif"),
    }, feedback=feedback)
    assert result["FILLED_PIXELS"] > 0 and "CONFIDENCE" not in result
    assert not (tmp_path / "confidence.tif").exists()
    assert any("No confidence layer was written" in text for text in feedback.warnings)

@pytest.mark.torch
def test_the_saved_network_starts_the_next_run(scene, tmp_path):
    saved = processing.run("gapfill:fillscene", parameters(
        scene, tmp_path / "a", SAVE_NETWORK=str(tmp_path / "net.pt"),
    ))
    assert saved["SAVE_NETWORK"] == str(tmp_path / "net.pt")
    feedback = RecordingFeedback()
    processing.run("gapfill:fillscene", parameters(
        scene, tmp_path / "b", START_NETWORK=saved["SAVE_NETWORK"]
    ), feedback=feedback)
    assert any("Adapted network (started from net.pt): better than" in line
               for line in feedback.lines)
    (tmp_path / "other.pt").write_bytes(b"not a network")
    with pytest.raises(QgsProcessingException, match="is not an adapted network"):
        processing.run("gapfill:fillscene", parameters(
            scene, tmp_path / "c", START_NETWORK=str(tmp_path / "other.pt")
        ))
    with pytest.raises(QgsProcessingException, match=r"leave out 'Save the adapted network' "
                                                     r"\(SAVE_NETWORK\)"):
        processing.run("gapfill:fillscene", parameters(
            scene, tmp_path / "c", ADAPT=False, SAVE_NETWORK=str(tmp_path / "c.pt")
        ))
    assert not (tmp_path / "c").exists() and not (tmp_path / "c.pt").exists()


def test_qgis_process_runs_it(scene, tmp_path):
    qgis = QgisProcess(tmp_path / "qgis")
    result = qgis.run("gapfill:fillscene", parameters(scene, tmp_path, ADAPT=False))
    assert result["results"]["UNFILLED_PIXELS"] == 0
    assert result["results"]["CHOSEN"] != "adapted network"


def test_cancel_leaves_no_output(scene, tmp_path):
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        processing.run("gapfill:fillscene", parameters(
            scene, tmp_path, CONFIDENCE=str(tmp_path / "confidence.tif"),
        ), feedback=RecordingFeedback(cancel_above=30))
    assert list(tmp_path.iterdir()) == []


def test_the_haze_around_real_clouds_is_kept_off_and_said(provider, data_dir, tmp_path):
    """A real cloudy sample whose mask misses the clouds' hazy edges: by default the haze is
    measured and warned of, the clear pixels (the margin's too) are copied; SOURCE_MARGIN 0
    reads every clear pixel and says nothing of haze."""
    target = str(data_dir / "sen12mscr/5349_s2_cloudy.tif")
    mask = str(data_dir / "sen12mscr/5349_cloudmask.tif")
    runs = {}
    for margin in (-1, 0):
        feedback = RecordingFeedback()
        runs[margin] = processing.run("gapfill:fillscene", {
            "INPUT": target, "GAP_MASK": mask, "ADAPT": False, "BUNDLED": False,
            "SOURCE_MARGIN": margin, "OUTPUT": str(tmp_path / f"filled{margin}.tif"),
        }, feedback=feedback)["OUTPUT"], feedback.warnings
    gaps = read(mask)[0] == 1
    measured, warnings = runs[-1]
    assert any(w.startswith("Haze around the clouds") and "grow it by" in w for w in warnings)
    np.testing.assert_array_equal(read(measured)[:, ~gaps], read(target)[:, ~gaps])
    every_pixel, warnings = runs[0]
    assert not any("Haze" in w for w in warnings)
    assert not np.array_equal(read(every_pixel)[:, gaps], read(measured)[:, gaps])


def test_sar_and_target_on_the_bundled_models_scale(provider, data_dir, tmp_path):
    """A scene under cloud nearly everywhere is filled by the bundled S1+S2 model (nothing to
    validate on): linear SAR is read as dB, and said, so the fill is the one from dB (to a DN
    or two); a target in reflectance 0–1, where the model wants digital numbers, leaves the
    model out (said) instead of filling with values on another scale."""
    folder = data_dir / "sen12mscr_georef"
    clear = folder / "ROIs1158_spring_101_p30_s2_clear.tif"
    sar_db = folder / "ROIs1158_spring_101_p30_s1.tif"
    sar_linear = tmp_path / "s1_linear.tif"
    gdal.Translate(str(sar_linear), str(sar_db), outputType=gdal.GDT_Float32)
    dataset = gdal.Open(str(sar_linear), gdal.GA_Update)
    for band in range(1, dataset.RasterCount + 1):
        values = dataset.GetRasterBand(band).ReadAsArray()
        dataset.GetRasterBand(band).WriteArray(10 ** (values / 10))
    dataset = None
    reflectance = tmp_path / "reflectance.tif"
    gdal.Translate(str(reflectance), str(clear), outputType=gdal.GDT_Float32,
                   scaleParams=[[0, 10000, 0, 1]])
    gaps = np.ones(read(clear).shape[1:], np.uint8)
    gaps[:16, :16] = 0
    mask = tmp_path / "mask.tif"
    dataset = gdal.GetDriverByName("GTiff").Create(str(mask), *gaps.shape[::-1], 1)
    dataset.SetGeoTransform(gdal.Open(str(clear)).GetGeoTransform())
    dataset.SetProjection(gdal.Open(str(clear)).GetProjection())
    dataset.GetRasterBand(1).WriteArray(gaps)
    dataset = None

    def run(target, sar, name):
        feedback = RecordingFeedback()
        result = processing.run("gapfill:fillscene", {
            "INPUT": str(target), "GAP_MASK": str(mask), "SAR": str(sar), "ADAPT": False,
            "OUTPUT": str(tmp_path / f"filled_{name}.tif"),
        }, feedback=feedback)
        return result, feedback.lines

    from_db, _ = run(clear, sar_db, "db")
    from_linear, lines = run(clear, sar_linear, "linear")
    assert from_db["CHOSEN"] == from_linear["CHOSEN"] == "s1s2_unet_small"
    assert any("linear backscatter: read as dB" in line for line in lines)
    difference = read(from_linear["OUTPUT"]).astype(int) - read(from_db["OUTPUT"])
    assert np.abs(difference).max() <= 2  # float32 rounding of 10^(dB/10) and back
    in_reflectance, lines = run(reflectance, sar_db, "reflectance")
    assert in_reflectance["CHOSEN"] == "spatial pyramid"
    assert any("s1s2_unet_small" in line and "left out" in line and "another scale" in line
               for line in lines)
    assert read(in_reflectance["OUTPUT"]).max() < 2
