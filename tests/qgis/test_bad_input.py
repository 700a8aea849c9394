"""Every algorithm refuses bad input with a message naming the problem and the fix, and a
failed or cancelled run leaves no output behind."""

from pathlib import Path

import numpy as np
import processing
import pytest
from osgeo import gdal
from qgis.core import QgsProcessingException

from feedback import RecordingFeedback
from rasters import read

TARGET, OTHER = "s2_2018-03-07.tif", "s2_2018-03-22.tif"


@pytest.fixture
def series(data_dir):
    return data_dir / "sen12mscr_ts"


def write_mask(path, array, gdal_type=gdal.GDT_Byte, like=None):
    dataset = gdal.GetDriverByName("GTiff").Create(
        str(path),
        array.shape[-1],
        array.shape[-2],
        1 if array.ndim == 2 else array.shape[0],
        gdal_type,
    )
    if like is not None:
        source = gdal.Open(str(like))
        dataset.SetGeoTransform(source.GetGeoTransform())
        dataset.SetProjection(source.GetProjection())
    dataset.WriteArray(array) if array.ndim == 2 else [
        dataset.GetRasterBand(i + 1).WriteArray(a) for i, a in enumerate(array)
    ]
    dataset = None
    return str(path)


def fill(series, tmp_path, feedback=None, **overrides):
    parameters = {
        "INPUT": str(series / TARGET),
        "OTHER_DATES": [str(series / OTHER)],
        "OUTPUT": str(tmp_path / "out.tif"),
        **overrides,
    }
    return processing.run("gapfill:filltemporal", parameters, feedback=feedback)


def assert_refused(match, tmp_path, call):
    with pytest.raises(QgsProcessingException, match=match):
        call()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tif") and "out" in p.name]


def test_images_that_do_not_overlap(provider, series, data_dir, tmp_path):
    africa = data_dir / "sen12mscr_georef" / "ROIs1868_summer_19_p30_s2_cloudy.tif"
    assert_refused(
        "does not overlap the target",
        tmp_path,
        lambda: fill(series, tmp_path, OTHER_DATES=[str(africa)], DATES="2018-03-07, 2018-03-22"),
    )


def test_mask_with_several_bands_or_floats(provider, series, tmp_path):
    assert_refused(
        "has 13 bands; a gap mask has exactly one band",
        tmp_path,
        lambda: fill(series, tmp_path, GAP_MASK=str(series / OTHER)),
    )
    floating = write_mask(
        tmp_path / "float.tif",
        np.zeros((256, 256), np.float32),
        gdal.GDT_Float32,
        like=series / TARGET,
    )
    assert_refused(
        "floating-point values", tmp_path, lambda: fill(series, tmp_path, GAP_MASK=floating)
    )


def test_scl_classes_that_do_not_exist(provider, series, tmp_path):
    assert_refused(
        r"classes \[12\] do not exist.*11 snow",
        tmp_path,
        lambda: processing.run(
            "gapfill:buildgapmask",
            {
                "INPUT": str(series / TARGET),
                "METHOD": 1,
                "SCL_CLASSES": "3, 12",
                "OUTPUT": str(tmp_path / "out.tif"),
            },
        ),
    )


def test_masks_and_dates_must_match_the_images(provider, series, tmp_path):
    mask = write_mask(tmp_path / "m.tif", np.zeros((256, 256), np.uint8), like=series / TARGET)
    assert_refused(
        "2 gap masks were given for 1 other-date images",
        tmp_path,
        lambda: fill(series, tmp_path, OTHER_MASKS=[mask, mask]),
    )
    assert_refused(
        "3 dates were given but 2 are needed",
        tmp_path,
        lambda: fill(series, tmp_path, DATES="2018-01-01, 2018-01-02, 2018-01-03"),
    )


def test_no_gap_pixels_gives_a_warning_and_a_copy(provider, series, tmp_path):
    clear = write_mask(tmp_path / "clear.tif", np.zeros((256, 256), np.uint8), like=series / TARGET)
    feedback = RecordingFeedback()
    result = fill(series, tmp_path, feedback, GAP_MASK=clear)
    assert any("no gap pixels" in warning for warning in feedback.warnings)
    np.testing.assert_array_equal(read(result["OUTPUT"]), read(series / TARGET))


