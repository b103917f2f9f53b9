"""The wild recipes chosen on real FER-2013 (issue 70): candidates trained on its training side, scored on PublicTest.

    PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/fer2013_recipe.py --crops CROPS \\
        --runs NAME:SEED [NAME:SEED ...] [--threads N] [--keep RUNS_FOLDER]

CROPS is FER-2013 as `preprocess --dataset folder --detector none --side 48` writes it from Kaggle's folders
(`train/`, and `validation/` = PublicTest, which the given split tests on when there is no `test/`). Every run
trains on the whole training side (no validation side carved out: the recipes keep their last epoch and never stop
early), then is scored on PublicTest with each test-time augmentation of registry.TTA_MODES. One JSON line per run
in fer_utils/assets/recipe_runs.jsonl (`--results`; the package ships it, chapter 7 reads it), written as
soon as it is scored: candidate, its TrainConfig changes and builder options, seed, epochs, threads, accuracy and
macro F1 per TTA mode, per-class F1, training seconds, the seconds of each epoch, and fer_book.calibrate's images/s
before and after the run, with the load average.

Every setting is chosen on PublicTest; FER-2013's PrivateTest side and CK+ are measured outside the project
(../shared/measurements/), never here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fer_utils.assets import recipe_runs_path  # noqa: E402  (the checkout's package, found through ROOT)

RESULTS = recipe_runs_path()  # shipped in the package: chapter 7 reads it
# Each candidate: (the preset it starts from, its TrainConfig changes, its builder's options beyond TrainConfig's).
CANDIDATES: dict[str, tuple[str, dict[str, object], dict[str, object]]] = {
    "recipe": ("wild", {}, {}),
    "width-1.5": ("wild", {"width": 1.5}, {}),
    # The 30-minute recipe: 1.4 times as wide (within 2 MB of float32 weights), 30 epochs. Its seed 0 is the package's
    # model, trained by `python -m fer_book pretrain` (the same run, scored here with --score).
    "wild-30": ("wild-30", {}, {}),
}


def calibration() -> dict:
    """fer_book.calibrate's images/s now (two timed epochs), with the load average."""
    from fer_book.calibrate import throughput

    return {"images_per_s": throughput(epochs=2)["images_per_s"], "load": [round(v, 2) for v in os.getloadavg()]}


def scores(run, crops: Path, mode: str) -> dict[str, object]:
    """Accuracy, macro F1 and per-class F1 of the run's model on its test side (PublicTest), over `mode`'s views."""
    from fer_utils.evaluate.metrics import evaluate_predictions, per_class_report, predicted_labels
    from fer_utils.train.config import Feed
    from fer_utils.train.fit import predict_batches
    from fer_utils.train.pipeline import make_dataset

    frames, _, classes = run.test_predictions()
    probabilities = predict_batches(run.load(), make_dataset(frames, crops, classes, Feed(cache=False)), mode)
    frame = evaluate_predictions(frames, probabilities, classes)["frame"]
    report = per_class_report(frames["emotion"], predicted_labels(probabilities, classes), classes)
    return {
        "accuracy": round(frame["accuracy"], 4),
        "macro_f1": round(frame["f1_macro"], 4),
        "f1": {name: round(float(row["f1-score"]), 4) for name, row in report.iterrows() if name in classes},
    }


def one_run(name: str, seed: int, crops: Path, out: Path, threads: int, epochs: int | None = None) -> dict:
    """Train candidate `name` at `seed` on the whole training side of `crops`, score it, return its JSON line."""
    import keras

    from fer_utils.faces.preprocess import folder_crop_spec
    from fer_utils.models.networks import build_wild_cnn
    from fer_utils.registry import TTA_MODES
    from fer_utils.train.config import TrainConfig
    from fer_utils.train.fit import train_run
    from fer_utils.train.pipeline import FaceData
    from fer_utils.train.runs import RunFolder

    preset, changes, options = CANDIDATES[name]
    changes = changes | ({"epochs": epochs} if epochs else {})
    # no validation side: the whole training side trains; a huge time budget only records each epoch's seconds
    side = folder_crop_spec(crops).side  # as `train` does: the crops' own side
    config = TrainConfig.preset(
        preset, seed=seed, image_size=(side, side), val_size=0.0, time_budget=10_000.0, **changes
    )
    if RunFolder(out).is_complete():  # a finished run (e.g. `fer_book pretrain`'s) is scored, not trained again
        run, before, after = RunFolder(out), None, None
    else:
        before = calibration()
        build = partial(build_wild_cnn, **options) if options else None
        run = train_run(build, FaceData(crops), config, out, verbose=0)
        after = calibration()
    metrics, budget = run.metrics(), {}
    if run.time_budget_file.is_file():  # a run without a budget (pretrain's) has no seconds per epoch
        budget = json.loads(run.time_budget_file.read_text(encoding="utf-8"))
    record = {
        "candidate": name,
        "preset": preset,
        "changes": changes,
        "options": options,
        "seed": seed,
        "epochs": metrics["epochs_run"],
        "threads": threads,
        "params": run.config()["params"],
        "train_size": run.config()["sizes"]["train"],
        "test_size": run.config()["sizes"]["test"],
        "tta": {mode: scores(run, crops, mode) for mode in TTA_MODES},
        "train_seconds": metrics["train_seconds"],
        "epoch_seconds": budget.get("epoch_seconds"),
        "calibration": {"before": before, "after": after},  # None: a finished run scored (its maker's record)
    }
    keras.backend.clear_session()
    return record


