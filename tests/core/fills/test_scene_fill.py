"""The scene fill on real data, tiny: self-validation splits, the choice, the promise that no
clear pixel changes, determinism with a seed and a step limit, the report and the confidence
layer, the saved network started from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from gapfill.core.errors import GapfillError
from gapfill.core.evaluate.simulate_gaps import simulate_gap_files
from gapfill.core.fills.scene import fill_scene as fill_scene_module
from gapfill.core.fills.scene.candidates import HISTOGRAM, REGRESSION, TEMPORAL
from gapfill.core.fills.scene.confidence import calibration_warning
from gapfill.core.fills.scene.fill_scene import (
    RANKING_PIXELS,
    SceneSettings,
    budget_spent_note,
    required_wins,
)
from gapfill.core.fills.scene.layouts import REPORT, SELECT, TRAIN, ShapeSource, split_blocks
from gapfill.core.fills.scene.run import fill_scene_files
from gapfill.core.fills.scene.saved_network import load_network
from rasters import read

SAMPLE = "4287"  # half cloudy: real cloud shapes on a real scene
TINY = SceneSettings(budget_minutes=2, max_steps=40, bundled=False)


@pytest.fixture(scope="module")
def scene(data_dir: Path, tmp_path_factory) -> dict[str, Path]:
    """The sample's real cloud mask laid on its clear image (the truth is known), 128 px."""
    folder = tmp_path_factory.mktemp("scene")
    paths = {}
    for name in ("s2_clear", "cloudmask", "s1"):
        paths[name] = folder / f"{name}.tif"
        gdal.Translate(str(paths[name]), str(data_dir / f"sen12mscr/{SAMPLE}_{name}.tif"),
                       srcWin=[64, 64, 128, 128])
    for name in ("cloudy", "gaps", "evaluation"):
        paths[name] = folder / f"{name}.tif"
    simulate_gap_files(str(paths["s2_clear"]), str(paths["cloudmask"]), paths["cloudy"],
                       paths["gaps"], paths["evaluation"])
    return paths


def blank_mask(like: Path, path: Path, value: int) -> Path:
    """A gap mask on the grid of `like` holding `value` everywhere."""
    dataset = gdal.GetDriverByName("GTiff").CreateCopy(str(path), gdal.Open(str(like)))
    dataset.GetRasterBand(1).Fill(value)
    dataset = None
    return path


def run(scene: dict[str, Path], folder: Path, settings: SceneSettings = TINY, **extra):
    return fill_scene_files(
        str(scene["cloudy"]), folder / "filled.tif", gap_mask=str(scene["gaps"]),
        sar=str(scene["s1"]), settings=settings, **extra,
    )


def test_splits_hold_every_role_and_shapes_are_the_scene_s(scene):
    rng = np.random.default_rng(0)
    split = split_blocks(128, 128, rng)
    assert {TRAIN, SELECT, REPORT} <= set(np.unique(split))
    gap = read(scene["gaps"])[0] == 1
    region = ~gap
    laid = ShapeSource.of([gap]).lay(region, 0.3, rng)
    assert not (laid & gap).any() and 0.15 < laid.sum() / region.sum() < 0.5


