"""Score the time-series fills on the validation blocks of an STPConv folder (VALMASK pixels),
then on the NDVI series of eolearn_slovenia with simulated gaps.

``python benchmarks/bench_timeseries.py [DATA_FOLDER [MODEL.onnx]] [--every 5] [--lam 10]
[--ndvi FOLDER | --no-ndvi] [--shift 17]`` (run with the plugin importable as `gapfill`).
Prints a Markdown table of MAE, RMSE and R² over all evaluation pixels of the validation
blocks, for linear interpolation in time, the Whittaker smoother, the temporal mean and the
model. Then, unless --no-ndvi, the NDVI table (folder: --ndvi, default
`data_folder()/eolearn_slovenia`): the truth is every observation that is neither cloud (s2cloudless
mask = 1) nor no-data; date k additionally loses its valid pixels under the real cloud mask of
date (k + shift) mod T; fills run through `fill_time_series` (the algorithm's code path, with the
gaps given as a mask stack) and are scored on the removed pixels only. The STPConv model is
trained on S5P CO and does not apply to NDVI, so it is not run there.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from harness import data_folder, make_plugin_importable


def print_table(predictions: dict[str, np.ndarray], reference: np.ndarray) -> None:
    from gapfill.core.fills.timeseries_fill import regression_scores

    print("| method | MAE | RMSE | R² | unfilled |")
    print("|---|---|---|---|---|")
    for method, prediction in predictions.items():
        ok = np.isfinite(prediction)
        s = regression_scores(prediction[ok], reference[ok])
        print(f"| {method} | {s['mae']:.4g} | {s['rmse']:.4g} | {s['r2']:.3f} | {(~ok).sum()} |")


def ndvi_benchmark(folder: Path, shift: int = 17, lams=(1.0, 10.0, 100.0)) -> None:
    """NDVI of eolearn_slovenia, simulated gaps from another date's real cloud mask."""
    from osgeo import gdal

    from gapfill.core.fills.timeseries_baselines import temporal_mean
    from gapfill.core.fills.timeseries_fill import band_times, fill_time_series, read_validity

    gdal.UseExceptions()
    source = gdal.Open(str(folder / "ndvi.tif"))
    values = source.ReadAsArray().astype(np.float64)
    steps, height, width = values.shape
    valid = read_validity(source, (0, 0, width, height)) & np.isfinite(values)
    times = band_times(source)
    source = None
    cloud = gdal.Open(str(folder / "cloud_mask.tif")).ReadAsArray() == 1
    valid &= ~cloud
    removed = valid & cloud[(np.arange(steps) + shift) % steps]
    kept = valid & ~removed
    reference = values[removed]
    span = "no dates" if times is None else f"{times[-1]:.0f} days, dates from band descriptions"
    print(f"\nNDVI {folder.name}: {steps} dates × {height}×{width} ({span}); truth "
          f"{valid.sum()} valid obs ({valid.mean():.1%}); date k gets the cloud mask of date "
          f"(k+{shift}) mod {steps}: {removed.sum()} removed ({removed.sum() / valid.sum():.1%} "
          f"of valid), {kept.mean():.1%} of the stack left as input")
    predictions = {"temporal mean (per pixel)": temporal_mean(values, kept)[0][removed]}
    with tempfile.TemporaryDirectory(prefix="gapfill-ndvi-") as work:
        mask_path = str(Path(work) / "gaps.tif")
        mask = gdal.GetDriverByName("GTiff").CreateCopy(mask_path, gdal.Open(
            str(folder / "cloud_mask.tif")))
        for index in range(steps):
            mask.GetRasterBand(index + 1).WriteArray((~kept[index]).astype(np.uint8))
        mask = None
        runs = [("linear interpolation in time (dates)", "linear", 10.0, True),
                ("linear interpolation in time (equal steps)", "linear", 10.0, False)]
        runs += [(f"Whittaker smoother, λ = {lam:g} (dates)", "whittaker", lam, True)
                 for lam in lams]
        runs += [(f"Whittaker smoother, λ = {lam:g} (equal steps)", "whittaker", lam, False)
                 for lam in lams]
        for label, method, lam, use_dates in runs:
            output = str(Path(work) / f"{method}.tif")
            fill_time_series(folder / "ndvi.tif", output, method=method, mask_path=mask_path,
                             lam=lam, use_dates=use_dates)
            filled = gdal.Open(output).ReadAsArray().astype(np.float64)
            predictions[label] = filled[removed]
    print_table(predictions, reference)


