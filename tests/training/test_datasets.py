"""Patch datasets as training samples: reading, scaling, augmentation, simulated gaps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gapfill.core.errors import GapfillError
from gapfill.core.learned.scaling import scale_bands
from gapfill.core.prepare.patch_dataset import validate_dataset
from gapfill.training.datasets import (
    DN_RANGE,
    SAR_DB_RANGE,
    CloudMaskSpec,
    CloudShapes,
    DatasetNotFoundError,
    PatchDataset,
    default_scaling,
    read_manifest,
    role_scalings,
)

ROLES = ("target", "gap_mask", "sar", "dem")


def dataset(folder, roles=ROLES, **options):
    manifest = read_manifest(folder)
    truth = "reference" if "reference" in manifest.roles else "target"
    return PatchDataset(
        manifest,
        options.pop("split", "train"),
        roles,
        role_scalings(manifest, [*roles, truth]),
        **options,
    )


def test_missing_and_foreign_folders_are_refused(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no manifest.json"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(GapfillError, match="gapfill-patches"):
        read_manifest(tmp_path)


def test_default_scalings(synthetic, sen12):
    """Optical bands are centred on their means with one scale (0 = each band's mean: an
    untrained network starts there, not at black), shared by every optical role."""
    manifest = read_manifest(synthetic)
    target = default_scaling(manifest, "target")
    reference = np.load(synthetic / "train" / "reference.npy").astype(float)
    means = reference.mean(axis=(0, 2, 3))
    pooled = np.sqrt(reference.var(axis=(0, 2, 3)).mean())
    for scaling, mean in zip(target, means, strict=True):
        assert scaling.offset == pytest.approx(mean, rel=0.05)
        assert scaling.scale == pytest.approx(1 / pooled, rel=0.05)
        assert (scaling.clip_min, scaling.clip_max) == DN_RANGE and not scaling.db
    for role in ("reference", "optical_before", "optical_after"):
        assert default_scaling(manifest, role) == target
    assert default_scaling(manifest, "gap_mask")[0].scale == 1
    sar = default_scaling(manifest, "sar")  # values in dB (negative): no dB conversion
    assert not sar[0].db and (sar[0].clip_min, sar[0].clip_max) == SAR_DB_RANGE
    assert -14 < sar[0].offset < -9 and -19 < sar[1].offset < -16 and sar[0].scale > 1
    dem = default_scaling(manifest, "dem")[0]
    assert 300 < dem.offset < 400 and dem.scale > 0
    real = read_manifest(sen12)
    assert default_scaling(real, "sar")[0].db is False  # SEN12MS-CR S1 is in dB
    clear = default_scaling(real, "reference")  # real Sentinel-2: hundreds to thousands of DN
    assert min(item.offset for item in clear) < 100 < 1000 < max(item.offset for item in clear)


def test_samples_are_scaled_like_the_fill_engine_feeds(synthetic):
    data = dataset(synthetic, split="validation")
    sample = data[0]
    raw = np.load(synthetic / "validation" / "target.npy")[0].astype(np.float32)
    scaling = data.scalings["target"]
    offsets = np.array([item.offset for item in scaling])[:, None, None]
    expected = (np.clip(raw, *DN_RANGE) - offsets) * scaling[0].scale
    np.testing.assert_allclose(sample["inputs"]["target"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        sample["inputs"]["target"], scale_bands(raw, scaling), rtol=1e-6, atol=1e-6
    )
    gap = np.load(synthetic / "validation" / "gap_mask.npy")[0]
    np.testing.assert_array_equal(sample["inputs"]["gap_mask"], gap)
    np.testing.assert_array_equal(sample["evaluate"], gap)  # supervised: the real gaps
    assert sample["reference"].shape == (3, 32, 32) and sample["known"].all()


def test_augmentation_moves_every_role_together(synthetic):
    plain = dataset(synthetic, augment=False)
    turned = dataset(synthetic, augment=True, seed=3)
    changed = 0
    for index in range(len(turned)):
        sample = turned[index]
        gap = sample["gap"][0] == 1
        target, reference = sample["inputs"]["target"], sample["reference"]
        np.testing.assert_allclose(target[:, ~gap], reference[:, ~gap], rtol=1e-6)
        assert (target[:, gap] != reference[:, gap]).all()
        np.testing.assert_array_equal(sample["inputs"]["gap_mask"], sample["gap"])
        changed += not np.array_equal(sample["gap"], plain[index]["gap"])
    assert changed  # some samples were flipped or rotated


def test_samples_depend_on_seed_epoch_and_index_only(synthetic):
    first = dataset(synthetic, augment=True)
    second = dataset(synthetic, augment=True)
    np.testing.assert_array_equal(first[2]["reference"], second[2]["reference"])
    second.set_epoch(1)
    assert any(not np.array_equal(first[i]["reference"], second[i]["reference"]) for i in range(6))


def test_cloud_mask_specs():
    assert CloudMaskSpec.parse("a/labels.tif:0,4") == CloudMaskSpec("a/labels.tif", (0.0, 4.0))
    assert CloudMaskSpec.parse("C:/masks/cloud.tif") == CloudMaskSpec("C:/masks/cloud.tif")


def test_simulated_gaps_from_real_cloud_shapes(data_dir, make_synthetic, tmp_path):
    """A dataset of clear targets (no reference): gaps are laid from real cloud masks, removed
    from the target input, fed as the gap mask and evaluated."""
    clear = make_synthetic(tmp_path / "clear", ("target", "sar"))
    shapes = CloudShapes.from_specs(
        [
            str(data_dir / "eolearn_slovenia" / "cloud_mask.tif"),
            f"{data_dir / 'cloud_labels' / 'labels.tif'}:0,4",
        ],
        cover=(0.1, 0.5),
    )
    assert len(shapes.masks) > 5
    manifest = read_manifest(clear)
    data = PatchDataset(
        manifest,
        "train",
        ("target", "gap_mask", "sar"),
        role_scalings(manifest, ("target", "gap_mask", "sar")),
        shapes=shapes,
        augment=True,
    )
    covers = []
    for index in range(len(data)):
        sample = data[index]
        simulated = sample["evaluate"][0] == 1
        assert simulated.any()
        np.testing.assert_array_equal(sample["gap"][0] == 1, simulated)
        np.testing.assert_array_equal(sample["inputs"]["gap_mask"], sample["gap"])
        assert (sample["inputs"]["target"][:, simulated] == 0).all()  # no data → 0
        target, truth = sample["inputs"]["target"], sample["reference"]  # the same scaling
        np.testing.assert_array_equal(target[:, ~simulated], truth[:, ~simulated])
        assert (truth[:, simulated] != 0).any()
        covers.append(simulated.mean())
    assert 0.05 < np.median(covers) < 0.6


def test_make_dataset_follows_the_contract(sen12):
    manifest = validate_dataset(sen12)  # the reader of the extraction algorithm's side
    assert manifest.splits == {"train": 24, "validation": 8}
    assert set(manifest.roles) == {"target", "reference", "sar", "gap_mask"}
    assert manifest.roles["target"].bands[8] == "B8A"


def test_a_pickled_cloud_mask_is_refused_without_running_it(tmp_path):
    """A .npy holding Python objects would need unpickling, which can run code: refused."""
    from gapfill.training.datasets import CloudMaskSpec, read_mask_bands

    path = tmp_path / "mask.npy"
    np.save(path, np.array([{"not": "numbers"}], dtype=object), allow_pickle=True)
    with pytest.raises(GapfillError, match="Pickled arrays are refused"):
        read_mask_bands(CloudMaskSpec(str(path)))


def test_a_role_without_any_value_is_refused(synthetic, tmp_path):
    """All-NaN SAR patches would train (and export) a model that learned nothing from SAR."""
    import shutil

    folder = tmp_path / "dataset"
    shutil.copytree(synthetic, folder)
    for split in ("train", "validation"):
        sar = np.load(folder / split / "sar.npy")
        np.save(folder / split / "sar.npy", np.full_like(sar, np.nan))
    with pytest.raises(GapfillError, match="sar patches of the dataset hold no value"):
        default_scaling(read_manifest(folder), "sar")
