"""One writer per output folder: an exclusive lock file that names its holder (pid and host).

An `fcntl.flock` (Windows: `msvcrt.locking` of one byte past the text), released by the system however the holder
dies, so a dead process's lock file is taken over."""

from __future__ import annotations

import multiprocessing
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from fer_utils.errors import OutputError, SetupError

WINDOWS = os.name == "nt"
LOCKED_BYTE = 1 << 20  # Windows locks bytes, not files: one far past the holder's line, which stays readable
STILL_ACTIVE = 259  # Windows' exit code of a process that has not exited


def windows_process_alive(pid: int) -> bool:
    """Windows: whether `pid` runs (os.kill(pid, 0) would send it Ctrl-C there); one we may not open is alive."""
    import ctypes

    kernel = ctypes.WinDLL("kernel32", use_last_error=True)
    handle = kernel.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ctypes.get_last_error() == 5  # ERROR_ACCESS_DENIED: it exists
    try:
        code = ctypes.c_ulong()
        return bool(kernel.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == STILL_ACTIVE
    finally:
        kernel.CloseHandle(handle)


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine: one we may not signal counts as alive, a zombie
    (killed, not yet reaped) as dead, since it answers signal 0 but can write nothing."""
    if pid <= 0:
        return False
    if WINDOWS:
        return windows_process_alive(pid)
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


def try_lock(fd: int) -> bool:
    """Take the exclusive lock of the open file `fd` if no other process holds it; whether it was taken."""
    if WINDOWS:
        import msvcrt

        os.lseek(fd, LOCKED_BYTE, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _acquire(path: Path) -> int:
    """An open descriptor holding the exclusive lock on `path`, or OutputError naming the holder."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if not try_lock(fd):
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
    removing it could let a third process lock another file. A spawned worker still re-running its parent's
    script, which holds the lock, would wait forever: it raises SetupError saying how to guard the script."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):  # multiprocessing's own bootstrap flag
        raise SetupError(
            "a worker process re-runs this script's top level, which waits for a lock its parent holds: put the "
            'script\'s code under `if __name__ == "__main__":` (https://docs.python.org/3/library/multiprocessing.html'
            "#the-spawn-and-forkserver-start-methods)"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while not try_lock(fd):
            time.sleep(0.1)
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
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"pid {os.getpid()} host {socket.gethostname()}\n".encode())
        yield path
    finally:
        if WINDOWS:  # an open file cannot be removed there: closed first, left if another process opened it
            os.close(fd)
            with suppress(PermissionError):
                path.unlink(missing_ok=True)
        else:
            path.unlink(missing_ok=True)
            os.close(fd)