def speed(names: list[str], crops: Path, rounds: int = 2) -> list[dict]:
    """Seconds per epoch of each candidate on the whole training side of `crops`, taking turns epoch by epoch (a first
    round decodes and traces; the median of the next `rounds`) so that a change of load slows them alike; the
    calibration before and after."""
    from fer_utils.faces.preprocess import folder_crop_spec
    from fer_utils.models.networks import build_wild_cnn, count_flops
    from fer_utils.train.config import TrainConfig
    from fer_utils.train.fit import batches_per_epoch, compile_model, seed_everything
    from fer_utils.train.pipeline import FaceData

    data, side = FaceData(crops), folder_crop_spec(crops).side
    frames = data.frames()
    train = frames[frames["split"] == "train"]
    classes = sorted(train["emotion"].unique())
    before = calibration()
    built, seconds = {}, {name: [] for name in names}
    for name in names:
        preset, changes, options = CANDIDATES[name]
        config = TrainConfig.preset(preset, image_size=(side, side), **changes)
        seed_everything(0, config.deterministic)
        dataset = data.batches(train, classes, config, training=True)
        build = partial(build_wild_cnn, **options) if options else None
        built[name] = (compile_model(config, len(classes), build, batches_per_epoch(dataset)), dataset)
    for _ in range(rounds + 1):
        for name, (model, dataset) in built.items():
            start = time.perf_counter()
            model.fit(dataset, epochs=1, verbose=0)
            seconds[name].append(round(time.perf_counter() - start, 2))
    after = calibration()
    return [
        {
            "part": "speed",
            "candidate": name,
            "params": int(model.count_params()),
            "mflops": round(count_flops(model) / 1e6, 2),
            "train_size": len(train),
            "epoch_seconds": seconds[name],
            "seconds_per_epoch": float(sorted(seconds[name][1:])[len(seconds[name][1:]) // 2]),
            "calibration": {"before": before, "after": after},
        }
        for name, (model, _) in built.items()
    ]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crops", type=Path, required=True, help="FER-2013's crops (preprocess --out)")
    parser.add_argument("--runs", nargs="+", default=[], help=f"NAME:SEED, NAME one of {', '.join(CANDIDATES)}")
    parser.add_argument("--speed", nargs="+", default=[], choices=sorted(CANDIDATES), help="time these candidates")
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow's thread pools (0: its default)")
    parser.add_argument("--epochs", type=int, help="epochs of every run (default: each candidate's)")
    parser.add_argument(
        "--keep", type=Path, help="run folders NAME-SEED here, kept; a finished one is scored (default: temporary)"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"JSON lines appended (default {RESULTS})")
    args = parser.parse_args(argv)
    runs = []
    for item in args.runs:
        name, _, seed = item.partition(":")
        if name not in CANDIDATES or not seed.isdigit():
            parser.error(f"--runs {item}: give NAME:SEED with NAME one of {', '.join(CANDIDATES)}")
        runs.append((name, int(seed)))
    args.runs = runs
    return args


def main(argv: list[str] | None = None) -> int:
    """Train and score every run, appending one JSON line each as it is scored."""
    import tempfile

    args = parse(argv)
    if args.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    if args.speed:
        with args.results.open("a", encoding="utf-8") as results:
            for record in speed(args.speed, args.crops):
                results.write(json.dumps(record) + "\n")
                print(f"{record['candidate']}: {record['seconds_per_epoch']:.1f} s per epoch", flush=True)
    with tempfile.TemporaryDirectory(prefix="fer2013_recipe_") as scratch:
        folder = args.keep or Path(scratch)
        for name, seed in args.runs:
            start = time.perf_counter()
            record = one_run(name, seed, args.crops, folder / f"{name}-{seed}", args.threads, args.epochs)
            with args.results.open("a", encoding="utf-8") as results:
                results.write(json.dumps(record) + "\n")
            views = ", ".join(f"{mode} {v['accuracy']:.4f}" for mode, v in record["tta"].items())
            print(f"{name} seed {seed}: {views}; {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
