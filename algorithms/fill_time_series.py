"""Processing algorithm: fill every gap of a time series stack (bands = dates)."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from ..core.fills.timeseries_fill import METHODS, fill_time_series
from ..core.learned.onnx_session import DEVICES
from .base import GapfillAlgorithm, fill_outputs, fill_results, run_core


class FillTimeSeries(GapfillAlgorithm):
    INPUT = "INPUT"
    RASTERS = "RASTERS"
    USE_DATES = "USE_DATES"
    GAP_MASK = "GAP_MASK"
    METHOD = "METHOD"
    LAMBDA = "LAMBDA"
    MODEL = "MODEL"
    DEVICE = "DEVICE"
    BLOCK = "BLOCK_SIZE"
    OUTPUT = "OUTPUT"

    ICON = "fill.svg"

    def name(self) -> str:
        return "filltimeseries"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return self.tr("Fill time series")

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        return self.tr(
            "Fills every gap of a time series given as one multi-band raster whose bands are "
            "dates (in order), or as a list of single-date rasters (used when no stack is given: "
            "band 1 of each, stacked on the first raster's grid, rasters on another grid are "
            "warped to it; sorted by date when each has one, from its metadata, band "
            "description or file name; the output's band descriptions are these dates, else "
            "the file names). When every band description holds a date, linear interpolation "
            "and the Whittaker smoother use the real dates (else equal spacing). Gaps are the "
            "no-data pixels of each band, plus the pixels ≠ 0 of an optional gap mask stack (one "
            "band per date, or one band for all dates). Valid observations are copied unchanged; "
            "the output has the same bands, band descriptions, grid and data type.\n\n"
            "Methods: linear interpolation in time between each pixel's nearest observations "
            "(the nearest one at the ends); the Whittaker smoother (Eilers 2003) with weight 0 "
            "on gaps, λ sets the smoothness; or an STPConv time-series model (3-D partial "
            "convolutions, Appel 2022) given as an ONNX file with a Gapfill card, run in spatial "
            "tiles and, for series longer than the model's dates, in blended windows of dates "
            "(needs onnxruntime). A pixel never observed stays no-data."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        self.addParameter(
            QgsProcessingParameterRasterLayer(
                self.INPUT, self.tr("Time series (bands = dates)"), optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                self.RASTERS,
                self.tr("Or single-date rasters (used when no time series stack is given)"),
                QgsProcessing.TypeRaster,
                optional=True,
            )
        )
        mask = QgsProcessingParameterRasterLayer(
            self.GAP_MASK, self.tr("Gap mask stack (1 = gap; default: no-data)"), optional=True
        )
        self.addParameter(mask)
        self.addParameter(
            QgsProcessingParameterEnum(
                self.METHOD,
                self.tr("Method"),
                options=[
                    self.tr("Linear interpolation in time"),
                    self.tr("Whittaker smoother"),
                    self.tr("STPConv model (ONNX)"),
                ],
                defaultValue=0,
            )
        )
        lam = QgsProcessingParameterNumber(
            self.LAMBDA,
            self.tr("Whittaker smoothing λ"),
            QgsProcessingParameterNumber.Double,
            defaultValue=10.0,
            minValue=1e-6,
        )
        lam.setHelp(self.tr("Larger values give smoother fills (second-order differences)."))
        self.addParameter(lam)
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.USE_DATES,
                self.tr("Use the band dates for the spacing in time (when every band has one)"),
                defaultValue=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                self.MODEL,
                self.tr("Time-series ONNX model (default: the bundled one for this many dates)"),
                extension="onnx", optional=True,
            )
        )
        device = QgsProcessingParameterEnum(
            self.DEVICE,
            self.tr("Device"),
            options=["Auto (GPU when available)", "CPU", "CUDA GPU"],
            defaultValue=0,
        )
        block = QgsProcessingParameterNumber(
            self.BLOCK,
            self.tr("Block size in pixels (0 = the model's tile)"),
            QgsProcessingParameterNumber.Integer,
            defaultValue=256,
            minValue=0,
        )
        self.add_advanced(device, block)
        fill_outputs(self)

    def processAlgorithm(  # noqa: N802 - QGIS API
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        method = METHODS[self.parameterAsEnum(parameters, self.METHOD, context)]
        model = self.parameterAsFile(parameters, self.MODEL, context)
        source: str | list[str] | None = self.raster_path(parameters, self.INPUT, context)
        if source is None:
            source = self.raster_paths(parameters, self.RASTERS, context)
            if len(source) < 2:
                raise QgsProcessingException(
                    "Give a time series stack (bands = dates) or at least two single-date "
                    "rasters."
                )
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        report = run_core(
            fill_time_series,
            feedback,
            source,
            output,
            method=method,
            mask_path=self.raster_path(parameters, self.GAP_MASK, context),
            lam=self.parameterAsDouble(parameters, self.LAMBDA, context),
            use_dates=self.parameterAsBoolean(parameters, self.USE_DATES, context),
            model_path=model or None,
            device=DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
            block=self.parameterAsInt(parameters, self.BLOCK, context),
            log=feedback.pushInfo,
        )
        return fill_results(report, output, feedback)
