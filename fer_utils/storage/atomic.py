"""Write files and folders atomically: whole or not at all, never half of one under its final name.

Everything the project writes for others to read goes through a temporary sibling `.<name>.tmp-<pid>`,
renamed into place only when complete. The pid in the one naming scheme lets `remove_dead_temporaries`
delete what a killed process left and leave a live process's work alone."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from fer_utils.storage.locking import process_alive

TMP_MARK = ".tmp-"
# `.<name>.tmp-<pid>`, or `.<stem>.tmp-<pid><suffix>` for writers that choose a format by the extension
TMP_NAME = re.compile(r"^\..+\.tmp-(?P<pid>\d+)(?:\.\w+)?$")


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
    """Yield one temporary path per file: all are renamed into place when the block ends without error,
    none otherwise (two files that belong together, such as a grade sheet and its summary)."""
    with ExitStack() as stack:
        yield [stack.enter_context(atomic_file(path)) for path in paths]


@contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside `target` that becomes `target` when the block ends without error
    and is removed otherwise; dead processes' leftovers beside it are swept first."""
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
    """Rename `source` to `target` in one step (replacing a file there), e.g. a resumable download's `.part`:
    every rename of the project goes through this module."""
    os.replace(source, target)


def replace_folder(staging: Path, target: Path) -> None:
    """Put the finished folder `staging` in the place of `target` (which may exist): the old one is moved
    aside under a temporary name first and removed once the new one is in place."""
    target = Path(target)
    old = temporary_sibling(target.with_name(target.name + ".old"))
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    Path(staging).rename(target)
    shutil.rmtree(old, ignore_errors=True)


def remove_dead_temporaries(folder: Path, recursive: bool = False) -> list[Path]:
    """Delete the temporary files and folders in `folder` (and below it, with `recursive`) whose process
    is dead: what a killed run left. A live process's are left alone. Returns what was removed."""
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
