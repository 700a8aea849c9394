"""Styles that QGIS applies to outputs when it loads them (never to inputs; no file is written).

A Processing run loads its outputs after the algorithm returns; a post-processor registered for
an output applies a QML of `styles/` to the layer then, in the dialog, the modeler and batch
runs alike. `qgis_process` and scripts that do not load the output are unaffected.
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsMapLayer,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
)
from qgis.PyQt import sip

STYLES = Path(__file__).resolve().parent.parent / "styles"


class StyleOnLoad(QgsProcessingLayerPostProcessorInterface):
    """Applies one QML to the output layer QGIS has just loaded."""

    def __init__(self, qml: Path) -> None:
        super().__init__()
        self.qml = qml

    def postProcessLayer(  # noqa: N802 - QGIS API
        self, layer: QgsMapLayer, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> None:
        message, loaded = layer.loadNamedStyle(str(self.qml))
        if not loaded:
            feedback.pushWarning(f"The style {self.qml.name} could not be applied: {message}")
            return
        layer.triggerRepaint()


def style_when_loaded(context: QgsProcessingContext, output: str, style: str) -> None:
    """Have `styles/<style>.qml` applied to `output` if QGIS loads it when the run completes."""
    if not context.willLoadLayerOnCompletion(output):
        return
    processor = StyleOnLoad(STYLES / f"{style}.qml")
    context.layerToLoadOnCompletionDetails(output).setPostProcessor(processor)
    _keep_alive(processor)


# QGIS calls a post-processor after the algorithm's run (on a copy of the algorithm, already
# gone) and deletes it with the run's context, but does not keep its Python object alive: a
# collected one is silently never called. So each is referenced here until QGIS has deleted it.
_ALIVE: list[StyleOnLoad] = []


def _keep_alive(processor: StyleOnLoad) -> None:
    _ALIVE[:] = [alive for alive in _ALIVE if not sip.isdeleted(alive)] + [processor]
