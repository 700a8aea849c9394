"""The `gapfill` Processing provider: an explicit list of working algorithms."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms.build_gap_mask import BuildGapMask
from .algorithms.check_environment import CheckEnvironment
from .algorithms.describe_model import DescribeModel
from .algorithms.evaluate_fill import EvaluateFill
from .algorithms.extract_patches import ExtractPatches
from .algorithms.fill_deep_image_prior import FillDeepImagePrior
from .algorithms.fill_scene import FillScene
from .algorithms.fill_spatial import FillSpatial
from .algorithms.fill_temporal import FillTemporal
from .algorithms.fill_time_series import FillTimeSeries
from .algorithms.fill_with_model import FillWithModel
from .algorithms.install_dependencies import InstallDependencies
from .algorithms.raster_statistics import ComputeStatistics
from .algorithms.remove_dependencies import RemoveDependencies
from .algorithms.sample_patches import SamplePatches
from .algorithms.scale_raster import ScaleRaster
from .algorithms.simulate_gaps import SimulateGaps
from .algorithms.train_model import TrainModel
from .algorithms.unscale_raster import UnscaleRaster

ICON = Path(__file__).parent / "icons" / "gapfill.svg"


class GapfillProvider(QgsProcessingProvider):
    def id(self) -> str:
        return "gapfill"

    def name(self) -> str:
        return "Gapfill"

    def longName(self) -> str:  # noqa: N802 - QGIS API
        return "Gapfill: fill clouds, shadows and no-data gaps"

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def svgIconPath(self) -> str:  # noqa: N802 - QGIS API
        return str(ICON)

    def supportedOutputRasterLayerExtensions(self) -> list[str]:  # noqa: N802 - QGIS API
        return ["tif"]

    def defaultRasterFileExtension(self) -> str:  # noqa: N802 - QGIS API
        return "tif"

    def loadAlgorithms(self) -> None:  # noqa: N802 - QGIS API
        for algorithm in (
            BuildGapMask(),
            ComputeStatistics(),
            ScaleRaster(),
            UnscaleRaster(),
            SamplePatches(),
            ExtractPatches(),
            FillTemporal(),
            FillSpatial(),
            FillWithModel(),
            FillTimeSeries(),
            FillDeepImagePrior(),
            FillScene(),
            DescribeModel(),
            TrainModel(),
            SimulateGaps(),
            EvaluateFill(),
            CheckEnvironment(),
            InstallDependencies(),
            RemoveDependencies(),
        ):
            self.addAlgorithm(algorithm)
