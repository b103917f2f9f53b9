"""What isolating each submission costs `fer_book grade`, in seconds per notebook.

    /work/heavy .venv/bin/python benchmarks/grade_isolation.py [--copies 3] [--out benchmarks/results/grade_isolation.json]

Grades `--copies` honest submissions of two chapters, each way: a one-cell-per-exercise tiny chapter
(what the machinery alone costs: Python, a kernel, the checker's process) and chapter 1 (about 5 s of
its own), once in bubblewrap's sandboxes and once with `--unsafe-no-sandbox` (the same processes without
namespaces). The first notebook of a chapter also pays for the grader's own run of the chapter (the
reference), so it is reported apart from the median of the others. `plain` is one run of the same
notebook in a kernel with no grading at all. The calibration (images/s, `calibrate.py`) of the same
run is recorded beside the times.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fer_book.calibrate import throughput  # noqa: E402


def tiny_chapter(first: str = "answer = None", second: str = "answer2 = None") -> dict:
    """A chapter of two exercises answered with `exercises.check_number` (3 and 4)."""

    def cell(kind: str, source: str, *tags: str) -> dict:
        extra = {"outputs": [], "execution_count": None} if kind == "code" else {}
        return {"cell_type": kind, "metadata": {"tags": list(tags)} if tags else {}, "source": source, **extra}

    cells = [
        cell("markdown", "# 1. A tiny chapter"),
        cell("code", "from fer_utils.book import exercises"),
        cell("markdown", "### Exercise 1"),
        cell("code", first + '\nexercises.check_number(answer, 3, "three")'),
        cell("markdown", "### Exercise 2"),
        cell("code", second + '\nexercises.check_number(answer2, 4, "four")'),
    ]
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return {"cells": cells, "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5}


def chapter_one() -> tuple[Path, dict]:
    """The book's root and chapter 1's student edition with its solutions filled in."""
    from test_grade import answered, solutions

    from fer_book.student import strip_solutions

    original = json.loads((ROOT / "notebooks" / "01_dataset_tour.ipynb").read_text())
    return ROOT, answered(strip_solutions(original), solutions(original))


def grade_times(root: Path, notebook: dict, copies: int, isolation: object, folder: Path) -> dict:
    """Seconds of each graded copy of `notebook` (the first one includes the chapter's reference run)."""
    from fer_book.grade import grade_folder

    subs = folder / f"subs-{isolation.value}"  # type: ignore[attr-defined]
    subs.mkdir()
    for i in range(copies):
        (subs / f"student{i}.ipynb").write_text(json.dumps(notebook))
    lines: list[str] = []
    start = time.perf_counter()
    grades, _, _ = grade_folder(
        subs, folder / f"grades-{isolation.value}.csv", root=root, isolation=isolation, progress=lines.append
    )  # type: ignore[attr-defined]
    total = time.perf_counter() - start
    assert grades["passed"].all(), grades[["submission", "status", "message"]]
    seconds = [float(line.rsplit(" in ", 1)[1].removesuffix(" s")) for line in lines]
    return {"total_s": round(total, 2), "first_s": seconds[0], "median_other_s": statistics.median(seconds[1:])}


def plain_time(notebook: dict, folder: Path) -> float:
    """Seconds to run `notebook` once in a fresh kernel, nothing graded."""
    from fer_book.grade_runner import execute_notebook

    start = time.perf_counter()
    _, stop = execute_notebook(notebook, 600, folder)
    assert stop is None, stop
    return round(time.perf_counter() - start, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "grade_isolation.json")
    args = parser.parse_args()
    from fer_book.grade_sandbox import Isolation

    record: dict = {"calibration": throughput(), "copies": args.copies, "chapters": {}}
    with tempfile.TemporaryDirectory(prefix="fer-bench-grade-") as tmp:
        tiny_root = Path(tmp) / "tiny"
        (tiny_root / "nb").mkdir(parents=True)
        (tiny_root / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: nb/01_tiny\n")
        (tiny_root / "nb" / "01_tiny.ipynb").write_text(json.dumps(tiny_chapter()))
        cases = {"tiny": (tiny_root, tiny_chapter("answer = 3", "answer2 = 4")), "01_dataset_tour": chapter_one()}
        for name, (root, notebook) in cases.items():
            folder = Path(tmp) / f"work-{name}"  # beside the tiny book's own folder, not in it
            folder.mkdir()
            row = {"plain_s": plain_time(notebook, folder)}
            for isolation in (Isolation.BWRAP, Isolation.NONE):
                row[isolation.value] = grade_times(root, notebook, args.copies, isolation, folder)
                print(name, isolation.value, row[isolation.value], flush=True)
            row["isolation_per_notebook_s"] = round(row["bwrap"]["median_other_s"] - row["none"]["median_other_s"], 2)
            record["chapters"][name] = row
    record["calibration_after"] = throughput()
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
