"""The field-made cloud detectors (ukis-csmask, s2cloudless) through the core engine, on real
data, against the packages' own whole-image runs and the labelled scenes."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from osgeo import gdal

from gapfill.core.errors import GapfillError
from gapfill.core.masks.detectors import BLOCK_PIXELS, block_pixels, installed, product_level
from gapfill.core.masks.gap_mask import RECOMMENDED, MaskSettings, build_gap_mask
from gapfill.core.raster.access import Grid
from gapfill.core.raster.resampling import (
    pixel_size_metres,
    pool_mean,
    resolution_factor,
    upsample_bilinear,
)

LABELLED = "cloud_labels/s2_l1c_6band.tif"
UKIS_ORDER = ["blue", "green", "red", "nir", "swir16", "swir22"]


def mask_of(path, tmp_path, name="mask.tif", log=None, block_size=None, **settings):
    """The gap mask (0, 1, 255) built by the core engine."""
    build_gap_mask(str(path), tmp_path / name, MaskSettings(**settings), log=log or print,
                   block_size=block_size)
    return gdal.Open(str(tmp_path / name)).ReadAsArray()


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


def test_pooling_and_interpolation_keep_cells_aligned():
    values = np.arange(36, dtype=np.float32).reshape(1, 6, 6)
    valid = np.ones((6, 6), dtype=bool)
    valid[0, 0] = False
    cells, cells_valid = pool_mean(values, valid, 3)
    assert cells.shape == (1, 2, 2) and cells_valid.all()
    assert cells[0, 0, 0] == pytest.approx(np.mean([1, 2, 6, 7, 8, 12, 13, 14]))
    assert cells[0, 1, 1] == pytest.approx(values[0, 3:, 3:].mean())
    edge, edge_valid = pool_mean(values[:, :5, :5], valid[:5, :5], 3)  # partial cells
    assert edge.shape == (1, 2, 2) and edge[0, 1, 1] == pytest.approx(values[0, 3:5, 3:5].mean())
    fine = upsample_bilinear(np.array([[[0.0, 1.0]]], dtype=np.float32), 4, 1, 8)
    assert fine[0, 0, 0] == 0 and fine[0, 0, -1] == 1  # clamped beyond the outer centres
    assert np.all(np.diff(fine[0, 0]) >= 0) and fine[0, 0, 3] < 0.5 < fine[0, 0, 4]
    assert resolution_factor(10.0, 30.0) == 3 and resolution_factor(None, 30.0) == 1
    assert resolution_factor(60.0, 30.0) == 1


def test_blocks_are_whole_cells_and_bounded_in_pixels():
    for factor in (1, 2, 3, 7, 16, 100, 2000):
        block = block_pixels(factor)
        assert block % factor == 0 and block <= max(BLOCK_PIXELS, factor)
    assert block_pixels(3) == 1536 and block_pixels(2) == 1024  # 512 cells
    assert block_pixels(16) == 1536  # s2cloudless at 160 m: 96 cells, not 8192 px


def test_pixel_size_of_projected_and_geographic_grids(data_dir):
    utm = Grid.of(gdal.Open(str(data_dir / "eolearn_slovenia" / "reference_scene_0.tif")))
    assert pixel_size_metres(utm) == pytest.approx(10.0, abs=0.01)
    geographic = Grid.of(gdal.Open(str(data_dir / "sen12mscr_ts" / "s2_2018-03-07.tif")))
    assert 8 < pixel_size_metres(geographic) < 12  # EPSG:4326 near Rome, about 10 m
    assert pixel_size_metres(Grid.of(gdal.Open(str(data_dir / LABELLED)))) is None


def test_product_level_from_metadata_name_or_bands(data_dir):
    lines: list[str] = []
    dataset = gdal.Open(str(data_dir / "sen12mscr_ts" / "s2_2018-03-07.tif"))
    names = [f"B{k}" for k in (1, 2, 3, 4, 5, 6, 7, 8)] + ["B8A", "B9", "B10", "B11", "B12"]
    assert product_level(dataset, names, "auto", lines.append) == "l1c"  # B10
    assert product_level(dataset, names, "l2a", lines.append) == "l2a"
    memory = gdal.GetDriverByName("MEM").Create("S2B_MSIL2A_20220101_x", 4, 4, 6)
    assert product_level(memory, names[:6], "auto", lines.append) == "l2a"
    assert lines == []
    unnamed = gdal.GetDriverByName("MEM").Create("", 4, 4, 6)
    assert product_level(unnamed, ["B2", "B3", "B4", "B8", "B11", "B12"], "auto",
                         lines.append) == "l1c"
    assert "taken as L1C" in lines[0]


def test_ukis_streamed_equals_the_packages_own_run(data_dir, tmp_path):
    """Gapfill's blocks, tiles and session against ukis-csmask's CSmask on the whole image."""
    from ukis_csmask.mask import CSmask

    path = data_dir / LABELLED
    image = gdal.Open(str(path)).ReadAsArray().astype(np.float32) / 10000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        own = CSmask(np.moveaxis(image, 0, -1).copy(), UKIS_ORDER, "l1c",
                     providers=["CPUExecutionProvider"], intra_op_num_threads=2).csm[..., 0]
    lines: list[str] = []
    ours = mask_of(path, tmp_path, method="ukis", buffer_metres=0.0, log=lines.append)
    assert (ours == 1).mean() == pytest.approx((own > 0).mean(), abs=0.01)
    assert ((ours == 1) == (own > 0)).mean() > 0.98
    assert any("6-band L1C model" in line and "on its pixels" in line for line in lines)
    assert any("no georeference" in line for line in lines)
    small = mask_of(path, tmp_path, "small.tif", method="ukis", buffer_metres=0.0,
                    block_size=200)
    assert ((small == 1) == (ours == 1)).mean() > 0.97  # blocks of 200 px: the same clouds


def test_ukis_classes_against_the_labels(data_dir, tmp_path):
    """cloud_labels is ukis-csmask's own test image: its classes match the labels closely."""
    labels = gdal.Open(str(data_dir / "cloud_labels" / "labels.tif")).ReadAsArray()
    path = data_dir / LABELLED
    cloud = mask_of(path, tmp_path, method="ukis", ukis_bands=4, flag=("cloud",),
                    buffer_metres=0.0) == 1
    shadow = mask_of(path, tmp_path, method="ukis", ukis_bands=4, flag=("shadow",),
                     buffer_metres=0.0) == 1
    assert iou(cloud, labels == 4) > 0.78 and iou(shadow, labels == 0) > 0.68
    assert not (cloud & shadow).any()
    buffered = mask_of(path, tmp_path, method="ukis", ukis_bands=4, flag=("cloud",),
                       buffer_metres=30.0, pixel_metres=30.0) == 1  # 1 px
    assert buffered[cloud].all() and 0 < (buffered & ~cloud).mean() < 0.1


