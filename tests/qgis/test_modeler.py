"""The shipped graphical-modeler model chains the algorithms (mask → temporal → spatial fill)."""

import numpy as np
import processing
from qgis.core import QgsProcessingModelAlgorithm

from qgis_runner import REPO, QgisProcess
from rasters import read, same_georeference

MODEL = REPO / "examples" / "mask_and_fill.model3"


def model_inputs(data_dir, output):
    series = data_dir / "sen12mscr_ts"
    return {
        "cloudy": str(series / "s2_2018-03-07.tif"),
        "others": [str(series / "s2_2018-02-25.tif"), str(series / "s2_2018-03-22.tif")],
        "spatial:filled": str(output),
    }


def test_model_runs_in_processing(provider, data_dir, tmp_path):
    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(MODEL))
    result = processing.run(model, model_inputs(data_dir, tmp_path / "filled.tif"))
    filled = result["spatial:filled"]
    assert same_georeference(filled, data_dir / "sen12mscr_ts" / "s2_2018-03-07.tif")
    assert (read(filled) > 0).all()  # every gap filled: temporal first, spatial for the rest


def test_model_runs_in_qgis_process(data_dir, tmp_path):
    qgis = QgisProcess(tmp_path / "qgis")
    inputs = model_inputs(data_dir, tmp_path / "filled.tif")
    result = qgis.run(str(MODEL), inputs)
    output = result["results"]["spatial:filled"]
    cloudy = read(inputs["cloudy"]).astype(float)
    assert read(output).astype(float)[1].mean() < 0.8 * cloudy[1].mean()  # clouds removed
    assert np.isfinite(read(output)).all()
