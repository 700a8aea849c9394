"""Cut patches out of co-registered rasters into a patch dataset folder (docs/patch_dataset.md).

Every role is read on the target's grid: a source on another grid is aligned on the fly
(nearest neighbour for the gap mask, bilinear for images). Patches are visited in row-major
order, so that GDAL's block cache serves neighbouring patches, and each role's window is read
once. Rows go to the `.npy` files through memory maps of a bounded number of rows at a time,
so memory does not grow with the number of patches. A patch that falls off the image or has
no data in some role is skipped and counted. The dataset is written in a folder beside the
destination and moved in only when complete: a failed or cancelled run leaves nothing.
"""

from __future__ import annotations

import csv
import math
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.lib import format as npy
from osgeo import gdal

from ..errors import GapfillError
from ..learned.model_card import ROLE_LABELS
from ..masks.gap_mask import OUTSIDE
from ..progress import CancelledFn, ProgressFn, check_cancelled, never_cancelled, no_progress
from ..raster.access import (
    Grid,
    Window,
    band_descriptions,
    nodata_value,
    numpy_dtype,
    open_raster,
    read_bands,
)
from ..raster.alignment import align_to_grid
from ..raster.fill_engine import check_mask
from ..raster.output import check_writable
from ..raster.validity import BandMasks
from ..raster.value_range import check_same_scale, sample_spread
from .patch_dataset import (
    LOCATION_COLUMNS,
    LOCATIONS,
    MANIFEST,
    ROLES,
    SPLITS,
    Manifest,
    RoleInfo,
    array_path,
    write_manifest,
)
from .patch_sampling import PatchPoint, corner_of, map_of
from .raster_scaling import raster_scaling_of

CHUNK_BYTES = 4 << 20  # rows mapped at a time, per array: bounds the memory the maps take
SPLIT_NAMES = {
    "train": "train", "training": "train",
    "validation": "validation", "valid": "validation", "val": "validation",
}
EXCLUDED = ("", "none", "exclude", "excluded", "skip", "null")


def normalise_split(value: object) -> str | None:
    """'train'/'training' → train, 'validation'/'valid'/'val' → validation, empty or
    'none'/'exclude' → None (the user excluded the patch); anything else is refused."""
    text = "" if value is None else str(value).strip().lower()
    if text in SPLIT_NAMES:
        return SPLIT_NAMES[text]
    if text in EXCLUDED:
        return None
    raise GapfillError(
        f"The split value '{value}' is neither 'train' nor 'validation'. Set the split field to "
        "train or validation (or leave it empty to leave the patch out)."
    )


# ---------------------------------------------------------------- memory-mapped rows


def shrink_rows(path: Path, rows: int) -> None:
    """Rewrite an .npy header in place for `rows` rows (≤ its rows) and truncate the file."""
    with path.open("r+b") as handle:
        version = npy.read_magic(handle)
        read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, fortran, dtype = read(handle)
        offset = handle.tell()
        if shape[0] == rows:
            return
        header = repr(
            {"descr": npy.dtype_to_descr(dtype), "fortran_order": fortran,
             "shape": (rows, *shape[1:])}
        )
        start = 8 + (2 if version == (1, 0) else 4)  # magic, version, header length
        handle.seek(start)
        handle.write((header.ljust(offset - start - 1) + "\n").encode("latin1"))
        handle.truncate(offset + rows * math.prod(shape[1:]) * dtype.itemsize)


