"""The models shipped in the plugin's `models/` folder, and the one that fits a fill's inputs.

So that *Fill gaps with a model* works without a model file: given the layers a user has (SAR,
earlier and later dates, DEM) and the target's band count, it picks the bundled model that
uses the most of them and needs nothing else, among those whose card's baseline verdict says
they beat the classical fills (`baselines`): a model that loses to one is not a default.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import GapfillError
from . import baselines
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

    @property
    def verdict(self) -> dict[str, Any] | None:
        """The card's baseline verdict (`baselines.of_metrics`), when it has one."""
        return baselines.of_metrics(self.card.validation_metrics)

    @property
    def is_default(self) -> bool:
        """Only a model that beat every classical fill it was compared with is ever chosen."""
        verdict = self.verdict
        return verdict is not None and verdict["verdict"] == baselines.BEATS

    def standing(self) -> str:
        """Its verdict in a few words, for messages."""
        verdict = self.verdict
        if verdict is None:
            return f"{self.path.name}: no baseline verdict in its card"
        return f"{self.path.name}: {verdict['summary']}"

    def choice_message(self) -> str:
        """What a fill that chose this model says: the model and its held-out scores."""
        scores = self.card.validation_metrics
        held_out = (
            f" (held out: PSNR {scores['psnr']:.2f} dB, SAM {scores['sam']:.2f}°)"
            if {"psnr", "sam"} <= set(scores)
            else ""
        )
        return f"No model given: using the bundled model {self.path.name}{held_out}."

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
    using as many of them as possible, among those whose card says they beat every classical
    fill (a model that loses to one is never a default); refuses with what each needs."""
    models = bundled_models(folder)
    fitting = [
        model
        for model in models
        if model.roles <= set(roles) and len(model.card.output.bands) == bands
    ]
    defaults = [model for model in fitting if model.is_default]
    if defaults:
        return max(defaults, key=lambda model: (len(model.roles), model.path.name))
    if fitting:
        standings = " ".join(model.standing() for model in fitting)
        raise GapfillError(
            f"No bundled model is a default for these layers: a model that loses to a classical "
            f"fill on held-out pure gap filling is never chosen for you. {standings} Use the "
            "classical fill ('Fill gaps from other dates' with other dates, 'Fill gaps "
            "spatially' otherwise), or give the model file ({model}) to run it anyway.",
            options=("model",),
        )
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
