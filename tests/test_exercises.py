"""The exercise checkers: right answers pass, wrong and missing ones fail with a reason, on real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fer_utils import exercises
from fer_utils.data import index_ravdess
from fer_utils.sample import generate_sample
from fer_utils.splits import split_frames


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The clip index of a tiny generated sample: 3 actors x 2 emotions x 2 intensities (real mp4 files)."""
    out = tmp_path_factory.mktemp("sample")
    generate_sample(out, actors=[1, 2, 3], emotions=[3, 5], intensities=[1, 2], n_frames=4, workers=0, progress=False)
    return index_ravdess(out).clips


def test_feedback_reads_as_verdict() -> None:
    good, bad = exercises.Feedback(True, "fine"), exercises.Feedback(False, "no")
    assert good and not bad
    assert repr(good).startswith("✅") and repr(bad).startswith("❌")
    assert "Correct" in good._repr_markdown_() and "Not yet" in bad._repr_markdown_()


def test_clip_count_on_a_generated_sample(clips: pd.DataFrame) -> None:
    happy = int((clips["emotion"] == "happy").sum())
    assert happy == 6
    assert exercises.check_clip_count(happy, clips, "happy")
    assert not exercises.check_clip_count(happy + 1, clips, "happy")
    missing = exercises.check_clip_count(None, clips, "happy")
    assert not missing and "Not answered" in missing.message
    assert not exercises.check_clip_count("six", clips, "happy")


def test_emotion_from_a_ravdess_name() -> None:
    assert exercises.check_emotion_from_name("fearful", "02-01-06-01-02-01-12.mp4")
    assert exercises.check_emotion_from_name(" Fearful ", "02-01-06-01-02-01-12.mp4")
    assert not exercises.check_emotion_from_name("happy", "02-01-06-01-02-01-12.mp4")
    assert "not one of" in exercises.check_emotion_from_name("joy", "02-01-06-01-02-01-12.mp4").message


def test_detection_rate_and_crop_count() -> None:
    manifest = pd.DataFrame({"status": ["ok", "ok", "no_face", "ok"], "emotion": ["sad", "sad", "sad", "happy"]})
    assert exercises.check_detection_rate(0.75, manifest)
    assert not exercises.check_detection_rate(0.5, manifest)
    assert exercises.check_crop_count(2, manifest, "sad") and not exercises.check_crop_count(3, manifest, "sad")


def test_parameter_checkers_agree_with_keras() -> None:
    from fer_utils.models import build_paper_cnn

    model = build_paper_cnn(8, (180, 180, 1))
    assert exercises.check_conv_params(model.get_layer("conv2").count_params(), 3, 16, 64)
    assert exercises.check_dense_params(model.get_layer("fc").count_params(), 22 * 22 * 64, 16)
    assert not exercises.check_conv_params(3 * 3 * 16 * 64, 3, 16, 64), "forgetting the biases is wrong"


def test_accuracy_from_a_real_confusion_matrix() -> None:
    from sklearn.metrics import accuracy_score

    from fer_utils.evaluation import confusion

    truth = ["happy", "sad", "sad", "angry", "happy", "sad"]
    predicted = ["happy", "sad", "happy", "angry", "sad", "sad"]
    matrix = confusion(truth, predicted, ["happy", "sad", "angry"])
    assert exercises.check_accuracy_from_confusion(accuracy_score(truth, predicted), matrix)
    assert not exercises.check_accuracy_from_confusion(0.5, matrix)


def test_majority_vote_and_top_emotion() -> None:
    assert exercises.check_majority_vote("happy", ["happy", "happy", "calm", "happy", "neutral", "calm"])
    assert not exercises.check_majority_vote("calm", ["happy", "happy", "calm", "happy", "neutral", "calm"])
    assert exercises.check_top_emotion("sad", np.array([0.1, 0.7, 0.2]), ["happy", "sad", "angry"])
    assert not exercises.check_top_emotion("happy", np.array([0.1, 0.7, 0.2]), ["happy", "sad", "angry"])


