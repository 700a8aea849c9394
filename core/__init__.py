"""QGIS-free engine of Gapfill: raster windows, alignment, masks, fills, model cards, metrics."""
