"""Calibration: how fast this machine trains the paper's CNN, so timings from different machines compare.

    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python fer_book/calibrate.py [--out FILE] [--append]

Trains the paper's CNN (542,136 parameters at 180×180; fewer at 96×96, same layers) at 96×96×1 on
512 in-memory images with 8 classes, batch 32, Adam: one warm-up epoch, then `--epochs` timed epochs.
It records the throughput in images/s (all the timed images over all their seconds) with the CPU
count and load average. `make book` runs it before executing the notebooks and again after them
(`--append`: the record then holds both measurements, and its figure is their pooled throughput),
and keeps the JSON beside the notebook times, so a book time comes with the speed of the machine
while it ran. Measured: a 2-core machine here switches between about 195 and 300 images/s from one
epoch to the next, for minutes at a time, so a single measurement of two seconds before a
25-minute run said 280 in one fresh clone and 424 in the next, with nearly the same notebook times.
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


def pooled_rate(rates: list[float]) -> float:
    """The throughput of epochs of equal size run at `rates` (images/s) together: all their images over all
    their seconds."""
    return round(len(rates) / sum(1 / rate for rate in rates), 1)


def throughput(epochs: int = 6, seed: int = 0) -> dict:
    """Images/s over `epochs` timed training epochs of the paper CNN at 96×96 (after a warm-up): all their
    images over all their seconds, and each epoch's."""
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
    return {
        "images_per_s": pooled_rate([IMAGES / s for s in seconds]),
        "epochs_images_per_s": [round(IMAGES / s, 1) for s in seconds],
        "image_side": IMAGE_SIDE,
        "batch": BATCH,
        "images": IMAGES,
        "model": "paper-cnn",
    }


def pooled(first: dict, later: dict) -> dict:
    """The record `first` with the measurement `later` added: both kept under "measurements", and its
    figure the throughput of all their timed epochs together (images over seconds)."""
    measurements = [*first.get("measurements", [first]), later]
    epochs = [rate for m in measurements for rate in m["epochs_images_per_s"]]
    keep = ("images_per_s", "epochs_images_per_s", "load_average", "when")
    return {
        **first,
        "images_per_s": pooled_rate(epochs),
        "epochs_images_per_s": epochs,
        "measurements": [{k: m[k] for k in keep} for m in measurements],
    }


def main(argv: list[str] | None = None) -> int:
    """Measure, print one line, write the JSON record (or add to it: `--append`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "calibration.json")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--append", action="store_true", help="add this measurement to the record in --out")
    args = parser.parse_args(argv)
    record = {
        **throughput(args.epochs),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(
        f"calibration: paper CNN trains at {record['images_per_s']} images/s at 96x96 "
        f"({record['cpus']} CPUs, load {record['load_average'][0]:.1f})"
    )
    if args.append and args.out.is_file():
        record = pooled(json.loads(args.out.read_text()), record)
        print(f"calibration: {record['images_per_s']} images/s over its {len(record['measurements'])} measurements")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
