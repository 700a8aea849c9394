"""Filling a time-series stack: observations kept bit-identical, gaps filled, metadata kept."""

import numpy as np
import pytest
from osgeo import gdal, osr

from gapfill.core.errors import GapfillError
from gapfill.core.fills.timeseries_fill import fill_time_series, regression_scores

NODATA = -9999.0


def write_stack(path, values, nodata=NODATA):
    bands, height, width = values.shape
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), width, height, bands,
                                                   gdal.GDT_Float32)
    dataset.SetGeoTransform((500000, 10, 0, 4000000, 0, -10))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32630)
    dataset.SetProjection(srs.ExportToWkt())
    for index in range(bands):
        band = dataset.GetRasterBand(index + 1)
        band.SetNoDataValue(nodata)
        band.SetDescription(f"2020-01-{index + 1:02d}")
        band.WriteArray(values[index])
    dataset = None
    return path


def make_series(tmp_path, dates=6, size=40, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(dates).reshape(-1, 1, 1)
    truth = (0.3 + 0.05 * t + 0.1 * np.sin(np.linspace(0, 3, size))[None, None]
             + rng.normal(0, 0.01, (dates, size, size))).astype(np.float32)
    gaps = rng.random(truth.shape) < 0.3
    gaps[:, :3, :3] = True  # never observed
    values = np.where(gaps, NODATA, truth).astype(np.float32)
    return write_stack(tmp_path / "series.tif", values), truth, gaps


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import torch

    from gapfill.training.networks.stpconv import STPConv
    from gapfill.training.stpconv_train import export

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("stp") / "tiny.onnx"
    return export(STPConv(steps=4, width=4, depth=2), path, 0.4, 10.0, {}, ["a"], ["b"])


@pytest.mark.parametrize(
    "method", ["linear", "whittaker", pytest.param("model", marks=pytest.mark.torch)]
)
def test_fill_keeps_observations_bit_identical(tmp_path, method, request):
    source, truth, gaps = make_series(tmp_path)
    output = tmp_path / f"{method}.tif"
    model = request.getfixturevalue("tiny_model") if method == "model" else None
    report = fill_time_series(source, output, method=method, model_path=model, block=16,
                              device="cpu")
    result = gdal.Open(str(output))
    filled = result.ReadAsArray()
    original = gdal.Open(str(source)).ReadAsArray()
    assert np.array_equal(filled[~gaps].view(np.uint32), original[~gaps].view(np.uint32))
    assert result.GetRasterBand(3).GetDescription() == "2020-01-03"
    assert result.GetRasterBand(1).GetNoDataValue() == NODATA
    assert result.GetGeoTransform() == gdal.Open(str(source)).GetGeoTransform()
    never = np.broadcast_to(gaps.all(axis=0), gaps.shape)
    assert (filled[never] == NODATA).all()  # never observed: stays no-data
    assert report.gaps == int(gaps.sum()) and report.unfilled == int(never.sum())
    inner = gaps & ~never
    assert (filled[inner] != NODATA).all()
    if method != "model":  # the untrained tiny model only has to run
        assert regression_scores(filled[inner], truth[inner])["mae"] < 0.06


def test_mask_stack_adds_gaps(tmp_path):
    source, _, _ = make_series(tmp_path)
    mask = np.zeros((1, 40, 40), np.uint8)
    mask[0, 10:20, 10:20] = 1
    mask_path = tmp_path / "mask.tif"
    dataset = gdal.GetDriverByName("GTiff").Create(str(mask_path), 40, 40, 1, gdal.GDT_Byte)
    dataset.GetRasterBand(1).WriteArray(mask[0])
    dataset = None
    output = tmp_path / "out.tif"
    report = fill_time_series(source, output, method="linear", mask_path=mask_path)
    assert report.unfilled >= 6 * 100  # masked on every date: nothing to interpolate from


def test_single_band_is_refused(tmp_path):
    path = write_stack(tmp_path / "one.tif", np.zeros((1, 4, 4), np.float32))
    with pytest.raises(GapfillError, match="one band per date"):
        fill_time_series(path, tmp_path / "out.tif")
