"""Speed and memory of the scene fill on a Sentinel-2 tile: learning (default budget) plus the
final fill of the whole scene, end to end, in a fresh child process.

Two cases on mosaics of the real samples: "sar", the SEN12MS-CR cloudy images with their cloud
masks and S1 (bench_onnx's mosaic); "dates", the sen12mscr_ts target date with its spectral
gap mask and two other dates (bench_classical's mosaic). The goal (issue 16): a 10980² scene
within 15 minutes on 2 CPU cores with the default budget.

    python benchmarks/bench_scene.py --output bench-output [--size 10980] [--case sar,dates]
        [--budget 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

from harness import (
    data_folder,
    load_line,
    make_plugin_importable,
    measure_in_child,
    peak_rss_mb,
    timed,
    warm_page_cache,
)

GOAL_S = 15 * 60


def inputs_of(case: str, folder: Path, size: int) -> dict[str, object]:
    """The fill's file arguments for `case`, building the mosaics when missing."""
    if case == "sar":
        from bench_onnx import load_samples, write_mosaic

        paths = write_mosaic(load_samples(data_folder() / "sen12mscr"), folder, size)
        return {"target": str(paths["target"]), "gap_mask": str(paths["gap_mask"]),
                "sar": str(paths["sar"])}
    from mosaic import build_mosaics

    mosaics = build_mosaics(folder, size)
    return {"target": str(mosaics.target), "gap_mask": str(mosaics.mask),
            "other_dates": [str(p) for p in mosaics.others],
            "dates": ", ".join(str(d) for d in (mosaics.target_date, *mosaics.other_dates))}


def measure(case: str, folder: Path, size: int, budget: float, output: Path) -> dict:
    make_plugin_importable()
    from gapfill.core.fills.scene.fill_scene import SceneSettings
    from gapfill.core.fills.scene.run import fill_scene_files

    arguments = inputs_of(case, folder, size)
    said: list[str] = []  # its log (ranking, notes, choice): why it chose, beside the timings
    start = time.perf_counter()
    result = fill_scene_files(
        arguments.pop("target"), output, settings=SceneSettings(budget_minutes=budget),
        confidence_output=output.with_name(f"{output.stem}_confidence.tif"), log=said.append,
        **arguments,
    )
    seconds = time.perf_counter() - start
    output.with_name(f"{output.stem}_confidence.tif").unlink(missing_ok=True)
    chosen = result.result_of(result.chosen)
    return {
        "seconds": seconds, "learning": result.seconds["learning"],
        "fill": result.seconds["fill"], "peak_rss_mb": peak_rss_mb(), "chosen": result.chosen,
        "report_psnr": chosen.report.psnr if chosen.report else None,
        "classical": result.best_classical.name,
        "classical_psnr": result.best_classical.report.psnr
        if result.best_classical.report else None,
        "steps": (result.network or {}).get("steps"),
        "stopped_by": (result.network or {}).get("stopped_by"),
        "said": said,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=Path("bench-output"))
    parser.add_argument("--size", type=int, default=10980)
    parser.add_argument("--case", default="sar,dates")
    parser.add_argument("--budget", type=float, default=5.0, help="learning budget, minutes")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = args.output.resolve()
    if args.measure:
        print(json.dumps(measure(args.measure, folder, args.size, args.budget, args.result)))
        return
    make_plugin_importable()
    load_before, start = os.getloadavg()[0], time.perf_counter()
    said: list[str] = []
    lines = ["| case | size | total s | learning s | final fill s | peak RSS MiB | chosen | "
             "report PSNR | best classical (report PSNR) | steps (stopped by) |",
             "|---|---:|---:|---:|---:|---:|---|---:|---|---|"]
    for case in args.case.split(","):
        paths = inputs_of(case, folder, args.size)
        timed(f"page cache {case}", lambda p=paths: warm_page_cache(
            Path(v) for v in [p["target"], p["gap_mask"], p.get("sar") or p["target"],
                              *p.get("other_dates", [])]))
        output = folder / f"scene-{case}-{args.size}.tif"
        result = timed(f"scene fill, {case}", lambda c=case, o=output: measure_in_child(
            __file__, [c, "--output", str(folder), "--size", str(args.size), "--budget",
                       str(args.budget), "--result", str(o)], 128, o))
        psnr = f"{result['report_psnr']:.2f}" if result["report_psnr"] else "–"
        classical = f"{result['classical_psnr']:.2f}" if result["classical_psnr"] else "–"
        lines.append(
            f"| {case} | {args.size}² | {result['seconds']:.0f} | {result['learning']:.0f} | "
            f"{result['fill']:.0f} | {result['peak_rss_mb']:.0f} | {result['chosen']} | {psnr} | "
            f"{result['classical']} ({classical}) | "
            + (f"{result['steps']} ({result['stopped_by']}) |" if result["steps"] is not None
               else "– (no network) |")
        )
        said += [f"What the scene fill said on `{case}`:", "",
                 *(f"- {line}" for line in result["said"]), ""]
    command = f"GAPFILL_DATA={data_folder()} python {shlex.join(sys.argv)}"
    report = "\n".join([
        "# Scene fill: speed and memory", "", *lines, "",
        f"Goal: {GOAL_S / 60:.0f} minutes end to end at the default budget "
        f"({args.budget:g} min of learning).", "", load_line(load_before), "",
        f"Command: `{command}`; whole run {time.perf_counter() - start:.0f} s.", "", *said,
    ])
    (folder / "bench_scene.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
