"""The baseline verdict of a model: its scores next to the classical fills', and whether it won.

Every model card carries it in `validation_metrics.baselines` (training writes it at the end of
every run, the recipes of the bundled models write their held-out figures):

    {"protocol": "pure gap filling: …", "evaluated_on": "…", "metric_scaling": "…",
     "methods": {"model": {"mae": …, "psnr": …, "sam": …}, "spatial IDW": {…}, …},
     "model": "model", "classical": ["spatial IDW", "spatial pyramid", "histogram matching"],
     "verdict": "beats" | "loses" | "not measured", "best_classical": "spatial IDW",
     "summary": "…", "collapsed_bands": {"B3": "stuck at 0 …"}}

and optionally `per_scene` (scene → method → metrics) and `other_protocols` (name → the same
form). The rule (DESIGN.md, "a learned model that does not beat the best baseline is not a
default"): the model beats a classical fill when it is better on both PSNR and SAM (on PSNR and
MAE where SAM does not apply); its verdict is "beats" when it beats every classical fill it was
compared with. Pure gap filling (real cloud shapes laid on a clear image, scored against that
same image) is the protocol the project decides defaults on.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

BEATS, LOSES, NOT_MEASURED = "beats", "loses", "not measured"
# the classical fills' method names (those of benchmarks/quality_cases.py)
SPATIAL, PYRAMID, HISTOGRAM = "spatial IDW", "spatial pyramid", "histogram matching"
PURE_GAP_FILLING = (
    "pure gap filling: real cloud shapes laid on clear images, the removed pixels scored "
    "against those same images"
)
COLUMNS = (
    ("mae", "MAE", ".4g"),
    ("rmse", "RMSE", ".4g"),
    ("psnr", "PSNR dB", ".2f"),
    ("ssim", "SSIM", ".4f"),
    ("sam", "SAM °", ".2f"),
    ("filled_fraction", "filled", ".1%"),
)


def _number(scores: Mapping[str, Any], key: str) -> float | None:
    value = scores.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def compared_keys(model: Mapping[str, Any], classical: Sequence[Mapping[str, Any]]) -> tuple:
    """The two scores the verdict compares: PSNR and SAM, or PSNR and MAE without SAM."""
    everyone = [model, *classical]
    if all(_number(scores, "sam") is not None for scores in everyone):
        return ("psnr", "sam")
    if all(_number(scores, "psnr") is not None for scores in everyone):
        return ("psnr", "mae")
    return ("mae", "rmse")


def better(key: str, mine: float, theirs: float) -> bool:
    return mine > theirs if key == "psnr" else mine < theirs


def decide(
    methods: Mapping[str, Mapping[str, Any]], model: str, classical: Sequence[str]
) -> tuple[str, str, str]:
    """(verdict, best classical fill, summary) of `model` against the `classical` fills."""
    present = [name for name in classical if name in methods]
    if model not in methods or not present:
        return NOT_MEASURED, "", "No classical fill was scored next to the model."
    mine = methods[model]
    keys = compared_keys(mine, [methods[name] for name in present])
    if any(_number(mine, key) is None for key in keys):
        return NOT_MEASURED, "", "The model's scores could not be measured."
    lost = [
        name
        for name in present
        if not all(
            _number(methods[name], key) is not None
            and better(key, _number(mine, key), _number(methods[name], key))
            for key in keys
        )
    ]
    ranked = lost or present
    lead = keys[0]
    best = max(ranked, key=lambda name: _score(methods[name], lead))
    theirs = methods[best]
    versus = ", ".join(
        f"{_label(key)} {_format(key, _number(mine, key))} vs {_format(key, _number(theirs, key))}"
        for key in keys
    )
    if lost:
        summary = (
            f"The model LOSES to {' and '.join(lost)} on "
            f"{'PSNR and SAM' if keys == ('psnr', 'sam') else ' and '.join(map(_label, keys))} "
            f"({versus} against {best}): it must beat every classical fill on both to be worth "
            "using. Use the classical fill, or train on more data (more scenes, more epochs)."
        )
        return LOSES, best, summary
    compared = ", ".join(present)
    summary = (
        f"The model beats every classical fill it was compared with ({compared}) on both: "
        f"{versus} against the best of them, {best}."
    )
    return BEATS, best, summary


def _score(scores: Mapping[str, Any], key: str) -> float:
    value = _number(scores, key)
    if value is None:
        return -math.inf
    return value if key == "psnr" else -value


def _label(key: str) -> str:
    return {"psnr": "PSNR", "sam": "SAM", "mae": "MAE", "rmse": "RMSE"}[key]


def _format(key: str, value: float | None) -> str:
    if value is None:
        return "–"
    return {"psnr": f"{value:.2f} dB", "sam": f"{value:.2f}°"}.get(key, f"{value:.4g}")


def baselines(
    methods: Mapping[str, Mapping[str, Any]],
    *,
    model: str,
    classical: Sequence[str],
    protocol: str,
    evaluated_on: str,
    metric_scaling: str,
    collapsed_bands: Mapping[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The card's `baselines` entry, with its verdict decided."""
    verdict, best, summary = decide(methods, model, classical)
    collapsed = dict(collapsed_bands or {})
    return {
        "protocol": protocol,
        "evaluated_on": evaluated_on,
        "metric_scaling": metric_scaling,
        "methods": {name: dict(scores) for name, scores in methods.items()},
        "model": model,
        "classical": [name for name in classical if name in methods],
        "verdict": verdict,
        "best_classical": best,
        "summary": summary,
        "collapsed_bands": collapsed,
        **extra,
    }


