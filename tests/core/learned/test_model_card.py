"""Model cards: JSON round trips, ONNX metadata, every refusal message; scaling; dependencies."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from gapfill.core import dependencies
from gapfill.core.errors import MissingDependencyError
from gapfill.core.learned.model_card import (
    CARD_KEY,
    BandScaling,
    ModelCardError,
    card_from_json,
    card_of_session,
    card_to_dict,
    card_to_json,
    describe_card,
    read_card,
    validate_card,
    write_card,
)
from gapfill.core.learned.onnx_session import create_session, provider_used
from gapfill.core.learned.scaling import scale_bands, unscale_bands


def store_metadata(source: Path, destination: Path, text: str | None) -> Path:
    """A copy of an ONNX file with `text` as its raw card (None: no card), bypassing checks."""
    import onnx

    model = onnx.load(str(source))
    kept = [entry for entry in model.metadata_props if entry.key != CARD_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    if text is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = CARD_KEY, text
    onnx.save(model, str(destination))
    return destination


def test_card_round_trips_through_json_and_onnx(models, tmp_path: Path) -> None:
    card = models["plain"].card
    assert card_from_json(card_to_json(card)) == card
    assert read_card(models["plain"].path) == card
    document = json.loads(card_to_json(card))
    assert document["format"] == "gapfill-model-card" and document["version"] == 1
    assert document["inputs"][1] == {
        "role": "sar",
        "name": "radar",
        "bands": ["VV"],
        "scaling": [{"offset": 0.0, "scale": 0.1, "db": True, "clip_min": -30.0, "clip_max": 10.0}],
    }
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(models["plain"].path.read_bytes())
    renamed = dataclasses.replace(card, name="renamed", description="a second card")
    write_card(copy, renamed)  # replaces the card in place
    assert read_card(copy) == renamed
    assert not list(tmp_path.glob(".*partial"))


def test_card_written_into_a_model_proto(models) -> None:
    import onnx

    proto = onnx.load(str(models["pooled"].path))
    returned = write_card(proto, models["pooled"].card)
    assert returned is proto
    assert [entry.key for entry in proto.metadata_props].count(CARD_KEY) == 1
    session = create_session(proto.SerializeToString(), "cpu")
    assert card_of_session(session) == models["pooled"].card
    assert "CPUExecutionProvider" in provider_used(session)


def test_optional_fields_take_their_defaults(models) -> None:
    document = card_to_dict(models["plain"].card)
    for key in ("architecture", "description", "licence", "training_data", "validation_metrics"):
        del document[key]
    del document["size_multiple"], document["recommended_tile_size"]
    document["inputs"][2]["scaling"] = [{}]
    card = card_from_json(json.dumps(document))
    assert card.size_multiple == 1 and card.recommended_tile_size == 256
    assert card.description == "" and card.validation_metrics == {}
    assert card.inputs[2].scaling == (BandScaling(),)


def test_card_is_described_in_words(models) -> None:
    text = describe_card(models["plain"].card)
    assert text.startswith("Model: plain (tiny test network)\nrandom weights")
    assert "  - SAR image (role 'sar', tensor 'radar')\n    bands (1): VV\n" in text
    assert "scaling of every band: 10·log10(x), clipped to [-30, 10], v × 0.1" in text
    assert "scaling of every band: (v − 100) × 0.01" in text
    assert "scaling of every band: as is" in text
    assert "Context margin: 2 px; tile sizes: multiples of 1 px, 32 px recommended" in text
    assert 'Validation metrics: {"mae": 0.5}' in text


def test_model_without_card_is_refused(models) -> None:
    with pytest.raises(ModelCardError, match="no Gapfill model card.*gapfill_model_card"):
        read_card(models["nocard"].path)


def edit(document: dict, path: str, value: object) -> dict:
    """Set (or, with `...`, delete) the item at a dotted path such as `inputs.0.scaling`."""
    *parents, last = path.split(".")
    node = document
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    key = int(last) if isinstance(node, list) else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return document


STRUCTURE_PROBLEMS = [
    ("inputs.0.bands", ..., r"inputs\[0\]\.bands is missing"),
    ("inputs.1.scaling.0.scale", "big", r"inputs\[1\]\.scaling\[0\]\.scale must be a number"),
    ("inputs.1.scaling.0.clip_mn", 1, r"unknown keys clip_mn"),
    ("context_margin", 2.5, r"context_margin must be an integer"),
    ("output", [], r"output must be an object"),
    ("format", "other", r"format is 'other'"),
    ("inputs.0.bands.1", 7, r"inputs\[0\]\.bands\[1\] must be a text"),
]


@pytest.mark.parametrize(("path", "value", "message"), STRUCTURE_PROBLEMS)
def test_malformed_cards_are_refused(models, path: str, value: object, message: str) -> None:
    document = edit(card_to_dict(models["plain"].card), path, value)
    with pytest.raises(ModelCardError, match=f"model card of the model is invalid: .*{message}"):
        card_from_json(json.dumps(document))


def test_newer_card_versions_and_broken_json_are_refused(models) -> None:
    document = card_to_dict(models["plain"].card)
    document["version"] = 2
    with pytest.raises(ModelCardError, match="format version 2.*Update the Gapfill plugin"):
        card_from_json(json.dumps(document))
    with pytest.raises(ModelCardError, match="not valid JSON"):
        card_from_json("{'name': 1")


def scaling(**changes: object) -> dict:
    return {"offset": 0.0, "scale": 1.0, "db": False, "clip_min": None, "clip_max": None, **changes}


SEMANTIC_PROBLEMS = [
    ("inputs.1.role", "radar", r"role 'radar' is not one of target, gap_mask, sar"),
    ("inputs.1.role", "target", r"several inputs have the role target"),
    ("inputs.1.name", "optical", r"several inputs have the name optical"),
    ("inputs.0.scaling", [scaling()], r"has 1 scalings for 3 bands"),
    ("inputs.1.scaling", [scaling(scale=0)], r"band VV: scale must be finite and non-zero"),
    ("inputs.1.scaling", [scaling(clip_min=5, clip_max=1)], r"clip_min 5.0 is above clip_max"),
    ("inputs.2.bands", ["gap", "cloud"], r"gap mask\) must have exactly one band"),
    ("inputs.0.bands", ["red", "nir", "blue"], r"takes bands nir that the output does not have"),
    ("output.bands", ["red", "red", "blue"], r"the output lists bands red more than once"),
    ("context_margin", -1, r"context_margin is -1"),
    ("context_margin", 100000, r"context_margin is 100000 px; more than 1024 px"),
    ("recommended_tile_size", 100000, r"recommended_tile_size is 100000; it must be 1 to 8192"),
    ("recommended_tile_size", 4, r"recommended_tile_size 4 leaves nothing inside"),
    ("size_multiple", 0, r"size_multiple is 0"),
    ("name", " ", r"name is empty"),
]


@pytest.mark.parametrize(("path", "value", "message"), SEMANTIC_PROBLEMS)
def test_invalid_cards_are_refused(models, path: str, value: object, message: str) -> None:
    document = edit(card_to_dict(models["plain"].card), path, value)
    with pytest.raises(ModelCardError, match=f"(?s)model card of the model is invalid:.*{message}"):
        card_from_json(json.dumps(document))


def test_every_problem_is_listed_at_once(models) -> None:
    card = models["plain"].card
    broken = dataclasses.replace(card, context_margin=-3, size_multiple=3, name="")
    with pytest.raises(ModelCardError) as caught:
        validate_card(broken, "'x.onnx'")
    message = str(caught.value)
    assert message.startswith("The model card of 'x.onnx' is invalid:")
    assert "name is empty" in message and "context_margin is -3" in message
    assert "recommended_tile_size 32 is not a multiple of size_multiple 3" in message
    only_mask = dataclasses.replace(card, inputs=card.inputs[2:])
    with pytest.raises(ModelCardError, match="the only input is the gap mask"):
        validate_card(only_mask)
    nan_metrics = dataclasses.replace(card, validation_metrics={"mae": float("nan")})
    with pytest.raises(ModelCardError, match="validation_metrics must hold JSON values"):
        validate_card(nan_metrics)


GRAPH_PROBLEMS = [
    (
        "inputs.1.name",
        "sar",
        r"the card's input 'sar' \(SAR image\) is not an input of the network",
    ),
    ("inputs.1.name", "sar", r"the network's input 'radar' is not described by the card"),
    ("inputs.0.bands", ["red", "green"], r"has 3 channels in the network but the card lists 2"),
    ("output.name", "out", r"the card's output 'out' is not an output of the network"),
]


@pytest.mark.parametrize(("path", "value", "message"), GRAPH_PROBLEMS)
def test_cards_that_do_not_match_the_graph_are_refused(
    models, tmp_path: Path, path: str, value: object, message: str
) -> None:
    document = card_to_dict(models["plain"].card)
    if path == "inputs.0.bands":  # keep the card valid: same scaling count, output bands too
        edit(document, "inputs.0.scaling", document["inputs"][0]["scaling"][:2])
    card = card_from_json(json.dumps(edit(document, path, value)))
    expected = f"(?s)The network of .* does not match its model card:.*{message}"
    with pytest.raises(ModelCardError, match=expected):
        write_card(models["plain"].path, card)
    broken = store_metadata(models["plain"].path, tmp_path / "broken.onnx", card_to_json(card))
    with pytest.raises(ModelCardError, match=expected):
        read_card(broken)
    assert read_card(models["plain"].path) == models["plain"].card  # left untouched


def test_unreadable_card_in_a_file_is_refused(models, tmp_path: Path) -> None:
    broken = store_metadata(models["plain"].path, tmp_path / "broken.onnx", "not json")
    with pytest.raises(ModelCardError, match=r"model card of '.*broken.onnx' is not valid JSON"):
        read_card(broken)


def test_scaling_round_trips_and_keeps_no_data() -> None:
    scalings = [
        BandScaling(offset=1000.0, scale=1e-3),
        BandScaling(db=True, clip_min=-30.0, clip_max=5.0, offset=-30.0, scale=0.05),
    ]
    raw = np.array([[[500.0, np.nan, 3000.0]], [[0.01, 0.2, 0.0]]], dtype=np.float32)
    scaled = scale_bands(raw, scalings)
    assert scaled.dtype == np.float32 and scaled.shape == raw.shape
    np.testing.assert_allclose(scaled[0, 0], [-0.5, np.nan, 2.0])
    np.testing.assert_allclose(scaled[1, 0, :2], [0.5, (10 * np.log10(0.2) + 30) * 0.05], rtol=1e-6)
    assert np.isnan(scaled[1, 0, 2])  # zero linear backscatter: no data
    back = unscale_bands(scaled, scalings)
    expected = raw.copy()
    expected[1, 0, 2] = np.nan
    np.testing.assert_allclose(back, expected, rtol=1e-5)
    clipped = scale_bands(np.array([[[1e-9, 1e9]]], np.float32), scalings[1:])
    np.testing.assert_allclose(clipped[0, 0], [0.0, 1.75], atol=1e-6)
    with pytest.raises(ValueError, match="3 bands given for 2"):
        scale_bands(np.zeros((3, 1, 1)), scalings)


def test_missing_package_names_the_exact_install_command(monkeypatch, tmp_path: Path) -> None:
    with pytest.raises(MissingDependencyError) as caught:
        dependencies.require("gapfill_no_such_package.sub", "Testing", "no-such-package")
    message = str(caught.value)
    numpy_major = int(np.__version__.split(".")[0])
    assert f"-m pip install no-such-package 'numpy<{numpy_major + 1}'" in message
    assert message.startswith("Testing needs the Python package 'no-such-package'")
    assert dependencies.python_executable() in message
    assert dependencies.require("json", "Testing") is json


def test_python_is_found_next_to_the_prefix_inside_qgis(monkeypatch, tmp_path: Path) -> None:
    python = tmp_path / "bin" / "python3"
    python.parent.mkdir()
    python.touch()
    monkeypatch.setattr(sys, "executable", "/usr/bin/qgis")
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    assert dependencies.python_executable() == str(python)
    monkeypatch.setattr(sys, "executable", "/root/.pyenv/shims/python3")  # first on the PATH
    assert dependencies.python_executable() == str(python)
    assert dependencies.pip_command("onnxruntime").startswith(f"{python} -m pip install")
