"""The exercise checkers: right answers pass, wrong and missing ones fail with a reason, on real data."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
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


def test_majority_vote() -> None:
    assert exercises.check_majority_vote("happy", ["happy", "happy", "calm", "happy", "neutral", "calm"])
    assert not exercises.check_majority_vote("calm", ["happy", "happy", "calm", "happy", "neutral", "calm"])


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


def test_comparison_checkers() -> None:
    table = pd.DataFrame({"model": ["a", "b", "c"], "params": [300, 100, 200]})
    assert exercises.check_smallest("b", table) and not exercises.check_smallest("c", table)
    assert exercises.check_param_ratio(47.2, 25_636_712, 542_136)
    assert not exercises.check_param_ratio(40, 25_636_712, 542_136)


# --- Chapters 8 (deployment) and 9 (real faces): coding exercises, checked with the chapters' solutions ---

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def solution_function(notebook_stem: str, name: str) -> Callable[..., object]:
    """The function `name` as the hidden solution cell of chapter `notebook_stem` defines it: the cell's
    imports and definitions are run, not its checker call (which needs the chapter's variables)."""
    nb = json.loads((NOTEBOOKS / f"{notebook_stem}.ipynb").read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or "solution" not in cell["metadata"].get("tags", []):
            continue
        tree = ast.parse("".join(cell["source"]))
        if any(isinstance(node, ast.FunctionDef) and node.name == name for node in tree.body):
            kept = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef))]
            namespace: dict[str, object] = {}
            exec(compile(ast.Module(body=kept, type_ignores=[]), f"{notebook_stem}:{name}", "exec"), namespace)
            return namespace[name]  # type: ignore[return-value]
    raise LookupError(f"{notebook_stem} has no solution cell defining {name}")


def stub(*_: object) -> object:
    """An unanswered exercise."""
    raise NotImplementedError


@pytest.fixture(scope="module")
def still_crops() -> np.ndarray:
    """The 24 real RAVDESS stills as 48×48 gray crops of their centre (raw pixels, N×48×48×1 float32)."""
    import cv2

    from fer_utils.assets import still_paths

    crops = []
    for path in still_paths():
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        side = min(gray.shape)
        top, left = (gray.shape[0] - side) // 2, (gray.shape[1] - side) // 2
        crops.append(cv2.resize(gray[top:top + side, left:left + side], (48, 48), interpolation=cv2.INTER_AREA))
    return np.stack(crops)[..., None].astype(np.float32)


@pytest.fixture(scope="module")
def still_model(still_crops: np.ndarray):
    """The paper's CNN at 48×48 trained for a few epochs to tell the stills' actors apart by sex (odd RAVDESS
    actors are male): a small real model whose probabilities differ from face to face."""
    import keras

    from fer_utils.models import build_paper_cnn

    keras.utils.set_random_seed(0)
    model = build_paper_cnn(2, (48, 48, 1), dropout=(0.0, 0.0, 0.0))
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.fit(still_crops, np.arange(24) % 2, epochs=15, batch_size=8, verbose=0)
    return model


def converter_answer(optimize: bool = True, calibrate: bool = True, io: str | None = "int8", scale: float = 1.0):
    """A student's `to_int8` with one knob set differently (the mistakes the checker must name)."""
    import tensorflow as tf

    def to_int8(model, images):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if optimize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if calibrate:
            data = np.asarray(images, np.float32) * scale
            converter.representative_dataset = lambda: ([image[None]] for image in data)
        if io:
            converter.inference_input_type = converter.inference_output_type = getattr(tf, io)
        return converter.convert()

    return to_int8


def test_int8_exercise_passes_the_chapter_solution(still_model, still_crops: np.ndarray) -> None:
    float32_bytes = 4 * still_model.count_params()  # about the float32 flatbuffer's size (its converting is slow)
    feedback = exercises.check_int8_model(solution_function("08_deployment", "to_int8"), still_model,
                                          still_crops[::2], still_crops, float32_bytes)
    assert feedback, feedback.message
    assert "smaller than the float32 one" in feedback.message and "24 real crops" in feedback.message
    unanswered = exercises.check_int8_model(stub, still_model, still_crops, still_crops, float32_bytes)
    assert not unanswered and "Not answered" in unanswered.message
    text = exercises.check_int8_model(lambda m, x: "model.tflite", still_model, still_crops, still_crops, float32_bytes)
    assert not text and "returned a str" in text.message


