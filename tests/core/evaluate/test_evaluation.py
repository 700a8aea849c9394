"""Evaluation of filled GeoTIFFs: streaming equals the whole-image metrics, masks honoured, a
perfect fill scores MAE 0 and PSNR inf, identical inputs give identical reports, bad inputs give
clear errors; and the report's pieces (numbers, colours, HTML)."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from gapfill.core.errors import GapfillError, NoOverlapError
from gapfill.core.evaluate.evaluation import (
    EvaluationSettings,
    FilledImage,
    evaluate_files,
    name_images,
    preview_shape,
)
from gapfill.core.evaluate.metrics import Scaling, evaluate
from gapfill.core.evaluate.report import (
    ERROR_COLOURS,
    colour_bar,
    error_colours,
    json_number,
    number_text,
    write_report,
)
from gapfill.core.raster.access import Grid

SIZE = 48
NAMES = ["B2", "B3", "B4", "B8"]
ORIGIN = (500000.0, 10.0, 0.0, 5000000.0, 0.0, -10.0)


def write_raster(
    path: Path,
    array: np.ndarray,
    *,
    geotransform: tuple[float, ...] | None = ORIGIN,
    nodata: float | None = None,
    names: list[str] | None = None,
) -> str:
    """A GeoTIFF (UTM 33N unless `geotransform` is None) of a (bands, h, w) array."""
    array = array if array.ndim == 3 else array[np.newaxis]
    code = {np.dtype(np.uint16): gdal.GDT_UInt16, np.dtype(np.uint8): gdal.GDT_Byte}
    dataset = gdal.GetDriverByName("GTiff").Create(
        str(path), array.shape[2], array.shape[1], array.shape[0],
        code.get(array.dtype, gdal.GDT_Float64),
    )
    if geotransform is not None:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(32633)
        dataset.SetGeoTransform(geotransform)
        dataset.SetProjection(srs.ExportToWkt())
    for index, plane in enumerate(array, start=1):
        band = dataset.GetRasterBand(index)
        band.WriteArray(plane)
        if nodata is not None:
            band.SetNoDataValue(nodata)
        if names:
            band.SetDescription(names[index - 1])
    dataset = None
    return str(path)


@pytest.fixture
def scene(tmp_path):
    """A textured 4-band reflectance-like reference (DN), a noisy fill, an evaluation square."""
    rng = np.random.default_rng(7)
    smooth = np.cumsum(np.cumsum(rng.random((4, SIZE, SIZE)), axis=1), axis=2)
    reference = (500 + 3000 * smooth / smooth.max()).astype(np.uint16)
    filled = np.clip(reference + rng.normal(50, 200, reference.shape), 1, None).astype(np.uint16)
    mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
    mask[10:30, 5:40] = 1
    mask[0, 0] = 255  # outside: never evaluated
    return {
        "reference": reference,
        "filled": filled,
        "mask": mask,
        "reference_path": write_raster(tmp_path / "reference.tif", reference, names=NAMES),
        "filled_path": write_raster(tmp_path / "filled.tif", filled, names=NAMES),
        "mask_path": write_raster(tmp_path / "mask.tif", mask),
    }


def run(scene, filled=None, **options):
    images = filled or [FilledImage("noisy", scene["filled_path"])]
    options.setdefault("evaluation_mask", scene["mask_path"])
    return evaluate_files(scene["reference_path"], images, **options)


def test_streaming_by_blocks_equals_the_whole_image(scene):
    whole = evaluate(scene["reference"], scene["filled"], scene["mask"], ndvi_bands=(2, 3))
    for block in (16, 512):  # blocks smaller than the image: the SSIM halo keeps it exact
        result = run(scene, settings=EvaluationSettings(block_size=block, ndvi=True))
        (metrics,) = result.metrics
        assert metrics.evaluated == whole.evaluated == 4 * 20 * 35
        for name in ("mae", "rmse", "psnr", "ssim", "bias", "sam", "ndvi_mae"):
            assert getattr(metrics, name) == pytest.approx(getattr(whole, name), rel=1e-12)
        assert result.evaluation_pixels == 20 * 35
        assert result.ndvi_bands == ("B4", "B8")
        assert result.rgb_bands == [3, 2, 1]


def test_pixels_outside_the_evaluation_mask_never_count(scene, tmp_path):
    spoiled = scene["filled"].copy()
    spoiled[:, scene["mask"] != 1] = 9999
    path = write_raster(tmp_path / "spoiled.tif", spoiled, names=NAMES)
    images = [FilledImage("a", scene["filled_path"]), FilledImage("b", path)]
    first, second = run(scene, images).metrics
    for name in ("mae", "rmse", "bias", "sam"):  # SSIM's window sees neighbours by design
        assert getattr(first, name) == getattr(second, name)


def test_a_perfect_fill_scores_mae_0_and_psnr_inf_in_every_output(scene, tmp_path):
    result = run(scene, [FilledImage("perfect", scene["reference_path"])])
    (metrics,) = result.metrics
    assert metrics.mae == 0 and metrics.psnr == math.inf and metrics.sam == 0
    assert "'perfect' is the reference itself" in result.messages[0]  # a likely mistake, said
    files = write_report(result, tmp_path / "report")
    rows = files.csv.read_text().splitlines()
    header, overall = rows[0].split(","), rows[1].split(",")
    assert overall[header.index("mae")] == "0"
    assert overall[header.index("psnr")] == "inf"
    document = json.loads(files.json.read_text())
    assert document["methods"][0]["overall"]["psnr"] == "inf"
    assert document["methods"][0]["overall"]["mae"] == 0
    assert document["scaling"] == "DN / 10000, clipped to [0, 1]"


def test_default_evaluation_pixels_are_the_no_data_of_the_input_with_gaps(scene, tmp_path):
    cloudy = scene["reference"].copy()
    cloudy[:, scene["mask"] == 1] = 0
    gaps = write_raster(tmp_path / "cloudy.tif", cloudy, nodata=0, names=NAMES)
    by_mask = run(scene).metrics[0]
    mask_path = write_raster(tmp_path / "only_ones.tif", (scene["mask"] == 1).astype(np.uint8))
    by_input = run(scene, evaluation_mask=None, gaps_input=gaps)
    assert by_input.metrics[0].mae == by_mask.mae
    assert by_input.previews.gaps_input is not None
    assert run(scene, evaluation_mask=mask_path).metrics[0].mae == by_mask.mae


def test_unfilled_pixels_lower_the_filled_fraction(scene, tmp_path):
    holes = scene["filled"].copy()
    holes[:, 10:20, 5:40] = 0  # half of the evaluation rows left as no-data
    path = write_raster(tmp_path / "holes.tif", holes, nodata=0, names=NAMES)
    (metrics,) = run(scene, [FilledImage("holes", path)]).metrics
    assert metrics.filled_fraction == pytest.approx(0.5)


def test_a_fill_on_another_grid_is_aligned_with_a_note(scene, tmp_path):
    shifted = (ORIGIN[0] - 100, 10.0, 0.0, ORIGIN[3] + 100, 0.0, -10.0)  # 10 px up and left
    bigger = np.zeros((4, SIZE + 20, SIZE + 20), dtype=np.uint16)
    bigger[:, 10 : 10 + SIZE, 10 : 10 + SIZE] = scene["reference"]
    path = write_raster(tmp_path / "bigger.tif", bigger, geotransform=shifted, names=NAMES)
    result = run(scene, [FilledImage("moved", path)])
    assert result.metrics[0].mae == 0
    assert "resampled" in result.messages[0]


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        ("no_overlap", NoOverlapError, "does not overlap"),
        ("pixel_grids", GapfillError, "not both georeferenced"),
        ("bands", GapfillError, "has 3 band\\(s\\) but the reference has 4"),
        ("no_pixels", GapfillError, "No pixel to evaluate"),
        ("no_mask", GapfillError, "Give an evaluation mask"),
        ("mask_bands", GapfillError, "evaluation mask .* has 2 bands"),
        ("nodata_reference", GapfillError, "reference has no data"),
        ("divisor", GapfillError, "divisor must be positive"),
        ("fill_in_reflectance", GapfillError, "on different scales"),
        ("scaling_misfit", GapfillError, "far from the data range 1"),
    ],
)
def test_bad_inputs_are_refused_clearly(scene, tmp_path, case, error, message):
    reference, mask = scene["reference"], scene["mask"]
    filled = [FilledImage("fill", scene["filled_path"])]
    options: dict = {}
    if case == "no_overlap":
        far = (ORIGIN[0] + 1e6, 10.0, 0.0, ORIGIN[3], 0.0, -10.0)
        filled = [FilledImage("far", write_raster(tmp_path / "far.tif", reference,
                                                  geotransform=far))]
    elif case == "pixel_grids":
        path = write_raster(tmp_path / "small.tif", reference[:, :20, :20], geotransform=None)
        filled = [FilledImage("small", path)]
    elif case == "bands":
        filled = [FilledImage("three", write_raster(tmp_path / "three.tif", reference[:3]))]
    elif case == "no_pixels":
        options["evaluation_mask"] = write_raster(tmp_path / "zeros.tif", np.zeros_like(mask))
    elif case == "no_mask":
        options["evaluation_mask"] = None
    elif case == "mask_bands":
        options["evaluation_mask"] = write_raster(tmp_path / "two.tif", np.stack([mask, mask]))
    elif case == "nodata_reference":
        holes = reference.copy()
        holes[:, 15, 15] = 0
        path = write_raster(tmp_path / "holes.tif", holes, nodata=0, names=NAMES)
        options["evaluation_mask"] = scene["mask_path"]
        with pytest.raises(error, match=message):
            evaluate_files(path, filled, **options)
        return
    elif case == "divisor":
        options["settings"] = EvaluationSettings(scaling=Scaling(divisor=0))
    elif case == "fill_in_reflectance":  # a fill in 0–1 scored against DN: a meaningless score
        path = write_raster(tmp_path / "reflectance.tif", scene["filled"] / 10000.0)
        filled = [FilledImage("fill", scene["filled_path"]), FilledImage("reflectance", path)]
    elif case == "scaling_misfit":  # DN taken as stored, over a data range of 1
        options["settings"] = EvaluationSettings(scaling=Scaling(divisor=1.0, clip=None))
    with pytest.raises(error, match=message):
        run(scene, filled, **options)


def test_ndvi_needs_named_red_and_near_infrared_bands(scene, tmp_path):
    unnamed = write_raster(tmp_path / "unnamed.tif", scene["reference"][:3])
    three = [FilledImage("f", write_raster(tmp_path / "f.tif", scene["filled"][:3]))]
    with pytest.raises(GapfillError, match="red \\(B4\\) and near infrared \\(B8\\)"):
        evaluate_files(unnamed, three, evaluation_mask=scene["mask_path"],
                       settings=EvaluationSettings(ndvi=True))
    given = EvaluationSettings(ndvi=True, band_names="B4, B8, B2")
    result = evaluate_files(unnamed, three, evaluation_mask=scene["mask_path"], settings=given)
    assert result.metrics[0].ndvi_mae is not None and result.rgb_bands == [1, 2, 3]


def test_names_come_from_the_user_or_the_file_names():
    images = name_images(["/a/fill.tif", "/b/fill.tif", "/c/other.tif"])
    assert [image.name for image in images] == ["fill", "fill (2)", "other"]
    assert [i.name for i in name_images(["x.tif", "y.tif"], "temporal, spatial")] == [
        "temporal",
        "spatial",
    ]
    with pytest.raises(GapfillError, match="one non-empty name per filled image"):
        name_images(["x.tif", "y.tif"], "only one")


class PageParser(HTMLParser):
    """Collects <img> sources and checks that every opened element is closed."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        elif tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1:]}>"
        self.open.pop()


