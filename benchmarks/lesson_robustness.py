"""Do the book's lessons hold on another machine? Each checked claim under two more float orders.

Same seed, same numbers holds on one machine only: another CPU or thread count rounds a training step
differently, and training amplifies it. This executes the chapters that check claims twice more and records
every claim's value and whether it holds in each execution:

- `default`: the book as `make book` executed it (`--default`, its stage folder: nothing is rerun);
- `seeds`: every seed parameter of a chapter (`SEED`, `SEEDS`, `RANDOM_SEEDS`) moved by `SEED_OFFSET`, a set
  disjoint from the default's, as many seeds as the chapter's default;
- `threads1`: the default seeds with TensorFlow's thread pools at 1 (`TF_NUM_INTRAOP_THREADS`,
  `TF_NUM_INTEROP_THREADS`): another order of float operations, as another CPU gives.

Each variant runs from an empty cache of its own, so nothing trained under another variant is reused.

    PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/lesson_robustness.py \
        --default _build/stage --work _build/robustness [--only 04 06] [--variants seeds threads1]

Writes benchmarks/results/lesson_robustness.json (or --out): per chapter and claim, the value and verdict in
each variant, the smallest margin over the threshold, and the calibration figure of the same run. The claims,
and the thresholds they are checked against, are those each executed chapter recorded (its hidden
`fer.check_claims` cell: `fer_utils.book.claims`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fer_book.execute import parameter_defaults  # noqa: E402
from fer_utils.book.claims import holds, margin  # noqa: E402
from fer_utils.book.results import read_results, results_file  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "lesson_robustness.json"
SEED_OFFSET = 100
SEED_PARAMETERS = ("SEED", "SEEDS", "RANDOM_SEEDS")
ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
VARIANTS = ("seeds", "threads1")


def measured(path: Path) -> dict | None:
    """The claims an executed chapter checked (its results record's first check: `measured` numbers and `claims`
    [op, threshold], by name); None when the chapter checked nothing or did not run."""
    if not path.is_file():
        return None
    checks = read_results(path)["checks"]
    return checks[0] if checks else None


def moved_seeds(chapter: str) -> list[str]:
    """`--param` arguments that move each seed parameter the chapter declares by SEED_OFFSET."""
    defaults = parameter_defaults(ROOT / "notebooks" / f"{chapter}.ipynb")
    params = []
    for name in SEED_PARAMETERS:
        value = defaults.get(name)
        if isinstance(value, int):
            params += ["--param", f"{name}={value + SEED_OFFSET}"]
        elif isinstance(value, list):
            params += ["--param", f"{name}={[seed + SEED_OFFSET for seed in value]!r}"]
    return params


def execute(chapter: str, variant: str, work: Path, timeout: int) -> tuple[Path, float]:
    """Execute `chapter` under `variant` into work/<variant>, from that variant's own cache."""
    stage = work / variant
    params = moved_seeds(chapter) if variant == "seeds" else []
    env = {**os.environ, "FER_CACHE": str(work / f"cache-{variant}"), **(ONE_THREAD if variant == "threads1" else {})}
    start = time.perf_counter()
    command = [sys.executable, "-m", "fer_book", "execute", "--out", str(stage), "--only", chapter[:2]]
    subprocess.run([*command, "--timeout", str(timeout), *params], cwd=ROOT, env=env, check=False)
    return results_file(stage, chapter), time.perf_counter() - start


def checking_chapters() -> list[str]:
    """The chapters that check claims on their run (a `check_claims` cell), by name."""
    return sorted(path.stem for path in (ROOT / "notebooks").glob("*.ipynb") if "check_claims(" in path.read_text())


def record(chapters: list[str], runs: dict[str, dict[str, dict | None]]) -> dict:
    """Per chapter and claim (as its executions recorded them): each variant's value and verdict, and the
    smallest margin over them."""
    out = {}
    for chapter in chapters:
        recorded = {variant: by_chapter[chapter] for variant, by_chapter in runs.items() if by_chapter.get(chapter)}
        names = dict.fromkeys(name for lesson in recorded.values() for name in lesson["claims"])
        claims = {}
        for name in names:
            seen, checked = {}, None
            for variant, lesson in recorded.items():
                if name not in lesson["claims"]:
                    continue
                op, threshold = lesson["claims"][name]
                value = float(lesson["measured"][name])
                checked = checked or f"{op} {threshold:g}"
                seen[variant] = {
                    "value": value,
                    "holds": holds(value, op, threshold),
                    "margin": margin(value, op, threshold),
                }
            claims[name] = {
                "checked as": checked,
                "variants": seen,
                "holds in all": bool(seen) and all(v["holds"] for v in seen.values()),
                "smallest margin": min((v["margin"] for v in seen.values() if v["margin"] is not None), default=None),
            }
        out[chapter] = claims
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--default", type=Path, default=ROOT / "_build" / "stage", help="make book's stage")
    parser.add_argument("--work", type=Path, default=ROOT / "_build" / "robustness")
    parser.add_argument("--only", nargs="+", default=None, help="chapter numbers (default: every chapter with claims)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    chapters = [c for c in checking_chapters() if args.only is None or c[:2] in args.only]
    from calibrate import throughput  # fer_book/calibrate.py, on the path below

    calibration = throughput()
    runs: dict[str, dict] = {"default": {c: measured(results_file(args.default, c)) for c in chapters}}
    seconds: dict[str, dict[str, float]] = {}

    def run_variant(variant: str) -> None:
        """Every chapter under `variant`, one after another (the variants run side by side)."""
        runs[variant], seconds[variant] = {}, {}
        for chapter in chapters:
            path, took = execute(chapter, variant, args.work, args.timeout)
            runs[variant][chapter], seconds[variant][chapter] = measured(path), round(took, 1)
            said = "FAILED" if runs[variant][chapter] is None else "recorded"
            print(f"{variant} {chapter}: {took:.0f} s, {said}", flush=True)

    with ThreadPoolExecutor(max_workers=len(args.variants)) as pool:
        list(pool.map(run_variant, args.variants))
    result = {
        "calibration": calibration,
        "seed_offset": SEED_OFFSET,
        "seconds": seconds,
        "claims": record(chapters, runs),
    }
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    previous.setdefault("runs", []).append(result)
    args.out.write_text(json.dumps(previous, indent=1) + "\n")
    for chapter, claims in result["claims"].items():
        for name, claim in claims.items():
            print(
                f"{'ok ' if claim['holds in all'] else 'NO '} {chapter} {name}: smallest margin {claim['smallest margin']}"
            )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "fer_book"))
    main()
