"""A processing feedback that keeps what an algorithm reports, for assertions on its log."""

from __future__ import annotations

from qgis.core import QgsProcessingFeedback


class RecordingFeedback(QgsProcessingFeedback):
    """Keeps info lines and warnings; cancels once progress passes `cancel_above` percent
    (−1: at the first progress report)."""

    def __init__(self, cancel_above: float | None = None) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.warnings: list[str] = []
        self.cancel_above = cancel_above

    def pushInfo(self, text: str) -> None:  # noqa: N802 - QGIS API
        self.lines.append(text)

    def pushWarning(self, text: str) -> None:  # noqa: N802 - QGIS API
        self.warnings.append(text)

    def setProgress(self, progress: float) -> None:  # noqa: N802 - QGIS API
        super().setProgress(progress)
        if self.cancel_above is not None and progress > self.cancel_above:
            self.cancel()
