"""Tiled, compressed GeoTIFF outputs that appear only when complete (temporary, then renamed)."""

from __future__ import annotations

import functools
import gc
import glob
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from osgeo import gdal, gdal_array

from ..errors import GapfillError
from .access import Grid, Window, quiet_gdal


def check_writable(path: str | Path) -> Path:
    """The output path, after checking its folder exists (or can be made) and is writable."""
    path = Path(path)
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise GapfillError(
            f"The output folder '{folder}' cannot be created ({error.strerror}). "
            "Choose a folder you can write to."
        ) from error
    if not os.access(folder, os.W_OK):
        raise GapfillError(
            f"The output folder '{folder}' is not writable. Choose a folder you can write to."
        )
    return path


GEOTIFF_SUFFIXES = (".tif", ".tiff")


def check_output_file(name: str, path: str, raster: bool) -> None:
    """Refuse, before any work, an output that cannot be written as asked: a folder, a folder
    nobody can write to, or (rasters) a name whose extension is not GeoTIFF's, which would
    receive GeoTIFF bytes under another format's name (a name without extension is kept)."""
    target, label = Path(path), f"output {name}" if name else "output"
    if target.is_dir():
        raise GapfillError(
            f"The {label} '{path}' is a folder; give a file name inside it (e.g. "
            f"'{target / ('result.tif' if raster else 'result.json')}')."
        )
    if raster and target.suffix and target.suffix.lower() not in GEOTIFF_SUFFIXES:
        raise GapfillError(
            f"The {label} '{path}' does not end in .tif: Gapfill writes GeoTIFF files. "
            "Give a .tif name (convert afterwards with Raster › Conversion › Translate if "
            "another format is needed)."
        )
    folder = next((f for f in target.absolute().parents if f.exists()), None)
    if folder is not None and not folder.is_dir():
        raise GapfillError(
            f"The {label} '{path}' cannot be created: '{folder}' is a file, not a folder. "
            "Choose a folder you can write to."
        )
    if folder is not None and not _can_create_in(folder):
        raise GapfillError(
            f"The {label} '{path}' cannot be written: '{folder}' is not writable. "
            "Choose a folder you can write to."
        )


def _can_create_in(folder: Path) -> bool:
    """Whether a file can be made in `folder`, tried: permissions alone do not tell it for
    root, read-only mounts or system folders (/proc, /sys), where the run would fail only
    when it writes, after all its work."""
    if not os.access(folder, os.W_OK):
        return False
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def files_read_by(path: str) -> list[str]:
    """The files an input reads, links resolved: the file itself and, for a dataset made of
    others (a VRT's sources), theirs, as GDAL lists them; an output that is one of those
    would overwrite the user's data through the input that points at it."""
    files = [os.path.realpath(path)]
    with quiet_gdal():
        try:
            dataset = gdal.OpenEx(path, gdal.OF_RASTER | gdal.OF_VECTOR | gdal.OF_READONLY)
        except RuntimeError:
            dataset = None
        listed = (dataset.GetFileList() or []) if dataset is not None else []
    dataset = None
    return files + [os.path.realpath(item) for item in listed]


def check_not_inputs(inputs: dict[str, list[str]], outputs: dict[str, str]) -> None:
    """Refuse an output that is one of the inputs, a file an input reads (a VRT's source) or
    another output, before any work: writing it would destroy the user's data. `inputs`:
    parameter → files; `outputs`: parameter → file or folder. Paths are compared after
    resolving links and relative parts."""
    taken: dict[str, str] = {}
    for name, paths in inputs.items():
        for path in filter(None, paths):
            direct, *behind = files_read_by(path)
            taken.setdefault(direct, name)
            for source in behind:
                taken.setdefault(source, f"{name} (read through '{path}')")
    for name, path in outputs.items():
        if not path:
            continue
        real = os.path.realpath(path)
        if real in taken:
            raise GapfillError(
                f"The output {name} '{path}' is the same file as the input {taken[real]}: "
                "writing it would overwrite your data. Choose another output file (inputs are "
                "never modified)."
            )
        taken[real] = name


