"""The patch sampler: its filters checked pixel by pixel against the masks, its splits."""

import numpy as np
import pytest
from osgeo import gdal
from patch_inputs import CLEAR, CLOUDY, EARLIER, build_mask, date, with_nodata

from gapfill.core.errors import GapfillError, NoOverlapError
from gapfill.core.prepare.patch_sampling import SamplingSettings, centre_of, sample_patches
from gapfill.core.raster.access import Grid
from rasters import read


@pytest.fixture(scope="module")
def mask(data_dir, tmp_path_factory):
    return build_mask(data_dir, tmp_path_factory.mktemp("mask"))


def patch_of(array, location, size):
    return array[..., location.row : location.row + size, location.col : location.col + size]


def test_gap_filters_hold_on_every_patch(data_dir, mask):
    gaps = read(mask)[0] == 1
    settings = SamplingSettings(patch_size=32, stride=16, max_gap_fraction=0.25, seed=3)
    report = sample_patches(str(date(data_dir, CLOUDY)), gap_mask=str(mask), settings=settings)
    expected_passing = 0
    for row in range(0, 256 - 32 + 1, 16):
        for col in range(0, 256 - 32 + 1, 16):
            expected_passing += gaps[row : row + 32, col : col + 32].mean() <= 0.25
    assert len(report.locations) == expected_passing < report.candidates == 225
    for location in report.locations:
        fraction = patch_of(gaps, location, 32).mean()
        assert location.gap_fraction == fraction <= 0.25
        assert location.valid_fraction == 1
    removed = report.removed["have a gap fraction above 0.25"]
    assert removed == report.candidates - expected_passing

    cloudy = SamplingSettings(patch_size=32, stride=16, min_gap_fraction=0.5)
    report = sample_patches(str(date(data_dir, CLOUDY)), gap_mask=str(mask), settings=cloudy)
    assert report.locations and all(p.gap_fraction >= 0.5 for p in report.locations)


def test_no_patch_holds_nodata_in_any_source(data_dir, mask, tmp_path):
    holes = with_nodata(date(data_dir, EARLIER), tmp_path / "holes.tif", (100, 60, 70, 50))
    outside = gdal.Translate(str(tmp_path / "mask.tif"), str(mask))  # 255: no data in the mask
    outside.GetRasterBand(1).WriteArray(np.full((40, 60), 255, dtype=np.uint8), 0, 200)
    outside = None
    settings = SamplingSettings(patch_size=32, stride=32)
    report = sample_patches(
        str(date(data_dir, CLEAR)), gap_mask=str(tmp_path / "mask.tif"), sources=[str(holes)],
        settings=settings,
    )
    valid = (read(holes) != 0).all(axis=0) & (read(tmp_path / "mask.tif")[0] != 255)
    assert all(patch_of(valid, p, 32).all() for p in report.locations)
    assert report.removed["contain no-data in some source"] == 64 - len(report.locations)
    assert len(report.locations) == sum(
        valid[row : row + 32, col : col + 32].all()
        for row in range(0, 256, 32) for col in range(0, 256, 32)
    )


def test_seeded_split_is_deterministic(data_dir, mask):
    def run(seed):
        settings = SamplingSettings(patch_size=16, validation_fraction=0.25, seed=seed)
        report = sample_patches(str(date(data_dir, CLOUDY)), gap_mask=str(mask), settings=settings)
        return [(p.col, p.row, p.split) for p in report.locations]

    first = run(7)
    assert first == run(7)
    assert first != run(8)
    validation = sum(split == "validation" for *_, split in first)
    assert validation == round(0.25 * len(first))


def test_spatial_blocks_keep_validation_away_from_training(data_dir):
    settings = SamplingSettings(
        patch_size=16, stride=8, split="blocks", block_patches=6, validation_fraction=0.3, seed=1
    )
    report = sample_patches(str(date(data_dir, CLEAR)), settings=settings)
    train = np.array([(p.col, p.row) for p in report.locations if p.split == "train"])
    validation = np.array([(p.col, p.row) for p in report.locations if p.split == "validation"])
    assert len(train) > 100 and len(validation) > 50 and report.border_removed > 0
    distance = np.abs(train[:, None, :] - validation[None, :, :]).max(axis=2)
    assert distance.min() > 16  # neither overlapping nor touching
    assert report.split_method == "blocks"


