"""The patch dataset folder (docs/patch_dataset.md): its manifest, locations and arrays.

The contract between 'Extract patches' (which writes it through `write_manifest`) and the
training package (which reads it through `read_manifest`, `open_arrays`, `read_locations`).
Only numpy and the standard library: reading a dataset needs neither GDAL nor QGIS. Arrays are
opened memory-mapped, so no side holds a whole dataset in memory.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GapfillError
from ..learned.model_card import SCALING_KEYS, BandScaling

DATASET_FORMAT = "gapfill-patches"
DATASET_VERSION = 1
MANIFEST = "manifest.json"
LOCATIONS = "locations.csv"
SPLITS = ("train", "validation")
ROLES = ("target", "gap_mask", "sar", "optical_before", "optical_after", "dem", "reference")
LOCATION_COLUMNS = ("id", "split", "col", "row", "x", "y", "gap_fraction", "valid_fraction")
MANIFEST_KEYS = (
    "format", "version", "patch_size", "crs", "geotransform", "pixel_size", "splits",
    "split_method", "seed", "roles", "skipped",
)
ROLE_KEYS = ("source", "bands", "dtype", "nodata", "scaling")


class PatchDatasetError(GapfillError):
    """A folder is not a readable patch dataset; the message says what is wrong."""


def scaling_to_list(scaling: Sequence[BandScaling]) -> list[dict[str, Any]]:
    """The model card's JSON form of a scaling, one object per band."""
    return [{key: getattr(item, key) for key in SCALING_KEYS} for item in scaling]


def scaling_from_list(items: Sequence[dict[str, Any]]) -> tuple[BandScaling, ...]:
    """Inverse of `scaling_to_list`; unknown keys are refused (typos)."""
    scalings = []
    for item in items:
        unknown = set(item) - set(SCALING_KEYS)
        if unknown:
            raise ValueError(f"unknown scaling keys {', '.join(sorted(unknown))}")
        scalings.append(BandScaling(**item))
    return tuple(scalings)


def nodata_to_json(nodata: float | None) -> float | str | None:
    """JSON has no NaN: a NaN no-data value (float rasters) is written as the text "nan"."""
    return "nan" if nodata is not None and math.isnan(nodata) else nodata


@dataclass(frozen=True)
class RoleInfo:
    """One role's arrays: where they come from, their bands, type, no-data and scaling."""

    source: str
    bands: tuple[str, ...]
    dtype: np.dtype
    nodata: float | None = None
    scaling: tuple[BandScaling, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "bands": list(self.bands),
            "dtype": self.dtype.name,
            "nodata": nodata_to_json(self.nodata),
            "scaling": None if self.scaling is None else scaling_to_list(self.scaling),
        }


@dataclass(frozen=True)
class Manifest:
    """What a dataset folder holds (see docs/patch_dataset.md for every key)."""

    patch_size: int
    crs: str
    geotransform: tuple[float, ...]
    pixel_size: tuple[float, float]
    splits: dict[str, int]
    split_method: str
    roles: dict[str, RoleInfo]
    seed: int | None = None
    skipped: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": DATASET_FORMAT,
            "version": DATASET_VERSION,
            "patch_size": self.patch_size,
            "crs": self.crs,
            "geotransform": list(self.geotransform),
            "pixel_size": list(self.pixel_size),
            "splits": dict(self.splits),
            "split_method": self.split_method,
            "seed": self.seed,
            "roles": {name: info.to_dict() for name, info in self.roles.items()},
            "skipped": dict(self.skipped),
        }

    def shape(self, split: str, role: str) -> tuple[int, int, int, int]:
        """N × bands × H × W of a role's array in a split."""
        size = self.patch_size
        return self.splits[split], len(self.roles[role].bands), size, size


def array_path(folder: str | Path, split: str, role: str) -> Path:
    return Path(folder) / split / f"{role}.npy"


def write_manifest(manifest: Manifest, folder: str | Path) -> Path:
    path = Path(folder) / MANIFEST
    path.write_text(json.dumps(manifest.to_dict(), indent=2, allow_nan=False))
    return path


# ---------------------------------------------------------------- reading


