"""Run many jobs as tasks on Dask distributed: a local cluster by default, or the workers of an
existing scheduler. The client (this process) plans, submits and records; the workers read
the inputs, fill and write, so every path must mean the same file on every worker (a shared
file system, or GDAL virtual paths).

Two phases: every job is first inspected on a worker (its size, whether a previous run's
record still holds: then it is skipped); the others then run, whole or (when larger than the
tile size, for the fills that can) as tiles put together by a last task. The manifest is
written as records arrive, so an interrupted run resumes where it stopped. Dask reschedules
the tasks of a worker that dies; a task lost on three workers fails its job only.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..dependencies import require
from ..errors import Cancelled, GapfillError
from ..learned.onnx_session import LogFn, no_log
from ..progress import CancelledFn, ProgressFn, never_cancelled, no_progress
from . import tasks
from .jobs import Job
from .manifest import Manifest, now
from .tiles import check_tile_size, tile_plan

CONNECT_TIMEOUT = 20  # seconds to reach a scheduler
WORKER_TIMEOUT = 60  # seconds to wait for its first worker
POLL = 0.5  # seconds between two looks at the user's cancel
DRAIN = 15  # seconds the running tasks get to stop after a cancel
PURPOSE = "Filling many scenes on Dask distributed (gapfill fill-many, Fill many scenes)"


@dataclass
class RunSummary:
    """What a run did: job ids done, skipped (already done and checked) and failed (with the
    error), the manifest and where it ran."""

    manifest: str
    cluster: str
    workers: int
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def default_workers() -> int:
    """One worker per two cores: each fill overlaps its reads and writes with a second thread
    and compresses its output on two."""
    return max(1, len(os.sched_getaffinity(0)) // 2)


def worker_probe() -> str:
    """Run on each worker before the jobs: fails there when gapfill cannot be imported."""
    metadata = (Path(__file__).resolve().parents[2] / "metadata.txt").read_text("utf-8")
    found = re.search(r"^version\s*=\s*(\S+)", metadata, re.MULTILINE)
    return found.group(1) if found else "unknown"


@contextmanager
def connect(scheduler: str | None, workers: int, threads: int, processes: bool,
            log: LogFn) -> Iterator[Any]:
    """A client of the scheduler at `scheduler`, or of a local cluster made for the run."""
    distributed = require("distributed", PURPOSE)
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as error:
            raise GapfillError(
                f"The Dask scheduler at '{scheduler}' cannot be reached ({error}). Start one "
                "with `dask scheduler` and workers with `dask worker ADDRESS`, or give no "
                "scheduler for a local cluster."
            ) from error
        with client:
            yield client
        return
    count = workers or default_workers()
    with local_environment(), distributed.LocalCluster(
        n_workers=count, threads_per_worker=threads, processes=processes,
        dashboard_address=None, silence_logs=logging.ERROR,
    ) as cluster, distributed.Client(cluster) as client:
        log(f"Local Dask cluster: {count} worker(s) of {threads} thread(s)"
            f"{' (processes)' if processes else ' (threads of this process)'}.")
        yield client


def local_environment() -> Any:
    """Dask's settings for the worker processes it starts, without MALLOC_TRIM_THRESHOLD_:
    setting it turns off glibc's dynamic mmap threshold, so every block array of a fill is
    mapped and unmapped afresh; the fills ran 2× slower in the workers than in one process
    with it (BENCHMARKS.md, Many scenes on Dask)."""
    import dask

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return dask.config.set({"distributed.nanny.pre-spawn-environ": environ})


def check_workers(client: Any, scheduler: str | None) -> int:
    """The number of workers, after proving that each can run gapfill's tasks."""
    try:
        client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
    except TimeoutError as error:
        raise GapfillError(
            f"The Dask scheduler at '{scheduler}' has no worker after {WORKER_TIMEOUT} s. "
            f"Start workers with `dask worker {scheduler}` (with gapfill installed)."
        ) from error
    answers = client.run(worker_probe, on_error="return")
    broken = {address: answer for address, answer in answers.items()
              if isinstance(answer, BaseException)}
    if broken:
        address, answer = next(iter(broken.items()))
        raise GapfillError(
            f"{len(broken)} Dask worker(s) cannot run gapfill's tasks, e.g. {address}: "
            f"{answer}. Install the same gapfill on every worker (pip install "
            "'gapfill[distributed]'), with the plugin's package named gapfill."
        )
    versions = set(answers.values())
    if len(versions | {worker_probe()}) > 1:
        raise GapfillError(
            f"The workers run gapfill {', '.join(sorted(versions))} and this client "
            f"{worker_probe()}: the outputs would differ. Install one version everywhere."
        )
    return len(answers)


