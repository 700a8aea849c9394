"""Fill time series in real QGIS: processing.run on an instance, and qgis_process by id."""

import numpy as np
import pytest
from osgeo import gdal

from gapfill.algorithms.fill_time_series import FillTimeSeries
from qgis_runner import REPO, QgisProcess

BUNDLED = REPO / "models" / "stpconv-s5p-co.onnx"


def s5p_block(data_dir):
    return data_dir / "s5p_co" / "training" / "X_10_5_14.tif"


@pytest.mark.parametrize("method", [0, 1, 2])
def test_fill_s5p_block_keeps_observations(qgis_processing, data_dir, tmp_path, method):
    import processing

    source = s5p_block(data_dir)
    result = processing.run(
        FillTimeSeries(),
        {"INPUT": str(source), "METHOD": method, "LAMBDA": 100.0, "MODEL": str(BUNDLED),
         "DEVICE": 1, "OUTPUT": str(tmp_path / "filled.tif")},
    )
    dataset = gdal.Open(str(source))
    original, nodata = dataset.ReadAsArray(), dataset.GetRasterBand(1).GetNoDataValue()
    filled = gdal.Open(result["OUTPUT"]).ReadAsArray()
    observed = original != np.float32(nodata)
    assert np.array_equal(filled[observed], original[observed])
    assert result["FILLED_PIXELS"] > 0.9 * (~observed).sum()
    assert (filled[~observed] != np.float32(nodata)).sum() == result["FILLED_PIXELS"]


def test_model_method_needs_a_model(qgis_processing, data_dir, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="needs a time-series ONNX model"):
        processing.run(
            FillTimeSeries(),
            {"INPUT": str(s5p_block(data_dir)), "METHOD": 2, "OUTPUT": str(tmp_path / "o.tif")},
        )


def test_through_qgis_process(data_dir, tmp_path):
    qgis = QgisProcess(tmp_path / "qgis")
    result = qgis.run(
        "gapfill:filltimeseries",
        {"INPUT": s5p_block(data_dir), "METHOD": 1, "LAMBDA": 10,
         "OUTPUT": tmp_path / "filled.tif"},
    )
    assert result["results"]["FILLED_PIXELS"] > 0
    output = gdal.Open(str(result["results"]["OUTPUT"]))
    assert output.RasterCount == 16