def of_metrics(validation_metrics: Mapping[str, Any]) -> dict[str, Any] | None:
    """The `baselines` entry of a card's validation metrics, when it has one."""
    entry = validation_metrics.get("baselines")
    return dict(entry) if isinstance(entry, Mapping) and "verdict" in entry else None


def table(entry: Mapping[str, Any], indent: str = "  ") -> str:
    """The methods' scores as aligned text, the model first."""
    methods: Mapping[str, Mapping[str, Any]] = entry.get("methods", {})
    model = entry.get("model", "")
    order = [model] if model in methods else []
    order += [name for name in methods if name != model]
    width = max([len("method"), *map(len, order)])
    header = f"{indent}{'method':<{width}}" + "".join(f"  {title:>9}" for _, title, _ in COLUMNS)
    lines = [header]
    for name in order:
        scores = methods[name]
        cells = []
        for key, _, form in COLUMNS:
            value = _number(scores, key)
            cells.append(f"  {'–' if value is None else format(value, form):>9}")
        lines.append(f"{indent}{name:<{width}}" + "".join(cells))
    return "\n".join(lines)


def describe(entry: Mapping[str, Any]) -> str:
    """The verdict in words: protocol, what was evaluated, the table, the summary."""
    lines = [
        f"Baseline verdict: the model {str(entry.get('verdict', NOT_MEASURED)).upper()} "
        f"({entry.get('protocol', 'protocol not stated')})",
    ]
    if entry.get("evaluated_on"):
        lines.append(f"  on {entry['evaluated_on']}; values {entry.get('metric_scaling', '')}")
    if entry.get("methods"):
        lines.append(table(entry))
    lines.append(f"  {entry.get('summary', '')}")
    collapsed = dict(entry.get("collapsed_bands") or {})
    if collapsed:
        lines.append(
            "  Collapsed output bands (flat or stuck at a bound): "
            + ", ".join(f"{band} {reason}" for band, reason in collapsed.items())
        )
    for name, other in dict(entry.get("other_protocols", {})).items():
        if isinstance(other, Mapping):
            lines.append(f"  Also measured, {name} ({other.get('protocol', '')}):")
            lines.append(table(other, "    "))
            if other.get("summary"):
                lines.append(f"    {other['summary']}")
    return "\n".join(lines)


def fill_messages(
    validation_metrics: Mapping[str, Any], roles: Collection[str]
) -> tuple[str, list[str]]:
    """What a fill with a model says of its card's verdict: the verdict in words, and the
    warnings (no verdict; the model lost; other dates given, but histogram matching, usually
    the best fill from them, never compared). Both front ends (Processing, CLI) log them."""
    entry = of_metrics(validation_metrics)
    if entry is None:
        return "", [
            "This model's card has no baseline verdict: nothing says it fills better than the "
            "classical fills. Compare them on your data ('Simulate gaps', then 'Evaluate fill')."
        ]
    warnings = []
    if entry["verdict"] == LOSES:
        warnings.append(
            f"This model LOST to {entry['best_classical']} on its validation: {entry['summary']}"
        )
    if {"optical_before", "optical_after"} & set(roles) and HISTOGRAM not in entry.get(
        "classical", []
    ):
        warnings.append(
            "You gave other dates, and this model was never compared with histogram matching "
            "from other dates ('Fill gaps from other dates'), usually the best fill when other "
            "dates exist: compare both ('Evaluate fill')."
        )
    return describe(entry), warnings
