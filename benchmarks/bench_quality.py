"""`make bench-quality`: how well every fill method recovers known pixels of the real data.

Every Sentinel-2 fill runs through the plugin as a user would run it (`qgis_process`:
gapfill:simulategaps, gapfill:buildgapmask, gapfill:filltemporal (with and without edge
correction), gapfill:fillspatial (inverse distance and pyramid), gapfill:filldip,
gapfill:fillgaps (the bundled model that fits), gapfill:fillscene (learned from the scene,
default budget, seed 0), gapfill:evaluatefill), on fixed cases, so numbers compare across
versions:

(a) sen12mscr_ts: four clear dates, gaps laid from the real cloud and shadow labels (0 and 4) of
    cloud_labels (512×512; each date takes another 256×256 quarter), filled from the nearest
    clear date before and after, whose own clouds are excluded by their spectral gap masks.
(b) eolearn_slovenia: reference scenes 3 and 2, gaps from real s2cloudless masks of other dates
    of the same place (cloud_mask.tif bands), filled from the four other reference scenes with
    their spectral gap masks (scene 0 is all cloud: its mask removes it; scene 1 is hazy).
(c) sen12mscr: every sample with partial cloud cover, its real cloud mask, S1 of the sample,
    under both protocols: SEN12MS-CR (the cloudy image filled, compared with the clear image
    of another date) and gap filling (the mask laid on the clear image, compared with it).
(e) dip_scotland: the mean 2019 Sentinel-2 RGB composite with the real cloud mask of another
    date laid on it (gap filling), S1 as auxiliary source.
(f) sen12mscr_pairs: the 36 georeferenced pairs (5 scenes, no S1), gaps from the spectral
    cloud/shadow mask of each cloudy image (dilated 2 px), both protocols.
(g) sen12mscr_georef: the 3 clear images with S1, the spectral cloud mask of
    ROIs1868_summer_19_p30's cloudy image laid on them (gap filling).
(d) s5p_co/training: all 25 Sentinel-5P CO blocks (16 days each), the STPConv artificial gaps
    (VALMASK) evaluated; baselines of core/fills/timeseries_baselines.py (per-pixel temporal mean,
    per-pixel linear interpolation in time) and the core of gapfill:fillspatial per day.

Spatial fills search up to 300 px so that they reach every gap pixel of these samples.
Sentinel-2 metrics on DN / 10000 clipped to [0, 1] (data range 1); S5P on values as stored
(mol/m²) with a fixed data range of 0.1 mol/m² for PSNR and SSIM. Writes each case's report
(HTML, CSV, JSON), quality.md (summary) and quality_full.md (every sub-case) into the output
folder.

    python benchmarks/bench_quality.py --output bench-output/quality [--jobs 2]
        [--cases a,b,c,d,e,f,g] [--methods "scene fill,spatial IDW,…"]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shlex
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from quality_cases import (  # noqa: F401 - also the recipes' import point
    BUNDLED,
    DIP,
    FILLS,
    GAP_FILLING,
    GEOREF_CLEAR,
    HISTOGRAM,
    HISTOGRAM_EDGES,
    PYRAMID,
    REGRESSION,
    SCENE,
    SEN12MSCR,
    SIMILAR,
    SLOVENIA,
    SLOVENIA_DATES,
    SPATIAL,
    TEMPORAL,
    TEMPORAL_EDGES,
    WEIGHTED_EDGES,
    WEIGHTED_HISTOGRAM,
    Row,
    Runner,
    SimulatedCase,
    pair_names,
    run_dip_scotland,
    run_georef,
    run_pair,
    run_sen12mscr,
    run_simulated,
    sen12mscr_samples,
    series_cases,
    slovenia_cases,
)

from harness import data_folder, machine, make_plugin_importable, timed

S5P = "s5p_co/training"
S5P_MAX_DISTANCE = 300
S5P_DATA_RANGE = 0.1  # mol/m², fixed: nearly all true values lie in [0, 0.1] (a few outliers)
COLUMNS = ("MAE", "RMSE", "PSNR (dB)", "SSIM", "SAM (°)", "NDVI MAE", "filled")
KEYS = ("mae", "rmse", "psnr", "ssim", "sam", "ndvi_mae", "filled_fraction")
CLASSICAL = (SPATIAL, PYRAMID, TEMPORAL, HISTOGRAM, TEMPORAL_EDGES, HISTOGRAM_EDGES,
             WEIGHTED_HISTOGRAM, WEIGHTED_EDGES, REGRESSION, SIMILAR)
CASE_NAMES = {
    "a": "sen12mscr_ts, simulated gaps",
    "b": "eolearn_slovenia, simulated gaps",
    "c": "sen12mscr, real cloud masks, S1",
    "d": "s5p_co, STPConv gaps",
    "e": "dip_scotland, real cloud shapes",
    "f": "sen12mscr_pairs, spectral cloud masks, no S1",
    "g": "sen12mscr_georef, another scene's cloud mask, S1",
}


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
        rows.append(Row("d", f"s5p_co {len(blocks)} blocks", GAP_FILLING, method, metrics))
    return rows


def cell(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value  # "inf", "nan"
    return f"{value:.4g}"


def table(rows: list[Row]) -> str:
    """Every sub-case, every method."""
    lines = ["| case | protocol | method | " + " | ".join(COLUMNS) + " |",
             "|---|---|---|" + "---:|" * len(COLUMNS)]
    for row in rows:
        values = [cell(row.metrics.get(key)) for key in KEYS]
        values[-1] = f"{100 * row.metrics['filled_fraction']:.1f} %"
        lines.append(f"| {row.case} | {row.protocol} | {row.method} | "
                     + " | ".join(values) + " |")
    return "\n".join(lines)


def number(row: Row, key: str) -> float:
    value = row.metrics.get(key)
    return math.nan if value is None or isinstance(value, str) else float(value)


def summary(rows: list[Row]) -> str:
    """Per case and protocol, each method's means over the sub-cases that every method filled
    (≥ 95 % of the evaluation pixels), and its PSNR against the best classical fill of each
    sub-case: the mean difference and the worst."""
    lines = ["| case | protocol | method | sub-cases | PSNR (dB) | SAM (°) | MAE | "
             "Δ PSNR vs best classical: mean | worst |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    groups = sorted({(row.group, row.protocol) for row in rows})
    for group, protocol in groups:
        chosen = [r for r in rows if (r.group, r.protocol) == (group, protocol)]
        cases = sorted({r.case for r in chosen})
        complete = [c for c in cases if all(
            number(r, "filled_fraction") >= 0.95 for r in chosen if r.case == c)]
        methods = list(dict.fromkeys(r.method for r in chosen))
        for method in methods:
            of = {r.case: r for r in chosen if r.method == method and r.case in complete}
            if not of:
                continue
            deltas = []
            for case, row in of.items():
                classical = [number(r, "psnr") for r in chosen
                             if r.case == case and r.method in CLASSICAL]
                if classical and row.method not in CLASSICAL:
                    deltas.append(number(row, "psnr") - max(classical))
            means = {key: float(np.nanmean([number(r, key) for r in of.values()]))
                     for key in ("psnr", "sam", "mae")}
            delta = f"{np.mean(deltas):+.2f} | {min(deltas):+.2f}" if deltas else "– | –"
            lines.append(
                f"| ({group}) {CASE_NAMES[group]} | {protocol} | {method} | {len(of)} | "
                f"{means['psnr']:.2f} | {means['sam']:.2f} | {means['mae']:.4f} | {delta} |"
            )
    return "\n".join(lines)


def scene_decisions(folder: Path) -> str:
    """What the scene fill found on each sub-case (its scene_report.json): the choice, the
    report blocks' PSNR of the choice and of the best classical fill there, the adapted
    network's selection blocks, and the confidence layer's calibration on the report blocks."""
    lines = ["| sub-case | chosen | report PSNR | best classical on the report blocks | "
             "network: blocks won | confidence ρ | 90 % bound holds |",
             "|---|---|---:|---|---:|---:|---:|"]
    for path in sorted(folder.rglob("scene_report/scene_report.json")):
        report = json.loads(path.read_text())
        psnr = {c["name"]: (c.get("report") or {}).get("psnr") for c in report["candidates"]}
        classical = [c["name"] for c in report["candidates"] if c["kind"] == "classical"
                     and isinstance(psnr[c["name"]], float)]
        best = max(classical, key=lambda name: psnr[name]) if classical else None
        network = report.get("network") or {}
        won = (f"{network['selection_blocks_won']} of {network['selection_blocks']}"
               if network else "–")
        calibration = (report.get("confidence") or {}).get("report") or {}
        rho, cover = calibration.get("rank_correlation"), calibration.get("coverage_90")
        chosen = report["chosen"]
        lines.append(
            f"| {path.parent.parent.relative_to(folder)} | {chosen} | {cell(psnr.get(chosen))} | "
            + (f"{best} {cell(psnr[best])}" if best else "–")
            + f" | {won} | {cell(rho)} | "
            + (f"{100 * cover:.0f} %" if isinstance(cover, float) else "–") + " |"
        )
    return "\n".join(lines) if len(lines) > 2 else ""


def run_all(data: Path, folder: Path, jobs: int, cases: set[str],
            methods: set[str] | None, mask_method: int = 0,
            protocols: set[str] | None = None) -> list[Row]:
    """Masks of the other dates first, then every case chain, `jobs` qgis_process at a time;
    the S5P baselines (numpy) meanwhile."""
    runner = Runner(data, folder, methods, mask_method, protocols)
    simulated = [c for c in series_cases() + slovenia_cases() if c.group in cases]
    masks = sorted({other for case in simulated for other in case.others})
    with ThreadPoolExecutor(jobs) as pool:
        timed(f"{len(masks)} spectral gap masks of the other dates",
              lambda: list(pool.map(runner.gap_mask, masks)))
        chains = [pool.submit(run_simulated, runner, case) for case in simulated]
        if "c" in cases:
            chains += [pool.submit(run_sen12mscr, runner, s) for s in sen12mscr_samples(data)]
        if "e" in cases:
            chains.append(pool.submit(run_dip_scotland, runner))
        if "f" in cases:
            chains += [pool.submit(run_pair, runner, name) for name in pair_names(data)]
        if "g" in cases:
            chains += [pool.submit(run_georef, runner, name) for name in GEOREF_CLEAR]
        s5p = timed("S5P baselines", lambda: run_s5p(data)) if "d" in cases else []
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
    parser.add_argument("--cases", default=",".join(CASE_NAMES),
                        help="case letters to run, e.g. a,b,c (default: all)")
    parser.add_argument("--methods", default="",
                        help="comma-separated method names to run (default: all)")
    parser.add_argument("--protocols", default="",
                        help="single-date protocols to run: 'gap filling', 'SEN12MS-CR' "
                        "(comma-separated; default: both)")
    parser.add_argument("--scene-steps", type=int, default=0,
                        help="training steps of the scene fill's network at most (0: its time "
                        "budget alone); a step limit makes the scores independent of the load")
    parser.add_argument("--mask-method", type=int, default=0,
                        help="gapfill:buildgapmask METHOD of the other dates' masks (0 spectral, "
                        "5 automatic, 6 ukis-csmask, 7 s2cloudless)")
    args = parser.parse_args()
    start = time.perf_counter()
    make_plugin_importable()
    folder = args.output.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    data = data_folder()
    if args.scene_steps:  # the budget stays as a bound: the steps decide
        FILLS[SCENE][1].update(MAX_STEPS=args.scene_steps, BUDGET=60)
    cases = {c.strip() for c in args.cases.split(",") if c.strip()}
    methods = {m.strip() for m in args.methods.split(",") if m.strip()} or None
    protocols = {p.strip() for p in args.protocols.split(",") if p.strip()} or None
    rows = run_all(data, folder, args.jobs, cases, methods, args.mask_method, protocols)
    total = time.perf_counter() - start
    command = f"GAPFILL_DATA={data} python {shlex.join(sys.argv)}"
    footer = [
        f"Machine: {machine()}.",
        "",
        f"Command: `{command}`; whole run {total:.0f} s, CPU time {cpu_seconds():.0f} s "
        f"({args.jobs} qgis_process runs at a time).",
        "",
    ]
    header = ["# Fill quality on the real data", "",
              (__doc__ or "").split("\n\n", 1)[1].split("\n    python")[0].strip(), ""]
    decisions = scene_decisions(folder)
    if decisions:
        footer = ["## What the scene fill found on each sub-case", "", decisions, "", *footer]
    (folder / "quality.md").write_text("\n".join(header + [summary(rows), ""] + footer))
    (folder / "quality_full.md").write_text("\n".join(header + [table(rows), ""] + footer))
    (folder / "quality.json").write_text(json.dumps([row.__dict__ for row in rows], indent=1))
    print(summary(rows))
    print(f"\nwhole run: {total:.0f} s (CPU {cpu_seconds():.0f} s); written to "
          f"{folder / 'quality.md'}, quality_full.md, quality.json")


if __name__ == "__main__":
    main()
