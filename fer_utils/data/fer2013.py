"""FER-2013 as its one CSV (`emotion,pixels,Usage`: 35,887 rows, each a 48×48 gray face as 2,304
space-separated integers), indexed and read in place, without unpacking it into image files.

Each row's `path` is a row path, `<csv>#<row>@<byte offset>`, which `media.read_image` reads by seeking there.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fer_utils.data.corpora import FER2013_USAGES, REJECTED_COLUMNS, DatasetIndex, parse_row_path, row_path
from fer_utils.errors import InputError, MediaError

FER2013_FILE = "fer2013.csv"
FER2013_SIDE = 48  # every face is 48×48
FER2013_EMOTIONS: dict[str, str] = {  # FER-2013's emotion codes 0..6, in this order
    str(code): e for code, e in enumerate(("angry", "disgust", "fearful", "happy", "sad", "surprised", "neutral"))
}
PIXEL_RANGE = "(pixel values are whole numbers from 0 to 255)"
# A whole number above 255 among space-separated pixel values (leading zeros allowed): a row with one is rejected.
ABOVE_255 = re.compile(r"(?:^|\s)(0*(?:[1-9]\d{3,}|2(?:5[6-9]|[6-9]\d)|[3-9]\d\d))(?=\s|$)")
FER2013_HEADER: tuple[str, ...] = ("emotion", "pixels", "usage")  # compared lower-case, stripped, any order
FER2013_COLUMNS: tuple[str, ...] = ("emotion", "subject", "clip_id", "split", "usage", "emotion_code", "row")
# A FER-2013 row is under 9.3 kB (2,304 values of up to 3 digits): a longer line is skipped, never held in memory.
MAX_ROW_BYTES = 16 * 1024
READ_CHUNK = 1 << 20
ZIP_MAGIC = b"PK\x03\x04"


def find_csv(root: Path) -> Path:
    """The CSV `root` names: the file itself, or the one `fer2013.csv` in the folder at any depth; else InputError."""
    root = Path(root).expanduser()
    if not root.exists():
        raise InputError(f"dataset root {root} does not exist")
    if root.is_file():
        if root.suffix.lower() != ".csv":
            raise InputError(f"dataset root {root} is not a folder or a .csv file (FER-2013 is {FER2013_FILE})")
        check_text(root)
        return root.resolve()
    found = sorted(p for p in root.rglob(FER2013_FILE) if not any(s.startswith(".") for s in p.relative_to(root).parts))
    if len(found) != 1:
        what = f"{len(found)} copies ({', '.join(map(str, found[:3]))})" if found else "none"
        raise InputError(
            f"no fer2013 files found under {root}: expected one {FER2013_FILE} (emotion,pixels,Usage), found "
            f"{what}; give the CSV file itself as the root"
        )
    check_text(found[0])
    return found[0].resolve()


def check_text(csv_path: Path) -> None:
    """InputError for a file that is no text CSV: a zip archive (Kaggle's download, named .csv) or binary data."""
    with Path(csv_path).open("rb") as fh:
        head = fh.read(4096)
    if head.startswith(ZIP_MAGIC):
        raise InputError(
            f"{csv_path} is a zip archive, not a CSV (its name says .csv): unzip it and give the fer2013.csv inside"
        )
    if b"\x00" in head:
        raise InputError(f"{csv_path} holds binary data (NUL bytes), not FER-2013's text CSV (emotion,pixels,Usage)")


def header_columns(line: str, csv_path: Path) -> dict[str, int]:
    """Columns of `emotion`, `pixels`, `usage` in a header (any order or case), `fields` its width; else InputError."""
    names = [name.strip().lower() for name in next(csv.reader([line]), [])]
    if missing := [name for name in FER2013_HEADER if name not in names]:
        shown = [name if name.isprintable() and len(name) <= 40 else f"{name[:40]!r}…" for name in names[:6]]
        raise InputError(
            f"{csv_path} is not FER-2013's CSV: its header {shown} lacks {', '.join(missing)} "
            "(expected emotion,pixels,Usage)"
        )
    return {**{name: names.index(name) for name in FER2013_HEADER}, "fields": len(names)}


def _fields(line: str, columns: dict[str, int]) -> tuple[str, str, str]:
    """(emotion code, pixels, usage) of one data line; ValueError when it has more or fewer fields than the header."""
    values = line.split(",") if '"' not in line else next(csv.reader([line]), [])  # quotes: the csv module
    expected = columns["fields"]
    if len(values) != expected:
        raise ValueError(f"{len(values)} field(s) where the header names {expected} (emotion, pixels, Usage)")
    return tuple(values[columns[name]].strip() for name in FER2013_HEADER)  # type: ignore[return-value]


def check_row(code: str, pixels: str, usage: str) -> str | None:
    """Why a row is no FER-2013 face (unknown code or usage, wrong number of pixels, not integers), or None."""
    if code not in FER2013_EMOTIONS:
        return f"unknown emotion code {code!r} (known: {', '.join(FER2013_EMOTIONS)})"
    if usage not in FER2013_USAGES:
        return f"unknown Usage {usage!r} (known: {', '.join(FER2013_USAGES)})"
    n = FER2013_SIDE**2
    if not (
        pixels.count(" ") == n - 1 and "  " not in pixels and pixels.replace(" ", "").isdigit() and pixels.isascii()
    ):
        values = pixels.split()  # not n whole numbers one space apart (the fast check above): say what is wrong
        if len(values) != n:
            return f"{len(values)} pixel values, expected {n} ({FER2013_SIDE}×{FER2013_SIDE})"
        bad = next((value for value in values if not (value.isdigit() and value.isascii())), None)
        if bad is not None and bad[1:].isdigit() and bad[0] == "-":
            return f"pixel value {bad} is below 0 {PIXEL_RANGE}"
        if bad is not None:
            return f"pixel value {bad[:20]!r} is not a whole number {PIXEL_RANGE}"
    above = ABOVE_255.search(pixels)
    return None if above is None else f"pixel value {above.group(1)[:20]} is above 255 {PIXEL_RANGE}"


def _without_ending(line: bytes) -> bytes:
    """`line` without its LF or CRLF ending."""
    return line[:-2] if line.endswith(b"\r\n") else line.removesuffix(b"\n")


def physical_lines(fh, limit: int = MAX_ROW_BYTES) -> Iterator[tuple[int, bytes | None]]:
    """(byte offset, bytes without LF or CRLF) of each line of a binary file; None for one past `limit`, never held."""
    offset = 0
    while line := fh.readline(limit + 2):
        start, offset = offset, offset + len(line)
        too_long = len(_without_ending(line)) > limit
        while too_long and not line.endswith(b"\n") and (line := fh.readline(READ_CHUNK)):
            offset += len(line)  # the rest of a line too long to hold, skipped
        yield start, None if too_long else _without_ending(line)


def _lines(csv_path: Path) -> Iterator[tuple[int, int, str | None]]:
    """(row number, byte offset, text or None when too long) of the header (row 0) and each data line."""
    with csv_path.open("rb") as fh:
        for row, (offset, raw) in enumerate(physical_lines(fh)):
            text = None if raw is None else raw.decode("utf-8-sig" if row == 0 else "utf-8", errors="replace")
            yield row, offset, text


def read_line_at(fh, offset: int) -> str | None:
    """The line that starts at `offset`, or None when it is longer than MAX_ROW_BYTES."""
    fh.seek(offset)
    line = fh.readline(MAX_ROW_BYTES + 2)
    if not line.endswith(b"\n") and len(line) > MAX_ROW_BYTES:
        return None
    return _without_ending(line).decode("utf-8-sig" if offset == 0 else "utf-8", errors="replace")


def index_fer2013_csv(root: Path) -> DatasetIndex:
    """Index FER-2013's CSV, streamed: a row path per face, `split` from `Usage`, subject = clip id `fer2013_<row>`."""
    import pandas as pd

    csv_path = find_csv(root)
    rows: list[dict] = []
    rejected: list[dict] = []
    lines = _lines(csv_path)
    header = next(lines, (0, 0, ""))[2]
    if header is None:
        raise InputError(f"{csv_path} is not FER-2013's CSV: its first line is longer than {MAX_ROW_BYTES} bytes")
    columns = header_columns(header, csv_path)
    for row, offset, line in lines:
        path = row_path(csv_path, row, offset)
        if line is None:
            rejected.append({"path": path, "reason": f"line longer than {MAX_ROW_BYTES} bytes: no FER-2013 row"})
            continue
        if not line.strip():
            continue
        try:
            code, pixels, usage = _fields(line, columns)
            reason = check_row(code, pixels, usage)
        except ValueError as why:
            reason = str(why)
        if reason is not None:
            rejected.append({"path": path, "reason": reason})
            continue
        clip_id = f"fer2013_{row:05d}"
        rows.append(
            {
                "path": path,
                "dataset": "fer2013",
                "emotion": FER2013_EMOTIONS[code],
                "subject": clip_id,
                "clip_id": clip_id,
                "split": FER2013_USAGES[usage],
                "usage": usage,
                "emotion_code": int(code),
                "row": row,
            }
        )
    if not rows and not rejected:
        raise InputError(f"no fer2013 faces in {csv_path}: it holds a header and no data row")
    if not rows:
        first = rejected[0]
        raise InputError(
            f"no fer2013 faces in {csv_path}: all {len(rejected)} row(s) rejected, e.g. {first['path']}: "
            f"{first['reason']}"
        )
    return DatasetIndex(
        clips=pd.DataFrame(rows, columns=["path", "dataset", *FER2013_COLUMNS]),
        rejected=pd.DataFrame(rejected, columns=list(REJECTED_COLUMNS)),
    )


def check_row_source(path: str | Path) -> str:
    """'image' for a row path whose CSV exists, else a MediaError of status missing."""
    csv_path, row, _ = parse_row_path(path)
    if not csv_path.is_file():
        raise MediaError(f"{csv_path} (holding row {row}) does not exist", status="missing")
    return "image"


def read_row_image(path: str | Path) -> np.ndarray:
    """The 48×48 gray face (uint8) of a row path, read by seeking to its row; a MediaError when the line
    there is no valid FER-2013 row (the CSV changed since it was indexed)."""
    csv_path, row, offset = parse_row_path(path)
    check_row_source(path)
    with csv_path.open("rb") as fh:
        if offset > os.fstat(fh.fileno()).st_size:
            raise MediaError(f"{csv_path.name} row {row}: the file is shorter than when it was indexed")
        line = read_line_at(fh, offset)
        header = read_line_at(fh, 0)
    try:
        columns = header_columns(header or "", csv_path)
    except InputError as exc:
        raise MediaError(f"{csv_path.name} row {row}: {exc}") from exc
    try:
        reason = f"a line longer than {MAX_ROW_BYTES} bytes" if line is None else check_row(*_fields(line, columns))
    except ValueError as why:
        reason = str(why)
    if reason is not None:
        raise MediaError(f"{csv_path.name} row {row}: {reason} (has the file changed since it was indexed?)")
    values = np.array(_fields(line, columns)[1].split(), dtype=np.int64)
    return values.astype(np.uint8).reshape(FER2013_SIDE, FER2013_SIDE)
