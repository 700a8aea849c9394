"""Patch datasets (docs/patch_dataset.md) as training samples: roles → scaled arrays.

A dataset folder holds `manifest.json` and one `<split>/<role>.npy` array per role, read through
memory maps. A sample is a dict of float32 arrays, which torch's default collate turns into
tensors (no torch import here, so `evaluate` runs ONNX models without torch):

- `inputs`: role → (bands, h, w), scaled as the model card will say, no data → 0 (as the fill
  engine feeds it); the `gap_mask` input is 1 = gap, 0 = clear;
- `reference`: (bands, h, w) the truth the network learns, in the output's scaling;
- `cloudy`: the scaled target (the cloudy input `I` of CARL), zeros when there is no target;
- `gap`: (1, h, w) 1 = gap pixel (cloud, no data, or simulated gap);
- `known`: (1, h, w) 1 = the reference is known there (losses use only these pixels);
- `evaluate`: (1, h, w) gap pixels whose truth is known: where validation metrics are measured.

Supervised datasets carry a `reference` role (the clear image) next to a cloudy `target`. When
there is none, the targets are taken as clear, and gaps are simulated on them from real
cloud-mask shapes (`CloudShapes`): those pixels are removed from the target input (no data, as
the Simulate gaps algorithm writes them) and become the evaluated gaps. Augmentation (flips and
rotations by 90°) transforms every role and mask of a sample the same way. Randomness comes from
a generator seeded by (seed, epoch, index), so a sample does not depend on worker processes,
and a resumed run sees the same samples as an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import GapfillError
from ..core.learned.model_card import BandScaling
from ..core.learned.scaling import scale_bands
from ..core.prepare import patch_dataset
from ..core.prepare.patch_dataset import SPLITS, RoleInfo

INPUT_ROLES = ("target", "gap_mask", "sar", "optical_before", "optical_after", "dem")
OPTICAL_ROLES = ("target", "reference", "optical_before", "optical_after")
DATASET_ROLES = (*INPUT_ROLES, "reference")
GAP, CLEAR, MASK_NODATA = 1, 0, 255
REFLECTANCE = BandScaling(scale=1e-4, clip_min=0.0, clip_max=10000.0)
SAR_DB = BandScaling(offset=-25.0, scale=0.04, clip_min=-25.0, clip_max=0.0)


class DatasetNotFoundError(FileNotFoundError):
    """The folder has no patch dataset (no manifest.json)."""


class DatasetError(GapfillError):
    """A patch dataset that cannot be used as it is, or does not fit the asked training."""


# ---------------------------------------------------------------- manifest


@dataclass(frozen=True)
class Manifest:
    """A dataset folder's manifest (read by `core.prepare.patch_dataset`), with its folder."""

    folder: Path
    contract: patch_dataset.Manifest

    @property
    def patch_size(self) -> int:
        return self.contract.patch_size

    @property
    def splits(self) -> dict[str, int]:
        return self.contract.splits

    @property
    def roles(self) -> dict[str, RoleInfo]:
        return self.contract.roles

    @property
    def split_method(self) -> str:
        return self.contract.split_method

    @property
    def seed(self) -> int | None:
        return self.contract.seed

    def arrays(self, split: str) -> dict[str, np.ndarray]:
        """Every role's (patches, bands, size, size) array of a split, memory-mapped."""
        return patch_dataset.open_arrays(self.folder, split, self.contract)

    def describe(self) -> str:
        splits = ", ".join(f"{count} {split}" for split, count in self.splits.items())
        lines = [
            f"Patch dataset '{self.folder}': {splits} patches of {self.patch_size} px "
            f"({self.split_method} split, seed {self.seed})",
        ]
        for name, info in self.roles.items():
            scaling = "raw values" if info.scaling is None else "scaled float32"
            lines.append(
                f"  {name}: {len(info.bands)} band(s) {', '.join(info.bands)}; "
                f"{info.dtype.name}, no data {info.nodata}; {scaling}; from "
                f"{info.source or 'unknown'}"
            )
        return "\n".join(lines)


def read_manifest(folder: str | Path) -> Manifest:
    """Read and check a dataset folder's manifest; clear errors name what to fix."""
    folder = Path(folder)
    if not (folder / patch_dataset.MANIFEST).is_file():
        raise DatasetNotFoundError(
            f"No patch dataset in '{folder}': it has no {patch_dataset.MANIFEST}. Extract "
            "patches with the 'Extract patches' algorithm, or write a dataset with the "
            "command line `gapfill train make-dataset`."
        )
    manifest = Manifest(folder, patch_dataset.read_manifest(folder))
    roles, where = manifest.roles, f"The dataset '{folder}'"
    if "gap_mask" in roles and len(roles["gap_mask"].bands) != 1:
        raise DatasetError(f"{where}: the gap_mask role must have exactly one band.")
    if "reference" in roles and roles["reference"].bands != roles["target"].bands:
        raise DatasetError(
            f"{where}: the reference bands ({', '.join(roles['reference'].bands)}) differ from "
            f"the target bands ({', '.join(roles['target'].bands)})."
        )
    return manifest