def test_identical_inputs_give_identical_reports_with_existing_pictures(scene, tmp_path):
    images = [FilledImage("noisy", scene["filled_path"]),
              FilledImage("perfect", scene["reference_path"])]
    folders = [tmp_path / "first", tmp_path / "second"]  # byte-identical: no output path inside
    for folder in folders:
        write_report(run(scene, images), folder)
    first = sorted(p.name for p in folders[0].iterdir())
    assert first == sorted(p.name for p in folders[1].iterdir())
    for name in first:
        assert (folders[0] / name).read_bytes() == (folders[1] / name).read_bytes(), name
    parser = PageParser()
    parser.feed((folders[0] / "report.html").read_text())
    assert not parser.open
    assert "colour_bar.png" in parser.images and len(parser.images) == 6
    for source in parser.images:
        assert (folders[0] / source).stat().st_size > 0
    assert "DN / 10000, clipped to [0, 1]" in (folders[0] / "report.html").read_text()


def test_numbers_and_colours_of_the_report():
    assert [number_text(v) for v in (math.inf, math.nan, None, 0.0, 1 / 3)] == [
        "inf", "nan", "", "0", "0.333333",
    ]
    assert json_number(math.inf) == "inf" and json_number(0.5) == 0.5
    colours = error_colours(np.array([[0.0, 0.5, 2.0, np.nan]]), 1.0)
    np.testing.assert_array_equal(colours[:, 0, 0], ERROR_COLOURS[0])
    np.testing.assert_array_equal(colours[:, 0, 1], ERROR_COLOURS[2])
    np.testing.assert_array_equal(colours[:, 0, 2], ERROR_COLOURS[-1])  # clipped at the top
    bar = colour_bar(100, 5)
    assert bar.shape == (3, 5, 100) and bar.dtype == np.uint8
    assert (np.diff(bar[:, 0].astype(int).sum(axis=0)) >= 0).all()  # darker to brighter


