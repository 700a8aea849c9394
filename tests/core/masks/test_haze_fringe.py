"""The haze around real clouds that their mask missed, measured on real SEN12MS-CR samples:
found around the cloudy image's gaps, not around the same mask laid on the clear image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gapfill.core.masks.haze_fringe import DISTANCE_BINS, HAZE_AT_EDGE, measure_haze_fringe
from rasters import read

BLUE, RED = 1, 3  # B2 and B4 of the 13 L1C bands


def sample(data_dir: Path, name: str, image: str) -> tuple[np.ndarray, np.ndarray]:
    values = read(data_dir / f"sen12mscr/{name}_s2_{image}.tif").astype(np.float64)
    return values, read(data_dir / f"sen12mscr/{name}_cloudmask.tif")[0] > 0


@pytest.mark.parametrize("name", ["5254", "5349"])
def test_haze_around_real_clouds_is_found_and_not_around_a_mask_on_a_clear_image(
    data_dir, name
):
    cloudy = measure_haze_fringe([sample(data_dir, name, "cloudy")], BLUE, RED)
    assert cloudy.excess[0] >= HAZE_AT_EDGE and cloudy.margin >= 4
    assert cloudy.excess[0] > cloudy.excess[-1]  # it fades away from the clouds
    assert f"within {cloudy.margin} px" in cloudy.message()
    clear = measure_haze_fringe([sample(data_dir, name, "clear")], BLUE, RED)
    assert clear.margin == 0 and abs(clear.excess[0]) < 1.0
    assert clear.message().startswith("No haze around the gaps")


def test_the_margin_never_takes_most_clear_pixels_nor_goes_unmeasured_silently(data_dir):
    values, gap = sample(data_dir, "5278", "cloudy")  # 61 % cloud, hazy all around
    fringe = measure_haze_fringe([(values, gap)], BLUE, RED)
    assert 0 < fringe.margin < DISTANCE_BINS[-1][1]  # the haze reaches further; the share stops it
    mostly_cloud = measure_haze_fringe([sample(data_dir, "4294", "cloudy")], BLUE, RED)
    assert mostly_cloud.margin == 0 and mostly_cloud.excess is None
    assert "not measured" in mostly_cloud.message()


def test_haze_beside_clouds_is_found_when_the_mask_also_holds_their_shadows(data_dir):
    """The labelled scene's mask of clouds and shadows: the shadows' rings have no haze, and
    pooled with them the clouds' hazy ring was missed (+1.9 spreads, no margin)."""
    values = read(data_dir / "cloud_labels/s2_l1c_6band.tif").astype(np.float64)
    labels = read(data_dir / "cloud_labels/labels.tif")[0]
    clouds_and_shadows = (labels == 4) | (labels == 0)
    fringe = measure_haze_fringe([(values, clouds_and_shadows)], 0, 2)  # B2, B4 of B2…B12
    assert fringe.around == "clouds" and fringe.excess[0] >= HAZE_AT_EDGE
    assert fringe.margin >= 2
    assert fringe.message().startswith("Haze around the clouds")
    # the same shapes laid on a clear date hold no clouds: every ring counts, and none is hazy
    clear = read(data_dir / "sen12mscr_ts/s2_2018-04-26.tif").astype(np.float64)
    height, width = clear.shape[1:]
    on_ground = measure_haze_fringe([(clear, clouds_and_shadows[:height, :width])], BLUE, RED)
    assert on_ground.around == "gaps" and on_ground.margin == 0
