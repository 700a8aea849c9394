"""Training data: raster statistics and scaling, patch sampling, extraction, the patch dataset."""
