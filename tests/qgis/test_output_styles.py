"""Outputs that QGIS loads get their style: the gap mask shows gap, clear and no data."""

import gc

import processing
from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProject


def test_loaded_gap_mask_is_styled_and_the_input_untouched(provider, data_dir, tmp_path):
    target = data_dir / "sen12mscr_ts" / "s2_2018-03-07.tif"
    before = sorted(target.parent.iterdir())
    project = QgsProject.instance()
    context = QgsProcessingContext()
    context.setProject(project)
    output = tmp_path / "mask.tif"
    result = processing.runAndLoadResults(
        "gapfill:buildgapmask",
        {"INPUT": str(target), "DILATION": 1, "OUTPUT": str(output)},
        context=context,
        feedback=QgsProcessingFeedback(),
    )
    gc.collect()
    layer = project.mapLayer(result["OUTPUT"]) or next(
        layer for layer in project.mapLayers().values() if layer.source() == str(output)
    )
    renderer = layer.renderer()
    assert renderer.type() == "paletted"
    classes = {item.value: item.label for item in renderer.classes()}
    assert set(classes) == {0, 1, 255} and "gap" in classes[1] and "no data" in classes[255]
    assert renderer.nodataColor().isValid()  # no-data pixels are drawn, not left blank
    assert sorted(target.parent.iterdir()) == before  # no style file beside the input
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mask.tif"]
    project.removeAllMapLayers()
