"""Metrics for emotion classifiers (scikit-learn): frame scores, per-class report, confusion, clip votes, faces from
elsewhere (`known_class_scores`) and test-time augmentation (`tta_probabilities`; the live page copies `tta_views`).

The headline F1 is the **macro** F1 over the classes present among the true labels, so a poor minority class cannot
hide behind frequent ones; an absent class is named, never averaged in."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

from fer_utils.errors import InputError
from fer_utils.registry import TTA_MODES, TTA_SHIFT

VOTE_METHODS = ("mean", "majority")
LEVELS = ("frame", "clip")


def predicted_labels(probabilities: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """The class name of the highest probability in each row."""
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2 or probabilities.shape[1] != len(classes):
        raise InputError(f"probabilities of shape {probabilities.shape} do not match {len(classes)} classes")
    return np.asarray(classes, dtype=object)[probabilities.argmax(axis=1)]


def present_classes(y_true: Sequence[str], classes: Sequence[str]) -> list[str]:
    """The classes of `classes` that the true labels hold, in `classes` order: those a macro F1 averages."""
    held = set(np.asarray(y_true, dtype=object))
    return [name for name in classes if name in held]


def absent_classes(y_true: Sequence[str], classes: Sequence[str]) -> list[str]:
    """The classes of `classes` that no true label names, in `classes` order (named, never averaged in)."""
    held = set(np.asarray(y_true, dtype=object))
    return [name for name in classes if name not in held]


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]) -> dict[str, float]:
    """Accuracy, macro F1 (the headline) and weighted F1 over the classes present among `y_true`, and the count."""
    labels = present_classes(y_true, classes) or list(classes)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else float("nan"),
        "f1_macro": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "f1_weighted": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        "n": int(len(y_true)),
    }


def per_class_report(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]) -> pd.DataFrame:
    """Per-class precision, recall, F1 and support (scikit-learn's classification_report) as a table."""
    report = classification_report(y_true, y_pred, labels=list(classes), output_dict=True, zero_division=0)
    return pd.DataFrame(report).T.loc[list(classes)].astype({"support": int})


def confusion(
    y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str], normalize: str | None = None
) -> pd.DataFrame:
    """Confusion matrix with true classes as rows and predictions as columns (`normalize="true"` for rates)."""
    matrix = confusion_matrix(y_true, y_pred, labels=list(classes), normalize=normalize)
    index = pd.Index(list(classes), name="true")
    return pd.DataFrame(matrix, index=index, columns=pd.Index(list(classes), name="predicted"))


def _clip_keys(frames: pd.DataFrame) -> list[str]:
    """Columns that identify a clip: dataset + clip_id when the table has a dataset
    column."""
    if "clip_id" not in frames.columns or "emotion" not in frames.columns:
        raise InputError("clip voting needs a table with clip_id and emotion columns")
    return ["dataset", "clip_id"] if "dataset" in frames.columns else ["clip_id"]


def clip_vote(
    frames: pd.DataFrame,
    probabilities: np.ndarray,
    classes: Sequence[str],
    method: str = "mean",
) -> pd.DataFrame:
    """One row per clip: its true emotion, the voted prediction, the frame count and
    whether it is right.

    `mean` averages the frames' probabilities and takes the top class; `majority` takes
    the most frequent frame prediction, breaking ties by the mean probability. Rows of
    `frames` and `probabilities` must be in the same order.
    """
    if method not in VOTE_METHODS:
        raise InputError(
            f"unknown vote method {method!r}; choose one of {VOTE_METHODS}",
        )
    probabilities = np.asarray(probabilities, dtype=float)
    if len(frames) != len(probabilities):
        raise InputError(
            f"{len(frames)} frames but {len(probabilities)} rows of probabilities",
        )
    keys = _clip_keys(frames)
    table = frames[keys + ["emotion"]].reset_index(drop=True)
    prob = pd.DataFrame(probabilities, columns=list(classes))
    votes = prob.idxmax(axis=1).to_numpy()
    rows = []
    for key, group in table.groupby(keys, sort=True):
        mean = prob.loc[group.index].mean()
        if method == "majority":
            counts = pd.Series(votes[group.index]).value_counts()
            tied = counts[counts == counts.max()].index
            predicted = mean[list(tied)].idxmax()
        else:
            predicted = mean.idxmax()
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        truth = group["emotion"].iloc[0]
        row.update(
            emotion=truth,
            predicted=predicted,
            n_frames=len(group),
            correct=bool(predicted == truth),
        )
        rows.append(row)
    return pd.DataFrame(rows)


def evaluate_predictions(frames: pd.DataFrame, probabilities: np.ndarray, classes: Sequence[str]) -> dict[str, dict]:
    """Frame and clip (mean vote) metrics of one test set and the classes it lacks (`absent`), JSON-ready."""
    y_pred = predicted_labels(probabilities, classes)
    result: dict = {"frame": classification_metrics(frames["emotion"].to_numpy(), y_pred, classes)}
    if "clip_id" in frames.columns:
        clips = clip_vote(frames, probabilities, classes)
        result["clip"] = classification_metrics(clips["emotion"], clips["predicted"], classes)
    result["absent"] = absent_classes(frames["emotion"], classes)
    return result


