"""Output paths of a command: checked against its inputs before any work, and written atomically.

Each problem is an `OutputError` (exit 2) naming the option and path: an output that would overwrite an input,
clash with another output or cannot be written, or a failed write (full disk). See CONTRACTS.md, "Output paths"."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

from fer_utils.errors import OutputError
from fer_utils.storage import atomic


def _same(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (after resolving links, or the same inode)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder` or lies under it (resolved)."""
    return path.resolve().is_relative_to(folder.resolve())


def check_place(option: str, path: Path, is_folder: bool) -> None:
    """OutputError if `path` is of the wrong kind (folder or file) or its nearest existing ancestor is not writable."""
    path = Path(path)
    if not is_folder and path.is_dir():
        raise OutputError(f"{option} {path} is a folder; give a file name")
    if is_folder and path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path} is a file, not a folder")
    base = path if is_folder and path.is_dir() else path.parent.absolute()
    while not base.exists() and base != base.parent:  # the nearest existing ancestor
        base = base.parent
    if not base.is_dir():
        raise OutputError(f"{option} {path}: {base} is a file, not a folder")
    try:  # a file created for real: as root, permission bits say nothing about a read-only file system
        fd, probe = tempfile.mkstemp(dir=base, prefix=".write-probe-")
    except OSError:
        raise OutputError(f"{option} {path}: cannot write in {base} (read-only or no permission)") from None
    os.close(fd)
    os.unlink(probe)


def check_outputs(
    outputs: Mapping[str, Path | None],
    *,
    reads: Iterable[Path | None] = (),
    read_folders: Iterable[Path | None] = (),
    folders: Collection[str] = (),
    overwrite: bool = False,
) -> None:
    """OutputError naming the option and path when an output (option → path or None) cannot be written safely:
    not over `reads`, nor in or around `read_folders`, nor over a file already there unless `overwrite` (the
    command's `--overwrite`); `folders` names the options whose output is a folder (each command guards its own)."""
    given = [(option, Path(path)) for option, path in outputs.items() if path is not None]
    inputs = [Path(p) for p in reads if p is not None]
    read_dirs = [Path(p) for p in read_folders if p is not None]
    for i, (option, path) in enumerate(given):
        for other, earlier in given[:i]:
            if _same(path, earlier):
                raise OutputError(f"{other} and {option} are the same file {path}: give each its own path")
        for source in inputs:
            if _same(path, source) or (option in folders and _inside(source, path)):
                raise OutputError(f"{option} {path} would overwrite the input {source}; choose another path")
        for folder in read_dirs:
            if _inside(path, folder) or (option in folders and _inside(folder, path)):
                relation = (
                    "is" if path.resolve() == folder.resolve() else "is inside" if _inside(path, folder) else "holds"
                )
                raise OutputError(
                    f"{option} {path} {relation} {folder}, which this command reads; write it somewhere else"
                )
        if not overwrite and option not in folders and path.is_file():
            raise OutputError(f"{option} {path} already exists: give another path, or --overwrite to replace it")
        check_place(option, path, option in folders)


def write_atomic(path: Path, data: str | bytes, option: str = "output") -> None:
    """`atomic.write_atomic`, an OSError (full disk, read-only) becoming an OutputError naming `option`."""
    try:
        atomic.write_atomic(path, data)
    except OSError as exc:
        raise OutputError(f"could not write {option} {path}: {exc.strerror or exc}") from exc
