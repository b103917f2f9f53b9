"""Does the FER-2013 recipe's schedule let a run reach its best epoch? (issue 35, item 5; what can be measured here)

The recipe was chosen on real FER-2013 outside this repository (benchmarks/README.md, "A recipe chosen on real
FER-2013"); it was `--recipe wild` until issue 44 and is now `--recipe arriaga` (`train.config.PRESETS`: Arriaga
et al.'s augmentation, Adam 1e-3, patience 12, plateau 4, no class weights; `--recipe wild` now trains the book's
own network). Here, on the 1,289 generated faces the package ships (cropped by `artifacts.Dataset.crops`, random
split, 48 px), each model is trained through the CLI (`python -m fer_utils train`) with the recipe's former
schedule (Adam 3e-4, patience 5, plateau 3, balanced class weights) and with `--recipe arriaga`, up to 60 epochs,
and the history says where each run stopped: the epoch of its lowest validation loss, of its highest validation
accuracy, the epochs at which the learning rate was halved, and whether validation accuracy was still rising when
early stopping ended it (its best over the last `patience` epochs above its best before them).

    PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/recipe_stop.py [--models paper-cnn,mini-xception] [--seeds 0]

One JSON line per run in results/recipe_stop.jsonl, with `calibrate.py`'s figure of the same process. The records
made before the rename name the two schedules "former wild …" and "wild now …" (benchmarks/readme.py maps them).
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

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = Path(__file__).parent / "results" / "recipe_stop.jsonl"
SIDE = 48
EPOCHS = 60
SCHEDULES = {
    "former (lr 3e-4, patience 5, plateau 3, balanced)": [
        "--recipe", "arriaga", "--learning-rate", "3e-4", "--patience", "5", "--plateau", "3", "--class-weights", "balanced",
    ],
    "arriaga (lr 1e-3, patience 12, plateau 4, none)": ["--recipe", "arriaga"],
}  # fmt: skip


def where_it_stopped(history: pd.DataFrame, patience: int) -> dict:
    """The run's best epochs, its learning-rate halvings and whether validation accuracy was still rising."""
    rates = history["learning_rate"].round(10) if "learning_rate" in history else pd.Series(dtype=float)
    halved = [int(e) for e, before, now in zip(history["epoch"][1:], rates[:-1], rates[1:]) if now < before]
    last = history["val_accuracy"].iloc[-patience:] if len(history) > patience else history["val_accuracy"]
    earlier = history["val_accuracy"].iloc[: max(len(history) - patience, 1)]
    return {
        "epochs_run": int(len(history)),
        "best_val_loss_epoch": int(history["val_loss"].idxmin()),
        "best_val_accuracy_epoch": int(history["val_accuracy"].idxmax()),
        "best_val_accuracy": round(float(history["val_accuracy"].max()), 3),
        "lr_halved_at": halved,
        "val_accuracy_still_rising": bool(last.max() > earlier.max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="paper-cnn,mini-xception")
    parser.add_argument("--seeds", default="0")
    args = parser.parse_args()

    from fer_book.calibrate import throughput
    from fer_utils.book import artifacts
    from fer_utils.train.runs import RunFolder

    crops = artifacts.Dataset(artifacts.GENERATED_DATASET).crops()
    calibration = throughput()["images_per_s"]
    for model in args.models.split(","):
        for seed in args.seeds.split(","):
            for name, options in SCHEDULES.items():
                with tempfile.TemporaryDirectory() as work:
                    run = Path(work) / "run"
                    command = [sys.executable, "-m", "fer_utils", "train", "--crops", str(crops), "--out", str(run)]
                    command += ["--model", model, "--size", str(SIDE), "--epochs", str(EPOCHS), "--seed", seed]
                    command += ["--protocol", "random", *options]
                    start = time.perf_counter()
                    subprocess.run(command, check=True, capture_output=True, text=True)
                    seconds = time.perf_counter() - start
                    folder = RunFolder(run)
                    config, test = folder.config(), folder.metrics()["test"]["frame"]
                    record = {
                        "model": model,
                        "seed": int(seed),
                        "schedule": name,
                        **where_it_stopped(folder.history(), config["patience"]),
                        "stopped_by": "the cap" if len(folder.history()) == EPOCHS else "early stopping",
                        "test_accuracy": round(test["accuracy"], 3),
                        "test_macro_f1": round(test["f1_macro"], 3),
                        "seconds": round(seconds, 1),
                        "calibration_images_per_s": calibration,
                        "load_average": [round(x, 2) for x in os.getloadavg()],
                    }
                print(json.dumps(record))
                RESULTS.parent.mkdir(exist_ok=True)
                with RESULTS.open("a") as out:
                    out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
