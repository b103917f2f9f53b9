"""Candidate quick defaults for the chapters' lessons (issue 16), measured: does a setting show its effect?

Each call trains the paper's CNN with `train.fit.train_run` (the code path of `artifacts.train`) on one data set
over several seeds and records, per run, the final training and validation accuracy, their gap, the
best epoch, the test accuracy, the collapse check and the time; then mean ± std. Data sets:

- `sample`: the synthetic sample (dlib HOG crops), optionally a few frames per emotion (`--per-class`);
- `london`: the London faces shipped with the package (neutral, happy; subject from the file name);
- `generated`: the generated faces shipped with the package (DiffusionFER-S), or another folder of face
  crops (`--data-dir`, detector `none`).

    PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/lesson_runs.py --data generated --side 48 --epochs 30 --lr 1e-3 --dropout 0,0,0 --seeds 0,1,2

Appends one JSON line per call to benchmarks/results/lesson_runs.jsonl (or --out) with the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).parent / "results" / "lesson_runs.jsonl"


def crops_for(data: str, data_dir: str | None) -> Path:
    """The cached crops folder of `data` (see the module docstring)."""
    from fer_utils.assets import london_faces_dir
    from fer_utils.book import artifacts

    if data == "sample":
        return artifacts.Dataset("sample").crops()
    if data == "london":
        return artifacts.Dataset("folder", london_faces_dir()).crops(subject_pattern=r"^(\d+)_")
    return artifacts.Dataset(artifacts.GENERATED_DATASET, data_dir).crops()


def main() -> None:
    from fer_book.calibrate import append_record  # PYTHONPATH=$PWD, as the docstring runs it

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=("sample", "london", "generated"), default="sample")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--protocol", default="random")
    parser.add_argument("--side", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--patience", type=int, default=100, help="early stopping patience (100: off)")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--batch", type=int, default=32, help="batch size (the paper's: 32)")
    parser.add_argument("--dropout", default="0,0,0.3")
    parser.add_argument("--l1", type=float, default=0.0)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--per-class", type=int, default=0, help="keep only this many frames per emotion (0: all)")
    parser.add_argument("--subjects", type=int, default=0, help="keep only this many subjects (0: all), as chapter 6")
    parser.add_argument("--model", default="paper-cnn")
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--tag", default="")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from fer_utils.data.manifest import load_manifest, usable_frames
    from fer_utils.train.config import TrainConfig
    from fer_utils.train.fit import train_run
    from fer_utils.train.pipeline import FaceData

    crops = crops_for(args.data, args.data_dir)
    frames = usable_frames(load_manifest(crops))
    if args.per_class:
        frames = frames.groupby("emotion").head(args.per_class)
    if args.subjects:
        from fer_utils.book.chapters import clamp_subjects

        frames = frames[frames["subject"].isin(clamp_subjects(frames, args.subjects))]
    print(args.data, len(frames), "frames", frames["subject"].nunique(), "subjects", flush=True)
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        config = TrainConfig(
            model=args.model,
            epochs=args.epochs,
            patience=args.patience,
            learning_rate=args.lr,
            batch_size=args.batch,
            dropout=tuple(float(x) for x in args.dropout.split(",")),
            l1=args.l1,
            seed=seed,
            protocol=args.protocol,
            image_size=(args.side, args.side),
            augment=args.augment,
        )
        with tempfile.TemporaryDirectory() as folder:
            start = time.time()
            result = train_run(None, FaceData(crops, frames), config, Path(folder) / "run", verbose=0)
        history, metrics = result.history(), result.metrics()
        row = {
            "seed": seed,
            "seconds": round(time.time() - start, 1),
            "epochs": len(history),
            "best_epoch": metrics["best_epoch"],
            "train_acc": round(float(history["accuracy"].iloc[-1]), 3),
            "val_acc": round(float(history["val_accuracy"].iloc[-1]), 3),
            "loss_first": round(float(history["loss"].iloc[0]), 3),
            "loss_last": round(float(history["loss"].iloc[-1]), 3),
            "test_acc": round(metrics["test"]["frame"]["accuracy"], 3),
            "collapsed": metrics["collapsed"],
        }
        row["gap"] = round(row["train_acc"] - row["val_acc"], 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    table = pd.DataFrame(rows)
    from fer_utils.book.chapters import mean_std

    summary = {k: mean_std(table[k]) for k in ("train_acc", "val_acc", "gap", "test_acc")}
    record = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "load": os.getloadavg(),
        "runs": rows,
        "summary": summary,
    }
    append_record(args.out, record)
    print("summary", args.tag, json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
    main()
