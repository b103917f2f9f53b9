"""The checkers of chapter 4, training: each computes the expected answer from the real data it is given."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from fer_utils.book.exercises.feedback import Feedback, check_number, coding_exercise, run_student


def check_accuracy_from_confusion(answer: object, confusion: pd.DataFrame) -> Feedback:
    """Accuracy from a confusion matrix of counts: the diagonal over the total."""
    values = confusion.to_numpy()
    return check_number(answer, float(values.trace() / values.sum()), "the accuracy", 1e-3, 1e-3)


def _majority_by_clip(frames: pd.DataFrame, predicted: Sequence[str]) -> dict[str, str]:
    """Per clip, the most frequent frame prediction; a tie goes to the tied label of the clip's latest frame."""
    table = frames[["clip_id", "frame_index"]].reset_index(drop=True).assign(predicted=list(predicted))
    table["clip_id"] = table["clip_id"].astype(str)
    counts = table.groupby(["clip_id", "predicted"])["frame_index"].transform("size")
    tied = table[counts == counts.groupby(table["clip_id"]).transform("max")]
    latest = tied.sort_values(["clip_id", "frame_index"], kind="stable").groupby("clip_id")["predicted"].last()
    return {clip: str(label) for clip, label in latest.items()}


def _clip_predictions(frames: pd.DataFrame, predicted: Sequence[str], clip: str) -> pd.DataFrame:
    """The frame index and prediction of each test frame of one clip, in frame order."""
    table = frames.reset_index(drop=True).assign(predicted=list(predicted))
    return table.loc[table["clip_id"].astype(str) == clip, ["frame_index", "predicted"]].sort_values("frame_index")


def _describe_clip(rows: pd.DataFrame) -> str:
    """`frame 3: happy, frame 8: calm` for the rows of `_clip_predictions`."""
    return ", ".join(f"frame {f}: {p}" for f, p in zip(rows["frame_index"], rows["predicted"]))


@coding_exercise
def check_majority_vote(
    vote: Callable[..., object], frames: pd.DataFrame, probabilities: np.ndarray, classes: Sequence[str]
) -> Feedback:
    """`vote(frames, predicted)` returns {clip_id: label}: each clip's most frequent frame prediction, a tie going
    to the tied label of its latest frame."""
    from fer_utils.evaluate.metrics import clip_vote, predicted_labels

    predicted = list(predicted_labels(probabilities, classes))
    answer = run_student(vote, frames.copy(), list(predicted))
    if type(answer) is not dict:
        return Feedback(
            False, f"`{vote.__name__}` returned a {type(answer).__name__}: return a dict {{clip_id: label}}."
        )
    got = {}
    for key, value in answer.items():
        key, value = (v.item() if isinstance(v, np.generic) else v for v in (key, value))
        if type(key) not in (str, int) or type(value) is not str:
            return Feedback(False, f"your vote {key!r}: {value!r} is not a clip id and a label (a str).")
        got[str(key)] = value
    expected = _majority_by_clip(frames, predicted)
    means = clip_vote(frames, probabilities, classes, "mean")
    mean = dict(zip(means["clip_id"].astype(str), means["predicted"]))
    missing = sorted(set(expected) - set(got))
    if missing or len(got) != len(expected):
        return Feedback(
            False,
            f"your votes cover {len(got)} clips, the test frames come from {len(expected)}"
            + (f" (clip {missing[0]} is missing)." if missing else "."),
        )
    for clip, label in expected.items():
        if got[clip] == label:
            continue
        rows = _clip_predictions(frames, predicted, clip)
        counts = rows["predicted"].value_counts()
        if (counts == counts.max()).sum() > 1:
            why = f"a tie between {', '.join(sorted(counts[counts == counts.max()].index))}: the latest tied frame says {label}"
        else:
            why = f"the majority is {label}"
        if got[clip] == mean[clip] and mean[clip] != label:
            why += f" ({got[clip]} is the mean vote of the probabilities: count the frame predictions instead)"
        return Feedback(False, f"clip {clip} ({_describe_clip(rows)}): you say {got[clip]}, but {why}.")
    differ = [c for c in expected if expected[c] != mean[c]]
    example = (
        f", e.g. clip {differ[0]} ({_describe_clip(_clip_predictions(frames, predicted, differ[0]))}): majority "
        f"{expected[differ[0]]}, mean {mean[differ[0]]}"
        if differ
        else ""
    )
    return Feedback(
        True,
        f"your votes match on all {len(expected)} clips; on {len(differ)} of them the majority "
        f"and the mean vote disagree{example}.",
    )
