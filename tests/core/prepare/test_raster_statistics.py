"""Streamed raster statistics against numpy on the whole array of the real samples."""

import json

import numpy as np
import pytest
from osgeo import gdal
from patch_inputs import CLOUDY, build_mask, date, with_nodata

from gapfill.core.errors import GapfillError
from gapfill.core.prepare.raster_statistics import (
    StatisticsError,
    compute_statistics,
    parse_percentiles,
    read_statistics,
    write_statistics,
)
from rasters import read

PERCENTS = (0.0, 1.0, 2.0, 50.0, 98.0, 99.0, 100.0)


def check_against_numpy(statistics, arrays, tolerance):
    """Exact moments; percentiles within the stated bound (numpy's linear interpolation)."""
    for band, values in zip(statistics.bands, arrays, strict=True):
        values = values.astype(np.float64)
        assert band.count == values.size
        assert (band.minimum, band.maximum) == (values.min(), values.max())
        assert band.mean == pytest.approx(values.mean(), rel=1e-12)
        assert band.std == pytest.approx(values.std(), rel=1e-9)
        assert band.percentile_error <= tolerance * (values.max() - values.min())
        for percent, value in band.percentiles.items():
            exact = np.percentile(values, percent)
            assert abs(value - exact) <= band.percentile_error + 1e-9, (band.name, percent)


def test_integer_bands_are_exact(data_dir):
    path = date(data_dir, CLOUDY)
    statistics = compute_statistics(str(path), percentiles=PERCENTS, block_size=100)
    image = read(path)
    assert [b.name for b in statistics.bands][:3] == ["B1", "B2", "B3"]
    assert all(b.percentile_error == 0 for b in statistics.bands)
    check_against_numpy(statistics, image.reshape(image.shape[0], -1), 0)


def test_float_bands_within_one_bin(data_dir):
    path = data_dir / "sen12mscr" / "1302_s1.tif"
    statistics = compute_statistics(str(path), percentiles=PERCENTS, block_size=96)
    image = read(path)
    check_against_numpy(statistics, image.reshape(2, -1), 1 / 65536 + 1e-12)
    assert all(0 < b.percentile_error < 1e-3 for b in statistics.bands)


def test_gaps_and_nodata_are_left_out(data_dir, tmp_path):
    mask_path = build_mask(data_dir, tmp_path)
    source = with_nodata(date(data_dir, CLOUDY), tmp_path / "holes.tif", (10, 20, 50, 30))
    statistics = compute_statistics(str(source), gap_mask=str(mask_path), block_size=128)
    image = read(source)
    keep = (read(mask_path)[0] == 0) & (image != 0).all(axis=0)
    assert keep.sum() < 0.7 * keep.size
    check_against_numpy(statistics, image[:, keep], 0)
    assert statistics.gap_mask == str(mask_path)


def test_a_band_without_valid_pixel(tmp_path):
    """Statistics are band by band: an empty band (a date under cloud in a time series stack)
    has none, the others theirs (the fills refuse such a target, statistics do not)."""
    path = tmp_path / "empty.tif"
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), 8, 8, 2, gdal.GDT_Float32)
    dataset.GetRasterBand(1).Fill(3.0)
    dataset.GetRasterBand(2).Fill(float("nan"))
    dataset = None
    full, empty = compute_statistics(str(path)).bands
    assert full.count == 64 and full.mean == 3.0
    assert empty.count == 0 and empty.mean is None and empty.percentiles == {}


def test_no_valid_pixel_at_all_is_refused(data_dir, tmp_path):
    """A mask that covers everything left a file of empty statistics, which scales nothing."""
    source = date(data_dir, CLOUDY)
    dataset = gdal.Open(str(source))
    everywhere = tmp_path / "everywhere.tif"
    mask = gdal.GetDriverByName("GTiff").Create(
        str(everywhere), dataset.RasterXSize, dataset.RasterYSize, 1, gdal.GDT_Byte
    )
    mask.SetGeoTransform(dataset.GetGeoTransform())
    mask.SetProjection(dataset.GetProjection())
    mask.GetRasterBand(1).Fill(1)
    mask = dataset = None
    with pytest.raises(GapfillError, match="no valid pixel outside the gaps"):
        compute_statistics(str(source), gap_mask=str(everywhere))


def test_json_round_trip(data_dir, tmp_path):
    statistics = compute_statistics(str(date(data_dir, CLOUDY)), percentiles=(2.5, 97.5))
    path = write_statistics(statistics, tmp_path / "stats.json")
    document = json.loads(path.read_text())
    assert document["format"] == "gapfill-statistics"
    assert set(document["bands"][0]["percentiles"]) == {"2.5", "97.5"}
    assert read_statistics(path) == statistics


def test_bad_statistics_inputs(tmp_path):
    with pytest.raises(GapfillError, match="between 0 and 100"):
        parse_percentiles("1, 101")
    with pytest.raises(GapfillError, match="not a list of percentiles"):
        parse_percentiles("1, two")
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    with pytest.raises(StatisticsError, match="not a Gapfill statistics file"):
        read_statistics(tmp_path / "other.json")
    with pytest.raises(StatisticsError, match="cannot be read"):
        read_statistics(tmp_path / "missing.json")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda bands: bands[0].pop("std"), "the field 'std' is missing"),
        (lambda bands: bands.__setitem__(0, "B1"), "a field holds a value of the wrong kind"),
    ],
)
def test_a_malformed_statistics_file_says_what_is_wrong(data_dir, tmp_path, change, message):
    statistics = compute_statistics(str(date(data_dir, CLOUDY)))
    path = write_statistics(statistics, tmp_path / "stats.json")
    document = json.loads(path.read_text())
    change(document["bands"])
    path.write_text(json.dumps(document))
    with pytest.raises(StatisticsError, match=message) as raised:
        read_statistics(path)
    assert "Error(" not in str(raised.value)  # no Python repr such as KeyError('std')
