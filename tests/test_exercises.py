"""The exercise checkers: right answers pass, wrong and missing ones fail with a reason, on real data."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fer_utils.book import exercises
from fer_utils.data.corpora import index_ravdess
from fer_utils.data.splits import split_frames
from fer_utils.faces.sample import generate_sample


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


class AlwaysEqual:
    """An answer whose `==` always holds (and `!=` never): it must pass no checker."""

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    __hash__ = object.__hash__

    def __float__(self) -> float:
        return 6.0


def test_clip_count_is_counted_on_the_dataset_not_on_the_students_table(clips: pd.DataFrame) -> None:
    """Filtering or relabelling `clips` before answering changes nothing."""
    happy = int((clips["emotion"] == "happy").sum())
    no_happy = clips[clips["emotion"] != "happy"]
    feedback = exercises.check_clip_count(0, no_happy, "happy")
    assert not feedback and "0 is too low" in feedback.message and "6 clip(s) of the folder missing" in feedback.message
    assert exercises.check_clip_count(happy, no_happy, "happy")  # the right answer stays right
    assert not exercises.check_clip_count(len(clips), clips.assign(emotion="happy"), "happy")
    assert not exercises.check_clip_count(happy, "clips", "happy")


def test_clip_count_fails_on_a_table_it_cannot_index_again(clips: pd.DataFrame) -> None:
    """An attack: a made-up `clips` (one row, a path that does not exist) with its own count is
    not trusted: the checker counts on the dataset indexed again, and fails when it cannot index it."""
    made_up = pd.DataFrame([{"path": "/nowhere/01-01-01-01-01-01-01.mp4", "dataset": "ravdess", "emotion": "neutral"}])
    feedback = exercises.check_clip_count(1, made_up, "neutral")
    assert not feedback and "cannot be indexed again from /nowhere" in feedback.message
    assert not exercises.check_clip_count(0, clips.iloc[0:0], "happy")  # an empty table is no index either
    assert exercises.check_clip_count(6, clips, "happy")  # the real index still counts


def test_an_answer_that_equals_everything_passes_nothing(clips: pd.DataFrame) -> None:
    """Answers are compared with exact types, not with the answer's own `==`."""

    class SneakyFloat(float):
        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = float.__hash__

    assert not exercises.check_clip_count(AlwaysEqual(), clips, "happy")
    assert not exercises.check_clip_count(SneakyFloat(1.0), clips, "happy")
    assert not exercises.check_clip_count(True, clips, "happy")
    assert exercises.check_clip_count(np.int64(6), clips, "happy") and exercises.check_clip_count(6.0, clips, "happy")
    assert not exercises.check_conv_params(lambda kernel, in_channels, filters: AlwaysEqual())
    assert not exercises.check_macro_f1_present(lambda truth, predicted: AlwaysEqual(), ["a", "b"], ["a", "a"])

    parse = solution_function("01_dataset_tour", "parse_ravdess_name")
    fields = ("emotion", "intensity", "statement", "repetition", "actor")
    assert not exercises.check_ravdess_parser(lambda name: {field: AlwaysEqual() for field in fields}, clips)

    class AnyDict(dict):
        def __contains__(self, key: object) -> bool:
            return True

        def __getitem__(self, key: object) -> object:
            return AlwaysEqual()

    assert not exercises.check_ravdess_parser(lambda name: AnyDict(), clips)
    numpy_fields = lambda name: {k: np.int64(v) if type(v) is int else v for k, v in parse(name).items()}  # noqa: E731
    assert exercises.check_ravdess_parser(numpy_fields, clips)  # NumPy integers are integers


def test_accuracy_from_a_real_confusion_matrix() -> None:
    from sklearn.metrics import accuracy_score

    from fer_utils.evaluate.metrics import confusion

    truth = ["happy", "sad", "sad", "angry", "happy", "sad"]
    predicted = ["happy", "sad", "happy", "angry", "sad", "sad"]
    matrix = confusion(truth, predicted, ["happy", "sad", "angry"])
    assert exercises.check_accuracy_from_confusion(accuracy_score(truth, predicted), matrix)
    assert not exercises.check_accuracy_from_confusion(0.5, matrix)