class RowWriter:
    """Appends rows to an .npy file made for at most `capacity` rows, through memory maps of
    about `chunk_bytes` at a time; `close()` shrinks the file to the rows written."""

    def __init__(
        self, path: Path, capacity: int, row_shape: tuple[int, ...], dtype: np.dtype,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.path, self.capacity, self.row_shape, self.dtype = path, capacity, row_shape, dtype
        path.parent.mkdir(parents=True, exist_ok=True)
        created = npy.open_memmap(path, mode="w+", dtype=dtype, shape=(capacity, *row_shape))
        self.offset = created.offset
        del created
        self.row_bytes = math.prod(row_shape) * np.dtype(dtype).itemsize
        self.rows_per_map = max(1, chunk_bytes // self.row_bytes)
        self.count = 0
        self.first = 0
        self.mapped: np.memmap | None = None

    def append(self, row: np.ndarray) -> None:
        if self.mapped is None or self.count - self.first == len(self.mapped):
            self._unmap()
            self.first = self.count
            self.mapped = np.memmap(
                self.path, self.dtype, "r+", self.offset + self.first * self.row_bytes,
                (min(self.rows_per_map, self.capacity - self.first), *self.row_shape),
            )
        self.mapped[self.count - self.first] = row
        self.count += 1

    def _unmap(self) -> None:
        """Drop the map: its pages leave this process's memory; the kernel writes them back
        in its own time (no msync, which would wait for the disk)."""
        self.mapped = None

    def close(self) -> None:
        self._unmap()
        shrink_rows(self.path, self.count)


# ---------------------------------------------------------------- sources


@dataclass
class RoleSource:
    """One role's raster on the target grid, and what the manifest says about it."""

    role: str
    dataset: gdal.Dataset
    info: RoleInfo
    masks: BandMasks

    def read(self, window: Window) -> tuple[np.ndarray, bool]:
        """(bands, h, w) values in the native type, and whether every pixel has data."""
        values = read_bands(self.dataset, window)
        complete = bool(self.masks.valid(window, values).all())
        if self.role == "gap_mask":
            complete = complete and not (values == OUTSIDE).any()
        return values, complete


LABELS = ROLE_LABELS | {"reference": "reference (clear) image"}
OPTICAL = ("optical_before", "optical_after", "reference")  # on the target's scale


def open_role(role: str, path: str, grid: Grid | None) -> RoleSource:
    """Open a role's raster (aligned to `grid` unless it is the target) and describe it."""
    label = LABELS[role]
    original = open_raster(path, label)  # band descriptions and metadata do not survive warping
    dataset = original
    if grid is not None:
        resampling = "nearest" if role == "gap_mask" else "bilinear"
        dataset = align_to_grid(path, grid, resampling, label)
    if role == "gap_mask":
        check_mask(dataset, path)
    recorded = raster_scaling_of(original)
    descriptions = band_descriptions(original)
    info = RoleInfo(
        source=str(path),
        bands=tuple(d or f"B{i}" for i, d in enumerate(descriptions, start=1)),
        dtype=numpy_dtype(original),
        nodata=nodata_value(original),
        scaling=recorded.scaling if recorded else None,
    )
    return RoleSource(role, dataset, info, BandMasks(dataset))


def check_optical_scales(sources: Sequence[RoleSource]) -> None:
    """Refuse other dates or a reference on another scale than the target (reflectance 0–1
    beside digital numbers): a network trained on them would learn the change of scale."""
    target, others = sources[0], [s for s in sources if s.role in OPTICAL]
    if not others:
        return
    bands = list(range(1, len(target.info.bands) + 1))
    spread = sample_spread(target.dataset, bands)
    for source in others:
        other = sample_spread(source.dataset, list(range(1, len(source.info.bands) + 1)))
        check_same_scale(spread, other, source.info.source, LABELS[source.role], LABELS["target"])


def read_patch(sources: Sequence[RoleSource], window: Window) -> dict[str, np.ndarray] | None:
    """Every role's values over `window`, or None as soon as one role lacks data there."""
    blocks = {}
    for source in sources:
        values, complete = source.read(window)
        if not complete:
            return None
        blocks[source.role] = values
    return blocks


def check_roles(roles: Mapping[str, str]) -> None:
    unknown = [role for role in roles if role not in ROLES]
    if unknown:
        raise GapfillError(
            f"Unknown role(s) {', '.join(unknown)}; the roles are {', '.join(ROLES)}."
        )
    if not roles.get("target"):
        raise GapfillError("Give the target image: it defines the grid of the patches.")


# ---------------------------------------------------------------- the dataset folder


def check_destination(folder: Path, overwrite: bool) -> None:
    """Refuse a file, or a non-empty folder unless `overwrite`."""
    if folder.exists() and not folder.is_dir():
        raise GapfillError(f"The output '{folder}' is a file; give a folder for the dataset.")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        entries = sum(1 for _ in folder.iterdir())
        raise GapfillError(
            f"The output folder '{folder}' is not empty ({entries} entries). Choose an empty "
            "folder, or set 'Overwrite' to replace the dataset in it."
        )
    check_writable(folder)


def move_into(built: Path, folder: Path) -> None:
    """Replace the dataset entries of `folder` by those of `built`; other files stay."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in (MANIFEST, LOCATIONS, *SPLITS):
        old = folder / name
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
    for entry in built.iterdir():
        entry.rename(folder / entry.name)


@dataclass
class ExtractionReport:
    folder: Path
    counts: dict[str, int]
    skipped: dict[str, int]
    manifest: Manifest | None = None
    messages: list[str] = field(default_factory=list)


def extract_patches(
    roles: Mapping[str, str],
    points: Sequence[PatchPoint],
    output: str | Path,
    *,
    patch_size: int = 64,
    overwrite: bool = False,
    split_method: str = "field",
    seed: int | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> ExtractionReport:
    """Write the patches centred on `points` (map coordinates in the target's CRS) of every
    role's raster (`roles`: role → path, `target` required) into the dataset folder `output`."""
    check_roles(roles)
    folder = Path(output)
    check_destination(folder, overwrite)
    target = open_role("target", roles["target"], None)
    grid = Grid.of(target.dataset)
    if patch_size < 1 or patch_size > min(grid.width, grid.height):
        raise GapfillError(
            f"The patch size ({patch_size} px) must be between 1 and the target image's "
            f"smaller side ({grid.width}×{grid.height} px)."
        )
    sources = [target] + [
        open_role(role, path, grid) for role, path in roles.items() if role != "target" and path
    ]
    check_optical_scales(sources)
    skipped = {"off_image": 0, "nodata": 0, "excluded": 0}
    patches = []
    for point in points:
        split = normalise_split(point.split)
        if split is None:
            skipped["excluded"] += 1
            continue
        col, row = corner_of(grid, point.x, point.y, patch_size)
        if col < 0 or row < 0 or col + patch_size > grid.width or row + patch_size > grid.height:
            skipped["off_image"] += 1
            continue
        patches.append((row, col, split, point.id))
    patches.sort()
    capacity = {split: sum(p[2] == split for p in patches) for split in SPLITS}
    counts = dict.fromkeys(SPLITS, 0)
    with tempfile.TemporaryDirectory(prefix=f".{folder.name}.partial-", dir=folder.parent) as tmp:
        built = Path(tmp)
        writers = {
            (split, source.role): RowWriter(
                array_path(built, split, source.role), capacity[split],
                (len(source.info.bands), patch_size, patch_size), source.info.dtype, chunk_bytes,
            )
            for split in SPLITS for source in sources
        }
        with (built / LOCATIONS).open("w", newline="") as handle:
            table = csv.writer(handle)
            table.writerow(LOCATION_COLUMNS)
            for done, (row, col, split, ident) in enumerate(patches, start=1):
                check_cancelled(cancelled)
                blocks = read_patch(sources, (col, row, patch_size, patch_size))
                if blocks is None:
                    skipped["nodata"] += 1
                else:
                    for role, values in blocks.items():
                        writers[(split, role)].append(values)
                    counts[split] += 1
                    gap = blocks.get("gap_mask")
                    x, y = map_of(grid, col + patch_size / 2, row + patch_size / 2)
                    table.writerow([
                        ident, split, col, row, repr(x), repr(y),
                        "" if gap is None else float((gap != 0).mean()), 1.0,
                    ])
                progress(done / max(len(patches), 1))
        for writer in writers.values():
            writer.close()
        if capacity["train"] and not counts["train"]:
            raise GapfillError(
                f"No training patch could be extracted: the {capacity['train']} training "
                f"locations all hit no-data in some role ({skipped['nodata']} skipped in all); "
                "a dataset without training patches cannot train a model. Sample the locations "
                "again on these rasters (Sample patch locations)."
            )
        if not sum(counts.values()):
            raise GapfillError(
                f"No patch could be extracted: of {len(points)} locations, {skipped['off_image']} "
                f"fall (partly) off the target image, {skipped['nodata']} hit no-data in some "
                f"role and {skipped['excluded']} have no split. Sample the locations again on "
                "these rasters (Sample patch locations)."
            )
        _, dx, _, _, _, dy = grid.geotransform
        manifest = Manifest(
            patch_size=patch_size,
            crs=grid.projection,
            geotransform=grid.geotransform,
            pixel_size=(abs(dx), abs(dy)),
            splits=counts,
            split_method=split_method,
            roles={source.role: source.info for source in sources},
            seed=seed,
            skipped=skipped,
        )
        write_manifest(manifest, built)
        check_cancelled(cancelled)
        move_into(built, folder)
    report = ExtractionReport(folder, counts, skipped, manifest)
    if not counts["validation"]:
        report.messages.append(
            "The dataset has no validation patch: training will not measure itself, nor give "
            "its verdict against the classical fills."
        )
    if not counts["train"]:
        report.messages.append(
            "The dataset has NO TRAINING PATCH: it can evaluate a model, not train one."
        )
    return report
