"""Training throughput of the chapters' models on 2 CPU cores: which knobs make a run cheaper? (issue 16)

For each model, input side, batch size and XLA setting it trains on 800 in-memory random images (8
classes, Adam 1e-3): one warm-up epoch (graph tracing), then 3 timed epochs, and reports images/s. It
also times `model.save`, which the training loop's checkpoint calls whenever the validation loss
improves. Run it on an idle machine; `--side-by-side` starts two copies at once, as `make book` runs two
chapters at once.

    PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/train_throughput.py

Appends one JSON line per measurement to benchmarks/results/train_throughput.jsonl (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "train_throughput.jsonl"
IMAGES = 800
CLASSES = 8
TIMED_EPOCHS = 3
# (model, input side, batch size, XLA): the chapters' settings, and the knobs tried against them
CASES = (
    ("paper-cnn", 48, 32, False),
    ("paper-cnn", 32, 32, False),
    ("paper-cnn", 24, 32, False),
    ("paper-cnn", 32, 64, False),
    ("paper-cnn", 32, 32, True),
    ("mini-xception", 48, 32, False),
    ("mini-xception", 32, 32, False),
    ("mini-xception", 32, 64, False),
    ("mini-xception", 32, 32, True),
    ("mobilenet-inception", 48, 32, False),
    ("mobilenet-inception", 32, 32, False),
    ("mobilenet-inception", 32, 64, False),
    ("mobilenet-inception", 32, 32, True),
)


def measure(model_name: str, side: int, batch: int, jit: bool) -> dict:
    """Training images/s of one model and setting, and the time of one `model.save`."""
    import keras

    from fer_utils.models.networks import MODEL_BUILDERS

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (IMAGES, side, side, 1)).astype("float32")
    labels = rng.integers(0, CLASSES, IMAGES)
    model = MODEL_BUILDERS[model_name](num_classes=CLASSES, input_shape=(side, side, 1))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit,
    )
    model.fit(images, labels, batch_size=batch, epochs=1, verbose=0)  # warm-up
    start = time.perf_counter()
    model.fit(images, labels, batch_size=batch, epochs=TIMED_EPOCHS, verbose=0)
    seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        model.save(Path(folder) / "model.keras")
        save_ms = 1000 * (time.perf_counter() - start)
    return {
        "model": model_name,
        "side": side,
        "batch": batch,
        "xla": jit,
        "images_per_s": round(IMAGES * TIMED_EPOCHS / seconds),
        "save_ms": round(save_ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side-by-side", action="store_true", help="run two copies at once (as make book's 2 jobs)")
    parser.add_argument("--copy", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.side_by_side:
        command = [sys.executable, __file__, "--out", str(args.out)]
        copies = [subprocess.Popen([*command, "--copy", str(i)]) for i in (1, 2)]
        sys.exit(max(p.wait() for p in copies))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for case in CASES:
        row = {**measure(*case), "copy": args.copy, "load": [round(x, 2) for x in os.getloadavg()]}
        print(json.dumps(row), flush=True)
        with args.out.open("a") as handle:
            handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
