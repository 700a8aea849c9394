"""Learned fills: the model card, ONNX Runtime sessions, tiling and blending, band scaling,
the tiled ONNX fill (in memory and on rasters) and the choice of a bundled model."""
