"""A class of 30 honest submissions of one chapter graded by `fer_book grade` (otter run in bubblewrap), timed.

    FER_CACHE=… .venv/bin/python benchmarks/class_of_30.py [--chapter 01] [--students 30]
        [--out benchmarks/results/class_of_30.json]

Makes the chapter's otter assignment (`fer_book assign`), writes `--students` submissions of its solution
notebook (each with a line of its own, so that no two are the same file and none keeps an earlier grade),
grades them all in one run of `grade_folder` in the sandbox, one after the other, and records the total
and per-notebook seconds, the statuses, and the calibration of this machine (`fer_book/calibrate.py`,
images/s) measured just before, so the time compares across machines. Heavy runs come from `FER_CACHE`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fer_book.assign import assign  # noqa: E402
from fer_book.calibrate import throughput  # noqa: E402
from fer_book.grade import grade_folder  # noqa: E402
from fer_book.grade_sandbox import Isolation  # noqa: E402

BUDGET_S = 30 * 60  # issue 55: a class of 30 in at most 30 minutes on 2 cores


def honest_class(solutions: dict, students: int, folder: Path) -> None:
    """`students` copies of the solution notebook, each with its own first line in its first answer cell."""
    folder.mkdir(parents=True)
    for number in range(students):
        notebook = json.loads(json.dumps(solutions))
        cell = next(c for c in notebook["cells"] if "otter_assign_solution_cell" in c["metadata"].get("tags", []))
        text = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        cell["source"] = f"# student {number:02d}\n{text}"
        (folder / f"student{number:02d}.ipynb").write_text(json.dumps(notebook))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapter", default="01")
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "class_of_30.json")
    args = parser.parse_args(argv)
    calibration = throughput()
    with tempfile.TemporaryDirectory(prefix="class-of-30-") as tmp:
        folder = Path(tmp)
        done = assign(folder / "assign", [args.chapter])[0]
        solutions = json.loads((done.autograder.parent / done.student.name).read_text())
        honest_class(solutions, args.students, folder / "submissions")
        seconds: list[float] = []
        last = time.monotonic()

        def progress(line: str) -> None:
            nonlocal last
            now = time.monotonic()
            if line.startswith("graded "):
                seconds.append(now - last)
                print(line, flush=True)
            last = now

        start = time.monotonic()
        grades, summary, _ = grade_folder(
            folder / "submissions", args.chapter, folder / "grades.csv", done.autograder, progress=progress
        )
        total = time.monotonic() - start
    record = {
        "chapter": done.chapter,
        "students": args.students,
        "isolation": Isolation.BWRAP.value,
        "total_seconds": round(total, 1),
        "seconds_per_notebook": {
            "median": round(statistics.median(seconds), 1),
            "min": round(min(seconds), 1),
            "max": round(max(seconds), 1),
        },
        "budget_seconds": BUDGET_S,
        "within_budget": total <= BUDGET_S,
        "statuses": grades["status"].value_counts().to_dict(),
        "full_marks": int((summary["passed"] == summary["total"]).sum()),
        "calibration": calibration,
        "cpus": os.cpu_count(),
        "load_average_after": list(os.getloadavg()),
        "machine": platform.machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k != "calibration"}, indent=1))
    return 0 if record["full_marks"] == args.students else 1


if __name__ == "__main__":
    raise SystemExit(main())