def test_history_checkers() -> None:
    history = pd.DataFrame(
        {
            "epoch": [0, 1, 2],
            "accuracy": [0.5, 0.8, 0.95],
            "val_accuracy": [0.5, 0.7, 0.6],
            "val_loss": [1.2, 0.9, 1.1],
            "train_eval_accuracy": [0.5, 0.85, 0.99],  # the training side in inference mode, as validation
        }
    )
    assert exercises.check_generalization_gap(0.39, history)
    assert not exercises.check_generalization_gap(0.1, history)
    logged = exercises.check_generalization_gap(0.35, history)  # the gap with the logged training accuracy
    assert not logged and "dropout on" in logged.message
    assert not exercises.check_generalization_gap(0.39, history.drop(columns="train_eval_accuracy"))


def test_sibling_share_on_a_real_split(clips: pd.DataFrame) -> None:
    frames = clips.loc[clips.index.repeat(3)].reset_index(drop=True)  # three frames per clip
    random = split_frames(frames, "random", 0.34, 0.0, seed=0)
    share = float(random.test["clip_id"].isin(random.train["clip_id"]).mean())
    assert 0 < share <= 1 and exercises.check_sibling_share(share, random.train, random.test)
    shared = len(set(random.train["clip_id"]) & set(random.test["clip_id"]))
    feedback = exercises.check_sibling_share(shared, random.train, random.test)
    assert not feedback and "number of clips on both sides" in feedback.message
    subject = split_frames(frames, "subject", 0.34, 0.0, seed=0)
    assert exercises.check_sibling_share(0.0, subject.train, subject.test)


def test_comparison_checkers() -> None:
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
        crops.append(cv2.resize(gray[top : top + side, left : left + side], (48, 48), interpolation=cv2.INTER_AREA))
    return np.stack(crops)[..., None].astype(np.float32)


@pytest.fixture(scope="module")
def still_model(still_crops: np.ndarray):
    """The paper's CNN at 48×48 trained for a few epochs to tell the stills' actors apart by sex (odd RAVDESS
    actors are male): a small real model whose probabilities differ from face to face."""
    import keras

    from fer_utils.models.networks import build_paper_cnn

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
    feedback = exercises.check_int8_model(
        solution_function("08_deployment", "to_int8"), still_model, still_crops[::2], still_crops, float32_bytes
    )
    assert feedback, feedback.message
    assert "smaller than the float32 one" in feedback.message and "24 test crops" in feedback.message
    unanswered = exercises.check_int8_model(stub, still_model, still_crops, still_crops, float32_bytes)
    assert not unanswered and "Not answered" in unanswered.message
    text = exercises.check_int8_model(lambda m, x: "model.tflite", still_model, still_crops, still_crops, float32_bytes)
    assert not text and "returned a str" in text.message


@pytest.mark.slow
def test_int8_exercise_names_each_missing_setting(still_model, still_crops: np.ndarray) -> None:
    from fer_utils.deploy.tflite import to_tflite

    def check(answer):
        return exercises.check_int8_model(answer, still_model, still_crops[::2], still_crops, 400_000)

    plain = check(converter_answer(optimize=False, calibrate=False, io=None))
    assert not plain and "weights are float32" in plain.message and "converter.optimizations" in plain.message
    dynamic = check(converter_answer(calibrate=False, io=None))
    assert (
        not dynamic and "no representative dataset" in dynamic.message and "activations are not int8" in dynamic.message
    )
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
            copies[k, r * patch : (r + 1) * patch, c * patch : (c + 1) * patch] = 0
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
    probabilities = np.array(
        [
            [0.1, 0.6, 0.2, 0.1],  # true neutral: 4-way calm, 2-way happy (wrong)
            [0.3, 0.5, 0.1, 0.1],  # true neutral: 4-way calm, 2-way neutral (right)
            [0.1, 0.2, 0.6, 0.1],
        ]
    )  # true happy: happy either way (right)
    truth = ["neutral", "neutral", "happy"]
    solution = solution_function("09_real_faces", "restricted_accuracy")
    assert solution(probabilities, classes, truth, ["neutral", "happy"]) == pytest.approx(2 / 3)
    assert exercises.check_restricted_accuracy(solution, probabilities, classes, truth, ["neutral", "happy"])

    def unrestricted(probabilities, classes, truth, allowed):
        return float(np.mean(np.asarray(classes)[np.asarray(probabilities).argmax(1)] == np.asarray(truth)))

    feedback = exercises.check_restricted_accuracy(unrestricted, probabilities, classes, truth, ["neutral", "happy"])
    assert (
        not feedback
        and "accuracy over all the classes" in feedback.message
        and "keep only the columns" in feedback.message
    )
    assert "(the 4-way accuracy)" in feedback.message  # the model's own classes, not the book's 8
    assert not exercises.check_restricted_accuracy(lambda *a: 1.0, probabilities, classes, truth, ["neutral", "happy"])
    assert (
        "Not answered"
        in exercises.check_restricted_accuracy(stub, probabilities, classes, truth, ["neutral", "happy"]).message
    )


