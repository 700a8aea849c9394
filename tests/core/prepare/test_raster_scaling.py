"""Scale raster / Unscale raster: the round trip restores the source, no-data survives."""

import numpy as np
import pytest
from osgeo import gdal
from patch_inputs import CLOUDY, date, with_nodata

from gapfill.core.errors import GapfillError
from gapfill.core.prepare.raster_scaling import (
    SCALING_KEY,
    choose_scaling,
    raster_scaling_of,
    scale_raster,
    scaling_from_preset,
    scaling_from_statistics,
    unscale_raster,
)
from gapfill.core.prepare.raster_statistics import compute_statistics, write_statistics
from rasters import read, same_georeference


def round_trip(source, tmp_path, scaling, **options):
    scaled = tmp_path / "scaled.tif"
    recorded = scale_raster(str(source), scaled, scaling, block_size=100, **options)
    restored = tmp_path / "restored.tif"
    unscale_raster(str(scaled), restored, block_size=100)
    return recorded, read(scaled), read(restored)


@pytest.mark.parametrize("method", ["minmax", "standardise"])
def test_statistics_scaling_round_trip_is_exact(method, data_dir, tmp_path):
    source = with_nodata(date(data_dir, CLOUDY), tmp_path / "holes.tif", (0, 0, 40, 30))
    scaling = scaling_from_statistics(compute_statistics(str(source)), method)
    recorded, scaled, restored = round_trip(source, tmp_path, scaling, method=method)
    original = read(source)
    nodata = original == 0
    assert scaled.dtype == np.float32 and np.isnan(scaled[nodata]).all()
    assert np.isfinite(scaled[~nodata]).all()
    if method == "minmax":
        assert scaled[~nodata].min() == 0 and scaled[~nodata].max() == 1
    np.testing.assert_array_equal(restored, original)  # no-data back to 0, values bit-exact
    output = gdal.Open(str(tmp_path / "restored.tif"))
    assert output.GetRasterBand(1).DataType == gdal.GDT_UInt16
    assert output.GetRasterBand(1).GetNoDataValue() == 0
    assert output.GetRasterBand(3).GetDescription() == "B3"
    assert same_georeference(tmp_path / "restored.tif", source)
    assert recorded.source_dtype == "uint16" and recorded.method == method


def test_percentile_clip_round_trip_clips(data_dir, tmp_path):
    source = date(data_dir, CLOUDY)
    statistics = compute_statistics(str(source), percentiles=(2, 98))
    scaling = scaling_from_statistics(statistics, "percentile", 2, 98)
    _, scaled, restored = round_trip(source, tmp_path, scaling)
    assert scaled.min() == 0 and scaled.max() == 1
    low = np.array([b.percentiles[2] for b in statistics.bands])[:, None, None]
    high = np.array([b.percentiles[98] for b in statistics.bands])[:, None, None]
    expected = np.rint(np.clip(read(source), low, high))
    np.testing.assert_allclose(restored, expected, atol=1)  # clip bounds may be fractional


@pytest.mark.parametrize("preset", ["sentinel1_db", "sentinel1_linear"])
def test_sentinel1_presets(preset, data_dir, tmp_path):
    decibels = data_dir / "sen12mscr" / "1302_s1.tif"
    source = decibels
    if preset == "sentinel1_linear":  # the same backscatter in linear units
        source = tmp_path / "linear.tif"
        copy = gdal.Translate(str(source), str(decibels))
        for index, plane in enumerate(read(decibels), start=1):
            copy.GetRasterBand(index).WriteArray(10 ** (plane.astype(np.float64) / 10))
        copy = None
    scaling = scaling_from_preset(preset, ["", ""])
    _, scaled, restored = round_trip(source, tmp_path, scaling)
    clipped = np.stack([np.clip(read(decibels)[0], -25, 0), np.clip(read(decibels)[1], -32.5, 0)])
    np.testing.assert_allclose(scaled[0], (clipped[0] + 25) / 25, atol=1e-5)
    np.testing.assert_allclose(scaled[1], (clipped[1] + 32.5) / 32.5, atol=1e-5)
    assert scaled.min() >= 0 and scaled.max() <= 1
    expected = clipped if preset == "sentinel1_db" else 10 ** (clipped / 10)
    np.testing.assert_allclose(restored, expected, rtol=1e-5, atol=1e-5)


def test_sentinel2_preset_and_metadata(data_dir, tmp_path):
    source = date(data_dir, CLOUDY)
    recorded, scaled, _ = round_trip(source, tmp_path, scaling_from_preset("sentinel2", ["x"] * 13))
    np.testing.assert_allclose(scaled, read(source) / 10000, rtol=1e-6)
    assert raster_scaling_of(gdal.Open(str(tmp_path / "scaled.tif"))) == recorded


def test_polarisations_named_in_descriptions():
    vh, vv = scaling_from_preset("sentinel1_db", ["sigma0_VH", "VV"])
    assert (vh.clip_min, vv.clip_min) == (-32.5, -25.0)


def test_model_card_role(models, data_dir, tmp_path):
    source = data_dir / "sen12mscr" / "1302_s1.tif"
    choice = choose_scaling(str(source), model=str(models["sen12"].path), role="sar")
    assert choice.names == ("VV", "VH") and choice.bands == [1, 2]
    recorded, scaled, _ = round_trip(
        source, tmp_path, choice.scaling, bands=choice.bands, names=choice.names
    )
    expected = (np.clip(read(source), -25, 0) + 25) * 0.04
    np.testing.assert_allclose(scaled, expected, atol=1e-6)
    assert recorded.names == ("VV", "VH")
    with pytest.raises(GapfillError, match="no input with the role 'dem'"):
        choose_scaling(str(source), model=str(models["sen12"].path), role="dem")


def test_bad_scaling_inputs(data_dir, tmp_path):
    source = str(date(data_dir, CLOUDY))
    with pytest.raises(GapfillError, match="Unknown scaling preset 'landsat'.*sentinel2"):
        choose_scaling(source, preset="landsat")
    with pytest.raises(GapfillError, match="exactly one source of scaling"):
        choose_scaling(source)
    statistics = write_statistics(
        compute_statistics(source, percentiles=(1, 99)), tmp_path / "stats.json"
    )
    with pytest.raises(GapfillError, match="no percentile 2, 98.*hold 1, 99"):
        choose_scaling(source, statistics=str(statistics), method="percentile")
    with pytest.raises(GapfillError, match="needs the bands VV and VH"):
        scaling_from_preset("sentinel1_db", ["a", "b", "c"])
    with pytest.raises(GapfillError, match=f"records no scaling \\({SCALING_KEY}"):
        unscale_raster(source, tmp_path / "out.tif")