class Run:
    """One run: futures by job, progress by pixels, records into the manifest."""

    def __init__(self, client: Any, manifest: Manifest, jobs: list[Job], summary: RunSummary,
                 tile_size: int, overwrite: bool, progress: ProgressFn, log: LogFn) -> None:
        self.client, self.manifest, self.jobs = client, manifest, {job.id: job for job in jobs}
        self.summary, self.tile_size, self.overwrite = summary, tile_size, overwrite
        self.progress, self.log = progress, log
        self.name = f"gapfill-{uuid.uuid4().hex[:12]}"  # also the name of its cancel event
        self.weights: dict[str, int] = {}  # pixels per job or tile future key
        self.total = self.done_pixels = 0

    def key(self, kind: str, job: Job, part: str = "") -> str:
        return f"{kind}-{job.id}{'-' + part if part else ''}-{self.name}"

    def submit(self, function: Any, *args: Any, key: str) -> Any:
        return self.client.submit(function, *args, key=key, pure=False, retries=0)

    def advance(self, pixels: int) -> None:
        self.done_pixels += pixels
        self.progress(self.done_pixels / max(self.total, 1))

    def inspect(self, cancelled: CancelledFn) -> list[tuple[Job, dict]]:
        """Phase one; returns the jobs to run with their inspections."""
        futures = {
            self.submit(tasks.inspect_job, job, self.manifest.jobs.get(job.id), self.tile_size,
                        self.overwrite, key=self.key("inspect", job)): job
            for job in self.jobs.values()
        }
        inspections = {}
        for future in self.wait(list(futures), cancelled):
            inspections[futures[future].id] = future.result()
        self.total = sum(math.prod(i.get("size", (0, 0))) for i in inspections.values())
        to_run = []
        for job in self.jobs.values():
            inspection = inspections[job.id]
            if "error" in inspection:
                self.record(job, tasks.new_record(job, self.tile_size) | {
                    "status": "failed", "error": inspection["error"], "finished": now(),
                })
            elif inspection["verified"]:
                self.manifest.jobs[job.id]["verified"] = now()
                self.summary.skipped.append(job.id)
                self.log(f"{job.id}: done by an earlier run, outputs checked: skipped.")
                self.advance(math.prod(inspection["size"]))
            else:
                if inspection["note"]:
                    self.log(f"{job.id}: run again, {inspection['note']}.")
                to_run.append((job, inspection))
        return to_run

    def launch(self, job: Job, inspection: dict) -> list[Any]:
        """Submit a job's tasks; returns its futures, the job's record last."""
        width, height = inspection["size"]
        tiled = self.tile_size and job.fill.tiles and max(width, height) > self.tile_size
        if not tiled:
            future = self.submit(tasks.run_job, job, self.name, key=self.key("fill", job))
            self.weights[future.key] = width * height
            return [future]
        prepared = self.submit(tasks.prepare_tiles, job, self.tile_size, self.name,
                               key=self.key("masks", job))
        futures, parts = [], []
        for name, window in tile_plan(width, height, self.tile_size).items():
            if name in inspection["tiles"]:
                parts.append(inspection["tiles"][name] | {"reused": True})
                self.advance(window[2] * window[3])
                continue
            future = self.submit(tasks.fill_tile, prepared, name, window, self.name,
                                 key=self.key("tile", job, name))
            self.weights[future.key] = window[2] * window[3]
            futures.append(future)
            parts.append(future)
        self.log(f"{job.id}: {len(parts)} tiles of {self.tile_size} px "
                 f"({len(parts) - len(futures)} done by an earlier run).")
        return [*futures, self.submit(tasks.assemble, prepared, parts, self.name,
                                      key=self.key("mosaic", job))]

    def wait(self, futures: list[Any], cancelled: CancelledFn) -> Iterator[Any]:
        """The futures as they finish, checking the user's cancel in between."""
        from distributed import wait

        pending = set(futures)
        while pending:
            if cancelled():
                raise Cancelled("the run was cancelled")
            try:
                finished, pending = wait(pending, timeout=POLL, return_when="FIRST_COMPLETED")
            except TimeoutError:
                continue
            yield from finished

    def collect(self, futures: dict[Any, Job], cancelled: CancelledFn) -> None:
        """Phase two: record each job as its last future finishes."""
        for future in self.wait(list(futures), cancelled):
            job = futures[future]
            self.advance(self.weights.get(future.key, 0))
            if future.key.startswith("tile-"):
                if future.status == "finished":
                    self.keep_tile(job, future.result())
                continue
            if future.status == "finished":
                record = future.result()
            else:  # lost on too many workers (KilledWorker), or an error outside the fills
                record = tasks.new_record(job, self.tile_size) | {
                    "status": "failed", "error": f"the task was lost: {future.exception()!r}",
                    "finished": now(),
                }
            self.record(job, record)

    def keep_tile(self, job: Job, tile: dict) -> None:
        """A finished tile into the job's record, for a re-run after an interruption."""
        if "output" not in tile:
            return
        record = self.manifest.jobs.get(job.id)
        if record is None or record.get("status") != "running":
            record = tasks.new_record(job, self.tile_size) | {"tiles": {}}
            self.manifest.jobs[job.id] = record
        record.setdefault("tiles", {})[tile["name"]] = tile
        self.manifest.save()

    def record(self, job: Job, record: dict) -> None:
        self.manifest.record(job.id, record)
        for line in record.get("log", []):
            self.log(f"{job.id}: {line}")
        if record["status"] == "done":
            self.summary.done.append(job.id)
            report = record["report"]
            self.log(f"{job.id}: {report['filled']} of {report['gaps']} gap pixels filled in "
                     f"{record['seconds']:.1f} s on {record['worker']}.")
        else:
            self.summary.failed[job.id] = record["error"]
            self.log(f"{job.id}: FAILED: {record['error']}")

    def cancel(self, futures: list[Any]) -> None:
        """Ask the workers to stop within a block, drop what has not started, and give the
        running tasks a moment to remove their partial files."""
        from distributed import Event, wait

        Event(self.name, client=self.client).set()
        running = [future for future in futures if not future.done()]
        try:
            wait(running, timeout=DRAIN)
        except TimeoutError:
            pass
        self.client.cancel(running)