# Chapters 1-4 (coding exercises): each checker passes the chapter's own solution cell and names the
# mistake of a wrong answer.
def solution_function(notebook_stem: str, name: str, **chapter_names: object) -> object:
    """The function `name` as the solution cell of a chapter defines it, run with the chapter's
    parameters, imports and saved cells (the names a solution may use) and `chapter_names` (other
    chapter variables it reads, e.g. IMAGE_SIZE), without the rest of the chapter."""

    from IPython.core.inputtransformer2 import TransformerManager

    from fer_book.assign import SOLUTION_TAG
    from fer_book.execute import PARAMETERS_TAG

    nb = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / f"{notebook_stem}.ipynb").read_text())
    namespace: dict = {}
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for cell in cells:
        tree = ast.parse(TransformerManager().transform_cell("".join(cell["source"])))  # IPython magics → Python
        imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        if re.match(r"#\s*@save", "".join(cell["source"])) or PARAMETERS_TAG in cell["metadata"].get("tags", []):
            imports = tree.body  # the package's definitions the chapter shows, or its parameters
        exec(compile(ast.Module(body=imports, type_ignores=[]), notebook_stem, "exec"), namespace)
    namespace.update(chapter_names)
    for cell in cells:
        if SOLUTION_TAG in cell["metadata"].get("tags", []):
            tree = ast.parse("".join(cell["source"]))
            defined = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
            if defined:
                exec(compile(ast.Module(body=defined, type_ignores=[]), notebook_stem, "exec"), namespace)
                return namespace[name]
    raise LookupError(f"no solution cell of {notebook_stem} defines {name}")


def test_a_parser_that_swaps_statement_and_repetition_fails_and_is_told_which(clips: pd.DataFrame) -> None:
    """Every clip at hand has statement 1 and repetition 1, so a parser reading one from the other's
    place passed; the checker also reads names whose fields differ and names the field that is wrong."""
    parse = solution_function("01_dataset_tour", "parse_ravdess_name")

    def swapped(name: str) -> dict:
        fields = parse(name)
        return {**fields, "statement": fields["repetition"], "repetition": fields["statement"]}

    feedback = exercises.check_ravdess_parser(swapped, clips)
    assert not feedback and "your `statement` is 2, but the fifth field, '01' means 1" in feedback.message
    assert "sixth ('02') field holds: read the fifth" in feedback.message

    def intensity_from_statement(name: str) -> dict:
        return {**parse(name), "intensity": int(name.split("-")[4])}

    assert not exercises.check_ravdess_parser(intensity_from_statement, clips)
    assert exercises.check_ravdess_parser(parse, clips)


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
    from fer_utils.faces.crops import crop_face, make_detector

    detector = make_detector("dlib-hog")
    assert exercises.check_crop_inside(solution_function("02_preprocessing", "crop_inside"), detector)
    feedback = exercises.check_crop_inside(crop_face, detector)
    assert not feedback and "corner" in feedback.message and "repeats the edge pixels" in feedback.message
    feedback = exercises.check_crop_inside(
        lambda image, box, side, margin: crop_face(image, box, side=side, margin=0.0), detector
    )
    assert not feedback and "check the square's side" in feedback.message
    feedback = exercises.check_crop_inside(lambda image, box, side, margin: image[:side, :side], detector)
    assert not feedback and "3 channels" in feedback.message


