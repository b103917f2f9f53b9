"""`RunFolder`, how a trained run travels: it names the run's files (`fer_utils.storage.run_files`), reads the
JSON and CSV ones and loads the model, its classes and its crop spec once (`open`). It behaves like its folder
where a path is needed and equals `Path` of the same folder. Runs are written whole (CONTRACTS.md). Reading the
files needs no TensorFlow: the model code (`fer_utils.models.networks`) is imported only to load a model.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fer_utils.errors import InputError, MissingFileError
from fer_utils.faces.crops import CROP_SPEC_FILE, CropSpec, read_crop_spec
from fer_utils.storage import run_files
from fer_utils.storage.run_files import TRAIN_EVAL_PREFIX, probability_columns, read_classes

if TYPE_CHECKING:
    import keras


class RunFile:
    """A file of a run folder as an attribute: `run.config_file` is `run.path / CONFIG_FILE`."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, run: RunFolder | None, owner: type | None = None) -> Path:
        if run is None:
            raise AttributeError(f"{self.name} is a file of one run: read it from a RunFolder")
        return run.path / self.name


@dataclass(frozen=True, eq=False)
class RunFolder:
    """A training run's folder: the paths of its files, what they hold, and its model."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __truediv__(self, name: str | os.PathLike) -> Path:
        return self.path / name

    def __str__(self) -> str:
        return str(self.path)

    def __eq__(self, other: object) -> bool:
        """Equal to a RunFolder or a path of the same folder (a run fetched twice is the same run)."""
        if isinstance(other, RunFolder):
            return self.path == other.path
        if isinstance(other, PurePath):
            return self.path == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.path)

    # its files: `run.model_file` is `run.path / MODEL_FILE` (with keep "last", the best epoch's weights beside it)
    model_file = RunFile(run_files.MODEL_FILE)
    last_weights_file = RunFile(run_files.LAST_WEIGHTS_FILE)
    best_weights_file = RunFile(run_files.BEST_WEIGHTS_FILE)
    time_budget_file = RunFile(run_files.TIME_BUDGET_FILE)
    classes_file = RunFile(run_files.CLASSES_FILE)
    config_file = RunFile(run_files.CONFIG_FILE)
    history_file = RunFile(run_files.HISTORY_FILE)
    metrics_file = RunFile(run_files.METRICS_FILE)
    predictions_file = RunFile(run_files.PREDICTIONS_FILE)

    def is_complete(self) -> bool:
        """True when every file of a finished run is there."""
        return all((self.path / name).is_file() for name in run_files.RUN_FILES)

    def config(self) -> dict:
        """The saved config (JSON)."""
        return json.loads(self.config_file.read_text(encoding="utf-8"))

    def metrics(self) -> dict:
        """The saved metrics (JSON)."""
        return json.loads(self.metrics_file.read_text(encoding="utf-8"))

    def history(self) -> pd.DataFrame:
        """The per-epoch history."""
        return pd.read_csv(self.history_file)

    def classes(self) -> list[str]:
        """The class names, in the model's output order."""
        return read_classes(self.path)

    def scores(self) -> dict[str, object]:
        """The run's numbers as one table row, NaN where it recorded none; `train accuracy` and `gap` are scored in
        inference mode (`fit.InferenceScores`), the `logged` ones by Keras's running mean with dropout on."""
        config, metrics, history = self.config(), self.metrics(), self.history()
        frame, clip = metrics["test"]["frame"], metrics["test"].get("clip", {})
        last_epoch = metrics.get("test_last_epoch", {}).get("frame", {})
        last = history.iloc[-1]
        missing = pd.Series(np.nan, index=history.index)
        val_accuracy, val_loss, train_accuracy = (
            history.get(column, missing) for column in ("val_accuracy", "val_loss", f"{TRAIN_EVAL_PREFIX}accuracy")
        )
        return {
            "accuracy": frame["accuracy"],
            "macro F1": frame["f1_macro"],
            "clip accuracy": clip.get("accuracy", np.nan),
            "clip macro F1": clip.get("f1_macro", np.nan),
            "last-epoch accuracy": last_epoch.get("accuracy", np.nan),
            "last-epoch macro F1": last_epoch.get("f1_macro", np.nan),
            "train accuracy": train_accuracy.iloc[-1],
            "val accuracy": val_accuracy.iloc[-1],
            "gap": train_accuracy.iloc[-1] - val_accuracy.iloc[-1],
            "logged train accuracy": last["accuracy"],
            "logged gap": last["accuracy"] - val_accuracy.iloc[-1],
            "val loss": val_loss.iloc[-1],
            "best val loss": val_loss.min(),
            "best epoch": int(history[metrics.get("monitor", "val_loss")].idxmin()) + 1,  # from 1, whatever wrote it
            "epochs": metrics.get("epochs_run", len(history)),
            "params": config.get("params"),
            "train s": metrics.get("train_seconds", np.nan),
            "collapsed": bool(metrics.get("collapsed", False)),
        }

    def test_predictions(self) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
        """(test frames, probabilities (N, classes), classes) as saved when the run finished."""
        if not self.predictions_file.is_file():
            raise MissingFileError(
                f"{self.path} has no {run_files.PREDICTIONS_FILE}: it is not a finished run folder, or "
                "the run was made before runs saved their test predictions (train it again)"
            )
        classes = self.classes()
        columns = probability_columns(classes)
        try:
            table = pd.read_csv(self.predictions_file, keep_default_na=False)
            probabilities = table[columns].to_numpy(dtype=np.float64)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, KeyError, ValueError) as exc:
            raise InputError(
                f"{self.predictions_file} is damaged: it must be a CSV table with the columns {columns} of "
                f"numbers ({type(exc).__name__}: {exc}); train the run again"
            ) from exc
        if not np.isfinite(probabilities).all() or "emotion" not in table.columns:
            raise InputError(f"{self.predictions_file} is damaged: missing emotions or probabilities")
        return table.drop(columns=columns), probabilities, classes

    def crop_spec(self, model_side: int | None = None) -> CropSpec:
        """How the run's training faces were cut (`crop_spec.json`); without one, the default spec at the run's image
        size, else `model_side`, else the default side. MissingFileError for a run made before crop specs."""
        spec = read_crop_spec(self.path)
        if spec is not None:
            return spec
        config = self.config() if self.config_file.is_file() else {}
        if "crops" in config:
            raise MissingFileError(
                f"{self.path} was trained before runs saved their crop spec ({CROP_SPEC_FILE} is missing, "
                "config.json has the older `crops` record): train the run again"
            )
        size = config.get("image_size")
        side = int(size[0]) if isinstance(size, (list, tuple)) and size else model_side
        return CropSpec(side=side) if side else CropSpec()

    def open(self, model_file: Path | None = None) -> LoadedRun:
        """The run read once: its model (or another model file of the folder), classes checked against its outputs,
        and crop spec; InputError for a model of a fixed input side other than its crops' (train the run again)."""
        from fer_utils.models.networks import check_classes, input_side, load_model

        path = Path(model_file or self.model_file)
        model = load_model(path)
        side = input_side(model)
        spec = self.crop_spec(side)
        if side is not None and side != spec.side:
            raise InputError(
                f"{path} takes {side}×{side} px crops and does not resize its input (saved before models resized "
                f"their own), but the run's crops are {spec.side}×{spec.side} px: train the run again"
            )
        return LoadedRun(self, model, check_classes(model, read_classes(path.parent)), spec, self.served_tta())

    def served_tta(self) -> str:
        """The test-time augmentation the run's model is served with: its recipe's (config.json), else none."""
        return str(self.config().get("tta", "none")) if self.config_file.is_file() else "none"

    def load(self, model_file: Path | None = None) -> keras.Model:
        """The run's model (or another model file of the folder), as `open` loads it."""
        return self.open(model_file).model


@dataclass(frozen=True, eq=False)
class LoadedRun:
    """A run read once (`RunFolder.open`): its folder, model, classes in output order, crop spec and served TTA."""

    folder: RunFolder
    model: keras.Model
    classes: list[str]
    spec: CropSpec
    tta: str = "none"
