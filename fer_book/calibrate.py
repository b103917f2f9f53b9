"""Calibration: how fast this machine trains the paper's CNN, so timings from different machines compare.

    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python fer_book/calibrate.py [--out benchmarks/results/calibration.json]

Trains the paper's CNN (542,136 parameters at 180×180; fewer at 96×96, same layers) at 96×96×1 on
512 in-memory images with 8 classes, batch 32, Adam: one warm-up epoch, then `--epochs` timed epochs.
It prints and records the median training throughput in images/s with the CPU count and load
average. `make book` runs it before executing the notebooks and keeps the JSON beside the notebook
times, so a book time always comes with the speed of the machine that produced it (two 2-core
machines here differed 2.2× on the same notebooks).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

IMAGE_SIDE = 96
IMAGES = 512
BATCH = 32
CLASSES = 8


def throughput(epochs: int = 2, seed: int = 0) -> dict:
    """Median images/s over `epochs` timed training epochs of the paper CNN at 96×96 (after a warm-up)."""
    import keras

    from fer_utils.models.networks import build_paper_cnn

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (IMAGES, IMAGE_SIDE, IMAGE_SIDE, 1)).astype("float32")
    labels = rng.integers(0, CLASSES, IMAGES)
    model = build_paper_cnn(CLASSES, (IMAGE_SIDE, IMAGE_SIDE, 1))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(images, labels, batch_size=BATCH, epochs=1, verbose=0)  # warm-up: graph tracing, allocation
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.fit(images, labels, batch_size=BATCH, epochs=1, verbose=0)
        seconds.append(time.perf_counter() - start)
    rates = sorted(IMAGES / s for s in seconds)
    return {
        "images_per_s": round(rates[len(rates) // 2], 1),
        "epochs_images_per_s": [round(r, 1) for r in rates],
        "image_side": IMAGE_SIDE,
        "batch": BATCH,
        "images": IMAGES,
        "model": "paper-cnn",
    }


def main(argv: list[str] | None = None) -> int:
    """Measure, print one line, write the JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "calibration.json")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    record = {
        **throughput(args.epochs),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(
        f"calibration: paper CNN trains at {record['images_per_s']} images/s at 96x96 "
        f"({record['cpus']} CPUs, load {record['load_average'][0]:.1f}) -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
