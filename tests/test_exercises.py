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


# Chapters 1-4 (coding exercises): each checker passes the chapter's own solution cell and names the
# mistake of a wrong answer.
def solution_function(notebook_stem: str, name: str) -> object:
    """The function `name` as the solution cell of a chapter defines it, run with the chapter's
    parameters, imports and saved cells (the names a solution may use), without the rest of the chapter."""
    import ast
    import json

    from fer_book.execute import PARAMETERS_TAG
    from fer_book.student import SOLUTION_TAG

    nb = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / f"{notebook_stem}.ipynb").read_text())
    namespace: dict = {}
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for cell in cells:
        tree = ast.parse("".join(cell["source"]))
        imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        if "".join(cell["source"]).startswith("#@save") or PARAMETERS_TAG in cell["metadata"].get("tags", []):
            imports = tree.body  # the package's definitions the chapter shows, or its parameters
        exec(compile(ast.Module(body=imports, type_ignores=[]), notebook_stem, "exec"), namespace)  # noqa: S102 (the chapter's own cells)
    for cell in cells:
        if SOLUTION_TAG in cell["metadata"].get("tags", []):
            tree = ast.parse("".join(cell["source"]))
            defined = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
            if defined:
                exec(compile(ast.Module(body=defined, type_ignores=[]), notebook_stem, "exec"), namespace)  # noqa: S102
                return namespace[name]
    raise LookupError(f"no solution cell of {notebook_stem} defines {name}")


def test_ravdess_parser_checker_names_the_wrong_field(clips: pd.DataFrame) -> None:
    parse = solution_function("01_dataset_tour", "parse_ravdess_name")
    assert exercises.check_ravdess_parser(parse, clips)
    assert parse("01-01-08-02-01-01-19.mp4")["emotion"] == "surprised"  # the real clip shipped with the package

    def actor_as_text(name: str) -> dict:
        return {**parse(name), "actor": name.split(".")[0].split("-")[6]}

    feedback = exercises.check_ravdess_parser(actor_as_text, clips)
    assert not feedback and "01-01-08-02-01-01-19.mp4 your `actor` is '19'" in feedback.message
    assert "seventh field" in feedback.message and "int('19')" in feedback.message

    def emotion_code(name: str) -> dict:
        return {**parse(name), "emotion": name.split("-")[2]}

    feedback = exercises.check_ravdess_parser(emotion_code, clips)
    assert not feedback and "'surprised'" in feedback.message and "RAVDESS_EMOTIONS" in feedback.message

    def stub(name: str) -> dict:
        raise NotImplementedError

    assert "Not answered" in exercises.check_ravdess_parser(stub, clips).message


def test_sample_indices_checker_on_real_frame_counts(clips: pd.DataFrame) -> None:
    sample = solution_function("02_preprocessing", "sample_indices")
    assert exercises.check_sample_indices(sample, clips["path"].head(1))
    feedback = exercises.check_sample_indices(lambda n, k: [0, 14, 39, 64, 89, n - 1][:k] if k == 6 else sample(n, k))
    assert not feedback and "frames 0 and 14 are not evenly spaced" in feedback.message
    feedback = exercises.check_sample_indices(lambda n, k: [int((i + 0.5) * n / k) for i in range(k)])
    assert not feedback and "must start at the first frame (0)" in feedback.message
    feedback = exercises.check_sample_indices(lambda n, k: sample(n, k)[:-1])
    assert not feedback and "asked for 6 frames, you gave 5" in feedback.message


def test_crop_inside_checker_on_a_real_still() -> None:
    from fer_utils.faces import make_detector
    from fer_utils.preprocess import crop_face

    detector = make_detector("dlib-hog")
    assert exercises.check_crop_inside(solution_function("02_preprocessing", "crop_inside"), detector)
    feedback = exercises.check_crop_inside(crop_face, detector)
    assert not feedback and "corner" in feedback.message and "repeats the edge pixels" in feedback.message
    feedback = exercises.check_crop_inside(lambda image, box, size, margin: crop_face(image, box, size=size, margin=0.0), detector)
    assert not feedback and "check the square's side" in feedback.message
    feedback = exercises.check_crop_inside(lambda image, box, size, margin: image[:size, :size], detector)
    assert not feedback and "3 channels" in feedback.message


