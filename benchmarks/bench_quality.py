"""`make bench-quality`: how well every fill method recovers known pixels of the real data.

Every Sentinel-2 fill runs through the plugin as a user would run it (`qgis_process`:
gapfill:simulategaps, gapfill:buildgapmask, gapfill:filltemporal METHOD 0 and 1,
gapfill:fillspatial, gapfill:evaluatefill), on fixed cases, so numbers compare across versions:

(a) sen12mscr_ts: four clear dates, gaps laid from the real cloud and shadow labels (0 and 4) of
    cloud_labels (512×512; each date takes another 256×256 quarter), filled from the nearest
    clear date before and after, whose own clouds are excluded by their spectral gap masks.
(b) eolearn_slovenia: reference scenes 3 and 2, gaps from real s2cloudless masks of other dates
    of the same place (cloud_mask.tif bands), filled from the four other reference scenes with
    their spectral gap masks (scene 0 is all cloud: its mask removes it; scene 1 is hazy).
(c) sen12mscr: cloudy images with their real cloud masks, the clear image of the sample as
    reference; only pixels under the real mask are evaluated; only the spatial fill applies
    (the temporal fills need other dates).
    Deep Image Prior (gapfill:filldip, S1 as auxiliary source) is run on the same samples.
(e) dip_scotland: the mean 2019 Sentinel-2 RGB composite with the real cloud mask of another
    date laid on it; spatial IDW against Deep Image Prior with the Sentinel-1 image as auxiliary.
(d) s5p_co/training: all 25 Sentinel-5P CO blocks (16 days each), the STPConv artificial gaps
    (VALMASK) evaluated; baselines of core/fills/timeseries_baselines.py (per-pixel temporal mean,
    per-pixel linear interpolation in time) and the core of gapfill:fillspatial per day.

The spatial fill searches up to 300 px so that it can reach every gap pixel of these samples.
Sentinel-2 metrics on DN / 10000 clipped to [0, 1] (data range 1); S5P on values as stored
(mol/m²) with a fixed data range of 0.1 mol/m² for PSNR and SSIM. Writes each case's report
(HTML, CSV, JSON) and quality.md into the output folder.

    python benchmarks/bench_quality.py --output bench-output/quality [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shlex
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import data_folder, machine, make_plugin_importable, timed
from qgis_runner import QgisProcess

TEMPORAL, HISTOGRAM, SPATIAL = "temporal interpolation", "histogram matching", "spatial IDW"
DIP = "deep image prior + S1"
DIP_FILL = ("gapfill:filldip", {"ITERATIONS": 300, "SEED": 0, "DEVICE": 1})
FILLS: dict[str, tuple[str, dict[str, object]]] = {
    TEMPORAL: ("gapfill:filltemporal", {"METHOD": 0}),
    HISTOGRAM: ("gapfill:filltemporal", {"METHOD": 1}),
    SPATIAL: ("gapfill:fillspatial", {"MAX_DISTANCE": 300}),
}
SERIES = "sen12mscr_ts"
LABELS = "cloud_labels/labels.tif"
CLOUD_LABELS = "4, 0"  # cloud, cloud shadow
SLOVENIA = "eolearn_slovenia"
# Scene dates, found by matching each scene's NDVI with ndvi.tif, whose band descriptions hold
# the dates (exact match for every scene).
SLOVENIA_DATES = {0: "2015-08-20", 1: "2015-07-31", 2: "2015-09-09", 3: "2015-08-30",
                  4: "2015-07-11"}
SINGLE_DATE_SAMPLES = ("4287", "5254", "5278", "6553")  # partly cloudy (17 % to 61 %)
S5P = "s5p_co/training"
S5P_MAX_DISTANCE = 300
S5P_DATA_RANGE = 0.1  # mol/m², fixed: nearly all true values lie in [0, 0.1] (a few outliers)
COLUMNS = ("MAE", "RMSE", "PSNR (dB)", "SSIM", "SAM (°)", "NDVI MAE", "filled")
KEYS = ("mae", "rmse", "psnr", "ssim", "sam", "ndvi_mae", "filled_fraction")
CASE_NAMES = {
    "a": "sen12mscr_ts, simulated gaps",
    "b": "eolearn_slovenia, simulated gaps",
    "c": "sen12mscr, real clouds",
    "d": "s5p_co, STPConv gaps",
    "e": "dip_scotland, real cloud shapes",
}


@dataclass(frozen=True)
class SimulatedCase:
    """A clear image, a real gap pattern laid on it, and the other dates to fill from."""

    group: str
    label: str
    clear: str
    gaps: dict[str, object]  # GAP_SOURCE, GAP_BAND / GAP_VALUES, SHIFT_X, SHIFT_Y…
    others: tuple[str, ...]
    dates: str  # target first: the cloudy copy's file name holds no date


@dataclass(frozen=True)
class Row:
    group: str
    case: str
    method: str
    metrics: dict[str, object]


def series_cases() -> list[SimulatedCase]:
    targets = {  # clear date: (nearest clear date before, after), quarter of the labels
        "2018-04-26": (("2018-03-22", "2018-05-31"), (0, 0)),
        "2018-06-10": (("2018-05-31", "2018-06-25"), (256, 0)),
        "2018-08-24": (("2018-08-09", "2018-09-03"), (0, 256)),
        "2018-10-08": (("2018-09-28", "2018-10-23"), (256, 256)),
    }
    return [
        SimulatedCase(
            "a", f"{SERIES} {day}", f"{SERIES}/s2_{day}.tif",
            {"GAP_SOURCE": LABELS, "GAP_VALUES": CLOUD_LABELS, "SHIFT_X": shift[0],
             "SHIFT_Y": shift[1]},
            tuple(f"{SERIES}/s2_{other}.tif" for other in others),
            ", ".join([day, *others]),
        )
        for day, (others, shift) in targets.items()
    ]


def slovenia_cases() -> list[SimulatedCase]:
    cases = []
    for scene, band in ((3, 15), (2, 23)):  # cloud_mask bands: 2016-03-17, 2016-06-25
        others = [k for k in sorted(SLOVENIA_DATES) if k != scene]
        cases.append(SimulatedCase(
            "b", f"{SLOVENIA} scene {scene} ({SLOVENIA_DATES[scene]})",
            f"{SLOVENIA}/reference_scene_{scene}.tif",
            {"GAP_SOURCE": f"{SLOVENIA}/cloud_mask.tif", "GAP_BAND": band},
            tuple(f"{SLOVENIA}/reference_scene_{k}.tif" for k in others),
            ", ".join(SLOVENIA_DATES[k] for k in [scene, *others]),
        ))
    return cases


class Runner:
    """One qgis_process profile per worker thread (profiles are not shared between processes)."""

    def __init__(self, data: Path, folder: Path, mask_method: int = 0) -> None:
        self.data, self.folder, self.mask_method = data, folder, mask_method
        self.local = threading.local()

    def run(self, algorithm: str, parameters: dict[str, object]) -> dict[str, object]:
        if not hasattr(self.local, "qgis"):
            self.local.qgis = QgisProcess(self.folder / f".qgis-{threading.get_ident()}")
        return self.local.qgis.run(algorithm, parameters)["results"]

    def path(self, relative: str) -> Path:
        return self.data / relative

    def gap_mask(self, relative: str) -> str:
        """The spectral gap mask of a real image (1 = cloud or shadow), built once."""
        output = self.folder / "masks" / f"{Path(relative).stem}.tif"
        if not output.exists():
            self.run("gapfill:buildgapmask",
                     {"INPUT": self.path(relative), "METHOD": self.mask_method,
                      "OUTPUT": output})
        return str(output)

    def evaluate(self, folder: Path, reference: Path, filled: dict[str, str],
                 **inputs: object) -> dict:
        result = self.run("gapfill:evaluatefill", {
            "REFERENCE": reference,
            "FILLED": next(iter(filled.values())),
            "OTHER_FILLED": list(filled.values())[1:],
            "METHOD_NAMES": ", ".join(filled),
            "NDVI": True,
            "OUTPUT_FOLDER": folder / "report",
            **inputs,
        })
        return json.loads(Path(str(result["JSON"])).read_text())


def rows_of(group: str, case: str, document: dict) -> list[Row]:
    return [Row(group, case, method["name"], method["overall"]) for method in document["methods"]]


ExtraFills = Callable[[Runner, SimulatedCase, Path, dict[str, object]], dict[str, str]]


def run_simulated(runner: Runner, case: SimulatedCase,
                  extra: ExtraFills | None = None) -> list[Row]:
    """The case's classical fills scored side by side; `extra(runner, case, folder, simulated)`
    may add fills of its own (method → filled raster), scored first with the same gaps."""
    folder = runner.folder / case.label.replace(" ", "_").replace("(", "").replace(")", "")
    clear = runner.path(case.clear)
    gaps = {key: runner.path(str(value)) if key == "GAP_SOURCE" else value
            for key, value in case.gaps.items()}
    simulated = runner.run("gapfill:simulategaps", {
        "INPUT": clear, **gaps, "OUTPUT": folder / "cloudy.tif",
        "GAP_MASK": folder / "gaps.tif", "EVALUATION_MASK": folder / "evaluation.tif",
    })
    others = [runner.path(other) for other in case.others]
    other_masks = [runner.gap_mask(other) for other in case.others]
    filled = dict(extra(runner, case, folder, simulated)) if extra else {}
    for method, (algorithm, options) in FILLS.items():
        output = folder / f"{method.split()[0]}.tif"
        parameters = {"INPUT": simulated["OUTPUT"], "GAP_MASK": simulated["GAP_MASK"],
                      "OUTPUT": output, **options}
        if algorithm == "gapfill:filltemporal":
            parameters |= {"OTHER_DATES": others, "OTHER_MASKS": other_masks,
                           "DATES": case.dates}
        filled[method] = str(runner.run(algorithm, parameters)["OUTPUT"])
    document = runner.evaluate(
        folder, clear, filled,
        EVALUATION_MASK=simulated["EVALUATION_MASK"], GAPS_INPUT=simulated["OUTPUT"],
    )
    return rows_of(case.group, case.label, document)


def run_single_date(runner: Runner, sample: str) -> list[Row]:
    folder = runner.folder / f"sen12mscr_{sample}"
    cloudy = runner.path(f"sen12mscr/{sample}_s2_cloudy.tif")
    mask = runner.path(f"sen12mscr/{sample}_cloudmask.tif")
    filled = spatial_and_dip(runner, folder, cloudy, mask,
                             runner.path(f"sen12mscr/{sample}_s1.tif"))
    document = runner.evaluate(
        folder, runner.path(f"sen12mscr/{sample}_s2_clear.tif"), filled,
        EVALUATION_MASK=mask, GAPS_INPUT=cloudy,
    )
    return rows_of("c", f"sen12mscr {sample}", document)


def spatial_and_dip(runner: Runner, folder: Path, target: object, mask: object,
                    sar: Path) -> dict[str, str]:
    """The single-date fills: spatial IDW, and Deep Image Prior with the SAR as auxiliary."""
    filled = {}
    for method, (algorithm, options), extra in (
        (SPATIAL, FILLS[SPATIAL], {}),
        (DIP, DIP_FILL, {"AUXILIARY": [sar]}),
    ):
        output = folder / f"{method.split()[0]}.tif"
        parameters = {"INPUT": target, "GAP_MASK": mask, "OUTPUT": output, **options, **extra}
        filled[method] = str(runner.run(algorithm, parameters)["OUTPUT"])
    return filled


def run_dip_scotland(runner: Runner) -> list[Row]:
    folder = runner.folder / "dip_scotland"
    clear = runner.path("dip_scotland/s2_mean_2019_rgb.tif")
    simulated = runner.run("gapfill:simulategaps", {
        "INPUT": clear, "GAP_SOURCE": runner.path("dip_scotland/cloud_mask.tif"),
        "OUTPUT": folder / "cloudy.tif", "GAP_MASK": folder / "gaps.tif",
        "EVALUATION_MASK": folder / "evaluation.tif",
    })
    filled = spatial_and_dip(runner, folder, simulated["OUTPUT"], simulated["GAP_MASK"],
                             runner.path("dip_scotland/s1.tif"))
    document = runner.evaluate(folder, clear, filled, NDVI=False,
                               EVALUATION_MASK=simulated["EVALUATION_MASK"],
                               GAPS_INPUT=simulated["OUTPUT"])
    return rows_of("e", "dip_scotland", document)


def spatial_per_day(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The core of gapfill:fillspatial, one day at a time (each day has its own gaps)."""
    from gapfill.core.fills.spatial_fill import fill_nodata_arrays

    filled, reached = np.empty_like(values), np.empty_like(valid)
    for day in range(values.shape[0]):
        day_values, day_reached = fill_nodata_arrays(
            values[day][np.newaxis], valid[day], S5P_MAX_DISTANCE, 0
        )
        filled[day], reached[day] = day_values[0], day_reached | valid[day]
    return np.where(valid, values, filled), reached


