"""A preprocessing output folder's records: what it belongs to, what is finished, and cleaning up.

The folder belongs to one source and one set of settings (`.parts/source.json`, `.parts/settings.json`);
each finished clip leaves a completion record keyed by its source file's size and mtime, so a rerun resumes
and a replaced source is redone (CONTRACTS.md, "A preprocessing output folder"). `start_over` deletes what
earlier runs wrote, and nothing else; `fer_utils.faces.preprocess` runs the work itself.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from fer_utils.data.fer2013 import parse_row_path, source_file
from fer_utils.data.manifest import INT_COLUMNS, MANIFEST_COLUMNS, MANIFEST_NAME, read_manifest_csv
from fer_utils.errors import InputError
from fer_utils.faces.crops import CROP_SPEC_FILE, CropSpec, read_crop_spec
from fer_utils.storage.atomic import atomic_write_bytes

PARTS_DIR = ".parts"
SETTINGS_NAME = "settings.json"
SOURCE_NAME = "source.json"


def is_utf8(text: str) -> bool:
    """Whether `text` is valid Unicode (a non-UTF-8 file name decodes to lone surrogates, which is not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(text: str) -> str:
    """`text` with the bytes of a non-UTF-8 file name shown as `\\xNN` escapes (safe to print and store)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def source_stamp(path: str) -> str:
    """`<size>-<mtime_ns>` of a source file (or why it has none): what its completion record is keyed by
    (for a row of FER-2013's CSV, the CSV's)."""
    try:
        info = os.stat(source_file(path))
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"error{exc.errno}"
    return f"{info.st_size}-{info.st_mtime_ns}"


def clip_key(clip: dict) -> str:
    """A stable file-name key for one clip row (dataset, clip id and source path)."""
    text = "\0".join(str(clip[k]) for k in ("dataset", "clip_id", "path"))
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:20]


def part_path(out_dir: Path, clip: dict) -> Path:
    """Where the completion record of `clip` lives: named by the clip and its source file's stamp."""
    return Path(out_dir) / PARTS_DIR / f"{clip_key(clip)}.{clip['stamp']}.csv"


def _listed_crops(table_path: Path) -> list[str]:
    """The crops (relative paths) a manifest or completion record lists; none if it cannot be read."""
    try:
        table = read_manifest_csv(table_path)
    except (ValueError, OSError, pd.errors.ParserError):  # an InputError is a ValueError
        return []
    return [image for image in table.loc[table["status"] == "ok", "image"] if image]


def _remove_crops(out_dir: Path, images: Iterable[str]) -> None:
    """Delete crops listed relative to `out_dir` (never anything outside it) and their emptied folders."""
    root = Path(out_dir).resolve()
    for image in images:
        path = (root / image).resolve()
        if root in path.parents:
            path.unlink(missing_ok=True)
            if path.parent != root and path.parent.is_dir() and not any(path.parent.iterdir()):
                path.parent.rmdir()


def discard_stale_records(out_dir: Path, clip: dict) -> None:
    """Remove the completion records of `clip` made from an earlier version of its source file, and
    their crops (crops first: an interrupted removal is finished by the next run)."""
    current = part_path(out_dir, clip)
    for old in sorted((Path(out_dir) / PARTS_DIR).glob(f"{clip_key(clip)}.*.csv")):
        if old != current:
            _remove_crops(out_dir, _listed_crops(old))
            old.unlink(missing_ok=True)


def part_bytes(rows: list[dict]) -> bytes:
    """Manifest rows as CSV bytes, the same bytes as `csv_bytes(manifest_frame(rows))` (the csv module, far
    cheaper than building a DataFrame once per clip: benchmarks/README.md, `--real`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    writer.writerows(["" if row[column] is None else row[column] for column in MANIFEST_COLUMNS] for row in rows)
    return buffer.getvalue().encode("utf-8")


def read_part_rows(path: Path) -> list[dict] | None:
    """The rows of a completion record (integer columns as int or None), or None when it is not one."""
    try:
        with Path(path).open(encoding="utf-8", newline="") as fh:
            lines = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    if not lines or lines[0] != list(MANIFEST_COLUMNS) or any(len(v) != len(MANIFEST_COLUMNS) for v in lines):
        return None
    rows = [dict(zip(MANIFEST_COLUMNS, values)) for values in lines[1:]]
    try:
        for row in rows:
            row.update({column: int(row[column]) if row[column] else None for column in INT_COLUMNS})
    except ValueError:
        return None
    return rows


def write_part(out_dir: Path, clip: dict, rows: list[dict]) -> None:
    """Record `clip` as finished (atomically, after its crops are in place)."""
    atomic_write_bytes(part_path(out_dir, clip), part_bytes(rows))


def read_part(out_dir: Path, clip: dict) -> list[dict] | None:
    """The finished record of `clip`, or None if it is absent, unreadable or its crops are missing."""
    path = part_path(out_dir, clip)
    if not path.is_file():
        return None
    rows = read_part_rows(path)
    if rows is None or not all((Path(out_dir) / r["image"]).is_file() for r in rows if r["status"] == "ok"):
        return None
    return rows


def _differences(stored: dict, wanted: dict) -> str:
    """`key: old there, new now` for each value that differs."""
    return ", ".join(f"{k}: {stored.get(k)!r} there, {v!r} now" for k, v in wanted.items() if stored.get(k) != v)


def _foreign_listed_source(out_dir: Path, paths: set[str]) -> str | None:
    """A source file the folder's manifest lists that is not among `paths`, or None."""
    manifest = Path(out_dir) / MANIFEST_NAME
    if not manifest.is_file():
        return None
    try:
        listed = set(read_manifest_csv(manifest)["source"])
    except (ValueError, pd.errors.ParserError):  # an InputError is a ValueError
        return f"{manifest} (not readable as a manifest)"
    return next(iter(sorted(listed - {printable(p) for p in paths})), None)


def folder_crop_spec(out_dir: Path) -> CropSpec | None:
    """How the crops in `out_dir` were cut (its `crop_spec.json`); None for a crops folder made by hand,
    InputError for one preprocessed before the spec existed (settings recorded, no spec)."""
    spec = read_crop_spec(out_dir)
    if spec is None and (Path(out_dir) / PARTS_DIR / SETTINGS_NAME).is_file():
        raise InputError(
            f"{out_dir} was preprocessed before crop specs were saved ({CROP_SPEC_FILE} is missing): "
            "preprocess it again into a new folder, or with --force"
        )
    return spec


def claim_folder(out_dir: Path, settings: dict, source: dict, paths: set[str]) -> None:
    """Record `settings` and `source` in a new output folder, or refuse one made from another source or
    with other settings, or holding a manifest (without records) that lists files not in `paths`
    (nothing is written then)."""
    parts = Path(out_dir) / PARTS_DIR
    records = {SOURCE_NAME: source, SETTINGS_NAME: settings}
    stored = {
        name: json.loads((parts / name).read_text(encoding="utf-8")) if (parts / name).is_file() else None
        for name in records
    }
    foreign = _foreign_listed_source(out_dir, paths) if stored[SOURCE_NAME] is None else None
    if foreign is not None:
        stored[SOURCE_NAME] = {"datasets": "unknown (a manifest without records)", "root": f"it lists {foreign}"}
    if stored[SOURCE_NAME] is not None and stored[SOURCE_NAME] != source:
        raise InputError(
            f"{out_dir} holds the crops of another source ({_differences(stored[SOURCE_NAME], source)}); "
            "use another --out folder, or --force (force=True) to delete them and start over"
        )
    if stored[SETTINGS_NAME] is not None and stored[SETTINGS_NAME] != records[SETTINGS_NAME]:
        raise InputError(
            f"{out_dir} was preprocessed with other settings "
            f"({_differences(stored[SETTINGS_NAME], records[SETTINGS_NAME])}); "
            "use another --out folder, or --force (force=True) to delete its crops and start over"
        )
    for name, record in records.items():
        if stored[name] is None:
            atomic_write_bytes(parts / name, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def start_over(out_dir: Path) -> None:
    """Delete what earlier runs wrote into `out_dir`: the crops their manifest and records list, the
    records, the crop spec and the manifest. Other files in the folder are left alone."""
    out_dir = Path(out_dir)
    tables = [out_dir / MANIFEST_NAME, *sorted((out_dir / PARTS_DIR).glob("*.csv"))]
    _remove_crops(out_dir, sorted({image for table in tables if table.is_file() for image in _listed_crops(table)}))
    shutil.rmtree(out_dir / PARTS_DIR, ignore_errors=True)
    (out_dir / CROP_SPEC_FILE).unlink(missing_ok=True)
    (out_dir / MANIFEST_NAME).unlink(missing_ok=True)


def source_identity(records: list[dict], source: Path | None) -> dict:
    """What the output folder is made from: the datasets and the source root (`source`, else the
    folder that holds every clip)."""
    if source is not None:
        root = str(Path(source).expanduser().resolve())
    else:
        parents = sorted({str(Path(r["path"]).parent.resolve()) for r in records})
        root = os.path.commonpath(parents) if parents else ""
    return {"datasets": sorted({r["dataset"] for r in records}), "root": root}


def source_home(path: str) -> Path:
    """Where a source file lives, which an output folder must not overlap: its folder, or for a row of
    FER-2013's CSV the CSV file itself (crops may go beside it, not around it)."""
    parsed = parse_row_path(path)
    return parsed[0].resolve() if parsed else Path(path).parent.resolve()


def check_overlap(out_dir: Path, records: list[dict], source: Path | None) -> None:
    """Refuse an output folder that is the source, lies inside it or holds it: crops would overwrite
    or mix with the source files (and `force` would delete them)."""
    out = Path(out_dir).expanduser().resolve()
    homes = [Path(source).expanduser().resolve()] if source is not None else []
    homes += sorted({source_home(r["path"]) for r in records})
    clash = next((home for home in homes if out == home or home in out.parents or out in home.parents), None)
    if clash is not None:
        raise InputError(
            f"the output folder {out} and the source {clash} overlap (the same folder, or one "
            "inside the other): crops would overwrite or mix with the source; use an --out "
            "outside the source"
        )
