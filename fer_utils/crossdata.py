"""Cross-dataset evaluation: a model trained on one corpus scored on every usable crop of another.

Training on one dataset and testing on another is the field's standard honesty check: a model that
only learnt one corpus's lighting, people or way of acting shows it there. `cross_evaluate` scores a
model on a crops folder (its `manifest.csv`) that it never saw, with no split (or only the rows of one
side, `split`, when the manifest has a `split` column). Classes are matched by name: the model's
`classes.json` and the manifest's emotions both use the vocabulary of `fer_utils.data.EMOTIONS`, and
any other name goes through `folders.folder_emotion` (a model whose classes say `fear` or `surprise`).
Frames whose emotion the model lacks are left out and counted by name; the model's classes the folder
lacks are named too. Macro F1 averages only the classes present among the scored frames, and the
report puts accuracy beside the majority baseline (always answering the commonest emotion) and chance.

The report is computed from probabilities without TensorFlow (`cross_report`); only predicting
(`cross_evaluate`, `evaluate_model_file`) imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fer_utils.data import EMOTIONS
from fer_utils.errors import DatasetError, EvaluationError, FerError, ModelFileError
from fer_utils.evaluation import classification_metrics, confusion, predicted_labels
from fer_utils.folders import folder_emotion
from fer_utils.manifest import MANIFEST_NAME, load_manifest, usable_frames

if TYPE_CHECKING:  # TensorFlow is imported only to predict
    import keras

SPLIT_COLUMN = "split"  # the optional manifest column that names each row's side (train, val, test, ...)
Predict = Callable[[np.ndarray], np.ndarray]  # raw-pixel images (N, H, W, 1) -> probabilities


@dataclass(frozen=True)
class CrossReport:
    """A model's scores on another crops folder: what was scored, what was left out, and the numbers.

    `classes` are the model's classes in its output order, as vocabulary names (`renamed` says which
    names of its classes.json were mapped); `present` the classes among the scored frames; `left_out`
    the folder's emotions the model lacks with their frame counts; `absent` the model's classes the
    folder lacks. `confusion` has one row per true and one column per predicted class, both in
    `classes` order, and sums to `frames`."""

    crops: str
    split: str | None
    classes: list[str]
    renamed: dict[str, str]
    frames: int
    present: list[str]
    left_out: dict[str, int]
    absent: list[str]
    accuracy: float
    macro_f1: float
    recall: dict[str, float]
    confusion: list[list[int]]
    majority_emotion: str
    majority_baseline: float
    chance: float

    def to_dict(self) -> dict:
        """The report as plain JSON types (lists, dicts, str, int, float, None)."""
        return asdict(self)

    def per_class(self) -> pd.DataFrame:
        """One row per class present: true frames, frames predicted as it, and recall."""
        matrix = self.confusion_frame()
        table = pd.DataFrame(
            {"frames": matrix.sum(axis=1), "predicted": matrix.sum(axis=0), "recall": pd.Series(self.recall)}
        )
        return table.loc[self.present].rename_axis("class")

    def confusion_frame(self) -> pd.DataFrame:
        """The confusion matrix as a table (rows: true, columns: predicted)."""
        return pd.DataFrame(
            self.confusion,
            index=pd.Index(self.classes, name="true"),
            columns=pd.Index(self.classes, name="predicted"),
        )

    def summary(self) -> str:
        """A few lines for a reader: where, how many, the scores beside their baselines, what was left out."""
        side = f" (split {self.split})" if self.split else ""
        lines = [
            f"{self.frames} frames of {self.crops}{side} scored over {len(self.present)} classes "
            f"({', '.join(self.present)})",
            f"accuracy {self.accuracy:.3f}, macro F1 {self.macro_f1:.3f} (over the classes present); majority "
            f"baseline {self.majority_baseline:.3f} (always {self.majority_emotion}), chance {self.chance:.3f}",
        ]
        if self.left_out:
            counts = ", ".join(f"{name} {count}" for name, count in self.left_out.items())
            lines.append(f"left out, emotions the model lacks: {counts} frames")
        if self.absent:
            lines.append(f"model classes the folder lacks: {', '.join(self.absent)}")
        if self.renamed:
            lines.append("model classes read as: " + ", ".join(f"{k} -> {v}" for k, v in self.renamed.items()))
        return "\n".join(lines)


def vocabulary_classes(classes: Sequence[str]) -> list[str]:
    """The model's class names as vocabulary emotions (`folders.folder_emotion`: `fear` -> `fearful`), in order;
    a name that maps to none, or two names that map to one emotion, is a ModelFileError."""
    mapped = [folder_emotion(str(name)) for name in classes]
    unknown = [name for name, emotion in zip(classes, mapped) if emotion is None]
    if unknown:
        raise ModelFileError(
            f"model classes {unknown} name no emotion of the book's vocabulary ({', '.join(EMOTIONS)} or a synonym "
            "in folders.FOLDER_SYNONYMS): rename them in classes.json to score the model on another folder"
        )
    if len(set(mapped)) != len(mapped):
        raise ModelFileError(f"model classes {list(classes)} name one emotion twice ({mapped}): fix classes.json")
    return [str(emotion) for emotion in mapped]


def split_column(crops: Path) -> pd.Series | None:
    """The `split` column of a crops folder's manifest.csv (one value per row, as text), or None without one.

    Read from the file itself, for a `load_manifest` that does not keep the column (an empty value: no side)."""
    path = Path(crops) / MANIFEST_NAME
    header = pd.read_csv(path, nrows=0).columns
    if SPLIT_COLUMN not in header:
        return None
    return pd.read_csv(path, usecols=[SPLIT_COLUMN], dtype=str, keep_default_na=False)[SPLIT_COLUMN]


def folder_frames(crops: Path, split: str | None = None) -> pd.DataFrame:
    """The usable frames of a crops folder (every one, or those of side `split`), with vocabulary emotions.

    `split` needs a `split` column in the manifest and one of its values; otherwise a DatasetError names
    the sides there are (or says that the manifest records none)."""
    manifest = load_manifest(crops)
    if split is not None:
        sides = manifest[SPLIT_COLUMN] if SPLIT_COLUMN in manifest.columns else split_column(crops)
        sides = pd.Series("", index=manifest.index) if sides is None else sides.fillna("").astype(str)
        available = sorted(set(sides) - {""})
        if not available:
            raise DatasetError(
                f"--split {split}: {Path(crops) / MANIFEST_NAME} has no {SPLIT_COLUMN!r} column (or an empty one): "
                "its dataset records no split. Leave the split out to score every usable frame of the folder"
            )
        if split not in available:
            raise DatasetError(
                f"--split {split}: {Path(crops) / MANIFEST_NAME} has no row of that side; its sides are "
                f"{', '.join(available)}"
            )
        manifest = manifest[sides.to_numpy() == split]
    frames = usable_frames(manifest)
    emotions = frames["emotion"].astype(str).map(lambda name: folder_emotion(name) or name)
    return frames.assign(emotion=emotions)


def scorable(frames: pd.DataFrame, classes: Sequence[str]) -> tuple[pd.DataFrame, dict[str, int], list[str]]:
    """(the frames whose emotion is among `classes`, the other emotions with their frame counts, the
    classes no frame holds). No frame in common is a FerError naming both class lists."""
    known = frames["emotion"].isin(list(classes))
    counts = frames.loc[~known, "emotion"].value_counts()
    left_out = {str(name): int(counts[name]) for name in sorted(counts.index, key=_vocabulary_order)}
    absent = [c for c in classes if c not in set(frames["emotion"])]
    if not known.any():
        folder = sorted(set(frames["emotion"]), key=_vocabulary_order)
        raise FerError(
            f"no frame to score: the model's classes ({', '.join(classes)}) and the folder's emotions "
            f"({', '.join(folder) or 'none: no usable frame'}) have no class in common"
        )
    return frames[known].reset_index(drop=True), left_out, absent


def _vocabulary_order(name: str) -> tuple[int, str]:
    """Sort key: vocabulary order, then any other name alphabetically."""
    return (EMOTIONS.index(name), name) if name in EMOTIONS else (len(EMOTIONS), name)


def cross_report(
    truth: Sequence[str],
    probabilities: np.ndarray,
    classes: Sequence[str],
    *,
    crops: Path | str = "",
    split: str | None = None,
    left_out: dict[str, int] | None = None,
    absent: Sequence[str] = (),
    renamed: dict[str, str] | None = None,
) -> CrossReport:
    """The report of probabilities (one row per scored frame, one column per class of `classes`) against
    the frames' true emotions, which must all be among `classes`."""
    truth = np.asarray(truth, dtype=object)
    probabilities = np.asarray(probabilities)
    if len(truth) == 0 or len(truth) != len(probabilities):
        raise EvaluationError(f"{len(truth)} true emotions but {len(probabilities)} rows of probabilities")
    unknown = sorted(set(truth) - set(classes))
    if unknown:
        raise EvaluationError(f"true emotions {unknown} are not among the classes {list(classes)}")
    predicted = predicted_labels(probabilities, classes)
    present = [c for c in classes if c in set(truth)]
    metrics = classification_metrics(truth, predicted, present)
    matrix = confusion(truth, predicted, classes)
    shares = pd.Series(truth).value_counts(normalize=True)
    commonest = shares[shares == shares.max()].index
    majority = min(commonest, key=list(classes).index)  # a tie goes to the first class in the model's order
    return CrossReport(
        crops=str(crops),
        split=split,
        classes=list(classes),
        renamed=dict(renamed or {}),
        frames=int(len(truth)),
        present=present,
        left_out=dict(left_out or {}),
        absent=list(absent),
        accuracy=metrics["accuracy"],
        macro_f1=metrics["f1_macro"],
        recall={c: float(np.mean(predicted[truth == c] == c)) for c in present},
        confusion=matrix.to_numpy().astype(int).tolist(),
        majority_emotion=str(majority),
        majority_baseline=float(shares.max()),
        chance=1 / len(present),
    )


