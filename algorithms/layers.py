"""Vector inputs of the patch algorithms, brought to the target raster's CRS.

Locations come as points (each point is a patch centre) or polygons (their centroids); areas of
interest as polygons. A layer in another CRS is reprojected, and the log says so.
"""

from __future__ import annotations

from collections.abc import Iterator

from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsFeatureRequest,
    QgsField,
    QgsProcessingContext,
    QgsProcessingFeatureSource,
    QgsProcessingFeedback,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant


def features_in(
    source: QgsProcessingFeatureSource,
    crs: QgsCoordinateReferenceSystem,
    context: QgsProcessingContext,
    feedback: QgsProcessingFeedback,
    what: str,
) -> Iterator[QgsFeature]:
    """The source's features with geometries in `crs` (as they are when `crs` is not valid)."""
    request = QgsFeatureRequest()
    if crs.isValid() and source.sourceCrs().isValid() and source.sourceCrs() != crs:
        feedback.pushInfo(
            f"The {what} ({source.sourceCrs().authid()}) are reprojected to the target's CRS "
            f"({crs.authid()})."
        )
        request.setDestinationCrs(crs, context.transformContext())
    for feature in source.getFeatures(request):
        if feedback.isCanceled():
            break
        yield feature


def centres(feature: QgsFeature) -> list[tuple[float, float]]:
    """Patch centres of a feature: its points, or a polygon's or line's centroid."""
    geometry = feature.geometry()
    if geometry.isNull() or geometry.isEmpty():
        return []
    if geometry.type() == QgsWkbTypes.PointGeometry:
        return [(vertex.x(), vertex.y()) for vertex in geometry.vertices()]
    centroid = geometry.centroid().asPoint()
    return [(centroid.x(), centroid.y())]


def polygons_wkt(
    source: QgsProcessingFeatureSource,
    crs: QgsCoordinateReferenceSystem,
    context: QgsProcessingContext,
    feedback: QgsProcessingFeedback,
) -> list[str]:
    """The polygons of an area-of-interest layer as WKT in `crs`."""
    return [
        feature.geometry().asWkt()
        for feature in features_in(source, crs, context, feedback, "area of interest polygons")
        if not feature.geometry().isNull()
    ]


def new_field(name: str, kind: QVariant.Type) -> QgsField:
    """A field of `kind` (QVariant.Int, .LongLong, .Double, .String): QGIS 3.38 and newer take
    the type as the QMetaType of the same number (their QVariant form warns, deprecated)."""
    if Qgis.QGIS_VERSION_INT >= 33800:
        from qgis.PyQt.QtCore import QMetaType

        return QgsField(name, QMetaType.Type(int(kind)))
    return QgsField(name, kind)
