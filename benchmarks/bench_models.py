"""Benchmark: the model comparison table and tf.data-vs-memory training throughput.

    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/bench_models.py [--quick]

Prints, for each compared model at the FER input 180×180×1 (8 classes): parameters, FLOPs per
image (2 × MACs, analytic), .keras size on disk, CPU latency at batch 1 and 64 (median of
`predict_on_batch`), and the parameter count at the model's canonical input (the paper's table).
Then the training throughput (images/s) of the paper's CNN fed by `training.make_dataset` (cached,
prefetched) vs by the same images as NumPy arrays; target: within 10%. JSON goes to
benchmarks/results/bench_models.json. Numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def comparison(folder: Path, repeats: int) -> pd.DataFrame:
    """One row per model: params, GFLOPs, size, latency at batch 1 and 64, canonical params."""
    from fer_utils.deploy import keras_latency
    from fer_utils.models import CANONICAL_INPUTS, MODEL_BUILDERS, build_model, count_flops, count_params

    rows, rng = [], np.random.default_rng(0)
    for name in MODEL_BUILDERS:
        model = build_model(name, 8, (180, 180, 1))
        path = folder / f"{name}.keras"
        model.save(path)
        one = rng.uniform(0, 255, (1, 180, 180, 1)).astype("float32")
        many = rng.uniform(0, 255, (64, 180, 180, 1)).astype("float32")
        shape, classes = CANONICAL_INPUTS[name]
        rows.append({
            "model": name, "params": count_params(model), "gflops": round(count_flops(model) / 1e9, 3),
            "size_mb": round(path.stat().st_size / 1e6, 2),
            "latency_b1_ms": round(1000 * keras_latency(model, one, repeats), 2),
            "latency_b64_ms": round(1000 * keras_latency(model, many, max(3, repeats // 10)), 1),
            "canonical": f"{'×'.join(map(str, shape))}, {classes} cl",
            "canonical_params": count_params(build_model(name, classes, shape)),
        })
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def throughput(folder: Path, epochs: int) -> dict[str, float]:
    """Images/s training the paper's CNN (180×180) from the tf.data pipeline vs from NumPy arrays."""
    import keras

    from test_training import make_toy_crops
    from fer_utils.training import class_indices, load_images, make_dataset, usable_frames

    frames = usable_frames(make_toy_crops(folder / "crops", size=180, frames_per_clip=6))
    classes = ["neutral", "happy", "sad"]
    images, labels = load_images(frames, folder / "crops", (180, 180)), class_indices(frames, classes)

    def images_per_second(fit_data: dict) -> float:
        from fer_utils.models import build_paper_cnn

        keras.utils.set_random_seed(0)
        model = build_paper_cnn(3)
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(epochs=1, verbose=0, **fit_data)  # warm-up: tracing and (for tf.data) filling the cache
        start = time.perf_counter()
        model.fit(epochs=epochs, verbose=0, **fit_data)
        return epochs * len(frames) / (time.perf_counter() - start)

    ds = make_dataset(frames, folder / "crops", classes, batch_size=32, shuffle=True)
    pipeline = images_per_second({"x": ds})
    memory = images_per_second({"x": images, "y": labels, "batch_size": 32, "shuffle": True})
    return {"images": len(frames), "pipeline_images_per_s": round(pipeline, 1),
            "memory_images_per_s": round(memory, 1), "pipeline_vs_memory": round(pipeline / memory, 3)}


def main() -> None:
    """Run both benchmarks, print them and save JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and epochs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        table = comparison(Path(tmp), repeats=5 if args.quick else 20)
        print(table.to_string(index=False))
        speed = throughput(Path(tmp), epochs=2 if args.quick else 4)
        print(json.dumps(speed, indent=2))
    out = ROOT / "benchmarks" / "results" / "bench_models.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"comparison": table.to_dict(orient="records"), "throughput": speed}, indent=2))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
