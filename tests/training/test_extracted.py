"""Training on a dataset written by the extraction engine (core.prepare.patch_extraction) from
the real time series: clear targets, gaps simulated from real cloud masks."""

from __future__ import annotations

from osgeo import gdal
from patch_inputs import CLEAR, EARLIER, date

from gapfill.core.learned.model_card import read_card
from gapfill.core.prepare.patch_extraction import extract_patches
from gapfill.core.prepare.patch_sampling import PatchPoint, centre_of
from gapfill.core.raster.access import Grid
from gapfill.training.config import TrainConfig
from gapfill.training.loop import train

SIZE = 32


def test_train_on_extracted_patches_with_simulated_gaps(data_dir, tmp_path):
    target = str(date(data_dir, CLEAR))
    grid = Grid.of(gdal.Open(target))
    corners = [(col, row) for row in range(0, 224, 48) for col in range(0, 224, 48)]
    points = [
        PatchPoint(k, *centre_of(grid, col, row, SIZE), "validation" if k % 5 == 0 else "train")
        for k, (col, row) in enumerate(corners)
    ]
    dataset = tmp_path / "dataset"
    extract_patches(
        {"target": target, "optical_before": str(date(data_dir, EARLIER))},
        points,
        dataset,
        patch_size=SIZE,
    )
    lines: list[str] = []
    result = train(
        TrainConfig(
            dataset=str(dataset),
            output=str(tmp_path / "run"),
            width=4,
            depth=2,
            epochs=1,
            batch_size=8,
            epoch_samples=0,
            force_export=True,
            cloud_masks=[str(data_dir / "eolearn_slovenia" / "cloud_mask.tif")],
        ),
        log=lines.append,
    )
    assert any("Simulated gaps from" in line for line in lines)
    assert result.history[0]["evaluated"] > 0
    card = read_card(result.onnx)
    assert [item.role for item in card.inputs] == ["target", "gap_mask", "optical_before"]
    assert "simulated from real cloud masks" in card.training_data
