"""Locks and process liveness: what decides whose temporary files a resumed run may delete."""

from __future__ import annotations

import time
from pathlib import Path


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


def test_a_script_without_a_main_guard_that_makes_crops_in_workers_says_so_and_never_hangs(tmp_path: Path) -> None:
    """Regression: workers are spawned, and each re-runs the script's top level; one without `if __name__ ==
    "__main__":` reached `Dataset.crops` again and waited forever on the lock its parent held (both processes
    asleep, no output). The worker now fails at once saying what to do; the guarded script makes the crops."""
    import subprocess
    import sys

    from layouts import make_fer2013_folder

    from fer_utils.data.manifest import MANIFEST_NAME

    data = make_fer2013_folder(tmp_path / "fer2013", per_class=2)
    call = (
        f"Dataset('folder', {str(data)!r}).crops(detector='none', cache=Path({str(tmp_path / 'cache')!r}), workers=2)"
    )
    head = "from pathlib import Path\nfrom fer_utils.book.artifacts import Dataset\n"
    scripts = {"bare": f"{head}{call}\n", "guarded": f"{head}if __name__ == '__main__':\n    print({call})\n"}
    for name, text in scripts.items():
        (tmp_path / f"{name}.py").write_text(text, encoding="utf-8")
    bare = subprocess.run([sys.executable, "bare.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert bare.returncode != 0
    assert 'if __name__ == "__main__":' in bare.stderr and "re-runs this script" in bare.stderr, bare.stderr[-2000:]
    guarded = subprocess.run([sys.executable, "guarded.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert guarded.returncode == 0, guarded.stderr[-2000:]
    assert (Path(guarded.stdout.strip()) / MANIFEST_NAME).is_file()
