"""Speed and memory of the ONNX fill against the compute floor of the same network.

A representative CPU model (`bench_unet`: width-32 three-level U-Net, S2 + S1 + gap mask, random
weights) fills a mosaic of the real SEN12MS-CR samples (each 256 px sample placed by a seeded
draw, flipped at random, on an EPSG:32633 10 m grid), in one run and side by side:

- compute floor: the same ONNX Runtime session on the same tiles (same grid and batches), held in
  memory, no I/O. Timed on representative batches of real tiles (bound once with IOBinding),
  then multiplied by the number of batches the fill runs: holding every tile of a large image in
  memory would take gigabytes;
- end-to-end: `core.learned.onnx_fill_raster.fill_raster_with_model`, GeoTIFF to GeoTIFF;
- naive: the same session tile by tile, read–infer–write in sequence with plain GDAL, no
  batching, no blending, no overlap of I/O and compute;
- a Sentinel-2 tile's size (10980² px, `--scene`) filled end to end by the bundled single-date
  model `models/s1s2_unet_small.onnx` (goal: within 5 minutes on a 2-core CPU).

Each measurement runs in a fresh child process (this script with `--measure`), whose peak
resident memory (VmHWM) is its own. Nothing asserts a timing; only ratios measured side by side
mean anything.

`--gpu-arrays` needs numpy and onnxruntime only (no GDAL, no QGIS):
`core.learned.onnx_fill.fill_arrays` on a SIZE² in-memory mosaic (of `sen12mscr_samples.npz`,
written by the file benchmark, else of random-ish samples) against the device compute floor,
in the same process.

    python benchmarks/bench_onnx.py [--output bench-output] [--size 8192] [--small 2048] [--profile]
    python benchmarks/bench_onnx.py --gpu-arrays [--size 10980] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness import (
    REPO,
    cpu_seconds,
    data_folder,
    machine,
    make_plugin_importable,
    measure_in_child,
    peak_rss_mb,
    warm_page_cache,
)

SAMPLE = 256  # side of a SEN12MS-CR sample
SEED = 2018
EPSG = 32633
ORIGIN = (300000.0, 4650000.0)  # upper-left corner of the mosaic, metres
PIXEL = 10.0
TAG = "GAPFILL_BENCH_S12_MOSAIC"
TILE_SIZE = 512  # faster than 256 on CPU: margins take 23 % of a 512 px tile's work, 44 % at 256
BATCH = 1  # CPU: larger batches do not raise throughput, they multiply activation memory
GPU_BATCH = 8
ALTERNATIVE = (256, 4)  # tile size and batch of the extra floor row that justifies TILE_SIZE
FLOOR_RUNS = 8  # representative batches timed per batch size
SAMPLES_FILE = "sen12mscr_samples.npz"
MODEL_FILE = "bench_unet.onnx"
BUNDLED = REPO / "models" / "s1s2_unet_small.onnx"  # the single-date CPU default
SCENE_GOAL_S = 300  # issue 8: a 10980² Sentinel-2 tile end to end within 5 minutes on 2 cores
ROLE_FILES = {"target": "s2.tif", "sar": "s1.tif", "gap_mask": "gap_mask.tif"}


# ---------------------------------------------------------------- mosaic of the real samples


def load_samples(folder: Path) -> dict[str, np.ndarray]:
    """Every sample as stacks: target (n, 13, 256, 256) uint16, sar (n, 2, …) float32 dB,
    gap_mask (n, 1, …) uint8 (1 = cloud)."""
    from osgeo import gdal

    names = sorted(path.name.split("_")[0] for path in folder.glob("*_s2_cloudy.tif"))
    suffixes = {"target": "s2_cloudy", "sar": "s1", "gap_mask": "cloudmask"}
    stacks = {}
    for role, suffix in suffixes.items():
        arrays = [gdal.Open(str(folder / f"{name}_{suffix}.tif")).ReadAsArray() for name in names]
        stacks[role] = np.stack([array.reshape(-1, SAMPLE, SAMPLE) for array in arrays])
    return stacks


def random_samples(count: int = 14, seed: int = SEED) -> dict[str, np.ndarray]:
    """Random-ish stand-ins of the samples: noisy reflectances and SAR, blocky clouds."""
    rng = np.random.default_rng(seed)
    shape = (count, 1, SAMPLE, SAMPLE)
    clouds = rng.random((count, 1, 8, 8)) < rng.random((count, 1, 1, 1))
    return {
        "target": rng.integers(200, 4000, (count, 13, SAMPLE, SAMPLE), dtype=np.uint16),
        "sar": rng.normal(-15.0, 4.0, (count, 2, SAMPLE, SAMPLE)).astype(np.float32),
        "gap_mask": np.kron(clouds, np.ones((1, 1, 32, 32), bool)).astype(np.uint8).reshape(shape),
    }


@dataclass(frozen=True)
class Layout:
    """Which sample goes in each 256 px cell of the mosaic, and its up-down/left-right flips."""

    samples: np.ndarray  # (cells, cells) int
    flips: np.ndarray  # (cells, cells, 2) bool

    @classmethod
    def draw(cls, size: int, count: int, seed: int = SEED) -> Layout:
        cells = -(-size // SAMPLE)
        rng = np.random.default_rng(seed)
        samples = rng.integers(0, count, (cells, cells))
        return cls(samples, rng.integers(0, 2, (cells, cells, 2)) > 0)

    def strip(self, stack: np.ndarray, row: int, size: int) -> np.ndarray:
        """Cell row `row` of the mosaic of `stack`, (bands, rows, size)."""
        tiles = []
        for sample, (flip_y, flip_x) in zip(self.samples[row], self.flips[row], strict=True):
            tile = stack[sample]
            tile = tile[:, ::-1] if flip_y else tile
            tiles.append(tile[:, :, ::-1] if flip_x else tile)
        top = row * SAMPLE
        return np.concatenate(tiles, axis=2)[:, : size - top, :size]


def mosaic_array(stack: np.ndarray, layout: Layout, size: int) -> np.ndarray:
    """The (bands, size, size) mosaic of `stack` in memory."""
    out = np.empty((stack.shape[1], size, size), stack.dtype)
    for row in range(len(layout.samples)):
        out[:, row * SAMPLE : (row + 1) * SAMPLE] = layout.strip(stack, row, size)
    return out


def mosaic_paths(folder: Path, size: int) -> dict[str, Path]:
    return {role: folder / f"s12-mosaic-{size}" / name for role, name in ROLE_FILES.items()}


def write_mosaic(samples: dict[str, np.ndarray], folder: Path, size: int) -> dict[str, Path]:
    """Write (or reuse) the target, SAR and gap mask mosaics as tiled compressed GeoTIFFs,
    one strip of samples at a time."""
    from bench_unet import S1_BANDS, S2_BANDS
    from osgeo import gdal, gdal_array, osr

    from gapfill.core.raster.output import creation_options

    layout = Layout.draw(size, len(samples["target"]))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    descriptions = {"target": S2_BANDS, "sar": S1_BANDS, "gap_mask": ("gap",)}
    paths = mosaic_paths(folder, size)
    for role, path in paths.items():
        stack = samples[role]
        signature = f"crc32={zlib.crc32(stack.tobytes())} seed={SEED} size={size}"
        existing = gdal.Open(str(path)) if path.exists() else None
        if existing is not None and existing.GetMetadataItem(TAG) == signature:
            continue
        existing = None
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.stem}.partial.tif")
        dataset = gdal.GetDriverByName("GTiff").Create(
            str(partial), size, size, stack.shape[1],
            gdal_array.NumericTypeCodeToGDALTypeCode(stack.dtype),
            creation_options(stack.dtype, compatible=True),
        )
        dataset.SetGeoTransform((ORIGIN[0], PIXEL, 0.0, ORIGIN[1], 0.0, -PIXEL))
        dataset.SetProjection(srs.ExportToWkt())
        for index, name in enumerate(descriptions[role], start=1):
            dataset.GetRasterBand(index).SetDescription(name)
            if role == "target":
                dataset.GetRasterBand(index).SetNoDataValue(0)  # S2 convention; samples hold none
        for row in range(len(layout.samples)):
            dataset.WriteArray(layout.strip(stack, row, size), 0, row * SAMPLE)
        dataset.SetMetadataItem(TAG, signature)
        dataset = None
        os.replace(partial, path)
    return paths


# ---------------------------------------------------------------- compute floor


def tile_activity(grid: Any, gap: np.ndarray) -> np.ndarray:
    """(grid rows, grid columns) bool: tiles whose core holds a gap, i.e. that run the network
    (every source has data everywhere here, and the fill is not a full reconstruction)."""
    active = np.zeros((len(grid.ys), len(grid.xs)), bool)
    for tile in grid.tiles():
        x, y, width, height = grid.core_window(tile)
        active[tile.row, tile.column] = gap[y : y + height, x : x + width].any()
    return active


def batch_counts(active: np.ndarray, batch: int) -> Counter[int]:
    """How many network runs of each batch size the fill makes: it batches the active tiles in
    the grid's order, the last batch taking what is left (`onnx_fill._chunks`)."""
    tiles = int(active.sum())
    return +Counter({batch: tiles // batch, tiles % batch: 1 if tiles % batch else 0})


def representative_batches(
    active: np.ndarray, counts: Counter[int], read_job: Callable[[Any], Any], grid: Any
) -> dict[int, list[dict[str, np.ndarray]]]:
    """FLOOR_RUNS batches of each size in `counts`, of real tiles spread over the image."""
    tiles = [tile for tile in grid.tiles() if active[tile.row, tile.column]]
    batches = {}
    for size in counts:
        picks = np.linspace(0, len(tiles) - 1, FLOOR_RUNS * size).round().astype(int)
        jobs = [read_job(tiles[index]) for index in picks]
        groups = [jobs[start : start + size] for start in range(0, len(jobs), size)]
        batches[size] = [
            {name: np.stack([job.feeds[name] for job in group]) for name in group[0].feeds}
            for group in groups
        ]
    return batches


def time_batches(
    session: Any, output: str, batches: dict[int, list[dict[str, np.ndarray]]]
) -> dict[int, tuple[float, float]]:
    """Mean wall and CPU seconds of one `session.run` per batch size, inputs and output bound
    once on the session's device (IOBinding), after one warm-up run per size."""
    import onnxruntime as ort

    device = "cuda" if session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
    bands = session.get_outputs()[0].shape[1]
    seconds = {}
    for size, feeds_list in batches.items():
        bindings, values = [], []
        for feeds in feeds_list:
            binding = session.io_binding()
            for name, array in feeds.items():
                values.append(ort.OrtValue.ortvalue_from_numpy(array, device, 0))
                binding.bind_ortvalue_input(name, values[-1])
            shape = (size, bands, *next(iter(feeds.values())).shape[2:])
            values.append(ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, device, 0))
            binding.bind_ortvalue_output(output, values[-1])
            bindings.append(binding)
        session.run_with_iobinding(bindings[0])
        start, cpu_start = time.perf_counter(), cpu_seconds()
        for binding in bindings:
            session.run_with_iobinding(binding)
        wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
        seconds[size] = (wall / len(bindings), cpu / len(bindings))
    return seconds


def floor_of(
    session: Any, card: Any, grid: Any, gap: np.ndarray, batch: int, read_job: Callable
) -> dict[str, Any]:
    """The compute floor of a fill: per-batch session time (wall and CPU) × the fill's
    batches."""
    active = tile_activity(grid, gap)
    counts = batch_counts(active, batch)
    per_batch = time_batches(
        session, card.output.name, representative_batches(active, counts, read_job, grid)
    )
    return {
        "floor_seconds": sum(count * per_batch[size][0] for size, count in counts.items()),
        "floor_cpu_seconds": sum(count * per_batch[size][1] for size, count in counts.items()),
        "tiles": len(grid),
        "active_tiles": int(active.sum()),
        "batches": {str(size): count for size, count in sorted(counts.items())},
        "seconds_per_batch": {str(size): wall for size, (wall, _) in sorted(per_batch.items())},
    }


def streamed_floor(
    session: Any, card: Any, grid: Any, gap: np.ndarray, batch: int, read_job: Callable
) -> dict[str, Any]:
    """The compute floor of a file fill over every batch it runs: each batch's tiles are read
    and scaled (untimed), bound with IOBinding, and only `session.run` is timed (wall and CPU).
    Slower than `floor_of` but, lasting as long as the fill, it sees the same machine."""
    import onnxruntime as ort

    active = tile_activity(grid, gap)
    tiles = [tile for tile in grid.tiles() if active[tile.row, tile.column]]
    groups = [tiles[start : start + batch] for start in range(0, len(tiles), batch)]
    bands = session.get_outputs()[0].shape[1]
    wall = cpu = 0.0
    for index, group in enumerate(groups):
        jobs = [read_job(tile) for tile in group]
        binding, values = session.io_binding(), []
        for name in jobs[0].feeds:
            stacked = np.stack([job.feeds[name] for job in jobs])
            values.append(ort.OrtValue.ortvalue_from_numpy(stacked, "cpu", 0))
            binding.bind_ortvalue_input(name, values[-1])
        shape = (len(group), bands, grid.tile_height, grid.tile_width)
        values.append(ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, "cpu", 0))
        binding.bind_ortvalue_output(card.output.name, values[-1])
        if index == 0:
            session.run_with_iobinding(binding)  # warm-up, untimed
        start, cpu_start = time.perf_counter(), cpu_seconds()
        session.run_with_iobinding(binding)
        wall, cpu = wall + time.perf_counter() - start, cpu + cpu_seconds() - cpu_start
    counts = batch_counts(active, batch)
    return {
        "floor_seconds": wall,
        "floor_cpu_seconds": cpu,
        "tiles": len(grid),
        "active_tiles": len(tiles),
        "batches": {str(size): count for size, count in sorted(counts.items())},
        "seconds_per_batch": {str(batch): wall / max(len(groups), 1)},
    }


