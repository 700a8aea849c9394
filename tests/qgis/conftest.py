"""Fixtures that need real QGIS: the provider registered in the Processing registry."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def provider(qgis_processing):
    from qgis.core import QgsApplication

    from gapfill.provider import GapfillProvider

    registry = QgsApplication.processingRegistry()
    instance = GapfillProvider()
    assert registry.addProvider(instance)
    yield instance
    registry.removeProvider(instance)