def run_s5p(data: Path) -> list[Row]:
    """Every S5P block, metrics pooled over all blocks for each baseline."""
    from gapfill.core.evaluate.metrics import NO_SCALING, MetricsAccumulator
    from gapfill.core.evaluate.report import metric_fields
    from gapfill.core.evaluate.simulate_gaps import read_stpconv, stpconv_names
    from gapfill.core.fills.timeseries_baselines import temporal_linear, temporal_mean

    folder = data / S5P
    blocks = [read_stpconv(folder, name) for name in stpconv_names(folder)]
    truths = [np.where(b.y == b.nodata, np.nan, b.y.astype(np.float64)) for b in blocks]
    baselines: dict[str, Callable] = {
        "temporal mean (per pixel)": temporal_mean,
        "temporal interpolation (per pixel)": temporal_linear,
        "spatial IDW (per day)": spatial_per_day,
    }
    rows = []
    for method, baseline in baselines.items():
        accumulator = MetricsAccumulator(
            blocks[0].x.shape[0], scaling=NO_SCALING, data_range=S5P_DATA_RANGE
        )
        for block, truth in zip(blocks, truths, strict=True):
            values, filled = baseline(block.x.astype(np.float64), block.mask == 1)
            accumulator.add(truth, np.where(filled, values, np.nan), block.valmask)
        metrics = metric_fields(accumulator.result())
        metrics["sam"] = None  # bands are days: no spectrum
        rows.append(Row("d", f"s5p_co {len(blocks)} blocks", method, metrics))
    return rows