def describe_batches(floor: dict[str, Any]) -> str:
    """'361 runs of 1 tile at 1.234 s, …' from a `floor_of` result."""
    seconds = floor["seconds_per_batch"]
    return ", ".join(
        f"{count} runs of {size} tile{'s' * (size != '1')} at {seconds[size]:.3f} s"
        for size, count in floor["batches"].items()
    )


# ---------------------------------------------------------------- measurements (children)


def open_runner(model: Path, device: str, log: Callable[[str], None]) -> Any:
    from gapfill.core.learned.model_card import card_of_session
    from gapfill.core.learned.onnx_fill import ModelRunner
    from gapfill.core.learned.onnx_session import create_session

    session = create_session(model, device, log=log)
    return ModelRunner(session, card_of_session(session))


def measure_floor(model: Path, paths: dict[str, Path], tile: int, batch: int) -> dict[str, Any]:
    """The compute floor of the file fill, the tiles read with GDAL before any timing."""
    from osgeo import gdal

    from gapfill.core.learned.tiling import pick, source_window

    runner = open_runner(model, "cpu", lambda _: None)
    datasets = {role: gdal.Open(str(path)) for role, path in paths.items()}
    gap = datasets["gap_mask"].ReadAsArray() != 0
    grid = runner.plan(gap.shape[1], gap.shape[0], tile, None, lambda _: None)

    def read_job(tile: Any) -> Any:
        inside, rows_columns = source_window(grid.read_window(tile), grid.width, grid.height)
        raw = {
            role: pick(dataset.ReadAsArray(*inside), rows_columns).astype(np.float32)
            for role, dataset in datasets.items()
        }
        return runner.prepare(grid, tile, raw, raw.pop("gap_mask") != 0, False)

    result = streamed_floor(runner.session, runner.card, grid, gap, batch, read_job)
    result["seconds"] = result["floor_seconds"]
    return result


