"""Dates, band names and the gap-mask builders on real data."""

from datetime import date

import numpy as np
import pytest
from osgeo import gdal

from gapfill.core.errors import GapfillError
from gapfill.core.masks.gap_mask import (
    MaskSettings,
    build_gap_mask,
    check_scl_classes,
    parse_integer_list,
    parse_value_ranges,
)
from gapfill.core.raster.dates import parse_date, resolve_dates
from gapfill.core.raster.sentinel2_bands import band_names, normalise


def test_dates_from_text_and_files(data_dir):
    assert parse_date("s2_2018-05-06.tif") == date(2018, 5, 6)
    assert parse_date("S2A_MSIL1C_20180506T101031") == date(2018, 5, 6)
    assert parse_date("2018:05:06 10:10:31") == date(2018, 5, 6)
    assert parse_date("B12") is None
    series = data_dir / "sen12mscr_ts"
    paths = [str(series / "s2_2018-05-06.tif"), str(series / "s2_2018-04-26.tif")]
    assert resolve_dates(paths, "") == [date(2018, 5, 6), date(2018, 4, 26)]
    assert resolve_dates(paths, "2020-01-01, 2020-01-02")[1] == date(2020, 1, 2)
    with pytest.raises(GapfillError, match="2 are needed"):
        resolve_dates(paths, "2020-01-01")
    with pytest.raises(GapfillError, match="No acquisition date"):
        resolve_dates([str(data_dir / "cloud_labels" / "labels.tif")], "")


def test_band_names():
    assert normalise("B02") == "B2" and normalise("b8a") == "B8A"
    assert band_names(["B2", "B3", "B4", "B8", "B11", "B12"]) == [
        "B2",
        "B3",
        "B4",
        "B8",
        "B11",
        "B12",
    ]
    assert len(band_names([""] * 13)) == 13
    with pytest.raises(GapfillError, match="Give the band names"):
        band_names([""] * 5)


def test_value_and_class_lists():
    assert parse_value_ranges("4, 0, 10-20, -5:-1") == [(4, 4), (0, 0), (10, 20), (-5, -1)]
    assert parse_integer_list("3 8, 9") == [3, 8, 9]
    with pytest.raises(GapfillError, match="do not exist"):
        check_scl_classes([3, 12])
    with pytest.raises(GapfillError, match="neither a value nor a range"):
        parse_value_ranges("cloud")


def test_spectral_mask_agrees_with_labelled_clouds(data_dir, tmp_path):
    """The heuristic against the hand-labelled scene (4 = cloud, 0 = shadow)."""
    folder = data_dir / "cloud_labels"
    output = tmp_path / "mask.tif"
    build_gap_mask(str(folder / "s2_l1c_6band.tif"), output, MaskSettings("spectral"))
    predicted = gdal.Open(str(output)).ReadAsArray() == 1
    labels = gdal.Open(str(folder / "labels.tif")).ReadAsArray()
    truth = (labels == 4) | (labels == 0)
    assert (predicted == truth).mean() > 0.9
    assert (predicted & truth).sum() / (predicted | truth).sum() > 0.7


def test_values_mask_equals_the_labels_and_dilation_grows_it(data_dir, tmp_path):
    folder = data_dir / "cloud_labels"
    settings = MaskSettings("values", ranges=((4, 4), (0, 0)))
    report = build_gap_mask(
        str(folder / "s2_l1c_6band.tif"),
        tmp_path / "m.tif",
        settings,
        source_path=str(folder / "labels.tif"),
        block_size=200,
    )
    labels = gdal.Open(str(folder / "labels.tif")).ReadAsArray()
    mask = gdal.Open(str(tmp_path / "m.tif")).ReadAsArray()
    np.testing.assert_array_equal(mask, np.isin(labels, [0, 4]).astype(np.uint8))
    assert report.gaps == np.isin(labels, [0, 4]).sum()
    settings.dilation = 3
    bigger = build_gap_mask(
        str(folder / "s2_l1c_6band.tif"),
        tmp_path / "d.tif",
        settings,
        source_path=str(folder / "labels.tif"),
        block_size=200,
    )
    dilated = gdal.Open(str(tmp_path / "d.tif")).ReadAsArray()
    assert bigger.gaps > report.gaps and (dilated[mask == 1] == 1).all()