# ---------------------------------------------------------------- scaling


def truth_role(manifest: Manifest) -> str:
    """The role holding what the network learns to produce: the reference, else the target."""
    return "reference" if "reference" in manifest.roles else "target"


def _sample(manifest: Manifest, role: str, count: int = 64) -> np.ndarray:
    """Raw values of up to `count` training patches (validation when training is empty), no
    data as NaN, for choosing a default scaling."""
    split = "train" if manifest.splits["train"] else "validation"
    array = manifest.arrays(split)[role]
    values = np.asarray(array[: min(count, array.shape[0])], dtype=np.float64)
    nodata = manifest.roles[role].nodata
    if nodata is not None:
        values[values == nodata] = np.nan
    return values


def default_scaling(manifest: Manifest, role: str) -> tuple[BandScaling, ...]:
    """The scaling of a role whose arrays hold raw values, chosen from its role and values:

    - `gap_mask`: as is (the engine feeds 1 = gap, 0 = clear);
    - optical roles: Sentinel-2 digital numbers / 10000, clipped to [0, 10000] (reflectance in
      [0, 1]); float values already in [0, ~1] (reflectance) clipped to [0, 1];
    - `sar`: backscatter in dB clipped to [-25, 0] and mapped to [0, 1] (from linear values
      through 10·log10 when no value is negative);
    - anything else (DEM): centred on its mean and divided by its standard deviation.
    """
    info = manifest.roles[role]
    bands = len(info.bands)
    if role == "gap_mask":
        return (BandScaling(),)
    values = _sample(manifest, role)
    finite = values[np.isfinite(values)]
    if role in OPTICAL_ROLES:
        is_float = np.issubdtype(info.dtype, np.floating)
        if is_float and finite.size and np.percentile(finite, 99) <= 2.0:
            return (BandScaling(clip_min=0.0, clip_max=1.0),) * bands
        return (REFLECTANCE,) * bands
    if role == "sar":
        linear = bool(finite.size > 0 and finite.min() >= 0)
        return (BandScaling(db=linear, offset=-25.0, scale=0.04, clip_min=-25.0, clip_max=0.0),) * (
            bands
        )
    scalings = []
    for band in range(bands):
        band_values = values[:, band]
        band_values = band_values[np.isfinite(band_values)]
        mean = float(band_values.mean()) if band_values.size else 0.0
        std = float(band_values.std()) if band_values.size else 1.0
        scalings.append(BandScaling(offset=_round(mean), scale=_round(1.0 / max(std, 1e-6))))
    return tuple(scalings)


def _round(value: float, digits: int = 4) -> float:
    """`value` to a few significant digits, for readable cards."""
    if value == 0 or not math.isfinite(value):
        return 0.0
    return float(f"{value:.{digits}g}")


def role_scalings(manifest: Manifest, roles: Sequence[str]) -> dict[str, tuple[BandScaling, ...]]:
    """The scaling of each role: the manifest's when its arrays are scaled, else the default.
    The gap mask, always available (see `available_roles`), is fed as it is."""
    return {
        role: (BandScaling(),)
        if role == "gap_mask"
        else manifest.roles[role].scaling or default_scaling(manifest, role)
        for role in roles
    }


def available_roles(manifest: Manifest) -> list[str]:
    """Input roles a network can take from this dataset: its roles, and the gap mask always
    (from the dataset's gap_mask role, the target's no data, or the simulated gaps)."""
    return [role for role in INPUT_ROLES if role in manifest.roles or role == "gap_mask"]


def role_bands(manifest: Manifest, role: str) -> tuple[str, ...]:
    if role == "gap_mask" and role not in manifest.roles:
        return ("gap",)
    return manifest.roles[role].bands


# ---------------------------------------------------------------- cloud shapes


@dataclass(frozen=True)
class CloudMaskSpec:
    """A cloud-mask raster and the values that mean cloud (or shadow) in it."""

    path: str
    values: tuple[float, ...] = (1.0,)

    @classmethod
    def parse(cls, text: str) -> CloudMaskSpec:
        """'mask.tif' (1 = cloud) or 'labels.tif:0,4' (values 0 and 4 are gaps)."""
        path, _, values = text.rpartition(":") if ":" in Path(text).name else (text, "", "")
        if not values:
            return cls(text)
        try:
            return cls(path, tuple(float(value) for value in values.split(",") if value))
        except ValueError:
            raise DatasetError(
                f"The cloud mask '{text}' is not PATH or PATH:values (e.g. labels.tif:0,4)."
            ) from None