def measure_fill(
    model: Path, paths: dict[str, Path], output: Path, tile: int, batch: int
) -> dict[str, Any]:
    """End to end: `fill_raster_with_model` from the mosaic GeoTIFFs to a GeoTIFF."""
    from gapfill.core.learned.onnx_fill_raster import fill_raster_with_model

    lines: list[str] = []
    start = time.perf_counter()
    report = fill_raster_with_model(
        model, str(paths["target"]), output, {"sar": str(paths["sar"])},
        gap_mask_path=str(paths["gap_mask"]), tile_size=tile or None, batch_size=batch,
        device="cpu",
        log=lines.append,
    )
    seconds = time.perf_counter() - start
    print("\n".join(lines), file=sys.stderr)
    return {"seconds": seconds, "gaps": report.gaps, "log": lines}


def measure_naive(
    model: Path, paths: dict[str, Path], output: Path, tile_size: int
) -> dict[str, Any]:
    """Tile by tile with plain GDAL: read the tile's sources, run it, write its core; in
    sequence, batches of one, no blending (later cores overwrite the overlap)."""
    from osgeo import gdal

    from gapfill.core.learned.scaling import scale_bands, unscale_bands
    from gapfill.core.learned.tiling import pick, plan_tiles, source_window
    from gapfill.core.raster.output import cast_to, creation_options

    runner = open_runner(model, "cpu", lambda _: None)
    card, session = runner.card, runner.session
    start = time.perf_counter()
    datasets = {role: gdal.Open(str(path)) for role, path in paths.items()}
    target = datasets["target"]
    size = target.RasterXSize
    written = gdal.GetDriverByName("GTiff").Create(
        str(output), size, size, target.RasterCount, gdal.GDT_UInt16,
        creation_options(np.dtype(np.uint16)),
    )
    written.SetGeoTransform(target.GetGeoTransform())
    written.SetProjection(target.GetProjection())
    for index in range(1, target.RasterCount + 1):
        written.GetRasterBand(index).SetNoDataValue(0)
    grid = plan_tiles(size, size, tile_size, card.context_margin, card.size_multiple)
    margin = grid.margin
    for tile in grid.tiles():
        inside, rows_columns = source_window(grid.read_window(tile), size, size)
        _, _, read_width, read_height = inside
        raw = {
            role: pick(
                dataset.ReadAsArray(*inside).reshape(-1, read_height, read_width), rows_columns
            )
            for role, dataset in datasets.items()
        }
        x, y, width, height = grid.core_window(tile)
        core = (slice(None), slice(margin, margin + height), slice(margin, margin + width))
        gap = raw["gap_mask"] != 0
        values = raw["target"][core]
        if gap[core].any():
            raw["gap_mask"] = gap
            feeds = {
                item.name: scale_bands(raw[item.role].astype(np.float32), item.scaling)[None]
                for item in card.inputs
            }
            predicted = session.run([card.output.name], feeds)[0][0][core]
            filled = cast_to(unscale_bands(predicted, card.output.scaling), np.uint16)
            values = np.where(gap[core], filled, values)
        written.WriteArray(values, x, y)
    written.FlushCache()
    written = None
    return {"seconds": time.perf_counter() - start}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """The child's work; its result with wall and CPU seconds and peak memory."""
    make_plugin_importable()
    folder = args.output.resolve()
    model, paths = args.model or folder / MODEL_FILE, mosaic_paths(folder, args.size)
    cpu_before, thread_before = cpu_seconds(), time.thread_time()
    if args.measure == "floor":
        result = measure_floor(model, paths, args.tile, args.batch)
    elif args.measure == "fill":
        result = measure_fill(model, paths, args.result, args.tile, args.batch)
    elif args.measure == "naive":
        result = measure_naive(model, paths, args.result, args.tile)
    else:
        import cProfile
        import pstats

        profile = cProfile.Profile()
        result = profile.runcall(measure_fill, model, paths, args.result, args.tile, args.batch)
        with open(folder / "bench_onnx_profile.txt", "w") as stream:
            stats = pstats.Stats(profile, stream=stream).strip_dirs()
            stats.sort_stats("tottime").print_stats(25)
            stats.sort_stats("cumulative").print_stats(25)
    result["cpu_seconds"] = cpu_seconds() - cpu_before
    result["main_thread_cpu_seconds"] = time.thread_time() - thread_before
    result["peak_rss_mb"] = peak_rss_mb()
    return result