@pytest.mark.torch  # the adapted network competes
def test_fills_only_gaps_reports_and_is_reproducible(scene, tmp_path):
    first = run(scene, tmp_path / "a", report_folder=tmp_path / "a" / "report",
                confidence_output=tmp_path / "a" / "confidence.tif")
    second = run(scene, tmp_path / "b")
    cloudy, gaps = read(scene["cloudy"]), read(scene["gaps"])[0] == 1
    filled = read(tmp_path / "a" / "filled.tif")
    np.testing.assert_array_equal(filled[:, ~gaps], cloudy[:, ~gaps])
    assert (filled[:, gaps] > 0).all() and first.fill.unfilled == 0
    np.testing.assert_array_equal(filled, read(tmp_path / "b" / "filled.tif"))
    assert first.chosen == second.chosen
    # the report: every candidate scored on the report blocks once, the choice among them
    document = json.loads((tmp_path / "a" / "report" / "scene_report.json").read_text())
    names = [c["name"] for c in document["candidates"]]
    assert {"spatial pyramid", "spatial IDW", "adapted network"} <= set(names)
    assert document["chosen"] in names and len(document["summary"]) == 3
    # a small scene: the fills that learn nothing are ranked on further layouts as well
    pixels = document["pixels"]
    assert pixels["selection"] < RANKING_PIXELS < pixels["ranking"]
    assert all(c["ranking"]["psnr"] > 15 for c in document["candidates"] if c["kind"] != "adapted")
    assert all(c["report"]["psnr"] > 15 for c in document["candidates"])
    assert (tmp_path / "a" / "report" / "report.html").read_text().count("<img") >= 5
    # the confidence layer: positive on gap pixels, no data elsewhere, bound above expectation
    confidence = read(tmp_path / "a" / "confidence.tif")
    assert confidence.shape == (2, 128, 128)
    assert np.isnan(confidence[:, ~gaps]).all()
    assert (confidence[0, gaps] > 0).all() and (confidence[1, gaps] >= confidence[0, gaps]).all()
    calibration = document["confidence"]["report"]
    assert 0 <= calibration["coverage_90"] <= 1 and calibration["pixels"] > 100
    # a layer that failed its check says so where the user reads (only when one was asked for)
    warned = [note for note in first.notes if "poorly calibrated" in note]
    assert len(warned) == (calibration_warning(calibration) is not None)
    assert not any("poorly calibrated" in note for note in second.notes)


def test_a_confidence_layer_that_fails_its_check_is_flagged():
    held = {"coverage_90": 0.88, "rank_correlation": 0.45}
    assert calibration_warning(held) is None and calibration_warning(None) is None
    loose = calibration_warning({"coverage_90": 0.34, "rank_correlation": 0.38})
    assert "held for 34 % of the pixels" in loose and "not as error bars" in loose
    assert "rank correlation with the true error is -0.24" in calibration_warning(
        {"coverage_90": 0.99, "rank_correlation": -0.24}
    )


def test_a_scene_whose_classical_fill_is_best_gets_the_classical_fill(data_dir, tmp_path):
    """An other date identical to the target: temporal fills are exact, nothing can beat them."""
    series = data_dir / "sen12mscr_ts"
    target = tmp_path / "target.tif"
    gdal.Translate(str(target), str(series / "s2_2018-08-24.tif"), srcWin=[0, 0, 128, 128])
    copy = tmp_path / "copy.tif"
    gdal.Translate(str(copy), str(target))
    labels = tmp_path / "labels.tif"
    gdal.Translate(str(labels), str(data_dir / "cloud_labels/labels.tif"),
                   srcWin=[256, 0, 128, 128])
    from gapfill.core.masks.gap_mask import MaskSettings

    simulate_gap_files(str(target), str(labels), tmp_path / "cloudy.tif", tmp_path / "gaps.tif",
                       tmp_path / "evaluation.tif",
                       settings=MaskSettings(method="values", ranges=((4, 4), (0, 0))))
    clear_mask = blank_mask(tmp_path / "gaps.tif", tmp_path / "clear.tif", 0)
    result = fill_scene_files(
        str(tmp_path / "cloudy.tif"), tmp_path / "filled.tif", gap_mask=str(tmp_path / "gaps.tif"),
        other_dates=[str(copy)], other_masks=[str(clear_mask)], dates="2018-08-24, 2018-08-09",
        settings=TINY,
    )
    assert result.chosen in (TEMPORAL, HISTOGRAM, REGRESSION)
    np.testing.assert_array_equal(read(tmp_path / "filled.tif"), read(target))


