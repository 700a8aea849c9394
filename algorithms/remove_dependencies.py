"""Processing algorithm: delete Gapfill's dependency folder (uninstall, or repair, reinstall)."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputString,
)

from ..core.environment.dependency_folder import activate
from ..core.environment.dependency_installer import remove_dependencies
from .base import DependencyFolderAlgorithm


class RemoveDependencies(DependencyFolderAlgorithm):
    REMOVED = "REMOVED"

    def name(self) -> str:
        return "removedependencies"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return self.tr("Remove dependencies")

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        return self.tr(
            "Deletes the packages 'Install dependencies' put in Gapfill's folder of your QGIS "
            "profile (python/gapfill-deps). QGIS's own Python packages are not touched. Use it "
            "to uninstall, or to repair: remove, restart QGIS, install again."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        self.addOutput(QgsProcessingOutputString(self.REMOVED, self.tr("Removed folders")))

    def processAlgorithm(  # noqa: N802 - QGIS API
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        root = self.dependency_root()
        removed, leftovers = remove_dependencies(root)
        activate(root)
        for folder in removed:
            feedback.pushInfo(f"Removed {folder}")
        if not removed and not leftovers:
            feedback.pushInfo(f"Nothing to remove in {root}.")
        if leftovers:
            feedback.pushWarning(
                "Files still in use by this QGIS session could not be deleted: "
                + ", ".join(map(str, leftovers))
                + ". They are no longer used; restart QGIS and run this again to delete them."
            )
        return {self.REMOVED: "\n".join(map(str, removed))}
