"""FER-2013 as its one CSV (`emotion,pixels,Usage`: 35,887 rows, each a 48×48 gray face as 2,304
space-separated integers), indexed and read in place, without unpacking it into image files.

`index_fer2013_csv` streams the file once and gives each valid row a *row path*,
`<csv>#<row>@<byte offset>` (see `row_path`), as its clip's `path`; `fer_utils.images.read_image`, the one
reader of still images, reads such a path by seeking to the row (`read_row_image`), so preprocessing,
detection and prediction treat a row as an image file. No decoded face is kept beyond the one being read.
Codes: `emotion` 0 angry, 1 disgust, 2 fear(ful), 3 happy, 4 sad, 5 surprise(d), 6 neutral; `Usage`
Training, PublicTest, PrivateTest → the `split` train, val, test (`data.FER2013_USAGES`, the standard
protocol). A row with another code or usage, or a wrong number of pixels, is a rejected row with the reason.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fer_utils.data import FER2013_USAGES, REJECTED_COLUMNS, DatasetIndex
from fer_utils.errors import BadImageError, DatasetError, MissingMediaError, UnreadableVideoError

FER2013_FILE = "fer2013.csv"
FER2013_SIDE = 48  # every face is 48×48
FER2013_EMOTIONS: dict[str, str] = {
    "0": "angry",
    "1": "disgust",
    "2": "fearful",
    "3": "happy",
    "4": "sad",
    "5": "surprised",
    "6": "neutral",
}
FER2013_HEADER: tuple[str, ...] = ("emotion", "pixels", "usage")  # compared lower-case, stripped, any order
FER2013_COLUMNS: tuple[str, ...] = ("emotion", "subject", "clip_id", "split", "usage", "emotion_code", "row")
ROW_PATH = re.compile(r"^(?P<csv>.+\.csv)#(?P<row>\d+)@(?P<offset>\d+)$", re.IGNORECASE)


def row_path(csv_path: Path, row: int, offset: int) -> str:
    """The path of data row `row` (1-based) of a FER-2013 CSV, which starts `offset` bytes into the file."""
    return f"{csv_path}#{row}@{offset}"


def parse_row_path(path: str | Path) -> tuple[Path, int, int] | None:
    """(CSV file, row, byte offset) of a row path, or None for any other path."""
    match = ROW_PATH.match(str(path))
    if match is None:
        return None
    return Path(match.group("csv")), int(match.group("row")), int(match.group("offset"))


def source_file(path: str) -> str:
    """The file that a source path reads: the CSV of a row path, else the path itself (what a
    preprocessing completion record is keyed by)."""
    parsed = parse_row_path(path)
    return str(parsed[0]) if parsed else path


def find_csv(root: Path) -> Path:
    """The FER-2013 CSV that `root` names: the file itself, or `fer2013.csv` in the folder (at any depth,
    exactly one); DatasetError otherwise."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"dataset root {root} does not exist")
    if root.is_file():
        if root.suffix.lower() != ".csv":
            raise DatasetError(f"dataset root {root} is not a folder or a .csv file (FER-2013 is {FER2013_FILE})")
        return root.resolve()
    found = sorted(p for p in root.rglob(FER2013_FILE) if not any(s.startswith(".") for s in p.relative_to(root).parts))
    if len(found) != 1:
        what = f"{len(found)} copies ({', '.join(map(str, found[:3]))})" if found else "none"
        raise DatasetError(
            f"no fer2013 files found under {root}: expected one {FER2013_FILE} (emotion,pixels,Usage), found "
            f"{what}; give the CSV file itself as the root"
        )
    return found[0].resolve()


def header_columns(line: str, csv_path: Path) -> dict[str, int]:
    """Column index of `emotion`, `pixels` and `usage` in the CSV's header line (any order and case, spaces
    ignored, as in Kaggle's icml_face_data.csv); DatasetError when one is missing."""
    names = [name.strip().lower() for name in next(csv.reader([line]), [])]
    missing = [name for name in FER2013_HEADER if name not in names]
    if missing:
        raise DatasetError(
            f"{csv_path} is not FER-2013's CSV: its header {names[:6]} lacks {', '.join(missing)} "
            "(expected emotion,pixels,Usage)"
        )
    return {name: names.index(name) for name in FER2013_HEADER}


def _fields(line: str, columns: dict[str, int]) -> tuple[str, str, str]:
    """(emotion code, pixels, usage) of one data line; ValueError with the reason when it has too few fields."""
    values = line.split(",") if '"' not in line else next(csv.reader([line]), [])  # quotes: the csv module
    if len(values) <= max(columns.values()):
        raise ValueError(f"{len(values)} field(s), expected emotion, pixels and Usage")
    return tuple(values[columns[name]].strip() for name in FER2013_HEADER)  # type: ignore[return-value]


