"""The gap-mask and fill algorithms through processing.run on the real time series."""

import numpy as np
import processing
import pytest
from osgeo import gdal

from gapfill.core.raster.output import has_zstd
from rasters import read, same_georeference

TARGET, EARLIER, LATER = "2018-03-07", "2018-02-10", "2018-03-22"


@pytest.fixture(scope="module")
def series(data_dir):
    folder = data_dir / "sen12mscr_ts"
    return {day: folder / f"s2_{day}.tif" for day in (TARGET, EARLIER, LATER, "2018-04-26")}


@pytest.fixture(scope="module")
def masks(provider, series, tmp_path_factory):
    folder = tmp_path_factory.mktemp("masks")
    result = {}
    for day, path in series.items():
        out = processing.run(
            "gapfill:buildgapmask",
            {"INPUT": str(path), "METHOD": 0, "DILATION": 2, "OUTPUT": str(folder / f"{day}.tif")},
        )
        result[day] = out["OUTPUT"]
    return result


def test_spectral_mask_finds_the_clouds(masks, series):
    mask = read(masks[TARGET])[0]
    assert same_georeference(masks[TARGET], series[TARGET])
    assert gdal.Open(masks[TARGET]).GetRasterBand(1).DataType == gdal.GDT_Byte
    assert set(np.unique(mask)) <= {0, 1}
    cloudy = mask == 1
    assert 0.3 < cloudy.mean() < 0.8
    blue = read(series[TARGET])[1].astype(float)
    assert blue[cloudy].mean() > 2 * blue[~cloudy].mean()  # clouds are bright
    assert read(masks["2018-04-26"])[0].mean() < 0.02  # a clear date stays clear


def check_fill(output, series, masks, tolerance):
    """Clear pixels bit-identical, gaps filled with values close to the neighbours."""
    target = read(series[TARGET])
    filled = read(output)
    gap = read(masks[TARGET])[0] == 1
    assert same_georeference(output, series[TARGET])
    dataset = gdal.Open(str(output))
    assert dataset.GetRasterBand(1).DataType == gdal.GDT_UInt16
    assert [dataset.GetRasterBand(i + 1).GetDescription() for i in range(13)][:3] == [
        "B1",
        "B2",
        "B3",
    ]
    structure = dataset.GetMetadata("IMAGE_STRUCTURE")
    expected = ("ZSTD", "BAND") if has_zstd() else ("DEFLATE", "PIXEL")
    assert (structure.get("COMPRESSION"), structure.get("INTERLEAVE")) == expected
    np.testing.assert_array_equal(filled[:, ~gap], target[:, ~gap])
    assert (filled[:, gap] != target[:, gap]).any()
    neighbours = (read(series[EARLIER]).astype(float) + read(series[LATER])) / 2
    error = np.abs(filled[:, gap].astype(float) - neighbours[:, gap]).mean()
    cloud_error = np.abs(target[:, gap].astype(float) - neighbours[:, gap]).mean()
    assert error < tolerance * cloud_error


@pytest.mark.parametrize("edges", [False, True])
@pytest.mark.parametrize("method", [0, 1, 2, 3, 4])  # interpolation, nearest and weighted
# matching, nearest regression, similar pixels
def test_fill_from_other_dates(method, edges, series, masks, tmp_path):
    result = processing.run(
        "gapfill:filltemporal",
        {
            "INPUT": str(series[TARGET]),
            "GAP_MASK": masks[TARGET],
            "OTHER_DATES": [str(series[EARLIER]), str(series[LATER])],
            "OTHER_MASKS": [masks[EARLIER], masks[LATER]],
            "METHOD": method,
            "EDGE_CORRECTION": edges,
            "OUTPUT": str(tmp_path / "filled.tif"),
        },
    )
    assert result["FILLED_PIXELS"] > 0
    check_fill(result["OUTPUT"], series, masks, tolerance=0.3)


@pytest.mark.parametrize("method", ["interpolation", "histogram"])
def test_edge_correction_by_blocks_is_the_whole_image_s(method, series, masks, tmp_path):
    """Streamed in blocks of 64 px (their halo holds the ring, the pyramid and its alignment),
    the corrected fill equals the one of a single block."""
    from gapfill.core.fills.histogram_matched_fill import fill_by_histogram_matching
    from gapfill.core.fills.other_dates import open_temporal_inputs
    from gapfill.core.fills.temporal_interpolation import fill_by_temporal_interpolation

    run = fill_by_temporal_interpolation if method == "interpolation" else (
        fill_by_histogram_matching
    )
    outputs = {}
    for size in (64, 512):
        target, target_date, others = open_temporal_inputs(
            str(series[TARGET]), masks[TARGET], [str(series[EARLIER]), str(series[LATER])],
            [masks[EARLIER], masks[LATER]], f"{TARGET}, {EARLIER}, {LATER}",
        )
        outputs[size] = tmp_path / f"{size}.tif"
        run(target, target_date, others, outputs[size], edge_correction=True, block_size=size)
    small, whole = read(outputs[64]).astype(float), read(outputs[512]).astype(float)
    np.testing.assert_array_equal(small, whole)