def run_jobs(
    jobs: list[Job],
    manifest_path: str | Path,
    *,
    scheduler: str | None = None,
    workers: int = 0,
    threads: int = 1,
    processes: bool = True,
    tile_size: int = 0,
    overwrite: bool = False,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
    log: LogFn = no_log,
) -> RunSummary:
    """Run `jobs` on Dask and record them in the manifest at `manifest_path` (read first: jobs
    it records as done, whose inputs and outputs are unchanged, are skipped). `processes`:
    local workers as processes (else threads of this process, as inside QGIS, whose
    executable cannot start Python workers). Raises `Cancelled` when cancelled; a job's own
    failure is in the summary and the manifest, never raised."""
    check_tile_size(tile_size)
    start = time.perf_counter()
    manifest = Manifest(manifest_path)
    with connect(scheduler, workers, threads, processes, log) as client:
        count = check_workers(client, scheduler)
        summary = RunSummary(str(manifest.path), scheduler or "local", count)
        run = Run(client, manifest, jobs, summary, tile_size, overwrite, progress, log)
        manifest.document["runs"].append({"started": now(), "cluster": scheduler or "local",
                                          "workers": count, "jobs": len(jobs)})
        futures: dict[Any, Job] = {}
        try:
            for job, inspection in run.inspect(cancelled):
                futures |= {future: job for future in run.launch(job, inspection)}
            run.collect(futures, cancelled)
        except Cancelled:
            run.cancel(list(futures))
            raise
        finally:
            manifest.document["runs"][-1]["finished"] = now()
            manifest.save(force=True)
    summary.seconds = round(time.perf_counter() - start, 3)
    progress(1.0)
    return summary


def summary_lines(summary: RunSummary) -> list[str]:
    """The run in a few lines, for the command line and QGIS's log."""
    lines = [
        f"{len(summary.done)} job(s) done, {len(summary.skipped)} skipped (done by an earlier "
        f"run, outputs checked), {len(summary.failed)} failed, in {summary.seconds:.1f} s on "
        f"{summary.workers} Dask worker(s) ({summary.cluster}).",
    ]
    lines += [f"FAILED {job}: {error}" for job, error in summary.failed.items()]
    lines.append(f"Manifest: {summary.manifest}")
    return lines
