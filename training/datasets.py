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

import dataclasses
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
DN_RANGE, REFLECTANCE_RANGE = (0.0, 10000.0), (0.0, 1.0)  # clip bounds of optical values
SAR_DB_RANGE = (-50.0, 10.0)  # clip bounds of backscatter in dB (water reaches -35 dB)
STATISTICS_PATCHES = 256  # patches, spread over the split, whose values choose a scaling


class DatasetError(GapfillError):
    """A patch dataset that cannot be used as it is, or does not fit the asked training."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The folder has no patch dataset (no manifest.json)."""


# ---------------------------------------------------------------- manifest


class StackedRows:
    """The arrays of one role and split of several datasets, read as one: row `i` of the
    first, then of the next (memory maps stay memory maps until a row is read)."""

    def __init__(self, parts: Sequence[np.ndarray]) -> None:
        self.parts = list(parts)
        self.starts = np.cumsum([0] + [part.shape[0] for part in self.parts])
        self.shape = (int(self.starts[-1]), *self.parts[0].shape[1:])
        self.dtype = self.parts[0].dtype

    def __len__(self) -> int:
        return self.shape[0]

    def _row(self, index: int) -> np.ndarray:
        if not -self.shape[0] <= index < self.shape[0]:
            raise IndexError(index)
        index %= self.shape[0]
        part = int(np.searchsorted(self.starts, index, side="right")) - 1
        return self.parts[part][index - self.starts[part]]

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self._row(int(key))
        indices = np.arange(self.shape[0])[key]
        if not len(indices):
            return np.empty((0, *self.shape[1:]), dtype=self.dtype)
        return np.stack([self._row(int(index)) for index in indices])