def test_a_budget_spent_on_the_candidates_says_which_cost_most():
    note = budget_spent_note(5, 312.4, 6, {"spatial pyramid": 10.0, "similar pixels": 181.5,
                                            "histogram matching": 27.25, "spatial IDW": 5.0})
    assert "312 s had passed" in note and "6 window(s) took 224 s" in note
    assert "the dearest: similar pixels 181.5 s, histogram matching 27.2 s, spatial pyramid" in note


@pytest.mark.torch  # without torch no network is ever built: the note says so instead
def test_a_budget_spent_before_the_training_trains_no_network(scene, tmp_path):
    """Its examples would cost more than the whole budget: no network, and the note says why."""
    result = run(scene, tmp_path, SceneSettings(budget_minutes=1e-5, max_steps=40,
                                                bundled=False))
    assert result.network is None and result.chosen in ("spatial pyramid", "spatial IDW")
    assert "adapted network" not in [candidate.name for candidate in result.candidates]
    assert any("spent before the network could train" in note for note in result.notes)
    gaps = read(scene["gaps"])[0] == 1
    np.testing.assert_array_equal(read(tmp_path / "filled.tif")[:, ~gaps],
                                  read(scene["cloudy"])[:, ~gaps])


def test_a_scene_without_clear_pixels_says_it_is_not_validated(scene, tmp_path):
    """With SAR a bundled model can still fill it, unvalidated; without any source: refused."""
    full = blank_mask(scene["gaps"], tmp_path / "full.tif", 1)
    settings = SceneSettings(budget_minutes=1, max_steps=5)
    result = fill_scene_files(str(scene["cloudy"]), tmp_path / "sar.tif", gap_mask=str(full),
                              sar=str(scene["s1"]), settings=settings,
                              save_network_to=tmp_path / "net.pt")
    assert result.chosen == "s1s2_unet_small" and "Not validated" in result.notes[0]
    assert "No adapted network was saved: none was trained on this scene (Not validated" in (
        result.notes[-1]) and not (tmp_path / "net.pt").exists()
    assert result.fill.unfilled == 0 and result.fill.clear == 0
    with pytest.raises(GapfillError, match="entirely in gaps"):
        fill_scene_files(str(scene["cloudy"]), tmp_path / "out.tif", gap_mask=str(full),
                         settings=settings)
    assert not (tmp_path / "out.tif").exists()


@pytest.mark.torch  # the adapted network is saved and started from
def test_a_saved_network_starts_the_next_run_and_refuses_other_inputs(scene, tmp_path):
    import torch

    first = run(scene, tmp_path / "a", save_network_to=tmp_path / "net.pt")
    saved = load_network(tmp_path / "net.pt")
    assert saved.card["base"] == first.network["base"] and saved.card["scene"] == "cloudy.tif"
    assert saved.card["sar_bands"] == 2 and saved.card["report"]["spatial pyramid"]["psnr"] > 15
    assert saved.card["channels"] == 13 + 2 + 2 * 13 + 3  # target, mask, distance, 2 fills, S1
    assert saved.describe().startswith("Adapted network saved by the scene fill on cloudy.tif")
    assert f"Corrects {first.network['base']}" in saved.describe()
    best = max(h["selection"] for h in first.network["history"])
    # the same scene from the saved weights: the start scores as the best state kept did
    again = run(scene, tmp_path / "b", start_network=tmp_path / "net.pt")
    assert again.network["started_from"] == "net.pt"
    assert again.network["history"][0]["selection"] == pytest.approx(best, abs=1e-6)
    # weights that correct something: the start is theirs, not the base candidate's
    generator = torch.Generator().manual_seed(0)
    moved = {k: v + 0.05 * torch.randn(v.shape, generator=generator)
             for k, v in saved.state.items()}
    torch.save({"card": json.dumps(saved.card), "state": moved}, tmp_path / "moved.pt")
    moved_run = run(scene, tmp_path / "c", start_network=tmp_path / "moved.pt")
    assert moved_run.network["history"][0]["selection"] != pytest.approx(
        first.network["history"][0]["selection"], abs=1e-3
    )
    # refused before any work: another scene's inputs, a file that is no network, nothing to save
    with pytest.raises(GapfillError, match="SAR bands: 2 there, 0 here"):
        fill_scene_files(str(scene["cloudy"]), tmp_path / "d.tif", gap_mask=str(scene["gaps"]),
                         settings=TINY, start_network=tmp_path / "net.pt")
    with pytest.raises(GapfillError, match="is not an adapted network"):
        run(scene, tmp_path / "e", start_network=scene["cloudy"])
    with pytest.raises(GapfillError, match="none can be saved"):
        run(scene, tmp_path / "f", SceneSettings(adapt=False), save_network_to=tmp_path / "x.pt")
    with pytest.raises(GapfillError, match="to a '.pt' file, not 'x.model'"):
        run(scene, tmp_path / "h", save_network_to=tmp_path / "x.model")
    with pytest.raises(GapfillError, match="none can be started from a saved one"):
        run(scene, tmp_path / "g", SceneSettings(adapt=False), start_network=tmp_path / "net.pt")
    assert not any((tmp_path / name).exists() for name in ("d.tif", "e", "f", "g", "h", "x.pt"))


