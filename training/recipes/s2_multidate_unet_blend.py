"""Train, export and evaluate the second bundled model (issue 8): S2 before/after → S2 at t.

Model `s2_multidate_unet_blend`: the target date's Sentinel-2 image with gaps, its gap mask and
the Sentinel-2 images of a date before and a date after (13 bands each) → the 13 bands at the
target date. Architecture `unet-blend` (training/networks/blend.py): a width-32, three-level
`unet-fusion` U-Net whose output is a learned per-pixel blend of the before and after
dates plus a residual correction. No Sentinel-1 here: neither training set has it.

Data: the 30 dates of `sen12mscr_ts` and the 5 reference scenes of `eolearn_slovenia`.
Split (fixed, by date and scene): the four target dates of `make bench-quality` case (a)
(HELD_OUT_DATES) are never used, neither as targets nor as before/after inputs; eolearn
reference scenes 2 and 3 (case (b)) are never used; the cloud shapes of the evaluation
(cloud_labels, cloud_mask.tif bands 15 and 23) are never used as simulated gaps.

Training triples: every other usable date is a target (usable: at most 5 % cloud in
sen12mscr_ts, 20 % in eolearn_slovenia, by the spectral gap mask of core/masks/gap_mask.py,
which finds
~14 % on every clear eolearn scene); its cloudy pixels (mask dilated by 2 px) are written as no
data, so they are neither input nor truth. Its before/after inputs are the nearest and the
second-nearest usable dates on each side (one in eolearn; when one side has none, the other
side's date is given as both). 64 px patches, stride 32; 10 % of them (random) are the run's
validation split, only logged: the exported network is the last epoch's. Gaps are simulated
on the targets from real cloud shapes (the spectral masks of the cloudy training dates of
sen12mscr_ts, and the s2cloudless cloud_mask.tif bands of eolearn_slovenia but 15 and 23);
loss: L1 on the simulated gap pixels (`masked-l1`); flips and 90° rotations; seed 0.

Evaluation: exactly the cases (a) and (b) of bench_quality.py (its `run_simulated`: the same
simulated gaps, classical fills and `gapfill:evaluatefill` metrics), the model run by
`gapfill:fillgaps` (BEFORE/AFTER: case (a) its nearest clear dates before and after; case (b)
the nearest usable scene before and after, the same scene for both when one side has none).

    python training/recipes/s2_multidate_unet_blend.py --work bench-output/multidate  # everything
    python training/recipes/s2_multidate_unet_blend.py --work bench-output/multidate \
        --steps evaluate
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
from bench_quality import (
    HISTOGRAM,
    PYRAMID,
    SLOVENIA,
    SLOVENIA_DATES,
    SPATIAL,
    TEMPORAL,
    Runner,
    SimulatedCase,
    run_simulated,
    series_cases,
    slovenia_cases,
)
from common import (
    KEYS,
    METRIC_SCALING,
    PURE,
    REPO,
    SEED,
    export,
    mean_of,
    plugin_path,
    run_training,
    shown_command,
    spectral_mask,
    stamp,
    table,
    train_command,
    verdict_entry,
    write_card,
)

from harness import data_folder, machine

NAME = "s2_multidate_unet_blend"
MODEL = REPO / "models" / f"{NAME}.onnx"
NOTE = REPO / "models" / f"{NAME}.md"
SERIES = "sen12mscr_ts"
HELD_OUT_DATES = tuple(Path(case.clear).stem[3:] for case in series_cases())
HELD_OUT_SCENES = tuple(int(Path(case.clear).stem.rsplit("_", 1)[1]) for case in slovenia_cases())
EVALUATION_MASK_BANDS = tuple(int(case.gaps["GAP_BAND"]) for case in slovenia_cases())
# The most cloud (spectral mask, undilated) of a usable date, target or before/after: the clear
# dates of sen12mscr_ts; every clear eolearn scene, where the mask finds ~14 % on each
MAX_CLOUD = {SERIES: 0.05, SLOVENIA: 0.2}
MASK_DILATION = 2
PATCH, STRIDE, NEIGHBOURS = 64, 32, 2
THREADS = 2
MODEL_METHOD = NAME
BASELINES = (HISTOGRAM, TEMPORAL, PYRAMID, SPATIAL)
TRAIN_OPTIONS = [  # the run that produced the shipped model (epochs of one pass)
    "--architecture", "unet-blend", "--width", "32", "--depth", "3", "--loss", "masked-l1",
    "--epochs", "14", "--epoch-samples", "0", "--batch-size", "8", "--learning-rate", "0.002",
    "--validation-limit", "48", "--simulate-gaps", "always", "--augment", "--export", "none",
    "--no-progress-bar", "--seed", str(SEED),
]  # fmt: skip
DESCRIPTION = (
    "Sentinel-2 L1C (13 bands, DN) gap filling from the image with gaps, its gap mask and the "
    "Sentinel-2 images of a date before and a date after; unet-blend (learned blend of the two "
    "dates + residual U-Net), width 32, 3 levels. Trained on SEN12MS-CR-TS (Ebel et al. 2022, "
    "CC BY 4.0; contains modified Copernicus Sentinel data) and eo-learn (MIT) dates; held out: "
    + ", ".join(HELD_OUT_DATES)
    + " and eolearn scenes "
    + ", ".join(map(str, HELD_OUT_SCENES))
    + "."
)
LICENCE = "CC BY 4.0 (trained on SEN12MS-CR-TS, CC BY 4.0, and the eo-learn test patch, MIT)"

Dated = tuple[str, Path]  # (date, image)


def write_masked(image: Path, gap: np.ndarray, output: Path) -> Path:
    """A copy of `image` whose gap pixels are no data (0 in every band)."""
    from osgeo import gdal

    output.parent.mkdir(parents=True, exist_ok=True)
    copy = gdal.Translate(str(output), str(image), format="GTiff", noData=0)
    for index in range(copy.RasterCount):
        band = copy.GetRasterBand(index + 1)
        values = band.ReadAsArray()
        values[gap] = 0
        band.WriteArray(values)
    copy = None
    return output


def triples(
    dates: list[Dated], cloud: dict[str, float], max_cloud: float, neighbours: int
) -> list[tuple[Dated, ...]]:
    """(target, before, after) of every usable date (`cloud`: its fraction ≤ `max_cloud`) with
    its `neighbours` nearest usable dates on each side (the other side's date twice when one
    side has none)."""
    found = []
    for position, target in enumerate(dates):
        if cloud[target[0]] > max_cloud:
            continue
        usable = [d for d in dates if d != target and cloud[d[0]] <= max_cloud]
        before = [d for d in usable if dates.index(d) < position][::-1][:neighbours]
        after = [d for d in usable if dates.index(d) > position][:neighbours]
        for rank in range(neighbours):
            pair = (
                before[rank] if rank < len(before) else None,
                after[rank] if rank < len(after) else None,
            )
            if pair[0] is None and pair[1] is None:
                continue
            pair = (pair[0] or pair[1], pair[1] or pair[0])
            if (target, *pair) not in found:
                found.append((target, *pair))
    return found


def training_dates(data: Path) -> dict[str, list[Dated]]:
    series = sorted(
        (path.stem[3:], path)
        for path in (data / SERIES).glob("s2_*.tif")
        if path.stem[3:] not in HELD_OUT_DATES
    )
    slovenia = sorted(
        (date, data / SLOVENIA / f"reference_scene_{scene}.tif")
        for scene, date in SLOVENIA_DATES.items()
        if scene not in HELD_OUT_SCENES
    )
    return {SERIES: series, SLOVENIA: slovenia}


def make_dataset(data: Path, work: Path) -> list[str]:
    """The triples' patch dataset in `work/dataset`, the cloud shapes in `work/shapes`;
    returns the --cloud-masks arguments and writes `work/triples.json`."""
    from osgeo import gdal

    from gapfill.training.make_dataset import write_dataset

    masks, scenes, listing = work / "masks", [], {}
    shapes: list[np.ndarray] = []
    for group, dates in training_dates(data).items():
        gaps = {date: spectral_mask(path, masks, MASK_DILATION) for date, path in dates}
        cloud = {date: float(gap.mean()) for date, gap in gaps.items()}
        undilated = {date: spectral_mask(path, masks) for date, path in dates}
        other_cloud = {date: float(gap.mean()) for date, gap in undilated.items()}
        if group == SERIES:
            shapes += [gap for date, gap in undilated.items() if 0.02 <= other_cloud[date] < 1]
        found = triples(dates, other_cloud, MAX_CLOUD[group], NEIGHBOURS if group == SERIES else 1)
        listing[group] = [
            {"target": t[0], "before": b[0], "after": a[0], "target_cloud": round(cloud[t[0]], 3)}
            for t, b, a in found
        ]
        for (date, path), before, after in found:
            masked = work / "targets" / f"{group}_{date}.tif"
            if not masked.exists():
                write_masked(path, gaps[date], masked)
            scenes.append(
                {"target": masked, "optical_before": before[1], "optical_after": after[1]}
            )
    series_shapes = work / "shapes" / f"{SERIES}_spectral.npy"
    series_shapes.parent.mkdir(parents=True, exist_ok=True)
    np.save(series_shapes, np.stack(shapes).astype(np.uint8))
    cloud_mask = gdal.Open(str(data / SLOVENIA / "cloud_mask.tif")).ReadAsArray()
    kept = [band for band in range(cloud_mask.shape[0]) if band + 1 not in EVALUATION_MASK_BANDS]
    slovenia_shapes = work / "shapes" / f"{SLOVENIA}_cloud_mask.npy"
    np.save(slovenia_shapes, (cloud_mask[kept] == 1).astype(np.uint8))
    (work / "triples.json").write_text(json.dumps(listing, indent=1))
    write_dataset(
        work / "dataset", scenes, PATCH, stride=STRIDE, validation=0.1, seed=SEED, overwrite=True
    )
    count = sum(len(v) for v in listing.values())
    print(f"Dataset {work / 'dataset'}: {count} triples, {len(shapes)} + {len(kept)} cloud shapes")
    return [str(series_shapes), str(slovenia_shapes)]


def before_after(runner: Runner, case: SimulatedCase) -> tuple[Path, Path]:
    """The model's BEFORE and AFTER inputs of a case (see the module docstring)."""
    if case.group == "a":
        before, after = case.others
        return runner.path(before), runner.path(after)
    target = case.dates.split(", ")[0]
    others = zip(case.dates.split(", ")[1:], case.others, strict=True)
    usable = sorted(
        (date, runner.path(other))
        for date, other in others
        if spectral_mask(runner.path(other), runner.folder / "model-masks").mean()
        <= MAX_CLOUD[SLOVENIA]
    )
    earlier = [item for item in usable if item[0] < target]
    later = [item for item in usable if item[0] > target]
    before = earlier[-1][1] if earlier else later[0][1]
    after = later[0][1] if later else before
    return before, after


