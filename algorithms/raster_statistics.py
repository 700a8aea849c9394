"""Processing algorithm: per-band statistics of a raster (JSON file and table), streamed."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsFeatureSink,
    QgsFields,
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from ..core.prepare.raster_statistics import (
    DEFAULT_PERCENTILES,
    RasterStatistics,
    describe_statistics,
    parse_percentiles,
    percent_key,
    raster_statistics,
)
from .base import GapfillAlgorithm, domain_errors, run_core
from .layers import new_field

MOMENTS = ("min", "max", "mean", "std")


def percentile_field(percent: float) -> str:
    """Table column of a percentile: 2 → p2, 2.5 → p2_5."""
    return "p" + percent_key(percent).replace(".", "_")


def table_fields(percentiles: tuple[float, ...]) -> QgsFields:
    fields = QgsFields()
    fields.append(new_field("band", QVariant.Int))
    fields.append(new_field("name", QVariant.String))
    fields.append(new_field("count", QVariant.LongLong))
    for name in (*MOMENTS, *map(percentile_field, percentiles), "percentile_error"):
        fields.append(new_field(name, QVariant.Double))
    return fields


class ComputeStatistics(GapfillAlgorithm):
    INPUT = "INPUT"
    GAP_MASK = "GAP_MASK"
    PERCENTILES = "PERCENTILES"
    OUTPUT = "OUTPUT"
    OUTPUT_TABLE = "OUTPUT_TABLE"

    GROUP = "prepare"

    def name(self) -> str:
        return "rasterstatistics"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return self.tr("Raster statistics")

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        return self.tr(
            "Per band: minimum, maximum, mean, standard deviation, percentiles and the count of "
            "valid pixels, leaving out no-data and, optionally, the gaps of a gap mask (so that "
            "clouds do not stretch the statistics).\n\n"
            "The image is read block by block, never whole. Mean and standard deviation "
            "(population) are exact. Percentiles come from a histogram of each band: exact for "
            "integer bands such as Sentinel-2 DN, otherwise within one bin width, (max − min) / "
            "65536, given per band as percentile_error.\n\n"
            "Outputs: a JSON file for 'Scale raster', and the same figures as a table."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Raster")))
        mask = QgsProcessingParameterRasterLayer(
            self.GAP_MASK, self.tr("Gap mask (gap pixels are left out)"), optional=True
        )
        mask.setHelp(self.tr("1 = gap, 0 = clear, 255 = no data; see 'Build gap mask'."))
        self.addParameter(mask)
        self.addParameter(
            QgsProcessingParameterString(
                self.PERCENTILES, self.tr("Percentiles"),
                defaultValue=", ".join(percent_key(p) for p in DEFAULT_PERCENTILES),
            )
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.OUTPUT, self.tr("Statistics (JSON)"), fileFilter="JSON files (*.json)"
            )
        )
        self.addParameter(
            QgsProcessingParameterFeatureSink(
                self.OUTPUT_TABLE, self.tr("Statistics table"), QgsProcessing.TypeVector,
                optional=True, createByDefault=True,
            )
        )

    def processAlgorithm(  # noqa: N802 - QGIS API
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        source = self.raster_path(parameters, self.INPUT, context)
        mask = self.raster_path(parameters, self.GAP_MASK, context)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        with domain_errors():
            percentiles = parse_percentiles(
                self.parameterAsString(parameters, self.PERCENTILES, context)
            )
        statistics = run_core(
            raster_statistics, feedback, source, output, gap_mask=mask, percentiles=percentiles
        )
        for line in describe_statistics(statistics):
            feedback.pushInfo(line)
        results = {self.OUTPUT: output}
        sink, table = self.parameterAsSink(
            parameters, self.OUTPUT_TABLE, context, table_fields(statistics.percentiles),
            QgsWkbTypes.NoGeometry, QgsCoordinateReferenceSystem(),
        )
        if sink is not None:
            self.fill_table(sink, statistics)
            results[self.OUTPUT_TABLE] = table
        return results

    @staticmethod
    def fill_table(sink: QgsFeatureSink, statistics: RasterStatistics) -> None:
        fields = table_fields(statistics.percentiles)
        for band in statistics.bands:
            feature = QgsFeature(fields)
            feature.setAttributes(
                [
                    band.band, band.name, band.count, band.minimum, band.maximum, band.mean,
                    band.std, *(band.percentiles.get(p) for p in statistics.percentiles),
                    band.percentile_error,
                ]
            )
            sink.addFeature(feature, QgsFeatureSink.FastInsert)