class Terminated(GapfillError):
    """The process was asked to stop (SIGTERM) while writing an output."""


@contextmanager
def _termination_raises() -> Iterator[None]:
    """While an output is written by the main thread, SIGTERM raises `Terminated` there, so
    the partial file is removed on the way out instead of being left behind by a killed
    process; the previous handler comes back afterwards. (Other threads cannot take signals:
    QGIS desktop runs algorithms there and stops them by cancelling.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, _frame: object) -> None:
        raise Terminated(f"Stopped by signal {signum}: no output was written.")

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def descriptors_of(path: Path) -> int:
    """How many file descriptors of this process are open on `path` (read in Linux's /proc;
    0 without it): a GDAL dataset closed for good holds none."""
    target = os.path.realpath(path)
    try:
        entries = os.listdir("/proc/self/fd")
    except OSError:
        return 0
    count = 0
    for entry in entries:
        try:
            count += os.readlink(f"/proc/self/fd/{entry}") == target
        except OSError:  # closed since the listing
            continue
    return count


def ensure_closed(path: str | Path) -> None:
    """Before a written file is published: nothing in this process may still hold it open. A
    GDAL dataset held by a reference cycle (GDAL < 3.8 has no Close()) is collected now, as
    its late close would rewrite the file after it was renamed and checksummed."""
    if descriptors_of(path):
        gc.collect()
    if descriptors_of(path):
        raise GapfillError(
            f"'{path}' is still open after it was written: something in this process still "
            "refers to it. Please report this; no output was written."
        )


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it to `path` only if the block succeeds."""
    final = check_writable(path)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{final.stem}.", suffix=".partial" + final.suffix, dir=final.parent
    )
    os.close(handle)
    os.unlink(temporary)
    try:
        with _termination_raises():
            yield Path(temporary)
        ensure_closed(temporary)
        os.replace(temporary, final)
    finally:
        for leftover in (temporary, temporary + ".aux.xml"):
            if os.path.exists(leftover):
                os.unlink(leftover)


def remove_stale_partials(path: str | Path) -> list[Path]:
    """Delete the temporaries `atomic_path` left for `path` when its process was killed (a
    lost worker of a distributed run, say): hidden files that never look complete. Only for
    an output that nothing else is writing now."""
    final = Path(path)
    pattern = f".{glob.escape(final.stem)}.*.partial{glob.escape(final.suffix)}"
    stale = [*final.parent.glob(pattern), *final.parent.glob(pattern + ".aux.xml")]
    for leftover in stale:
        leftover.unlink(missing_ok=True)
    return stale


@functools.cache
def has_zstd() -> bool:
    """Whether this GDAL's GeoTIFF driver writes ZSTD (builds with libzstd, GDAL ≥ 2.3)."""
    options = gdal.GetDriverByName("GTiff").GetMetadataItem("DMD_CREATIONOPTIONLIST") or ""
    return "ZSTD" in options


def creation_options(
    dtype: np.dtype, block: tuple[int, int] = (256, 256), *, compatible: bool = False
) -> list[str]:
    """Tiled GeoTIFF options. ZSTD level 1 with each band in its own blocks where GDAL has it:
    about half the CPU of DEFLATE level 1 with pixel-interleaved blocks, for a file ~15 %
    smaller, and a reader of a few bands decompresses only those (readers without ZSTD, such
    as old ArcGIS or SNAP, need `gdal_translate -co COMPRESS=DEFLATE`).

    `compatible`: DEFLATE, pixel-interleaved, as GDAL makes by default and every GeoTIFF
    reader opens (the benchmarks' input mosaics, made like users' files).
    """
    predictor = "3" if np.issubdtype(dtype, np.floating) else "2"
    if has_zstd() and not compatible:
        compression = ["COMPRESS=ZSTD", "ZSTD_LEVEL=1", "INTERLEAVE=BAND"]
    else:
        compression = ["COMPRESS=DEFLATE", "ZLEVEL=1"]  # level 6 takes 3.4× the CPU, same size
    return [
        "TILED=YES",
        f"BLOCKXSIZE={block[0]}",
        f"BLOCKYSIZE={block[1]}",
        *compression,
        f"PREDICTOR={predictor}",
        "BIGTIFF=IF_SAFER",
        "NUM_THREADS=2",
    ]