def model_fill(
    runner: Runner, case: SimulatedCase, folder: Path, simulated: dict[str, object]
) -> dict[str, str]:
    before, after = before_after(runner, case)
    print(f"{case.label}: model BEFORE {before.name}, AFTER {after.name}", flush=True)
    result = runner.run(
        "gapfill:fillgaps",
        {
            "MODEL": MODEL,
            "INPUT": simulated["OUTPUT"],
            "GAP_MASK": simulated["GAP_MASK"],
            "BEFORE": before,
            "AFTER": after,
            "DEVICE": 1,
            "OUTPUT": folder / "model.tif",
        },
    )
    return {MODEL_METHOD: str(result["OUTPUT"])}


Results = dict[str, dict[str, dict[str, float]]]  # case → method → metric → value


def evaluate(data: Path, work: Path) -> Results:
    from concurrent.futures import ThreadPoolExecutor

    runner = Runner(data, work / "evaluation", set(BASELINES))
    cases = series_cases() + slovenia_cases()
    with ThreadPoolExecutor(2) as pool:
        found = list(pool.map(lambda case: run_simulated(runner, case, model_fill), cases))
    results: Results = {}
    for rows in found:
        for row in rows:
            results.setdefault(row.case, {})[row.method] = {
                key: float(row.metrics[key]) for key in (*KEYS, "filled_fraction")
            }
    return results


