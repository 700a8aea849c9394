"""Processing algorithm: show what an ONNX model needs (its card) before running it."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputString,
    QgsProcessingParameterFile,
)

from ..core.learned.model_card import card_to_json, describe_card, read_card
from .base import GapfillAlgorithm, domain_errors


class DescribeModel(GapfillAlgorithm):
    MODEL = "MODEL"
    DESCRIPTION = "DESCRIPTION"
    CARD_JSON = "CARD_JSON"

    GROUP = "fill"

    def name(self) -> str:
        return "describemodel"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return self.tr("Describe model")

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        return self.tr(
            "Prints a Gapfill ONNX model's card: what it fills, which inputs (roles) it needs "
            "with their bands and scaling, the output bands, the context margin, the tile size "
            "it prefers, its licence, training data and validation metrics. Run it before "
            "'Fill gaps with a model' to know which layers to give. Needs onnxruntime."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        self.addParameter(
            QgsProcessingParameterFile(self.MODEL, self.tr("ONNX model"), extension="onnx")
        )
        self.addOutput(QgsProcessingOutputString(self.DESCRIPTION, self.tr("Description")))
        self.addOutput(QgsProcessingOutputString(self.CARD_JSON, self.tr("Model card (JSON)")))

    def processAlgorithm(  # noqa: N802 - QGIS API
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        with domain_errors():
            card = read_card(self.parameterAsFile(parameters, self.MODEL, context))
        text = describe_card(card)
        feedback.pushInfo(text)
        return {self.DESCRIPTION: text, self.CARD_JSON: card_to_json(card)}
