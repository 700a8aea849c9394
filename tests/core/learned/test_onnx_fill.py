"""The ONNX fill engine: tiling invariance, exact clear pixels, no-data, refusals, cancelling,
on in-memory arrays and on the real SEN12MS-CR GeoTIFFs (with a source in another CRS)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from gapfill.core.errors import Cancelled, GapfillError, NoOverlapError
from gapfill.core.learned.model_card import ModelCardError
from gapfill.core.learned.onnx_fill import fill_arrays
from gapfill.core.learned.onnx_session import create_session
from gapfill.core.learned.tiling import round_up

# ---------------------------------------------------------------- in-memory arrays


def scene(height: int, width: int, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A 3-band uint16 target, a linear SAR band and blocky gaps."""
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 300, (3, height, width)).astype(np.uint16)
    sar = rng.uniform(0.01, 1.0, (1, height, width)).astype(np.float32)
    gap = np.kron(rng.random((height // 4 + 1, width // 4 + 1)) < 0.4, np.ones((4, 4), bool))
    return {"target": target, "sar": sar}, gap[:height, :width]


@pytest.fixture(scope="module")
def sessions(models) -> dict[str, object]:
    return {name: create_session(models[name].path, "cpu") for name in ("plain", "pooled")}


def single_pass(session, card, sources, gap, **options) -> np.ndarray:
    """The whole image as one tile (with the same mirrored margins)."""
    height, width = gap.shape
    size = round_up(max(height, width) + 2 * card.context_margin, card.size_multiple)
    return fill_arrays(session, card, sources, gap, tile_size=size, **options)


@pytest.mark.parametrize(
    ("name", "tile_size"),
    [("plain", 8), ("plain", 13), ("plain", 32), ("pooled", 16), ("pooled", 26), ("pooled", 48)],
)
@pytest.mark.parametrize("shape", [(37, 53), (40, 40)])
def test_tiled_fill_equals_single_pass(models, sessions, name, tile_size, shape) -> None:
    card, session = models[name].card, sessions[name]
    sources, gap = scene(*shape)
    reference = single_pass(session, card, sources, gap, full_reconstruction=True)
    tiled = fill_arrays(
        session, card, sources, gap, tile_size=tile_size, batch_size=3, full_reconstruction=True
    )
    assert np.isfinite(reference).all()
    assert np.abs(tiled - reference).max() <= 1e-4 * np.ptp(reference)


@pytest.mark.parametrize("strip_pixels", [1, 20, 30])
def test_tiles_walked_in_narrow_strips_give_the_single_pass_result(
    models, sessions, monkeypatch, strip_pixels: int
) -> None:
    card, session = models["pooled"].card, sessions["pooled"]
    sources, gap = scene(37, 83, seed=4)
    reference = single_pass(session, card, sources, gap)
    monkeypatch.setattr("gapfill.core.learned.tiling.STRIP_PIXELS", strip_pixels)
    lines: list[str] = []
    tiled = fill_arrays(session, card, sources, gap, tile_size=16, batch_size=2, log=lines.append)
    strips = re.search(r"walked in (\d+) vertical strips", "\n".join(lines))
    assert strips and int(strips.group(1)) >= 3
    np.testing.assert_array_equal(np.isnan(tiled), np.isnan(reference))
    known = ~np.isnan(reference)
    assert np.abs(tiled[known] - reference[known]).max() <= 1e-4 * np.ptp(reference[known])


def test_clear_pixels_are_bit_identical_and_gaps_are_predicted(models, sessions) -> None:
    card, session = models["plain"].card, sessions["plain"]
    sources, gap = scene(45, 31, seed=4)
    predicted = single_pass(session, card, sources, gap, full_reconstruction=True)
    filled = fill_arrays(session, card, sources, gap, tile_size=16)
    assert filled.dtype == np.float32
    np.testing.assert_array_equal(filled[:, ~gap], sources["target"][:, ~gap])
    assert np.abs(filled[:, gap] - predicted[:, gap]).max() <= 1e-4 * np.ptp(predicted)
    assert (filled[:, gap] != sources["target"][:, gap]).mean() > 0.9
    exact = sources["target"].astype(np.float64) + 0.1  # float64 values survive unrounded
    kept = fill_arrays(session, card, {**sources, "target": exact}, gap, tile_size=16)
    assert kept.dtype == np.float64
    np.testing.assert_array_equal(kept[:, ~gap], exact[:, ~gap])


def test_gap_pixels_that_no_source_covers_stay_no_data(models, sessions) -> None:
    card, session = models["plain"].card, sessions["plain"]
    sources, gap = scene(40, 40, seed=5)
    sources["sar"][:, :, 20:] = np.nan  # the SAR covers the left half only
    target = sources["target"].astype(np.float32)
    target[:, 0, 0] = np.nan  # no data in the target itself: a gap
    filled = fill_arrays(session, card, {**sources, "target": target}, gap, tile_size=16)
    right = np.zeros_like(gap)
    right[:, 20:] = True
    assert np.isnan(filled[:, gap & right]).all()
    assert np.isfinite(filled[:, gap & ~right]).all() and np.isfinite(filled[:, 0, 0]).all()
    np.testing.assert_array_equal(filled[:, ~gap & right], target[:, ~gap & right])


def test_full_reconstruction_replaces_every_pixel_the_sources_cover(models, sessions) -> None:
    card, session = models["pooled"].card, sessions["pooled"]
    sources, gap = scene(30, 50, seed=6)
    filled = fill_arrays(session, card, sources, gap, tile_size=20, full_reconstruction=True)
    assert np.isfinite(filled).all()
    assert (filled[:, ~gap] != sources["target"][:, ~gap]).mean() > 0.9


def test_network_of_fixed_size_gets_tiles_and_batches_of_that_size(models, sessions) -> None:
    sources, gap = scene(20, 70, seed=7)  # 3 tiles: a full batch and a padded one
    fixed = create_session(models["fixed"].path, "cpu")
    lines: list[str] = []
    result = fill_arrays(
        fixed, models["fixed"].card, sources, gap, full_reconstruction=True, log=lines.append
    )
    plain = models["plain"].card
    reference = single_pass(sessions["plain"], plain, sources, gap, full_reconstruction=True)
    assert np.abs(result - reference).max() <= 1e-4 * np.ptp(reference)
    assert "Tile grid: 3 × 1 tiles of 32 × 32 px (margin 2 px" in "\n".join(lines)
    assert "The network takes exactly 2 tiles per batch; using that." in lines
    with pytest.raises(GapfillError, match="takes tiles of exactly 32 × 32 px"):
        fill_arrays(fixed, models["fixed"].card, sources, gap, tile_size=16)


def test_array_refusals_name_the_problem(models, sessions) -> None:
    card, session = models["pooled"].card, sessions["pooled"]
    sources, gap = scene(20, 20)
    with pytest.raises(GapfillError, match=r"needs a SAR image \(role 'sar', input 'radar'"):
        fill_arrays(session, card, {"target": sources["target"]}, gap)
    with pytest.raises(GapfillError, match="SAR image array has 2 bands but the model takes 1"):
        fill_arrays(session, card, {**sources, "sar": np.ones((2, 20, 20))}, gap)
    with pytest.raises(GapfillError, match=r"SAR image array has shape \(1, 20, 19\)"):
        fill_arrays(session, card, {**sources, "sar": np.ones((1, 20, 19))}, gap)
    with pytest.raises(GapfillError, match="No target array"):
        fill_arrays(session, card, {"sar": sources["sar"]}, gap)
    with pytest.raises(GapfillError, match="tile size 25 px is not a multiple of 2 px"):
        fill_arrays(session, card, sources, gap, tile_size=25)
    with pytest.raises(GapfillError, match="leaves less than 2 px inside the context margins"):
        fill_arrays(session, card, sources, gap, tile_size=12)
    with pytest.raises(GapfillError, match=r"batch size is -1; it must be 0 \(automatic\)"):
        fill_arrays(session, card, sources, gap, batch_size=-1)


def test_a_small_margin_is_logged_and_cancel_stops_the_run(models, sessions) -> None:
    card, session = models["plain"].card, sessions["plain"]
    sources, gap = scene(64, 64)
    lines: list[str] = []
    fill_arrays(session, card, sources, gap, tile_size=16, margin=1, log=lines.append)
    assert any("below the model's context margin (2 px)" in line for line in lines)
    assert any(line.startswith("Tile grid: 5 × 5 tiles of 15 × 15 px") for line in lines)
    assert "Batches of 1 tile (automatic)." in lines  # on the CPU: more only costs memory
    fractions: list[float] = []
    with pytest.raises(Cancelled):
        fill_arrays(
            session,
            card,
            sources,
            gap,
            tile_size=16,
            batch_size=1,
            progress=fractions.append,
            cancelled=lambda: bool(fractions),
        )
    assert 0 < len(fractions) < 5


def test_array_engine_imports_without_gdal_qgis_or_onnxruntime(plugin_path: Path) -> None:
    """The in-memory engine runs on GPU servers without GDAL; heavy imports wait for use."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('osgeo', 'qgis'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import gapfill.core.learned.onnx_fill\n"
        "assert not {'onnxruntime', 'onnx', 'torch'} & set(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=plugin_path)


def test_cuda_is_used_or_falls_back_to_the_cpu_with_a_warning(models) -> None:
    lines: list[str] = []
    session = create_session(models["plain"].path, "cuda", log=lines.append)
    if "CUDAExecutionProvider" in session.get_providers():
        assert "runs the model on the GPU (CUDAExecutionProvider" in lines[-1]
    else:
        assert lines[0].startswith("Warning: ") and "Running on the CPU" in lines[0]
        assert "runs the model on the CPU (CPUExecutionProvider" in lines[-1]
    with pytest.raises(GapfillError, match="Unknown device 'tpu': use one of auto, cpu, cuda"):
        create_session(models["plain"].path, "tpu")


# ---------------------------------------------------------------- GeoTIFFs (real data)

SAMPLE = "ROIs1868_summer_19_p30"


@pytest.fixture(scope="module")
def sen12(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The cloudy Sentinel-2 sample, its Sentinel-1 and a gap mask of its bright (cloudy) pixels."""
    from osgeo import gdal

    folder = data_dir / "sen12mscr_georef"
    target = str(folder / f"{SAMPLE}_s2_cloudy.tif")
    dataset = gdal.Open(target)
    blue = dataset.GetRasterBand(2).ReadAsArray()
    mask_path = str(tmp_path_factory.mktemp("sen12") / "gap_mask.tif")
    mask = gdal.GetDriverByName("GTiff").Create(
        mask_path, dataset.RasterXSize, dataset.RasterYSize, 1, gdal.GDT_Byte
    )
    mask.SetGeoTransform(dataset.GetGeoTransform())
    mask.SetProjection(dataset.GetProjection())
    mask.GetRasterBand(1).WriteArray((blue >= np.quantile(blue, 0.7)).astype(np.uint8))
    mask = None
    return {"target": target, "sar": str(folder / f"{SAMPLE}_s1.tif"), "mask": mask_path}


def read(path: str | Path) -> np.ndarray:
    from osgeo import gdal

    return gdal.Open(str(path)).ReadAsArray()


def fill_file(models, sen12, output: Path, **options) -> tuple[object, list[str]]:
    from gapfill.core.learned.onnx_fill_raster import fill_raster_with_model

    lines: list[str] = []
    arguments = {
        "role_paths": {"sar": sen12["sar"]},
        "gap_mask_path": sen12["mask"],
        "tile_size": 64,
        "device": "cpu",
        "log": lines.append,
        **options,
    }
    model = arguments.pop("model", models["sen12"].path)
    report = fill_raster_with_model(model, sen12["target"], str(output), **arguments)
    return report, lines


@pytest.fixture(scope="module")
def filled(models, sen12, tmp_path_factory) -> tuple[Path, object, list[str]]:
    output = tmp_path_factory.mktemp("filled") / "filled.tif"
    report, lines = fill_file(models, sen12, output)
    return output, report, lines


def test_file_fill_keeps_clear_pixels_and_the_target_format(models, sen12, filled) -> None:
    from osgeo import gdal

    output, report, lines = filled
    source, result = gdal.Open(sen12["target"]), gdal.Open(str(output))
    assert (result.RasterXSize, result.RasterYSize) == (source.RasterXSize, source.RasterYSize)
    assert result.GetGeoTransform() == source.GetGeoTransform()
    assert result.GetProjection() == source.GetProjection()
    assert result.GetRasterBand(1).DataType == gdal.GDT_UInt16
    descriptions = [result.GetRasterBand(i).GetDescription() for i in range(1, 14)]
    assert descriptions[8] == "B8A" and len(descriptions) == result.RasterCount == 13
    original, values, gap = read(sen12["target"]), read(output), read(sen12["mask"]) == 1
    np.testing.assert_array_equal(values[:, ~gap], original[:, ~gap])
    assert (values[:, gap] != original[:, gap]).mean() > 0.5
    assert report.gaps == gap.sum() == report.filled and report.unfilled == 0
    session = create_session(models["sen12"].path, "cpu")
    sources = {"target": original, "sar": read(sen12["sar"])}
    expected = fill_arrays(session, models["sen12"].card, sources, gap, tile_size=64)
    expected = np.clip(np.rint(expected), 0, 65535)
    assert np.abs(values[:, gap] - expected[:, gap]).max() <= 1
    text = "\n".join(lines)
    assert "runs the model on the CPU (CPUExecutionProvider" in text
    assert "Tile grid: 5 × 5 tiles of 56 × 56 px (margin 2 px" in text
    assert "Mpx/s" in text


@pytest.mark.parametrize(("tile_size", "block"), [(64, [256, 256]), (69, [64, 64])])
def test_file_fill_in_strips_equals_the_fill_in_one_strip(
    models, sen12, tmp_path: Path, monkeypatch, tile_size: int, block: list[int]
) -> None:
    """Strips whose edges fall inside the output's blocks (those are written twice; tile
    columns 51 px apart) or on them (tiles 64 px apart: blocks of 64 × 64 px, so each row of
    tiles releases a row of blocks)."""
    from osgeo import gdal

    whole = tmp_path / "whole.tif"
    _, lines = fill_file(models, sen12, whole, tile_size=tile_size)
    assert "strips" not in "\n".join(lines)
    monkeypatch.setattr("gapfill.core.learned.tiling.STRIP_PIXELS", 100)
    strips = tmp_path / "strips.tif"
    _, lines = fill_file(models, sen12, strips, tile_size=tile_size)
    assert "walked in 2 vertical strips" in "\n".join(lines)
    np.testing.assert_array_equal(read(strips), read(whole))
    assert gdal.Open(str(strips)).GetRasterBand(1).GetBlockSize() == block


def test_source_in_another_crs_gives_nearly_the_same_result(
    models, sen12, filled, tmp_path: Path
) -> None:
    """Warping the SAR to WGS 84 and back on the fly changes the fill by far less than what the
    SAR contributes at all (measured against a constant SAR)."""
    from osgeo import gdal

    warped = str(tmp_path / "s1_wgs84.tif")
    gdal.Warp(warped, sen12["sar"], dstSRS="EPSG:4326", resampleAlg="bilinear")
    assert "4326" in gdal.Open(warped).GetProjection()
    constant = str(tmp_path / "s1_constant.tif")
    dataset = gdal.Translate(constant, sen12["sar"])
    for band in (1, 2):
        dataset.GetRasterBand(band).Fill(-12.0)
    dataset = None
    report, lines = fill_file(models, sen12, tmp_path / "wgs84.tif", role_paths={"sar": warped})
    assert f"The SAR image '{warped}' is aligned to the target's grid on the fly" in lines[1]
    fill_file(models, sen12, tmp_path / "constant.tif", role_paths={"sar": constant})
    reference = read(filled[0]).astype(float)
    values = read(tmp_path / "wgs84.tif").astype(float)
    without_sar = read(tmp_path / "constant.tif").astype(float)
    gap = read(sen12["mask"]) == 1
    inner = np.zeros_like(gap)
    inner[2:-2, 2:-2] = True  # warping twice blurs the outermost pixels
    difference = np.abs(values - reference)[:, gap & inner]
    sar_effect = np.abs(without_sar - reference)[:, gap & inner]
    assert np.median(difference) <= 0.1 * np.median(sar_effect)
    assert difference.mean() <= 0.2 * sar_effect.mean()
    np.testing.assert_array_equal(values[:, ~gap], reference[:, ~gap])
    assert report.unfilled == 0


def test_gap_pixels_outside_every_source_become_no_data(models, sen12, tmp_path: Path) -> None:
    from osgeo import gdal

    left = str(tmp_path / "s1_left.tif")
    gdal.Translate(left, sen12["sar"], srcWin=[0, 0, 128, 256])
    output = tmp_path / "half.tif"
    report, _ = fill_file(models, sen12, output, role_paths={"sar": left})
    values, original = read(output), read(sen12["target"])
    gap = read(sen12["mask"]) == 1
    assert gdal.Open(str(output)).GetRasterBand(1).GetNoDataValue() == 0
    assert (values[:, :, 128:][:, gap[:, 128:]] == 0).all()
    assert (values[:, :, :128][:, gap[:, :128]] != original[:, :, :128][:, gap[:, :128]]).any()
    assert report.unfilled == gap[:, 128:].sum()
    assert any("no data in any source" in message for message in report.messages)


def test_cancelled_file_fill_leaves_no_output(models, sen12, tmp_path: Path) -> None:
    output = tmp_path / "cancelled.tif"
    fractions: list[float] = []
    with pytest.raises(Cancelled):
        fill_file(
            models,
            sen12,
            output,
            batch_size=1,
            progress=fractions.append,
            cancelled=lambda: bool(fractions),
        )
    assert fractions and not list(tmp_path.iterdir())


def shifted_copy(path: str, destination: Path, dx: float) -> str:
    """The raster moved east by `dx` metres."""
    from osgeo import gdal

    copy = gdal.Translate(str(destination), path)
    x0, *rest = copy.GetGeoTransform()
    copy.SetGeoTransform((x0 + dx, *rest))
    copy = None
    return str(destination)


def test_file_refusals_name_the_problem(models, sen12, tmp_path: Path) -> None:
    output = tmp_path / "refused.tif"
    with pytest.raises(GapfillError, match=r"needs a SAR image \(role 'sar', input 's1': bands VV"):
        fill_file(models, sen12, output, role_paths={})
    with pytest.raises(GapfillError, match=r"has 13 bands but the model takes 2 \(VV, VH\)"):
        fill_file(models, sen12, output, role_paths={"sar": sen12["target"]})
    far = shifted_copy(sen12["sar"], tmp_path / "far.tif", 100_000.0)
    with pytest.raises(NoOverlapError, match="does not overlap the target image"):
        fill_file(models, sen12, output, role_paths={"sar": far})
    edge = shifted_copy(sen12["sar"], tmp_path / "edge.tif", 2560.0 - 4.0)
    with pytest.raises(GapfillError, match=r"by 0.40 × 256.00 pixels: a zero-size overlap"):
        fill_file(models, sen12, output, role_paths={"sar": edge})
    with pytest.raises(GapfillError, match="tile size 3 px leaves less than 1 px inside"):
        fill_file(models, sen12, output, tile_size=3)
    with pytest.raises(ModelCardError, match="no Gapfill model card"):
        fill_file(models, sen12, output, model=models["nocard"].path)
    with pytest.raises(GapfillError, match=r"band mapping \[3\] for the SAR image .* must list 2"):
        fill_file(models, sen12, output, band_mapping={"sar": [3]})
    with pytest.raises(GapfillError, match="'radar' is not a role for an auxiliary layer"):
        fill_file(models, sen12, output, role_paths={"radar": sen12["sar"]})
    assert not list(tmp_path.glob("refused*"))


def test_band_mapping_picks_bands_by_number(models, sen12, filled, tmp_path: Path) -> None:
    fill_file(models, sen12, tmp_path / "same.tif", band_mapping={"sar": [1, 2]})
    fill_file(models, sen12, tmp_path / "swapped.tif", band_mapping={"sar": [2, 1]})
    gap = read(sen12["mask"]) == 1
    reference, swapped = read(filled[0]), read(tmp_path / "swapped.tif")
    np.testing.assert_array_equal(read(tmp_path / "same.tif"), reference)
    np.testing.assert_array_equal(swapped[:, ~gap], reference[:, ~gap])
    assert (swapped[:, gap] != reference[:, gap]).mean() > 0.1


def test_a_card_that_lies_about_a_band_count_fails_in_one_paragraph(models, tmp_path) -> None:
    """A graph with a free channel count cannot show the lie before it runs: ONNX Runtime's
    failure becomes a GapfillError that points at the card."""
    import dataclasses

    import onnx

    from gapfill.core.learned.model_card import write_card

    proto = onnx.load(str(models["plain"].path))
    radar = next(i for i in proto.graph.input if i.name == "radar")
    radar.type.tensor_type.shape.dim[1].dim_param = "channels"
    card = models["plain"].card
    lying = dataclasses.replace(card, inputs=tuple(
        dataclasses.replace(i, bands=("VV", "VH"), scaling=i.scaling * 2)
        if i.role == "sar" else i for i in card.inputs))
    path = tmp_path / "lying.onnx"
    path.write_bytes(write_card(proto, lying).SerializeToString())
    sources, gap = scene(16, 16)
    sources["sar"] = np.concatenate([sources["sar"]] * 2)
    with pytest.raises(GapfillError, match="card probably does not describe the network"):
        fill_arrays(create_session(path, "cpu"), lying, sources, gap, tile_size=16)
