"""One writer per output folder: an exclusive lock file that names its holder (pid and host).

An `fcntl.flock`, released by the kernel however the holder dies, so a dead process's lock file is taken over."""

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
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return True  # no /proc to tell a zombie by
    return not stat[stat.rindex(")") + 2 :].startswith("Z")  # the state follows the parenthesised name


def lock_holder(path: Path) -> str:
    """The holder a lock file names (`pid <pid> host <host>`), or a note that it names none."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        text = ""
    return text or "holder not recorded yet"


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
        try:  # still the file at `path`? The previous holder may have removed it after we opened it
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # then lock the new one


@contextmanager
def wait_lock(path: Path) -> Iterator[Path]:
    """Hold the exclusive lock on the file `path`, waiting while another process holds it. The file stays:
    removing it could let a third process lock another file."""
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
