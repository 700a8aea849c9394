"""Simulated gaps: laying a real cloud mask on a clear image, the cloudy input, gap and evaluation
masks (on real data), and reading the STPConv files as they are."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from gapfill.core.errors import GapfillError
from gapfill.core.evaluate.simulate_gaps import (
    MaskLayout,
    cloud_opacity,
    lay_mask,
    read_mask_pattern,
    read_stpconv,
    simulate_gap_files,
    simulate_gaps,
    stpconv_names,
)
from gapfill.core.masks.gap_mask import MaskSettings
from gapfill.core.raster.access import Grid, expand_window, iter_windows, open_raster, read_bands

CLEAR_DATE = "sen12mscr_ts/s2_2018-01-06.tif"  # 256×256, 13 bands
CLOUD_MASK = "eolearn_slovenia/cloud_mask.tif"  # 100×101, 68 dates
HALF_CLOUDY_DATE = 15  # band of CLOUD_MASK with about half of the pixels cloudy
STPCONV_SAMPLE = "0_3_12"


def settings_for(band: int) -> MaskSettings:
    return MaskSettings(method="values", ranges=((1.0, math.inf),), band=band)


@pytest.mark.parametrize("flip", ["none", "horizontal", "vertical", "both"])
@pytest.mark.parametrize("shift", [(0, 0), (1, 2), (-4, 7)])
def test_lay_mask_is_flip_then_roll_then_tile(flip, shift):
    mask = np.arange(6).reshape(2, 3)
    axes = {"none": (), "horizontal": (1,), "vertical": (0,), "both": (0, 1)}[flip]
    expected = np.tile(np.roll(np.flip(mask, axes), shift[::-1], axis=(0, 1)), (3, 3))[:5, :7]
    laid = lay_mask(mask, 7, 5, MaskLayout(shift, flip))
    np.testing.assert_array_equal(laid, expected)
    np.testing.assert_array_equal(
        lay_mask(mask, 7, 5, MaskLayout(shift, flip), (2, 1, 4, 3)), expected[1:4, 2:6]
    )


def test_lay_mask_crops_a_larger_mask_without_tiling():
    mask = np.arange(20).reshape(4, 5)
    np.testing.assert_array_equal(lay_mask(mask, 3, 2, MaskLayout(tile=False)), mask[:2, :3])


@pytest.mark.parametrize(
    ("layout", "message"),
    [(MaskLayout(tile=False), "smaller than the target"), (MaskLayout(flip="up"), "flip")],
)
def test_lay_mask_refuses_bad_layouts(layout, message):
    with pytest.raises(GapfillError, match=message):
        lay_mask(np.zeros((2, 3)), 7, 5, layout)


def test_nodata_mode_removes_gap_pixels_and_keeps_the_rest():
    clear = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4) + 10
    valid = np.ones((3, 4), dtype=bool)
    valid[0, 0] = False
    gap = np.zeros((3, 4), dtype=bool)
    gap[0, :2] = gap[2, 3] = True

    result = simulate_gaps(clear, valid, gap, nodata=0)

    assert result.cloudy.dtype == np.uint16
    assert (result.cloudy[:, gap] == 0).all()
    np.testing.assert_array_equal(result.cloudy[:, ~gap], clear[:, ~gap])
    expected_mask = np.where(gap, 1, 0)
    expected_mask[0, 0] = 255
    np.testing.assert_array_equal(result.gap_mask, expected_mask)
    np.testing.assert_array_equal(result.evaluation, gap & valid)


def test_cloud_mode_brightens_gaps_with_a_soft_edge():
    clear = np.full((1, 20, 20), 1000, dtype=np.uint16)
    gap = np.zeros((20, 20), dtype=bool)
    gap[5:15, 5:15] = True
    valid = np.ones_like(gap)

    result = simulate_gaps(clear, valid, gap, mode="cloud", cloud_value=9000, edge=3)

    cloudy = result.cloudy[0].astype(float)
    assert (cloudy[~gap] == 1000).all()  # clear pixels stay bit-identical
    assert (cloudy[gap] > 1000).all() and cloudy[10, 10] == 9000
    assert cloudy[5, 10] < cloudy[7, 10] < cloudy[8, 10] == 9000  # opacity grows inwards
    np.testing.assert_array_equal(result.evaluation, gap)
    np.testing.assert_array_equal(cloud_opacity(gap, 0), gap.astype(float))


def test_cloud_mode_by_blocks_matches_the_whole_image():
    rng = np.random.default_rng(3)
    clear = rng.integers(0, 5000, (2, 30, 30)).astype(np.uint16)
    gap = rng.random((30, 30)) > 0.6
    valid = rng.random((30, 30)) > 0.1
    options = {"mode": "cloud", "cloud_value": 8000.0, "edge": 2}
    whole = simulate_gaps(clear, valid, gap, **options)
    for window in iter_windows(30, 30, 8):
        (x, y, w, h), inner = expand_window(window, 2, 30, 30)
        outer = (slice(y, y + h), slice(x, x + w))
        block = simulate_gaps(clear[:, outer[0], outer[1]], valid[outer], gap[outer],
                              inner=inner, **options)
        wx, wy, ww, wh = window
        np.testing.assert_array_equal(block.cloudy, whole.cloudy[:, wy : wy + wh, wx : wx + ww])
        np.testing.assert_array_equal(block.gap_mask, whole.gap_mask[wy : wy + wh, wx : wx + ww])


def test_simulate_gaps_refuses_mismatched_grids():
    with pytest.raises(GapfillError, match="one grid"):
        simulate_gaps(np.zeros((1, 4, 4)), np.ones((4, 4), bool), np.ones((5, 4), bool))
    with pytest.raises(GapfillError, match="mode"):
        simulate_gaps(np.zeros((1, 4, 4)), np.ones((4, 4), bool), np.ones((4, 4), bool), mode="x")


def clear_with_nodata_stripe(data_dir: Path, folder: Path) -> tuple[Path, np.ndarray]:
    """The real clear date with a no-data stripe (0 declared as no-data), and its validity."""
    source = open_raster(data_dir / CLEAR_DATE)
    path = folder / "clear.tif"
    copy = gdal.GetDriverByName("GTiff").CreateCopy(str(path), source)
    data = copy.ReadAsArray()
    data[:, :, 200:220] = 0
    for index, plane in enumerate(data, start=1):
        band = copy.GetRasterBand(index)
        band.WriteArray(plane)
        band.SetNoDataValue(0)
    copy = None
    return path, (data != 0).all(axis=0)


def read_all(path: Path) -> np.ndarray:
    dataset = open_raster(path)
    return read_bands(dataset, (0, 0, dataset.RasterXSize, dataset.RasterYSize))


@pytest.mark.parametrize("mode", ["nodata", "cloud"])
def test_real_cloud_mask_tiled_over_a_real_image(data_dir, tmp_path, mode):
    clear_path, valid = clear_with_nodata_stripe(data_dir, tmp_path)
    outputs = [tmp_path / name for name in ("cloudy.tif", "gaps.tif", "evaluation.tif")]
    layout = MaskLayout(shift=(13, -7), flip="horizontal")

    report = simulate_gap_files(
        str(clear_path), str(data_dir / CLOUD_MASK), *outputs,
        settings=settings_for(HALF_CLOUDY_DATE), layout=layout, mode=mode, block_size=100,
    )

    mask_dataset = open_raster(data_dir / CLOUD_MASK)
    date = mask_dataset.GetRasterBand(HALF_CLOUDY_DATE).ReadAsArray()
    assert date.shape == (101, 100)
    gap = lay_mask(date == 1, 256, 256, layout)
    clear = read_all(clear_path)
    cloudy, gap_mask, evaluation = (read_all(path) for path in outputs)

    np.testing.assert_array_equal(evaluation[0], gap & valid)
    np.testing.assert_array_equal(gap_mask[0], np.where(valid, gap.astype(np.uint8), 255))
    np.testing.assert_array_equal(cloudy[:, ~gap], clear[:, ~gap])
    if mode == "nodata":
        assert (cloudy[:, gap] == 0).all()
    else:
        whole = simulate_gaps(clear, valid, gap, mode="cloud")
        np.testing.assert_array_equal(cloudy, whole.cloudy)
        assert (cloudy[:, gap & valid].astype(int) > clear[:, gap & valid]).mean() > 0.99
    assert 0.2 < report.evaluation_fraction < 0.8
    assert report.evaluation == int((gap & valid).sum()) and report.outside == int((~valid).sum())

    grid = Grid.of(open_raster(clear_path))
    for path in outputs:
        assert Grid.of(open_raster(path)).same_as(grid)
    cloudy_dataset, gaps_dataset = open_raster(outputs[0]), open_raster(outputs[1])
    cloudy_band = cloudy_dataset.GetRasterBand(1)  # GDAL bands need their dataset kept alive
    assert cloudy_band.DataType == gdal.GDT_UInt16 and cloudy_band.GetNoDataValue() == 0
    assert cloudy_band.GetDescription() == "B1"
    assert gaps_dataset.GetRasterBand(1).GetNoDataValue() == 255
    assert not list(tmp_path.glob(".*partial*"))


def test_the_mask_band_is_chosen(data_dir):
    mask_dataset = open_raster(data_dir / CLOUD_MASK)
    for band in (1, HALF_CLOUDY_DATE, 68):
        expected = mask_dataset.GetRasterBand(band).ReadAsArray() == 1
        pattern = read_mask_pattern(str(data_dir / CLOUD_MASK), settings_for(band))
        np.testing.assert_array_equal(pattern, expected)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (settings_for(69), "Band 69"),
        (MaskSettings(method="nodata"), "cannot be used here"),
    ],
)
def test_bad_mask_settings_give_clear_errors(data_dir, settings, message):
    with pytest.raises(GapfillError, match=message):
        read_mask_pattern(str(data_dir / CLOUD_MASK), settings)


def test_outputs_must_differ_and_small_masks_need_tiling(data_dir, tmp_path):
    clear, mask = str(data_dir / CLEAR_DATE), str(data_dir / CLOUD_MASK)
    same = tmp_path / "same.tif"
    with pytest.raises(GapfillError, match="three different files"):
        simulate_gap_files(clear, mask, same, same, tmp_path / "evaluation.tif")
    with pytest.raises(GapfillError, match="Allow tiling"):
        simulate_gap_files(
            clear, mask, tmp_path / "c.tif", tmp_path / "g.tif", tmp_path / "e.tif",
            layout=MaskLayout(tile=False),
        )
    assert not list(tmp_path.iterdir())


def test_stpconv_sample_is_read_as_stored(data_dir):
    folder = data_dir / "s5p_co" / "training"
    assert STPCONV_SAMPLE in stpconv_names(folder) and len(stpconv_names(folder)) == 25
    block = read_stpconv(folder, STPCONV_SAMPLE)

    assert block.x.shape == block.y.shape == block.mask.shape == block.valmask.shape
    assert block.x.shape == (16, 128, 128)
    assert block.x.dtype == block.y.dtype == np.float32
    assert block.mask.dtype == block.valmask.dtype == np.uint8
    assert block.nodata == pytest.approx(-3.4e38, rel=1e-6)
    present_x, present_y = block.x != block.nodata, block.y != block.nodata
    assert not present_x.all()  # no-data kept as stored, not turned into NaN
    np.testing.assert_array_equal(block.mask == 1, present_x)
    np.testing.assert_array_equal(block.valmask == 1, present_y & ~present_x)
    np.testing.assert_array_equal(block.x[present_x], block.y[present_x])
    assert block.grid.width == block.grid.height == 128 and block.grid.georeferenced


def test_incomplete_stpconv_sample_is_refused(data_dir):
    with pytest.raises(GapfillError, match="incomplete"):
        read_stpconv(data_dir / "s5p_co" / "training", "no_such_sample")
