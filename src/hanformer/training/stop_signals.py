"""SIGINT/SIGTERM during training: the first asks the run to stop at the next step (it then
saves a checkpoint); a second one interrupts at once, as without a handler."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any


class StopSignals:
    """Catches SIGINT/SIGTERM between `install()` and `restore()`; `received` names the first."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        # Python delivers signals to the main thread only, and only it may set handlers.
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signal.Signals(signum).name
        # A second Ctrl-C interrupts at once (the checkpoint on disk stays intact).
        signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
