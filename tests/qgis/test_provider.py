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


def gapfill_algorithms() -> list:
    """The provider's algorithms as registered now (a test below unloads and reloads it)."""
    return QgsApplication.processingRegistry().providerById("gapfill").algorithms()


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


def test_environment_algorithms_have_a_group_of_their_own(plugin):
    environment = {a.id() for a in gapfill_algorithms() if a.groupId() == "environment"}
    assert environment == {
        "gapfill:checkenvironment",
        "gapfill:installdependencies",
        "gapfill:removedependencies",
    }
    assert {a.group() for a in gapfill_algorithms() if a.groupId() == "environment"} == {
        "Environment"
    }


def test_help_texts_read_the_same_in_the_dialogs_html(plugin):
    """The dialog shows help as HTML: text in angle brackets would vanish from it."""
    from qgis.PyQt.QtGui import QTextDocument

    for algorithm in gapfill_algorithms():
        texts = [algorithm.shortHelpString()]
        for parameter in algorithm.parameterDefinitions():
            texts += [parameter.description(), parameter.help()]
        for text in filter(None, texts):
            document = QTextDocument()
            document.setHtml("".join(f"<p>{line}</p>" for line in text.split("\n")))
            shown = " ".join(document.toPlainText().split())
            assert shown == " ".join(text.split()), f"{algorithm.id()}: {text}"


def test_plugin_unloads_and_loads_again(plugin):
    registry = QgsApplication.processingRegistry()
    assert registry.algorithmById("gapfill:filltemporal") is not None
    plugin.unload()
    assert registry.providerById("gapfill") is None
    plugin.initProcessing()
    assert registry.providerById("gapfill") is plugin.provider