def test_conv_params_checker_passes_the_chapter_solution_and_names_each_mistake() -> None:
    """Chapter 3's exercise 1 is a function checked on real Conv2D layers against Keras's count."""
    solution = solution_function("03_architecture", "conv_params")
    feedback = exercises.check_conv_params(solution)
    assert feedback and "all 7 Conv2D layers" in feedback.message, feedback.message
    mistakes = {
        "paper_cnn's conv1: `no_bias(3, 1, 16)` returns 144, Keras counts 160 (kernel 3×3, 1 → 16 channels): "
        "you forgot the bias": lambda k, c, f: k * k * c * f,
        # with one input channel conv1 is right: conv2 is the first layer it gets wrong
        "paper_cnn's conv2: `no_bias(3, 16, 64)` returns 640, Keras counts 9,280 (kernel 3×3, 16 → 64 channels): "
        "you left out the input channels": lambda k, c, f: (k * k + 1) * f,
        "the kernel is k × k: square the kernel size": lambda k, c, f: (k * c + 1) * f,
        "you counted a bias for every weight": lambda k, c, f: 2 * k * k * c * f,
        # 288 at conv1 as a bias per weight: the other layers tell them apart
        "you counted a bias for every kernel entry": lambda k, c, f: k * k * (c + 1) * f,
        "you counted a bias for every input channel": lambda k, c, f: (k * k + 1) * c * f,
        "you counted one bias for the whole layer": lambda k, c, f: k * k * c * f + 1,
        "you swapped in_channels and filters": lambda k, c, f: (k * k * f + 1) * c,
        "yours is 0.04375 times that": lambda k, c, f: 7,
    }
    for message, answer in mistakes.items():

        def no_bias(kernel: int, in_channels: int, filters: int, answer=answer) -> int:
            return answer(kernel, in_channels, filters)

        feedback = exercises.check_conv_params(no_bias)
        assert not feedback and message in feedback.message, feedback.message
        assert "perhaps" not in feedback.message  # the mistake explains every layer, not only the first wrong one
    # right on the paper's layers, wrong on a 1×1 kernel only: the layer is named
    feedback = exercises.check_conv_params(lambda k, c, f: solution(k, c, f) if k == 3 else 0)
    assert not feedback and "other_convs's rgb_5x5" in feedback.message, feedback.message
    feedback = exercises.check_conv_params(lambda k, c, f: str(solution(k, c, f)))
    assert not feedback and "returned '160', not a number" in feedback.message
    feedback = exercises.check_conv_params(lambda k, c, f: 1 / (c - 1))
    assert not feedback and "raised ZeroDivisionError on paper_cnn's conv1" in feedback.message
    feedback = exercises.check_conv_params(stub)
    assert not feedback and feedback.unanswered, feedback.message


