"""Ctrl-C and SIGTERM as a flag that a training loop checks between compiled chunks."""

from __future__ import annotations

import contextlib
import signal
import threading


class Signals:
    """Turns SIGINT/SIGTERM into a flag (``caught``) checked between chunks; a second signal
    stops at once with `KeyboardInterrupt`. Installed in the main thread only (elsewhere
    `installed` is a no-op)."""

    def __init__(self):
        self.caught: int | None = None

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum, frame):
            if self.caught is not None:  # a second Ctrl-C stops at once
                raise KeyboardInterrupt
            self.caught = signum

        for s in old:
            signal.signal(s, handler)
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)
