"""Write a patch dataset (docs/patch_dataset.md) from rasters that share a pixel grid.

A small generator for training without the QGIS extraction algorithm, and for tests: each scene
is a set of rasters of the same size, one per role (e.g. SEN12MS-CR: cloudy S2 as `target`, clear
S2 as `reference`, S1 as `sar`, the cloud mask as `gap_mask`). Patches are cut on a regular grid
and split at random into training and validation. Arrays keep the sources' data types (raw
values, `scaling: null`); the manifest is written by `core.prepare.patch_dataset`. With several
scenes,
`col`, `row` (and `x`, `y`, in pixels: the scenes are taken as not georeferenced) in
`locations.csv` are on the grid of the patch's own scene; `manifest.json` lists every scene's
raster of a role in its `source`, separated by '; '.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.prepare import patch_dataset
from ..core.prepare.patch_dataset import LOCATION_COLUMNS, SPLITS, RoleInfo
from ..core.raster.access import (
    band_descriptions,
    nodata_value,
    numpy_dtype,
    open_raster,
    read_bands,
)
from .datasets import DATASET_ROLES, GAP, MASK_NODATA, DatasetError, Manifest, read_manifest

Scene = Mapping[str, str | Path]  # role → raster


@dataclass(frozen=True)
class _Source:
    path: str
    bands: tuple[str, ...]
    dtype: np.dtype
    nodata: float | None
    values: np.ndarray  # (bands, rows, columns)


def _read_scene(scene: Scene, index: int) -> dict[str, _Source]:
    sources = {}
    for role, path in scene.items():
        if role not in DATASET_ROLES:
            raise DatasetError(f"Unknown role '{role}' (known: {', '.join(DATASET_ROLES)}).")
        dataset = open_raster(path, role)
        values = read_bands(dataset, (0, 0, dataset.RasterXSize, dataset.RasterYSize))
        if values.ndim == 2:
            values = values[np.newaxis]
        sources[role] = _Source(
            str(path),
            tuple(band_descriptions(dataset)),
            numpy_dtype(dataset),
            nodata_value(dataset),
            values,
        )
    shapes = {source.values.shape[1:] for source in sources.values()}
    if len(shapes) != 1:
        listing = ", ".join(
            f"{role} {s.values.shape[2]}×{s.values.shape[1]}" for role, s in sources.items()
        )
        raise DatasetError(f"The rasters of scene {index} differ in size ({listing}).")
    return sources


def sen12mscr_scenes(folder: str | Path, ids: Sequence[str] | None = None) -> list[dict[str, Path]]:
    """SEN12MS-CR samples (`<id>_s1.tif`, `<id>_s2_cloudy.tif`, `<id>_s2_clear.tif`,
    `<id>_cloudmask.tif`) as scenes: cloudy target, clear reference, SAR and gap mask."""
    folder = Path(folder)
    found = sorted(path.name[: -len("_s1.tif")] for path in folder.glob("*_s1.tif"))
    ids = list(ids) if ids else found
    unknown = [item for item in ids if item not in found]
    if unknown:
        raise DatasetError(f"No SEN12MS-CR sample {', '.join(unknown)} in '{folder}'.")
    return [
        {
            "target": folder / f"{item}_s2_cloudy.tif",
            "reference": folder / f"{item}_s2_clear.tif",
            "sar": folder / f"{item}_s1.tif",
            "gap_mask": folder / f"{item}_cloudmask.tif",
        }
        for item in ids
    ]


def write_dataset(
    output: str | Path,
    scenes: Sequence[Scene],
    patch_size: int,
    *,
    stride: int | None = None,
    validation: float = 0.2,
    seed: int = 0,
    overwrite: bool = False,
    validation_scenes: Sequence[Scene] = (),
    validation_stride: int | None = None,
) -> Manifest:
    """Cut `scenes` into patches and write them as a dataset folder; returns its manifest.

    Split at random (`validation` of the patches), or by scene: with `validation_scenes`,
    every patch of `scenes` is for training and every patch of `validation_scenes` (cut with
    `validation_stride`, default the patch size) for validation, so that validation never
    sees a place trained on (neighbouring SEN12MS-CR patches overlap by half)."""
    if not scenes:
        raise DatasetError("No scene given: give at least one set of rasters.")
    if patch_size < 1:
        raise DatasetError(f"The patch size is {patch_size}; it must be at least 1 px.")
    if not 0 <= validation < 1:
        raise DatasetError(f"The validation fraction {validation} must be in [0, 1).")
    stride = stride or patch_size
    held = len(scenes)
    scenes = [*scenes, *validation_scenes]
    output = Path(output)
    if output.exists() and any(output.iterdir()):
        if not overwrite:
            raise DatasetError(f"The folder '{output}' is not empty; choose an empty folder.")
        shutil.rmtree(output)
    roles = list(scenes[0])
    loaded = [_read_scene(scene, index) for index, scene in enumerate(scenes)]
    first = loaded[0]
    for index, sources in enumerate(loaded[1:], start=1):
        if list(sources) != roles:
            raise DatasetError(f"Scene {index} has roles {list(sources)}, scene 0 has {roles}.")
        for role, source in sources.items():
            if source.bands != first[role].bands or source.dtype != first[role].dtype:
                raise DatasetError(
                    f"The {role} of scene {index} has bands {source.bands} ({source.dtype}); "
                    f"scene 0 has {first[role].bands} ({first[role].dtype})."
                )
    rows = []
    for index, sources in enumerate(loaded):
        height, width = next(iter(sources.values())).values.shape[1:]
        step = stride if index < held else validation_stride or patch_size
        for row in range(0, height - patch_size + 1, step):
            for col in range(0, width - patch_size + 1, step):
                rows.append((index, col, row))
    if not rows:
        raise DatasetError(f"The scenes are smaller than one {patch_size} px patch.")
    if validation_scenes:
        is_validation = np.array([scene >= held for scene, _, _ in rows])
    else:
        rng = np.random.default_rng(seed)
        is_validation = np.zeros(len(rows), dtype=bool)
        is_validation[rng.permutation(len(rows))[: round(validation * len(rows))]] = True
    splits = {
        "train": [r for r, v in zip(rows, is_validation, strict=True) if not v],
        "validation": [r for r, v in zip(rows, is_validation, strict=True) if v],
    }
    output.mkdir(parents=True, exist_ok=True)
    locations = []
    for split in SPLITS:
        (output / split).mkdir(exist_ok=True)
        arrays = {
            role: np.lib.format.open_memmap(
                output / split / f"{role}.npy",
                mode="w+",
                dtype=first[role].dtype,
                shape=(len(splits[split]), len(first[role].bands), patch_size, patch_size),
            )
            for role in roles
        }
        for position, (scene, col, row) in enumerate(splits[split]):
            window = (slice(None), slice(row, row + patch_size), slice(col, col + patch_size))
            for role in roles:
                arrays[role][position] = loaded[scene][role].values[window]
            locations.append(
                _location(
                    len(locations),
                    split,
                    col,
                    row,
                    patch_size,
                    {role: arrays[role][position] for role in roles},
                    first,
                )
            )
        for array in arrays.values():
            array.flush()
        del arrays
    _write_locations(output / "locations.csv", locations)
    roles_info = {
        role: RoleInfo(
            source="; ".join(str(scene[role]) for scene in scenes),
            bands=first[role].bands,
            dtype=first[role].dtype,
            nodata=(
                float(MASK_NODATA)
                if role == "gap_mask" and first[role].nodata is None
                else first[role].nodata
            ),
        )
        for role in roles
    }
    manifest = patch_dataset.Manifest(
        patch_size=patch_size,
        crs="",
        geotransform=(0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
        pixel_size=(1.0, 1.0),
        splits={split: len(splits[split]) for split in SPLITS},
        split_method="by scene" if validation_scenes else "random",
        roles=roles_info,
        seed=seed,
        skipped={"off_image": 0, "nodata": 0},
    )
    patch_dataset.write_manifest(manifest, output)
    return read_manifest(output)


def _location(
    identifier: int,
    split: str,
    col: int,
    row: int,
    size: int,
    patch: dict[str, np.ndarray],
    first: dict[str, _Source],
) -> dict[str, object]:
    gap = patch["gap_mask"][0] == GAP if "gap_mask" in patch else None
    image_role = "target" if "target" in patch else "reference"
    image, nodata = patch[image_role], first[image_role].nodata
    valid = np.ones(image.shape[1:], dtype=bool) if nodata is None else (image != nodata).all(0)
    return {
        "id": identifier,
        "split": split,
        "col": col,
        "row": row,
        "x": col + size / 2,
        "y": row + size / 2,
        "gap_fraction": round(float(gap.mean()), 6) if gap is not None else 0.0,
        "valid_fraction": round(float(valid.mean()), 6),
    }


def _write_locations(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOCATION_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
