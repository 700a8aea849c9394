"""The QGIS plugin object: registers the Processing provider, nothing else at load time."""

from __future__ import annotations

from qgis.core import QgsApplication

from .provider import GapfillProvider


class GapfillPlugin:
    """Owns the provider; `initProcessing` works without a GUI (qgis_process)."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider: GapfillProvider | None = None

    def initProcessing(self) -> None:  # noqa: N802 - QGIS API
        self.provider = GapfillProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802 - QGIS API
        self.initProcessing()

    def unload(self) -> None:
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