def test_fc_params_checker_passes_the_chapter_solution_and_names_each_mistake() -> None:
    """Chapter 3's exercise 2 is a function of the input's side, checked against Keras's count of fc in
    real models: the side through the three poolings (H_out, rounding down), then P_dense."""
    import math

    solution = solution_function("03_architecture", "fc_params")
    feedback = exercises.check_fc_params(solution)
    assert feedback and "495,632" in feedback.message, feedback.message

    def pooled(side: float, times: int = 3, rounding=math.floor) -> int:
        for _ in range(times):
            side = rounding(side / 2)
        return side

    def dense(inputs: float, units: int) -> float:
        return (inputs + 1) * units

    mistakes = {
        "the paper's network at 180×180: `fc_params(180, 64, 16)` returns 495,616, Keras counts 495,632 "
        "(fc reads a flattened 22×22×64 map, 30,976 values): you forgot the bias": lambda s, f, u: (
            pooled(s) ** 2 * f * u
        ),
        "you left out the channels": lambda s, f, u: dense(pooled(s) ** 2, u),
        "the map is H × W: square its side": lambda s, f, u: dense(pooled(s) * f, u),
        "you divided by 8 without rounding": lambda s, f, u: dense((s / 8) ** 2 * f, u),
        "you rounded up": lambda s, f, u: dense(pooled(s, rounding=math.ceil) ** 2 * f, u),
        "you flattened the input's side": lambda s, f, u: dense(s * s * f, u),
        "you halved the side twice": lambda s, f, u: dense((s // 4) ** 2 * f, u),
        "the paper's network at 48×48: `fc_params(48, 64, 16)` returns 495,632, Keras counts 36,880 "
        "(fc reads a flattened 6×6×64 map, 2,304 values): you used the side 22": lambda s, f, u: dense(22 * 22 * f, u),
        "the stack at 90×90 with 32 filters in conv3 and 32 units in fc: `fc_params(90, 32, 32)` returns 247,840, "
        "Keras counts 123,936 (fc reads a flattened 11×11×32 map, 3,872 values): you used the paper's 64 filters": (
            lambda s, f, u: dense(pooled(s) ** 2 * 64, u)
        ),
        "you used the paper's 16 units": lambda s, f, u: dense(pooled(s) ** 2 * f, 16),
        "you counted a bias for every weight": lambda s, f, u: 2 * pooled(s) ** 2 * f * u,
    }
    for message, answer in mistakes.items():

        def fc_params(side: int, filters: int = 64, units: int = 16, answer=answer) -> float:
            return answer(side, filters, units)

        feedback = exercises.check_fc_params(fc_params)
        assert not feedback and message in feedback.message, feedback.message
    # both of the paper's numbers typed in: no single mistake explains it, the count is still compared
    feedback = exercises.check_fc_params(lambda s, f, u: dense(pooled(s) ** 2 * 64, 16))
    assert not feedback and "`<lambda>(90, 32, 32)` returns 123,920, Keras counts 123,936" in feedback.message
    feedback = exercises.check_fc_params(lambda s, f, u: None)
    assert not feedback and "returned None, not a number" in feedback.message
    feedback = exercises.check_fc_params(stub)
    assert not feedback and feedback.unanswered, feedback.message
    assert not exercises.check_fc_params(None).ok and exercises.check_fc_params(None).unanswered


def test_sequential_cnn_checker_names_the_layer() -> None:
    import keras
    from keras import layers

    assert exercises.check_sequential_cnn(solution_function("03_architecture", "sequential_cnn"))

    def valid_conv2(num_classes: int, input_shape: tuple) -> keras.Sequential:
        stack = [keras.Input(shape=input_shape), layers.Rescaling(1 / 255)]
        for stage, filters in enumerate((16, 64, 64), start=1):
            padding = "valid" if stage == 2 else "same"
            stack += [
                layers.Conv2D(filters, 3, padding=padding, activation="relu"),
                layers.MaxPooling2D(2),
                layers.Dropout(0.3),
            ]
        return keras.Sequential(
            [
                *stack,
                layers.Flatten(),
                layers.Dense(16, activation="relu"),
                layers.Dense(num_classes, activation="softmax"),
            ]
        )

    feedback = exercises.check_sequential_cnn(valid_conv2)
    assert not feedback and "check the padding of conv2" in feedback.message and "(88, 88, 64)" in feedback.message

    def no_dropout(num_classes: int, input_shape: tuple) -> keras.Sequential:
        model = valid_conv2(num_classes, input_shape)
        return keras.Sequential(
            [
                keras.Input(shape=input_shape),
                *[layer for layer in model.layers if not isinstance(layer, layers.Dropout)],
            ]
        )

    feedback = exercises.check_sequential_cnn(no_dropout)
    assert not feedback and "layer 4 is Conv2D where the paper's is Dropout" in feedback.message
    feedback = exercises.check_sequential_cnn(
        lambda num_classes, input_shape: keras.Sequential(
            [
                keras.Input(shape=input_shape),
                layers.Rescaling(1 / 255),
                *[
                    layer
                    for filters in (16, 64, 64)
                    for layer in (
                        layers.Conv2D(filters, 5, padding="same", activation="relu"),
                        layers.MaxPooling2D(2),
                        layers.Dropout(0.3),
                    )
                ],
                layers.Flatten(),
                layers.Dense(16, activation="relu"),
                layers.Dense(num_classes, activation="softmax"),
            ]
        )
    )
    assert not feedback and "542,136" in feedback.message and "kernel size" in feedback.message


def test_majority_vote_checker_names_the_tie_and_the_mean_vote() -> None:
    from fer_utils.evaluate.metrics import predicted_labels

    classes = ["neutral", "calm", "happy"]
    frames = pd.DataFrame(
        {
            "clip_id": ["a", "a", "a", "b", "b"],
            "frame_index": [1, 6, 11, 3, 8],
            "emotion": ["happy", "happy", "happy", "calm", "calm"],
        }
    )
    probabilities = np.array(
        [
            [0.1, 0.1, 0.8],
            [0.1, 0.1, 0.8],
            [0.0, 0.95, 0.05],  # a: happy twice, calm once
            [0.1, 0.6, 0.3],
            [0.45, 0.1, 0.45],
        ]
    )  # b: calm then neutral (a tie)
    # mean votes: a → happy (0.55), b → happy (0.375); majority: a → happy, b → neutral (its latest frame)
    vote = solution_function("04_training", "majority_vote")
    assert vote(frames, predicted_labels(probabilities, classes)) == {"a": "happy", "b": "neutral"}
    feedback = exercises.check_majority_vote(vote, frames, probabilities, classes)
    assert feedback and "clip b" in feedback.message and "majority neutral, mean happy" in feedback.message

    def earliest(frames: pd.DataFrame, predicted: list) -> dict:
        table = frames.assign(predicted=predicted).sort_values("frame_index")
        return {
            c: g["predicted"].value_counts().index[0]
            if g["predicted"].value_counts().iloc[0] > 1
            else g["predicted"].iloc[0]
            for c, g in table.groupby("clip_id")
        }

    feedback = exercises.check_majority_vote(earliest, frames, probabilities, classes)
    assert not feedback and "a tie between calm, neutral: the latest tied frame says neutral" in feedback.message
    feedback = exercises.check_majority_vote(lambda f, p: {"a": "happy", "b": "happy"}, frames, probabilities, classes)
    assert not feedback and "happy is the mean vote of the probabilities" in feedback.message
    feedback = exercises.check_majority_vote(lambda f, p: {"a": "happy"}, frames, probabilities, classes)
    assert not feedback and "clip b is missing" in feedback.message


# --- Chapters 5 (regularization), 6 (evaluation protocols) and 7 (comparison): coding exercises, checked
# with the chapters' own solution cells on real inputs ---


@pytest.fixture(scope="module")
def face_batch() -> np.ndarray:
    """The 24 real RAVDESS stills' faces as a (24, 48, 48, 1) batch of raw pixels."""
    from toy_data import _face_crops

    return np.stack([face for _, face in _face_crops(48)])[..., None].astype("float32")


def two_stages(l1_where: str = "fc", factor: float | None = None, regularizer: str = "L1", stages: int = 2):
    """A wrong (or right) answer to chapter 5's exercise: the penalty on `l1_where`, of a fixed `factor`."""
    import keras
    from keras import layers

    def build(l1: float) -> keras.Model:
        penalty = getattr(keras.regularizers, regularizer)(factor if factor is not None else l1)
        inputs = keras.Input(shape=(48, 48, 1))
        x = layers.Rescaling(1.0 / 255)(inputs)
        for filters in (16, 64, 64)[:stages]:
            x = layers.MaxPooling2D(2)(layers.Conv2D(filters, 3, padding="same", activation="relu")(x))
        x = layers.Flatten()(x)
        x = layers.Dense(
            16, activation="relu", name="fc", kernel_regularizer=penalty if l1_where in ("fc", "both") else None
        )(x)
        outputs = layers.Dense(
            8, activation="softmax", kernel_regularizer=penalty if l1_where in ("out", "both") else None
        )(x)
        return keras.Model(inputs, outputs)

    return build


def test_l1_checker_passes_the_chapter_solution_and_names_each_mistake(face_batch: np.ndarray) -> None:
    solution = solution_function(
        "05_regularization", "two_stage_cnn", IMAGE_SIZE=48, classes=[str(i) for i in range(8)]
    )
    feedback = exercises.check_l1_on_fc(solution, face_batch, classes=8)
    assert feedback, feedback.message
    assert "only fc" in feedback.message and "ln 8" in feedback.message
    mistakes = {
        "L1 factor 0.01 expected, got 0.001": two_stages(factor=0.001),
        "fc has no kernel_regularizer (yours is on": two_stages(l1_where="out"),
        "L2 (squared weights), not L1": two_stages(regularizer="L2"),
        "is another layer (or fc's bias, or an L2 term) penalised too": two_stages(l1_where="both"),
        "your model has 3 convolution(s)": two_stages(stages=3),
    }
    for message, answer in mistakes.items():
        feedback = exercises.check_l1_on_fc(answer, face_batch, classes=8)
        assert not feedback and message in feedback.message, feedback.message
    wrong_classes = exercises.check_l1_on_fc(two_stages(), face_batch, classes=7)
    assert not wrong_classes and "expected (24, 7)" in wrong_classes.message


def test_l1_checker_stub_is_unanswered_not_an_error(face_batch: np.ndarray) -> None:
    def two_stage_cnn(l1: float):
        raise NotImplementedError

    feedback = exercises.check_l1_on_fc(two_stage_cnn, face_batch, classes=8)
    assert not feedback and feedback.message.startswith("Not answered yet")


def test_subject_split_checker_on_a_real_clip_index(clips: pd.DataFrame) -> None:
    solution = solution_function("06_evaluation_protocols", "subject_split")
    feedback = exercises.check_subject_split(solution, clips, n_test=1)
    assert feedback, feedback.message

    def by_row(frames: pd.DataFrame, n_test: int, seed: int):
        test = frames.sample(frac=0.3, random_state=seed)
        return frames.drop(test.index), test

    def first_actors(frames: pd.DataFrame, n_test: int, seed: int):
        is_test = frames["subject"].isin(sorted(frames["subject"].unique())[:n_test])
        return frames[~is_test], frames[is_test]

    def loses_rows(frames: pd.DataFrame, n_test: int, seed: int):
        train, test = first_actors(frames, n_test, seed)
        return train.iloc[1:], test

    frames = clips.loc[clips.index.repeat(3)].reset_index(drop=True)  # three frames per clip
    feedback = exercises.check_subject_split(by_row, frames, n_test=1)
    assert not feedback and "puts clip 02-01-" in feedback.message and "on both sides" in feedback.message
    feedback = exercises.check_subject_split(by_row, clips, n_test=1)  # one row per clip: only actors can leak
    assert not feedback and "puts actor Actor_0" in feedback.message and "Hold out whole actors" in feedback.message
    feedback = exercises.check_subject_split(first_actors, clips, n_test=1)
    assert not feedback and "every seed holds out the same actors" in feedback.message
    feedback = exercises.check_subject_split(loses_rows, clips, n_test=1)
    assert not feedback and "1 of 12 frames are on neither side" in feedback.message
    feedback = exercises.check_subject_split(solution, clips, n_test=2)  # right code, other size: still checked
    assert feedback, feedback.message
    feedback = exercises.check_subject_split(lambda f, n, seed: solution(f, n + 1, seed), clips, n_test=1)
    assert not feedback and "holds 2 actor(s)" in feedback.message


@pytest.fixture(scope="module")
def compared_models() -> dict:
    """Real compared models at small inputs: every kind of counted layer, strided ones included."""
    from fer_utils.models.networks import build_model

    return {
        "paper-cnn": build_model("paper-cnn", 8, (48, 48, 1)),
        "mini-xception": build_model("mini-xception", 7, (48, 48, 1)),
        "mobilenet-v2": build_model("mobilenet-v2", 8, (64, 64, 3)),
    }


def test_flop_checker_passes_the_chapter_solution_and_names_the_mistake(compared_models: dict) -> None:
    import keras

    solution = solution_function("07_comparison", "conv_flops")
    feedback = exercises.check_conv_flops(solution, compared_models)
    assert feedback, feedback.message

    def positions(layer) -> int:
        return int(np.prod(layer.output.shape[1:-1]))

    def input_positions(layer) -> int:
        return int(np.prod(layer.input.shape[1:-1]))

    def depthwise_only(layer) -> int:
        if isinstance(layer, keras.layers.SeparableConv2D):
            return 2 * positions(layer) * int(np.prod(layer.depthwise_kernel.shape))
        return solution(layer)

    mistakes = {
        "conv1 (Conv2D, output (48, 48, 16))": lambda layer: solution(layer) // 2,
        "you forgot the factor 2 (multiply + add)": lambda layer: solution(layer) // 2,
        "you counted one output position: multiply by H_out × W_out = 48 × 48": lambda layer: (
            solution(layer) // positions(layer)
        ),
        "return 0 for it": lambda layer: solution(layer) or 1,
        "only its depthwise 3×3 part": depthwise_only,
        "you used the input's size 64×64, but the layer has stride 2": lambda layer: (
            solution(layer) * input_positions(layer) // positions(layer)
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)) and layer.strides[0] == 2
            else solution(layer)
        ),
    }
    for message, answer in mistakes.items():
        models = compared_models if "stride" not in message else {"mobilenet-v2": compared_models["mobilenet-v2"]}
        feedback = exercises.check_conv_flops(answer, models)
        assert not feedback and message in feedback.message, feedback.message


