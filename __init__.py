"""Gapfill: fill clouds, shadows and no-data gaps in optical satellite images."""


def classFactory(iface):  # noqa: N802 - name fixed by QGIS
    """QGIS entry point: the plugin class is imported here so that loading stays cheap."""
    from .plugin import GapfillPlugin

    return GapfillPlugin(iface)
