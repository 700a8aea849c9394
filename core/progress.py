"""Progress and cancellation callbacks passed into the engine (never globals)."""

from __future__ import annotations

from collections.abc import Callable

from .errors import Cancelled

ProgressFn = Callable[[float], None]
CancelledFn = Callable[[], bool]


def no_progress(_fraction: float) -> None:
    """Default progress callback: ignore."""


def never_cancelled() -> bool:
    """Default cancel callback: never."""
    return False


def check_cancelled(cancelled: CancelledFn) -> None:
    """Raise `Cancelled` when the user asked to stop; called inside every loop."""
    if cancelled():
        raise Cancelled("the run was cancelled")
