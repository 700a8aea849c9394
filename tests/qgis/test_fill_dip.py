"""Fill with Deep Image Prior through Processing and through qgis_process, on dip_scotland."""

import numpy as np
import processing
import pytest
from osgeo import gdal

from qgis_runner import QgisProcess
from rasters import read

pytestmark = pytest.mark.torch

CROP = [96, 96, 64, 64]


@pytest.fixture(scope="module")
def scotland(data_dir, tmp_path_factory):
    folder = data_dir / "dip_scotland"
    out = tmp_path_factory.mktemp("dip")
    crops = {}
    for name in ("s2_mean_2019_rgb", "cloud_mask", "s1"):
        crops[name] = out / f"{name}.tif"
        gdal.Translate(str(crops[name]), str(folder / f"{name}.tif"), srcWin=CROP)
    return crops


def parameters(scotland, output):
    return {
        "INPUT": str(scotland["s2_mean_2019_rgb"]),
        "GAP_MASK": str(scotland["cloud_mask"]),
        "AUXILIARY": [str(scotland["s1"])],
        "ITERATIONS": 5,
        "DEVICE": 1,
        "OUTPUT": str(output),
    }


def check(scotland, output):
    filled, original = read(output), read(scotland["s2_mean_2019_rgb"])
    gap = read(scotland["cloud_mask"])[0] != 0
    assert np.array_equal(filled[:, ~gap], original[:, ~gap])
    assert gap.any()


def test_processing_run(provider, scotland, tmp_path):
    import processing

    from gapfill.algorithms.fill_deep_image_prior import FillDeepImagePrior

    result = processing.run(FillDeepImagePrior(), parameters(scotland, tmp_path / "out.tif"))
    check(scotland, result["OUTPUT"])
    assert result["UNFILLED_PIXELS"] == 0
    assert result["FILLED_PIXELS"] == int((read(scotland["cloud_mask"])[0] != 0).sum())


def test_qgis_process(scotland, tmp_path):
    qgis = QgisProcess(tmp_path / "qgis")
    result = qgis.run("gapfill:filldip", parameters(scotland, tmp_path / "out.tif"))
    check(scotland, result["results"]["OUTPUT"])


def test_nothing_is_invented_where_there_is_nothing_to_learn_from(provider, scotland, tmp_path):
    """A target entirely in gaps is refused (no black image 'filled' to 100 %), and so is an
    image too small for the network."""
    from qgis.core import QgsProcessingException

    full = tmp_path / "full.tif"
    gdal.Translate(str(full), str(scotland["cloud_mask"]), scaleParams=[[0, 0, 1, 1]],
                   outputType=gdal.GDT_Byte)
    assert read(full).min() == 1
    with pytest.raises(QgsProcessingException, match="entirely in gaps"):
        processing.run("gapfill:filldip", {**parameters(scotland, tmp_path / "out.tif"),
                                           "GAP_MASK": str(full)})
    tiny = tmp_path / "tiny.tif"
    gdal.Translate(str(tiny), str(scotland["s2_mean_2019_rgb"]), srcWin=[0, 0, 1, 1])
    with pytest.raises(QgsProcessingException, match="needs at least 16 × 16 px"):
        processing.run("gapfill:filldip", {**parameters(scotland, tmp_path / "out.tif"),
                                           "INPUT": str(tiny), "GAP_MASK": None})
    assert not (tmp_path / "out.tif").exists()