def cross_evaluate(
    model: keras.Model,
    classes: Sequence[str],
    crops: Path,
    *,
    split: str | None = None,
    predict: Predict | None = None,
) -> CrossReport:
    """Score `model` (one output per name of `classes`) on every usable frame of the crops folder `crops`
    (or those of side `split`) whose emotion it knows, resized to its input side. `predict` (raw-pixel
    images -> probabilities, e.g. a TFLite copy of `model`) replaces the Keras model's own prediction."""
    from fer_utils.pipeline import load_images, make_dataset
    from fer_utils.training import predict_batches

    names = vocabulary_classes(classes)
    frames, left_out, absent = scorable(folder_frames(crops, split), names)
    size = tuple(int(d) for d in model.input_shape[1:3])
    if predict is None:
        probabilities = predict_batches(model, make_dataset(frames, crops, names, image_size=size, cache=False))
    else:
        probabilities = np.asarray(predict(load_images(frames, crops, size)))
    renamed = {str(old): new for old, new in zip(classes, names) if old != new}
    return cross_report(
        frames["emotion"],
        probabilities,
        names,
        crops=crops,
        split=split,
        left_out=left_out,
        absent=absent,
        renamed=renamed,
    )


def evaluate_model_file(model_path: Path, crops: Path, split: str | None = None) -> CrossReport:
    """`cross_evaluate` of a saved model (.keras, classes.json beside it) on the crops folder `crops`."""
    from fer_utils.models import check_classes, load_classes, load_model

    model = load_model(model_path)
    return cross_evaluate(model, check_classes(model, load_classes(model_path)), crops, split=split)
