"""Same seed, same numbers? What makes two runs of one chapter differ, and what determinism costs (issue 34).

Trains one of chapter 7's two models with chapter 7's quick defaults (8 actors of the synthetic sample,
32×32, batch 32, Adam 1e-3, random split, seed 0) for a fixed number of epochs through `train.fit.train_run`
(the chapters' code path), each configuration in a fresh process (op determinism cannot be switched off
once on), and records per configuration: the exact per-epoch losses, a SHA-256 of the final weights, the
test accuracy and the seconds per epoch after the first. The configurations change one thing each:

- `default`: the book's (op determinism on, hence no XLA); run twice, it shows run-to-run reproducibility;
- `isa-avx2`: oneDNN's kernels capped at AVX2 (`ONEDNN_MAX_CPU_ISA`), what a machine without AVX-512 runs;
  `isa-avx512-core`: capped at the first AVX-512 level (no VNNI, no bfloat16, no AMX);
- `threads-1`, `threads-4`: another number of intra-op threads, what a machine with other cores runs;
- `onednn-off`: TensorFlow's own (Eigen) kernels instead of oneDNN's (`TF_ENABLE_ONEDNN_OPTS=0`), and
  `onednn-off-avx2` beside it;
- `nondeterministic`: op determinism off (Keras then compiles with XLA: `jit_compile="auto"`), run twice;
- `nondeterministic-no-xla`: op determinism off, XLA off, run twice.

    PYTHONPATH=$PWD FER_CACHE=$PWD/_cache .venv/bin/python benchmarks/determinism.py --epochs 10

Appends one JSON line per model to benchmarks/results/determinism.jsonl (or --out), with the calibration
figure of the same run (fer_book/calibrate.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "determinism.jsonl"
# name: (environment variables, intra-op threads or 0 for TensorFlow's default, op determinism, XLA)
CONFIGS: dict[str, tuple[dict[str, str], int, bool, bool]] = {
    "default": ({}, 0, True, False),
    "default-again": ({}, 0, True, False),
    "isa-avx2": ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, 0, True, False),
    "isa-avx512-core": ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, 0, True, False),
    "threads-1": ({}, 1, True, False),
    "threads-4": ({}, 4, True, False),
    "onednn-off": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, 0, True, False),
    "onednn-off-avx2": ({"TF_ENABLE_ONEDNN_OPTS": "0", "ONEDNN_MAX_CPU_ISA": "AVX2"}, 0, True, False),
    "nondeterministic": ({}, 0, False, True),
    "nondeterministic-again": ({}, 0, False, True),
    "nondeterministic-no-xla": ({}, 0, False, False),
    "nondeterministic-no-xla-again": ({}, 0, False, False),
}


def one_run(model_name: str, epochs: int, threads: int, deterministic: bool, xla: bool) -> dict:
    """Train `model_name` once with chapter 7's quick defaults in this process; the record of that run."""
    import keras
    import numpy as np
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    from fer_utils.book.artifacts import Dataset
    from fer_utils.book.chapters import clamp_subjects
    from fer_utils.train.config import TrainConfig
    from fer_utils.train.fit import compile_model, run_callbacks, train_run
    from fer_utils.train.pipeline import FaceData

    crops = Dataset("sample").crops()
    data = FaceData(crops, subjects=clamp_subjects(FaceData(crops).frames(), 8))
    frames = data.frames()
    config = TrainConfig(
        model=model_name,
        epochs=epochs,
        patience=epochs,
        learning_rate=1e-3,
        batch_size=32,
        seed=0,
        protocol="random",
        image_size=(32, 32),
        deterministic=deterministic,
    )
    ends: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            ends.append(time.perf_counter())

    weights: list[str] = []

    def fit(config, train, val, num_classes, run, strategy, verbose, build, class_weight, train_eval=None):
        model = compile_model(config, num_classes, build)
        model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=xla,
        )
        callbacks = [*run_callbacks(run, "val_loss", config.patience, train_eval=train_eval), Clock()]
        start = time.perf_counter()
        ends.append(start)
        history = model.fit(train, validation_data=val, epochs=config.epochs, callbacks=callbacks, verbose=0)
        digest = hashlib.sha256()
        for array in model.get_weights():
            digest.update(np.ascontiguousarray(array).tobytes())
        weights.append(digest.hexdigest())
        model.save(run.model_file)
        import pandas as pd

        return model, pd.DataFrame(history.history).rename_axis("epoch").reset_index()

    with tempfile.TemporaryDirectory() as folder:
        run = train_run(None, data, config, Path(folder) / "run", verbose=0, fit=fit)
        history, metrics = run.history(), run.metrics()
    epoch_seconds = [b - a for a, b in zip(ends, ends[1:])]
    return {
        "loss": [float(v) for v in history["loss"]],
        "val_loss": [float(v) for v in history["val_loss"]],
        "weights_sha256": weights[0][:16],
        "test_accuracy": metrics["test"]["frame"]["accuracy"],
        "best_epoch": metrics["best_epoch"],  # counted from 1
        "first_epoch_s": round(epoch_seconds[0], 2),
        "epoch_s": round(float(np.median(epoch_seconds[1:])), 3),
        "frames": len(frames),
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0",
        "isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "default"),
        "threads": threads or "default",
        "deterministic": deterministic,
        "xla": xla,
    }


def first_difference(a: list[float], b: list[float]) -> int | None:
    """The first epoch at which two loss curves differ in any bit, or None when they are identical."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None if len(a) == len(b) else min(len(a), len(b)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="paper-cnn,mini-xception")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        _, threads, deterministic, xla = CONFIGS[args.one[1]]
        print(json.dumps(one_run(args.one[0], args.epochs, threads, deterministic, xla)))
        return
    with tempfile.TemporaryDirectory() as folder:
        record_file = Path(folder) / "calibration.json"
        subprocess.run([sys.executable, str(ROOT / "fer_book" / "calibrate.py"), "--out", str(record_file)], check=True)
        calibration = json.loads(record_file.read_text())
    for model_name in args.models.split(","):
        runs = {}
        for name in args.configs.split(","):
            env = {**os.environ, **CONFIGS[name][0]}
            command = [sys.executable, __file__, "--epochs", str(args.epochs), "--one", model_name, name]
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"{model_name} {name} failed:\n{done.stderr[-3000:]}")
            runs[name] = json.loads(done.stdout.strip().splitlines()[-1])
            base = runs.get("default", runs[name])
            print(
                f"{model_name:14} {name:24} weights {runs[name]['weights_sha256']} test {runs[name]['test_accuracy']:.4f} "
                f"{runs[name]['epoch_s']:.3f} s/epoch, first epoch {runs[name]['first_epoch_s']} s; "
                f"first differing epoch vs default: {first_difference(base['loss'], runs[name]['loss'])}",
                flush=True,
            )
        record = {
            "model": model_name,
            "epochs": args.epochs,
            "calibration_images_per_s": calibration.get("images_per_s"),
            "load": os.getloadavg(),
            "runs": runs,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
