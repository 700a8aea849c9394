"""Put any source on the target's pixel grid on the fly (GDAL warped VRT), never by hand."""

from __future__ import annotations

from typing import Literal

from osgeo import gdal, osr

from ..errors import GapfillError, NoOverlapError
from .access import Grid, open_raster, quiet_gdal

Resampling = Literal["nearest", "bilinear", "cubic", "average"]


def align_to_grid(
    path: str, target: Grid, resampling: Resampling = "bilinear", role: str = "source"
) -> gdal.Dataset:
    """The source as a dataset on `target`'s grid: itself when already there, else a warped VRT.

    A warped VRT carries an alpha band, so pixels outside the source read as no-data through
    GDAL's mask bands (see `raster.read_valid`).
    """
    source = open_raster(path, role)
    grid = Grid.of(source)
    if grid.same_as(target):
        return source
    if not grid.georeferenced or not target.georeferenced:
        if (grid.width, grid.height) == (target.width, target.height):
            return source  # pixel grids only (e.g. SEN12MS-CR samples): same size means same grid
        raise GapfillError(
            f"The {role} '{path}' ({grid.width}×{grid.height} px) and the target "
            f"({target.width}×{target.height} px) are not both georeferenced, so they cannot be "
            "aligned. Give rasters with a CRS, or rasters of exactly the same size."
        )
    check_overlap(grid, target, path, role)
    nodata = source.GetRasterBand(1).GetNoDataValue()
    options = gdal.WarpOptions(
        format="VRT",
        outputBounds=target.bounds,
        width=target.width,
        height=target.height,
        dstSRS=target.projection,
        resampleAlg=resampling,
        srcNodata=nodata,
        dstAlpha=True,
        multithread=False,
    )
    with quiet_gdal():
        warped = gdal.Warp("", source, options=options)
    if warped is None:
        raise GapfillError(
            f"The {role} '{path}' could not be aligned to the target grid: {gdal.GetLastErrorMsg()}"
        )
    return warped


def check_overlap(grid: Grid, target: Grid, path: str, role: str) -> None:
    """Raise `NoOverlapError` when the source's footprint misses the target's extent."""
    xmin, ymin, xmax, ymax = transformed_bounds(grid, target.projection)
    txmin, tymin, txmax, tymax = target.bounds
    if xmin >= txmax or xmax <= txmin or ymin >= tymax or ymax <= tymin:
        raise NoOverlapError(
            f"The {role} '{path}' does not overlap the target image (source extent "
            f"{xmin:.1f}, {ymin:.1f} – {xmax:.1f}, {ymax:.1f}; target extent {txmin:.1f}, "
            f"{tymin:.1f} – {txmax:.1f}, {tymax:.1f} in the target CRS). Give a file for the "
            f"{role} that covers the same place."
        )


def covered_fraction(source: Grid, target: Grid) -> float:
    """The share of the target's extent inside the source's (bounding boxes in the target CRS):
    below 1 when, e.g., a gap mask was cut from part of the image."""
    if not source.georeferenced or not target.georeferenced:
        return 1.0  # pixel grids of the same size (checked when aligned)
    xmin, ymin, xmax, ymax = transformed_bounds(source, target.projection)
    txmin, tymin, txmax, tymax = target.bounds
    width = max(0.0, min(xmax, txmax) - max(xmin, txmin))
    height = max(0.0, min(ymax, tymax) - max(ymin, tymin))
    return min(1.0, width * height / ((txmax - txmin) * (tymax - tymin)))


def transformed_bounds(grid: Grid, wkt: str) -> tuple[float, float, float, float]:
    """The grid's bounds in another CRS, from a densified outline."""
    source_srs, target_srs = osr.SpatialReference(), osr.SpatialReference()
    source_srs.ImportFromWkt(grid.projection)
    target_srs.ImportFromWkt(wkt)
    for srs in (source_srs, target_srs):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    transform = osr.CoordinateTransformation(source_srs, target_srs)
    xmin, ymin, xmax, ymax = grid.bounds
    steps = 20
    points = []
    for i in range(steps + 1):
        t = i / steps
        points += [
            (xmin + t * (xmax - xmin), ymin),
            (xmin + t * (xmax - xmin), ymax),
            (xmin, ymin + t * (ymax - ymin)),
            (xmax, ymin + t * (ymax - ymin)),
        ]
    moved = transform.TransformPoints(points)
    xs = [p[0] for p in moved]
    ys = [p[1] for p in moved]
    return min(xs), min(ys), max(xs), max(ys)
