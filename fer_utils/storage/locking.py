"""One writer per output folder: an exclusive lock file that names its holder (pid and host).

The lock is an `fcntl.flock`, so the kernel releases it however the holder dies (SIGKILL included) and a
dead process's lock file is simply taken over; the file is removed when the holder finishes.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fer_utils.errors import OutputError


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine: one we may not signal counts as alive, a zombie
    (killed, not yet reaped) as dead, since it answers signal 0 but can write nothing."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether `pid` is a zombie, from its state in /proc (False where there is no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].startswith("Z")  # the state follows the parenthesised name


def lock_holder(path: Path) -> str:
    """The holder a lock file names (`pid <pid> host <host>`), or a note that it names none."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        text = ""
    return text or "holder not recorded yet"


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open descriptor still is the file at `path` (it may have been removed and recreated)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _acquire(path: Path) -> int:
    """An open descriptor holding the exclusive lock on `path`, or OutputError naming the holder."""
    import fcntl

    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(
                f"{path.parent} is being written by another run ({lock_holder(path)}, lock file {path}); "
                "wait for it to finish or use another output folder"
            ) from None
        if _same_file(fd, path):
            return fd
        os.close(fd)  # the previous holder removed the file after we opened it: lock the new one


@contextmanager
def wait_lock(path: Path) -> Iterator[Path]:
    """Hold the exclusive lock on the file `path`, waiting while another process holds it (for work two
    processes may ask for at once). The file stays: removing it could let a third process lock another file.
    """
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        os.close(fd)


@contextmanager
def folder_lock(folder: Path, name: str) -> Iterator[Path]:
    """Hold the exclusive lock `<folder>/<name>` for the duration of the block; yields the lock file."""
    path = Path(folder) / name
    fd = _acquire(path)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} host {socket.gethostname()}\n".encode())
        yield path
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)
