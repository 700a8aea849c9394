"""Patch extraction and the dataset reader: arrays equal direct reads on the target grid."""

import json

import numpy as np
import pytest
from osgeo import gdal, osr
from patch_inputs import CLEAR, CLOUDY, EARLIER, build_mask, date, with_nodata

from gapfill.core.errors import Cancelled, GapfillError
from gapfill.core.prepare.patch_dataset import (
    PatchDatasetError,
    open_arrays,
    read_locations,
    read_manifest,
    validate_dataset,
)
from gapfill.core.prepare.patch_extraction import extract_patches, shrink_rows
from gapfill.core.prepare.patch_sampling import (
    PatchPoint,
    SamplingSettings,
    centre_of,
    sample_patches,
)
from gapfill.core.prepare.raster_scaling import scale_raster, scaling_from_preset
from gapfill.core.raster.access import Grid
from gapfill.core.raster.alignment import align_to_grid
from rasters import read

SIZE = 32


@pytest.fixture(scope="module")
def inputs(data_dir, tmp_path_factory):
    """Target (no-data hole), its gap mask, an earlier date reprojected to UTM (another grid)."""
    folder = tmp_path_factory.mktemp("inputs")
    target = with_nodata(date(data_dir, CLOUDY), folder / "target.tif", (200, 200, 56, 56))
    utm = osr.SpatialReference()
    utm.ImportFromEPSG(32633)
    earlier = folder / "earlier_utm.tif"
    gdal.Warp(str(earlier), str(date(data_dir, EARLIER)), dstSRS=utm.ExportToWkt(), xRes=10,
              yRes=10, resampleAlg="near")
    return {"target": target, "gap_mask": build_mask(data_dir, folder),
            "optical_before": earlier}


@pytest.fixture(scope="module")
def points(inputs):
    grid = Grid.of(gdal.Open(str(inputs["target"])))
    corners = [(col, row) for row in range(0, 256, 40) for col in range(0, 256, 40)]
    return [
        PatchPoint(k, *centre_of(grid, col, row, SIZE), "validation" if k % 4 == 0 else "train")
        for k, (col, row) in enumerate(corners)
    ]


def roles_of(inputs):
    return {role: str(path) for role, path in inputs.items()}


def test_arrays_equal_direct_reads_on_the_target_grid(inputs, points, tmp_path):
    report = extract_patches(roles_of(inputs), points, tmp_path / "ds", patch_size=SIZE)
    manifest = validate_dataset(tmp_path / "ds")
    grid = Grid.of(gdal.Open(str(inputs["target"])))
    on_grid = {
        role: align_to_grid(str(path), grid, "nearest" if role == "gap_mask" else "bilinear")
        for role, path in inputs.items()
    }
    locations = read_locations(tmp_path / "ds")
    target = read(inputs["target"])
    checked = 0
    for split in ("train", "validation"):
        arrays = open_arrays(tmp_path / "ds", split)
        assert isinstance(arrays["target"], np.memmap)
        assert len(locations[split]) == report.counts[split] == arrays["target"].shape[0] > 0
        for index, location in enumerate(locations[split]):
            window = (location["col"], location["row"], SIZE, SIZE)
            for role, dataset in on_grid.items():
                expected = dataset.ReadAsArray(*window, band_list=[1])
                if role != "gap_mask":
                    expected = dataset.ReadAsArray(*window)[:13]
                np.testing.assert_array_equal(arrays[role][index].squeeze(), expected)
            mask_patch = arrays["gap_mask"][index, 0]
            assert location["gap_fraction"] == (mask_patch == 1).mean()
            assert (target[:, location["row"]:, location["col"]:][:, :SIZE, :SIZE] != 0).all()
            checked += 1
    assert checked == sum(report.counts.values())
    assert report.skipped["nodata"] > 0  # the hole and the corners the UTM image misses
    assert report.skipped["off_image"] > 0  # corners at 240 px
    assert manifest.roles["target"].nodata == 0 and manifest.roles["target"].dtype == np.uint16
    assert manifest.roles["gap_mask"].dtype == np.uint8
    assert manifest.roles["target"].bands[:2] == ("B1", "B2")
    assert manifest.crs == grid.projection and manifest.patch_size == SIZE
    assert manifest.skipped == report.skipped


