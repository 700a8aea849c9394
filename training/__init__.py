"""Headless PyTorch training package (datasets, networks, losses, export); never imports qgis."""