def cell(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value  # "inf", "nan"
    return f"{value:.4g}"


def table(rows: list[Row]) -> str:
    lines = ["| case | method | " + " | ".join(COLUMNS) + " |",
             "|---|---|" + "---:|" * len(COLUMNS)]
    for row in rows:
        values = [cell(row.metrics.get(key)) for key in KEYS]
        values[-1] = f"{100 * row.metrics['filled_fraction']:.1f} %"
        lines.append(f"| {row.case} | {row.method} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def mean_mae(rows: list[Row]) -> float:
    values = [row.metrics["mae"] for row in rows]
    return math.nan if any(isinstance(v, str) for v in values) else float(np.mean(values))


def reading(rows: list[Row]) -> str:
    """Per case, the fill with the lowest MAE averaged over its sub-cases."""
    parts = []
    for group, name in CASE_NAMES.items():
        methods = {row.method for row in rows if row.group == group}
        scores = {m: mean_mae([r for r in rows if r.group == group and r.method == m])
                  for m in methods}
        ranked = sorted(scores, key=scores.get)
        text = f"({group}) {name}: {ranked[0]} (mean MAE {scores[ranked[0]]:.3g}"
        if len(ranked) > 1:
            text += f"; next {ranked[1]} {scores[ranked[1]]:.3g}"
        parts.append(text + ")")
    return "Best fill by mean MAE: " + "; ".join(parts) + "."


def run_all(data: Path, folder: Path, jobs: int, mask_method: int = 0) -> list[Row]:
    """Masks of the other dates first, then every case chain, `jobs` qgis_process at a time;
    the S5P baselines (numpy) meanwhile."""
    runner = Runner(data, folder, mask_method)
    simulated = series_cases() + slovenia_cases()
    masks = sorted({other for case in simulated for other in case.others})
    with ThreadPoolExecutor(jobs) as pool:
        timed(f"{len(masks)} spectral gap masks of the other dates",
              lambda: list(pool.map(runner.gap_mask, masks)))
        chains = [pool.submit(run_simulated, runner, case) for case in simulated]
        chains += [pool.submit(run_single_date, runner, s) for s in SINGLE_DATE_SAMPLES]
        chains.append(pool.submit(run_dip_scotland, runner))
        s5p = timed("S5P baselines", lambda: run_s5p(data))
        found = timed("Sentinel-2 cases", lambda: [chain.result() for chain in chains])
    return [row for rows in found for row in rows] + s5p


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the qgis_process runs): unlike the
    wall time, it does not depend on what else the machine is doing."""
    own, children = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                     resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=Path("bench-output/quality"))
    parser.add_argument("--jobs", type=int, default=2, help="qgis_process runs at a time")
    parser.add_argument("--mask-method", type=int, default=0,
                        help="gapfill:buildgapmask METHOD of the other dates' masks (0 spectral, "
                        "5 automatic, 6 ukis-csmask, 7 s2cloudless)")
    args = parser.parse_args()
    start = time.perf_counter()
    make_plugin_importable()
    folder = args.output.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    data = data_folder()
    rows = run_all(data, folder, args.jobs, args.mask_method)
    total = time.perf_counter() - start
    command = f"GAPFILL_DATA={data} python {shlex.join(sys.argv)}"
    report = "\n".join([
        "# Fill quality on the real data",
        "",
        (__doc__ or "").split("\n\n", 1)[1].split("\n    python")[0].strip(),
        "",
        table(rows),
        "",
        reading(rows),
        "",
        f"Machine: {machine()}.",
        "",
        f"Command: `{command}`; whole run {total:.0f} s, CPU time {cpu_seconds():.0f} s "
        f"({args.jobs} qgis_process runs at a time).",
        "",
    ])
    (folder / "quality.md").write_text(report)
    print(table(rows))
    print(f"\n{reading(rows)}")
    print(f"\nwhole run: {total:.0f} s (CPU {cpu_seconds():.0f} s); written to "
          f"{folder / 'quality.md'}")


if __name__ == "__main__":
    main()
