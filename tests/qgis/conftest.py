"""Fixtures that need real QGIS: the plugin loaded as QGIS loads it, its provider registered."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def plugin(qgis_processing):
    import gapfill

    instance = gapfill.classFactory(None)
    instance.initProcessing()
    yield instance
    instance.unload()


@pytest.fixture(scope="session")
def provider(plugin):
    return plugin.provider