@dataclass(frozen=True)
class Manifest:
    """The manifest of one dataset folder, or of several read as one (the patches of several
    scenes: one folder per scene, as 'Extract patches' writes them), with their folders."""

    folders: tuple[Path, ...]
    contracts: tuple[patch_dataset.Manifest, ...]

    @property
    def folder(self) -> Path:
        """The first folder (messages name the dataset by it)."""
        return self.folders[0]

    @property
    def name(self) -> str:
        return " + ".join(folder.name for folder in self.folders)

    @property
    def where(self) -> str:
        """The dataset's folder(s), quoted, for messages."""
        return ", ".join(f"'{folder}'" for folder in self.folders)

    @property
    def patch_size(self) -> int:
        return self.contracts[0].patch_size

    @property
    def splits(self) -> dict[str, int]:
        return {
            split: sum(contract.splits[split] for contract in self.contracts) for split in SPLITS
        }

    @property
    def roles(self) -> dict[str, RoleInfo]:
        first = self.contracts[0].roles
        return {
            name: dataclasses.replace(
                info, source="; ".join(c.roles[name].source for c in self.contracts)
            )
            for name, info in first.items()
        }

    @property
    def split_method(self) -> str:
        return "; ".join(dict.fromkeys(contract.split_method for contract in self.contracts))

    @property
    def seed(self) -> int | None:
        return self.contracts[0].seed

    def arrays(self, split: str) -> dict[str, Any]:
        """Every role's (patches, bands, size, size) array of a split, memory-mapped."""
        parts = [
            patch_dataset.open_arrays(folder, split, contract)
            for folder, contract in zip(self.folders, self.contracts, strict=True)
        ]
        if len(parts) == 1:
            return parts[0]
        return {role: StackedRows([part[role] for part in parts]) for role in parts[0]}

    def describe(self) -> str:
        splits = ", ".join(f"{count} {split}" for split, count in self.splits.items())
        lines = [
            f"Patch dataset {self.where}: {splits} patches of {self.patch_size} px "
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


def _read_one(folder: Path) -> patch_dataset.Manifest:
    if not (folder / patch_dataset.MANIFEST).is_file():
        raise DatasetNotFoundError(
            f"No patch dataset in '{folder}': it has no {patch_dataset.MANIFEST}. Extract "
            "patches with the 'Extract patches' algorithm, or write a dataset with the "
            "command line `gapfill train make-dataset`."
        )
    contract = patch_dataset.read_manifest(folder)
    roles, where = contract.roles, f"The dataset '{folder}'"
    if "gap_mask" in roles and len(roles["gap_mask"].bands) != 1:
        raise DatasetError(f"{where}: the gap_mask role must have exactly one band.")
    if "reference" in roles and roles["reference"].bands != roles["target"].bands:
        raise DatasetError(
            f"{where}: the reference bands ({', '.join(roles['reference'].bands)}) differ from "
            f"the target bands ({', '.join(roles['target'].bands)})."
        )
    return contract


def read_manifest(folders: str | Path | Sequence[str | Path]) -> Manifest:
    """Read and check one dataset folder, or several to be read as one (a folder or its
    manifest.json each); they must hold the same roles, bands, types and patch size."""
    if isinstance(folders, (str, Path)):
        folders = [folders]
    paths = tuple(
        path.parent if path.name == patch_dataset.MANIFEST else path
        for path in (Path(folder) for folder in folders)
    )
    if not paths:
        raise DatasetNotFoundError("No patch dataset given: give a dataset folder.")
    contracts = tuple(_read_one(path) for path in paths)
    first = contracts[0]
    for path, contract in zip(paths[1:], contracts[1:], strict=True):
        problem = _difference(first, contract)
        if problem:
            raise DatasetError(
                f"The datasets '{paths[0]}' and '{path}' cannot be read as one: {problem}. "
                "Extract the patches of every scene with the same layers (roles, bands, data "
                "types) and the same patch size."
            )
    return Manifest(paths, contracts)


def _difference(first: patch_dataset.Manifest, other: patch_dataset.Manifest) -> str:
    """What keeps two dataset folders from being read as one ('' when nothing)."""
    if other.patch_size != first.patch_size:
        return f"patches of {first.patch_size} px and of {other.patch_size} px"
    if set(other.roles) != set(first.roles):
        return f"roles {', '.join(first.roles)} and {', '.join(other.roles)}"
    for name, info in first.roles.items():
        theirs = other.roles[name]
        if (info.bands, info.dtype, info.scaling) != (theirs.bands, theirs.dtype, theirs.scaling):
            return f"the {name} role has other bands, data type or scaling"
        same_nodata = info.nodata == theirs.nodata or (
            info.nodata is not None
            and theirs.nodata is not None
            and math.isnan(info.nodata)
            and math.isnan(theirs.nodata)
        )
        if not same_nodata:
            return f"the {name} role has the no-data values {info.nodata} and {theirs.nodata}"
    return ""


# ---------------------------------------------------------------- scaling


def truth_role(manifest: Manifest) -> str:
    """The role holding what the network learns to produce: the reference, else the target."""
    return "reference" if "reference" in manifest.roles else "target"


def _sample(manifest: Manifest, role: str, count: int = STATISTICS_PATCHES) -> np.ndarray:
    """Raw values of up to `count` training patches spread over the split (validation when
    training is empty), no data as NaN, for choosing a default scaling."""
    split = "train" if manifest.splits["train"] else "validation"
    array = manifest.arrays(split)[role]
    rows = np.unique(np.linspace(0, array.shape[0] - 1, min(count, array.shape[0])).astype(int))
    step = max(1, manifest.patch_size // 32)  # about 32 × 32 pixels of each patch
    values = np.stack([np.asarray(array[row][:, ::step, ::step], np.float64) for row in rows])
    nodata = manifest.roles[role].nodata
    if nodata is not None:
        values[values == nodata] = np.nan
    return values


def _round(value: float, digits: int = 4) -> float:
    """`value` to a few significant digits, for readable cards."""
    if value == 0 or not math.isfinite(value):
        return 0.0
    return float(f"{value:.{digits}g}")


def centred_scaling(
    values: np.ndarray, clip: tuple[float, float], *, db: bool = False, floor: float
) -> tuple[BandScaling, ...]:
    """Per band: clipped to `clip`, minus the band's mean, times one scale shared by the
    bands (1 / the pooled standard deviation, at least `floor` apart): 0 is each band's mean
    and the bands keep their relative weights (an L1 loss weighs them as the metrics do)."""
    values = np.clip(values, *clip)
    bands = values.shape[1]
    means, variances = [], []
    for band in range(bands):
        finite = values[:, band][np.isfinite(values[:, band])]
        means.append(float(finite.mean()) if finite.size else 0.5 * (clip[0] + clip[1]))
        variances.append(float(finite.var()) if finite.size else 0.0)
    pooled = max(math.sqrt(sum(variances) / bands), floor)
    scale = _round(1.0 / pooled)
    return tuple(
        BandScaling(offset=_round(mean), scale=scale, db=db, clip_min=clip[0], clip_max=clip[1])
        for mean in means
    )


def default_scaling(manifest: Manifest, role: str) -> tuple[BandScaling, ...]:
    """The scaling of a role whose arrays hold raw values, chosen from its role and values:

    - `gap_mask`: as is (the engine feeds 1 = gap, 0 = clear);
    - optical roles: clipped to [0, 10000] (Sentinel-2 digital numbers) or [0, 1] (float
      reflectance), centred on each band's mean, one scale for every band (`centred_scaling`);
      the roles with the truth's bands take the truth's scaling, so that the network's output
      and its optical inputs share their units (long skips, blends of dates);
    - `sar`: backscatter in dB (from linear values through 10·log10 when no value is
      negative), clipped to [-50, 10] dB, centred and scaled the same way;
    - anything else (DEM): centred on its mean and divided by its standard deviation.

    Why centred: a network's output starts near 0, so 0 must be a plausible value of every
    band. With reflectance itself as network units (DN / 10000), 0 is black: an untrained or
    briefly trained output band (its bias drawn at random in ±1/√fan-in, ±0.18 for width 32,
    more than most bands' reflectance) lay below 0 and was clipped to 0 DN, a dead band.
    """
    info = manifest.roles[role]
    bands = len(info.bands)
    if role == "gap_mask":
        return (BandScaling(),)
    truth = truth_role(manifest)
    if role in OPTICAL_ROLES and role != truth and info.bands == manifest.roles[truth].bands:
        return default_scaling(manifest, truth)
    values = _sample(manifest, role)
    finite = values[np.isfinite(values)]
    if not finite.size:
        raise DatasetError(
            f"The {role} patches of the dataset hold no value (all of the {len(values)} patches "
            "looked at are no-data or NaN): a model would learn nothing from that role. Extract "
            "patches where the layer has data, or train without that role."
        )
    if role in OPTICAL_ROLES:
        is_float = np.issubdtype(info.dtype, np.floating)
        if is_float and finite.size and np.percentile(finite, 99) <= 2.0:
            return centred_scaling(values, REFLECTANCE_RANGE, floor=1e-3)
        return centred_scaling(values, DN_RANGE, floor=10.0)
    if role == "sar":
        linear = bool(finite.size > 0 and finite.min() >= 0)
        if linear:
            with np.errstate(divide="ignore", invalid="ignore"):
                values = np.where(values > 0, 10 * np.log10(values), np.nan)
        return centred_scaling(values, SAR_DB_RANGE, db=linear, floor=0.1)
    scalings = []
    for band in range(bands):
        band_values = values[:, band]
        band_values = band_values[np.isfinite(band_values)]
        mean = float(band_values.mean()) if band_values.size else 0.0
        std = float(band_values.std()) if band_values.size else 1.0
        scalings.append(BandScaling(offset=_round(mean), scale=_round(1.0 / max(std, 1e-6))))
    return tuple(scalings)


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
                "The cloud masks hold no usable cloud shape: in no band do enough pixels hold "
                "a value that means cloud (1, or the values given as PATH:values). Give masks "
                "of cloudy dates, or the values that mean cloud there (e.g. labels.tif:0,4)."
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

    @classmethod
    def of_dataset(
        cls, manifest: Manifest, cover: tuple[float, float] = (0.05, 0.6)
    ) -> CloudShapes | None:
        """The real gap masks of the dataset's training patches (its `gap_mask` role) as
        cloud shapes; None when it has no such role or no gap in it."""
        if "gap_mask" not in manifest.roles or not manifest.splits["train"]:
            return None
        array = manifest.arrays("train")["gap_mask"]
        count = array.shape[0]
        rows = np.unique(np.linspace(0, count - 1, min(count, STATISTICS_PATCHES)).astype(int))
        masks = [np.asarray(array[row][0]) == GAP for row in rows]
        try:
            return cls(masks, cover)
        except DatasetError:
            return None

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
    shapes; `limit`: use only the first patches; `samples`: draw at least this many samples
    per epoch (each patch again with its own crop, flips and gaps when the split is smaller);
    `clear_target`: pure gap filling, the protocol of the baseline verdict: the target input
    is the clear truth itself with only the simulated gaps removed (a supervised dataset's
    cloudy target and real gaps are left aside).
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
        samples: int = 0,
        clear_target: bool = False,
    ) -> None:
        if split not in SPLITS:
            raise DatasetError(f"Unknown split '{split}': use {' or '.join(SPLITS)}.")
        missing = [role for role in input_roles if role not in available_roles(manifest)]
        if missing:
            raise DatasetError(
                f"The dataset {manifest.where} has no role {', '.join(missing)} (it has "
                f"{', '.join(manifest.roles)})."
            )
        if clear_target and shapes is None:
            raise DatasetError("Pure gap filling lays simulated gaps: it needs cloud shapes.")
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
        self.clear_target = clear_target
        self.epoch = 0
        count = manifest.splits[split]
        self.patches = min(count, limit) if limit > 0 else count
        self.length = max(self.patches, samples) if self.patches else 0
        self._arrays: dict[str, Any] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Training samples change with the epoch (augmentation, simulated gaps)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __getstate__(self) -> dict[str, Any]:  # memory maps are reopened in worker processes
        return {**self.__dict__, "_arrays": None}

    @property
    def arrays(self) -> dict[str, Any]:
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
        seeds = [self.seed, split_key, epoch, index] + ([1] if self.clear_target else [])
        rng = np.random.default_rng(seeds)
        patch = index % self.patches
        excess = self.manifest.patch_size - self.size
        if self.augment and excess:
            top, left = int(rng.integers(excess + 1)), int(rng.integers(excess + 1))
        else:
            top = left = excess // 2
        window = (slice(top, top + self.size), slice(left, left + self.size))
        truth = self._raw(self.truth, patch, window)
        known = np.isfinite(truth).all(axis=0)
        if self.clear_target:
            target = truth.copy()
        elif "target" in self.manifest.roles:
            target = self._raw("target", patch, window)
        else:
            target = None
        gap = np.zeros(known.shape, dtype=bool)
        if "gap_mask" in self.manifest.roles and not self.clear_target:
            mask = self._raw("gap_mask", patch, window)[0]
            gap |= (mask == GAP) | (mask == MASK_NODATA)
        if target is not None:  # as the fill engine: the target's no data is a gap too
            gap |= ~np.isfinite(target).all(axis=0)
        supervised = self.truth == "reference" and not self.clear_target
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
                inputs[role] = self._scale(role, self._raw(role, patch, window))
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
