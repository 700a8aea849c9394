"""Raster access through GDAL: opening, grids and windows, validity, alignment (warped VRTs),
GeoTIFF outputs written atomically, the block pipeline and the fill engine every fill shares,
dates, Sentinel-2 band names, morphology and quick-looks."""