def test_ukis_at_30_m_on_a_geographic_grid(data_dir, tmp_path):
    path = data_dir / "sen12mscr_ts" / "s2_2018-03-07.tif"
    lines: list[str] = []
    gap = mask_of(path, tmp_path, method="ukis", log=lines.append)
    assert any("cells of 3 × 3 px" in line for line in lines)
    pixel = pixel_size_metres(Grid.of(gdal.Open(str(path))))
    buffer = round(RECOMMENDED["ukis"].buffer_metres / pixel)
    assert any(line.endswith(f"haze buffer {buffer} px.") for line in lines)
    blue = gdal.Open(str(path)).ReadAsArray(band_list=[2]).astype(float)
    assert 0.6 < (gap == 1).mean() < 0.99
    assert blue[gap == 0].mean() < blue[gap == 1].mean()
    clear = mask_of(data_dir / "sen12mscr_ts" / "s2_2018-04-26.tif", tmp_path, method="ukis")
    assert (clear == 1).mean() < 0.03


def test_s2cloudless_agrees_with_the_sample_masks(data_dir, tmp_path):
    folder = data_dir / "sen12mscr"
    truth = gdal.Open(str(folder / "5278_cloudmask.tif")).ReadAsArray() == 1
    lines: list[str] = []
    gap = mask_of(folder / "5278_s2_cloudy.tif", tmp_path, method="s2cloudless",
                  pixel_metres=10.0, buffer_metres=0.0, log=lines.append) == 1
    assert iou(gap, truth) > 0.8
    assert any("s2cloudless 1.7.3" in line and "cells of 2 × 2 px" in line for line in lines)
    assert (mask_of(folder / "1302_s2_cloudy.tif", tmp_path, method="s2cloudless",
                    pixel_metres=10.0) == 1).mean() < 0.02
    blocks = mask_of(folder / "5278_s2_cloudy.tif", tmp_path, "blocks.tif",
                     method="s2cloudless", pixel_metres=10.0, buffer_metres=0.0, block_size=60)
    np.testing.assert_array_equal(blocks == 1, gap)  # per-pixel classifier: no block seams


