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


def test_comparison_and_deployment_checkers() -> None:
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


# --- Chapters 5 (regularization), 6 (evaluation protocols) and 7 (comparison): coding exercises, checked
# with the chapters' own solution cells on real inputs ---

def solution_function(notebook_stem: str, name: str, **chapter_names: object):
    """The function `name` as the hidden solution cell of chapter `notebook_stem` defines it. It runs with
    the imports of every code cell of the chapter and `chapter_names` (the chapter's variables it reads,
    e.g. IMAGE_SIZE), not with the rest of the chapter; the cell's checker call is not run."""
    import ast
    import json

    nb = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / f"{notebook_stem}.ipynb").read_text(encoding="utf-8"))
    namespace: dict[str, object] = {}
    for cell in (c for c in nb["cells"] if c["cell_type"] == "code"):
        tree = ast.parse("".join(cell["source"]))
        imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        exec(compile(ast.Module(body=imports, type_ignores=[]), notebook_stem, "exec"), namespace)
    namespace.update(chapter_names)
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or "solution" not in cell["metadata"].get("tags", []):
            continue
        tree = ast.parse("".join(cell["source"]))
        definitions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
        if any(node.name == name for node in definitions):
            exec(compile(ast.Module(body=definitions, type_ignores=[]), f"{notebook_stem}:{name}", "exec"), namespace)
            return namespace[name]
    raise LookupError(f"no solution cell of {notebook_stem} defines {name}")


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
        x = layers.Dense(16, activation="relu", name="fc", kernel_regularizer=penalty if l1_where in ("fc", "both") else None)(x)
        outputs = layers.Dense(8, activation="softmax", kernel_regularizer=penalty if l1_where in ("out", "both") else None)(x)
        return keras.Model(inputs, outputs)

    return build


def test_l1_checker_passes_the_chapter_solution_and_names_each_mistake(face_batch: np.ndarray) -> None:
    solution = solution_function("05_regularization", "two_stage_cnn", IMAGE_SIZE=48, classes=[str(i) for i in range(8)])
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
    from fer_utils.models import build_model

    return {"paper-cnn": build_model("paper-cnn", 8, (48, 48, 1)), "mini-xception": build_model("mini-xception", 7, (48, 48, 1)),
            "mobilenet-v2": build_model("mobilenet-v2", 8, (64, 64, 3))}


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
        "you counted one output position: multiply by H_out × W_out = 48 × 48": lambda layer: solution(layer) // positions(layer),
        "return 0 for it": lambda layer: solution(layer) or 1,
        "only its depthwise 3×3 part": depthwise_only,
        "you used the input's size 64×64, but the layer has stride 2": lambda layer: solution(layer) * input_positions(layer) // positions(layer)
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)) and layer.strides[0] == 2 else solution(layer),
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