def test_target_entirely_in_gaps_without_other_source(provider, series, tmp_path):
    everything = write_mask(
        tmp_path / "all.tif", np.ones((256, 256), np.uint8), like=series / TARGET
    )
    assert_refused(
        "entirely in gaps",
        tmp_path,
        lambda: processing.run(
            "gapfill:fillspatial",
            {
                "INPUT": str(series / TARGET),
                "GAP_MASK": everything,
                "OUTPUT": str(tmp_path / "out.tif"),
            },
        ),
    )


def test_unreadable_input_and_unwritable_output(provider, series, tmp_path):
    broken = tmp_path / "broken.tif"
    broken.write_text("not a raster")
    with pytest.raises(QgsProcessingException):
        fill(series, tmp_path, INPUT=str(broken))
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert_refused(
        "cannot be created",
        tmp_path,
        lambda: fill(series, tmp_path, OUTPUT=str(blocker / "out.tif")),
    )


def test_missing_dates_say_how_to_give_them(provider, series, data_dir, tmp_path):
    undated = tmp_path / "undated.tif"
    gdal.Translate(str(undated), str(series / OTHER))
    assert_refused(
        "No acquisition date found",
        tmp_path,
        lambda: fill(series, tmp_path, OTHER_DATES=[str(undated)]),
    )


@pytest.mark.parametrize(
    "algorithm", ["gapfill:filltemporal", "gapfill:fillspatial", "gapfill:buildgapmask"]
)
def test_cancel_leaves_no_output(provider, series, tmp_path, algorithm):
    parameters = {"INPUT": str(series / TARGET), "OUTPUT": str(tmp_path / "out.tif")}
    if algorithm == "gapfill:filltemporal":
        parameters["OTHER_DATES"] = [str(series / OTHER)]
    assert_refused(
        "Cancelled",
        tmp_path,
        lambda: processing.run(algorithm, parameters, feedback=RecordingFeedback(cancel_above=-1)),
    )
    assert list(tmp_path.iterdir()) == []


def checksum(path) -> str:
    import hashlib

    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.mark.parametrize(
    ("algorithm", "overwritten"),
    [
        ("gapfill:fillspatial", "INPUT"),
        ("gapfill:filltemporal", "OTHER_DATES"),
        ("gapfill:filltemporal", "GAP_MASK"),
        ("gapfill:buildgapmask", "INPUT"),
        ("gapfill:fillscene", "INPUT"),
    ],
)
def test_an_output_that_is_an_input_is_refused_and_the_input_kept(
    provider, series, tmp_path, algorithm, overwritten
):
    """Before any work, with the input's bytes untouched (through a link too)."""
    inputs = {}
    for name, source in (("INPUT", TARGET), ("OTHER_DATES", OTHER)):
        inputs[name] = tmp_path / f"{name.lower()}.tif"
        gdal.Translate(str(inputs[name]), str(series / source), srcWin=[0, 0, 64, 64])
    inputs["GAP_MASK"] = tmp_path / "mask.tif"
    write_mask(inputs["GAP_MASK"], np.zeros((64, 64), np.uint8), like=inputs["INPUT"])
    link = tmp_path / "link.tif"
    link.symlink_to(inputs[overwritten])
    parameters = {"INPUT": str(inputs["INPUT"]), "OUTPUT": str(link)}
    if algorithm == "gapfill:filltemporal":
        parameters |= {"OTHER_DATES": [str(inputs["OTHER_DATES"])],
                       "GAP_MASK": str(inputs["GAP_MASK"])}
    before = checksum(inputs[overwritten])
    with pytest.raises(QgsProcessingException, match="same file as the input"):
        processing.run(algorithm, parameters)
    assert checksum(inputs[overwritten]) == before


