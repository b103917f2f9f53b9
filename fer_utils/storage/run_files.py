"""The files of a training run's folder: their names, and the readers that need no model.

What each file holds: CONTRACTS.md, "Run folder". The run itself, with its model, is `train.runs.RunFolder`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.errors import InputError

MODEL_FILE = "model.keras"
CLASSES_FILE = "classes.json"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "test_predictions.csv"
RUN_FILES = (MODEL_FILE, CLASSES_FILE, CONFIG_FILE, HISTORY_FILE, METRICS_FILE, PREDICTIONS_FILE)
LAST_WEIGHTS_FILE = "last_epoch.weights.h5"  # not in RUN_FILES: older runs are complete without it
TRAIN_HASHES_FILE = "train_hashes.csv"  # md5 and perceptual hash of every training crop (older runs lack it)
# Written only by runs that keep their last epoch (the best epoch's weights) or train under a time budget.
BEST_WEIGHTS_FILE = "best_epoch.weights.h5"
TIME_BUDGET_FILE = "time_budget.json"
WRITTEN_FILES = (*RUN_FILES, LAST_WEIGHTS_FILE, TRAIN_HASHES_FILE)  # what `train.fit.train_run` writes
TRAIN_EVAL_PREFIX = "train_eval_"  # history.csv's columns of the training side in inference mode


def probability_columns(classes: Sequence[str]) -> list[str]:
    """The column names of the class probabilities in prediction tables: `p_<class>`."""
    return [f"p_{name}" for name in classes]


def parse_classes(value: object, source: Path) -> list[str]:
    """The class names in output order from a `classes.json`'s list of unique names or dict name → index (0..n-1);
    anything else is an InputError naming `source`, since it would mislabel silently."""
    if isinstance(value, dict):
        if not all(type(v) is int for v in value.values()) or sorted(value.values()) != list(range(len(value))):
            raise InputError(
                f"{source}: a dict of classes must map each name to its output index 0..{len(value) - 1} "
                f"once, got {value}"
            )
        value = sorted(value, key=value.__getitem__)
    if not (isinstance(value, list) and value and all(isinstance(name, str) and name for name in value)):
        raise InputError(f"{source}: classes must be a list of class names, one per model output, got {value!r}")
    if len(set(value)) != len(value):
        raise InputError(f"{source}: class names repeat ({value}); each output needs its own name")
    return list(value)


def _read_json(path: Path) -> object:
    """The JSON in `path`, or InputError naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc


def read_classes(folder: Path) -> list[str]:
    """The class names in `folder`'s classes.json, else config.json (`parse_classes`); InputError when none."""
    folder = Path(folder)
    if (folder / CLASSES_FILE).is_file():
        return parse_classes(_read_json(folder / CLASSES_FILE), folder / CLASSES_FILE)
    if (folder / CONFIG_FILE).is_file():
        config = _read_json(folder / CONFIG_FILE)
        if isinstance(config, dict) and "classes" in config:
            return parse_classes(config["classes"], folder / CONFIG_FILE)
    raise InputError(f"{folder}: no {CLASSES_FILE} (or {CONFIG_FILE} with classes) beside the model")


def predictions_frame(frames: pd.DataFrame, probabilities: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """The test frames with one `p_<class>` column per class (what `test_predictions.csv` holds)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != (len(frames), len(classes)):
        raise InputError(f"{probabilities.shape} probabilities for {len(frames)} frames × {len(classes)} classes")
    return frames.reset_index(drop=True).assign(**dict(zip(probability_columns(classes), probabilities.T)))
