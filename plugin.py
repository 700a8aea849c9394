"""The QGIS plugin object: registers the Processing provider, and in the GUI a Gapfill menu.

Loading puts Gapfill's dependency folder (onnxruntime, torch installed by 'Install dependencies')
on `sys.path`: it reads one small file and imports nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qgis.core import QgsApplication

from .core.environment.dependency_folder import activate, dependency_root

if TYPE_CHECKING:
    from qgis.PyQt.QtWidgets import QAction

    from .provider import GapfillProvider

ICON = Path(__file__).parent / "icons" / "gapfill.svg"
MENU = "&Gapfill"
MENU_ACTIONS = (
    ("Install dependencies…", "gapfill:installdependencies"),
    ("Check environment…", "gapfill:checkenvironment"),
)


def open_algorithm_dialog(algorithm_id: str) -> None:
    """Open an algorithm's Processing dialog (Processing is imported on first use)."""
    from processing import execAlgorithmDialog

    execAlgorithmDialog(algorithm_id, {})


def _model_running_gapfill(path: str) -> bool:
    """Whether `path` is a graphical-modeler model with a Gapfill algorithm in it."""
    model = Path(path)
    return model.suffix == ".model3" and model.is_file() and (
        "gapfill:" in model.read_text(encoding="utf-8", errors="ignore")
    )


def keep_inputs_clean() -> None:
    """`qgis_process run gapfill:…` loads each input raster as a layer before the algorithm
    starts (its own check of the values), and the layer's default renderer has GDAL write the
    statistics it computed into an .aux.xml beside the user's file. That process runs one
    algorithm, ours or a model with ours in it: GDAL's auxiliary files are switched off in it
    (GeoTIFF and VRT, the rasters Gapfill writes, keep their metadata inside). Nowhere else:
    QGIS desktop and other algorithms keep them."""
    from qgis.PyQt.QtCore import QCoreApplication

    arguments = QCoreApplication.arguments()
    after = arguments[arguments.index("run") + 1 :] if "run" in arguments else []
    algorithm = next((argument for argument in after if not argument.startswith("-")), "")
    program = Path(arguments[0]).name if arguments else ""
    if program.startswith("qgis_process") and (
        algorithm.startswith("gapfill:") or _model_running_gapfill(algorithm)
    ):
        from osgeo import gdal

        gdal.SetConfigOption("GDAL_PAM_ENABLED", "NO")


class GapfillPlugin:
    """Owns the provider and the menu actions; `initProcessing` works without a GUI."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider: GapfillProvider | None = None
        self.actions: list[QAction] = []
        activate(dependency_root(Path(QgsApplication.qgisSettingsDirPath())))

    def initProcessing(self) -> None:  # noqa: N802 - QGIS API
        from .provider import GapfillProvider

        keep_inputs_clean()
        self.provider = GapfillProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802 - QGIS API
        self.initProcessing()
        from qgis.PyQt.QtGui import QIcon
        from qgis.PyQt.QtWidgets import QAction

        for text, algorithm_id in MENU_ACTIONS:
            action = QAction(QIcon(str(ICON)), text, self.iface.mainWindow())
            action.triggered.connect(
                lambda _checked=False, a=algorithm_id: open_algorithm_dialog(a)
            )
            self.iface.addPluginToMenu(MENU, action)
            self.actions.append(action)

    def unload(self) -> None:
        for action in self.actions:
            self.iface.removePluginMenu(MENU, action)
        self.actions = []
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