def test_history_checkers() -> None:
    history = pd.DataFrame({"epoch": [0, 1, 2], "accuracy": [0.5, 0.8, 0.95], "val_accuracy": [0.5, 0.7, 0.6],
                            "val_loss": [1.2, 0.9, 1.1]})
    assert exercises.check_generalization_gap(0.35, history)
    assert not exercises.check_generalization_gap(0.1, history)
    assert exercises.check_best_epoch(1, history) and not exercises.check_best_epoch(2, history)


def test_leak_checkers_on_real_splits(clips: pd.DataFrame) -> None:
    random = split_frames(clips, "random", 0.34, 0.0, seed=0)
    shared = len(set(random.train["clip_id"]) & set(random.test["clip_id"]))
    assert exercises.check_shared_clips(shared, random.train, random.test)
    subject = split_frames(clips, "subject", 0.34, 0.0, seed=0)
    assert exercises.check_shared_subjects(0, subject.train, subject.test)
    assert not exercises.check_shared_subjects(1, subject.train, subject.test)


def test_comparison_and_deployment_checkers() -> None:
    table = pd.DataFrame({"model": ["a", "b", "c"], "params": [300, 100, 200]})
    assert exercises.check_smallest("b", table) and not exercises.check_smallest("c", table)
    assert exercises.check_param_ratio(47.2, 25_636_712, 542_136)
    assert not exercises.check_param_ratio(40, 25_636_712, 542_136)
    assert exercises.check_compression(4.0, 4000, 1000) and not exercises.check_compression(2.0, 4000, 1000)


def test_confidence_interval_checker_names_the_mistake() -> None:
    accuracies = np.array([0.91, 0.86, 0.95, 0.88, 0.93])
    from scipy import stats

    half = stats.t.ppf(0.975, 4) * accuracies.std(ddof=1) / np.sqrt(5)
    assert exercises.check_confidence_interval((accuracies.mean() - half, accuracies.mean() + half), accuracies)
    normal = 1.96 * accuracies.std(ddof=1) / np.sqrt(5)  # the normal quantile instead of Student's t
    feedback = exercises.check_confidence_interval((accuracies.mean() - normal, accuracies.mean() + normal), accuracies)
    assert not feedback and "too narrow" in feedback.message and "Student's t" in feedback.message
    no_sqrt = stats.t.ppf(0.975, 4) * accuracies.std(ddof=1)
    feedback = exercises.check_confidence_interval((accuracies.mean() - no_sqrt, accuracies.mean() + no_sqrt), accuracies)
    assert not feedback and "too wide" in feedback.message
    feedback = exercises.check_confidence_interval((0.5, 0.6), accuracies)
    assert not feedback and "centred on the mean" in feedback.message
    assert "Not answered" in exercises.check_confidence_interval(None, accuracies).message


def test_restricted_accuracy_checker_spots_the_unrestricted_answer() -> None:
    classes = ["neutral", "calm", "happy", "sad"]
    probabilities = np.array([[0.1, 0.6, 0.2, 0.1],   # true neutral: 4-way calm, 2-way happy (wrong)
                              [0.3, 0.5, 0.1, 0.1],   # true neutral: 4-way calm, 2-way neutral (right)
                              [0.1, 0.2, 0.6, 0.1]])  # true happy: happy either way (right)
    truth = ["neutral", "neutral", "happy"]
    assert exercises.check_restricted_accuracy(2 / 3, probabilities, classes, truth, ["neutral", "happy"])
    feedback = exercises.check_restricted_accuracy(1 / 3, probabilities, classes, truth, ["neutral", "happy"])
    assert not feedback and "accuracy over all the classes" in feedback.message and "keep only the columns" in feedback.message
    assert not exercises.check_restricted_accuracy(1.0, probabilities, classes, truth, ["neutral", "happy"])