def test_s2cloudless_probabilities_are_the_packages(data_dir):
    """The probability of each cell is what S2PixelCloudDetector computes on those bands."""
    from s2cloudless import S2PixelCloudDetector

    from gapfill.core.masks.s2cloudless_probability import BANDS, S2Cloudless

    image = gdal.Open(str(data_dir / "sen12mscr" / "4287_s2_cloudy.tif"))
    order = [1, 2, 4, 5, 8, 9, 10, 11, 12, 13]  # B1 B2 B4 B5 B8 B8A B9 B10 B11 B12
    assert len(order) == len(BANDS)
    bands = image.ReadAsArray(band_list=order).astype(np.float32) / 10000
    valid = np.ones(bands.shape[1:], dtype=bool)
    ours = S2Cloudless().probabilities(bands, valid)[0]
    reference = S2PixelCloudDetector(all_bands=False, average_over=4, dilation_size=0)
    probability = reference.get_cloud_probability_maps(np.moveaxis(bands, 0, -1)[None])
    mask = reference.get_mask_from_prob(probability, threshold=0.4)[0]
    np.testing.assert_array_equal(ours > 0.4, mask.astype(bool))


def test_detectors_refuse_what_they_cannot_read(data_dir, tmp_path):
    with pytest.raises(GapfillError, match="s2cloudless needs the Sentinel-2 bands B1"):
        mask_of(data_dir / LABELLED, tmp_path, method="s2cloudless")
    with pytest.raises(GapfillError, match="trained on L1C.*ukis-csmask"):
        mask_of(data_dir / "sen12mscr" / "4287_s2_cloudy.tif", tmp_path,
                method="s2cloudless", level="l2a")
    with pytest.raises(GapfillError, match="detects clouds only"):
        mask_of(data_dir / "sen12mscr" / "4287_s2_cloudy.tif", tmp_path,
                method="s2cloudless", flag=("shadow",))
    with pytest.raises(GapfillError, match="6-band ukis-csmask model needs.*B11, B12"):
        mask_of(data_dir / LABELLED, tmp_path, method="ukis", ukis_bands=6,
                band_names="B2,B3,B4,B8,B5,B6")


def test_automatic_takes_ukis_csmask(data_dir, tmp_path):
    assert installed("ukis_csmask", "s2cloudless", "onnxruntime")
    lines: list[str] = []
    mask_of(data_dir / LABELLED, tmp_path, method="automatic", log=lines.append)
    assert lines[0] == "Automatic mask method: ukis-csmask (clouds and shadows)."


AUTOMATIC_WITHOUT_DETECTORS = """
import sys
sys.modules["ukis_csmask"] = None  # as if not installed: importing it raises ImportError
sys.modules["s2cloudless"] = None
from gapfill.core.masks.gap_mask import MaskSettings, build_gap_mask
from gapfill.core.errors import MissingDependencyError
lines = []
report = build_gap_mask(sys.argv[1], sys.argv[2], MaskSettings("automatic"), log=lines.append)
print(lines[0])
print(report.method)
try:
    build_gap_mask(sys.argv[1], sys.argv[2], MaskSettings("ukis"))
except MissingDependencyError as error:
    print(error)
"""


def test_without_the_packages_automatic_says_why_and_asking_names_the_fix(
    data_dir, tmp_path, plugin_path
):
    done = subprocess.run(
        [sys.executable, "-c", AUTOMATIC_WITHOUT_DETECTORS, str(data_dir / LABELLED),
         str(tmp_path / "m.tif")],
        capture_output=True, text=True, check=True,
        env=dict(os.environ, PYTHONPATH=str(plugin_path)),
    )
    automatic, method, error = done.stdout.split("\n", 2)
    assert automatic.startswith("Automatic mask method: the spectral cloud/shadow score")
    assert "ukis-csmask is not installed" in automatic and "option 'Cloud detectors" in automatic
    assert method.startswith("spectral cloud/shadow score")
    assert "needs the Python package 'ukis-csmask'" in error
    assert "Install dependencies" in error and "pip install ukis-csmask" in error


def test_dn_offset_and_the_l2a_models(data_dir, tmp_path):
    """Products of processing baseline 04.00 store DN + 1000: the offset undoes it exactly;
    the L2A networks of the package run the same way."""
    source = gdal.Open(str(data_dir / LABELLED))
    shifted = gdal.GetDriverByName("GTiff").CreateCopy(str(tmp_path / "shifted.tif"), source)
    shifted.WriteArray(source.ReadAsArray() + 1000)
    shifted = None
    plain = mask_of(data_dir / LABELLED, tmp_path, "plain.tif", method="ukis")
    undone = mask_of(tmp_path / "shifted.tif", tmp_path, "undone.tif", method="ukis",
                     reflectance_offset=-1000.0)
    np.testing.assert_array_equal(undone, plain)
    assert (mask_of(tmp_path / "shifted.tif", tmp_path, method="ukis") != plain).any()
    lines: list[str] = []
    l2a = mask_of(data_dir / LABELLED, tmp_path, "l2a.tif", method="ukis", level="l2a",
                  log=lines.append)
    assert any("6-band L2A model (1.0.0-6BL2A)" in line for line in lines)
    assert 0.1 < (l2a == 1).mean() < 0.9