def main() -> None:
    make_plugin_importable()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?")
    parser.add_argument("model", nargs="?")
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--lam", type=float, default=10.0)
    parser.add_argument("--ndvi", type=Path, help="eolearn_slovenia folder (default: data)")
    parser.add_argument("--no-ndvi", action="store_true")
    parser.add_argument("--shift", type=int, default=17)
    parser.add_argument(
        "--stamp",
        action="store_true",
        help="write the S5P table into the model's card as its baseline verdict",
    )
    args = parser.parse_args()
    if args.data:
        s5p_benchmark(args)
    if not args.no_ndvi:
        slovenia = data_folder("eolearn_slovenia") / "eolearn_slovenia"
        ndvi_benchmark(args.ndvi or slovenia, args.shift)


def s5p_benchmark(args: argparse.Namespace) -> None:
    from gapfill.core.evaluate.simulate_gaps import read_stpconv, stpconv_names
    from gapfill.core.fills.timeseries_baselines import temporal_linear, temporal_mean
    from gapfill.core.fills.timeseries_fill import model_fill
    from gapfill.core.fills.whittaker import whittaker_fill
    from gapfill.training.stpconv_train import split_names

    _, names = split_names(stpconv_names(args.data), args.every)
    methods = {
        "temporal mean": lambda v, m: temporal_mean(v, m)[0],
        "linear in time": lambda v, m: temporal_linear(v, m)[0],
        f"Whittaker (λ={args.lam:g})": lambda v, m: whittaker_fill(v, m, args.lam)[0],
    }
    if args.model:
        from gapfill.core.learned.model_card import card_of_session
        from gapfill.core.learned.onnx_session import create_session

        session = create_session(args.model, "cpu")
        card = card_of_session(session)
        methods["STPConv model"] = lambda v, m: model_fill(session, card, v, m)
    predictions: dict[str, list[np.ndarray]] = {name: [] for name in methods}
    references = []
    for name in names:
        block = read_stpconv(args.data, name)
        valid, where = block.mask.astype(bool), block.valmask.astype(bool)
        values = np.where(valid, block.x, 0.0).astype(np.float64)
        references.append(block.y[where])
        for method, fill in methods.items():
            predictions[method].append(fill(values, valid)[where])
    reference = np.concatenate(references)
    print(f"validation blocks: {', '.join(names)}; {reference.size} VALMASK pixels")
    joined = {method: np.concatenate(parts) for method, parts in predictions.items()}
    print_table(joined, reference)
    if args.stamp and args.model:
        stamp(args.model, joined, reference, names)


def stamp(model: str, predictions: dict[str, np.ndarray], reference: np.ndarray,
          names: list[str]) -> None:
    """The model's card gets this table as its `baselines` verdict (MAE and RMSE decide)."""
    import dataclasses

    from gapfill.core.fills.timeseries_fill import regression_scores
    from gapfill.core.learned import baselines
    from gapfill.core.learned.model_card import read_card, write_card

    methods = {}
    for method, prediction in predictions.items():
        ok = np.isfinite(prediction)
        found = regression_scores(prediction[ok], reference[ok])
        methods[method] = {key: float(f"{found[key]:.4g}") for key in ("mae", "rmse", "r2")}
        methods[method]["filled_fraction"] = float(ok.mean())
    entry = baselines.baselines(
        methods, model="STPConv model", classical=[m for m in methods if m != "STPConv model"],
        protocol="artificial gaps (STPConv VALMASK: observed values removed), scored on them",
        evaluated_on=f"the validation blocks {', '.join(names)} of s5p_co/training "
        f"({reference.size} pixels; mol/m²)", metric_scaling="values as stored (mol/m²)",
    )  # fmt: skip
    card = read_card(model)
    metrics = {**card.validation_metrics, "baselines": entry}
    write_card(model, dataclasses.replace(card, validation_metrics=metrics))
    print(f"{model}: {entry['summary']}")


if __name__ == "__main__":
    main()
