"""What the training epochs of the book's reference run cost, where its crops are resized.

    PYTHONPATH=$PWD FER_CACHE=$PWD/_cache TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/resize_cost.py \
        --label before [--epochs 6] [--out benchmarks/results/resize_cost.jsonl]

Trains the reference configuration (`TrainConfig.preset("reference")`: the paper's CNN at 32×32, Adam 1e-3) on
the sample's 180×180 crops through the package's own run (`train.fit.train_run`, random split, seed 0) for
exactly `--epochs` epochs (early stopping off), and records the seconds of every epoch (a Keras callback
added to the run's own): the first also decodes the PNGs into the in-memory cache and traces the graph, the
later ones read the cache. Beside it, `calibrate.py`'s figure measured in the same process and the load
average. One JSON line per call in results/resize_cost.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

RESULTS = Path(__file__).parent / "results" / "resize_cost.jsonl"


def epoch_seconds(epochs: int) -> tuple[list[float], dict]:
    """Seconds of each of `epochs` epochs of the reference configuration on the sample, and the run's sizes."""
    import keras

    import fer_utils.train.fit as training
    from fer_utils.book import artifacts
    from fer_utils.train.config import TrainConfig
    from fer_utils.train.pipeline import FaceData

    seconds: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            seconds.append(time.perf_counter() - self.start)

    run_callbacks = training.run_callbacks
    training.run_callbacks = lambda *args, **kwargs: [*run_callbacks(*args, **kwargs), Timer()]
    crops = artifacts.Dataset().crops()
    config = replace(TrainConfig.preset("reference"), epochs=epochs, patience=epochs)
    with tempfile.TemporaryDirectory() as folder:
        run = training.train(None, FaceData(crops), config, Path(folder) / "run", verbose=0)
        sizes = run.config()["sizes"]
        model_input = list(run.load().input_shape[1:])
    training.run_callbacks = run_callbacks
    return seconds, {**sizes, "model_input": model_input}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="what this measurement is, e.g. before or after")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from fer_book.calibrate import append_record, throughput

    calibration = throughput()["images_per_s"]
    seconds, sizes = epoch_seconds(args.epochs)
    cached = sorted(seconds[1:])
    record = {
        "label": args.label,
        "time": time.strftime("%Y-%m-%d %H:%M"),
        "epochs": args.epochs,
        "epoch_seconds": [round(s, 2) for s in seconds],
        "first_epoch_s": round(seconds[0], 2),
        "median_cached_epoch_s": round(cached[len(cached) // 2], 2),
        "train_images_per_s": round(sizes["train"] / cached[len(cached) // 2], 1),
        **sizes,
        "calibration_images_per_s": calibration,
        "calibration_after_images_per_s": throughput()["images_per_s"],
        "load_average": list(os.getloadavg()),
    }
    print(json.dumps(record, indent=1))
    append_record(args.out, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