def test_an_output_that_a_virtual_raster_reads_is_refused(provider, series, tmp_path):
    """A VRT given as the target reads its source file: writing the output over that source
    destroyed the input (it 'succeeded')."""
    source = tmp_path / "source.tif"
    gdal.Translate(str(source), str(series / TARGET), srcWin=[0, 0, 64, 64])
    virtual = tmp_path / "target.vrt"
    gdal.BuildVRT(str(virtual), [str(source)])
    before = checksum(source)
    with pytest.raises(QgsProcessingException, match="read through .*target.vrt"):
        processing.run("gapfill:fillspatial", {"INPUT": str(virtual), "OUTPUT": str(source)})
    assert checksum(source) == before


def test_a_mask_smaller_than_the_target_leaves_the_rest_unchanged(provider, series, tmp_path):
    """Outside the gap mask's extent clear pixels are copied bit for bit, with a warning."""
    gaps = np.zeros((128, 128), np.uint8)
    gaps[40:80, 40:80] = 1
    mask = write_mask(tmp_path / "corner.tif", gaps, like=series / TARGET)
    feedback = RecordingFeedback()
    result = processing.run(
        "gapfill:fillspatial",
        {"INPUT": str(series / TARGET), "GAP_MASK": mask, "OUTPUT": str(tmp_path / "out.tif")},
        feedback=feedback,
    )
    filled, original = read(result["OUTPUT"]), read(series / TARGET)
    outside = np.ones((256, 256), bool)
    outside[:128, :128] = False
    assert np.array_equal(filled[:, outside], original[:, outside])
    assert not np.array_equal(filled[:, 40:80, 40:80], original[:, 40:80, 40:80])
    assert result["FILLED_PIXELS"] == 40 * 40
    assert any("covers 25.0 % of the target's extent" in w for w in feedback.warnings)


def converted_copy(source, path, convert) -> str:
    """A Float32 copy of `source` (grid, band names kept) with its values passed through
    `convert`."""
    gdal.Translate(str(path), str(source), outputType=gdal.GDT_Float32)
    dataset = gdal.Open(str(path), gdal.GA_Update)
    for index in range(dataset.RasterCount):
        band = dataset.GetRasterBand(index + 1)
        band.WriteArray(convert(band.ReadAsArray().astype(np.float64)))
    dataset = None
    return str(path)


@pytest.fixture
def sample(data_dir):
    folder = data_dir / "sen12mscr"
    return {role: str(folder / f"4287_{name}.tif")
            for role, name in (("INPUT", "s2_cloudy"), ("GAP_MASK", "cloudmask"), ("SAR", "s1"))}


def model_fill(parameters, tmp_path, feedback=None):
    """The bundled Sentinel-1 + Sentinel-2 model by default, given by its file (it is no
    default of the fill)."""
    model = Path(__file__).resolve().parents[2] / "models" / "s1s2_unet_small.onnx"
    return processing.run(
        "gapfill:fillgaps",
        {"MODEL": str(model), **parameters, "DEVICE": 1, "OUTPUT": str(tmp_path / "out.tif")},
        feedback=feedback,
    )


def test_reflectance_where_the_model_wants_digital_numbers_is_refused(
    provider, sample, tmp_path
):
    reflectance = converted_copy(sample["INPUT"], tmp_path / "r.tif", lambda v: v / 10000)
    assert_refused(
        "on another scale", tmp_path, lambda: model_fill({**sample, "INPUT": reflectance}, tmp_path)
    )


def test_linear_backscatter_is_converted_to_db_and_said(provider, sample, tmp_path):
    linear = converted_copy(sample["SAR"], tmp_path / "linear.tif", lambda v: 10 ** (v / 10))
    reference = read(model_fill(sample, tmp_path)["OUTPUT"])
    feedback = RecordingFeedback()
    (tmp_path / "out.tif").unlink()
    result = model_fill({**sample, "SAR": linear}, tmp_path, feedback)
    assert any("linear backscatter" in line and "converted to dB" in line
               for line in feedback.lines + feedback.warnings)
    difference = np.abs(read(result["OUTPUT"]).astype(float) - reference)
    assert difference.max() <= 2  # the same fill, up to float rounding


