"""The run folder: the one place that names the files a training run writes, and reads them back.

A complete run folder holds

- `model.keras`: the best epoch's model (by the monitored loss);
- `classes.json`: the class names, in the order of the model's outputs;
- `config.json`: the TrainConfig, the classes, the parameter count, the split sizes, the subjects on each side
  and the crops' preprocessing settings (`crops`: detector, size, margin, …; null for crops made by hand);
- `history.csv`: one row per epoch (Keras's CSVLogger);
- `metrics.json`: the test metrics (fer_utils.evaluation) and the collapse check (fer_utils.training);
- `test_predictions.csv`: the test frames (manifest rows) with one `p_<class>` probability column per
  class, so that nothing has to re-split the data and re-predict to look at a run's mistakes.

`fer_utils.training` writes a run into a temporary folder and renames it into place when it is
complete, so a folder with `metrics.json` is a finished run. This module imports no TensorFlow.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.errors import EvaluationError, ModelFileError, RunFolderError

MODEL_FILE = "model.keras"
CLASSES_FILE = "classes.json"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "test_predictions.csv"
RUN_FILES = (MODEL_FILE, CLASSES_FILE, CONFIG_FILE, HISTORY_FILE, METRICS_FILE, PREDICTIONS_FILE)
PROBABILITY_PREFIX = "p_"


def probability_columns(classes: Sequence[str]) -> list[str]:
    """The column names of the class probabilities in prediction tables: `p_<class>`."""
    return [f"{PROBABILITY_PREFIX}{name}" for name in classes]


@dataclass(frozen=True)
class RunFolder:
    """A training run's folder and the paths of its files."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def model(self) -> Path:
        """The best model (`model.keras`)."""
        return self.path / MODEL_FILE

    @property
    def classes_file(self) -> Path:
        """`classes.json`."""
        return self.path / CLASSES_FILE

    @property
    def config_file(self) -> Path:
        """`config.json`."""
        return self.path / CONFIG_FILE

    @property
    def history_file(self) -> Path:
        """`history.csv`."""
        return self.path / HISTORY_FILE

    @property
    def metrics_file(self) -> Path:
        """`metrics.json`."""
        return self.path / METRICS_FILE

    @property
    def predictions_file(self) -> Path:
        """`test_predictions.csv`."""
        return self.path / PREDICTIONS_FILE

    def is_complete(self) -> bool:
        """True when every file of a finished run is there."""
        return all((self.path / name).is_file() for name in RUN_FILES)

    def holds_anything(self) -> bool:
        """True when the folder exists and is not empty (a run, or something else, is there)."""
        return self.path.is_dir() and any(self.path.iterdir())

    def config(self) -> dict:
        """The saved config (JSON)."""
        return json.loads(self.config_file.read_text())

    def metrics(self) -> dict:
        """The saved metrics (JSON)."""
        return json.loads(self.metrics_file.read_text())

    def history(self) -> pd.DataFrame:
        """The per-epoch history."""
        return pd.read_csv(self.history_file)

    def classes(self) -> list[str]:
        """The class names, in the model's output order."""
        return read_classes(self.path)

    def test_predictions(self) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
        """(test frames, probabilities (N, classes), classes) as saved when the run finished."""
        if not self.predictions_file.is_file():
            raise RunFolderError(
                f"{self.path} has no {PREDICTIONS_FILE}: it is not a finished run folder, or "
                "the run was made before runs saved their test predictions (train it again)"
            )
        classes = self.classes()
        columns = probability_columns(classes)
        try:
            table = pd.read_csv(self.predictions_file, keep_default_na=False)
            probabilities = table[columns].to_numpy(dtype=np.float64)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, KeyError, ValueError) as exc:
            raise RunFolderError(
                f"{self.predictions_file} is damaged: it must be a CSV table with the columns {columns} of "
                f"numbers ({type(exc).__name__}: {exc}); train the run again"
            ) from exc
        if not np.isfinite(probabilities).all() or "emotion" not in table.columns:
            raise RunFolderError(f"{self.predictions_file} is damaged: missing emotions or probabilities")
        return table.drop(columns=columns), probabilities, classes


def parse_classes(value: object, source: Path) -> list[str]:
    """The class names in model-output order from what a `classes.json` holds: a list of unique names, or
    a dict name → output index (0..n-1, each once; read by index, not key order). Anything else (a string,
    numbers, repeated names) is a ModelFileError naming `source`, because it would mislabel silently."""
    if isinstance(value, dict):
        indices = list(value.values()) if all(type(v) is int for v in value.values()) else None
        if indices is None or sorted(indices) != list(range(len(value))):
            raise ModelFileError(
                f"{source}: a dict of classes must map each name to its output index 0..{len(value) - 1} "
                f"once, got {value}"
            )
        value = sorted(value, key=value.__getitem__)
    if not (isinstance(value, list) and value and all(isinstance(name, str) and name for name in value)):
        raise ModelFileError(f"{source}: classes must be a list of class names, one per model output, got {value!r}")
    if len(set(value)) != len(value):
        raise ModelFileError(f"{source}: class names repeat ({value}); each output needs its own name")
    return list(value)


def _read_json(path: Path) -> object:
    """The JSON in `path`, or ModelFileError naming it."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: not valid JSON ({exc})") from exc


def read_classes(folder: Path) -> list[str]:
    """The class names saved in `folder` (`classes.json`, else a run's `config.json`), checked by
    `parse_classes`: the one reader of classes files; ModelFileError when there are none or they are bad."""
    folder = Path(folder)
    if (folder / CLASSES_FILE).is_file():
        return parse_classes(_read_json(folder / CLASSES_FILE), folder / CLASSES_FILE)
    if (folder / CONFIG_FILE).is_file():
        config = _read_json(folder / CONFIG_FILE)
        if isinstance(config, dict) and "classes" in config:
            return parse_classes(config["classes"], folder / CONFIG_FILE)
    raise ModelFileError(f"{folder}: no {CLASSES_FILE} (or {CONFIG_FILE} with classes) beside the model")


def predictions_frame(frames: pd.DataFrame, probabilities: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """The test frames with one `p_<class>` column per class (what `test_predictions.csv` holds)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != (len(frames), len(classes)):
        raise EvaluationError(f"{probabilities.shape} probabilities for {len(frames)} frames × {len(classes)} classes")
    table = frames.reset_index(drop=True).copy()
    for column, values in zip(probability_columns(classes), probabilities.T):
        table[column] = values
    return table