@pytest.mark.slow
def test_int8_exercise_names_each_missing_setting(still_model, still_crops: np.ndarray) -> None:
    from fer_utils.deploy import to_tflite

    def check(answer):
        return exercises.check_int8_model(answer, still_model, still_crops[::2], still_crops, 400_000)

    plain = check(converter_answer(optimize=False, calibrate=False, io=None))
    assert not plain and "weights are float32" in plain.message and "converter.optimizations" in plain.message
    dynamic = check(converter_answer(calibrate=False, io=None))
    assert not dynamic and "no representative dataset" in dynamic.message and "activations are not int8" in dynamic.message
    uint8 = check(lambda m, x: to_tflite(m, "int8", x))  # the chapter's own int8 mode: uint8 in and out
    assert not uint8 and "input is uint8" in uint8.message and "tf.int8" in uint8.message
    float_io = check(converter_answer(io=None))
    assert not float_io and "input is float32" in float_io.message
    rescaled = check(converter_answer(scale=1 / 255))
    assert not rescaled and "raw pixels 0–255" in rescaled.message


def test_occlusion_exercise(still_model, still_crops: np.ndarray) -> None:
    occlusion_map = solution_function("08_deployment", "occlusion_map")
    face = still_crops[3]
    feedback = exercises.check_occlusion_map(occlusion_map, still_model, face, 1)
    assert feedback and "Grad-CAM's peak" in feedback.message, feedback.message
    flipped = exercises.check_occlusion_map(lambda *a: -occlusion_map(*a), still_model, face, 1)
    assert not flipped and "wrong sign" in flipped.message

    def covered_black(model, image, class_index, patch=8):  # the squares filled with 0, not the mean
        rows, cols = 48 // patch, 48 // patch
        copies = np.repeat(image[None], rows * cols, axis=0)
        for k in range(rows * cols):
            r, c = divmod(k, cols)
            copies[k, r * patch:(r + 1) * patch, c * patch:(c + 1) * patch] = 0
        p = model.predict(np.concatenate([image[None], copies]), verbose=0)[:, class_index]
        return (p[0] - p[1:]).reshape(rows, cols)

    zero = exercises.check_occlusion_map(covered_black, still_model, face, 1)
    assert not zero and "black (0)" in zero.message
    small = exercises.check_occlusion_map(lambda m, x, k, p: occlusion_map(m, x, k, p)[:-1], still_model, face, 1)
    assert not small and "must be (6, 6)" in small.message
    assert "Not answered" in exercises.check_occlusion_map(stub, still_model, face, 1).message


def test_confidence_interval_exercise_names_the_mistake() -> None:
    from scipy import stats

    accuracies = np.array([0.91, 0.86, 0.95, 0.88, 0.93])
    assert exercises.check_confidence_interval(solution_function("09_real_faces", "confidence_interval"), accuracies)

    def normal(values):  # the normal quantile instead of Student's t
        half = 1.96 * np.std(values, ddof=1) / np.sqrt(len(values))
        return np.mean(values) - half, np.mean(values) + half

    feedback = exercises.check_confidence_interval(normal, accuracies)
    assert not feedback and "too narrow" in feedback.message and "Student's t" in feedback.message

    def no_sqrt(values):
        half = stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1)
        return np.mean(values) - half, np.mean(values) + half

    feedback = exercises.check_confidence_interval(no_sqrt, accuracies)
    assert not feedback and "too wide" in feedback.message
    feedback = exercises.check_confidence_interval(lambda values: (0.5, 0.6), accuracies)
    assert not feedback and "centred on the mean" in feedback.message
    feedback = exercises.check_confidence_interval(lambda values: np.mean(values), accuracies)
    assert not feedback and "a pair of numbers" in feedback.message
    assert "Not answered" in exercises.check_confidence_interval(stub, accuracies).message


def test_restricted_accuracy_exercise_spots_the_unrestricted_answer() -> None:
    classes = ["neutral", "calm", "happy", "sad"]
    probabilities = np.array([[0.1, 0.6, 0.2, 0.1],   # true neutral: 4-way calm, 2-way happy (wrong)
                              [0.3, 0.5, 0.1, 0.1],   # true neutral: 4-way calm, 2-way neutral (right)
                              [0.1, 0.2, 0.6, 0.1]])  # true happy: happy either way (right)
    truth = ["neutral", "neutral", "happy"]
    solution = solution_function("09_real_faces", "restricted_accuracy")
    assert solution(probabilities, classes, truth, ["neutral", "happy"]) == pytest.approx(2 / 3)
    assert exercises.check_restricted_accuracy(solution, probabilities, classes, truth, ["neutral", "happy"])

    def unrestricted(probabilities, classes, truth, allowed):
        return float(np.mean(np.asarray(classes)[np.asarray(probabilities).argmax(1)] == np.asarray(truth)))

    feedback = exercises.check_restricted_accuracy(unrestricted, probabilities, classes, truth, ["neutral", "happy"])
    assert not feedback and "accuracy over all the classes" in feedback.message and "keep only the columns" in feedback.message
    assert not exercises.check_restricted_accuracy(lambda *a: 1.0, probabilities, classes, truth, ["neutral", "happy"])
    assert "Not answered" in exercises.check_restricted_accuracy(stub, probabilities, classes, truth, ["neutral", "happy"]).message