# ---------------------------------------------------------------- the file benchmark (parent)


@dataclass(frozen=True)
class Run:
    """One row of the table: what runs in the child, and how to label it."""

    what: str
    size: int
    tile: int
    batch: int
    label: str
    model: Path | None = None  # default: the benchmark's own U-Net


def run_child(run: Run, folder: Path, gdal_cache_mb: int) -> dict[str, Any]:
    """Measure `run` in a fresh process; its output raster is deleted afterwards."""
    output = folder / f"out-{run.what}-{run.size}.tif"
    arguments = [
        run.what, "--output", str(folder), "--size", str(run.size), "--tile", str(run.tile),
        "--batch", str(run.batch), "--result", str(output),
        *(["--model", str(run.model)] if run.model else []),
    ]
    print(f"{run.label} at {run.size}² …", file=sys.stderr, flush=True)
    result = measure_in_child(__file__, arguments, gdal_cache_mb, output)
    print(f"  {result['seconds']:.1f} s, {result['peak_rss_mb']:.0f} MiB", file=sys.stderr)
    return result


def mean_floors(runs: list[Run], results: list[dict[str, Any]]) -> dict[tuple, dict[str, float]]:
    """(size, tile) → the mean of its floor runs (taken before and after the fill, so that a
    drift of the machine's speed during the run cancels out)."""
    grouped: dict[tuple, list[dict[str, Any]]] = {}
    for run, result in zip(runs, results, strict=True):
        if run.what == "floor":
            grouped.setdefault((run.size, run.tile), []).append(result)
    return {
        key: {
            "seconds": float(np.mean([r["seconds"] for r in found])),
            "floor_cpu_seconds": float(np.mean([r["floor_cpu_seconds"] for r in found])),
        }
        for key, found in grouped.items()
    }


