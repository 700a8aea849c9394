"""The shipped modeler model prepares a patch dataset: statistics → scaling → sampling →
extraction, through processing.run and through qgis_process (algorithms `gapfill:…`)."""

import shutil

import numpy as np
import processing
import pytest
from patch_inputs import CLOUDY, EARLIER, build_mask, date
from qgis.core import QgsProcessingModelAlgorithm, QgsVectorLayer

from gapfill.core.prepare.patch_dataset import open_arrays, read_locations, validate_dataset
from gapfill.core.prepare.raster_statistics import read_statistics
from qgis_runner import REPO, QgisProcess

MODEL = REPO / "examples" / "prepare_training_data.model3"


@pytest.fixture(scope="module")
def mask(data_dir, tmp_path_factory):
    return build_mask(data_dir, tmp_path_factory.mktemp("mask"))


def model_inputs(data_dir, mask, folder):
    """Copies of the images: QGIS's model loads them as layers in this process, whose renderer
    leaves an .aux.xml of statistics beside each."""
    copies = [shutil.copy(date(data_dir, day), folder) for day in (CLOUDY, EARLIER)]
    return {
        "target": str(copies[0]),
        "gap_mask": str(mask),
        "earlier": str(copies[1]),
        "patch_size": 32,
        "max_gap": 0.3,
        "statistics:statistics": str(folder / "statistics.json"),
        "sample:locations": str(folder / "locations.gpkg"),
        "extract:dataset": str(folder / "dataset"),
    }


def check_dataset(folder, statistics_path):
    manifest = validate_dataset(folder)
    assert set(manifest.roles) == {"target", "gap_mask", "optical_before"}
    assert manifest.split_method == "blocks" and manifest.patch_size == 32
    assert sum(manifest.splits.values()) > 10 and manifest.splits["validation"] > 0
    target = manifest.roles["target"]
    assert target.dtype == np.float32 and target.scaling is not None
    statistics = read_statistics(statistics_path)
    assert target.scaling[1].clip_min == statistics.bands[1].percentiles[2]
    arrays = open_arrays(folder, "train")
    assert 0 <= arrays["target"].min() and arrays["optical_before"].max() <= 1
    assert all(r["gap_fraction"] <= 0.3 for r in read_locations(folder)["train"])
    return manifest


def test_model_runs_in_processing(provider, mask, data_dir, tmp_path):
    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(MODEL))
    result = processing.run(model, model_inputs(data_dir, mask, tmp_path))
    manifest = check_dataset(result["extract:dataset"], result["statistics:statistics"])
    points = QgsVectorLayer(result["sample:locations"])
    assert points.featureCount() == sum(manifest.splits.values())


def test_model_runs_in_qgis_process(mask, data_dir, tmp_path):
    qgis = QgisProcess(tmp_path / "qgis")
    result = qgis.run(str(MODEL), model_inputs(data_dir, mask, tmp_path))
    outputs = result["results"]
    check_dataset(outputs["extract:dataset"], outputs["statistics:statistics"])
