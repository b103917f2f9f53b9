"""Benchmark: the model comparison table and tf.data-vs-memory training throughput.

    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/bench_models.py [--quick] [--crops DIR | --actors N]

Prints, for each compared model at the FER input 180×180×1 (8 classes): parameters, FLOPs per
image (2 × MACs, analytic), .keras size on disk, CPU latency at batch 1 and 64 (median of
`predict_on_batch`), and the parameter count at the model's canonical input (the paper's table).
Then the training throughput (images/s) of the paper's CNN on 180×180 face crops, fed by
`training.make_dataset` (cached, prefetched) vs by the same images as NumPy arrays (timed epochs
alternate between the two; median of each); target: within 10%. The crops are those of `--crops DIR` (a `preprocess` output folder with its manifest), else the
package makes them: the synthetic sample for `--actors` actors × 8 emotions × intensity 1
(`sample.generate_sample`, 1280×720), cropped by `preprocess.preprocess_dataset` with its defaults
(6 frames per clip, dlib HOG, 180×180). JSON goes to benchmarks/results/bench_models.json with the
machine's CPU count and load average. Numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def comparison(folder: Path, repeats: int) -> pd.DataFrame:
    """One row per model: params, GFLOPs, size, latency at batch 1 and 64, canonical params."""
    from fer_utils.deploy.tflite import keras_latency
    from fer_utils.models.networks import MODEL_BUILDERS, build_model, count_flops, count_params
    from fer_utils.registry import CANONICAL_INPUTS, PAPER_CLASSES, PAPER_INPUT_SHAPE

    rows, rng = [], np.random.default_rng(0)
    for name in MODEL_BUILDERS:
        model = build_model(name, PAPER_CLASSES, PAPER_INPUT_SHAPE)
        path = folder / f"{name}.keras"
        model.save(path)
        one = rng.uniform(0, 255, (1, *PAPER_INPUT_SHAPE)).astype("float32")
        many = rng.uniform(0, 255, (64, *PAPER_INPUT_SHAPE)).astype("float32")
        shape, classes = CANONICAL_INPUTS[name]
        rows.append(
            {
                "model": name,
                "params": count_params(model),
                "gflops": round(count_flops(model) / 1e9, 3),
                "size_mb": round(path.stat().st_size / 1e6, 2),
                "latency_b1_ms": round(1000 * keras_latency(model, one, repeats), 2),
                "latency_b64_ms": round(1000 * keras_latency(model, many, max(3, repeats // 10)), 1),
                "canonical": f"{'×'.join(map(str, shape))}, {classes} cl",
                "canonical_params": count_params(build_model(name, classes, shape)),
            }
        )
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def make_crops(folder: Path, actors: int) -> Path:
    """Crops made by the package: the synthetic sample for `actors` actors (8 emotions, intensity 1),
    preprocessed with the defaults (6 frames per clip, dlib HOG, 180×180); returns the crops folder."""
    from fer_utils.data.indexing import index_dataset
    from fer_utils.faces.preprocess import preprocess_dataset
    from fer_utils.faces.sample import generate_sample

    generate_sample(folder / "sample", actors=range(1, actors + 1), intensities=(1,), progress=False)
    clips = index_dataset("ravdess", folder / "sample").clips
    preprocess_dataset(clips, folder / "crops", progress=False)
    return folder / "crops"


def throughput(crops: Path, epochs: int, batch_size: int = 32) -> dict[str, float]:
    """Images/s training the paper's CNN (180×180) on the crops of `crops`, from the tf.data pipeline
    vs from the same images as NumPy arrays.

    Both models are warmed up (one untimed epoch: tracing, filling the tf.data cache), then timed
    epochs alternate between the two and each side reports its median, so that a change in the
    machine's load during the run hits both sides alike.
    """
    import keras

    from fer_utils.data.corpora import classes_in
    from fer_utils.data.manifest import load_manifest, usable_frames
    from fer_utils.models.networks import build_paper_cnn
    from fer_utils.registry import PAPER_IMAGE_SIZE
    from fer_utils.train.config import Feed
    from fer_utils.train.pipeline import class_indices, load_images, make_dataset

    frames = usable_frames(load_manifest(crops))
    classes = classes_in(frames)
    images, labels = load_images(frames, crops, PAPER_IMAGE_SIZE), class_indices(frames, classes)
    feeds = {
        "pipeline": {"x": make_dataset(frames, crops, classes, Feed(batch_size, shuffle=True))},
        "memory": {"x": images, "y": labels, "batch_size": batch_size, "shuffle": True},
    }
    models = {}
    for name, feed in feeds.items():
        keras.utils.set_random_seed(0)
        models[name] = build_paper_cnn(len(classes))
        models[name].compile("adam", "sparse_categorical_crossentropy")
        models[name].fit(epochs=1, verbose=0, **feed)  # warm-up, not timed
    rates: dict[str, list[float]] = {name: [] for name in feeds}
    for _ in range(epochs):
        for name, feed in feeds.items():
            start = time.perf_counter()
            models[name].fit(epochs=1, verbose=0, **feed)
            rates[name].append(len(frames) / (time.perf_counter() - start))
    pipeline, memory = float(np.median(rates["pipeline"])), float(np.median(rates["memory"]))
    return {
        "images": len(frames),
        "classes": len(classes),
        "image_size": [180, 180],
        "batch_size": batch_size,
        "epochs_timed": epochs,
        "pipeline_images_per_s": round(pipeline, 1),
        "memory_images_per_s": round(memory, 1),
        "pipeline_vs_memory": round(pipeline / memory, 3),
        "per_epoch_images_per_s": {name: [round(r, 1) for r in values] for name, values in rates.items()},
    }


def machine() -> dict:
    """CPU count, platform and load average: the numbers depend on them."""
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg": [round(x, 2) for x in os.getloadavg()]}


def save(out: Path, part: str, value: object, before: dict) -> None:
    """Store one part's result, with the machine before and after it, in the JSON at `out` (other parts kept)."""
    results = json.loads(out.read_text()) if out.is_file() else {}
    results[part] = value
    results.setdefault("machine", {})[part] = {**before, "load_avg_after": machine()["load_avg"]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


def main() -> None:
    """Run the benchmarks (both, or one with --part), print them and save JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and epochs")
    parser.add_argument(
        "--part",
        choices=("all", "comparison", "throughput"),
        default="all",
        help="run one part only; the other part's last results stay in the JSON",
    )
    parser.add_argument("--crops", type=Path, help="an existing crops folder (with manifest.csv) for the throughput")
    parser.add_argument("--actors", type=int, default=8, help="actors of the generated sample (without --crops)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_models.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.part in ("all", "comparison"):
            before = machine()
            table = comparison(Path(tmp), repeats=5 if args.quick else 20)
            print(table.to_string(index=False))
            save(args.out, "comparison", table.to_dict(orient="records"), before)
        if args.part in ("all", "throughput"):
            crops = args.crops or make_crops(Path(tmp), args.actors)
            before = machine()
            speed = throughput(crops, epochs=2 if args.quick else 8)
            speed["crops"] = (
                str(args.crops)
                if args.crops
                else (
                    f"generated: synthetic sample, actors 1-{args.actors} x 8 emotions x intensity 1, "
                    "preprocess defaults (6 frames/clip, dlib-hog, 180x180)"
                )
            )
            print(json.dumps(speed, indent=2))
            save(args.out, "throughput", speed, before)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