def best_classical(results: Results) -> str:
    """The classical fill with the highest mean PSNR over the held-out cases."""
    return max(BASELINES, key=lambda method: mean_of(results, method)["psnr"])


def verdict(results: Results) -> tuple[bool, str]:
    model, best = mean_of(results, MODEL_METHOD), best_classical(results)
    reference = mean_of(results, best)
    wins = model["psnr"] > reference["psnr"] and model["sam"] < reference["sam"]
    per_case = sum(
        r[MODEL_METHOD]["psnr"] > max(r[m]["psnr"] for m in BASELINES)
        and r[MODEL_METHOD]["sam"] < min(r[m]["sam"] for m in BASELINES)
        for r in results.values()
    )
    least = min(r[MODEL_METHOD]["filled_fraction"] for r in results.values())
    means = "; ".join(
        f"{method} {mean['psnr']:.2f} dB / {mean['sam']:.2f}°"
        for method, mean in ((m, mean_of(results, m)) for m in (MODEL_METHOD, *BASELINES))
    )
    text = (
        f"On the mean of the {len(results)} held-out cases the model "
        f"{'beats' if wins else 'does NOT beat'} the best classical fill ({best}) on PSNR and "
        f"SAM: PSNR {model['psnr']:.2f} vs {reference['psnr']:.2f} dB, SAM {model['sam']:.2f} vs "
        f"{reference['sam']:.2f}°. It beats every classical fill on both metrics on {per_case} of "
        f"{len(results)} cases. Mean PSNR / SAM: {means}. Evaluated pixels filled by the model: "
        f"{least:.1%} (least). "
        + (
            "It qualifies as the default multi-date fill."
            if wins
            else "It is not a default: the classical fill stays the default."
        )
    )
    return wins, text


