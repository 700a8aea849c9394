"""The models shipped in the plugin's `models/` folder, and the one that fits a fill's inputs.

So that *Fill gaps with a model* works without a model file: given the layers a user has (SAR,
earlier and later dates, DEM) and the target's band count, it picks the bundled model that
uses the most of them and needs nothing else.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from ..errors import GapfillError
from .model_card import ROLE_LABELS, ModelCard, read_card

MODELS_FOLDER = Path(__file__).resolve().parents[2] / "models"


@dataclass(frozen=True)
class BundledModel:
    path: Path
    card: ModelCard

    @property
    def roles(self) -> frozenset[str]:
        """The layers it needs beside the target and its gap mask."""
        return frozenset(item.role for item in self.card.auxiliary_inputs)

    def outscored_by(self) -> tuple[str, dict[str, float]] | None:
        """The classical fill that beat it on held-out PSNR or SAM (the card's
        `classical_means`), the best by PSNR, with its scores; None if none did."""
        metrics = self.card.validation_metrics
        if not {"psnr", "sam"} <= set(metrics):
            return None
        better = [
            (method, scores)
            for method, scores in dict(metrics.get("classical_means", {})).items()
            if {"psnr", "sam"} <= set(scores)
            and (scores["psnr"] > metrics["psnr"] or scores["sam"] < metrics["sam"])
        ]
        return max(better, key=lambda item: item[1]["psnr"], default=None)

    def choice_messages(self) -> tuple[str, str | None]:
        """What a fill that chose this model says: the model and its held-out scores, and a
        warning when a classical fill scored better on those cases."""
        scores = self.card.validation_metrics
        held_out = (
            f" (held out: PSNR {scores['psnr']:.2f} dB, SAM {scores['sam']:.2f}°)"
            if {"psnr", "sam"} <= set(scores)
            else ""
        )
        info = f"No model given: using the bundled model {self.path.name}{held_out}."
        outscored = self.outscored_by()
        if outscored is None:
            return info, None
        method, best = outscored
        return info, (
            f"On its held-out cases, {method} scored better than this model (PSNR "
            f"{best['psnr']:.2f} dB, SAM {best['sam']:.2f}°): consider the classical fills "
            "(from other dates, or spatial)."
        )

    def needs(self) -> str:
        labels = [ROLE_LABELS[role] for role in sorted(self.roles)]
        bands = len(self.card.output.bands)
        return f"a {bands}-band target" + "".join(f", a {label}" for label in labels)


def bundled_models(folder: Path = MODELS_FOLDER) -> list[BundledModel]:
    """Every ONNX model of `folder`, with its card, by file name."""
    return [BundledModel(path, read_card(path)) for path in sorted(folder.glob("*.onnx"))]


def choose_bundled_model(
    roles: Collection[str], bands: int, folder: Path = MODELS_FOLDER
) -> BundledModel:
    """The bundled model that fills a `bands`-band target from the layers of `roles` alone,
    using as many of them as possible; refuses with what each bundled model needs."""
    models = bundled_models(folder)
    fitting = [
        model
        for model in models
        if model.roles <= set(roles) and len(model.card.output.bands) == bands
    ]
    if fitting:
        return max(fitting, key=lambda model: (len(model.roles), model.path.name))
    given = ", ".join(f"a {ROLE_LABELS[role]}" for role in sorted(roles)) or "no other layer"
    choices = "; ".join(f"{model.path.name} needs {model.needs()}" for model in models)
    raise GapfillError(
        f"No bundled model fills a {bands}-band target from {given}. Bundled models: "
        f"{choices or 'none'}. Give the layers one of them needs, or choose a model file."
    )


def choose_time_series_model(dates: int, folder: Path = MODELS_FOLDER) -> BundledModel:
    """The bundled time-series model (time_series and gap_mask inputs) for a stack of `dates`
    bands; refuses with the date counts the bundled ones take."""
    models = [m for m in bundled_models(folder) if m.card.input_for("time_series") is not None]
    for model in models:
        if len(model.card.input_for("time_series").bands) == dates:
            return model
    counts = ", ".join(
        f"{m.path.name}: {len(m.card.input_for('time_series').bands)} dates" for m in models
    )
    raise GapfillError(
        f"No bundled time-series model takes {dates} dates ({counts or 'none is bundled'}). "
        "Give a time-series model file made for this many dates, or another method."
    )
