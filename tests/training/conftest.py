"""Tiny patch datasets for the training tests: synthetic ones (seeded, for the mechanics) and
one cut from the real SEN12MS-CR samples."""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import numpy as np
import pytest

BANDS = ("B2", "B3", "B4")
ALL_ROLES = ("target", "gap_mask", "sar", "optical_before", "optical_after", "dem", "reference")
SEN12_IDS = ("4287", "5254")  # about 50 % and 36 % cloud cover


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """The machine's two cores are shared: one thread per test process is faster there."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_synthetic(
    folder: Path,
    roles: tuple[str, ...] = ALL_ROLES,
    *,
    size: int = 32,
    train: int = 6,
    validation: int = 2,
    seed: int = 0,
) -> Path:
    """A dataset following docs/patch_dataset.md: smooth 3-band reflectances (DN), a cloudy
    target (DN 8000 under rectangular clouds), SAR in dB, earlier/later dates, a DEM."""
    from gapfill.core.prepare import patch_dataset
    from gapfill.core.prepare.patch_dataset import RoleInfo

    rng = np.random.default_rng(seed)
    counts = {"train": train, "validation": validation}
    infos = {
        "target": RoleInfo("synthetic", BANDS, np.dtype("uint16"), 0.0),
        "reference": RoleInfo("synthetic", BANDS, np.dtype("uint16"), 0.0),
        "optical_before": RoleInfo("synthetic", BANDS, np.dtype("uint16"), 0.0),
        "optical_after": RoleInfo("synthetic", BANDS, np.dtype("uint16"), 0.0),
        "gap_mask": RoleInfo("synthetic", ("gap",), np.dtype("uint8"), 255.0),
        "sar": RoleInfo("synthetic", ("VV", "VH"), np.dtype("float32"), None),
        "dem": RoleInfo("synthetic", ("height",), np.dtype("float32"), None),
    }
    rows = []
    yy, xx = np.mgrid[0:size, 0:size] / size
    for split, count in counts.items():
        (folder / split).mkdir(parents=True, exist_ok=True)
        arrays = {role: [] for role in roles}
        for index in range(count):
            phase = rng.uniform(0, 2 * np.pi, 3)
            reference = np.stack(
                [1500 + 800 * np.sin(4 * xx + p) * np.cos(3 * yy - p) for p in phase]
            ) + rng.normal(0, 30, (3, size, size))
            reference = np.clip(reference, 1, 9000)
            gap = np.zeros((size, size), dtype=np.uint8)
            top, left = rng.integers(0, size // 2, 2)
            gap[top : top + size // 3, left : left + size // 2] = 1
            target = np.where(gap[None] == 1, 8000.0, reference)
            values = {
                "reference": reference,
                "target": target,
                "gap_mask": gap[None],
                "optical_before": reference * 0.95 + 40,
                "optical_after": reference * 1.05 - 40,
                "sar": np.stack([-12 + reference[2] / 1000, -18 + reference[0] / 1000]),
                "dem": (300 + 50 * xx + 20 * yy)[None],
            }
            for role in roles:
                arrays[role].append(values[role].astype(infos[role].dtype))
            rows.append(
                [
                    len(rows),
                    split,
                    index * size,
                    0,
                    index * size + size / 2,
                    size / 2,
                    float(gap.mean()),
                    1.0,
                ]
            )
        for role in roles:
            np.save(folder / split / f"{role}.npy", np.stack(arrays[role]))
    manifest = patch_dataset.Manifest(
        patch_size=size,
        crs="",
        geotransform=(0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
        pixel_size=(1.0, 1.0),
        splits=counts,
        split_method="random",
        roles={role: infos[role] for role in roles},
        seed=seed,
        skipped={"off_image": 0, "nodata": 0},
    )
    patch_dataset.write_manifest(manifest, folder)
    with (folder / "locations.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(patch_dataset.LOCATION_COLUMNS)
        writer.writerows(rows)
    return folder


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="session")
def sen12(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """32 px patches (every other one) of two real SEN12MS-CR samples: 24 train, 8 validation."""
    from gapfill.training.make_dataset import sen12mscr_scenes, write_dataset

    folder = tmp_path_factory.mktemp("sen12") / "dataset"
    scenes = sen12mscr_scenes(data_dir / "sen12mscr", SEN12_IDS)
    write_dataset(folder, scenes, 32, stride=64, validation=0.25, seed=0)
    return folder


@pytest.fixture(scope="session")
def make_synthetic():
    """`write_synthetic`, for tests that need a dataset of their own."""
    return write_synthetic


@pytest.fixture(scope="session")
def child_env(plugin_path: Path) -> dict[str, str]:
    """Environment for `python -m gapfill.training` in a child process."""
    paths = [str(plugin_path), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(path for path in paths if path),
        "OMP_NUM_THREADS": "1",
    }


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable
