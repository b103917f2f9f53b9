"""The grade sheet of `fer_book grade`: the grades table (one row per submission and exercise) and its
summary (`passed/total` per submission) beside it.

Both paths are checked before any work (`check_grade_outputs`). `GradeSheet` writes the two files after
every graded submission, atomically, both or neither (`write_tables`), every text cell a spreadsheet
would read as a formula prefixed with an apostrophe (`csv_safe`): a grader killed halfway leaves every
grade it finished on disk. Each row carries its submission's `fingerprint` (the notebook's bytes, the
checkers and the chapter it was graded with), and a rerun keeps the rows of the previous sheet whose
fingerprint still matches, grading only the other submissions.
"""

from __future__ import annotations

import csv
import os
from contextlib import AbstractContextManager
from pathlib import Path

import pandas as pd

from fer_utils.errors import OutputError
from fer_utils.storage.atomic import atomic_files
from fer_utils.storage.locking import folder_lock
from fer_utils.storage.outputs import check_outputs

GRADE_COLUMNS = ["student", "submission", "chapter", "exercise", "passed", "status", "message", "fingerprint"]
SUMMARY_COLUMNS = ["student", "submission", "chapter", "passed", "total"]
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")  # a CSV cell starting so is a formula in a spreadsheet
GUARD = "'"  # the prefix that neutralises a formula; a cell starting with it is guarded too, so that it reads back


def summarize(grades: pd.DataFrame) -> pd.DataFrame:
    """passed / total exercises per submission (with its student and chapter)."""
    keys = ["student", "submission", "chapter"]
    summary = grades.groupby(keys, sort=True)["passed"].agg(passed="sum", total="size")
    return summary.reset_index()[SUMMARY_COLUMNS]


def summary_path(out: Path) -> Path:
    """Where the summary of `grades.csv` goes: `grades_summary.csv` beside it."""
    return out.with_name(f"{out.stem}_summary{out.suffix or '.csv'}")


def check_grade_outputs(out: Path, reads: list[Path]) -> None:
    """OutputError before any work when `--out` or its summary is a notebook, an input, a folder, or lies
    where it cannot be written."""
    if not Path(out).name:
        raise OutputError(f"--out {out} names no file; give e.g. grades.csv")
    for option, path in (("--out", out), ("--out's summary", summary_path(out))):
        if path.suffix.lower() == ".ipynb":
            raise OutputError(f"{option} {path} is a notebook name: the grades are a CSV file, e.g. grades.csv")
    check_outputs({"--out": out, "--out's summary": summary_path(out)}, reads=reads)


def grade_sheet_lock(out: Path) -> AbstractContextManager[Path]:
    """The lock that one grader holds on `out` while it grades (`fer_utils.storage.locking.folder_lock`, a file
    `.<out>.lock` beside it): a second grader writing the same sheet is refused (FolderLockedError naming
    the holder) instead of the two replacing each other's rows."""
    return folder_lock(Path(out).parent, f".{Path(out).name}.lock")


def csv_safe(table: pd.DataFrame) -> pd.DataFrame:
    """`table` with every text cell that a spreadsheet would read as a formula (= + - @, tab, CR) prefixed
    with an apostrophe, and every cell already starting with one given another, so that `csv_unsafe`
    gives back exactly what was written (a submission `=cmd.ipynb` keeps its key across reruns)."""

    def safe(value: object) -> object:
        return f"{GUARD}{value}" if isinstance(value, str) and value.startswith((*FORMULA_PREFIXES, GUARD)) else value

    return table.apply(lambda column: column.map(safe) if column.dtype == object else column)


def csv_unsafe(table: pd.DataFrame) -> pd.DataFrame:
    """The cells `csv_safe` wrote, as they were: one leading apostrophe removed from each text cell."""

    def unsafe(value: object) -> object:
        return value[len(GUARD) :] if isinstance(value, str) and value.startswith(GUARD) else value

    return table.apply(lambda column: column.map(unsafe) if column.dtype == object else column)


def write_tables(tables: dict[Path, pd.DataFrame]) -> None:
    """Write each table as CSV, both or neither (`fer_utils.storage.atomic.atomic_files`): every table goes to a
    temporary sibling first, and only when all are written are they renamed into place; on a failure (a
    full disk) the temporaries are removed, the previous files are left whole, and it is an OutputError."""
    try:
        with atomic_files(list(tables)) as temporaries:
            for tmp, table in zip(temporaries, tables.values()):
                with tmp.open("w", encoding="utf-8", newline="") as fh:
                    csv_safe(table).to_csv(fh, index=False, quoting=csv.QUOTE_NONNUMERIC)  # text quoted: a CR stays in
                    fh.flush()
                    os.fsync(fh.fileno())
    except OSError as exc:
        raise OutputError(f"could not write the grades ({exc.strerror or exc}); nothing was replaced") from exc


def previous_grades(out: Path) -> pd.DataFrame:
    """The rows of an earlier grade sheet at `out` (none when there is none, or it is not one)."""
    try:
        table = pd.read_csv(out, keep_default_na=False, dtype={"student": str, "submission": str, "chapter": str})
    except (OSError, ValueError, pd.errors.ParserError):
        return pd.DataFrame(columns=GRADE_COLUMNS)
    if list(table.columns) != GRADE_COLUMNS or table["passed"].dtype != bool:
        return pd.DataFrame(columns=GRADE_COLUMNS)
    return csv_unsafe(table.astype({"message": str, "status": str, "fingerprint": str}))


class GradeSheet:
    """The grade sheet of one grading run: the rows kept from the previous sheet at `out` (those of a
    submission that is still there with the same fingerprint) and the rows graded since, written both
    tables at once after every submission."""

    def __init__(self, out: Path, fingerprints: dict[str, set[str]]) -> None:
        self.out = Path(out)
        earlier = previous_grades(self.out)
        if len(earlier) and fingerprints and not earlier["submission"].isin(list(fingerprints)).any():
            raise OutputError(
                f"--out {out} holds the grades of {earlier['submission'].nunique()} other notebook(s), none of "
                "them in this submissions folder (another class?): grading into it would drop them; give this "
                "folder its own --out (nothing was written)"
            )
        matches = [p in fingerprints.get(k, ()) for k, p in zip(earlier["submission"], earlier["fingerprint"])]
        same = pd.Series(matches, index=earlier.index, dtype=bool)
        whole = same.groupby(earlier["submission"]).transform("all") if len(earlier) else same
        self.rows = earlier[whole].reset_index(drop=True)
        self.kept = int(self.rows["submission"].nunique())

    def has(self, key: str) -> bool:
        """Whether the submission `key` keeps its grades from the previous sheet."""
        return bool((self.rows["submission"] == key).any())

    def grades(self) -> pd.DataFrame:
        """The grades table, ordered by submission and exercise."""
        return self.rows.sort_values(["submission", "exercise"], kind="stable").reset_index(drop=True)

    def summary(self) -> pd.DataFrame:
        return summarize(self.grades())

    def add(self, rows: list) -> None:
        """Add one submission's rows (dataclass rows of GRADE_COLUMNS) and write both tables at once."""
        new = pd.DataFrame([[getattr(row, c) for c in GRADE_COLUMNS] for row in rows], columns=GRADE_COLUMNS)
        self.rows = pd.concat([self.rows, new], ignore_index=True) if len(self.rows) else new
        self.write()

    def write(self) -> None:
        """Write the grades and their summary, both or neither."""
        grades = self.grades()
        write_tables({self.out: grades, summary_path(self.out): summarize(grades)})
