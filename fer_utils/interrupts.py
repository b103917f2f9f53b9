"""Ctrl-C and SIGTERM recorded instead of raised, for the loops that wait on a pool of workers.

A KeyboardInterrupt landing inside `concurrent.futures` while a future's lock is held hangs the run at exit
(tests/test_preprocess.py); `stop_on_signals` only sets an event the caller checks between waits. `raise_on_signals`
raises `Stopped` (exit 128 + the signal), also winning SIGTERM back from TensorFlow's preemption notifier."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C and a polite kill: the run stops, its work is kept


class Stopped(KeyboardInterrupt):
    """The command was stopped by `signum` (Ctrl-C or SIGTERM); it exits `exit_code`, 128 + the signal's number."""

    def __init__(self, signum: int, message: str = "") -> None:
        super().__init__(message or f"stopped by {signal.Signals(signum).name}")
        self.signum = int(signum)
        self.exit_code = 128 + self.signum  # the shell's code: 130 for Ctrl-C, 143 for SIGTERM


def signal_of(stop: threading.Event) -> int:
    """The signal that set `stop` (`stop_on_signals`); SIGINT when it was set otherwise."""
    return int(getattr(stop, "signum", signal.SIGINT))


@contextmanager
def raise_on_signals() -> Iterator[None]:
    """While the block runs, Ctrl-C and SIGTERM raise `Stopped` in the main thread (in place of any handler a
    library installed behind Python's back); the previous handlers come back after."""

    def stop(signum: int, frame: object) -> None:
        raise Stopped(signum)

    with _handling(stop):
        yield


@contextmanager
def stop_on_signals(stop: threading.Event | None = None) -> Iterator[threading.Event]:
    """While the block runs, Ctrl-C and SIGTERM set the yielded `stop` (new when None; `signal_of` says which)
    instead of raising; the previous handlers come back after. Outside the main thread signals are left alone."""
    stop = threading.Event() if stop is None else stop

    def record(signum: int, frame: object) -> None:
        stop.signum = signum  # which one (`signal_of`)
        stop.set()

    with _handling(record):
        yield stop


@contextmanager
def _handling(handler: Callable[[int, object], None]) -> Iterator[None]:
    """`handler` for STOP_SIGNALS while the block runs, then the previous ones; none set outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
