"""QGIS-free engine of Gapfill, in rooms by role (docs/architecture.md); `errors`, `progress`
and `dependencies` are the ground every room stands on."""