def test_previews_keep_the_aspect_and_a_bounded_size():
    assert preview_shape(Grid(100, 101, ORIGIN, ""), 384) == (100, 101)
    assert preview_shape(Grid(8192, 4096, ORIGIN, ""), 384) == (384, 192)


def test_real_clear_date_against_itself_and_a_neighbour(data_dir, tmp_path):
    """On real data: the clear image itself is perfect; a neighbouring date is not."""
    series = data_dir / "sen12mscr_ts"
    clear, neighbour = series / "s2_2018-06-10.tif", series / "s2_2018-06-25.tif"
    dataset = gdal.Open(str(clear))
    mask = np.zeros((dataset.RasterYSize, dataset.RasterXSize), dtype=np.uint8)
    mask[64:192, 64:192] = 1
    mask_path = write_raster(tmp_path / "mask.tif", mask, geotransform=dataset.GetGeoTransform())
    gdal.Open(mask_path, gdal.GA_Update).SetProjection(dataset.GetProjection())
    result = evaluate_files(
        str(clear),
        [FilledImage("itself", str(clear)), FilledImage("neighbour", str(neighbour))],
        evaluation_mask=mask_path,
        settings=EvaluationSettings(ndvi=True),
    )
    itself, other = result.metrics
    assert itself.mae == 0 and itself.psnr == math.inf and itself.ssim == 1
    assert 0 < other.mae < 0.1 and 0 < other.ndvi_mae < 0.3 and other.psnr > 15
