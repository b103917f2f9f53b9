"""Write files and folders atomically: whole or not at all, never half of one under its final name.

Everything goes through a temporary sibling `.<name>.tmp-<pid>` renamed into place when complete; the pid lets
`remove_dead_temporaries` delete what a killed process left and leave a live process's work alone."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from fer_utils.storage.locking import process_alive

TMP_MARK = ".tmp-"
TMP_NAME = re.compile(r"^\..+\.tmp-(?P<pid>\d+)(?:\.\w+)?$")  # `.<name>.tmp-<pid>`, or with the extension kept


def temporary_sibling(path: Path, keep_suffix: bool = False) -> Path:
    """The temporary name beside `path` that this process writes before renaming into place; `keep_suffix`
    keeps the extension last (`.clip.tmp-42.mp4`) for writers that pick the format from it (VideoWriter)."""
    path = Path(path)
    if keep_suffix and path.suffix:
        return path.with_name(f".{path.stem}{TMP_MARK}{os.getpid()}{path.suffix}")
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")


def temporary_owner(path: Path) -> int | None:
    """The pid in a temporary name of ours, or None when `path` is not one."""
    match = TMP_NAME.match(Path(path).name)
    return None if match is None else int(match["pid"])


@contextmanager
def atomic_file(path: Path, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write (parents created); on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path, keep_suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `data` (text as UTF-8) to `path` through a temporary sibling, flushed to disk, then renamed."""
    with atomic_file(path) as tmp, tmp.open("wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_bytes(path: Path, data: bytes) -> bool:
    """`write_atomic`, skipped (False) when the bytes are already there: an identical rerun changes no mtime."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    write_atomic(path, data)
    return True


@contextmanager
def atomic_files(paths: Sequence[Path]) -> Iterator[list[Path]]:
    """Yield one temporary path per file: all renamed into place when the block succeeds, none otherwise."""
    with ExitStack() as stack:
        yield [stack.enter_context(atomic_file(path)) for path in paths]


@contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield an empty temporary folder that becomes `target` on success, else is removed (dead leftovers swept)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(target.parent)
    tmp = temporary_sibling(target)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def move(source: Path, target: Path) -> None:
    """Rename `source` to `target` in one step (replacing a file there), e.g. a resumable download's `.part`."""
    os.replace(source, target)


def replace_folder(staging: Path, target: Path) -> None:
    """Put the finished folder `staging` in place of `target`, any old one moved aside first, then removed."""
    target = Path(target)
    old = temporary_sibling(target.with_name(target.name + ".old"))
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    Path(staging).rename(target)
    shutil.rmtree(old, ignore_errors=True)


def remove_dead_temporaries(folder: Path, recursive: bool = False) -> list[Path]:
    """Delete the temporaries in `folder` (and below, with `recursive`) whose process is dead; returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = folder.rglob(f".*{TMP_MARK}*") if recursive else folder.glob(f".*{TMP_MARK}*")
    removed: list[Path] = []
    for path in sorted(found):
        owner = temporary_owner(path)
        if owner is None or process_alive(owner) or not (path.exists() or path.is_symlink()):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed
