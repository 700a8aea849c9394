"""The shipped graphical-modeler model chains the algorithms (mask → temporal → spatial fill)."""

import shutil
from pathlib import Path

import numpy as np
import processing
from qgis.core import QgsProcessingModelAlgorithm

from qgis_runner import REPO, QgisProcess
from rasters import read, same_georeference

MODEL = REPO / "examples" / "mask_and_fill.model3"


DATES = ("s2_2018-03-07.tif", "s2_2018-02-25.tif", "s2_2018-03-22.tif")


def model_inputs(data_dir, folder):
    """Copies of the inputs in `folder/inputs`, where a test sees what is written beside them
    (in this process QGIS's model loads them as layers, whose renderer leaves an .aux.xml of
    statistics beside each, as QGIS desktop does for any layer it draws)."""
    series = folder / "inputs"
    series.mkdir()
    for name in DATES:
        shutil.copy(data_dir / "sen12mscr_ts" / name, series)
    return {
        "cloudy": str(series / DATES[0]),
        "others": [str(series / name) for name in DATES[1:]],
        "spatial:filled": str(folder / "filled.tif"),
    }


def nothing_beside(inputs):
    return sorted(path.name for path in (Path(inputs["cloudy"]).parent).iterdir()) == sorted(DATES)


def test_model_runs_in_processing(provider, data_dir, tmp_path):
    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(MODEL))
    inputs = model_inputs(data_dir, tmp_path)
    result = processing.run(model, inputs)
    filled = result["spatial:filled"]
    assert same_georeference(filled, data_dir / "sen12mscr_ts" / "s2_2018-03-07.tif")
    assert (read(filled) > 0).all()  # every gap filled: temporal first, spatial for the rest


def test_model_runs_in_qgis_process(data_dir, tmp_path):
    qgis = QgisProcess(tmp_path / "qgis")
    inputs = model_inputs(data_dir, tmp_path)
    result = qgis.run(str(MODEL), inputs)
    output = result["results"]["spatial:filled"]
    cloudy = read(inputs["cloudy"]).astype(float)
    assert read(output).astype(float)[1].mean() < 0.8 * cloudy[1].mean()  # clouds removed
    assert np.isfinite(read(output)).all()
    assert nothing_beside(inputs)