def _require(document: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in document:
        raise PatchDatasetError(f"{where}: '{key}' is missing")
    value = document[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise PatchDatasetError(f"{where}: '{key}' has the wrong type ({json.dumps(value)[:40]})")
    return value


def _role(name: str, document: Any, where: str) -> RoleInfo:
    if name not in ROLES:
        raise PatchDatasetError(f"{where}: unknown role '{name}' (roles: {', '.join(ROLES)})")
    if not isinstance(document, dict):
        raise PatchDatasetError(f"{where}: role '{name}' must be an object")
    here = f"{where}, role '{name}'"
    bands = _require(document, "bands", list, here)
    try:
        dtype = np.dtype(_require(document, "dtype", str, here))
        scaling = document.get("scaling")
        scaling = None if scaling is None else scaling_from_list(scaling)
    except (TypeError, ValueError) as error:
        raise PatchDatasetError(f"{here}: {error}") from error
    if scaling is not None and len(scaling) != len(bands):
        raise PatchDatasetError(f"{here}: {len(scaling)} scalings for {len(bands)} bands")
    nodata = document.get("nodata")
    if nodata == "nan":
        nodata = math.nan
    if nodata is not None and (isinstance(nodata, bool) or not isinstance(nodata, (int, float))):
        raise PatchDatasetError(f"{here}: 'nodata' must be a number, \"nan\" or null")
    return RoleInfo(
        source=str(document.get("source", "")),
        bands=tuple(str(b) for b in bands),
        dtype=dtype,
        nodata=None if nodata is None else float(nodata),
        scaling=scaling,
    )


def read_manifest(folder: str | Path) -> Manifest:
    """Read and check a dataset's manifest (not its arrays: see `validate_dataset`)."""
    path = Path(folder) / MANIFEST
    where = f"The patch dataset manifest '{path}'"
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise PatchDatasetError(
            f"'{folder}' is not a patch dataset: it has no {MANIFEST}. Make one with "
            "'Extract patches'."
        ) from error
    except (OSError, json.JSONDecodeError) as error:
        raise PatchDatasetError(f"{where} cannot be read ({error}).") from error
    if not isinstance(document, dict) or document.get("format") != DATASET_FORMAT:
        raise PatchDatasetError(f"{where} is not a '{DATASET_FORMAT}' manifest.")
    version = document.get("version")
    if version != DATASET_VERSION:
        raise PatchDatasetError(
            f"{where} has version {version}; this version of Gapfill reads version "
            f"{DATASET_VERSION}. Extract the patches again, or update Gapfill."
        )
    missing = [key for key in MANIFEST_KEYS if key not in document]
    if missing:
        raise PatchDatasetError(f"{where} lacks {', '.join(missing)}.")
    splits = _require(document, "splits", dict, where)
    if set(splits) != set(SPLITS) or not all(
        isinstance(n, int) and n >= 0 for n in splits.values()
    ):
        raise PatchDatasetError(f"{where}: 'splits' must give a count for each of {SPLITS}.")
    roles = {
        name: _role(name, item, where)
        for name, item in _require(document, "roles", dict, where).items()
    }
    if "target" not in roles:
        raise PatchDatasetError(f"{where} has no 'target' role.")
    patch_size = _require(document, "patch_size", int, where)
    if patch_size < 1:
        raise PatchDatasetError(f"{where}: 'patch_size' must be at least 1.")
    return Manifest(
        patch_size=patch_size,
        crs=str(document["crs"] or ""),
        geotransform=tuple(float(v) for v in _require(document, "geotransform", list, where)),
        pixel_size=tuple(float(v) for v in _require(document, "pixel_size", list, where)),
        splits={split: splits[split] for split in SPLITS},
        split_method=str(document["split_method"]),
        roles=roles,
        seed=document["seed"],
        skipped={str(k): int(v) for k, v in _require(document, "skipped", dict, where).items()},
    )


def open_arrays(
    folder: str | Path, split: str, manifest: Manifest | None = None
) -> dict[str, np.ndarray]:
    """Every role's array of a split, memory-mapped read-only, checked against the manifest."""
    manifest = manifest or read_manifest(folder)
    if split not in SPLITS:
        raise PatchDatasetError(f"Unknown split '{split}'; the splits are {', '.join(SPLITS)}.")
    arrays = {}
    for role, info in manifest.roles.items():
        path = array_path(folder, split, role)
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise PatchDatasetError(
                f"The {split} array of role '{role}' ('{path}') cannot be read ({error})."
            ) from error
        expected = manifest.shape(split, role)
        if array.shape != expected or array.dtype != info.dtype:
            raise PatchDatasetError(
                f"'{path}' holds {array.dtype.name} {array.shape}; the manifest says "
                f"{info.dtype.name} {expected}. The dataset is damaged: extract it again."
            )
        arrays[role] = array
    return arrays


def _number(text: str) -> float:
    return float(text) if text != "" else math.nan


def read_locations(folder: str | Path) -> dict[str, list[dict[str, Any]]]:
    """The rows of locations.csv by split, in array order (row i = patch i of the split)."""
    path = Path(folder) / LOCATIONS
    result: dict[str, list[dict[str, Any]]] = {split: [] for split in SPLITS}
    try:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != LOCATION_COLUMNS:
                raise PatchDatasetError(
                    f"'{path}' has the columns {reader.fieldnames}, not {list(LOCATION_COLUMNS)}."
                )
            for row in reader:
                if row["split"] not in result:
                    raise PatchDatasetError(f"'{path}': unknown split '{row['split']}'.")
                result[row["split"]].append(
                    {
                        "id": int(row["id"]),
                        "split": row["split"],
                        "col": int(row["col"]),
                        "row": int(row["row"]),
                        "x": float(row["x"]),
                        "y": float(row["y"]),
                        "gap_fraction": _number(row["gap_fraction"]),
                        "valid_fraction": _number(row["valid_fraction"]),
                    }
                )
    except OSError as error:
        raise PatchDatasetError(f"'{path}' cannot be read ({error.strerror}).") from error
    except (KeyError, ValueError) as error:
        raise PatchDatasetError(f"'{path}' is malformed ({error}).") from error
    return result


def validate_dataset(folder: str | Path) -> Manifest:
    """Check the manifest, every array and the locations agree; return the manifest."""
    manifest = read_manifest(folder)
    locations = read_locations(folder)
    for split in SPLITS:
        open_arrays(folder, split, manifest)
        if len(locations[split]) != manifest.splits[split]:
            raise PatchDatasetError(
                f"'{Path(folder) / LOCATIONS}' lists {len(locations[split])} {split} patches; "
                f"the manifest says {manifest.splits[split]}."
            )
    return manifest
