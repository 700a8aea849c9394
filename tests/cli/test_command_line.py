"""The `gapfill` command line without QGIS, on the real data: every command, `--json`, exit
codes, the engine's error texts, refusals that protect inputs and results, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from gapfill.cli.main import main
from gapfill.core.learned.bundled_models import MODELS_FOLDER, bundled_models
from gapfill.core.masks.gap_mask import check_scl_classes
from rasters import read, same_georeference

TARGET, EARLIER, LATER = "2018-03-07", "2018-02-10", "2018-03-22"


def gapfill(capsys, *arguments: str) -> tuple[int, dict, str]:
    """Run `gapfill ARGUMENTS --json` in this process: exit code, JSON result, stderr."""
    code = main([*map(str, arguments), "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


@pytest.fixture(scope="module")
def series(data_dir) -> dict[str, Path]:
    folder = data_dir / "sen12mscr_ts"
    return {day: folder / f"s2_{day}.tif" for day in (TARGET, EARLIER, LATER)}


@pytest.fixture()
def mask(series, tmp_path, capsys) -> Path:
    code, result, _ = gapfill(
        capsys, "mask", series[TARGET], "-o", tmp_path / "mask.tif", "--dilation", "1",
        "--method", "spectral",  # gaps small enough for inverse distance to reach them all
    )
    assert code == 0 and 0.3 < result["gap_fraction"] < 0.8
    assert result["style"] == str(tmp_path / "mask.qml")  # QGIS opens the mask styled
    assert "paletted" in (tmp_path / "mask.qml").read_text()
    return tmp_path / "mask.tif"


def test_mask_then_fill_from_other_dates(series, mask, tmp_path, capsys):
    output = tmp_path / "filled.tif"
    code, result, err = gapfill(
        capsys, "fill", "temporal", series[TARGET], "--gap-mask", mask, "--method", "histogram",
        "--other-dates", series[EARLIER], series[LATER], "-o", output,
    )  # fmt: skip
    assert code == 0 and result["ok"] and result["output"] == str(output)
    assert result["dates"] == [TARGET, EARLIER, LATER] and "Target date 2018-03-07" in err
    gap = read(mask)[0] == 1
    assert result["gap_pixels"] == gap.sum() and result["filled_pixels"] > 0.9 * gap.sum()
    assert same_georeference(output, series[TARGET])
    np.testing.assert_array_equal(read(output)[:, ~gap], read(series[TARGET])[:, ~gap])


def test_spatial_fill_both_methods_fill_every_gap(series, mask, tmp_path, capsys):
    for method in ("idw", "pyramid"):
        code, result, _ = gapfill(
            capsys, "fill", "spatial", series[TARGET], "--gap-mask", mask, "--method", method,
            "-o", tmp_path / f"{method}.tif",
        )  # fmt: skip
        assert code == 0 and result["unfilled_pixels"] == 0 and result["filled_pixels"] > 0


def test_model_fill_with_the_bundled_model(data_dir, tmp_path, capsys):
    """Without --model, the bundled model for these layers runs only if its card's verdict
    says it beat the classical fills; given, it runs, and the verdict is logged (with a
    warning when it lost)."""
    folder = data_dir / "sen12mscr_georef"
    cloudy = folder / "ROIs1868_summer_19_p30_s2_cloudy.tif"
    code, _, _ = gapfill(capsys, "mask", cloudy, "-o", tmp_path / "mask.tif")
    layers = [cloudy, "--sar", folder / "ROIs1868_summer_19_p30_s1.tif", "--gap-mask",
              tmp_path / "mask.tif", "--device", "cpu"]  # fmt: skip
    bundled = next(model for model in bundled_models() if model.roles == {"sar"})
    code, result, err = gapfill(capsys, "fill", "model", *layers, "-o", tmp_path / "auto.tif")
    if bundled.is_default:
        assert code == 0 and f"using the bundled model {bundled.path.name}" in err
    else:
        assert code == 2 and "never chosen for you" in err and "(--model)" in err
        assert not (tmp_path / "auto.tif").exists()
    code, result, err = gapfill(capsys, "fill", "model", *layers, "--model", bundled.path,
                                "-o", tmp_path / "filled.tif")  # fmt: skip
    assert code == 0 and Path(result["model"]) == MODELS_FOLDER / "s1s2_unet_small.onnx"
    assert "Baseline verdict: the model" in err
    assert ("This model LOST" in err) == (not bundled.is_default)
    assert result["unfilled_pixels"] == 0 and result["filled_pixels"] > 0


def cloudy_scene(data_dir: Path, folder: Path) -> tuple[Path, Path]:
    """A real scene with its real cloud shapes laid on its clear image (128 px): cloudy, gaps."""
    from osgeo import gdal

    from gapfill.core.evaluate.simulate_gaps import simulate_gap_files

    for name in ("s2_clear", "cloudmask"):
        gdal.Translate(str(folder / f"{name}.tif"), str(data_dir / f"sen12mscr/4287_{name}.tif"),
                       srcWin=[64, 64, 128, 128])
    cloudy, gaps = folder / "cloudy.tif", folder / "gaps.tif"
    simulate_gap_files(str(folder / "s2_clear.tif"), str(folder / "cloudmask.tif"), cloudy,
                       gaps, folder / "evaluation.tif")
    return cloudy, gaps


def test_scene_fill_chooses_reports_and_writes_confidence(data_dir, tmp_path, capsys):
    """The scene fill on a real scene with its real cloud shapes (no network: no torch
    needed), with the confidence layer and the report; the report is not replaced."""
    cloudy, gaps = cloudy_scene(data_dir, tmp_path)
    arguments = [
        "fill", "scene", cloudy, "--gap-mask", gaps, "--no-adapt", "--max-steps", "10",
        "--confidence", tmp_path / "confidence.tif", "--report", tmp_path / "report",
    ]  # fmt: skip
    code, result, err = gapfill(capsys, *arguments, "-o", tmp_path / "filled.tif")
    assert code == 0 and result["unfilled_pixels"] == 0, err
    names = [candidate["name"] for candidate in result["candidates"]]
    assert {"spatial pyramid", "spatial IDW"} <= set(names) and result["chosen"] in names
    assert "adapted network" not in names and len(result["summary"]) == 3
    assert any(line.startswith("Chosen: ") for line in err.splitlines())
    hidden = read(gaps)[0] == 1
    np.testing.assert_array_equal(read(tmp_path / "filled.tif")[:, ~hidden],
                                  read(cloudy)[:, ~hidden])
    assert read(tmp_path / "confidence.tif").shape == (2, 128, 128)
    report = json.loads((tmp_path / "report" / "scene_report.json").read_text())
    assert report["chosen"] == result["chosen"]
    code, result, _ = gapfill(capsys, *arguments, "-o", tmp_path / "again.tif")
    assert code == 2 and "confidence.tif' exists" in result["error"]
    assert not (tmp_path / "again.tif").exists()
    code, result, _ = gapfill(capsys, *arguments[:8], "--save-network", tmp_path / "net.pt",
                              "-o", tmp_path / "third.tif")
    assert code == 2 and "off (--no-adapt), so none can be saved" in result["error"]
    assert "leave out --save-network" in result["error"]
    assert not (tmp_path / "third.tif").exists() and not (tmp_path / "net.pt").exists()


@pytest.mark.torch  # the adapted network is trained, saved and described
def test_scene_fill_saves_its_network_and_describe_reads_it(data_dir, tmp_path, capsys):
    cloudy, gaps = cloudy_scene(data_dir, tmp_path)
    code, result, err = gapfill(capsys, "fill", "scene", cloudy, "--gap-mask", gaps,
                                "--max-steps", "10", "--save-network", tmp_path / "net.pt",
                                "-o", tmp_path / "filled.tif")
    assert code == 0 and result["saved_network"] == str(tmp_path / "net.pt"), err
    code, result, err = gapfill(capsys, "describe", tmp_path / "net.pt")
    assert code == 0 and result["card"]["base"] == result["card"]["network"]["base"], err
    assert result["card"]["scene"] == "cloudy.tif" and result["card"]["steps"] == 10
    (tmp_path / "other.pt").write_bytes(b"not a network")
    code, result, _ = gapfill(capsys, "describe", tmp_path / "other.pt")
    assert code == 2 and "is not an adapted network" in result["error"]


def test_time_series_whittaker_keeps_observations(data_dir, tmp_path, capsys):
    stack = data_dir / "s5p_co" / "training" / "X_0_3_12.tif"
    code, result, _ = gapfill(
        capsys, "timeseries", stack, "--method", "whittaker", "--lam", "10",
        "-o", tmp_path / "series.tif",
    )  # fmt: skip
    assert code == 0 and result["filled_pixels"] > 0
    from osgeo import gdal

    dataset = gdal.Open(str(stack))  # kept: GDAL 3.6 bands die with their dataset
    nodata = dataset.GetRasterBand(1).GetNoDataValue()
    original, filled = read(stack), read(tmp_path / "series.tif")
    observed = np.isfinite(original) & (original != nodata)
    assert 0 < observed.mean() < 1
    np.testing.assert_array_equal(filled[observed], original[observed])


def test_evaluate_writes_the_report_and_gives_the_metrics(series, mask, tmp_path, capsys):
    gapfill(capsys, "fill", "spatial", series[TARGET], "--gap-mask", mask, "-o", tmp_path / "s.tif")
    code, result, _ = gapfill(
        capsys, "evaluate", series[TARGET], tmp_path / "s.tif", "--mask", mask,
        "--names", "spatial", "-o", tmp_path / "report",
    )  # fmt: skip
    assert code == 0 and result["evaluation_pixels"] == (read(mask)[0] == 1).sum()
    metrics = result["methods"]["spatial"]
    assert 0 < metrics["mae"] < 1 and metrics["filled_fraction"] == 1
    assert json.loads(Path(result["json"]).read_text())["methods"][0]["name"] == "spatial"
    assert Path(result["html"]).is_file()


def test_describe_a_model_and_the_bundled_ones(capsys):
    from gapfill.core.learned.bundled_models import MODELS_FOLDER

    code, result, _ = gapfill(capsys, "describe", MODELS_FOLDER / "stpconv-s5p-co.onnx")
    assert code == 0 and result["card"]["name"]
    code, result, _ = gapfill(capsys, "describe")
    assert {Path(item["model"]).name for item in result["bundled"]} >= {"s1s2_unet_small.onnx"}


def test_errors_are_the_engines_in_one_paragraph(series, tmp_path, capsys):
    code, result, err = gapfill(
        capsys, "mask", series[TARGET], "--method", "scl", "--classes", "42",
        "-o", tmp_path / "m.tif",
    )  # fmt: skip
    with pytest.raises(Exception) as engine:  # the text Processing shows too
        check_scl_classes([42])
    assert code == 2 and result == {"ok": False, "error": str(engine.value), "exit_code": 2}
    assert err == f"error: {engine.value}\n"  # no traceback
    assert not list(tmp_path.iterdir())  # neither the mask nor its style
    code, result, err = gapfill(capsys, "describe", tmp_path / "none.onnx")
    assert code == 2 and "does not exist" in result["error"]


def test_refuses_to_write_over_an_input_or_a_result(series, mask, tmp_path, capsys):
    before = series[TARGET].read_bytes()
    code, result, _ = gapfill(capsys, "fill", "spatial", series[TARGET], "-o", series[TARGET])
    assert code == 2 and "is one of the inputs" in result["error"]
    code, result, _ = gapfill(capsys, "fill", "spatial", series[TARGET], "-o", mask)
    assert code == 2 and "--overwrite" in result["error"]
    code, result, _ = gapfill(
        capsys, "fill", "spatial", series[TARGET], "--gap-mask", mask, "-o", mask, "--overwrite"
    )
    assert code == 2 and "is one of the inputs" in result["error"]
    assert series[TARGET].read_bytes() == before


def test_refuses_to_write_over_the_source_of_a_virtual_raster(series, tmp_path, capsys):
    source, virtual = tmp_path / "source.tif", tmp_path / "target.vrt"
    source.write_bytes(series[TARGET].read_bytes())  # a copy: never risk the shared data
    gdal.BuildVRT(str(virtual), [str(source)])
    code, result, _ = gapfill(capsys, "fill", "spatial", virtual, "-o", source, "--overwrite")
    assert code == 2 and "read through" in result["error"]
    assert source.read_bytes() == series[TARGET].read_bytes()


def test_missing_package_gives_the_pip_command_for_this_python(plugin_path, tmp_path):
    """QGIS's own Python, without the test environment: no onnxruntime there. Exit 3 with the
    install command for that Python, no traceback, no QGIS menu."""
    from dependency_wheels import QGIS_PYTHON

    from gapfill.core.learned.bundled_models import MODELS_FOLDER

    run = subprocess.run(
        [QGIS_PYTHON, "-m", "gapfill.cli", "describe", str(MODELS_FOLDER / "stpconv-s5p-co.onnx")],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(plugin_path)}, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 3, run.stderr
    assert "needs the Python package 'onnxruntime'" in run.stderr
    assert f"{QGIS_PYTHON} -m pip install onnxruntime" in run.stderr
    assert "gapfill[models]" in run.stderr
    assert "Traceback" not in run.stderr and "Plugins ›" not in run.stderr


def test_without_gdal_the_message_says_where_it_comes_from(plugin_path, tmp_path):
    """A virtual environment without the system's packages: no GDAL bindings, no numpy."""
    import venv

    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(tmp_path / "bare")
    run = subprocess.run(
        [str(tmp_path / "bare" / "bin" / "python"), "-m", "gapfill.cli", "describe"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(plugin_path)}, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 3 and "Traceback" not in run.stderr
    assert "python3-gdal" in run.stderr and "gapfill[gdal]" in run.stderr


def test_ctrl_c_cancels_and_leaves_no_output(data_dir, plugin_path, tmp_path):
    """SIGINT while the model fills small tiles: exit 130, no output, no partial file."""
    folder = data_dir / "sen12mscr_georef"
    cloudy = folder / "ROIs1868_summer_19_p30_s2_cloudy.tif"
    assert main(["mask", str(cloudy), "-o", str(tmp_path / "mask.tif"), "-q"]) == 0
    output = tmp_path / "out" / "filled.tif"
    command = [
        sys.executable, "-m", "gapfill.cli", "fill", "model", str(cloudy),
        "--sar", str(folder / "ROIs1868_summer_19_p30_s1.tif"), "--gap-mask",
        str(tmp_path / "mask.tif"), "--tile-size", "56", "--device", "cpu", "-o", str(output),
        "--model", str(MODELS_FOLDER / "s1s2_unet_small.onnx"),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(plugin_path)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines = []
    for line in process.stderr:  # tiles start right after this line: seconds of work left
        lines.append(line)
        if line.startswith("Batches of"):
            break
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=120)
    assert process.returncode == 130, "".join(lines) + rest
    assert "error: Interrupted: no output was written." in rest and "Traceback" not in rest
    assert "Warning" not in "".join(lines) + rest  # GDAL 3.10 warns unless a mode is chosen
    assert not output.exists() and list(output.parent.iterdir()) == []


def test_train_is_the_training_command_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and "usage: gapfill train" in out and "make-dataset" in out


@pytest.mark.torch
def test_train_info_lists_the_architectures(capsys):
    assert main(["train", "info"]) == 0 and "unet-fusion" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fill", "temporal", "image.tif", "-o", "out.tif"])  # no --other-dates
    assert exit_.value.code == 2 and "--other-dates" in capsys.readouterr().err


def test_outputs_refused_as_processing_refuses_them(series, tmp_path, capsys):
    """A folder, or a raster name that is not .tif, is refused before any work."""
    for output, message in ((tmp_path, "is a folder"), (tmp_path / "x.png", "does not end")):
        code, result, _ = gapfill(capsys, "fill", "spatial", series[TARGET], "-o", output,
                                  "--overwrite")
        assert code == 2 and message in result["error"]
    assert not (tmp_path / "x.png").exists()


def scene_folder(data_dir: Path, folder: Path, names: tuple[str, ...]) -> Path:
    """The folder convention of fill-many: one subfolder per scene (links to the real data)."""
    for name in names:
        scene = folder / "scenes" / name
        scene.mkdir(parents=True)
        (scene / "target.tif").symlink_to(data_dir / f"sen12mscr/{name}_s2_cloudy.tif")
        (scene / "mask.tif").symlink_to(data_dir / f"sen12mscr/{name}_cloudmask.tif")
    return folder / "scenes"


def test_fill_many_on_a_folder_of_scenes_then_resumes(data_dir, tmp_path, capsys):
    scenes = scene_folder(data_dir, tmp_path, ("4287", "5254"))
    arguments = ("fill-many", scenes, "-o", tmp_path / "filled", "--method", "spatial",
                 "--options", "max_distance=60", "--workers", "2")
    code, result, err = gapfill(capsys, *arguments)
    assert code == 0 and sorted(result["done"]) == ["4287", "5254"] and not result["failed"]
    assert result["manifest"] == str(tmp_path / "filled/gapfill-run.json")
    assert "Local Dask cluster: 2 worker(s)" in err
    for name in ("4287", "5254"):
        single = tmp_path / f"single_{name}.tif"
        assert gapfill(capsys, "fill", "spatial", scenes / name / "target.tif", "--gap-mask",
                       scenes / name / "mask.tif", "--max-distance", "60", "--method",
                       "idw", "-o", single)[0] == 0
        np.testing.assert_array_equal(read(tmp_path / f"filled/{name}.tif"), read(single))
    code, result, _ = gapfill(capsys, *arguments)
    assert code == 0 and sorted(result["skipped"]) == ["4287", "5254"] and not result["done"]


def test_fill_many_passes_the_histogram_options_and_refuses_two_methods(series, mask, tmp_path,
                                                                        capsys):
    """regression=true fills as `fill temporal --method regression`; with weighted=true as
    well, the job fails saying to choose one."""
    others = f"{series[EARLIER]};{series[LATER]}"
    table = tmp_path / "jobs.csv"
    table.write_text(
        "target,mask,other_dates,output,method,options\n"
        f"{series[TARGET]},{mask},{others},regression.tif,histogram,regression=true\n"
        f"{series[TARGET]},{mask},{others},both.tif,histogram,regression=true; weighted=true\n"
    )
    code, result, _ = gapfill(capsys, "fill-many", table, "--manifest", tmp_path / "run.json",
                              "--workers", "1")
    assert code == 4 and result["done"] == ["regression.tif"]
    assert "choose one" in result["failed"]["both.tif"] and not (tmp_path / "both.tif").exists()
    single = tmp_path / "single.tif"
    assert gapfill(capsys, "fill", "temporal", series[TARGET], "--gap-mask", mask, "--method",
                   "regression", "--other-dates", series[EARLIER], series[LATER],
                   "-o", single)[0] == 0
    np.testing.assert_array_equal(read(tmp_path / "regression.tif"), read(single))


def test_fill_many_exits_4_when_a_job_fails_and_2_on_a_bad_table(data_dir, tmp_path, capsys):
    table = tmp_path / "jobs.csv"
    good = data_dir / "sen12mscr/4287_s2_cloudy.tif"
    table.write_text(f"target,mask,output,method\n{good},,ok.tif,pyramid\n"
                     f"{good},{data_dir / 'sen12mscr/4287_s1.tif'},bad.tif,pyramid\n")
    code, result, _ = gapfill(capsys, "fill-many", table, "--manifest", tmp_path / "run.json",
                              "--workers", "1")
    assert code == 4 and result["done"] == ["ok.tif"] and list(result["failed"]) == ["bad.tif"]
    assert (tmp_path / "ok.tif").exists() and not (tmp_path / "bad.tif").exists()
    code, result, _ = gapfill(capsys, "fill-many", table)
    assert code == 2 and "--manifest" in result["error"]


def test_scene_fill_takes_a_source_margin_as_fill_many_does(data_dir, tmp_path, capsys):
    """`--source-margin 8` on a sample whose cloud edges are hazy: said in the log, the same
    fill as fill-many's `source_margin=8`; a margin out of range is refused before any work."""
    target = data_dir / "sen12mscr/5349_s2_cloudy.tif"
    mask = data_dir / "sen12mscr/5349_cloudmask.tif"
    single = tmp_path / "single.tif"
    code, result, err = gapfill(capsys, "fill", "scene", target, "--gap-mask", mask,
                                "--no-adapt", "--no-bundled", "--source-margin", "8", "-o", single)
    assert code == 0 and "within 8 px of the gaps are not used as sources (as set)" in err
    assert result["source_margin"] == 8
    table = tmp_path / "jobs.csv"
    table.write_text("target,mask,output,method,options\n"
                     f"{target},{mask},many.tif,scene,source_margin=8; adapt=false; "
                     "bundled=false\n")
    code, result, _ = gapfill(capsys, "fill-many", table, "--manifest", tmp_path / "run.json",
                              "--workers", "1")
    assert code == 0 and result["done"] == ["many.tif"], result
    np.testing.assert_array_equal(read(tmp_path / "many.tif"), read(single))
    with pytest.raises(SystemExit) as refused:
        main(["fill", "scene", str(target), "--source-margin", "99", "-o",
              str(tmp_path / "x.tif")])
    assert refused.value.code == 2 and "-1 (measured) or a whole number 0-64" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "x.tif").exists()


