"""Which training settings to make the defaults: each candidate trained and scored on held-out
places by pure gap filling, next to spatial IDW.

Two settings of 'train a model for my area', both on the real data of ../shared/data:

(A) Sentinel-1 + Sentinel-2, one scene: the clear image and S1 of sen12mscr_georef
    ROIs1158_spring_101_p30 for training (the new-user run of issue 14), the neighbouring
    p32 held out (no overlap with p30);
(B) Sentinel-2 only: the clear images of four sen12mscr_pairs scenes for training, the fifth
    scene (ROIs1970_fall_136, 15 images) held out.

Training gaps are simulated from the s2cloudless masks of eolearn_slovenia/cloud_mask.tif; the
held-out score lays other real shapes (cloud_labels, clouds and shadows) on the held-out clear
patches and scores the last epoch's network (no selection on held-out data) against spatial IDW
on the removed pixels (`training.assessment.assess`). One factor changes at a time from the base.

    python benchmarks/bench_training_defaults.py --output bench-output/defaults [--only A]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from harness import data_folder, machine, make_plugin_importable

BASE = {
    "architecture": "unet-fusion",
    "width": 32,
    "depth": 3,
    "loss": "masked-l1-sam",
    "learning_rate": 1e-3,
    "epochs": 10,
    "epoch_samples": 512,
    "batch_size": 8,
    "augment": True,
}
VARIANTS = {
    "base": {},
    "previous defaults (l1, lr 1e-3, 20 epochs of one pass)": {
        "loss": "l1",
        "epochs": 20,
        "epoch_samples": 0,
    },
    "loss l1": {"loss": "l1"},
    "loss masked-l1": {"loss": "masked-l1"},
    "learning rate 2e-3": {"learning_rate": 2e-3},
    "20 epochs": {"epochs": 20},
    "no augmentation": {"augment": False},
}
HELD_OUT_SCENE = "ROIs1970_fall_136"
SIZE = 64


def datasets(data: Path, work: Path) -> dict[str, Path]:
    from gapfill.training.make_dataset import write_dataset

    georef, pairs = data / "sen12mscr_georef", data / "sen12mscr_pairs"

    def s1s2(patch: str) -> dict[str, Path]:
        return {
            "target": georef / f"ROIs1158_spring_101_{patch}_s2_clear.tif",
            "sar": georef / f"ROIs1158_spring_101_{patch}_s1.tif",
        }

    clear = sorted(pairs.glob("*_s2_clear.tif"))
    held = [{"target": path} for path in clear if path.name.startswith(HELD_OUT_SCENE)]
    trained = [{"target": path} for path in clear if not path.name.startswith(HELD_OUT_SCENE)]
    folders = {"A": work / "dataset_A", "B": work / "dataset_B"}
    write_dataset(folders["A"], [s1s2("p30")], SIZE, validation_scenes=[s1s2("p32")],
                  overwrite=True)  # fmt: skip
    write_dataset(folders["B"], trained, SIZE, validation_scenes=held, validation_stride=2 * SIZE,
                  overwrite=True)  # fmt: skip
    return folders


def held_out_score(run: Path, labels: str) -> dict[str, dict[str, float]]:
    """The last epoch's network on the held-out split, other real cloud shapes laid on it."""
    from gapfill.training.assessment import assess, checkpoint_predictor
    from gapfill.training.checkpoints import load_checkpoint
    from gapfill.training.datasets import CloudShapes, read_manifest
    from gapfill.training.export import scalings_of

    state = load_checkpoint(run / "last.pt")
    info = state["card"]
    manifest = read_manifest(state["config"]["dataset"])
    output = scalings_of(info["output"]["scaling"])
    scalings = {item["role"]: scalings_of(item["scaling"]) for item in info["inputs"]}
    entry = assess(
        checkpoint_predictor(state), manifest, list(scalings), {**scalings, "target": output},
        output, info["output"]["bands"], SIZE, CloudShapes.from_specs([labels]), labels,
    )  # fmt: skip
    return entry["methods"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("bench-output/defaults"))
    parser.add_argument("--only", nargs="*", default=["A", "B"])
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    arguments = parser.parse_args()
    make_plugin_importable()
    import torch

    from gapfill.training.config import config_from_dict
    from gapfill.training.loop import train

    torch.set_num_threads(2)
    data = data_folder("sen12mscr_pairs")
    work = arguments.output.resolve()
    work.mkdir(parents=True, exist_ok=True)
    folders = datasets(data, work)
    masks = [str(data / "eolearn_slovenia" / "cloud_mask.tif")]
    labels = f"{data / 'cloud_labels' / 'labels.tif'}:0,4"
    results_path = work / "defaults.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for setting in arguments.only:
        for name in arguments.variants:
            run = work / f"run_{setting}_{list(VARIANTS).index(name)}"
            shutil.rmtree(run, ignore_errors=True)
            options = {**BASE, **VARIANTS[name]}
            config = config_from_dict({
                **options, "dataset": [str(folders[setting])], "output": str(run),
                "cloud_masks": masks, "export": "none", "progress_bar": False, "seed": 0,
                "device": "cpu",
            })  # fmt: skip
            started = time.monotonic()
            train(config, log=lambda line: print(line, file=sys.stderr, flush=True))
            seconds = time.monotonic() - started
            methods = held_out_score(run, labels)
            results[f"{setting}: {name}"] = {"seconds": seconds, "options": options, **methods}
            results_path.write_text(json.dumps(results, indent=2))
            model, idw = methods["model"], methods["spatial IDW"]
            print(
                f"{setting} | {name} | {model['psnr']:.2f} | {model['sam']:.2f} | "
                f"{idw['psnr']:.2f} | {idw['sam']:.2f} | {seconds:.0f} s",
                flush=True,
            )
    lines = [
        "| setting | variant | model PSNR (dB) | model SAM (°) | model MAE | IDW PSNR (dB) | "
        "IDW SAM (°) | IDW MAE | train s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, value in results.items():
        setting, name = key.split(": ", 1)
        model, idw = value["model"], value["spatial IDW"]
        lines.append(
            f"| {setting} | {name} | {model['psnr']:.2f} | {model['sam']:.2f} | "
            f"{model['mae']:.4g} | {idw['psnr']:.2f} | {idw['sam']:.2f} | {idw['mae']:.4g} | "
            f"{value['seconds']:.0f} |"
        )
    text = "\n".join(lines) + f"\n\nMachine: {machine()}\n"
    (work / "defaults.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
