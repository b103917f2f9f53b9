"""A run's two sides are scored the same way. Keras logs the training accuracy as the epoch's running
mean with dropout on and the validation accuracy at the epoch's end with dropout off, so their difference is
not the generalisation gap; `train.fit.InferenceScores` scores the training side in inference mode, as the
validation side is, and `RunFolder.scores` reads its gap from that.

A short run with heavy dropout on the toy crops (real faces, `toy_data`), then both sides scored again by
hand from the run's last-epoch weights with `training=False`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from toy_data import make_toy_crops, small_config


@pytest.fixture(scope="module")
def dropout_run(tmp_path_factory: pytest.TempPathFactory):
    """A 3-epoch run (dropout 0.5 after every stage) on the toy crops, and its data."""
    from fer_utils.train.fit import train_run
    from fer_utils.train.pipeline import FaceData

    crops = tmp_path_factory.mktemp("crops")
    data = FaceData(crops, make_toy_crops(crops, size=32))
    config = small_config(epochs=3, patience=3, image_size=(32, 32), dropout=(0.5, 0.5, 0.5), protocol="subject")
    return train_run(None, data, config, tmp_path_factory.mktemp("runs") / "run", verbose=0), data


def side_accuracy(run, data, side: str) -> float:
    """The accuracy of the run's last-epoch weights on one side of its split, scored in inference mode."""
    from fer_utils.data.manifest import usable_frames
    from fer_utils.models.networks import load_model
    from fer_utils.train.config import TrainConfig
    from fer_utils.train.fit import predict_batches

    config, classes = run.config(), run.classes()
    frames = usable_frames(data.frames())
    frames = frames[frames["subject"].astype(str).isin(config["subjects"][side])]
    assert len(frames) == config["sizes"][side] > 0
    model = load_model(run.model_file)
    model.load_weights(run.last_weights_file)
    batches = data.batches(frames, classes, TrainConfig(image_size=tuple(config["image_size"])))
    probabilities = predict_batches(model, batches)  # training=False: dropout off
    labels = frames["emotion"].map(classes.index).to_numpy()
    return float(np.mean(probabilities.argmax(axis=1) == labels))


def test_training_side_is_scored_in_inference_mode_like_validation(dropout_run) -> None:
    run, data = dropout_run
    history = pd.read_csv(run.history_file)
    assert {"train_eval_accuracy", "train_eval_loss"} <= set(history.columns), list(history.columns)
    assert history["train_eval_accuracy"].notna().all() and len(history) == 3
    last = history.iloc[-1]
    # the validation side, as Keras scores it, and the training side, as InferenceScores does: the same way
    assert last["val_accuracy"] == pytest.approx(side_accuracy(run, data, "val"), abs=1e-6)
    assert last["train_eval_accuracy"] == pytest.approx(side_accuracy(run, data, "train"), abs=1e-6)


def test_scores_gap_compares_sides_scored_the_same_way(dropout_run) -> None:
    run, _ = dropout_run
    history, scores = run.history(), run.scores()
    last = history.iloc[-1]
    assert scores["train accuracy"] == last["train_eval_accuracy"]
    assert scores["gap"] == pytest.approx(last["train_eval_accuracy"] - last["val_accuracy"])
    assert scores["logged train accuracy"] == last["accuracy"]  # Keras's running mean, dropout on
    assert scores["logged gap"] == pytest.approx(last["accuracy"] - last["val_accuracy"])


def test_a_run_without_inference_scores_has_no_gap(dropout_run, tmp_path: Path) -> None:
    """A run trained before the column existed states no gap rather than the logged one as if it were it."""
    import shutil

    from fer_utils.train.runs import RunFolder

    run, _ = dropout_run
    old = RunFolder(shutil.copytree(run.path, tmp_path / "old"))
    history = old.history()
    history.drop(columns=["train_eval_accuracy", "train_eval_loss"]).to_csv(old.history_file, index=False)
    scores = old.scores()
    assert np.isnan(scores["train accuracy"]) and np.isnan(scores["gap"])
    assert scores["logged gap"] == pytest.approx(history["accuracy"].iloc[-1] - history["val_accuracy"].iloc[-1])
