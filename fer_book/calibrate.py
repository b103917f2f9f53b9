"""Calibration: how fast this machine trains the paper's CNN, so timings from different machines compare.

`make book` runs `fer_book/calibrate.py [--out FILE] [--append]` before and after the notebooks (`--append` pools
both): a 2-core machine here switches between about 195 and 300 images/s for minutes.
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
    """Pooled throughput of equal-sized epochs run at `rates` (images/s): all images over all seconds."""
    return round(len(rates) / sum(1 / rate for rate in rates), 1)


def throughput(epochs: int = 6, seed: int = 0) -> dict:
    """Images/s training the paper CNN at 96×96 for `epochs` timed epochs: pooled and per epoch."""
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
    """`first` with the measurement `later` added under "measurements", its figure pooled."""
    measurements = [*first.get("measurements", [first]), later]
    epochs = [rate for m in measurements for rate in m["epochs_images_per_s"]]
    keep = ("images_per_s", "epochs_images_per_s", "load_average", "when")
    return {
        **first,
        "images_per_s": pooled_rate(epochs),
        "epochs_images_per_s": epochs,
        "measurements": [{k: m[k] for k in keep} for m in measurements],
    }


def append_record(path: Path, record: dict) -> None:
    """Add `record` as one JSON line to a benchmark's results file (`benchmarks/results/*.jsonl`), with its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


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
        record = pooled(json.loads(args.out.read_text(encoding="utf-8")), record)
        print(f"calibration: {record['images_per_s']} images/s over its {len(record['measurements'])} measurements")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
