"""Simulate gaps and Evaluate fill in real QGIS (processing.run and qgis_process) on real data:
outputs on the right grid, a report that renders, identical reports for identical inputs, a
perfect fill scoring MAE 0 and PSNR inf, and clear errors on bad inputs."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import processing
import pytest
from osgeo import gdal
from qgis.core import QgsProcessingException

from feedback import RecordingFeedback
from qgis_runner import QgisProcess
from rasters import read, same_georeference

CLEAR = "sen12mscr_ts/s2_2018-06-10.tif"  # a clear date (spectral mask: 0.2 % clouds)
CLOUD_MASK = "eolearn_slovenia/cloud_mask.tif"  # real s2cloudless masks of 68 dates
CLOUDY_DATE_BAND = 15  # 2016-03-17, about half cloudy
CHROMIUM = Path("/usr/bin/chromium")


def simulate(data_dir: Path, folder: Path, feedback=None, **overrides) -> dict:
    parameters = {
        "INPUT": str(data_dir / CLEAR),
        "GAP_SOURCE": str(data_dir / CLOUD_MASK),
        "GAP_BAND": CLOUDY_DATE_BAND,
        "SHIFT_X": 20,
        "FLIP": 1,
        "OUTPUT": str(folder / "cloudy.tif"),
        "GAP_MASK": str(folder / "gaps.tif"),
        "EVALUATION_MASK": str(folder / "evaluation.tif"),
        **overrides,
    }
    return processing.run("gapfill:simulategaps", parameters, feedback=feedback)


@pytest.fixture(scope="module")
def simulated(provider, data_dir, tmp_path_factory):
    """Gaps from a real cloud mask on a clear date, and their spatial fill."""
    folder = tmp_path_factory.mktemp("simulated")
    result = simulate(data_dir, folder)
    fill = processing.run(
        "gapfill:fillspatial",
        {
            "INPUT": result["OUTPUT"],
            "GAP_MASK": result["GAP_MASK"],
            "MAX_DISTANCE": 300,
            "OUTPUT": str(folder / "spatial.tif"),
        },
    )
    return {**result, "FILLED": fill["OUTPUT"], "REFERENCE": str(data_dir / CLEAR)}


def evaluate(simulated: dict, folder: Path, **overrides) -> dict:
    parameters = {
        "REFERENCE": simulated["REFERENCE"],
        "FILLED": simulated["FILLED"],
        "EVALUATION_MASK": simulated["EVALUATION_MASK"],
        "GAPS_INPUT": simulated["OUTPUT"],
        "NDVI": True,
        "OUTPUT_FOLDER": str(folder),
        **overrides,
    }
    return processing.run("gapfill:evaluatefill", parameters)


def test_simulated_gaps_come_from_the_real_mask(simulated, data_dir):
    clear, cloudy = read(data_dir / CLEAR), read(simulated["OUTPUT"])
    gaps, evaluation = read(simulated["GAP_MASK"])[0], read(simulated["EVALUATION_MASK"])[0]
    for output in ("OUTPUT", "GAP_MASK", "EVALUATION_MASK"):
        assert same_georeference(simulated[output], data_dir / CLEAR)
    removed = evaluation == 1
    assert simulated["EVALUATION_PIXELS"] == removed.sum() == (gaps == 1).sum()
    assert 0.2 < simulated["EVALUATION_FRACTION"] < 0.8
    assert (cloudy[:, removed] == 0).all()
    np.testing.assert_array_equal(cloudy[:, ~removed], clear[:, ~removed])
    assert gdal.Open(simulated["OUTPUT"]).GetRasterBand(1).GetNoDataValue() == 0


def test_cloud_mode_brightens_the_gaps(provider, data_dir, tmp_path):
    result = simulate(data_dir, tmp_path, MODE=1, EDGE=0, CLOUD_VALUE=8000)
    removed = read(result["EVALUATION_MASK"])[0] == 1
    assert (read(result["OUTPUT"])[:, removed] == 8000).all()


def test_removing_every_pixel_is_said(provider, data_dir, tmp_path):
    """A mask that covers the whole image leaves nothing for a fill from the image itself."""
    clear = gdal.Open(str(data_dir / CLEAR))
    cloud = tmp_path / "overcast.tif"
    mask = gdal.GetDriverByName("GTiff").Create(
        str(cloud), clear.RasterXSize, clear.RasterYSize, 1, gdal.GDT_Byte
    )
    mask.GetRasterBand(1).Fill(1)
    mask = clear = None
    feedback = RecordingFeedback()
    parameters = {"GAP_SOURCE": str(cloud), "GAP_BAND": 1, "SHIFT_X": 0, "FLIP": 0}
    result = simulate(data_dir, tmp_path, feedback=feedback, **parameters)
    assert result["EVALUATION_FRACTION"] == 1.0
    assert any("Every pixel with data was removed" in text for text in feedback.warnings)


class Page(HTMLParser):
    """The <img> sources of a page; fails on an element closed out of order."""

    VOID = {"meta", "img"}

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        elif tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open.pop() == tag


def check_report_renders(html: Path) -> None:
    """Valid HTML whose pictures exist; a headless Chromium screenshot where Chromium is."""
    page = Page()
    page.feed(html.read_text(encoding="utf-8"))
    assert not page.open and page.images
    for source in page.images:
        assert (html.parent / source).stat().st_size > 0
    if not CHROMIUM.exists():
        return
    screenshot = html.parent / "screenshot.png"
    subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
         "--window-size=1400,1800", f"--screenshot={screenshot}", html.as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    assert screenshot.stat().st_size > 10_000


def test_report_compares_methods_and_renders(simulated, tmp_path):
    result = evaluate(
        simulated, tmp_path / "report",
        OTHER_FILLED=[simulated["REFERENCE"]], METHOD_NAMES="spatial, perfect",
    )
    document = json.loads(Path(result["JSON"]).read_text())
    spatial, perfect = document["methods"]
    assert [spatial["name"], perfect["name"]] == ["spatial", "perfect"]
    assert result["MAE"] == spatial["overall"]["mae"] > 0
    assert result["FILLED_FRACTION"] == 1 and 0 < result["SSIM"] < 1 and result["SAM"] > 0
    assert perfect["overall"]["mae"] == 0 and perfect["overall"]["psnr"] == "inf"
    assert spatial["overall"]["ndvi_mae"] > 0 and len(spatial["bands"]) == 13
    assert document["scaling"] == "DN / 10000, clipped to [0, 1]"
    csv_lines = Path(result["CSV"]).read_text().splitlines()
    assert csv_lines[0].startswith("method,band,band_name") and len(csv_lines) == 1 + 2 * 14
    check_report_renders(Path(result["HTML"]))


def test_perfect_fill_gives_mae_0_and_psnr_inf(simulated, tmp_path):
    result = evaluate(simulated, tmp_path, FILLED=simulated["REFERENCE"])
    assert result["MAE"] == 0 and result["PSNR"] == math.inf
    overall = Path(result["CSV"]).read_text().splitlines()[1].split(",")
    assert overall[6:9] == ["0", "0", "inf"]  # mae, rmse, psnr


def test_identical_inputs_give_identical_reports(simulated, tmp_path):
    first = evaluate(simulated, tmp_path / "first")
    second = evaluate(simulated, tmp_path / "second")
    for key in ("CSV", "JSON", "HTML"):
        assert Path(first[key]).read_bytes() == Path(second[key]).read_bytes()


def test_bad_inputs_give_clear_errors(simulated, data_dir, tmp_path):
    pixel_grid = data_dir / "sen12mscr" / "5254_s2_clear.tif"  # 256×256, no georeference
    slovenia = data_dir / "eolearn_slovenia" / "reference_scene_0.tif"  # far from Rome
    with pytest.raises(QgsProcessingException, match="does not overlap"):
        evaluate(simulated, tmp_path, FILLED=str(slovenia))
    with pytest.raises(QgsProcessingException, match="not both georeferenced"):
        evaluate(simulated, tmp_path, REFERENCE=str(pixel_grid),
                 FILLED=str(data_dir / "cloud_labels/s2_l1c_6band.tif"), GAPS_INPUT=None)
    three = str(tmp_path / "three_bands.tif")
    gdal.Translate(three, simulated["FILLED"], bandList=[2, 3, 4])
    with pytest.raises(QgsProcessingException, match="has 3 band\\(s\\) but the reference has 13"):
        evaluate(simulated, tmp_path, FILLED=three)
    with pytest.raises(QgsProcessingException, match="No pixel to evaluate"):
        evaluate(simulated, tmp_path, EVALUATION_MASK=None, GAPS_INPUT=simulated["REFERENCE"])
    with pytest.raises(QgsProcessingException, match="smaller than the target"):
        simulate(data_dir, tmp_path, TILE=False)
    assert not list(tmp_path.glob("*.html"))


def test_qgis_process_runs_both_algorithms(data_dir, tmp_path):
    qgis = QgisProcess(tmp_path / "qgis")
    simulated = qgis.run(
        "gapfill:simulategaps",
        {
            "INPUT": data_dir / CLEAR,
            "GAP_SOURCE": data_dir / "cloud_labels" / "labels.tif",
            "GAP_VALUES": "4, 0",
            "OUTPUT": tmp_path / "cloudy.tif",
            "GAP_MASK": tmp_path / "gaps.tif",
            "EVALUATION_MASK": tmp_path / "evaluation.tif",
        },
    )["results"]
    assert simulated["EVALUATION_PIXELS"] > 0
    result = qgis.run(
        "gapfill:evaluatefill",
        {
            "REFERENCE": data_dir / CLEAR,
            "FILLED": data_dir / CLEAR,
            "GAPS_INPUT": simulated["OUTPUT"],
            "OUTPUT_FOLDER": tmp_path / "report",
        },
    )["results"]
    assert result["MAE"] == 0
    overall = json.loads(Path(result["JSON"]).read_text())["methods"][0]["overall"]
    assert overall["psnr"] == "inf" and overall["evaluated"] == 13 * simulated["EVALUATION_PIXELS"]
    assert Path(result["HTML"]).is_file()
    shutil.rmtree(tmp_path / "qgis", ignore_errors=True)