def test_fill_many_refuses_a_source_margin_or_a_budget_out_of_range(data_dir, tmp_path, capsys):
    target = data_dir / "sen12mscr/5349_s2_cloudy.tif"
    table = tmp_path / "jobs.csv"
    table.write_text("target,mask,output,method,options\n"
                     f"{target},,bad.tif,scene,source_margin=-5; adapt=false\n"
                     f"{target},,late.tif,scene,budget_minutes=-3; adapt=false\n")
    code, result, _ = gapfill(capsys, "fill-many", table, "--manifest", tmp_path / "run.json",
                              "--workers", "1")
    assert code == 4 and "source margin -5 is out of range" in result["failed"]["bad.tif"]
    assert "time budget -3 min is out of range" in result["failed"]["late.tif"]
    assert not (tmp_path / "bad.tif").exists() and not (tmp_path / "late.tif").exists()


def test_scene_fill_refuses_a_budget_or_a_report_folder_it_cannot_use(data_dir, tmp_path,
                                                                       capsys):
    """Before any work: a budget Processing would not take, and a report folder that is a
    file (the fill is not published by a run whose report then fails)."""
    target = data_dir / "sen12mscr/5349_s2_cloudy.tif"
    output = tmp_path / "x.tif"
    with pytest.raises(SystemExit) as refused:
        main(["fill", "scene", str(target), "--budget", "-3", "-o", str(output)])
    assert refused.value.code == 2 and "give 0.1 to 600 minutes" in capsys.readouterr().err
    taken = tmp_path / "taken"
    taken.write_text("a file")
    code, result, _ = gapfill(capsys, "fill", "scene", target, "--no-adapt", "--report", taken,
                              "-o", output)
    assert code == 2 and "taken' is a file, not a folder" in result["error"]
    assert not output.exists() and taken.read_text() == "a file"