def test_sampled_locations_extract_without_skips(data_dir, inputs, tmp_path):
    mask = str(inputs["gap_mask"])
    settings = SamplingSettings(patch_size=SIZE, max_gap_fraction=0.3, split="blocks")
    sampled = sample_patches(str(date(data_dir, CLOUDY)), gap_mask=mask, settings=settings)
    roles = {"target": str(date(data_dir, CLOUDY)), "gap_mask": mask}
    report = extract_patches(roles, sampled.locations, tmp_path / "ds", patch_size=SIZE,
                             split_method="blocks", seed=0, chunk_bytes=1)
    assert sum(report.skipped.values()) == 0
    assert report.counts == {s: sampled.count(s) for s in ("train", "validation")}
    rows = read_locations(tmp_path / "ds")
    assert [(r["col"], r["row"]) for r in rows["train"]] == [
        (p.col, p.row) for p in sampled.locations if p.split == "train"
    ]
    assert read_manifest(tmp_path / "ds").split_method == "blocks"


def test_scaled_source_records_its_scaling(data_dir, tmp_path):
    scaled = tmp_path / "scaled.tif"
    scale_raster(str(date(data_dir, CLEAR)), scaled, scaling_from_preset("sentinel2", ["b"] * 13))
    grid = Grid.of(gdal.Open(str(scaled)))
    points = [PatchPoint(1, *centre_of(grid, 10, 10, SIZE), "train")]
    extract_patches({"target": str(scaled)}, points, tmp_path / "ds", patch_size=SIZE)
    manifest = validate_dataset(tmp_path / "ds")
    role = manifest.roles["target"]
    assert role.dtype == np.float32 and np.isnan(role.nodata)
    assert role.scaling[0].scale == pytest.approx(1e-4)
    document = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert document["roles"]["target"]["nodata"] == "nan"
    assert manifest.splits == {"train": 1, "validation": 0}
    assert open_arrays(tmp_path / "ds", "validation")["target"].shape == (0, 13, SIZE, SIZE)


def test_output_folder_must_be_empty_unless_overwrite(inputs, points, tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    roles = {"target": str(inputs["target"])}
    with pytest.raises(GapfillError, match="is not empty.*'Overwrite'"):
        extract_patches(roles, points, folder, patch_size=SIZE)
    extract_patches(roles, points, folder, patch_size=SIZE, overwrite=True)
    extract_patches(roles, points[:3], folder, patch_size=16, overwrite=True)
    assert read_manifest(folder).patch_size == 16
    assert (folder / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in folder.iterdir()) == [
        "locations.csv", "manifest.json", "notes.txt", "train", "validation"
    ]


def test_cancel_leaves_nothing(inputs, points, tmp_path):
    with pytest.raises(Cancelled):
        extract_patches({"target": str(inputs["target"])}, points, tmp_path / "ds",
                        patch_size=SIZE, cancelled=lambda: True)
    assert list(tmp_path.iterdir()) == []


def test_bad_extraction_inputs(inputs, points, data_dir, tmp_path):
    target = str(inputs["target"])
    with pytest.raises(GapfillError, match="Unknown role\\(s\\) cloud"):
        extract_patches({"target": target, "cloud": target}, points, tmp_path / "a")
    with pytest.raises(GapfillError, match="Give the target image"):
        extract_patches({"sar": target}, points, tmp_path / "a")
    with pytest.raises(GapfillError, match="between 1 and the target image's smaller side"):
        extract_patches({"target": target}, points, tmp_path / "a", patch_size=512)
    with pytest.raises(GapfillError, match="does not overlap"):
        dem = str(data_dir / "eolearn_slovenia" / "dem.tif")
        extract_patches({"target": target, "dem": dem}, points, tmp_path / "a")
    with pytest.raises(GapfillError, match="neither 'train' nor 'validation'"):
        extract_patches({"target": target}, [PatchPoint(1, 0, 0, "test")], tmp_path / "a")
    excluded = [PatchPoint(p.id, p.x, p.y, "") for p in points]
    with pytest.raises(GapfillError, match=f"{len(points)} have no split"):
        extract_patches({"target": target}, excluded, tmp_path / "a", patch_size=SIZE)


def test_reader_refuses_damaged_datasets(inputs, points, tmp_path):
    folder = tmp_path / "ds"
    with pytest.raises(PatchDatasetError, match="no manifest.json"):
        read_manifest(folder)
    extract_patches({"target": str(inputs["target"])}, points, folder, patch_size=SIZE)
    shrink_rows(folder / "train" / "target.npy", 1)
    with pytest.raises(PatchDatasetError, match="the manifest says uint16"):
        validate_dataset(folder)
    assert np.load(folder / "train" / "target.npy").shape == (1, 13, SIZE, SIZE)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["version"] = 2
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PatchDatasetError, match="version 2"):
        read_manifest(folder)
