"""Training speed of DSen2-CR at full size on real SEN12MS-CR patches, with and without mixed
precision: samples per second of one epoch each (the GPU check of issue 8).

Two steps, so that the second runs where only PyTorch and numpy exist (the lent GPU machine):

    python benchmarks/bench_training.py pack [--output bench-output]       # here: GDAL reads
    python benchmarks/bench_training.py run --samples bench-output/sen12mscr_training.npz \\
        [--device cuda] [--output OUT]                                   # there

`pack` stores the 14 SEN12MS-CR samples (cloudy and clear Sentinel-2, Sentinel-1, cloud mask) in
one compressed npz (~30 MB, small enough to carry). `run` cuts them into patches (default 128 px,
stride 32: 350 patches), writes a patch dataset with numpy alone, and trains `dsen2cr` (16
residual blocks × 256 features, as published; CARL) for one epoch with mixed precision and one
without, from the same seed, then prints a table and writes `bench_training.md` and `.json`.
The epoch's samples per second exclude nothing but include a 2-patch validation pass.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness import make_plugin_importable  # numpy only: no GDAL on the GPU machine

SAMPLES_FILE = "sen12mscr_training.npz"
ROLES = {"target": "s2_cloudy", "reference": "s2_clear", "sar": "s1", "gap_mask": "cloudmask"}
VALIDATION_PATCHES = 2


def pack(output: Path) -> Path:
    """The SEN12MS-CR samples as stacks per role, in one compressed npz."""
    from osgeo import gdal

    from harness import data_folder

    folder = data_folder() / "sen12mscr"
    names = sorted(path.name.split("_")[0] for path in folder.glob("*_s2_cloudy.tif"))
    stacks: dict[str, np.ndarray] = {}
    for role, suffix in ROLES.items():
        datasets = [gdal.Open(str(folder / f"{name}_{suffix}.tif")) for name in names]
        stacks[role] = np.stack([dataset.ReadAsArray().reshape(
            dataset.RasterCount, dataset.RasterYSize, dataset.RasterXSize) for dataset in datasets])
        stacks[f"{role}_bands"] = np.array(
            [datasets[0].GetRasterBand(i + 1).GetDescription() or f"band {i + 1}"
             for i in range(datasets[0].RasterCount)])
    output.mkdir(parents=True, exist_ok=True)
    path = output / SAMPLES_FILE
    np.savez_compressed(path, ids=np.array(names), **stacks)
    return path


def write_patches(samples: Path, folder: Path, patch: int, stride: int) -> int:
    """A patch dataset (docs/patch_dataset.md) from the packed samples; numpy only."""
    from gapfill.core.prepare.patch_dataset import (
        SPLITS,
        Manifest,
        RoleInfo,
        array_path,
        write_manifest,
    )

    stacks = np.load(samples)
    count, _, height, width = stacks["target"].shape
    corners = [(index, row, col) for index in range(count)
               for row in range(0, height - patch + 1, stride)
               for col in range(0, width - patch + 1, stride)]
    splits = {"train": corners[VALIDATION_PATCHES:], "validation": corners[:VALIDATION_PATCHES]}
    for split in SPLITS:
        (folder / split).mkdir(parents=True, exist_ok=True)
        for role in ROLES:
            cut = [stacks[role][i, :, r : r + patch, c : c + patch] for i, r, c in splits[split]]
            np.save(array_path(folder, split, role), np.stack(cut))
    roles = {
        role: RoleInfo(f"SEN12MS-CR *_{suffix}.tif", tuple(str(b) for b in stacks[f"{role}_bands"]),
                       stacks[role].dtype)
        for role, suffix in ROLES.items()
    }
    write_manifest(Manifest(patch, "", (0.0, 1.0, 0.0, 0.0, 0.0, -1.0), (1.0, 1.0),
                            {split: len(splits[split]) for split in SPLITS},
                            "first patches for validation", roles, seed=0), folder)
    return len(splits["train"])


def train_epoch(dataset: Path, output: Path, args: argparse.Namespace, amp: bool) -> dict[str, Any]:
    from gapfill.training.config import config_from_dict
    from gapfill.training.loop import train

    config = config_from_dict({
        "dataset": str(dataset), "output": str(output), "architecture": "dsen2cr",
        "width": args.width, "depth": args.depth, "loss": "carl", "epochs": 1,
        "batch_size": args.batch_size, "learning_rate": 1e-4, "device": args.device,
        "amp": amp, "seed": 0, "augment": False, "progress_bar": False, "export": "none",
        "epoch_samples": 0,
    })
    start = time.perf_counter()
    result = train(config, log=lambda line: print(line, file=sys.stderr))
    row = result.history[-1]
    return {"amp": amp, "samples_per_second": row["samples_per_second"],
            "epoch_seconds": row["seconds"], "wall_seconds": time.perf_counter() - start,
            "train_loss": row["train_loss"]}


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    import torch

    with tempfile.TemporaryDirectory(prefix="gapfill-bench-training-") as work:
        dataset = Path(work) / "dataset"
        patches = write_patches(args.samples, dataset, args.patch, args.stride)
        precisions = (True, False) if args.device == "cuda" else (False,)  # AMP: CUDA only
        results = [train_epoch(dataset, Path(work) / f"run-{amp}", args, amp)
                   for amp in precisions]
    device = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    lines = [
        f"# DSen2-CR training speed ({args.depth} blocks × {args.width} features, CARL)",
        "",
        f"{patches} training patches of {args.patch} px from the 14 SEN12MS-CR samples "
        f"(stride {args.stride}), batches of {args.batch_size}, one epoch each, seed 0; "
        f"{device}, PyTorch {torch.__version__}.",
        "",
        "| mixed precision | samples/s | epoch s | train loss |",
        "|---|---:|---:|---:|",
        *(f"| {'on' if r['amp'] else 'off'} | {r['samples_per_second']:.1f} | "
          f"{r['epoch_seconds']:.1f} | {r['train_loss']:.4f} |" for r in results),
        "",
        (f"Speed-up of mixed precision: "
         f"{results[0]['samples_per_second'] / results[-1]['samples_per_second']:.2f}×. "
         if len(results) > 1 else "Mixed precision runs on CUDA only. ")
        + f"Command: `python {' '.join(sys.argv)}`.",
    ]
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "bench_training.md").write_text("\n".join(lines) + "\n")
    (args.output / "bench_training.json").write_text(json.dumps(results, indent=2))
    print("\n".join(lines))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    steps = parser.add_subparsers(dest="step", required=True)
    packing = steps.add_parser("pack", help="store the samples in one npz (needs GDAL)")
    packing.add_argument("--output", type=Path, default=Path("bench-output"))
    running = steps.add_parser("run", help="train one epoch with and without mixed precision")
    running.add_argument("--samples", type=Path, default=Path("bench-output") / SAMPLES_FILE)
    running.add_argument("--output", type=Path, default=Path("bench-output"))
    running.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    running.add_argument("--width", type=int, default=256)
    running.add_argument("--depth", type=int, default=16)
    running.add_argument("--patch", type=int, default=128)
    running.add_argument("--stride", type=int, default=32)
    running.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)
    make_plugin_importable()
    if args.step == "pack":
        print(pack(args.output))
    else:
        run(args)


if __name__ == "__main__":
    main()