def test_an_other_date_on_another_scale_or_the_target_itself_is_refused(
    provider, series, tmp_path
):
    scaled = converted_copy(series / OTHER, tmp_path / "r.tif", lambda v: v / 10000)
    feedback = RecordingFeedback()
    assert_refused("on different scales", tmp_path,
                   lambda: fill(series, tmp_path, feedback, OTHER_DATES=[scaled],
                                DATES="2018-03-07, 2018-03-22"))
    # refused before the other dates' masks are built (minutes on a tile)
    assert not any("building them" in line for line in feedback.lines)
    assert_refused("is the target itself", tmp_path,
                   lambda: fill(series, tmp_path, OTHER_DATES=[str(series / TARGET)],
                                DATES="2018-03-07, 2018-03-22"))


def test_a_card_whose_output_scale_is_absurd_is_refused(provider, sample, tmp_path):
    import dataclasses

    from gapfill.core.learned.bundled_models import MODELS_FOLDER
    from gapfill.core.learned.model_card import read_card, write_card

    source = MODELS_FOLDER / "s1s2_unet_small.onnx"
    card = read_card(source)
    absurd = tuple(dataclasses.replace(s, scale=1e-9, clip_min=None, clip_max=None)
                   for s in card.output.scaling)
    model = tmp_path / "absurd.onnx"
    import onnx

    proto = write_card(onnx.load(str(source)), dataclasses.replace(
        card, output=dataclasses.replace(card.output, scaling=absurd)))
    model.write_bytes(proto.SerializeToString())
    assert_refused("is inconsistent", tmp_path,
                   lambda: model_fill({**sample, "MODEL": str(model)}, tmp_path))


def test_an_image_without_any_data_is_refused_by_every_mask_method(provider, series, tmp_path):
    empty = converted_copy(series / TARGET, tmp_path / "nan.tif", lambda v: v * np.nan)
    for method in (0, 4):  # spectral, no-data
        parameters = {"INPUT": empty, "METHOD": method, "OUTPUT": str(tmp_path / "out.tif")}
        assert_refused("has no (valid pixel|pixel with data)", tmp_path,
                       lambda p=parameters: processing.run("gapfill:buildgapmask", p))


