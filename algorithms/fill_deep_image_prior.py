"""Processing algorithm: fill gaps with Deep Image Prior (no training data, needs torch)."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingParameterEnum,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
)

from ..core.fills.deep_image_prior import fill_with_deep_image_prior, open_auxiliary
from ..core.learned.onnx_session import DEVICES
from ..core.raster.fill_engine import open_target
from .base import (
    GapfillAlgorithm,
    domain_errors,
    fill_outputs,
    fill_results,
    run_core,
    target_parameters,
)


class FillDeepImagePrior(GapfillAlgorithm):
    INPUT = "INPUT"
    GAP_MASK = "GAP_MASK"
    AUXILIARY = "AUXILIARY"
    AUXILIARY_MASKS = "AUXILIARY_MASKS"
    ITERATIONS = "ITERATIONS"
    LEARNING_RATE = "LEARNING_RATE"
    SEED = "SEED"
    DEVICE = "DEVICE"
    TILE_SIZE = "TILE_SIZE"
    OUTPUT = "OUTPUT"

    ICON = "fill.svg"

    def name(self) -> str:
        return "filldip"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return self.tr("Fill with Deep Image Prior")

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        return self.tr(
            "Fills the gap pixels of the target image without any training data (Deep Image "
            "Prior, Czerkawski et al. 2022): a fresh small encoder–decoder is fitted to reproduce "
            "the target on its clear pixels and every auxiliary source (SAR, a mean or earlier "
            "image…) on its valid pixels; the target's gaps are then read from the network. "
            "Only gap pixels change; clear pixels are copied exactly.\n\n"
            "Images larger than the tile size are fitted tile by tile with overlap and blended. "
            "Each band is normalised by robust percentiles. A fixed seed on the CPU gives the "
            "same result every run. Needs the Python package 'torch' (install it with 'Install "
            "dependencies'); uses a CUDA GPU when the device is 'auto' and one is available.\n\n"
            "Auxiliary sources may have another CRS or resolution: they are aligned on the fly. "
            "Give their masks (1 = invalid) in the same order, or none."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        target_parameters(self)
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                self.AUXILIARY, self.tr("Auxiliary sources (SAR, mean image…; optional)"),
                QgsProcessing.TypeRaster, optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                self.AUXILIARY_MASKS,
                self.tr("Masks of the auxiliary sources (same order; optional)"),
                QgsProcessing.TypeRaster, optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.ITERATIONS, self.tr("Iterations per tile"),
                QgsProcessingParameterNumber.Integer, defaultValue=300, minValue=1,
                maxValue=100000,
            )
        )
        rate = QgsProcessingParameterNumber(
            self.LEARNING_RATE, self.tr("Learning rate"), QgsProcessingParameterNumber.Double,
            defaultValue=0.01, minValue=1e-6, maxValue=1.0,
        )
        seed = QgsProcessingParameterNumber(
            self.SEED, self.tr("Random seed"), QgsProcessingParameterNumber.Integer,
            defaultValue=0, minValue=0,
        )
        device = QgsProcessingParameterEnum(
            self.DEVICE, self.tr("Device"), options=DEVICES, defaultValue=0
        )
        tile = QgsProcessingParameterNumber(
            self.TILE_SIZE, self.tr("Tile size (pixels)"), QgsProcessingParameterNumber.Integer,
            defaultValue=256, minValue=16, maxValue=4096,
        )
        self.add_advanced(rate, seed, device, tile)
        fill_outputs(self)

    def processAlgorithm(  # noqa: N802 - QGIS API
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        target_path = self.raster_path(parameters, self.INPUT, context)
        mask_path = self.raster_path(parameters, self.GAP_MASK, context)
        paths = self.raster_paths(parameters, self.AUXILIARY, context)
        masks = self.raster_paths(parameters, self.AUXILIARY_MASKS, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        with domain_errors():
            target = open_target(target_path, mask_path)
            sources = open_auxiliary(target, paths, masks)
        report = run_core(
            fill_with_deep_image_prior, feedback, target, output, sources,
            iterations=self.parameterAsInt(parameters, self.ITERATIONS, context),
            learning_rate=self.parameterAsDouble(parameters, self.LEARNING_RATE, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            device=DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
            tile_size=self.parameterAsInt(parameters, self.TILE_SIZE, context),
        )
        return fill_results(report, output, feedback)
