"""Record the notebook execution times of a `make book` run, with its calibration figure.

`python -m fer_book.book_times [--stage _build/stage] [--out FILE]` merges the stage's times, calibration and
exercise seconds; the wall time is judged on the budget's machine. The record is a run of every cell, the
experiment exercises' too (what a reader runs): `make book EVERY_CELL=1` writes its stage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 900  # notebooks must execute within 15 minutes on the budget's 2-core machine (the README's budget)
BUDGET_IMAGES_PER_S = 500.0  # that machine's calibration (fer_book/calibrate.py)
BOOK_TIMES_RECORD = Path("benchmarks") / "results" / "book_times.json"
SLOW_IMAGES_PER_S = 165.0  # calibration of the slowest 2-core machine measured


def recorded_seconds(root: Path) -> dict[str, float]:
    """Each chapter's seconds in the repository's record, by notebook file name; empty without one."""
    path = root / BOOK_TIMES_RECORD
    return json.loads(path.read_text(encoding="utf-8")).get("seconds", {}) if path.is_file() else {}


def exercise_seconds(stage: Path) -> dict[str, dict[str, float]]:
    """How long each exercise of the stage's chapters runs from an empty cache, by notebook and number: its stub's
    and its solution's papermill durations (an experiment's stub trains its baseline), or, where more, the training
    seconds of the runs its checker judged (`EXERCISE_KEY`): a run the chapter trained before is cached there."""
    from fer_book.assign import exercise_cells, is_solution
    from fer_utils.book.exercises.feedback import EXERCISE_KEY

    def duration(cell: dict) -> float:
        return cell.get("metadata", {}).get("papermill", {}).get("duration") or 0.0

    found: dict[str, dict[str, float]] = {}
    for path in sorted((stage / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for number, stub in sorted(exercise_cells({"cells": cells}).items()):
            solution = next((c for c in cells[stub + 1 :] if c["cell_type"] == "code" and is_solution(c)), {})
            if "duration" not in solution.get("metadata", {}).get("papermill", {}):
                continue
            trained = [out.get("metadata", {}).get(EXERCISE_KEY, {}) for out in solution.get("outputs", [])]
            judged = max((record.get("train_seconds") or 0.0 for record in trained), default=0.0)
            found.setdefault(path.name, {})[str(number)] = round(
                max(duration(cells[stub]) + duration(solution), judged), 1
            )
    return found


def projected(wall_s: float, images_per_s: float, on_images_per_s: float) -> float:
    """The wall time on a machine calibrated at `on_images_per_s`: seconds × (this speed / that one)."""
    return wall_s * images_per_s / on_images_per_s


def main(argv: list[str] | None = None) -> int:
    """Merge, print and write the record; exit 1 when the projected wall time is over the budget."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", type=Path, default=ROOT / "_build" / "stage")
    parser.add_argument("--out", type=Path, default=ROOT / BOOK_TIMES_RECORD)
    args = parser.parse_args(argv)
    times = json.loads((args.stage / "execution_times.json").read_text(encoding="utf-8"))
    if not times.get("every_cell"):
        print(
            f"error: {args.stage} left the experiment exercises unrun, as `make book` does: the record is a run of "
            "every cell: `make book EVERY_CELL=1` (`python -m fer_book book --every-cell`)",
            file=sys.stderr,
        )
        return 2
    calibration = json.loads((args.stage / "calibration.json").read_text(encoding="utf-8"))
    wall = times.get("wall_seconds", times["total_seconds"])
    on_budget = round(projected(wall, calibration["images_per_s"], BUDGET_IMAGES_PER_S), 1)
    on_slow = round(projected(wall, calibration["images_per_s"], SLOW_IMAGES_PER_S), 1)
    record = {
        "seconds": times["seconds"],
        "total_seconds": times["total_seconds"],
        "wall_seconds": wall,
        "jobs": times.get("jobs", 1),
        "budget_seconds": BUDGET_S,
        "budget_machine_images_per_s": BUDGET_IMAGES_PER_S,
        "projected_wall_seconds_on_budget_machine": on_budget,
        "slow_machine_images_per_s": SLOW_IMAGES_PER_S,
        "projected_wall_seconds_on_slow_machine": on_slow,
        "parameters": times.get("parameters", {}),
        "exercise_seconds": exercise_seconds(args.stage),
        "calibration": calibration,
    }
    for name, seconds in times["seconds"].items():
        print(f"{name:40s} {seconds:7.1f} s")
    print(f"{'sum over chapters':40s} {times['total_seconds']:7.1f} s")
    print(
        f"{'wall':40s} {wall:7.1f} s with {record['jobs']} chapter(s) at a time (budget {BUDGET_S} s) on a machine "
        f"training the paper CNN at {calibration['images_per_s']} images/s (96x96, load "
        f"{calibration['load_average'][0]:.1f})"
    )
    print(f"{'wall on the budget machine':40s} {on_budget:7.1f} s projected at {BUDGET_IMAGES_PER_S:.0f} images/s")
    print(f"{'wall on the slowest machine seen':40s} {on_slow:7.1f} s projected at {SLOW_IMAGES_PER_S:.0f} images/s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return 0 if on_budget <= BUDGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
