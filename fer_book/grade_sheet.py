"""The grade sheet of `fer_book grade`: the grades table (a row per submission and exercise) and its summary.

Both are written atomically after every graded submission (`csv_safe`). A rerun keeps the rows whose
`fingerprint` still matches, and a teacher's added columns, matched on the submission (and exercise).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Collection, Mapping
from contextlib import AbstractContextManager
from pathlib import Path

import pandas as pd

from fer_utils.errors import OutputError
from fer_utils.storage.atomic import atomic_files
from fer_utils.storage.locking import folder_lock
from fer_utils.storage.outputs import check_outputs

# The columns grading reads back (a file lacking one is no sheet of its own), then the note each run rewrites.
GRADED_COLUMNS = ["student", "submission", "chapter", "exercise", "passed", "status", "message", "fingerprint"]
GRADE_COLUMNS = [*GRADED_COLUMNS, "grader_note"]
SUMMED_COLUMNS = ["student", "submission", "chapter", "passed", "total"]
SUMMARY_COLUMNS = [*SUMMED_COLUMNS, "grader_note"]
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")  # a CSV cell starting so is a formula in a spreadsheet
GUARD = "'"  # the prefix that neutralises a formula; a cell starting with it is guarded too, so that it reads back


def summary_path(out: Path) -> Path:
    """Where the summary of `grades.csv` goes: `grades_summary.csv` beside it."""
    return out.with_name(f"{out.stem}_summary{out.suffix or '.csv'}")


def check_grade_outputs(out: Path, reads: list[Path]) -> None:
    """OutputError before any work when `--out` or its summary is a notebook, an input, a folder or unwritable."""
    if not Path(out).name:
        raise OutputError(f"--out {out} names no file; give e.g. grades.csv")
    outputs = {"--out": out, "--out's summary": summary_path(out)}
    for option, path in outputs.items():
        if path.suffix.lower() == ".ipynb":
            raise OutputError(f"{option} {path} is a notebook name: the grades are a CSV file, e.g. grades.csv")
    check_outputs(outputs, reads=reads, overwrite=True)  # a sheet of its own only: check_own_sheet
    check_own_sheet("--out", Path(out), GRADED_COLUMNS)
    check_own_sheet("--out's summary", summary_path(out), SUMMED_COLUMNS)


def check_own_sheet(option: str, path: Path, columns: list[str]) -> None:
    """OutputError when `path` holds a non-empty file whose header lacks one of `columns` (a class roster)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        header = None  # no UTF-8 CSV text
    if header is not None and set(columns) <= set(header):
        return
    found = "it is not CSV text" if header is None else f"its columns: {', '.join(header[:8]) or 'none'}"
    raise OutputError(
        f"{option} {path} is not a grade sheet of `fer_book grade` ({found}; a sheet's: {', '.join(columns)}): "
        "grading never replaces it; give another --out (nothing was written)"
    )


def grade_sheet_lock(out: Path) -> AbstractContextManager[Path]:
    """The lock one grader holds on `out` (`.<out>.lock` beside it): a second grader gets OutputError."""
    return folder_lock(Path(out).parent, f".{Path(out).name}.lock")


def guarded(column: pd.Series, keep: Collection[str]) -> bool:
    """Whether the guard applies to `column`: a text column that is not one of `keep` (a teacher's own)."""
    return column.dtype == object and column.name not in keep


def csv_safe(table: pd.DataFrame, keep: Collection[str] = ()) -> pd.DataFrame:
    """`table` with GUARD before each text cell starting like a formula or with GUARD (but in `keep`)."""

    def safe(value: object) -> object:
        return f"{GUARD}{value}" if isinstance(value, str) and value.startswith((*FORMULA_PREFIXES, GUARD)) else value

    return table.apply(lambda column: column.map(safe) if guarded(column, keep) else column)


def csv_unsafe(table: pd.DataFrame, keep: Collection[str] = ()) -> pd.DataFrame:
    """What `csv_safe` wrote, as it was: one leading GUARD removed (but in the columns `keep`)."""

    def unsafe(value: object) -> object:
        return value[len(GUARD) :] if isinstance(value, str) and value.startswith(GUARD) else value

    return table.apply(lambda column: column.map(unsafe) if guarded(column, keep) else column)


def write_tables(tables: dict[Path, pd.DataFrame], keep: Mapping[Path, Collection[str]] | None = None) -> None:
    """Write each table as CSV, all or none (OutputError, the previous files whole); `keep[path]` unguarded."""
    try:
        with atomic_files(list(tables)) as temporaries:
            for tmp, (path, table) in zip(temporaries, tables.items()):
                with tmp.open("w", encoding="utf-8", newline="") as fh:  # text quoted: a CR stays in
                    csv_safe(table, (keep or {}).get(path, ())).to_csv(fh, index=False, quoting=csv.QUOTE_NONNUMERIC)
                    fh.flush()
                    os.fsync(fh.fileno())
    except OSError as exc:
        raise OutputError(f"could not write the grades ({exc.strerror or exc}); nothing was replaced") from exc


def read_sheet(path: Path, own: list[str]) -> pd.DataFrame:
    """The table at `path` as text, `own` columns unguarded; OutputError when it cannot be read back."""
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in own})
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise OutputError(f"{path} cannot be read back ({exc}); fix or move it (nothing was written)") from exc
    missing = [column for column in own if column not in table.columns]
    if missing:
        raise OutputError(f"{path} is not a grade sheet: it has no column {', '.join(missing)} (nothing was written)")
    return csv_unsafe(table, keep=[column for column in table.columns if column not in own])


