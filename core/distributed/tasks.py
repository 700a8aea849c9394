"""What runs on the workers: inspecting a job, building its gap masks, filling it (whole, or one
tile), putting its tiles together. Each task returns a record (plain JSON-able data) and never
raises for a job's own failure, so one failing job never stops the others; only a cancel
raises.

Cancel reaches the workers through a Dask `Event` named by the run, polled at most twice a
second by the fills' `cancelled` callback (they check it once per block).
"""

from __future__ import annotations

import dataclasses
import os
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import Cancelled, GapfillError, MissingDependencyError
from ..masks.gap_mask import MaskSettings, build_gap_mask
from ..progress import CancelledFn, never_cancelled
from ..raster.access import Window, open_raster
from ..raster.fill_engine import FillReport, conclude
from ..raster.output import remove_stale_partials
from .jobs import BUILD, Job, with_masks
from .manifest import change_of, checksum, fingerprint, now, unchanged
from .methods import Hooks
from .tiles import merge_reports, remove_tiles, tile_path, write_mosaic

CANCEL_POLL = 0.5  # seconds between two looks at the run's cancel event
BUILT_MASK = MaskSettings(method="spectral", dilation=2)  # as the scene fill builds its own
Record = dict[str, Any]


def cancel_flag(event_name: str | None) -> CancelledFn:
    """The `cancelled` callback of a task: whether the run's cancel event is set."""
    if event_name is None:
        return never_cancelled
    from distributed import Event

    event = Event(event_name)
    state = {"checked": 0.0, "set": False}

    def cancelled() -> bool:
        if not state["set"] and time.monotonic() - state["checked"] >= CANCEL_POLL:
            state["checked"] = time.monotonic()
            state["set"] = event.is_set()
        return state["set"]

    return cancelled


def worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except ValueError:  # not inside a worker (a serial run)
        return "local"


def new_record(job: Job, tile_size: int = 0) -> Record:
    return {
        "id": job.id, "status": "running", "method": job.method, "job": job.definition(),
        "tile_size": tile_size, "worker": worker_address(), "started": now(), "log": [],
    }


@contextmanager
def failures(record: Record) -> Iterator[None]:
    """Record a job's failure (the engine's message; a traceback for what is a bug) instead of
    raising it; a cancel still stops the run."""
    start = time.perf_counter()
    try:
        yield
        record["status"] = "done"
    except Cancelled:
        raise
    except (GapfillError, MissingDependencyError, OSError) as error:
        record.update(status="failed", error=str(error))
    except Exception as error:  # noqa: BLE001 - recorded with its traceback, never swallowed
        record.update(status="failed", error=f"unexpected {type(error).__name__}: {error}",
                      traceback=traceback.format_exc())
    finally:
        record["seconds"] = round(record.get("seconds", 0.0) + time.perf_counter() - start, 3)
        record["finished"] = now()


def task_hooks(record: Record, cancel: str | None) -> Hooks:
    return Hooks(cancelled=cancel_flag(cancel), log=record["log"].append)


def report_fields(report: FillReport) -> dict[str, Any]:
    return dataclasses.asdict(report) | {"unfilled": report.unfilled}


def report_of(fields: dict[str, Any]) -> FillReport:
    names = {item.name for item in dataclasses.fields(FillReport)}
    return FillReport(**{name: value for name, value in fields.items() if name in names})


def own_files(job: Job) -> list[str]:
    """What a job writes: its output, and the gap masks it builds beside it."""
    if job.mask != BUILD or job.fill.builds_own_masks:
        return [job.output]
    masks = [built_mask_path(job.output)]
    if job.fill.reads("other_dates") and not job.other_masks:
        masks += [built_mask_path(job.output, k) for k in range(1, len(job.other_dates) + 1)]
    return [job.output, *masks]


def built_mask_path(output: str, index: int = 0) -> str:
    path = Path(output)
    suffix = f"_gap_mask_{index}" if index else "_gap_mask"
    return str(path.with_name(f"{path.stem}{suffix}.tif"))


# --- the tasks ----------------------------------------------------------------------------------


def inspect_job(job: Job, previous: Record | None, tile_size: int, overwrite: bool) -> Record:
    """Before a run: the target's size (it plans the tiles and weighs the progress), whether a
    previous record of the same job still holds (inputs and outputs unchanged: the job is
    then skipped), which of its tiles do, and a refusal to replace files of someone else."""
    inspection: Record = {"id": job.id, "verified": False, "tiles": {}, "note": ""}
    same = (previous is not None and previous.get("job") == job.definition()
            and previous.get("tile_size", 0) == tile_size)
    if previous is not None and not same:
        inspection["note"] = "its definition or tile size changed since the last run"
    try:
        dataset = open_raster(job.target, "target image")
        inspection["size"] = [dataset.RasterXSize, dataset.RasterYSize]
        dataset = None
        if same and previous.get("status") == "done":
            recorded = previous["inputs"] + previous["outputs"]
            changed = [f"{item['path']}: {why}" for item in recorded
                       if (why := change_of(item))]
            inspection["verified"] = not changed
            if changed:
                inspection["note"] = (
                    f"its inputs or outputs changed since the last run ({'; '.join(changed)})"
                )
        elif same:
            inspection["tiles"] = {
                name: tile for name, tile in previous.get("tiles", {}).items()
                if tile.get("output") and unchanged(tile["output"])
            }
        ours = previous is not None and previous.get("job", {}).get("output") == job.output
        if not overwrite and not ours:
            for path in own_files(job):
                if os.path.exists(path):
                    raise GapfillError(
                        f"The output '{path}' exists and this run's manifest did not write "
                        "it. Choose another output, or let the run replace existing outputs "
                        "(the overwrite option of gapfill fill-many, 'Replace existing "
                        "outputs' in Processing)."
                    )
    except (GapfillError, OSError) as error:
        inspection["error"] = str(error)
    return inspection