def read_mask_bands(spec: CloudMaskSpec) -> list[np.ndarray]:
    """Each band of a cloud-mask raster (GeoTIFF through GDAL, or .npy) as a bool array."""
    path = Path(spec.path)
    if not path.is_file():
        raise DatasetNotFoundError(f"The cloud-mask file '{path}' does not exist.")
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)  # a pickle could run code: never loaded
        except (OSError, ValueError) as error:
            raise DatasetError(
                f"The cloud-mask file '{path}' is not a plain numeric .npy array ({error}). "
                "Pickled arrays are refused for safety: save a numeric array with numpy.save, "
                "or give a GeoTIFF."
            ) from error
    else:
        from ..core.raster.access import open_raster, read_bands

        dataset = open_raster(path, "cloud mask")
        array = read_bands(dataset, (0, 0, dataset.RasterXSize, dataset.RasterYSize))
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim != 3:
        raise DatasetError(f"The cloud mask '{path}' must be (bands, rows, columns).")
    return [np.isin(band, spec.values) for band in array]


class CloudShapes:
    """Real cloud-mask shapes (bands of cloud-mask rasters), loaded once, cut into patch-sized
    gap masks: a random mask, a random window (mirrored when the mask is smaller than the
    patch), a random flip and rotation, with a cover fraction within `cover` when possible."""

    def __init__(self, masks: Sequence[np.ndarray], cover: tuple[float, float] = (0.05, 0.6)):
        low, high = cover
        if not 0 <= low < high <= 1:
            raise DatasetError(f"The simulated gap cover {cover} must be 0 ≤ low < high ≤ 1.")
        usable = [mask for mask in masks if mask.any() and mask.mean() >= low / 4]
        if not usable:
            raise DatasetError(
                "The cloud masks hold no usable cloud shape (every mask is clear); give masks of "
                "cloudy dates."
            )
        self.masks = usable
        self.cover = (low, high)

    @classmethod
    def from_specs(
        cls, specs: Sequence[str | CloudMaskSpec], cover: tuple[float, float] = (0.05, 0.6)
    ) -> CloudShapes:
        masks = []
        for spec in specs:
            spec = spec if isinstance(spec, CloudMaskSpec) else CloudMaskSpec.parse(spec)
            masks += read_mask_bands(spec)
        return cls(masks, cover)

    def sample(self, rng: np.random.Generator, size: int, attempts: int = 20) -> np.ndarray:
        """A (size, size) bool gap mask."""
        low, high = self.cover
        best, best_distance = None, math.inf
        for _ in range(attempts):
            mask = self.masks[rng.integers(len(self.masks))]
            rows, columns = mask.shape
            pad_rows, pad_columns = max(0, size - rows), max(0, size - columns)
            if pad_rows or pad_columns:
                mask = np.pad(mask, ((0, pad_rows), (0, pad_columns)), mode="symmetric")
            top = rng.integers(mask.shape[0] - size + 1)
            left = rng.integers(mask.shape[1] - size + 1)
            window = mask[top : top + size, left : left + size]
            window = np.rot90(window, int(rng.integers(4)))
            if rng.integers(2):
                window = window[:, ::-1]
            fraction = float(window.mean())
            distance = max(low - fraction, fraction - high, 0.0)
            if distance < best_distance:
                best, best_distance = window, distance
            if distance == 0:
                break
        return np.ascontiguousarray(best)


# ---------------------------------------------------------------- samples


def _augment(array: np.ndarray, rotation: int, flip: bool) -> np.ndarray:
    array = np.rot90(array, rotation, axes=(-2, -1))
    return array[..., ::-1] if flip else array