def test_other_date_in_another_crs_is_aligned(series, masks, tmp_path):
    """A neighbour warped to UTM gives nearly the fill of the original (resampling only)."""
    moved = {}
    for day in (EARLIER, LATER):
        moved[day] = str(tmp_path / f"{day}_utm.tif")
        gdal.Warp(
            moved[day],
            str(series[day]),
            dstSRS="EPSG:32633",
            xRes=10,
            yRes=10,
            resampleAlg="bilinear",
        )
    runs = {}
    for name, others in {
        "original": [str(series[EARLIER]), str(series[LATER])],
        "utm": [moved[EARLIER], moved[LATER]],
    }.items():
        runs[name] = processing.run(
            "gapfill:filltemporal",
            {
                "INPUT": str(series[TARGET]),
                "GAP_MASK": masks[TARGET],
                "OTHER_DATES": others,
                "OTHER_MASK_METHOD": 1,  # none: alignment alone
                "DATES": f"{TARGET}, {EARLIER}, {LATER}",
                "OUTPUT": str(tmp_path / f"{name}.tif"),
            },
        )
    original, utm = read(runs["original"]["OUTPUT"]), read(runs["utm"]["OUTPUT"])
    gap = read(masks[TARGET])[0] == 1
    inner = np.zeros_like(gap)
    inner[8:-8, 8:-8] = True
    difference = np.abs(original.astype(float) - utm)[:, gap & inner]
    assert np.median(difference) < 0.1 * np.abs(original[:, gap & inner].astype(float)).mean()
    assert runs["utm"]["UNFILLED_PIXELS"] < 0.05 * gap.sum()


@pytest.mark.parametrize("method", [0, 1])  # inverse distance, pyramid
def test_fill_spatially(series, masks, tmp_path, method):
    result = processing.run(
        "gapfill:fillspatial",
        {
            "INPUT": str(series[TARGET]),
            "GAP_MASK": masks[TARGET],
            "METHOD": method,
            "MAX_DISTANCE": 300,
            "OUTPUT": str(tmp_path / "spatial.tif"),
        },
    )
    assert result["UNFILLED_PIXELS"] == 0
    target, filled = read(series[TARGET]), read(result["OUTPUT"])
    gap = read(masks[TARGET])[0] == 1
    np.testing.assert_array_equal(filled[:, ~gap], target[:, ~gap])
    clear = target[:, ~gap].astype(float)
    assert (filled[:, gap] >= clear.min()).all() and (filled[:, gap] <= clear.max()).all()
    assert len(np.unique(filled[0, gap])) > 100  # interpolated, not one flat value


def test_spatial_fill_leaves_far_gaps_as_nodata(series, masks, tmp_path):
    result = processing.run(
        "gapfill:fillspatial",
        {
            "INPUT": str(series[TARGET]),
            "GAP_MASK": masks[TARGET],
            "MAX_DISTANCE": 3,
            "OUTPUT": str(tmp_path / "near.tif"),
        },
    )
    filled = read(result["OUTPUT"])
    assert result["UNFILLED_PIXELS"] > 0
    assert (filled.min(axis=0) == 0).sum() == result["UNFILLED_PIXELS"]
    assert gdal.Open(result["OUTPUT"]).GetRasterBand(1).GetNoDataValue() == 0


def test_other_date_covering_half_the_target(series, masks, tmp_path):
    """Outside an other-date image's footprint nothing is taken from it (no zeros leak in)."""
    half = str(tmp_path / "half.tif")
    gdal.Translate(half, str(series[LATER]), srcWin=[0, 0, 128, 256])
    utm = str(tmp_path / "half_utm.tif")
    gdal.Warp(utm, half, dstSRS="EPSG:32633", xRes=10, yRes=10)
    result = processing.run(
        "gapfill:filltemporal",
        {
            "INPUT": str(series[TARGET]),
            "GAP_MASK": masks[TARGET],
            "OTHER_DATES": [utm],
            "OTHER_MASK_METHOD": 1,  # none: the footprint alone
            "DATES": f"{TARGET}, {LATER}",
            "OUTPUT": str(tmp_path / "out.tif"),
        },
    )
    filled = read(result["OUTPUT"])
    gap = read(masks[TARGET])[0] == 1
    right = np.zeros_like(gap)
    right[:, 140:] = True
    assert (filled[:, gap & right] == 0).all()  # no data there: left as no-data
    assert (filled[:, gap & ~right][:, :100] > 0).any()
    assert result["UNFILLED_PIXELS"] >= (gap & right).sum()
