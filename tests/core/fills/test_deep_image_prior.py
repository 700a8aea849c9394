"""Deep Image Prior fill: seeded determinism, a decreasing loss, gap pixels only replaced."""

import numpy as np
import pytest
from osgeo import gdal

from gapfill.core.fills.deep_image_prior import fill_arrays, fill_with_deep_image_prior
from gapfill.core.raster.fill_engine import open_target

pytestmark = pytest.mark.torch

SIZE = 32


def scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    target = np.stack([np.sin(x / 5) + y / 10, np.cos(y / 6)]) * 100 + 500
    clear = np.ones((SIZE, SIZE), bool)
    clear[10:20, 12:22] = False
    auxiliary = target[:1] * 2 + 3
    return target, clear, auxiliary


def test_fixed_seed_same_result_and_loss_decreases():
    target, clear, auxiliary = scene()
    sources = [(auxiliary, np.ones_like(clear))]
    first, history = fill_arrays(target, clear, sources, iterations=20, seed=3, device="cpu")
    second, _ = fill_arrays(target, clear, sources, iterations=20, seed=3, device="cpu")
    assert np.array_equal(first, second)
    losses = history[0]
    assert len(losses) == 20
    assert np.mean(losses[-3:]) < 0.5 * losses[0]


def test_only_gap_pixels_replaced(tmp_path):
    target, clear, auxiliary = scene()
    path, aux_path = tmp_path / "target.tif", tmp_path / "aux.tif"
    values = target.astype(np.uint16)
    values[:, ~clear] = 0
    driver = gdal.GetDriverByName("GTiff")
    for name, array in ((path, values), (aux_path, auxiliary.astype(np.float32))):
        kind = gdal.GDT_UInt16 if array.dtype == np.uint16 else gdal.GDT_Float32
        dataset = driver.Create(str(name), SIZE, SIZE, array.shape[0], kind)
        dataset.SetGeoTransform((0, 10, 0, 0, 0, -10))
        for band in range(array.shape[0]):
            dataset.GetRasterBand(band + 1).WriteArray(array[band])
            if name == path:
                dataset.GetRasterBand(band + 1).SetNoDataValue(0)
        dataset = None
    from gapfill.core.fills.deep_image_prior import open_auxiliary

    image = open_target(str(path))
    progress = []
    report = fill_with_deep_image_prior(
        image, tmp_path / "out.tif", open_auxiliary(image, [str(aux_path)]),
        iterations=10, device="cpu", progress=progress.append,
    )
    output = gdal.Open(str(tmp_path / "out.tif")).ReadAsArray()
    assert np.array_equal(output[:, clear], values[:, clear])
    assert report.filled == report.gaps == int((~clear).sum())
    assert (output[:, ~clear] > 0).all()
    assert len(progress) >= 10 and progress[-1] == pytest.approx(1.0)
