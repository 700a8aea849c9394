"""Other dates through similar pixels: a change that differs by land cover is carried deep into
a gap, where histogram matching has only the block's average; the dates are weighed by how well
they predict; the bands that describe land cover are found by name; on a real scene with a
real cloud shape it beats weighted histogram matching; a region filled alone is that region of
the whole fill."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
from osgeo import gdal

from gapfill.core.distributed.jobs import make_job
from gapfill.core.distributed.methods import Hooks
from gapfill.core.fills.histogram_matched_fill import fill_matched
from gapfill.core.fills.other_dates import open_temporal_inputs
from gapfill.core.fills.similar_pixels import (
    fill_by_similar_pixels,
    similar_pixel_values,
    similarity_bands,
)
from gapfill.core.masks.gap_mask import MaskSettings, build_gap_mask
from gapfill.core.raster.fill_engine import Block

DAY = date(2020, 6, 1)


def two_covers(height: int = 120, width: int = 160) -> tuple[np.ndarray, np.ndarray]:
    """Another date of two land covers in random patches, alike in three bands and told apart
    by the fourth (as fields and meadows by the near infrared), and the target: in the three
    bands one cover grew brighter since, the other darker (both dates with noise of 20 DN).
    No gain and offset of a band can map that change."""
    rng = np.random.default_rng(0)
    cover = np.kron(rng.random((height // 8, width // 8)) < 0.5, np.ones((8, 8), bool))
    other = np.full((4, height, width), 1500.0)
    other[3] = np.where(cover, 1200.0, 3000.0)
    other += rng.normal(0, 20, other.shape)
    change = np.zeros_like(other)
    change[:3] = np.where(cover, 400.0, -400.0)
    return other, other + change + rng.normal(0, 20, other.shape)


def whole(values: np.ndarray, gap: np.ndarray, observations: list) -> Block:
    window = (0, 0, gap.shape[1], gap.shape[0])
    return Block(window, window, np.where(gap, 0.0, values), gap, values, observations)


def test_a_change_that_differs_by_cover_reaches_deep_into_a_gap():
    other, target = two_covers()
    gap = np.zeros(target.shape[1:], bool)
    gap[20:100, 30:130] = True  # 40 px from any clear pixel at its centre
    observations = [(DAY, other, np.ones_like(gap))]
    values, filled = similar_pixel_values(
        np.where(gap, 0.0, target), ~gap, observations, [0, 1, 2, 3], (0, 0)
    )
    assert filled[gap].all() and not filled[~gap].any()
    error = np.abs(values - target)[:, gap].mean()
    matched, _ = fill_matched(DAY, whole(target, gap, observations), observations, 15, 50)
    matched_error = np.abs(matched - target)[:, gap].mean()
    assert error < 40 and error < 0.2 * matched_error  # the noise's scale, not the change's


def test_a_date_that_predicts_worse_weighs_less():
    other, target = two_covers()
    gap = np.zeros(target.shape[1:], bool)
    gap[40:80, 50:110] = True
    rng = np.random.default_rng(1)
    noisy = other + rng.normal(0, 400, other.shape)  # a hazy date: its change is noise
    usable = np.ones_like(gap)
    clean, _ = similar_pixel_values(
        np.where(gap, 0.0, target), ~gap, [(DAY, other, usable)], [0, 1, 2, 3], (0, 0)
    )
    both, _ = similar_pixel_values(
        np.where(gap, 0.0, target), ~gap, [(DAY, other, usable), (DAY, noisy, usable)],
        [0, 1, 2, 3], (0, 0),
    )
    clean_error = np.abs(clean - target)[:, gap].mean()
    both_error = np.abs(both - target)[:, gap].mean()
    noisy_only, _ = similar_pixel_values(
        np.where(gap, 0.0, target), ~gap, [(DAY, noisy, usable)], [0, 1, 2, 3], (0, 0)
    )
    assert both_error < 1.5 * clean_error < np.abs(noisy_only - target)[:, gap].mean()


def test_the_land_cover_bands_are_found_by_name():
    names = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]
    assert similarity_bands(names, 13) == [1, 2, 3, 7, 11, 12]
    assert similarity_bands(["red", "green", "blue"], 3) == [0, 1, 2]
    assert similarity_bands(None, 4) == [0, 1, 2, 3]


def test_on_a_real_scene_it_beats_weighted_histogram_matching(data_dir, tmp_path):
    """eolearn_slovenia's 2015-08-30 scene under the real cloud shape of 2016-03-17 (bench
    case b), the four other dates with their spectral gap masks: scored on the gap pixels."""
    folder = data_dir / "eolearn_slovenia"
    target_dataset = gdal.Open(str(folder / "reference_scene_3.tif"))
    target = target_dataset.ReadAsArray().astype(float)
    names = [target_dataset.GetRasterBand(b + 1).GetDescription() for b in range(13)]
    masks = gdal.Open(str(folder / "cloud_mask.tif"))
    gap = masks.GetRasterBand(15).ReadAsArray() > 0
    observations = []
    for scene, day in ((0, "2015-08-20"), (1, "2015-07-31"), (2, "2015-09-09"),
                       (4, "2015-07-11")):
        path = str(folder / f"reference_scene_{scene}.tif")
        build_gap_mask(path, tmp_path / f"{scene}.tif", MaskSettings("spectral", dilation=0))
        usable = gdal.Open(str(tmp_path / f"{scene}.tif")).ReadAsArray() == 0
        values = gdal.Open(path).ReadAsArray().astype(float)
        observations.append((date.fromisoformat(day), values, usable))
    values, filled = similar_pixel_values(
        np.where(gap, 0.0, target), ~gap, observations, similarity_bands(names, 13), (0, 0)
    )
    matched, matched_filled = fill_matched(
        date(2015, 8, 30), whole(target, gap, observations), observations, 15, 50,
        weighted=True,
    )
    scored = gap & filled & matched_filled
    assert scored.sum() > 0.9 * gap.sum()

    def psnr(filled: np.ndarray) -> float:
        error = np.clip(filled / 1e4, 0, 1)[:, scored] - np.clip(target / 1e4, 0, 1)[:, scored]
        return float(10 * np.log10(1 / np.mean(error**2)))

    assert psnr(values) > psnr(matched) + 1.0, (psnr(values), psnr(matched))


def test_a_region_filled_alone_is_that_region_of_the_whole_fill(data_dir, tmp_path):
    """What the tiles of Fill many scenes rely on: blocks read the same context (the search
    halo) and draw the same probes whichever region is asked, so a tile equals the whole
    image's fill there; and that method, run as a job, is this fill (sen12mscr_ts 2018-06-10
    from 05-31 and 06-25, real cloud labels)."""
    series = data_dir / "sen12mscr_ts"
    labels = gdal.Open(str(data_dir / "cloud_labels/labels.tif")).ReadAsArray()[:256, 256:512]
    mask = tmp_path / "gaps.tif"
    dataset = gdal.GetDriverByName("GTiff").Create(str(mask), 256, 256, 1, gdal.GDT_Byte)
    dataset.GetRasterBand(1).WriteArray(np.isin(labels, (1, 2, 3, 4)).astype(np.uint8))
    dataset = None
    outputs = {}
    for name, region, size in (("whole", None, 64), ("tile", (64, 128, 128, 128), 64),
                               ("default", None, 512)):
        target, _, others = open_temporal_inputs(
            str(series / "s2_2018-06-10.tif"), str(mask),
            [str(series / "s2_2018-05-31.tif"), str(series / "s2_2018-06-25.tif")], None,
            "2018-06-10, 2018-05-31, 2018-06-25",
        )
        outputs[name] = tmp_path / f"{name}.tif"
        fill_by_similar_pixels(replace(target, region=region), others, outputs[name],
                               block_size=size)
    job = make_job(  # Fill many scenes' method `similar`, on one process: the same fill
        "tile", method="similar", target=str(series / "s2_2018-06-10.tif"), mask=str(mask),
        other_dates=(str(series / "s2_2018-05-31.tif"), str(series / "s2_2018-06-25.tif")),
        output=str(tmp_path / "job.tif"),
        options_text="dates=2018-06-10, 2018-05-31, 2018-06-25",
    )
    job.fill.run(job, str(tmp_path / "job.tif"), None, Hooks())
    whole = gdal.Open(str(outputs["whole"])).ReadAsArray()
    tile = gdal.Open(str(outputs["tile"])).ReadAsArray()
    np.testing.assert_array_equal(tile, whole[:, 128:256, 64:192])
    np.testing.assert_array_equal(
        gdal.Open(str(tmp_path / "job.tif")).ReadAsArray(),
        gdal.Open(str(outputs["default"])).ReadAsArray(),
    )
    assert (whole != gdal.Open(str(series / "s2_2018-06-10.tif")).ReadAsArray()).any()
