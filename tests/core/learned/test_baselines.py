"""The baseline verdict: beating a classical fill means better on both PSNR and SAM."""

from __future__ import annotations

from gapfill.core.learned import baselines

MODEL = {"mae": 0.02, "rmse": 0.03, "psnr": 30.0, "ssim": 0.9, "sam": 4.0, "filled_fraction": 1.0}


def entry(spatial: dict, **others: dict) -> dict:
    methods = {"model": MODEL, "spatial IDW": spatial, **others}
    return baselines.baselines(
        methods, model="model", classical=["spatial IDW", *others], protocol="p",
        evaluated_on="e", metric_scaling="DN / 10000",
    )  # fmt: skip


def test_better_on_both_beats_worse_on_either_loses():
    won = entry({**MODEL, "psnr": 28.0, "sam": 5.0})
    assert won["verdict"] == baselines.BEATS and won["best_classical"] == "spatial IDW"
    assert won["summary"].startswith("The model beats every classical fill it was compared with")
    lost = entry({**MODEL, "psnr": 28.0, "sam": 3.0})  # better SAM: the model loses
    assert lost["verdict"] == baselines.LOSES
    assert "LOSES to spatial IDW" in lost["summary"] and "SAM 4.00° vs 3.00°" in lost["summary"]
    several = entry(
        {**MODEL, "psnr": 28.0, "sam": 5.0}, **{"histogram matching": {**MODEL, "psnr": 33.0}}
    )
    assert several["verdict"] == baselines.LOSES
    assert several["best_classical"] == "histogram matching"


def test_without_sam_psnr_and_mae_decide():
    one_band = {**MODEL, "sam": None}
    methods = {"model": one_band, "spatial IDW": {**one_band, "psnr": 29.0, "mae": 0.03}}
    assert baselines.decide(methods, "model", ["spatial IDW"])[0] == baselines.BEATS
    assert baselines.decide({"model": MODEL}, "model", ["spatial IDW"])[0] == baselines.NOT_MEASURED


def test_description_and_reading_back():
    found = entry({**MODEL, "psnr": 31.0, "sam": 3.5})
    found["collapsed_bands"] = {"B3": "stuck at the bound 0 on 100% of the pixels"}
    text = baselines.describe(found)
    assert text.startswith("Baseline verdict: the model LOSES (p)")
    assert "spatial IDW" in text and "30.00" in text and "Collapsed output bands" in text
    assert baselines.of_metrics({"mae": 1, "baselines": found}) == found
    assert baselines.of_metrics({"mae": 1}) is None
