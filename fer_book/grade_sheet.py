"""The grade sheet of `fer_book grade`: the grades table (one row per submission and exercise) and its
summary (`passed/total` per submission) beside it.

Both paths are checked before any work (`check_grade_outputs`), and the two files are written
atomically, both or neither (`write_tables`), every text cell a spreadsheet would read as a formula
prefixed with an apostrophe (`csv_safe`).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pandas as pd

from fer_utils.atomic import atomic_files
from fer_utils.errors import OutputError
from fer_utils.outputs import check_outputs

GRADE_COLUMNS = ["student", "submission", "chapter", "exercise", "passed", "status", "message"]
SUMMARY_COLUMNS = ["student", "submission", "chapter", "passed", "total"]
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")  # a CSV cell starting so is a formula in a spreadsheet


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


def csv_safe(table: pd.DataFrame) -> pd.DataFrame:
    """`table` with every text cell that a spreadsheet would read as a formula (= + - @, tab, CR) prefixed
    with an apostrophe."""

    def safe(value: object) -> object:
        return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) else value

    return table.apply(lambda column: column.map(safe) if column.dtype == object else column)


def write_tables(tables: dict[Path, pd.DataFrame]) -> None:
    """Write each table as CSV, both or neither (`fer_utils.atomic.atomic_files`): every table goes to a
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
