"""Locks and process liveness: what decides whose temporary files a resumed run may delete."""

from __future__ import annotations

import time


def test_a_killed_but_unreaped_process_is_not_alive() -> None:
    """The workers of a run killed with SIGKILL can linger as zombies until reaped: their temporary files
    must count as a dead process's (regression: a resumed run kept one, seen in CI with 2 test workers)."""
    import os
    import signal

    from fer_utils.storage.locking import process_alive

    child = os.fork()
    if child == 0:  # the child waits to be killed
        time.sleep(60)
        os._exit(0)
    try:
        assert process_alive(child)
        os.kill(child, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while process_alive(child) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not process_alive(child), "a zombie counts as alive"
        assert os.waitpid(child, os.WNOHANG)[0] == child, "it was a zombie: killed, not yet reaped"
    finally:
        try:
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    assert not process_alive(child)