class GeoTiffWriter:
    """Writes windows of a (bands, h, w) raster on a grid; `close()` checks GDAL's error state."""

    def __init__(
        self,
        path: Path,
        grid: Grid,
        bands: int,
        dtype: np.dtype,
        nodata: float | None = None,
        descriptions: list[str] | None = None,
        block: tuple[int, int] = (256, 256),
    ) -> None:
        driver = gdal.GetDriverByName("GTiff")
        gdal_type = gdal_array.NumericTypeCodeToGDALTypeCode(np.dtype(dtype))
        with quiet_gdal():
            self.dataset = driver.Create(
                str(path),
                grid.width,
                grid.height,
                bands,
                gdal_type,
                creation_options(dtype, block),
            )
        if self.dataset is None:
            raise GapfillError(f"Cannot create '{path}': {gdal.GetLastErrorMsg()}")
        self.path = path
        self.dataset.SetGeoTransform(grid.geotransform)
        if grid.projection:
            self.dataset.SetProjection(grid.projection)
        for index in range(1, bands + 1):
            band = self.dataset.GetRasterBand(index)
            if nodata is not None:
                band.SetNoDataValue(float(nodata))
            if descriptions and index <= len(descriptions) and descriptions[index - 1]:
                band.SetDescription(descriptions[index - 1])

    def write(self, window: Window, array: np.ndarray) -> None:
        x, y, _, _ = window
        data = array if array.ndim == 3 else array[np.newaxis]
        self.dataset.WriteArray(data, x, y)  # all bands in one call

    def close(self) -> None:
        gdal.ErrorReset()
        self.dataset.FlushCache()
        message = gdal.GetLastErrorMsg()
        close = getattr(self.dataset, "Close", None)  # GDAL >= 3.8: closes now, even if a
        if close is not None:  # band object somewhere still refers to the dataset
            close()
        self.dataset = None  # older GDAL: closes on this last reference (`atomic_path`
        # makes sure it was the last before the file is published)
        if message and gdal.GetLastErrorType() >= gdal.CE_Failure:
            raise GapfillError(f"Writing '{self.path}' failed: {message}")


def cast_to(
    array: np.ndarray, dtype: np.dtype, avoid: float | None = None, *, in_place: bool = False
) -> np.ndarray:
    """Round and clip floating results into an integer type; floats are cast as they are.

    `avoid`: the output's no-data value. A filled value that lands on it (a dark pixel rounding
    to 0 DN, say) would read as no data, so it is moved one step into the type's range.
    `in_place`: round a float array the caller no longer needs without copying it.
    """
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        exact = np.result_type(array.dtype, np.float32 if info.bits <= 16 else np.float64)
        if in_place and array.dtype == exact and array.flags.writeable:
            rounded = array  # exact holds the type's bounds exactly
        else:
            rounded = np.array(array, dtype=exact)
        np.rint(rounded, out=rounded)
        if rounded.size and not info.min <= rounded.min() <= rounded.max() <= info.max:
            np.maximum(rounded, info.min, out=rounded)  # two reductions cost less than a clip
            np.minimum(rounded, info.max, out=rounded)
        out = rounded.astype(dtype)
        if avoid is not None and info.min <= avoid <= info.max:
            out[out == avoid] = avoid + 1 if avoid < info.max else avoid - 1
        return out
    out = array.astype(dtype)
    if avoid is not None and np.isfinite(avoid):
        out[out == avoid] = np.nextafter(dtype.type(avoid), dtype.type(np.inf))
    return out
