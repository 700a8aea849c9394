"""Checkpoints: versioned dicts of tensors and plain values, written atomically (temporary file,
then `os.replace`) and read with `torch.load(weights_only=True)`, so loading a checkpoint never
runs code from the file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..core.errors import GapfillError

CHECKPOINT_FORMAT = "gapfill-checkpoint"
CHECKPOINT_VERSION = 1
LAST, BEST = "last.pt", "best.pt"


class CheckpointError(GapfillError):
    """A file that is not a readable Gapfill checkpoint of a version this package reads."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write `state` with the format and version keys, atomically."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.partial")
    try:
        torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint on the CPU (weights only), checking its format and version."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"The checkpoint '{path}' does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle, runtime and zip errors alike
        raise CheckpointError(
            f"The checkpoint '{path}' cannot be read ({error}); it may be incomplete or not a "
            "Gapfill checkpoint."
        ) from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"'{path}' is not a Gapfill training checkpoint.")
    version = state.get("version")
    if not isinstance(version, int) or not 1 <= version <= CHECKPOINT_VERSION:
        raise CheckpointError(
            f"The checkpoint '{path}' has version {version}; this package reads versions 1 to "
            f"{CHECKPOINT_VERSION}. Update the plugin."
        )
    return state