def test_sequential_cnn_checker_names_the_layer() -> None:
    import keras
    from keras import layers

    assert exercises.check_sequential_cnn(solution_function("03_architecture", "sequential_cnn"))

    def valid_conv2(num_classes: int, input_shape: tuple) -> keras.Sequential:
        stack = [keras.Input(shape=input_shape), layers.Rescaling(1 / 255)]
        for stage, filters in enumerate((16, 64, 64), start=1):
            padding = "valid" if stage == 2 else "same"
            stack += [layers.Conv2D(filters, 3, padding=padding, activation="relu"), layers.MaxPooling2D(2), layers.Dropout(0.3)]
        return keras.Sequential([*stack, layers.Flatten(), layers.Dense(16, activation="relu"),
                                 layers.Dense(num_classes, activation="softmax")])

    feedback = exercises.check_sequential_cnn(valid_conv2)
    assert not feedback and "check the padding of conv2" in feedback.message and "(88, 88, 64)" in feedback.message

    def no_dropout(num_classes: int, input_shape: tuple) -> keras.Sequential:
        model = valid_conv2(num_classes, input_shape)
        return keras.Sequential([keras.Input(shape=input_shape),
                                 *[l for l in model.layers if not isinstance(l, layers.Dropout)]])

    feedback = exercises.check_sequential_cnn(no_dropout)
    assert not feedback and "layer 4 is Conv2D where the paper's is Dropout" in feedback.message
    feedback = exercises.check_sequential_cnn(lambda num_classes, input_shape: keras.Sequential([
        keras.Input(shape=input_shape), layers.Rescaling(1 / 255),
        *[layer for filters in (16, 64, 64) for layer in (layers.Conv2D(filters, 5, padding="same", activation="relu"),
                                                          layers.MaxPooling2D(2), layers.Dropout(0.3))],
        layers.Flatten(), layers.Dense(16, activation="relu"), layers.Dense(num_classes, activation="softmax")]))
    assert not feedback and "542,136" in feedback.message and "kernel size" in feedback.message


def test_majority_vote_checker_names_the_tie_and_the_mean_vote() -> None:
    from fer_utils.evaluation import predicted_labels

    classes = ["neutral", "calm", "happy"]
    frames = pd.DataFrame({"clip_id": ["a", "a", "a", "b", "b"], "frame_index": [1, 6, 11, 3, 8],
                           "emotion": ["happy", "happy", "happy", "calm", "calm"]})
    probabilities = np.array([[0.1, 0.1, 0.8], [0.1, 0.1, 0.8], [0.0, 0.95, 0.05],   # a: happy twice, calm once
                              [0.1, 0.6, 0.3], [0.45, 0.1, 0.45]])                  # b: calm then neutral (a tie)
    # mean votes: a → happy (0.55), b → happy (0.375); majority: a → happy, b → neutral (its latest frame)
    vote = solution_function("04_training", "majority_vote")
    assert vote(frames, predicted_labels(probabilities, classes)) == {"a": "happy", "b": "neutral"}
    feedback = exercises.check_majority_vote(vote, frames, probabilities, classes)
    assert feedback and "clip b" in feedback.message and "majority neutral, mean happy" in feedback.message

    def earliest(frames: pd.DataFrame, predicted: list) -> dict:
        table = frames.assign(predicted=predicted).sort_values("frame_index")
        return {c: g["predicted"].value_counts().index[0] if g["predicted"].value_counts().iloc[0] > 1
                else g["predicted"].iloc[0] for c, g in table.groupby("clip_id")}

    feedback = exercises.check_majority_vote(earliest, frames, probabilities, classes)
    assert not feedback and "a tie between calm, neutral: the latest tied frame says neutral" in feedback.message
    feedback = exercises.check_majority_vote(lambda f, p: {"a": "happy", "b": "happy"}, frames, probabilities, classes)
    assert not feedback and "happy is the mean vote of the probabilities" in feedback.message
    feedback = exercises.check_majority_vote(lambda f, p: {"a": "happy"}, frames, probabilities, classes)
    assert not feedback and "clip b is missing" in feedback.message
