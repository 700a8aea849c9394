"""Train, evaluate and export the `stpconv` time-series model on STPConv blocks (X/Y/MASK/VALMASK).

Headless: ``python -m gapfill.training.stpconv_train DATA_FOLDER OUTPUT.onnx [--minutes M]``.
The blocks are split by name (every `--every`-th block, sorted, goes to validation); the loss is
the L1 error on the artificially removed pixels (VALMASK) only, as in Appel (2022). The best
model on validation is exported to ONNX with its card and checked against PyTorch.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.evaluate.simulate_gaps import read_stpconv, stpconv_names
from ..core.fills.timeseries_fill import regression_scores
from ..core.learned.model_card import BandScaling, ModelCard, ModelInput, TensorCard, write_card
from .networks.stpconv import STPConv


@dataclass
class Blocks:
    """Stacked blocks: `x` (n, T, h, w) raw values (gaps 0), `gap` 1 = gap in X, `y` the
    measurements, `val` 1 = evaluation pixel (present in Y, removed in X)."""

    names: list[str]
    x: np.ndarray
    gap: np.ndarray
    y: np.ndarray
    val: np.ndarray


def load_blocks(folder: str | Path, names: Sequence[str]) -> Blocks:
    xs, gaps, ys, vals = [], [], [], []
    for name in names:
        block = read_stpconv(folder, name)
        valid = block.mask.astype(bool)
        val = block.valmask.astype(bool)
        xs.append(np.where(valid, block.x, 0.0).astype(np.float32))
        gaps.append((~valid).astype(np.float32))
        ys.append(np.where(valid | val, block.y, 0.0).astype(np.float32))
        vals.append(val.astype(np.float32))
    return Blocks(list(names), np.stack(xs), np.stack(gaps), np.stack(ys), np.stack(vals))


def split_names(names: Sequence[str], every: int) -> tuple[list[str], list[str]]:
    """Every `every`-th name (sorted, from the third) to validation, the others to training."""
    names = sorted(names)
    validation = [name for index, name in enumerate(names) if index % every == 2]
    return [name for name in names if name not in validation], validation


def predict(model: STPConv, x: np.ndarray, gap: np.ndarray, offset: float, scale: float):
    """Raw-valued reconstruction of (n, T, h, w) blocks."""
    model.eval()
    with torch.no_grad():
        series = torch.from_numpy((x - offset) * scale * (1 - gap))
        out = model(series, torch.from_numpy(gap)).numpy()
    return out / scale + offset


def scores(prediction: np.ndarray, blocks: Blocks) -> dict[str, float]:
    where = blocks.val.astype(bool)
    return regression_scores(prediction[where], blocks.y[where])


def train(
    folder: str | Path,
    output: str | Path,
    *,
    minutes: float = 4.0,
    every: int = 5,
    width: int = 8,
    depth: int = 3,
    crop: int = 64,
    batch: int = 4,
    seed: int = 0,
    log=print,
) -> dict[str, Any]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train_names, val_names = split_names(stpconv_names(folder), every)
    train_set, val_set = load_blocks(folder, train_names), load_blocks(folder, val_names)
    observed = train_set.x[train_set.gap == 0]
    offset, spread = float(observed.mean()), float(observed.std())
    scale = 1.0 / spread
    steps = train_set.x.shape[1]
    model = STPConv(steps, width, depth)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    best, best_state, history, step = float("inf"), None, [], 0
    start = time.monotonic()
    n, _, height, width_px = train_set.x.shape
    while time.monotonic() - start < minutes * 60:
        model.train()
        for _ in range(10):
            idx = rng.integers(0, n, batch)
            top, left = rng.integers(0, height - crop + 1), rng.integers(0, width_px - crop + 1)
            cut = np.s_[idx, :, top : top + crop, left : left + crop]
            arrays = (train_set.x, train_set.gap, train_set.y, train_set.val)
            x, gap, y, val = (a[cut] for a in arrays)
            if rng.random() < 0.5:  # flips keep the physics (no preferred direction at 0.1°)
                x, gap, y, val = (a[..., ::-1].copy() for a in (x, gap, y, val))
            series = torch.from_numpy((x - offset) * scale * (1 - gap))
            target = torch.from_numpy((y - offset) * scale)
            weight = torch.from_numpy(val)
            prediction = model(series, torch.from_numpy(gap))
            loss = ((prediction - target).abs() * weight).sum() / weight.sum().clamp(min=1)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            step += 1
        metrics = scores(predict(model, val_set.x, val_set.gap, offset, scale), val_set)
        history.append({"step": step, "loss": float(loss.detach()), **metrics})
        log(f"step {step}: train L1 {float(loss):.4f}, validation MAE {metrics['mae']:.6g}")
        if metrics["mae"] < best:
            best = metrics["mae"]
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    metrics = scores(predict(model, val_set.x, val_set.gap, offset, scale), val_set)
    export(model, output, offset, scale, metrics, train_names, val_names)
    return {"metrics": metrics, "train": train_names, "validation": val_names,
            "offset": offset, "scale": scale, "steps": step, "history": history}


def stpconv_card(
    model: STPConv, offset: float, scale: float, metrics: dict[str, Any], training_data: str
) -> ModelCard:
    bands = tuple(f"t{index + 1}" for index in range(model.steps))
    scaling = tuple(BandScaling(offset=offset, scale=scale) for _ in bands)
    unit = tuple(BandScaling() for _ in bands)
    return ModelCard(
        name="stpconv-s5p-co",
        architecture="stpconv",
        description=(
            f"STPConv (Appel 2022): U-Net of 3-D partial convolutions over {model.steps} dates "
            "(dates on the channel axis); fills every gap of the window of dates."
        ),
        licence="MIT",
        inputs=(
            ModelInput("series", bands, scaling, "time_series"),
            ModelInput("gap_mask", bands, unit, "gap_mask"),
        ),
        output=TensorCard("filled", bands, scaling),
        context_margin=model.context_margin,
        size_multiple=model.size_multiple,
        recommended_tile_size=128,
        training_data=training_data,
        validation_metrics=metrics,
    )


def export(
    model: STPConv,
    output: str | Path,
    offset: float,
    scale: float,
    metrics: dict[str, Any],
    train_names: Sequence[str],
    val_names: Sequence[str],
) -> Path:
    """ONNX export (dynamic batch, height, width) with the card, then an ORT/PyTorch parity check
    at a shape other than the reference one."""
    output = Path(output)
    model.eval()
    steps = model.steps
    example = (torch.zeros(1, steps, 32, 32), torch.zeros(1, steps, 32, 32))
    axes = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(
        model, example, str(output), input_names=["series", "gap_mask"], output_names=["filled"],
        dynamic_axes={"series": axes, "gap_mask": axes, "filled": axes}, opset_version=17,
        dynamo=False,
    )
    data = (
        "Sentinel-5P total column CO, 0.1°, blocks of appelmar/STpconv (MIT); training blocks "
        f"{', '.join(train_names)}; validation blocks {', '.join(val_names)}"
    )
    rounded = {key: round(float(value), 8) for key, value in metrics.items()}
    write_card(output, stpconv_card(model, offset, scale, rounded, data))
    check_parity(model, output)
    return output


def check_parity(model: STPConv, path: str | Path, size: tuple[int, int] = (48, 80)) -> float:
    from ..core.learned.onnx_session import create_session

    generator = torch.Generator().manual_seed(1)
    series = torch.randn(2, model.steps, *size, generator=generator)
    gap = (torch.rand(2, model.steps, *size, generator=generator) > 0.6).float()
    with torch.no_grad():
        expected = model(series, gap).numpy()
    session = create_session(path, "cpu")
    got = session.run(None, {"series": series.numpy(), "gap_mask": gap.numpy()})[0]
    difference = float(np.abs(got - expected).max())
    if difference > 1e-3:
        raise RuntimeError(f"ONNX Runtime and PyTorch differ by {difference} on {path}")
    return difference


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("output")
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = train(args.data, args.output, minutes=args.minutes, every=args.every,
                   width=args.width, depth=args.depth, seed=args.seed)
    summary = Path(args.output).with_suffix(".json")
    summary.write_text(json.dumps(result, indent=2))
    print(json.dumps(result["metrics"]))


if __name__ == "__main__":
    main()
