"""The wild recipe's options for generalisation, side by side, on any crops folder a reader brings (issue 58).

    PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/wild_options.py --crops CROPS \\
        [--cross OTHER_CROPS] [--epochs N] [--seeds 0 1 2] [--options ema mixup ...] [--batch-size B]

Trains `train --recipe wild` as it is over `--seeds`, then once (the first seed) with each option of OPTIONS
(a TrainConfig field each, as `train` takes it), on CROPS split as `train` splits it (the folder's own split when
its manifest keeps one). Each run is scored on CROPS's test side and, with `--cross`, on every frame of
OTHER_CROPS whose emotion the model knows (`crossdata.cross_evaluate`, classes matched by name), each with every
test-time augmentation of registry.TTA_MODES (`evaluate.metrics`). One JSON line per run, written as soon as the run
is scored, in results/wild_options.jsonl (`--results`): option, its TrainConfig changes, seed, epochs, test
accuracy and macro F1 (one view, and per TTA mode), the same on OTHER_CROPS, training and total seconds, and
fer_book.calibrate's images/s on this machine, measured once before the runs, with the load average.

The recipe's defaults do not change on these runs: they change only on measurements on real FER-2013 and CK+
(../shared/measurements/), which is what this script is for on a machine that holds them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = Path(__file__).parent / "results" / "wild_options.jsonl"
RECIPE = "recipe"  # the label of the recipe as it is
# Each option's TrainConfig changes over `--recipe wild` (the label is what the JSON line names).
OPTIONS: dict[str, dict[str, object]] = {
    "ema": {"use_ema": True},
    "bn-momentum-0.99": {"bn_momentum": 0.99},
    "mixup": {"mix": "mixup"},
    "cutmix": {"mix": "cutmix"},
    "random-erasing-0.5": {"random_erasing": 0.5},
    "intensity-0.5": {"intensity": 0.5},
    "width-1.5": {"width": 1.5},
}


def calibration(epochs: int) -> dict:
    """fer_book.calibrate's images/s now (`epochs` timed epochs), with the load average."""
    from fer_book.calibrate import throughput

    measured = throughput(epochs=epochs)
    return {"images_per_s": measured["images_per_s"], "load": [round(v, 2) for v in os.getloadavg()]}


def test_scores(run, crops: Path, mode: str) -> dict[str, float]:
    """Accuracy and macro F1 of the run's model on its own test side, averaged over the views of `mode`."""
    from fer_utils.evaluate.metrics import evaluate_predictions
    from fer_utils.train.config import Feed
    from fer_utils.train.fit import predict_batches
    from fer_utils.train.pipeline import make_dataset

    frames, _, classes = run.test_predictions()
    probabilities = predict_batches(run.load(), make_dataset(frames, crops, classes, Feed(cache=False)), mode)
    frame = evaluate_predictions(frames, probabilities, classes)["frame"]
    return {"accuracy": round(frame["accuracy"], 4), "macro_f1": round(frame["f1_macro"], 4)}


def cross_scores(run, cross: Path, mode: str) -> dict[str, object]:
    """Accuracy and macro F1 of the run's model on the frames of `cross` whose emotion it knows (`mode`'s views)."""
    from fer_utils.deploy.crossdata import cross_evaluate

    report = cross_evaluate(run.load(), run.classes(), cross, run_dir=run.path, tta=mode)
    return {"accuracy": round(report.accuracy, 4), "macro_f1": round(report.macro_f1, 4), "frames": report.frames}


def one_run(option: str, seed: int, args: argparse.Namespace, out: Path, calibrated: dict) -> dict:
    """Train the recipe with `option`'s changes at `seed`, score it, and return its JSON line."""
    import keras

    from fer_utils.faces.preprocess import folder_crop_spec
    from fer_utils.registry import TTA_MODES
    from fer_utils.train.config import TrainConfig
    from fer_utils.train.fit import train_run
    from fer_utils.train.pipeline import FaceData

    changes = {} if option == RECIPE else OPTIONS[option]
    sizes = {"epochs": args.epochs} if args.epochs else {}
    sizes |= {"batch_size": args.batch_size} if args.batch_size else {}
    side = folder_crop_spec(args.crops).side  # as `train` does: the crops' own side
    config = TrainConfig.preset("wild", seed=seed, image_size=(side, side), **sizes, **changes)
    start = time.perf_counter()
    run = train_run(None, FaceData(args.crops), config, out / f"{option}-{seed}", verbose=0)
    trained = time.perf_counter() - start
    metrics = run.metrics()
    record = {
        "option": option,
        "changes": changes,
        "seed": seed,
        "epochs": metrics["epochs_run"],
        "batch_size": config.batch_size,
        "crops": str(args.crops),
        "accuracy": round(metrics["test"]["frame"]["accuracy"], 4),
        "macro_f1": round(metrics["test"]["frame"]["f1_macro"], 4),
        "tta": {mode: test_scores(run, args.crops, mode) for mode in TTA_MODES},
    }
    if args.cross:
        record["cross_crops"] = str(args.cross)
        record["cross"] = {mode: cross_scores(run, args.cross, mode) for mode in TTA_MODES}
    record |= {
        "train_seconds": metrics["train_seconds"],
        "seconds": round(time.perf_counter() - start, 2),
        "scoring_seconds": round(time.perf_counter() - start - trained, 2),
        "params": run.config()["params"],
        "calibration": calibrated,
    }
    keras.backend.clear_session()
    return record


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crops", type=Path, required=True, help="crops folder (preprocess --out) to train and test")
    parser.add_argument("--cross", type=Path, help="another crops folder, scored whole (classes matched by name)")
    parser.add_argument("--epochs", type=int, help="epochs per run (default: the recipe's)")
    parser.add_argument("--batch-size", type=int, help="batch size (default: the recipe's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="the recipe's seeds (default 0 1 2)")
    parser.add_argument(
        "--options", nargs="+", choices=sorted(OPTIONS), default=list(OPTIONS), help="options trained (default: all)"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"JSON lines appended (default {RESULTS})")
    parser.add_argument("--calibration-epochs", type=int, default=2, help="fer_book.calibrate's timed epochs")
    args = parser.parse_args(argv)
    for folder in filter(None, (args.crops, args.cross)):
        if not (folder / "manifest.csv").is_file() or not (folder / "crop_spec.json").is_file():
            parser.error(f"{folder} holds no manifest.csv and crop_spec.json: give a crops folder preprocess wrote")
    if args.epochs is not None and args.epochs < 1 or args.batch_size is not None and args.batch_size < 1:
        parser.error("--epochs and --batch-size must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Train and score every run, appending one JSON line each as it is scored."""
    from fer_book.calibrate import append_record

    args = parse(argv)
    calibrated = calibration(args.calibration_epochs)
    runs = [(RECIPE, seed) for seed in args.seeds] + [(option, args.seeds[0]) for option in args.options]
    with tempfile.TemporaryDirectory(prefix="wild_options_") as folder:
        for option, seed in runs:
            record = one_run(option, seed, args, Path(folder), calibrated)
            append_record(args.results, record)
            cross = record.get("cross", {})
            print(
                f"{option} seed {seed}: accuracy {record['accuracy']:.3f} (flip {record['tta']['flip']['accuracy']:.3f})"
                + (f", cross {cross['none']['accuracy']:.3f} (flip {cross['flip']['accuracy']:.3f})" if cross else "")
                + f", {record['seconds']:.0f} s",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