class PatchDataset:
    """A split of a patch dataset as training samples (see the module docstring).

    `input_roles`: the network's input roles; `scalings`: role → per-band scaling for every
    input role and for `output` (the truth); `size`: crop the patches to this size (random
    window when augmenting, centred otherwise); `shapes`: simulate gaps with these cloud
    shapes; `limit`: use only the first patches.
    """

    def __init__(
        self,
        manifest: Manifest,
        split: str,
        input_roles: Sequence[str],
        scalings: Mapping[str, Sequence[BandScaling]],
        *,
        size: int | None = None,
        augment: bool = False,
        shapes: CloudShapes | None = None,
        seed: int = 0,
        limit: int = 0,
    ) -> None:
        if split not in SPLITS:
            raise DatasetError(f"Unknown split '{split}': use {' or '.join(SPLITS)}.")
        missing = [role for role in input_roles if role not in available_roles(manifest)]
        if missing:
            raise DatasetError(
                f"The dataset '{manifest.folder}' has no role {', '.join(missing)} (it has "
                f"{', '.join(manifest.roles)})."
            )
        self.manifest = manifest
        self.split = split
        self.input_roles = tuple(input_roles)
        self.truth = truth_role(manifest)
        self.scalings = {role: tuple(value) for role, value in scalings.items()}
        self.size = size or manifest.patch_size
        if not 0 < self.size <= manifest.patch_size:
            raise DatasetError(
                f"Cannot cut {self.size} px samples from {manifest.patch_size} px patches."
            )
        self.augment = augment
        self.shapes = shapes
        self.seed = seed
        self.epoch = 0
        count = manifest.splits[split]
        self.length = min(count, limit) if limit > 0 else count
        self._arrays: dict[str, np.ndarray] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Training samples change with the epoch (augmentation, simulated gaps)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __getstate__(self) -> dict[str, Any]:  # memory maps are reopened in worker processes
        return {**self.__dict__, "_arrays": None}

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            self._arrays = self.manifest.arrays(self.split)
        return self._arrays

    @property
    def output_bands(self) -> tuple[str, ...]:
        return self.manifest.roles[self.truth].bands

    def _raw(self, role: str, index: int, window: tuple[slice, slice]) -> np.ndarray:
        """Raw values of a role in a patch window as float32, no data as NaN."""
        info = self.manifest.roles[role]
        values = np.array(self.arrays[role][index][(slice(None), *window)], dtype=np.float32)
        if info.nodata is not None and role != "gap_mask":
            values[values == np.float32(info.nodata)] = np.nan
        return values

    def _scale(self, role: str, values: np.ndarray) -> np.ndarray:
        """Network values of a role; arrays stored scaled are used as they are. The target,
        when it is no input (only CARL's cloudy image), is scaled like the output."""
        if self.manifest.roles[role].scaling is None:
            scaling = self.scalings.get(role) or self.scalings[self.truth]
            values = scale_bands(values, scaling)
        return np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        split_key = SPLITS.index(self.split)
        epoch = self.epoch if self.split == "train" else 0
        rng = np.random.default_rng([self.seed, split_key, epoch, index])
        excess = self.manifest.patch_size - self.size
        if self.augment and excess:
            top, left = int(rng.integers(excess + 1)), int(rng.integers(excess + 1))
        else:
            top = left = excess // 2
        window = (slice(top, top + self.size), slice(left, left + self.size))
        truth = self._raw(self.truth, index, window)
        known = np.isfinite(truth).all(axis=0)
        target = self._raw("target", index, window) if "target" in self.manifest.roles else None
        gap = np.zeros(known.shape, dtype=bool)
        if "gap_mask" in self.manifest.roles:
            mask = self._raw("gap_mask", index, window)[0]
            gap |= (mask == GAP) | (mask == MASK_NODATA)
        if target is not None:  # as the fill engine: the target's no data is a gap too
            gap |= ~np.isfinite(target).all(axis=0)
        supervised = self.truth == "reference"
        if not supervised:
            known &= ~gap  # the real gaps of a clear target have no truth
        evaluate = gap & known if supervised else np.zeros_like(gap)
        if self.shapes is not None:
            simulated = self.shapes.sample(rng, self.size)
            gap = gap | simulated
            evaluate |= simulated & known
            if target is not None:
                target[:, simulated] = np.nan
        inputs = {}
        for role in self.input_roles:
            if role == "gap_mask":
                inputs[role] = gap[np.newaxis].astype(np.float32)
            elif role == "target":
                inputs[role] = self._scale(role, target)
            else:
                inputs[role] = self._scale(role, self._raw(role, index, window))
        sample = {
            "inputs": inputs,
            "reference": self._scale(self.truth, truth),
            "cloudy": (
                self._scale("target", target)
                if target is not None
                else np.zeros((len(self.output_bands), self.size, self.size), np.float32)
            ),
            "gap": gap[np.newaxis].astype(np.float32),
            "known": known[np.newaxis].astype(np.float32),
            "evaluate": evaluate[np.newaxis].astype(np.float32),
        }
        if self.augment:
            rotation, flip = int(rng.integers(4)), bool(rng.integers(2))
            sample = _map_arrays(
                sample, lambda a: np.ascontiguousarray(_augment(a, rotation, flip))
            )
        return sample


def _map_arrays(sample: Any, function: Any) -> Any:
    if isinstance(sample, dict):
        return {key: _map_arrays(value, function) for key, value in sample.items()}
    return function(sample)
