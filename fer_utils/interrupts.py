"""Ctrl-C and SIGTERM recorded instead of raised, for the loops that wait on a pool of workers.

Python's own handler raises KeyboardInterrupt wherever the main thread happens to be; inside
`concurrent.futures` it can land while a future's lock is held, and the pool's manager thread then blocks
on that lock and the run hangs at exit instead of stopping (tests/test_preprocess.py reproduces it).
While `stop_on_signals` runs, the signals only set an event; the caller checks it between waits and stops
its own way: the CREMA-D download ends its transfers and keeps their `.part` files, the preprocessing run
raises KeyboardInterrupt there.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C and a polite kill: the run stops, its work is kept


@contextmanager
def stop_on_signals(stop: threading.Event | None = None) -> Iterator[threading.Event]:
    """While the block runs, Ctrl-C and SIGTERM set `stop` (a new event when None), which this yields, instead
    of raising KeyboardInterrupt; the previous handlers come back after. Outside the main thread, where no
    handler can be set, signals are left alone."""
    stop = threading.Event() if stop is None else stop
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