@pytest.mark.torch  # the adapted network wins here (1 of 1 selection blocks at 300 steps)
def test_a_network_too_slow_for_the_whole_scene_is_not_used(data_dir, tmp_path, monkeypatch):
    """With no time allowed for the final fill, the network that won is refused, said so,
    and the fill it corrects fills the scene."""
    monkeypatch.setattr(fill_scene_module, "FINAL_FILL_BUDGETS", 0)
    folder = data_dir / "sen12mscr"
    result = fill_scene_files(
        str(folder / "4433_s2_clear.tif"), tmp_path / "filled.tif",
        gap_mask=str(folder / "4433_cloudmask.tif"), sar=str(folder / "4433_s1.tif"),
        settings=SceneSettings(max_steps=300, bundled=False),
    )
    info = result.network
    assert info["shrink"] > 0 and info["selection_blocks_won"] >= required_wins(
        info["selection_blocks"]
    )  # it won
    assert not info["accepted"] and result.chosen == info["base"]
    assert any("would take about" in note and "a GPU" in note for note in result.notes)


def test_a_first_fill_too_slow_for_the_whole_scene_gives_way():
    """A fill ranked first whose fill of the whole scene (its seconds on the sampled windows,
    scaled by area) would take more than twice the budget goes behind the first that would
    not, and the note says which budget would let it fill; one within it stays first."""
    from types import SimpleNamespace

    from gapfill.core.fills.scene.candidates import PYRAMID, SIMILAR
    from gapfill.core.fills.scene.fill_scene import CandidateResult, _affordable_first
    from gapfill.core.raster.access import Grid

    grid = Grid(10980, 10980, (0.0, 10.0, 0.0, 0.0, 0.0, -10.0), "")
    windows = [SimpleNamespace(truth=np.zeros((13, 1098, 1098)))]  # a hundredth of the scene
    ranked = [CandidateResult(SIMILAR, "classical"), CandidateResult(HISTOGRAM, "classical"),
              CandidateResult(PYRAMID, "classical")]
    seconds = {SIMILAR: 9.0, HISTOGRAM: 1.0, PYRAMID: 0.5}  # 15, 1.7 and 0.8 min in all
    notes: list[str] = []
    first = _affordable_first(ranked, seconds, grid, windows, 5.0, notes, lambda _: None)
    assert [r.name for r in first] == [HISTOGRAM, SIMILAR, PYRAMID]
    assert "about 15 min" in notes[0] and "budget of 8 min" in notes[0]
    again = _affordable_first(ranked, seconds, grid, windows, 8.0, [], lambda _: None)
    assert again[0].name == SIMILAR