def level_predictions(
    frames: pd.DataFrame, probabilities: np.ndarray, classes: Sequence[str], level: str = "frame"
) -> pd.DataFrame:
    """One row per test frame or per clip (mean vote): emotion, predicted, confidence (its mean probability), image
    and frame_index (a clip's middle test frame's; -1 when the table has none)."""
    if level not in LEVELS:
        raise InputError(f"level must be one of {LEVELS}, got {level!r}")
    probabilities = np.asarray(probabilities, dtype=float)
    table = frames.reset_index(drop=True).assign(
        predicted=predicted_labels(probabilities, classes), confidence=probabilities.max(axis=1)
    )
    if "frame_index" not in table.columns:
        table["frame_index"] = -1
    keep = ["clip_id", "emotion", "predicted", "confidence", "image", "frame_index"]
    if level == "frame":
        return table[keep]
    clips = clip_vote(table, probabilities, classes, method="mean")
    columns = {c: i for i, c in enumerate(classes)}
    middle = table.groupby("clip_id")["image"].agg(lambda images: sorted(images)[len(images) // 2])
    frame_of = table.set_index("image")["frame_index"]
    mean = pd.DataFrame(probabilities).groupby(table["clip_id"]).mean()
    clips = clips.assign(
        confidence=[mean.loc[c, columns[p]] for c, p in zip(clips["clip_id"], clips["predicted"])],
        image=clips["clip_id"].map(middle),
    )
    return clips.assign(frame_index=clips["image"].map(frame_of))[keep]


def misclassified(table: pd.DataFrame, emotion: str = "all", limit: int = 6) -> pd.DataFrame:
    """The most confident wrong predictions of a `level_predictions` table (of one true emotion, or all)."""
    wrong = table[table["emotion"] != table["predicted"]]
    if emotion != "all":
        wrong = wrong[wrong["emotion"] == emotion]
    return wrong.sort_values(["confidence", "clip_id"], ascending=[False, True]).head(limit)


def known_class_scores(truth: Sequence[str], probabilities: np.ndarray, classes: Sequence[str]) -> dict[str, object]:
    """The one scoring of a model on frames of classes it knows; the majority baseline's tie goes to the first class,
    the accuracy among the classes present is NaN with only one (choosing is no test)."""
    truth = np.asarray(truth, dtype=object)
    probabilities = np.asarray(probabilities)
    if len(truth) == 0 or len(truth) != len(probabilities):
        raise InputError(f"{len(truth)} true emotions but {len(probabilities)} rows of probabilities")
    if unknown := sorted(set(truth) - set(classes)):
        raise InputError(f"true emotions {unknown} are not among the classes {list(classes)}")
    predicted = predicted_labels(probabilities, classes)
    present = present_classes(truth, classes)
    metrics = classification_metrics(truth, predicted, classes)
    columns = [list(classes).index(name) for name in present]
    among = np.asarray(present, dtype=object)[probabilities[:, columns].argmax(axis=1)]
    shares = pd.Series(truth).value_counts(normalize=True)
    majority = min(shares[shares == shares.max()].index, key=list(classes).index)
    return {
        "frames": int(len(truth)),
        "present": present,
        "absent": absent_classes(truth, classes),
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["f1_macro"],
        "recall": {name: float(np.mean(predicted[truth == name] == name)) for name in present},
        "confusion": confusion(truth, predicted, classes).to_numpy().astype(int).tolist(),
        "majority_emotion": str(majority),
        "majority_baseline": float(shares.max()),
        "chance": 1 / len(present),
        "chance_all": 1 / len(classes),
        "accuracy_among_present": float(np.mean(among == truth)) if len(present) > 1 else np.nan,
    }


def transfer_scores(truth: Sequence[str], probabilities: np.ndarray, classes: Sequence[str]) -> dict[str, object]:
    """A chapter's table row for a model on faces from elsewhere (`known_class_scores`): frames, emotions held,
    accuracy over all its classes and among the set's emotions only (NaN for one emotion), each beside chance."""
    scores = known_class_scores(truth, probabilities, classes)
    several = len(scores["present"]) > 1
    return {
        "frames": scores["frames"],
        "emotions": len(scores["present"]),
        f"{len(classes)}-way accuracy": scores["accuracy"],
        f"chance ({len(classes)}-way)": scores["chance_all"],
        "accuracy among its emotions": scores["accuracy_among_present"],
        "chance (its emotions)": scores["chance"] if several else np.nan,
    }


SHIFTS: tuple[tuple[int, int], ...] = ((TTA_SHIFT, 0), (-TTA_SHIFT, 0), (0, TTA_SHIFT), (0, -TTA_SHIFT))  # (rows, cols)


def check_tta(mode: str) -> str:
    """`mode` when it is one of TTA_MODES, else an InputError naming them."""
    if mode not in TTA_MODES:
        raise InputError(f"unknown test-time augmentation {mode!r}; choose one of {', '.join(TTA_MODES)}")
    return mode


def shifted(images: np.ndarray, rows: int, columns: int, pad: int = TTA_SHIFT) -> np.ndarray:
    """`images` (N, H, W, C) moved `rows` down and `columns` right, the uncovered edge mirrored in as in training."""
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="symmetric")
    height, width = images.shape[1:3]
    top, left = pad - rows, pad - columns
    return np.ascontiguousarray(padded[:, top : top + height, left : left + width])


def tta_views(images: np.ndarray, mode: str) -> list[np.ndarray]:
    """The views `mode` averages of a batch (N, H, W, C): itself, its mirror ("flip"), its 4 shifts ("flip-shift")."""
    check_tta(mode)
    if mode == "none":
        return [images]
    images = np.asarray(images)
    views = [images, np.ascontiguousarray(images[:, :, ::-1])]
    if mode == "flip-shift":
        views += [shifted(images, rows, columns) for rows, columns in SHIFTS]
    return views


def tta_probabilities(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, mode: str) -> np.ndarray:
    """The mean over `mode`'s views of `predict`'s class probabilities for `images`, one call per view (a
    TFLite copy of fixed batch takes each view as it takes the images); "none" is `predict(images)` itself."""
    views = tta_views(images, mode)
    if len(views) == 1:
        return np.asarray(predict(views[0]))
    return np.mean([np.asarray(predict(view)) for view in views], axis=0)
