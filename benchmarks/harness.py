"""What every benchmark shares: the plugin importable as `gapfill`, the real data folder, each
measurement in a fresh child process (so its peak memory is its own), timings on stderr, and the
machine line of the reports. numpy only at import: the GPU machine has no GDAL and no QGIS.
"""

from __future__ import annotations

import atexit
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def make_plugin_importable() -> None:
    """Put a temporary folder holding `gapfill` → the repository first on `sys.path`."""
    if any((Path(entry) / "gapfill").resolve() == REPO for entry in sys.path if entry):
        return
    folder = tempfile.mkdtemp(prefix="gapfill-pluginpath-")
    atexit.register(shutil.rmtree, folder, True)
    (Path(folder) / "gapfill").symlink_to(REPO, target_is_directory=True)
    sys.path.insert(0, folder)


def data_folder(needed: str = "sen12mscr") -> Path:
    """The real sample data: $GAPFILL_DATA, else ../shared/data beside the repository; exits
    with a clear message when the `needed` subfolder is missing."""
    folder = Path(os.environ.get("GAPFILL_DATA", REPO.parent / "shared" / "data"))
    if not (folder / needed).is_dir():
        raise SystemExit(f"real data folder {folder / needed} not found (set GAPFILL_DATA)")
    return folder


def peak_rss_mb() -> float:
    """This process's peak resident memory (MiB), from VmHWM: `ru_maxrss` would also count
    the parent's peak, which Linux carries over into a child across fork and exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status: peak memory needs Linux")


def cpu_seconds() -> float:
    """CPU time of every thread of this process so far."""
    times = os.times()
    return times.user + times.system


def timed(what: str, step: Callable[[], T]) -> T:
    """Run `step`, saying what and how long on stderr."""
    print(f"{what} …", file=sys.stderr, flush=True)
    start = time.perf_counter()
    result = step()
    print(f"{what}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return result


def measure_in_child(
    script: str, arguments: list[str], gdal_cache_mb: int = 0, output: Path | None = None
) -> dict[str, Any]:
    """Run `script --measure …` in a fresh process and return the JSON of its last line;
    `output` (the raster it wrote) is deleted afterwards."""
    env = dict(os.environ)
    if gdal_cache_mb > 0:
        env["GDAL_CACHEMAX"] = str(gdal_cache_mb)
    try:
        done = subprocess.run(
            [sys.executable, script, "--measure", *arguments],
            check=True, stdout=subprocess.PIPE, text=True, env=env,
        )
    finally:
        if output is not None:
            output.unlink(missing_ok=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def warm_page_cache(paths: Iterable[Path]) -> None:
    """Read the inputs once so that no method pays for the first read from disk."""
    for path in paths:
        with open(path, "rb") as stream:
            while stream.read(1 << 24):
                pass


def machine(libraries: str = "") -> str:
    """CPU model, cores, memory and library versions (plus `libraries`), for the report."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    try:
        from osgeo import gdal

        libraries += f"GDAL {gdal.__version__}, "
    except ImportError:
        pass
    return (
        f"{model}, {len(os.sched_getaffinity(0))} cores, {memory:.0f} GiB RAM; "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}, "
        f"{libraries}numpy {np.__version__}"
    )


def load_line(load_before: float) -> str:
    """The machine and its load average at the start and now, for a report."""
    return (
        f"Machine: {machine()}; load average {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end."
    )
