"""Chapter 5 without its confound (issue 34): the test accuracy of the final weights and of the best epoch.

Every book run keeps `EarlyStopping(restore_best_weights=True)` (`train.fit.run_callbacks`), and Keras 3 puts
the best epoch's weights back at the end even when it never stopped early: chapter 5's "no dropout, no L1"
runs are then scored at their best validation epoch, not as the overfit model its curves show. This
trains chapter 5's two settings with its quick defaults (640 generated faces, subject split, 32×32,
Adam 1e-3, batch 32) for up to `--epochs` epochs without stopping, through `train.fit.train_run` (the
chapters' code path), and scores the test faces after every epoch. Per run it records the whole curves,
then, for the chapter's cap (`--cap`, 45) and for the whole run: the best epoch (lowest validation loss),
the test accuracy and macro F1 there and at the last epoch, and the epoch at which early stopping with
patience 5, 10 or 20 would have stopped (when the validation loss stops improving).

    PYTHONPATH=$PWD FER_CACHE=$PWD/_cache .venv/bin/python benchmarks/final_vs_best.py --epochs 150

Appends one JSON line to benchmarks/results/final_vs_best.jsonl (or --out), with the calibration figure.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "final_vs_best.jsonl"
SETTINGS = {  # chapter 5's SETTINGS
    "no dropout, no L1": {"dropout": (0.0, 0.0, 0.0), "l1": 0.0},
    "paper's SAVEE: (0.3, 0.5, 0.5) + L1": {"dropout": (0.3, 0.5, 0.5), "l1": 1e-4},
}
PATIENCES = (5, 10, 20)


def stop_epoch(val_loss: list[float], patience: int) -> int:
    """The last epoch (0-based) early stopping with `patience` trains: `patience` epochs after the best one
    so far without a lower validation loss, or the last epoch."""
    best, best_epoch = float("inf"), 0
    for epoch, loss in enumerate(val_loss):
        if loss < best:
            best, best_epoch = loss, epoch
        elif epoch - best_epoch >= patience:
            return epoch
    return len(val_loss) - 1


def summary(curves: dict[str, list[float]], last: int) -> dict:
    """Best epoch (lowest validation loss up to `last`, 0-based) and the scores there and at `last`."""
    best = int(np.argmin(curves["val_loss"][: last + 1]))
    return {
        "epochs": last + 1,
        "best_epoch": best + 1,
        "best": {k: round(curves[k][best], 4) for k in ("accuracy", "val_accuracy", "test_accuracy", "test_macro_f1")},
        "final": {k: round(curves[k][last], 4) for k in ("accuracy", "val_accuracy", "test_accuracy", "test_macro_f1")},
    }


def one_run(setting: str, seed: int, epochs: int) -> dict[str, list[float]]:
    """Chapter 5's run of `setting` and `seed`, trained `epochs` epochs; its curves, test scores included."""
    import keras
    import pandas as pd
    from sklearn.metrics import f1_score

    from fer_utils.book.artifacts import Dataset
    from fer_utils.book.chapters import clamp_subjects
    from fer_utils.data.corpora import classes_in
    from fer_utils.train.config import Feed, TrainConfig
    from fer_utils.train.fit import compile_model, run_callbacks, train_run
    from fer_utils.train.pipeline import FaceData, make_dataset

    crops = Dataset("diffusionfer").crops()
    data = FaceData(crops, subjects=clamp_subjects(FaceData(crops).frames(), 640))  # chapter 5's faces
    frames = data.frames()
    config = TrainConfig(
        image_size=(32, 32),
        epochs=epochs,
        patience=epochs,
        protocol="subject",
        learning_rate=1e-3,
        seed=seed,
        **SETTINGS[setting],
    )
    classes = classes_in(frames)  # the model's class order (vocabulary order), as training.train takes it
    split = data.split_for(config, frames)  # the split the run itself draws
    test = make_dataset(split.test, crops, classes, Feed(256, image_size=config.image_size))
    truth = np.concatenate([y.numpy() for _, y in test])
    scores: dict[str, list[float]] = {"test_accuracy": [], "test_macro_f1": []}

    class TestEveryEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            predicted = np.concatenate([self.model(x, training=False).numpy().argmax(1) for x, _ in test])
            scores["test_accuracy"].append(float((predicted == truth).mean()))
            scores["test_macro_f1"].append(float(f1_score(truth, predicted, average="macro")))

    def fit(config, train, val, num_classes, run, build, class_weight, train_eval=None, verbose=0):
        model = compile_model(config, num_classes, build)
        callbacks = [TestEveryEpoch(), *run_callbacks(run, "val_loss", config.patience, train_eval=train_eval)]
        history = model.fit(train, validation_data=val, epochs=config.epochs, callbacks=callbacks, verbose=0)
        model.save(run.model_file)
        return model, pd.DataFrame(history.history).rename_axis("epoch").reset_index()

    with tempfile.TemporaryDirectory() as folder:
        run = train_run(None, data, config, Path(folder) / "run", verbose=0, fit=fit)
        history, metrics = run.history(), run.metrics()
    curves = {k: [float(v) for v in history[k]] for k in ("loss", "accuracy", "val_loss", "val_accuracy")}
    curves |= scores
    restored = metrics["test"]["frame"]["accuracy"]
    best = int(np.argmin(curves["val_loss"]))
    if abs(restored - curves["test_accuracy"][best]) > 1e-9:  # the run's own score of its restored weights
        raise SystemExit(f"per-epoch test accuracy {curves['test_accuracy'][best]} != the run's {restored}")
    curves["restored_test_accuracy"] = [restored]
    return curves


def main() -> None:
    from fer_book.calibrate import append_record

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--cap", type=int, default=45, help="chapter 5's EPOCHS")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        record_file = Path(folder) / "calibration.json"
        subprocess.run([sys.executable, str(ROOT / "fer_book" / "calibrate.py"), "--out", str(record_file)], check=True)
        calibration = json.loads(record_file.read_text())
    runs = []
    for setting in SETTINGS:
        for seed in (int(s) for s in args.seeds.split(",")):
            start = time.perf_counter()
            curves = one_run(setting, seed, args.epochs)
            row = {
                "setting": setting,
                "seed": seed,
                "seconds": round(time.perf_counter() - start, 1),
                "at_cap": summary(curves, args.cap - 1),
                "whole": summary(curves, len(curves["loss"]) - 1),
                "stops": {p: stop_epoch(curves["val_loss"], p) + 1 for p in PATIENCES},
                "curves": curves,
            }
            runs.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "curves"}), flush=True)
    record = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "calibration_images_per_s": calibration["images_per_s"],
        "load": os.getloadavg(),
        "runs": runs,
    }
    append_record(args.out, record)


if __name__ == "__main__":
    main()