def check_row(code: str, pixels: str, usage: str) -> str | None:
    """Why a row is no FER-2013 face (unknown code or usage, wrong number of pixels, not integers), or None."""
    if code not in FER2013_EMOTIONS:
        return f"unknown emotion code {code!r} (known: {', '.join(FER2013_EMOTIONS)})"
    if usage not in FER2013_USAGES:
        return f"unknown Usage {usage!r} (known: {', '.join(FER2013_USAGES)})"
    n = FER2013_SIDE**2
    if pixels.count(" ") == n - 1 and "  " not in pixels and pixels.replace(" ", "").isdigit():
        return None  # n whole numbers, one space apart: checked without splitting (35,887 rows)
    values = pixels.split()
    if len(values) != n:
        return f"{len(values)} pixel values, expected {n} ({FER2013_SIDE}×{FER2013_SIDE})"
    if not "".join(values).isdigit():
        return "pixel values are not all whole numbers"
    return None


def _lines(csv_path: Path) -> Iterator[tuple[int, int, str]]:
    """(row number, byte offset, text) of each data line after the header, read one line at a time."""
    with csv_path.open("rb") as fh:
        header = fh.readline()
        offset = len(header)
        yield 0, 0, header.decode("utf-8-sig", errors="replace")
        for row, raw in enumerate(fh, start=1):
            yield row, offset, raw.decode("utf-8", errors="replace").rstrip("\r\n")
            offset += len(raw)


def index_fer2013_csv(root: Path) -> DatasetIndex:
    """Index FER-2013's CSV: one row per face, with `path` a row path (`row_path`) that the image reader
    reads, `emotion`, `subject` and `clip_id` (`fer2013_<row>`: FER-2013 names no person, so each face is
    its own subject), `split` (from `Usage`), `usage`, `emotion_code` and `row` (1-based data row).

    The file is streamed: only each row's fields are kept, never its pixels. Rows that are no FER-2013
    face (an unknown code or usage, a wrong pixel count) are in `.rejected` with the reason.
    """
    import pandas as pd

    csv_path = find_csv(root)
    rows: list[dict] = []
    rejected: list[dict] = []
    lines = _lines(csv_path)
    columns = header_columns(next(lines)[2], csv_path)
    for row, offset, line in lines:
        if not line.strip():
            continue
        path = row_path(csv_path, row, offset)
        try:
            code, pixels, usage = _fields(line, columns)
        except ValueError as why:
            rejected.append({"path": path, "reason": str(why)})
            continue
        reason = check_row(code, pixels, usage)
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
    if not rows:
        example = f"; {len(rejected)} row(s) rejected, e.g. {rejected[0]['path']}: {rejected[0]['reason']}"
        raise DatasetError(f"no fer2013 files found in {csv_path}{example if rejected else ''}")
    return DatasetIndex(
        clips=pd.DataFrame(rows, columns=["path", "dataset", *FER2013_COLUMNS]),
        rejected=pd.DataFrame(rejected, columns=list(REJECTED_COLUMNS)),
    )


def check_row_source(path: str | Path) -> str:
    """'image' for a row path whose CSV exists (what `images.check_media` says of it), else MissingMediaError."""
    csv_path, row, _ = parse_row_path(path)
    if not csv_path.is_file():
        raise MissingMediaError(f"{csv_path} (holding row {row}) does not exist")
    return "image"


def read_row_image(path: str | Path) -> np.ndarray:
    """The 48×48 gray face (uint8) of a row path, read by seeking to its row: UnreadableVideoError when the
    line there is no FER-2013 row (the CSV changed since it was indexed), BadImageError for values above 255."""
    csv_path, row, offset = parse_row_path(path)
    check_row_source(path)
    with csv_path.open("rb") as fh:
        if offset > os.fstat(fh.fileno()).st_size:
            raise UnreadableVideoError(f"{csv_path.name} row {row}: the file is shorter than when it was indexed")
        fh.seek(offset)
        line = fh.readline().decode("utf-8", errors="replace").rstrip("\r\n")
        fh.seek(0)
        header = fh.readline().decode("utf-8-sig", errors="replace")
    try:
        columns = header_columns(header, csv_path)
    except DatasetError as exc:
        raise UnreadableVideoError(f"{csv_path.name} row {row}: {exc}") from exc
    try:
        reason = check_row(*_fields(line, columns))
    except ValueError as why:
        reason = str(why)
    if reason is not None:
        raise UnreadableVideoError(f"{csv_path.name} row {row}: {reason} (has the file changed since it was indexed?)")
    values = np.array(_fields(line, columns)[1].split(), dtype=np.int64)
    if values.max() > 255:
        raise BadImageError(f"{csv_path.name} row {row}: pixel value {values.max()} is above 255")
    return values.astype(np.uint8).reshape(FER2013_SIDE, FER2013_SIDE)