def previous_grades(out: Path) -> pd.DataFrame:
    """The rows of the grade sheet at `out` (`exercise` int, `passed` bool); OutputError naming a bad row."""
    table = read_sheet(Path(out), GRADED_COLUMNS)
    passed = table["passed"].str.lower().map({"true": True, "false": False})
    exercise = pd.to_numeric(table["exercise"], errors="coerce")
    bad = passed.isna() | exercise.isna() | (exercise.fillna(0) % 1 != 0)
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise OutputError(
            f"--out {out}: row {row + 2} has exercise {table['exercise'].iloc[row]!r} and passed "
            f"{table['passed'].iloc[row]!r}, not a number and True/False: fix that row or give another --out "
            "(nothing was written)"
        )
    return table.assign(exercise=exercise.astype(int), passed=passed.astype(bool))


def with_teachers_columns(table: pd.DataFrame, earlier: pd.DataFrame, keys: list[str], own: list[str]) -> pd.DataFrame:
    """`table` with the columns a teacher added to the `earlier` file, matched on `keys`, in that file's order."""
    extra = [column for column in earlier.columns if column not in own]
    if extra:
        added = earlier[[*keys, *extra]].drop_duplicates(keys)
        table = table.merge(added, on=keys, how="left")
        table[extra] = table[extra].fillna("")
    order = [column for column in earlier.columns if column in own or column in extra]
    return table[order + [column for column in own if column not in order]]


def teachers_cells(earlier: pd.DataFrame, own: list[str]) -> list[str]:
    """The submissions of an `earlier` table that have a cell filled in a teacher's column (not in `own`)."""
    extra = [column for column in earlier.columns if column not in own]
    return earlier.loc[earlier[extra].ne("").any(axis=1), "submission"].unique().tolist()


class GradeSheet:
    """One grading run's sheet: the rows kept from `out`, the rows graded since, and `notes` per submission."""

    def __init__(self, out: Path, fingerprints: dict[str, set[str]], notes: dict[str, str] | None = None) -> None:
        self.out = Path(out)
        self.notes = dict(notes or {})
        earlier = previous_grades(self.out)
        self.earlier, self.earlier_summary = earlier, read_sheet(summary_path(self.out), SUMMED_COLUMNS)
        if len(earlier) and fingerprints and not earlier["submission"].isin(list(fingerprints)).any():
            raise OutputError(
                f"--out {out} holds the grades of {earlier['submission'].nunique()} other notebook(s), none of "
                "them in this submissions folder (another class?): grading into it would drop them; give this "
                "folder its own --out (nothing was written)"
            )
        matches = [p in fingerprints.get(k, ()) for k, p in zip(earlier["submission"], earlier["fingerprint"])]
        same = pd.Series(matches, index=earlier.index, dtype=bool)
        whole = same.groupby(earlier["submission"]).transform("all") if len(earlier) else same
        gone = set(teachers_cells(earlier, GRADE_COLUMNS)) | set(teachers_cells(self.earlier_summary, SUMMARY_COLUMNS))
        gone -= set(fingerprints)
        self.notes |= dict.fromkeys(gone, "no longer in the submissions folder: kept for the teacher's cells beside it")
        self.rows = earlier.loc[whole | earlier["submission"].isin(gone), GRADED_COLUMNS].reset_index(drop=True)
        self.kept = int(earlier.loc[whole, "submission"].nunique())

    def has(self, key: str) -> bool:
        """Whether the submission `key` keeps its grades from the previous sheet."""
        return bool((self.rows["submission"] == key).any())

    def grades(self) -> pd.DataFrame:
        """The grades table, ordered by submission and exercise, with its notes and a teacher's columns."""
        rows = self.rows.sort_values(["submission", "exercise"], kind="stable").reset_index(drop=True)
        rows = rows.assign(grader_note=rows["submission"].map(self.notes).fillna(""))
        return with_teachers_columns(rows, self.earlier, ["submission", "exercise"], GRADE_COLUMNS)

    def summary(self) -> pd.DataFrame:
        """passed / total per submission, with its notes and a teacher's columns."""
        counts = self.rows.groupby(["student", "submission", "chapter"])["passed"].agg(passed="sum", total="size")
        summary = counts.reset_index()
        summary = summary.assign(grader_note=summary["submission"].map(self.notes).fillna(""))
        return with_teachers_columns(summary, self.earlier_summary, ["submission"], SUMMARY_COLUMNS)

    def add(self, rows: list) -> None:
        """Put one submission's rows (of GRADED_COLUMNS) in place of any it had; write both tables."""
        new = pd.DataFrame([[getattr(row, c) for c in GRADED_COLUMNS] for row in rows], columns=GRADED_COLUMNS)
        others = self.rows[~self.rows["submission"].isin(new["submission"])]
        self.rows = pd.concat([others, new], ignore_index=True) if len(others) else new
        self.write()

    def write(self) -> None:
        """Write the grades and their summary, both or neither (a teacher's columns as they were read)."""
        tables = {self.out: self.grades(), summary_path(self.out): self.summary()}
        own = {self.out: GRADE_COLUMNS, summary_path(self.out): SUMMARY_COLUMNS}
        write_tables(tables, {path: [c for c in table.columns if c not in own[path]] for path, table in tables.items()})
