"""One run of the command line: progress bars, Ctrl-C as cancel, messages and the result.

Output discipline: the result goes to stdout (a short summary, or one JSON document with
`--json`); progress bars, information and warnings go to stderr, so that
`gapfill … --json | jq` always reads clean JSON.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..core.progress import CancelledFn, ProgressFn


@dataclass
class Session:
    """What a command needs from the terminal; made once per `gapfill` call."""

    json: bool = False
    quiet: bool = False
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    messages: list[str] = field(default_factory=list)

    def info(self, message: str) -> None:
        if not self.quiet:
            print(message, file=self.stderr, flush=True)

    def warn(self, message: str) -> None:
        """A warning on stderr; it is also listed in the JSON result."""
        self.messages.append(message)
        print(f"warning: {message}", file=self.stderr, flush=True)

    @contextmanager
    def progress(self, description: str) -> Iterator[tuple[ProgressFn, CancelledFn]]:
        """A tqdm bar for a core call's `progress` callback, and its `cancelled` callback:
        the first Ctrl-C asks the engine to stop after the block it is on (the output is then
        removed), a second one interrupts at once."""
        from tqdm import tqdm

        state = {"asked": False, "told": False}

        def on_interrupt(_signal: int, _frame: object) -> None:
            # no printing here: the handler may run inside a print of the main thread
            if state["asked"]:
                raise KeyboardInterrupt
            state["asked"] = True

        def cancelled() -> bool:
            if state["asked"] and not state["told"]:
                state["told"] = True
                self.info("\nStopping after the current block (Ctrl-C again to stop now)…")
            return state["asked"]

        bar = tqdm(
            total=100.0,
            desc=description,
            unit="%",
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}",
            file=self.stderr,
            disable=self.quiet or None,  # None: no bar when stderr is not a terminal
            dynamic_ncols=True,
        )

        def progress(fraction: float) -> None:
            bar.update(max(0.0, min(100.0, 100.0 * fraction)) - bar.n)

        previous = signal.getsignal(signal.SIGINT)
        in_main_thread = threading.current_thread() is threading.main_thread()  # signals only there
        if in_main_thread:
            signal.signal(signal.SIGINT, on_interrupt)
        try:
            yield progress, cancelled
            progress(1.0)
        finally:
            bar.close()
            if in_main_thread:
                signal.signal(signal.SIGINT, previous)

    def emit(self, result: dict[str, Any], summary: list[str]) -> None:
        """The command's result: `summary` lines, or `result` as JSON with the warnings."""
        if self.json:
            document = {"ok": True, **result, "warnings": self.messages}
            print(json.dumps(document, indent=2, default=str), file=self.stdout)
        else:
            for line in summary:
                print(line, file=self.stdout)

    def fail(self, message: str, code: int) -> int:
        """A one-paragraph error on stderr (and as JSON on stdout with `--json`)."""
        print(f"error: {message}", file=self.stderr, flush=True)
        if self.json:
            document = {"ok": False, "error": message, "exit_code": code}
            print(json.dumps(document, indent=2), file=self.stdout)
        return code