def test_nothing_is_written_beside_the_inputs(provider, series, tmp_path):
    """Masks, fills from other dates and spatial fills, run from file paths: the inputs'
    folder holds afterwards exactly what it held before."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in (TARGET, OTHER):
        (inputs / name).write_bytes((series / name).read_bytes())
    before = sorted(p.name for p in inputs.iterdir())
    out = tmp_path / "out"
    out.mkdir()
    mask = processing.run("gapfill:buildgapmask", {
        "INPUT": str(inputs / TARGET), "METHOD": 0, "OUTPUT": str(out / "mask.tif")})["OUTPUT"]
    processing.run("gapfill:filltemporal", {
        "INPUT": str(inputs / TARGET), "GAP_MASK": mask, "OTHER_DATES": [str(inputs / OTHER)],
        "DATES": "2018-03-07, 2018-03-22", "OUTPUT": str(out / "t.tif")})
    processing.run("gapfill:fillspatial", {
        "INPUT": str(inputs / TARGET), "GAP_MASK": mask, "OUTPUT": str(out / "s.tif")})
    assert sorted(p.name for p in inputs.iterdir()) == before


def test_outputs_that_cannot_be_written_as_asked_are_refused(provider, series, tmp_path):
    folder = tmp_path / "a folder"
    folder.mkdir()
    spatial = {"INPUT": str(series / TARGET)}
    refusals = (
        (folder, "is a folder"),
        (tmp_path / "out.png", "does not end in .tif"),
        # permissions say yes to root, the file system says no: only known by trying
        (Path("/proc/out.tif"), "'/proc' is not writable"),
    )
    for output, message in refusals:
        assert_refused(message, tmp_path, lambda o=output: processing.run(
            "gapfill:fillspatial", {**spatial, "OUTPUT": str(o)}))
    assert_refused("is a folder", tmp_path, lambda: processing.run(
        "gapfill:checkenvironment", {"TRY_CUDA": False, "OUTPUT": str(folder)}))
    assert not (tmp_path / "out.png").exists()


def test_files_that_are_not_rasters_say_what_they_are(provider, tmp_path):
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    for path, message in ((text, "is not a raster GDAL can read"), (empty, "is empty"),
                          (tmp_path / "missing.tif", "does not exist")):
        assert_refused(message, tmp_path, lambda p=path: processing.run(
            "gapfill:fillspatial", {"INPUT": str(p), "OUTPUT": str(tmp_path / "out.tif")}))


def test_simulated_gaps_on_an_image_without_data_are_refused(provider, series, tmp_path):
    """NaN is no data here too: no evaluation pixel can be counted on an all-NaN reference."""
    empty = converted_copy(series / TARGET, tmp_path / "nan.tif", lambda v: v * np.nan)
    mask = processing.run("gapfill:buildgapmask", {
        "INPUT": str(series / TARGET), "METHOD": 0, "OUTPUT": str(tmp_path / "mask.tif")})
    assert_refused("no pixel with data|no valid pixel|no evaluation pixel", tmp_path,
                   lambda: processing.run("gapfill:simulategaps", {
                       "INPUT": empty, "GAP_SOURCE": mask["OUTPUT"],
                       "OUTPUT": str(tmp_path / "out.tif"),
                       "GAP_MASK": str(tmp_path / "out_gaps.tif"),
                       "EVALUATION_MASK": str(tmp_path / "out_eval.tif")}))


def test_complex_values_and_a_band_without_data_say_what_to_do(provider, series, tmp_path):
    """Single-look complex SAR is refused by name; a stack with one empty band has that band
    named, where the fills from other dates would have replaced every pixel (none has every
    band) and the spatial fill called it 'entirely in gaps'."""
    complex_copy = tmp_path / "slc.tif"
    gdal.Translate(str(complex_copy), str(series / TARGET), outputType=gdal.GDT_CInt16)
    assert_refused("holds complex values", tmp_path, lambda: processing.run(
        "gapfill:fillspatial", {"INPUT": str(complex_copy), "OUTPUT": str(tmp_path / "out.tif")}))
    stack = tmp_path / "stack.tif"
    gdal.Translate(str(stack), str(series / TARGET), outputType=gdal.GDT_Float32)
    dataset = gdal.Open(str(stack), gdal.GA_Update)
    last = dataset.GetRasterBand(dataset.RasterCount)
    last.WriteArray(np.full((dataset.RasterYSize, dataset.RasterXSize), np.nan, np.float32))
    count, dataset, last = dataset.RasterCount, None, None
    assert_refused(f"no data at all in band\\(s\\) {count} ", tmp_path, lambda: processing.run(
        "gapfill:fillspatial", {"INPUT": str(stack), "OUTPUT": str(tmp_path / "out.tif")}))
    assert_refused("no data at all in band", tmp_path, lambda: fill(
        series, tmp_path, INPUT=str(stack), DATES="2018-03-07, 2018-03-22"))


def test_an_optical_image_given_as_the_elevation_model_is_refused(provider, series, tmp_path):
    """The scene fill read every band of a 13-band image as elevation channels."""
    assert_refused("elevation model .* has 13 bands", tmp_path, lambda: processing.run(
        "gapfill:fillscene", {
            "INPUT": str(series / TARGET), "DEM": str(series / OTHER), "BUDGET": 0.1,
            "OUTPUT": str(tmp_path / "out.tif"),
        }))


def test_an_optical_image_given_as_the_sar_is_refused(provider, series, tmp_path):
    """The scene fill read an optical image's reflectances (0–10000 DN) as backscatter."""
    assert_refused("SAR image .* neither backscatter in dB", tmp_path, lambda: processing.run(
        "gapfill:fillscene", {
            "INPUT": str(series / TARGET), "SAR": str(series / OTHER), "BUDGET": 0.1,
            "OUTPUT": str(tmp_path / "out.tif"),
        }))