def prepare(job: Job, hooks: Hooks) -> tuple[Job, list[Record]]:
    """The job with its gap masks built where it asks for them, and their checksums."""
    if job.mask != BUILD:
        return job, []
    if job.fill.builds_own_masks:
        return with_masks(job, None, job.other_masks), []
    paths = own_files(job)[1:]
    sources = [job.target, *job.other_dates][: len(paths)]
    for source, path in zip(sources, paths, strict=True):
        remove_stale_partials(path)
        report = build_gap_mask(source, path, BUILT_MASK, cancelled=hooks.cancelled)
        hooks.log(f"Gap mask of '{source}' built (spectral score, dilated "
                  f"{BUILT_MASK.dilation} px): {100 * report.gap_fraction:.1f} % gaps.")
    return with_masks(job, paths[0], tuple(paths[1:]) or job.other_masks), [
        checksum(path) for path in paths
    ]


def finish(record: Record, job: Job, report: FillReport, facts: dict, outputs: list[Record],
           masks: list[Record]) -> None:
    record.update(
        inputs=[fingerprint(path) for path in job.inputs() if path not in
                {mask["path"] for mask in masks}],
        outputs=outputs + masks, report=report_fields(report), facts=facts,
        messages=report.messages,
    )


def run_job(job: Job, cancel: str | None = None) -> Record:
    """Fill a whole job on this worker."""
    record = new_record(job)
    with failures(record):
        hooks = task_hooks(record, cancel)
        remove_stale_partials(job.output)
        ready, masks = prepare(job, hooks)
        report, facts = job.fill.run(ready, job.output, None, hooks)
        finish(record, ready, report, facts, [checksum(job.output)], masks)
    return record


def prepare_tiles(job: Job, tile_size: int, cancel: str | None = None) -> Record:
    """Before the tiles of a job: its gap masks, built once for the whole image."""
    record = new_record(job, tile_size)
    with failures(record):
        record["ready"], record["masks"] = prepare(job, task_hooks(record, cancel))
    return record


def fill_tile(prepared: Record, name: str, window: Window, cancel: str | None = None) -> Record:
    """Fill one tile of a prepared job into its own GeoTIFF."""
    tile: Record = {"name": name, "window": list(window), "worker": worker_address(),
                    "log": []}
    if prepared["status"] != "done":
        return tile | {"error": "its gap masks could not be built"}
    job: Job = prepared["ready"]
    path = tile_path(job.output, name)
    with failures(tile):
        remove_stale_partials(path)
        report, _ = job.fill.run(job, path, window, task_hooks(tile, cancel))
        tile.update(report=report_fields(report), output=checksum(path))
    tile.pop("status")  # a tile is done when it has an output
    return tile


def assemble(prepared: Record, tiles: list[Record], cancel: str | None = None) -> Record:
    """Put the tiles of a job together into its output (VRT or COG) and make its record."""
    record = {key: value for key, value in prepared.items() if key not in ("ready", "masks")}
    record.update(worker=worker_address(), log=record["log"] + [
        line for tile in tiles for line in tile.get("log", [])
    ])
    record["tiles"] = {tile["name"]: tile for tile in tiles if "output" in tile}
    if prepared["status"] != "done":
        return record
    failed = [tile for tile in tiles if "output" not in tile]
    job: Job = prepared["ready"]
    with failures(record):
        if failed:
            raise GapfillError(f"{len(failed)} of {len(tiles)} tiles failed, e.g. tile "
                               f"{failed[0]['name']}: {failed[0].get('error')}")
        report = conclude(merge_reports([report_of(t["report"]) for t in tiles]), job.target)
        if cancel_flag(cancel)():
            raise Cancelled("the run was cancelled")
        remove_stale_partials(job.output)
        ordered = sorted(tiles, key=lambda tile: tile["name"])
        write_mosaic([tile["output"]["path"] for tile in ordered], job.output)
        outputs = [checksum(job.output)]
        if job.output.lower().endswith(".vrt"):
            outputs += [tile["output"] for tile in ordered]
        else:
            remove_tiles(job.output)
            del record["tiles"]
        record["seconds"] += sum(t["seconds"] for t in tiles if not t.get("reused"))
        finish(record, job, report, {"tiles": len(tiles)}, outputs, prepared["masks"])
    if record["status"] == "failed" and not failed:
        remove_tiles(job.output)
    return record
