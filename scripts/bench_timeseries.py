"""Score the time-series fills on the validation blocks of an STPConv folder (VALMASK pixels).

``python scripts/bench_timeseries.py DATA_FOLDER [MODEL.onnx] [--every 5] [--lam 10]``
(run with the plugin importable as `gapfill`). Prints a Markdown table of MAE, RMSE and R²
over all evaluation pixels of the validation blocks, for linear interpolation in time, the
Whittaker smoother, the temporal mean and the model.
"""

from __future__ import annotations

import argparse

import numpy as np
from mosaic import make_plugin_importable


def main() -> None:
    make_plugin_importable()
    from gapfill.core.simulate_gaps import read_stpconv, stpconv_names
    from gapfill.core.timeseries_baselines import temporal_linear, temporal_mean
    from gapfill.core.timeseries_fill import model_fill, regression_scores
    from gapfill.core.whittaker import whittaker_fill
    from gapfill.training.stpconv_train import split_names

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("model", nargs="?")
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--lam", type=float, default=10.0)
    args = parser.parse_args()
    _, names = split_names(stpconv_names(args.data), args.every)
    methods = {
        "temporal mean": lambda v, m: temporal_mean(v, m)[0],
        "linear in time": lambda v, m: temporal_linear(v, m)[0],
        f"Whittaker (λ={args.lam:g})": lambda v, m: whittaker_fill(v, m, args.lam)[0],
    }
    if args.model:
        from gapfill.core.model_card import card_of_session
        from gapfill.core.onnx_session import create_session

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
    print("| method | MAE | RMSE | R² | unfilled |")
    print("|---|---|---|---|---|")
    for method, parts in predictions.items():
        prediction = np.concatenate(parts)
        ok = np.isfinite(prediction)
        s = regression_scores(prediction[ok], reference[ok])
        print(f"| {method} | {s['mae']:.3g} | {s['rmse']:.3g} | {s['r2']:.3f} | {(~ok).sum()} |")


if __name__ == "__main__":
    main()
