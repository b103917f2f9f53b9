"""Inference latency per frame on the CPU: eager Keras, Keras's predict_on_batch, a tf.function, the same
function compiled by XLA, and LiteRT's TFLite float32 / float16 / int8 (issue 36, item 2).

    PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/xla_latency.py [--repeats 50] [--summary]

For each model at the size the book uses it (the paper's CNN at the reference run's 32 px and at the
published 180 px; mini-Xception at its 48 px), untrained (latency does not depend on the weights' values),
at batch 1 and 32: the median seconds of `--repeats` calls after 3 warm-up calls, per call and per frame,
and what each path costs once before its first answer (tracing a tf.function, tracing + compiling with
XLA, converting to TFLite; int8 calibrated on 256 of the shipped generated faces). TFLite runs with
`--threads` threads (default 2, the cores of the book's CI machine). It also checks that every path gives
the eager model's probabilities (largest absolute difference). `fer_book/calibrate.py`'s figure is
measured in the same process, with the load average before and after; one JSON line per row in
results/xla_latency.jsonl.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = Path(__file__).parent / "results" / "xla_latency.jsonl"
CLASSES = 8
# (model, side, why this size)
CASES = (
    ("paper-cnn", 32, "the book's reference run"),
    ("mini-xception", 48, "the peer's size"),
    ("paper-cnn", 180, "as published"),
)
BATCHES = (1, 32)


def timed(call) -> tuple[object, float]:
    """(result, seconds) of one call."""
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


def tflite_models(model, side: int) -> tuple[dict[str, bytes], dict[str, float]]:
    """The model's TFLite flatbuffers by mode and the seconds each conversion took (int8: calibrated on
    the shipped generated faces)."""
    from fer_utils.deploy.tflite import representative_faces, to_tflite

    blobs, seconds = {}, {}
    for mode in ("float32", "float16", "int8"):
        representative = representative_faces(side, side) if mode == "int8" else None
        with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints the graph's signature
            start = time.perf_counter()
            blobs[mode] = to_tflite(model, mode, representative)
            seconds[f"tflite {mode}"] = time.perf_counter() - start
    return blobs, seconds


def paths_for(model, images: np.ndarray, blobs: dict[str, bytes], threads: int) -> tuple[dict, dict, dict]:
    """(call per path, seconds of its first call, its probabilities) on `images`: eager Keras, Keras's
    predict_on_batch, a tf.function, XLA, and a LiteRT interpreter per TFLite model."""
    from fer_utils.deploy.tflite import compiled_predictor, tflite_interpreter, tflite_predict

    xla, graph = compiled_predictor(model, xla=True), compiled_predictor(model, xla=False)
    interpreters = {f"tflite {mode}": tflite_interpreter(blob, num_threads=threads) for mode, blob in blobs.items()}
    calls = {
        "eager": lambda: model(images, training=False).numpy(),
        "predict_on_batch": lambda: np.asarray(model.predict_on_batch(images)),
        "tf.function": lambda: graph(images),
        "xla": lambda: xla(images),
    }
    first, outputs = {}, {}
    for path, call in calls.items():
        outputs[path], first[path] = timed(call)
    for path, interpreter in interpreters.items():  # sized to the batch and fed once; invoke() reruns it
        outputs[path] = tflite_predict(interpreter, images, batch_size=len(images))
        calls[path] = interpreter.invoke
    return calls, first, outputs


def measure_case(name: str, side: int, repeats: int, threads: int) -> list[dict]:
    """One row per path and batch for model `name` at `side` px."""
    import keras

    from fer_utils.deploy.tflite import median_seconds
    from fer_utils.models.networks import build_model, count_flops

    keras.utils.set_random_seed(0)
    model = build_model(name, CLASSES, (side, side, 1))
    flops = count_flops(model)
    blobs, convert = tflite_models(model, side)
    rows = []
    rng = np.random.default_rng(0)
    for batch in BATCHES:
        images = rng.integers(0, 256, (batch, side, side, 1)).astype("float32")
        calls, first, outputs = paths_for(model, images, blobs, threads)
        for path, call in calls.items():
            seconds = median_seconds(call, repeats=repeats)
            rows.append(
                {
                    "model": name,
                    "side": side,
                    "batch": batch,
                    "path": path,
                    "ms_per_call": round(1000 * seconds, 3),
                    "ms_per_frame": round(1000 * seconds / batch, 3),
                    "first_call_s": round(first.get(path, 0.0), 3),
                    "convert_s": round(convert.get(path, 0.0), 3),
                    "max_abs_diff_vs_eager": float(np.abs(outputs[path] - outputs["eager"]).max()),
                    "gflops_per_frame": round(flops / 1e9, 4),
                    "tflite_bytes": len(blobs[path.split()[1]]) if path.startswith("tflite") else None,
                }
            )
            print(json.dumps(rows[-1]))
    return rows


def summary(path: Path = RESULTS) -> str:
    """The last run's records as a markdown table: ms per frame at batch 1 and 32 for each model and path,
    what the path costs once (first call or conversion), and the calibration of that run."""
    import pandas as pd

    records = pd.read_json(path, lines=True)
    records = records[records["when"] == records["when"].max()]
    table = records.pivot_table(index=["model", "side", "path"], columns="batch", values="ms_per_frame", sort=False)
    once = records.groupby(["model", "side", "path"], sort=False)[["first_call_s", "convert_s"]].max().sum(axis=1)
    lines = ["| model, side | path | ms/frame, batch 1 | ms/frame, batch 32 | once (s) |", "|---|---|---|---|---|"]
    for (model, side, path), row in table.iterrows():
        lines.append(
            f"| {model}, {side} px | {path} | {row[1]:.2f} | {row[32]:.3f} | {once[(model, side, path)]:.2f} |"
        )
    first = records.iloc[0]
    lines.append(
        f"\ncalibration {first['calibration_images_per_s']} images/s; load {first['load_before'][0]:.1f} before, "
        f"{first['load_after'][0]:.1f} after; {first['when']}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Calibrate, measure every case, print and append the records."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2, help="TFLite interpreter threads")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--summary", action="store_true", help="print the last run's table and stop")
    args = parser.parse_args(argv)
    if args.summary:
        print(summary(args.out))
        return 0
    import tensorflow as tf

    from fer_book.calibrate import throughput

    load_before = list(os.getloadavg())
    calibration = throughput()["images_per_s"]
    print(f"calibration: {calibration} images/s (load {load_before[0]:.1f})")
    stamp = {
        "calibration_images_per_s": calibration,
        "load_before": load_before,
        "cpus": os.cpu_count(),
        "tf_threads": [tf.config.threading.get_intra_op_parallelism_threads(), os.cpu_count()],
        "tflite_threads": args.threads,
        "repeats": args.repeats,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    rows = []
    for name, side, why in CASES:
        rows += [{**row, "why": why} for row in measure_case(name, side, args.repeats, args.threads)]
    load_after = list(os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as out:
        for row in rows:
            out.write(json.dumps({**row, **stamp, "load_after": load_after}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
