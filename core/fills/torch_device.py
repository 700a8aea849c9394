"""Where and how reproducibly a fill runs PyTorch: the device, and seeded deterministic runs.

No GDAL here: the networks of the fills train where only numpy and torch exist (a GPU server).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from ..dependencies import require
from ..errors import GapfillError

Device = Literal["auto", "cpu", "cuda"]


def resolve_device(device: Device, purpose: str) -> str:
    """'cuda' or 'cpu' for `device`; refuses 'cuda' when PyTorch sees no GPU."""
    torch = require("torch", purpose)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise GapfillError(
            "The device 'cuda' was asked for but PyTorch sees no CUDA GPU. Choose 'auto' or 'cpu'."
        )
    return device


@contextmanager
def deterministic(seed: int, threads: int, purpose: str) -> Iterator[None]:
    """Seed torch and ask for deterministic kernels on `threads` CPU threads (a fixed count:
    the same reductions every run), restoring the caller's settings after."""
    torch = require("torch", purpose)
    previous = torch.are_deterministic_algorithms_enabled()
    caller_threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(caller_threads)
            torch.use_deterministic_algorithms(previous)
