"""The provider in real QGIS: registration, the algorithm list, help, groups, unload."""

from qgis.core import QgsApplication

EXPECTED = {
    "gapfill:buildgapmask",
    "gapfill:filltemporal",
    "gapfill:fillspatial",
    "gapfill:fillgaps",
    "gapfill:filltimeseries",
    "gapfill:filldip",
    "gapfill:fillscene",
    "gapfill:rasterstatistics",
    "gapfill:scaleraster",
    "gapfill:unscaleraster",
    "gapfill:samplepatches",
    "gapfill:extractpatches",
    "gapfill:describemodel",
    "gapfill:simulategaps",
    "gapfill:evaluatefill",
    "gapfill:trainmodel",
    "gapfill:checkenvironment",
    "gapfill:installdependencies",
    "gapfill:removedependencies",
}


def test_provider_lists_exactly_the_working_algorithms(provider):
    ids = {algorithm.id() for algorithm in provider.algorithms()}
    assert ids == EXPECTED
    for algorithm in provider.algorithms():
        assert algorithm.shortHelpString().strip()
        assert algorithm.groupId() in {"prepare", "fill", "train", "evaluate", "environment"}
        assert algorithm.icon() is not None
        assert algorithm.createInstance().name() == algorithm.name()
        for parameter in algorithm.parameterDefinitions():
            assert parameter.description()


def test_plugin_unloads_and_loads_again(plugin):
    registry = QgsApplication.processingRegistry()
    assert registry.algorithmById("gapfill:filltemporal") is not None
    plugin.unload()
    assert registry.providerById("gapfill") is None
    plugin.initProcessing()
    assert registry.providerById("gapfill") is plugin.provider
