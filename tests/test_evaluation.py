"""Metric functions and clip voting against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fer_utils.evaluate.metrics import (
    classification_metrics,
    clip_vote,
    confusion,
    evaluate_predictions,
    per_class_report,
    predicted_labels,
    transfer_scores,
)

CLASSES = ["neutral", "happy", "sad"]
# 6 frames: truth n n h h s s ; predictions n h h h s n
TRUTH = ["neutral", "neutral", "happy", "happy", "sad", "sad"]
PRED = ["neutral", "happy", "happy", "happy", "sad", "neutral"]


def test_accuracy_and_f1_match_hand_computation() -> None:
    m = classification_metrics(TRUTH, PRED, CLASSES)
    # per class: neutral P=1/2 R=1/2 F=1/2; happy P=2/3 R=1 F=4/5; sad P=1 R=1/2 F=2/3
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["f1_macro"] == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    assert m["f1_weighted"] == pytest.approx((2 * 1 / 2 + 2 * 4 / 5 + 2 * 2 / 3) / 6)
    assert m["n"] == 6


def test_macro_f1_counts_a_class_never_predicted_as_zero_and_leaves_an_absent_one_out() -> None:
    m = classification_metrics(["sad", "happy"], ["happy", "happy"], CLASSES)
    # happy F1 = 2/3, sad F1 = 0 (present, never predicted); neutral absent from the truth: not averaged in
    assert m["f1_macro"] == pytest.approx((2 / 3 + 0) / 2)


def test_every_path_gives_one_macro_f1_on_a_side_lacking_a_class() -> None:
    """Perfect answers on a side holding two of a model's three classes scored 0.667 by the
    training path (the absent class averaged in as 0) and 1.0 by the cross-dataset path. One definition now:
    the classes present, the absent one named."""
    from fer_utils.book import realfaces
    from fer_utils.deploy.crossdata import cross_report

    classes = ["neutral", "happy", "sad"]
    truth = ["neutral", "happy", "happy", "neutral"]
    probabilities = np.eye(3)[[0, 1, 1, 0]]
    frames = pd.DataFrame({"emotion": truth, "clip_id": ["a", "b", "c", "d"]})
    training = evaluate_predictions(frames, probabilities, classes)
    assert training["frame"]["f1_macro"] == training["clip"]["f1_macro"] == 1.0 and training["absent"] == ["sad"]
    cross = cross_report(truth, probabilities, classes)
    assert cross.macro_f1 == 1.0 and cross.absent == [] and cross.present == ["neutral", "happy"]
    table = frames.assign(set="s", predicted=truth, **{f"p_{c}": probabilities[:, i] for i, c in enumerate(classes)})
    real = realfaces.score_real(table, classes).set_index("set").loc[realfaces.POOLED]
    assert real["macro F1"] == 1.0 and real["emotions"] == 2
    assert transfer_scores(truth, probabilities, classes)["3-way accuracy"] == 1.0


def test_per_class_report_and_confusion() -> None:
    report = per_class_report(TRUTH, PRED, CLASSES)
    assert list(report.index) == CLASSES
    assert report.loc["happy", "precision"] == pytest.approx(2 / 3)
    assert report.loc["sad", "recall"] == pytest.approx(1 / 2)
    assert report["support"].tolist() == [2, 2, 2]
    matrix = confusion(TRUTH, PRED, CLASSES)
    assert matrix.to_numpy().tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    rates = confusion(TRUTH, PRED, CLASSES, normalize="true")
    np.testing.assert_allclose(rates.sum(axis=1), 1.0)


def test_predicted_labels_checks_shape() -> None:
    assert list(predicted_labels(np.array([[0.1, 0.7, 0.2]]), CLASSES)) == ["happy"]
    with pytest.raises(ValueError, match="do not match"):
        predicted_labels(np.ones((2, 2)), CLASSES)


def _frames() -> tuple[pd.DataFrame, np.ndarray]:
    """Clip a (happy): 3 frames, 2 voted sad weakly, 1 happy strongly; clip b (sad): 2 frames sad."""
    frames = pd.DataFrame(
        {"dataset": "toy", "clip_id": ["a", "a", "a", "b", "b"], "emotion": ["happy", "happy", "happy", "sad", "sad"]}
    )
    probabilities = np.array(
        [
            [0.0, 0.40, 0.60],
            [0.0, 0.45, 0.55],
            [0.0, 0.95, 0.05],
            [0.2, 0.10, 0.70],
            [0.1, 0.20, 0.70],
        ]
    )
    return frames, probabilities


def test_clip_vote_mean_and_majority_differ_as_computed_by_hand() -> None:
    frames, probabilities = _frames()
    mean = clip_vote(frames, probabilities, CLASSES, "mean").set_index("clip_id")
    # clip a mean: happy (0.40+0.45+0.95)/3 = 0.60 > sad 0.40 -> happy (right)
    assert mean.loc["a", "predicted"] == "happy" and mean.loc["a", "correct"]
    majority = clip_vote(frames, probabilities, CLASSES, "majority").set_index("clip_id")
    # clip a majority: 2 of 3 frames say sad -> sad (wrong)
    assert majority.loc["a", "predicted"] == "sad" and not majority.loc["a", "correct"]
    assert mean.loc["b", "predicted"] == majority.loc["b", "predicted"] == "sad"
    assert mean["n_frames"].tolist() == [3, 2]


def test_majority_tie_is_broken_by_mean_probability() -> None:
    frames = pd.DataFrame({"clip_id": ["c", "c"], "emotion": ["sad", "sad"]})
    probabilities = np.array([[0.0, 0.9, 0.1], [0.0, 0.4, 0.6]])  # one vote each; happy has mean 0.65
    assert clip_vote(frames, probabilities, CLASSES, "majority")["predicted"].item() == "happy"


def test_evaluate_predictions_frame_and_clip() -> None:
    frames, probabilities = _frames()
    result = evaluate_predictions(frames, probabilities, CLASSES)
    assert result["frame"]["accuracy"] == pytest.approx(3 / 5)
    assert result["clip"]["accuracy"] == 1.0 and result["clip"]["n"] == 2
    with pytest.raises(ValueError, match="4 frames but 5"):
        clip_vote(frames.head(4), probabilities, CLASSES)


def test_transfer_scores_count_right_answers_over_all_classes_and_among_the_sets_own() -> None:
    """Four neutral/happy faces scored by a 3-class model: over all classes the highest probability is
    'sad' twice (2 of 4 right); among the set's two emotions only the first face is still wrong (3 of 4)."""
    classes = ["neutral", "happy", "sad"]
    probabilities = np.array([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3], [0.1, 0.7, 0.2], [0.35, 0.05, 0.6]])
    scores = transfer_scores(["neutral", "neutral", "happy", "neutral"], probabilities, classes)
    assert scores == {
        "frames": 4,
        "emotions": 2,
        "3-way accuracy": 0.5,
        "chance (3-way)": pytest.approx(1 / 3),
        "accuracy among its emotions": 0.75,
        "chance (its emotions)": 0.5,
    }
    one = transfer_scores(["happy", "happy"], probabilities[2:], classes)
    assert one["3-way accuracy"] == 0.5 and np.isnan(one["accuracy among its emotions"])
    assert np.isnan(one["chance (its emotions)"])