def test_flop_checker_names_the_layer_a_student_function_fails_on(compared_models: dict) -> None:
    def kernel_only(layer) -> int:
        return 2 * int(np.prod(layer.kernel.shape))

    feedback = exercises.check_conv_flops(kernel_only, compared_models)
    assert not feedback and "raised AttributeError on paper-cnn's layer" in feedback.message


# Chapter 10: the checkers pass the chapter's solutions and name the mistake of a wrong answer.
def _real_predictions() -> pd.DataFrame:
    """A prediction table shaped like chapter 10's: London faces (neutral, happy) and clip frames."""
    truth = ["neutral"] * 6 + ["happy"] * 4 + ["sad", "angry"]
    predicted = ["neutral"] * 5 + ["sad"] + ["happy"] * 2 + ["neutral"] * 2 + ["sad", "neutral"]
    sets = ["London faces"] * 10 + ["CREMA-D clips"] * 2
    return pd.DataFrame({"set": sets, "emotion": truth, "predicted": predicted})


def test_macro_f1_present_exercise_spots_the_average_over_every_class() -> None:
    from sklearn.metrics import f1_score

    table = _real_predictions()
    solution = solution_function("10_seven_expressions", "macro_f1_present")
    assert exercises.check_macro_f1_present(solution, table["emotion"], table["predicted"])

    def over_all(truth, predicted):
        return float(f1_score(truth, predicted, labels=sorted(set(truth) | set(predicted)), average="macro"))

    london = table[table["set"] == "London faces"]  # "sad" predicted but absent from the truth
    feedback = exercises.check_macro_f1_present(over_all, london["emotion"], london["predicted"])
    assert not feedback and "averages over every class predicted too" in feedback.message
    assert "Not answered" in exercises.check_macro_f1_present(stub, table["emotion"], table["predicted"]).message


def test_majority_baseline_exercise_spots_the_rarest_share() -> None:
    table = _real_predictions()
    solution = solution_function("10_seven_expressions", "majority_baseline")
    assert solution(table["emotion"]) == pytest.approx(6 / 12)
    assert exercises.check_majority_baseline(solution, table)
    feedback = exercises.check_majority_baseline(
        lambda t: float(pd.Series(t).value_counts(normalize=True).iloc[-1]), table
    )
    assert not feedback and "rarest" in feedback.message
    assert "Not answered" in exercises.check_majority_baseline(stub, table).message
