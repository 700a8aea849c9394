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


def test_model_method_without_a_model_takes_the_bundled_one(qgis_processing, data_dir, tmp_path):
    import processing

    from feedback import RecordingFeedback

    feedback = RecordingFeedback()
    result = processing.run(
        FillTimeSeries(),
        {"INPUT": str(s5p_block(data_dir)), "METHOD": 2, "DEVICE": 1,
         "OUTPUT": str(tmp_path / "o.tif")},
        feedback=feedback,
    )
    assert result["FILLED_PIXELS"] > 0
    assert any("bundled time-series model stpconv-s5p-co.onnx" in line for line in feedback.lines)


def test_a_model_given_with_another_method_is_said_unused(qgis_processing, data_dir, tmp_path):
    import processing

    from feedback import RecordingFeedback

    feedback = RecordingFeedback()
    processing.run(
        FillTimeSeries(),
        {"INPUT": str(s5p_block(data_dir)), "METHOD": 0, "MODEL": str(BUNDLED),
         "OUTPUT": str(tmp_path / "o.tif")},
        feedback=feedback,
    )
    assert any("is not used: the method is linear" in line for line in feedback.lines)


def test_band_dates_that_do_not_increase_are_refused(qgis_processing, data_dir, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    series = tmp_path / "series.tif"
    gdal.Translate(str(series), str(s5p_block(data_dir)))
    dataset = gdal.Open(str(series), gdal.GA_Update)
    for index in range(dataset.RasterCount):  # two bands on one date
        dataset.GetRasterBand(index + 1).SetDescription(f"2020-01-{min(index, 14) + 1:02d}")
    dataset = None
    with pytest.raises(QgsProcessingException, match="band dates of the time series do not"):
        processing.run(
            FillTimeSeries(),
            {"INPUT": str(series), "METHOD": 1, "OUTPUT": str(tmp_path / "o.tif")},
        )
    assert not (tmp_path / "o.tif").exists()


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


def test_list_of_single_date_rasters(qgis_processing, data_dir, tmp_path):
    """Single-band rasters (one of them on a coarser grid) are stacked, sorted by date, filled;
    the output's band descriptions are the dates."""
    import processing

    source = str(data_dir / "eolearn_slovenia" / "ndvi.tif")
    stack = gdal.Open(source)
    picks = [3, 0, 1, 2]  # given out of order: sorted by the dates of the descriptions
    paths = []
    for index in picks:
        path = str(tmp_path / f"ndvi_{index}.tif")
        options = {"bandList": [index + 1], "noData": -2}
        if index == 2:  # another grid: warped to the first raster's grid
            options.update(xRes=20, yRes=20)
        gdal.Translate(path, stack, options=gdal.TranslateOptions(**options))
        date = stack.GetRasterBand(index + 1).GetDescription()
        edit = gdal.Open(path, gdal.GA_Update)
        edit.GetRasterBand(1).SetDescription(date)
        band = edit.GetRasterBand(1)
        if index == 1:
            values = band.ReadAsArray()
            values[:40, :40] = -2  # gap
            band.WriteArray(values)
        edit = None
        paths.append(path)
    result = processing.run(
        FillTimeSeries(),
        {"RASTERS": paths, "METHOD": 0, "OUTPUT": str(tmp_path / "filled.tif")},
    )
    output = gdal.Open(result["OUTPUT"])
    assert output.RasterCount == 4
    descriptions = [output.GetRasterBand(i + 1).GetDescription() for i in range(4)]
    expected = [stack.GetRasterBand(i + 1).GetDescription()[:10] for i in range(4)]
    assert descriptions == expected
    filled = output.ReadAsArray()
    original = stack.ReadAsArray()
    assert np.array_equal(filled[0], original[0])
    assert np.array_equal(filled[1][40:], original[1][40:])
    assert result["FILLED_PIXELS"] >= 40 * 40
    assert (filled[1][:40, :40] != -2).all()


def test_a_mask_with_the_opposite_convention_is_refused(qgis_processing, data_dir, tmp_path):
    """A mask of 1 = valid makes every observation a gap: refused with the hint, no output."""
    import processing
    from qgis.core import QgsProcessingException

    source = gdal.Open(str(s5p_block(data_dir)))
    observed = source.ReadAsArray() != np.float32(source.GetRasterBand(1).GetNoDataValue())
    mask = gdal.GetDriverByName("GTiff").Create(
        str(tmp_path / "valid.tif"), source.RasterXSize, source.RasterYSize,
        source.RasterCount, gdal.GDT_Byte)
    mask.WriteArray(observed.astype(np.uint8))  # 1 = valid: the wrong way round
    mask = None
    with pytest.raises(QgsProcessingException, match="if it uses 1 = valid, invert it"):
        processing.run(
            FillTimeSeries(),
            {"INPUT": str(s5p_block(data_dir)), "GAP_MASK": str(tmp_path / "valid.tif"),
             "METHOD": 0, "OUTPUT": str(tmp_path / "o.tif")},
        )
    assert not (tmp_path / "o.tif").exists()


def test_a_date_on_another_scale_is_refused_and_band_1_is_said(qgis_processing, data_dir,
                                                              tmp_path):
    """Dates of one variable on one scale: a date in reflectance 0–1 beside digital numbers
    would be a jump in every pixel's series. Multi-band rasters: band 1 is taken, and said."""
    import processing
    from qgis.core import QgsProcessingException

    from feedback import RecordingFeedback

    folder = data_dir / "sen12mscr_ts"
    dates = [str(folder / f"s2_{day}.tif") for day in ("2018-03-07", "2018-03-22")]
    feedback = RecordingFeedback()
    processing.run(FillTimeSeries(), {"RASTERS": dates, "METHOD": 0,
                                      "OUTPUT": str(tmp_path / "b1.tif")}, feedback=feedback)
    assert any("13 bands: the time series takes band 1" in line for line in feedback.lines)
    reflectance = tmp_path / "s2_2018-03-15.tif"
    gdal.Translate(str(reflectance), dates[0], outputType=gdal.GDT_Float32,
                   scaleParams=[[0, 10000, 0, 1]])
    with pytest.raises(QgsProcessingException, match="on different scales"):
        processing.run(FillTimeSeries(), {"RASTERS": [*dates, str(reflectance)], "METHOD": 0,
                                          "OUTPUT": str(tmp_path / "mixed.tif")})
    assert not (tmp_path / "mixed.tif").exists()
