"""Record the notebook execution times of a `make book` run, with its calibration figure.

    .venv/bin/python fer_book/book_times.py [--stage _build/stage] [--out benchmarks/results/book_times.json]

Reads `execution_times.json` (written by `book execute`) and `calibration.json` (written by
`fer_book/calibrate.py` at the start of `make book`) from the stage, prints one line per chapter and
the sum and the wall time (chapters may run side by side) with the machine's training throughput, and writes both into one JSON record, so that the
next change can be compared with this one on a machine of known speed.

The budget holds on the slower of the 2-core machines the book is built on: the wall time is scaled by
this machine's calibration over the slower one's (`SLOW_IMAGES_PER_S`), since the notebooks' time is
nearly all training, which is what the calibration measures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 900  # notebooks must execute within 15 minutes on the slower 2-core machine (the README's budget)
# The record of the last measured `make book` (per chapter seconds, wall time, calibration), in the repository.
BOOK_TIMES_RECORD = Path("benchmarks") / "results" / "book_times.json"
SLOW_IMAGES_PER_S = 165.0  # calibration of the slower 2-core machine measured (the faster one: about 510)


def recorded_seconds(root: Path) -> dict[str, float]:
    """Each chapter's seconds in the repository's record (`BOOK_TIMES_RECORD`), by notebook file name; empty
    when there is no record."""
    path = root / BOOK_TIMES_RECORD
    return json.loads(path.read_text()).get("seconds", {}) if path.is_file() else {}


def projected_on_slow_machine(wall_s: float, images_per_s: float) -> float:
    """The wall time scaled to the slower machine: seconds here × (this machine's speed / the slower one's)."""
    return wall_s * images_per_s / SLOW_IMAGES_PER_S


def main(argv: list[str] | None = None) -> int:
    """Merge, print and write the record; exit 1 when the wall time, projected on the slower machine, is over
    the budget."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", type=Path, default=ROOT / "_build" / "stage")
    parser.add_argument("--out", type=Path, default=ROOT / BOOK_TIMES_RECORD)
    args = parser.parse_args(argv)
    times = json.loads((args.stage / "execution_times.json").read_text())
    calibration = json.loads((args.stage / "calibration.json").read_text())
    wall = times.get("wall_seconds", times["total_seconds"])
    record = {
        "seconds": times["seconds"],
        "total_seconds": times["total_seconds"],
        "wall_seconds": wall,
        "jobs": times.get("jobs", 1),
        "budget_seconds": BUDGET_S,
        "slow_machine_images_per_s": SLOW_IMAGES_PER_S,
        "projected_wall_seconds_on_slow_machine": round(
            projected_on_slow_machine(wall, calibration["images_per_s"]), 1
        ),
        "parameters": times.get("parameters", {}),
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
    projected = record["projected_wall_seconds_on_slow_machine"]
    print(f"{'wall on the slower machine':40s} {projected:7.1f} s projected at {SLOW_IMAGES_PER_S:.0f} images/s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 0 if projected <= BUDGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
