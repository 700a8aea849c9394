"""Processing algorithm: fill gaps with an ONNX model (SAR, other dates, DEM as the card asks)."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..core.learned import baselines
from ..core.learned.bundled_models import choose_bundled_model
from ..core.learned.model_card import read_card
from ..core.learned.onnx_fill_raster import fill_raster_with_model, parse_band_mapping
from ..core.learned.onnx_session import DEVICES
from .base import (
    GapfillAlgorithm,
    domain_errors,
    fill_outputs,
    fill_results,
    parameter_label,
    run_core,
    target_parameters,
)

ROLE_PARAMETERS = [
    ("SAR", "sar", "SAR image at the target's date (e.g. Sentinel-1 VV, VH)"),
    ("BEFORE", "optical_before", "Optical image of an earlier date"),
    ("AFTER", "optical_after", "Optical image of a later date"),
    ("DEM", "dem", "Digital elevation model"),
]


class FillWithModel(GapfillAlgorithm):
    MODEL = "MODEL"
    INPUT = "INPUT"
    GAP_MASK = "GAP_MASK"
    BAND_MAPPING = "BAND_MAPPING"
    TILE_SIZE = "TILE_SIZE"
    MARGIN = "MARGIN"
    BATCH_SIZE = "BATCH_SIZE"
    DEVICE = "DEVICE"
    FULL = "FULL_RECONSTRUCTION"
    OUTPUT = "OUTPUT"

    ICON = "fill.svg"

    def name(self) -> str:
        return "fillgaps"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return self.tr("Fill gaps with a model")

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        return self.tr(
            "Fills the gap pixels of an optical image with an ONNX model that may also read SAR "
            "at the same date, optical images of other dates and a DEM. The model's card says "
            "which of these it needs (see 'Describe model'), which bands, and how values are "
            "scaled: give a layer for each role it needs; each is aligned on the fly to the "
            "target's grid. The image is processed in tiles read with a context margin and "
            "blended without seams; memory depends on the tile and batch size, not on the "
            "image. Only gap pixels change, unless full reconstruction is asked for. Uses the "
            "GPU (CUDA) when available, else the CPU; the log says which ran. Needs "
            "onnxruntime.\n\n"
            "Model: leave it empty to use the bundled model that fits the layers given (the "
            "one using most of them, among those that beat the classical fills on held-out "
            "data: a model that lost to one is never chosen for you).\n\n"
            "Every model card carries a baseline verdict (the model's scores next to spatial "
            "IDW and, with other dates, histogram matching, on simulated gaps): the log shows "
            "it and warns when the model lost.\n\n"
            "Band mapping (advanced): when a layer's band descriptions do not name the card's "
            "bands, give 1-based bands per role in the card's order, e.g. 'sar: 1, 2'."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        target_parameters(self)  # the image first: it is what the user came to fill
        self.addParameter(
            QgsProcessingParameterFile(
                self.MODEL,
                self.tr("ONNX model (empty: the bundled model that fits the inputs)"),
                extension="onnx",
                optional=True,
            )
        )
        for key, _, label in ROLE_PARAMETERS:
            self.addParameter(QgsProcessingParameterRasterLayer(key, self.tr(label), optional=True))
        mapping = QgsProcessingParameterString(
            self.BAND_MAPPING,
            self.tr("Band mapping (e.g. 'sar: 1, 2')"),
            defaultValue="",
            optional=True,
        )
        tile = QgsProcessingParameterNumber(
            self.TILE_SIZE,
            self.tr("Tile size in pixels (0 = the model's recommendation)"),
            QgsProcessingParameterNumber.Integer,
            defaultValue=0,
            minValue=0,
        )
        margin = QgsProcessingParameterNumber(
            self.MARGIN,
            self.tr("Context margin in pixels (-1 = the model's)"),
            QgsProcessingParameterNumber.Integer,
            defaultValue=-1,
            minValue=-1,
        )
        batch = QgsProcessingParameterNumber(
            self.BATCH_SIZE,
            self.tr("Tiles per batch (0 = automatic: 1 on the CPU, 4 on the GPU)"),
            QgsProcessingParameterNumber.Integer,
            defaultValue=0,
            minValue=0,
            maxValue=256,
        )
        self.add_advanced(mapping, tile, margin, batch)
        self.addParameter(
            QgsProcessingParameterEnum(
                self.DEVICE,
                self.tr("Device"),
                options=["Auto (GPU when available)", "CPU", "CUDA GPU"],
                defaultValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.FULL,
                self.tr("Full reconstruction (replace every pixel, not only gaps)"),
                defaultValue=False,
            )
        )
        fill_outputs(self)

    def processAlgorithm(  # noqa: N802 - QGIS API
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        roles = {}
        for key, role, _ in ROLE_PARAMETERS:
            if path := self.raster_path(parameters, key, context):
                roles[role] = path
        target = self.raster_path(parameters, self.INPUT, context)
        model = self.parameterAsFile(parameters, self.MODEL, context)
        if not model:
            model = self.bundled_model(target, roles, feedback)
        self.report_verdict(model, roles, feedback)
        margin = self.parameterAsInt(parameters, self.MARGIN, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        with domain_errors():
            band_mapping = parse_band_mapping(
                self.parameterAsString(parameters, self.BAND_MAPPING, context)
            )
        report = run_core(
            fill_raster_with_model,
            feedback,
            model,
            target,
            output,
            roles,
            gap_mask_path=self.raster_path(parameters, self.GAP_MASK, context),
            band_mapping=band_mapping,
            tile_size=self.parameterAsInt(parameters, self.TILE_SIZE, context) or None,
            margin=None if margin < 0 else margin,
            batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            device=DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
            full_reconstruction=self.parameterAsBoolean(parameters, self.FULL, context),
            log=feedback.pushInfo,
        )
        return fill_results(report, output, feedback)

    def bundled_model(
        self, target: str, roles: dict[str, str], feedback: QgsProcessingFeedback
    ) -> str:
        from osgeo import gdal

        bands = gdal.OpenEx(target, gdal.OF_RASTER).RasterCount
        label = parameter_label(self.parameterDefinition(self.MODEL))
        with domain_errors(lambda _option: label):
            chosen = choose_bundled_model(set(roles), bands)
        feedback.pushInfo(chosen.choice_message())
        return str(chosen.path)

    @staticmethod
    def report_verdict(model: str, roles: dict[str, str], feedback: QgsProcessingFeedback) -> None:
        """Log the card's baseline verdict, with its warnings."""
        with domain_errors():
            card = read_card(model)
        described, warnings = baselines.fill_messages(card.validation_metrics, roles)
        if described:
            feedback.pushInfo(described)
        for warning in warnings:
            feedback.pushWarning(warning)
