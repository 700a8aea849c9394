"""The scene fill's network on a device: training steps per second and inference over a
Sentinel-2 tile, with numpy and torch only (the GPU machine has no GDAL or QGIS).

Features have the shape the scene fill gives them for a 13-band target with SAR (45 channels);
their values do not change the speed. Training runs `train_adapted` for `--steps` steps on
128 px crops; inference corrects a `--size`² scene tile by tile (`--tile` px plus the network's
margin), as the final fill does block by block. With the CPU parts measured by
bench_scene.py, this gives the end-to-end time of a tile on a GPU machine.

    python benchmarks/bench_scene_gpu.py --device cuda --output bench-output/gpu
        [--steps 2000] [--size 10980] [--tile 1024]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from harness import make_plugin_importable, peak_rss_mb

BANDS, CHANNELS, WINDOW = 13, 45, 512


def examples(count: int, rng: np.random.Generator) -> list:
    from gapfill.core.fills.scene.network import Example

    found = []
    for _ in range(count):
        where = rng.random((WINDOW, WINDOW)) < 0.2
        found.append(Example(
            rng.standard_normal((CHANNELS, WINDOW, WINDOW)).astype(np.float16),
            rng.standard_normal((BANDS, WINDOW, WINDOW)).astype(np.float32),
            rng.standard_normal((BANDS, WINDOW, WINDOW)).astype(np.float32), where,
        ))
    return found


def run(args: argparse.Namespace) -> dict:
    make_plugin_importable()
    import torch

    from gapfill.core.fills.scene.network import MARGIN, FeatureSpec, Standardiser, train_adapted

    rng = np.random.default_rng(0)
    spec = FeatureSpec(Standardiser(np.zeros(BANDS), np.ones(BANDS)), "base", "second")
    spec_channels = spec.channels
    extra = CHANNELS - spec_channels  # SAR and its validity, as in the scene fill with S1
    spec.sar = Standardiser(np.zeros(extra - 1), np.ones(extra - 1))
    training = examples(6, rng)
    checks = {"count": 0}

    def score(network) -> float:
        checks["count"] += 1
        return float(checks["count"])  # always improving: never stops early

    start = time.perf_counter()
    network = train_adapted(spec, training, score, budget_seconds=1e9, max_steps=args.steps,
                            device=args.device, threads=2)
    if args.device == "cuda":
        torch.cuda.synchronize()
    training_seconds = time.perf_counter() - start
    tile = np.zeros((CHANNELS, args.tile + 2 * MARGIN, args.tile + 2 * MARGIN), np.float32)
    tiles = (-(-args.size // args.tile)) ** 2
    start = time.perf_counter()
    for _ in range(tiles):
        network.correction(tile)
    inference_seconds = time.perf_counter() - start
    return {
        "device": args.device, "steps": network.steps, "training_s": training_seconds,
        "steps_per_s": network.steps / training_seconds, "size": args.size, "tiles": tiles,
        "inference_s": inference_seconds,
        "inference_mpx_s": args.size**2 / 1e6 / inference_seconds,
        "peak_rss_mb": peak_rss_mb(),
        "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=Path("bench-output/gpu"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--size", type=int, default=10980)
    parser.add_argument("--tile", type=int, default=1024)
    args = parser.parse_args()
    result = run(args)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "bench_scene_gpu.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