def card_metrics(results: Results) -> dict[str, object]:
    """The model's mean held-out figures and its verdict against the classical fills (cases
    (a) and (b) are pure gap filling: real cloud shapes laid on clear images)."""
    from gapfill.core.learned import baselines

    held = (
        "simulated gaps of make bench-quality cases (a) sen12mscr_ts "
        + ", ".join(HELD_OUT_DATES)
        + " and (b) eolearn_slovenia scenes "
        + ", ".join(map(str, HELD_OUT_SCENES))
    )
    entry = verdict_entry(
        results, MODEL_METHOD, baselines.PURE_GAP_FILLING + " (bench_quality cases (a), (b))",
        held + " (each case its own scene)", classical=BASELINES,
    )  # fmt: skip
    return {
        **entry["methods"][MODEL_METHOD],
        "evaluated_on": f"{held} (mean of the cases; gapfill:evaluatefill)",
        "metric_scaling": METRIC_SCALING,
        "baselines": entry,
    }


def training_data(work: Path) -> str:
    listing = json.loads((work / "triples.json").read_text())
    counts = ", ".join(f"{len(v)} triples of {k}" for k, v in listing.items())
    return (
        f"{counts} (target date with its cloudy pixels as no data, before/after dates; 64 px "
        "patches, stride 32), flips, 90° rotations and simulated gaps from real cloud shapes; "
        f"held out, never used: {SERIES} dates {', '.join(HELD_OUT_DATES)}, {SLOVENIA} "
        f"reference scenes {', '.join(map(str, HELD_OUT_SCENES))}."
    )


