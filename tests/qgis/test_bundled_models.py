"""The bundled models of models/ (scripts/train_bundled_models.py): a valid card whose recorded
held-out metrics are those of the model note, and a fill of a held-out SEN12MS-CR sample (real
data) through processing.run that keeps every clear pixel bit-identical."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import processing
import pytest

from rasters import read

MODELS = Path(__file__).resolve().parents[2] / "models"
NAMES = ("s1s2_unet_small",)  # the models of scripts/train_bundled_models.py
BUNDLED = [MODELS / f"{name}.onnx" for name in NAMES]
SAR_ONLY_ROLES = {"target", "gap_mask", "sar"}


def note_rows(note: Path, method: str) -> dict[str, list[float]]:
    """Case → [MAE, RMSE, PSNR, SSIM, SAM, NDVI MAE] of `method` in the note's metric table."""
    rows = {}
    for line in note.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 8 and cells[1] == method:
            rows[cells[0]] = [float(cell) for cell in cells[2:]]
    return rows


def test_the_models_are_bundled():
    assert all(path.is_file() for path in BUNDLED), f"missing in {MODELS}: {NAMES}"


@pytest.mark.parametrize("model", BUNDLED, ids=lambda path: path.stem)
def test_card_is_valid_and_matches_the_note(model):
    from gapfill.core.model_card import read_card

    card = read_card(model)
    assert card.name == model.stem
    assert model.stat().st_size < 5e6
    assert card.description and card.licence and card.training_data
    metrics = card.validation_metrics
    note = model.with_suffix(".md")
    assert note.is_file(), f"{model.name} has no model note {note.name}"
    rows = note_rows(note, model.stem)
    per_sample = metrics["per_sample"]
    assert per_sample and len(rows) == len(per_sample) + 1  # and the mean row
    keys = ("mae", "rmse", "psnr", "ssim", "sam", "ndvi_mae")
    for item, values in per_sample.items():
        assert rows[f"sen12mscr {item}"] == pytest.approx([values[key] for key in keys])
    mean = next(values for case, values in rows.items() if case.startswith("mean"))
    assert mean == pytest.approx([metrics[key] for key in keys])


@pytest.mark.parametrize("model", BUNDLED, ids=lambda path: path.stem)
def test_fills_a_held_out_sample(provider, model, data_dir, tmp_path):
    from gapfill.core.model_card import read_card

    card = read_card(model)
    if {item.role for item in card.inputs} != SAR_ONLY_ROLES:
        pytest.skip("a multi-date model: no single-date SEN12MS-CR sample for it")
    item = next(iter(card.validation_metrics["per_sample"]))
    folder = data_dir / "sen12mscr"
    cloudy, mask = folder / f"{item}_s2_cloudy.tif", folder / f"{item}_cloudmask.tif"
    result = processing.run(
        "gapfill:fillgaps",
        {
            "MODEL": str(model),
            "INPUT": str(cloudy),
            "GAP_MASK": str(mask),
            "SAR": str(folder / f"{item}_s1.tif"),
            "DEVICE": 1,
            "OUTPUT": str(tmp_path / "filled.tif"),
        },
    )
    gap = read(mask)[0] == 1
    before, filled = read(cloudy), read(result["OUTPUT"])
    assert filled.dtype == before.dtype and filled.shape == before.shape
    np.testing.assert_array_equal(filled[:, ~gap], before[:, ~gap])
    assert result["FILLED_PIXELS"] == gap.sum() > 0
    assert not np.array_equal(filled[:, gap], before[:, gap])
