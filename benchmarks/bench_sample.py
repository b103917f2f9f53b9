"""Benchmark: generating the embedded synthetic sample (issue 3's "under a minute on 2 cores").

    .venv/bin/python benchmarks/bench_sample.py [--workers N ...] [--out benchmarks/results/sample.json]

Generates the default 384-clip sample into a temporary folder once per worker count and reports wall
time, clips/s and the size on disk, with the load average before each run (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from fer_utils.faces.sample import generate_sample, sample_size_bytes


def time_generation(workers: int) -> dict:
    """Generate the default sample with `workers` processes; return its timing and size."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        table = generate_sample(Path(tmp), workers=workers, progress=False)
        seconds = time.perf_counter() - start
        size = sample_size_bytes(Path(tmp))
    return {
        "workers": workers,
        "clips": len(table),
        "seconds": round(seconds, 1),
        "clips_per_s": round(len(table) / seconds, 1),
        "size_mb": round(size / 1e6, 1),
        "load_before": round(load, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "sample.json")
    args = parser.parse_args()
    rows = [time_generation(w) for w in args.workers]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cpus": os.cpu_count(), "runs": rows}, indent=2) + "\n")
    print(pd.DataFrame(rows).to_string(index=False))
    print(f"target: 384 clips in under 60 s on 2 cores; JSON in {args.out}")


if __name__ == "__main__":
    main()