def mean_fill(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The repeated fills of one size as one: mean seconds, highest peak RSS, first log."""
    mean = dict(results[0])
    for key in ("seconds", "cpu_seconds", "main_thread_cpu_seconds"):
        mean[key] = float(np.mean([result[key] for result in results]))
    mean["peak_rss_mb"] = max(result["peak_rss_mb"] for result in results)
    return mean


def table(runs: list[Run], results: list[dict[str, Any]]) -> str:
    """Markdown table; each row's ratios are to the mean compute floor of its size and tiling."""
    floors = mean_floors(runs, results)
    lines = [
        "| method | size | tile × batch | seconds | Mpx/s | × floor | CPU s | CPU × floor "
        "| main-thread CPU s | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run, result in zip(runs, results, strict=True):
        floor = floors[run.size, run.tile]
        seconds = result["seconds"]
        if run.what == "floor":
            cpu, main_thread = result["floor_cpu_seconds"], "–"
        else:
            cpu, main_thread = result["cpu_seconds"], f"{result['main_thread_cpu_seconds']:.0f}"
        lines.append(
            f"| {run.label} | {run.size}² | {run.tile} × {run.batch} | {seconds:.1f} | "
            f"{run.size**2 / 1e6 / seconds:.3f} | {seconds / floor['seconds']:.2f} | {cpu:.0f} | "
            f"{cpu / floor['floor_cpu_seconds']:.2f} | {main_thread} | "
            f"{result['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def scene_lines(size: int, result: dict[str, Any] | None) -> list[str]:
    """The paragraph on a Sentinel-2 tile's size filled by the bundled model."""
    if result is None:
        return []
    seconds = result["seconds"]
    verdict = "within" if seconds <= SCENE_GOAL_S else "**over**"
    return [
        f"**A Sentinel-2 tile's size, {size}² px, with the bundled model "
        f"`{BUNDLED.name}`: {seconds:.0f} s end to end** ({size**2 / 1e6 / seconds:.3f} Mpx/s, "
        f"{result['cpu_seconds']:.0f} CPU s, peak RSS {result['peak_rss_mb']:.0f} MiB), "
        f"{verdict} the goal of {SCENE_GOAL_S} s; same mosaic recipe as above, the fill's "
        "defaults (the card's tile size, automatic batch). Its log: "
        + " ".join(result["log"][1:]),
        "",
    ]


def fill_scene_mosaic(
    args: argparse.Namespace, samples: dict[str, np.ndarray] | None = None
) -> dict[str, Any]:
    """The bundled model end to end on the mosaic of `args.scene` px, in a child process."""
    make_plugin_importable()
    folder = args.output.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    if samples is None:
        samples = load_samples(data_folder() / "sen12mscr")
    warm_page_cache(write_mosaic(samples, folder, args.scene).values())
    label = f"bundled {BUNDLED.stem}, end to end"
    return run_child(Run("fill", args.scene, 0, 0, label, BUNDLED), folder, args.gdal_cache)


def bench(args: argparse.Namespace) -> None:
    """Build model and mosaics, measure every row in a child, print and write the report."""
    start = time.perf_counter()
    load_before = os.getloadavg()[0]
    make_plugin_importable()
    from bench_unet import build_unet, export_unet, flop_per_pixel, receptive_half_width

    folder = args.output.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    card = export_unet(folder / MODEL_FILE, TILE_SIZE)
    network = build_unet()
    flops, reach = flop_per_pixel(network), receptive_half_width(network)
    print(f"U-Net: {flops / 1e3:.0f} kFLOP/px, receptive half-width {reach} px", file=sys.stderr)
    samples = load_samples(data_folder() / "sen12mscr")
    np.savez_compressed(folder / SAMPLES_FILE, **samples)
    sizes = sorted({args.small, args.size})
    for size in sizes:
        paths = write_mosaic(samples, folder, size)
        warm_page_cache(paths.values())
    scene = fill_scene_mosaic(args, samples) if args.scene else None
    runs = []
    for size in sizes:
        repeats = args.repeats if size == args.size else 1
        runs.append(Run("floor", size, TILE_SIZE, BATCH, "compute floor (session.run), before"))
        for repeat in range(1, repeats + 1):
            label = "end to end: fill_raster_with_model" + (f" ({repeat})" if repeats > 1 else "")
            runs.append(Run("fill", size, TILE_SIZE, BATCH, label))
            if repeat == 1 and (size == args.small or args.naive_at_size):
                runs.append(Run("naive", size, TILE_SIZE, 1, "naive: read–infer–write in sequence"))
            when = "after" if repeat == repeats else "between"
            label = f"compute floor (session.run), {when}"
            runs.append(Run("floor", size, TILE_SIZE, BATCH, label))
    if args.alternative:
        label = f"compute floor, {ALTERNATIVE[0]} px tiles"
        runs.append(Run("floor", args.size, *ALTERNATIVE, label))
    results = [run_child(run, folder, args.gdal_cache) for run in runs]
    rows = table(runs, results)
    fills: dict[int, list[dict[str, Any]]] = {}
    for run, result in zip(runs, results, strict=True):
        if run.what == "fill":
            fills.setdefault(run.size, []).append(result)
    big, small = mean_fill(fills[args.size]), mean_fill(fills[args.small])
    floor = mean_floors(runs, results)[args.size, TILE_SIZE]
    floor_run = next(result for run, result in zip(runs, results, strict=True)
                     if (run.what, run.size, run.tile) == ("floor", args.size, TILE_SIZE))
    rss = big["peak_rss_mb"] / small["peak_rss_mb"]
    total = time.perf_counter() - start
    command = f"GAPFILL_DATA={data_folder()} python {shlex.join(sys.argv)}"
    report = "\n".join([
        "# ONNX fill: speed and memory against the compute floor",
        "",
        f"Model: `bench_unet` ({card.architecture}; random weights), {flops / 1e3:.0f} kFLOP "
        f"per pixel (counted), receptive half-width {reach} px; card: context margin "
        f"{card.context_margin} px, size multiple {card.size_multiple}, tiles of {TILE_SIZE} px "
        f"(recommended), batches of {BATCH} tile; ONNX Runtime on the CPU, "
        f"{len(os.sched_getaffinity(0))} threads.",
        "",
        f"Data: {args.size}² px mosaic of the {len(samples['target'])} real SEN12MS-CR samples "
        "(S2 cloudy 13 × UInt16, S1 2 × Float32 dB, cloud mask as gap mask; each 256 px cell a "
        f"seeded sample with random flips; EPSG:{EPSG}, 10 m; tiled DEFLATE GeoTIFFs); "
        f"{big['gaps'] / args.size**2:.1%} gap pixels; {floor_run['active_tiles']} of "
        f"{floor_run['tiles']} tiles hold gaps and run the network. Inputs in the page cache; each "
        f"row in a fresh process, GDAL block cache {args.gdal_cache} MiB.",
        "",
        rows,
        "",
        f"**End to end / compute floor at {args.size}²: {big['seconds'] / floor['seconds']:.2f}"
        f" in seconds, {big['cpu_seconds'] / floor['floor_cpu_seconds']:.2f} in CPU seconds** "
        + (f"(mean of the {args.repeats} fills over the mean of the floors) "
           if args.repeats > 1 else "")
        + f"(goal ≤ 1.15). **Peak RSS {args.size}² / {args.small}²: {rss:.2f}** "
        f"({big['peak_rss_mb']:.0f} / {small['peak_rss_mb']:.0f} MiB; goal ≤ 1.3 and below "
        "1.5 GB).",
        "",
        f"The fill's log at {args.size}²: " + " ".join(big["log"][1:]),
        "",
        *scene_lines(args.scene, scene),
        "Compute floor: the same session (same options and threads) on the same tile grid and "
        "batches as the fill (" + describe_batches(floor_run) + " in the run before the fill), "
        "every batch read and scaled untimed, bound with IOBinding, and only session.run timed; "
        "run before and after the fill (and the naive way; at the large size between repeated "
        "fills too), each ratio is to the mean of the floors of its size, so that a drift of "
        "the machine's speed during the run cancels out (this shared virtual machine's speed "
        "varies by tens of percent over minutes). "
        "Naive: same session, tile by tile, one tile per run, plain GDAL read and write of each "
        "core, no blending, no overlap of I/O and compute"
        + ("." if args.naive_at_size else f"; run at {args.small}² only (--naive-at-size adds "
           f"{args.size}²), as its time grows with the image like the fill's.")
        + " CPU s: all threads of the child during the work (the floor's: of its timed runs); "
        "on a shared or loaded machine, CPU × floor is the steadier ratio. Main thread: "
        "reading, scaling, blending, writing."
        + (f" The last row is the floor at {ALTERNATIVE[0]} px tiles × {ALTERNATIVE[1]} (the "
           f"engine's default batch), against which {TILE_SIZE} px tiles were chosen."
           if args.alternative else ""),
        "",
        f"Machine: {onnx_machine()}; load average {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end.",
        "",
        f"Command: `{command}`; whole run {total:.0f} s.",
        "",
    ])
    if args.profile:
        profile = run_child(
            Run("profile", args.small, TILE_SIZE, BATCH, "cProfile of the fill"), folder,
            args.gdal_cache,
        )
        report += (
            f"\nProfile (main thread, {args.small}², {profile['seconds']:.1f} s under cProfile): "
            "bench_onnx_profile.txt.\n"
        )
    (folder / "bench_onnx.md").write_text(report)
    print(rows)
    print(f"\nwhole run: {total:.0f} s; written to {folder / 'bench_onnx.md'}")


# ---------------------------------------------------------------- in-memory arrays (GPU)


def gpu_arrays(args: argparse.Namespace) -> None:
    """`fill_arrays` on a SIZE² in-memory mosaic against the device compute floor."""
    make_plugin_importable()
    from gapfill.core.learned.onnx_fill import fill_arrays
    from gapfill.core.learned.tiling import read_tile

    folder = args.output.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    model = args.model or folder / MODEL_FILE
    if not model.exists():
        from bench_unet import export_unet

        export_unet(model, TILE_SIZE)
    shipped = folder / SAMPLES_FILE
    samples = dict(np.load(shipped)) if shipped.exists() else random_samples()
    source = "the real SEN12MS-CR samples" if shipped.exists() else "random-ish samples"
    layout = Layout.draw(args.size, len(samples["target"]))
    arrays = {role: mosaic_array(stack, layout, args.size) for role, stack in samples.items()}
    gap = arrays.pop("gap_mask")[0] != 0
    lines: list[str] = []
    runner = open_runner(model, args.device, lines.append)
    batch = args.batch or (GPU_BATCH if args.device == "cuda" else BATCH)
    grid = runner.plan(args.size, args.size, args.tile, None, lambda _: None)

    def read_job(tile: Any) -> Any:
        window = grid.read_window(tile)
        raw = {role: read_tile(array, window).astype(np.float32) for role, array in arrays.items()}
        return runner.prepare(grid, tile, raw, read_tile(gap, window), False)

    floor = floor_of(runner.session, runner.card, grid, gap, batch, read_job)
    start = time.perf_counter()
    fill_arrays(
        runner.session, runner.card, arrays, gap, tile_size=args.tile, batch_size=batch,
        log=lines.append,
    )
    seconds = time.perf_counter() - start
    megapixels = args.size**2 / 1e6
    rows = "\n".join([
        "| method | seconds | Mpx/s | % of floor speed |",
        "|---|---:|---:|---:|",
        f"| compute floor (IOBinding, device batches) | {floor['floor_seconds']:.2f} | "
        f"{megapixels / floor['floor_seconds']:.2f} | 100 % |",
        f"| fill_arrays | {seconds:.2f} | {megapixels / seconds:.2f} | "
        f"{100 * floor['floor_seconds'] / seconds:.0f} % |",
    ])
    report = "\n".join([
        "# ONNX fill on in-memory arrays against the device compute floor",
        "",
        f"{args.size}² px, 13 + 2 bands mosaic of {source}; tiles of {args.tile} px, batches "
        f"of {batch}; {floor['active_tiles']} of {floor['tiles']} tiles run the network "
        f"({describe_batches(floor)}). Floor: {FLOOR_RUNS} representative batches per size "
        "bound on the device with IOBinding, mean time × the fill's batches (goal: fill_arrays "
        "≥ 70 % of the floor's speed).",
        "",
        rows,
        "",
        *lines,
        "",
        f"Peak RSS {peak_rss_mb():.0f} MiB. Command: `python {shlex.join(sys.argv)}`.",
        "",
    ])
    (folder / "bench_onnx_gpu.md").write_text(report)
    print(report)


def onnx_machine() -> str:
    """The machine line of the file benchmark (GDAL is there; --gpu-arrays needs no GDAL)."""
    import onnxruntime

    return machine(f"ONNX Runtime {onnxruntime.__version__}, ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=Path("bench-output"))
    parser.add_argument("--size", type=int, help="side of the large mosaic (px; default 8192, "
                        "10980 with --gpu-arrays)")
    parser.add_argument("--small", type=int, default=2048, help="side of the small mosaic (px)")
    parser.add_argument("--scene", type=int, default=10980, help="side of the mosaic filled by "
                        "the bundled model (px; 0: skip)")
    parser.add_argument("--scene-only", action="store_true",
                        help="only the bundled model on the mosaic of --scene px")
    parser.add_argument("--gdal-cache", type=int, default=128,
                        help="GDAL block cache, MiB (default 128: two rows of a strip's input "
                        "blocks at 8192², so nothing is decompressed twice; at 64 it is; a "
                        "larger cache only fills further at the large size)")
    parser.add_argument("--naive-at-size", action="store_true",
                        help="run the naive way at SIZE too, not only at SMALL (≈ doubles the "
                        "run time)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="fills at SIZE, each followed by a floor (default 2)")
    parser.add_argument("--alternative", action="store_true",
                        help=f"add the floor at {ALTERNATIVE[0]} px tiles × {ALTERNATIVE[1]}")
    parser.add_argument("--profile", action="store_true",
                        help="also profile the fill at the small size (bench_onnx_profile.txt)")
    parser.add_argument("--gpu-arrays", action="store_true",
                        help="fill_arrays on in-memory arrays vs the device floor; no GDAL")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                        help="with --gpu-arrays")
    parser.add_argument("--model", type=Path, help="with --gpu-arrays: the ONNX model "
                        f"(default OUTPUT/{MODEL_FILE}, exported if missing)")
    parser.add_argument("--tile", type=int, default=TILE_SIZE, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--measure", choices=("floor", "fill", "naive", "profile"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args)))
    elif args.gpu_arrays:
        args.size = args.size or 10980
        gpu_arrays(args)
    elif args.scene_only:
        print("\n".join(scene_lines(args.scene, fill_scene_mosaic(args))))
    else:
        args.size = args.size or 8192
        bench(args)


if __name__ == "__main__":
    main()