def note(work: Path, results: Results, command: str, seconds: float | None) -> str:
    from gapfill.core.learned.model_card import read_card

    card = read_card(MODEL)
    listing = json.loads((work / "triples.json").read_text())
    rows = "\n".join(
        f"| {group} | {t['target']} | {t['before']} | {t['after']} | {t['target_cloud']:.0%} |"
        for group, items in listing.items()
        for t in items
    )
    methods = (MODEL_METHOD, *BASELINES)
    duration = f"{seconds / 60:.0f} min wall" if seconds else "see the run log"
    return f"""# {NAME}

Sentinel-2 before/after → Sentinel-2 at t (multi-date). `unet-blend`
(training/networks/blend.py): a width-32, three-level `unet-fusion` U-Net on the
target image with gaps, its gap mask and the images of a date before and a date after; its
output is a learned per-pixel blend of the before and after dates plus a residual correction
(context margin {card.context_margin} px, sizes a multiple of {card.size_multiple} px). All
images are Sentinel-2 L1C, 13 bands B1…B12 with B8A, DN. Run it with `gapfill:fillgaps` (INPUT,
GAP_MASK, BEFORE, AFTER); clear pixels are copied bit-exactly. No Sentinel-1 input: neither
training set has Sentinel-1.

## Data and split

`../shared/data/sen12mscr_ts` (SEN12MS-CR-TS, Ebel et al., IEEE TGRS 2022, CC BY 4.0; contains
modified Copernicus Sentinel data) and `../shared/data/eolearn_slovenia` (eo-learn, MIT):

- held out, never used (neither as target nor as before/after input): the {SERIES} dates
  {", ".join(HELD_OUT_DATES)} (`make bench-quality` case (a)) and the {SLOVENIA} reference
  scenes {", ".join(map(str, HELD_OUT_SCENES))} (case (b)); the gap shapes of the evaluation
  (`cloud_labels`, `cloud_mask.tif` bands {", ".join(map(str, EVALUATION_MASK_BANDS))}) are not
  used as training gaps either;
- training: {training_data(work)} Targets and before/after inputs are the usable dates: at most
  5 % cloud in {SERIES}, 20 % in {SLOVENIA} (the spectral gap mask of core/masks/gap_mask.py finds
  ~14 % on every clear eolearn scene); a target's cloudy pixels (mask dilated by
  {MASK_DILATION} px) are no data (neither input nor truth); before/after are the nearest and
  second-nearest usable dates on each side (the nearest only in {SLOVENIA}; the other side's
  date twice when one side has none). Simulated gaps:
  the spectral masks of the cloudy training dates of {SERIES} and the s2cloudless
  `cloud_mask.tif` bands of {SLOVENIA} but the evaluation's;
- 10 % of the patches (random) are the run's validation split, only logged; the exported
  network is the last epoch's.

| set | target | before | after | target cloud |
|---|---|---|---|---:|
{rows}

Training: L1 on the simulated gap pixels (`masked-l1`), AdamW, learning rate 0.002, cosine
schedule, batch 8, seed 0, CPU with {THREADS} threads: {duration}.

## Reproduce

    python training/recipes/s2_multidate_unet_blend.py --work bench-output/multidate

which builds the dataset, then runs

    {command}

exports `last.pt` to `models/{NAME}.onnx` and evaluates it (the shipped file, trained before
issue 14, also carries a `max(output, 1 DN)` node appended by the export of that time).
Results may differ in the last digits between machines.

## Held-out metrics

The cases (a) and (b) of `bench_quality.py`, run by its own code (`run_simulated`): the same
simulated gaps, the same classical fills (temporal interpolation, histogram matching:
`gapfill:filltemporal` from the other dates with their spectral masks; spatial IDW), the same
`gapfill:evaluatefill` scores on the gap pixels (DN / 10000 clipped to [0, 1]). The model gets
BEFORE/AFTER: in case (a) the case's nearest clear dates before and after; in case (b) the
nearest scene with at most 20 % cloud before and after (the same scene twice when one side has
none), without their masks.

{table(results, methods, "held-out case")}

{verdict(results)[1]}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=REPO / "bench-output" / "multidate")
    steps = ["dataset", "train", "export", "evaluate"]
    parser.add_argument("--steps", nargs="*", default=steps, choices=[*steps, "stamp"])
    arguments = parser.parse_args()
    plugin_path()
    data = data_folder()
    work = arguments.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if arguments.steps == ["stamp"]:
        results = evaluate(data, work)
        held = "the held-out cases (a) and (b) of make bench-quality (each case its own scene)"
        tables = {PURE: table(results, (MODEL_METHOD, *BASELINES), "held-out case")}
        stamp(MODEL, card_metrics(results), tables, held)
        (work / "multidate_stamp.json").write_text(json.dumps(results, indent=2))
        print(f"Machine: {machine()}")
        return
    dataset, run = work / "dataset", work / "run"
    shapes_file = work / "shapes.json"
    if "dataset" in arguments.steps:
        shapes_file.write_text(json.dumps(make_dataset(data, work)))
    command = train_command(dataset, run, json.loads(shapes_file.read_text()), TRAIN_OPTIONS)
    seconds_file = work / "training_seconds.txt"
    if "train" in arguments.steps:
        shutil.rmtree(run, ignore_errors=True)
        seconds = run_training(command, threads=THREADS)
        seconds_file.write_text(f"{seconds:.0f}\n")
        print(f"Training: {seconds:.0f} s wall", flush=True)
    if "export" in arguments.steps:
        export(run, MODEL, NAME, DESCRIPTION, LICENCE)
    if "evaluate" in arguments.steps:
        started = time.monotonic()
        results = evaluate(data, work)
        write_card(MODEL, card_metrics(results), training_data(work))
        seconds = float(seconds_file.read_text()) if seconds_file.exists() else None
        NOTE.write_text(note(work, results, shown_command(command, data), seconds), "utf-8")
        wins, text = verdict(results)
        body = f"{table(results, (MODEL_METHOD, *BASELINES), 'held-out case')}\n\n{text}\n"
        (work / "multidate.md").write_text(
            f"{body}\nMachine: {machine()}; evaluation {time.monotonic() - started:.0f} s.\n"
        )
        (work / "multidate.json").write_text(
            json.dumps({"results": results, "wins": wins}, indent=2)
        )
        print(body)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
    main()
