"""Text written between two markers of a document by a `fer_book` step, and the command line such a step has.

`marker_command` exits 0 when written or current, 1 when stale under `--check`, 2 when it cannot write.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from fer_utils.errors import BookError
from fer_utils.storage.atomic import write_atomic


def between(text: str, markers: tuple[str, str], content: str, where: Path) -> str:
    """`text` with `content` between its two `markers` (BookError unless each is there once, in order)."""
    start, end = markers
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise BookError(f"{where}: needs one {start!r} line followed by one {end!r} line")
    before, rest = text.split(start)
    return before + "\n\n".join([start, content, end]) + rest.split(end, 1)[1]


def write_changed(path: Path, text: str, new: str, check: bool) -> bool:
    """Write `new` over `path` (whose text is `text`) unless they are equal or `check`; whether it was current."""
    if new != text and not check:
        write_atomic(path, new.encode("utf-8"))
    return new == text


def marker_command(
    argv: Sequence[str] | None,
    prog: str,
    description: str,
    write: Callable[[Path, bool], bool],
    what: str,
    stale: str,
    root: Path | None = None,
) -> int:
    """The command line `prog` of a step that writes `what` with `write(root, check)`; `stale`: `--check`'s."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if the tables are stale")
    parser.add_argument("--root", type=Path, default=root or Path.cwd(), help="the repository (default: here)")
    args = parser.parse_args(argv)
    try:
        current = write(args.root, args.check)
    except BookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check and not current:
        print(f"{stale}: run `{prog}`", file=sys.stderr)
        return 1
    print(f"{what} {'up to date' if current else 'written'}")
    return 0