def test_maximum_per_split(data_dir):
    settings = SamplingSettings(patch_size=16, max_train=10, max_validation=3)
    report = sample_patches(str(date(data_dir, CLEAR)), settings=settings)
    assert (report.count("train"), report.count("validation")) == (10, 3)
    assert report.capped == {"train": 256 - 51 - 10, "validation": 51 - 3}


def test_user_locations_and_area_of_interest(data_dir):
    path = date(data_dir, CLEAR)
    grid = Grid.of(gdal.Open(str(path)))
    centres = [centre_of(grid, col, row, 32) for col, row in ((0, 0), (100, 50), (240, 10))]
    settings = SamplingSettings(patch_size=32, validation_fraction=0)
    report = sample_patches(str(path), settings=settings, locations=centres)
    assert [(p.col, p.row) for p in report.locations] == [(0, 0), (100, 50)]
    assert report.removed["lie (partly) outside the target image"] == 1

    xmin, ymin, xmax, ymax = grid.bounds
    middle = (xmin + xmax) / 2
    left_half = f"POLYGON(({xmin} {ymin}, {middle} {ymin}, {middle} {ymax}, {xmin} {ymax}, " \
        f"{xmin} {ymin}))"
    report = sample_patches(str(path), settings=settings, aoi=[left_half])
    assert len(report.locations) == 4 * 8
    assert all(p.col + 32 <= 128 for p in report.locations)


def test_bad_sampling_inputs(data_dir, mask):
    target = str(date(data_dir, CLOUDY))
    with pytest.raises(NoOverlapError, match="does not overlap"):
        sample_patches(target, sources=[str(data_dir / "eolearn_slovenia" / "dem.tif")])
    with pytest.raises(GapfillError, match="patch size \\(300 px\\) is larger than the target"):
        sample_patches(target, settings=SamplingSettings(patch_size=300))
    strict = SamplingSettings(patch_size=64, max_gap_fraction=0)
    with pytest.raises(GapfillError, match="of 16 candidate patches of 64 px, 16 have a gap "
                                           "fraction above 0\\. Relax"):
        sample_patches(target, gap_mask=str(mask), settings=strict)
    with pytest.raises(GapfillError, match="minimum"):
        sample_patches(target, settings=SamplingSettings(min_gap_fraction=0.5, max_gap_fraction=0))


def test_grid_covers_the_common_extent_only(data_dir, tmp_path):
    """A source covering the left 100 columns: candidates only there, no-data nowhere."""
    left = tmp_path / "left.tif"
    gdal.Translate(str(left), str(date(data_dir, EARLIER)), srcWin=[0, 0, 100, 256])
    settings = SamplingSettings(patch_size=32, stride=16)
    report = sample_patches(
        str(date(data_dir, CLEAR)), sources=[str(left)], settings=settings
    )
    assert report.candidates == 5 * 15
    assert report.removed["contain no-data in some source"] == 0
    assert max(p.col for p in report.locations) + 32 <= 100


def test_a_split_without_training_patches_is_refused(data_dir):
    """Blocks of 4 strides of 64 px on a 256 px image: one block, all validation (the shipped
    modeler model reported success with 0 training patches)."""
    settings = SamplingSettings(patch_size=64, split="blocks", block_patches=4)
    with pytest.raises(GapfillError, match=r"no training patch.*16 went to validation.*only 1 of"):
        sample_patches(str(date(data_dir, CLEAR)), settings=settings)
    everything = SamplingSettings(patch_size=64, validation_fraction=1.0)  # evaluation only
    assert sample_patches(str(date(data_dir, CLEAR)), settings=everything).count("train") == 0
