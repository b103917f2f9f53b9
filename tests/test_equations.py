"""The chapters' equations, each beside the number it predicts.

A chapter writes an equation in MyST's math (`$$ … $$`, dollarmath in _config.yml), and a code cell right after
it computes what the equation predicts and sets it beside the number the code being taught gives: chapter 3's
output side and parameter counts against the model Keras built, chapter 4's loss of chance ln C against Keras's
cross-entropy of a uniform guess, chapter 5's L1 penalty against the one Keras adds to the loss and inverted
dropout's 1 / (1 - r) against a Dropout layer's output, chapter 6's mean ± sample std against `fer.mean_std`.
Chapter 4's precision, recall and F1, chapter 8's affine int8 map and Grad-CAM's weights and chapter 9's bootstrap
stand before the cell that computes them with the package; the last tests check that package code against the
equations on small cases worked by hand.

The checks of the printed values read the executed chapters (marker `book`: `make book`, or
`python -m fer_book execute --only NN`, first).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
STAGE = Path(os.environ.get("FER_BOOK_BUILD", REPO / "_build")) / "stage"
NEAR = 3  # the code cell that computes an equation's prediction comes within this many cells after it
# chapter: (a piece of the equation's LaTeX, a piece of the code that computes the equation's prediction)
EQUATIONS = {
    "03_architecture": (
        r"P_{\text{conv}} = \left(k^2 \, c_{\text{in}} + 1\right) c_{\text{out}}",
        "(k**2 * channels + 1) * layer.filters",
    ),
    "04_training": (r"\mathcal{L}_{\text{chance}} = -\ln \frac{1}{C} = \ln C", "np.log(len(classes))"),
}
MATH_BLOCK = re.compile(r"^\$\$\n(.+?)\n\$\$$", re.M | re.S)


def read(chapter: str, folder: Path) -> nbformat.NotebookNode:
    """The notebook of `chapter` in `folder`."""
    path = folder / f"{chapter}.ipynb"
    if not path.is_file():
        pytest.fail(f"{path} is missing: execute the chapter first (`python -m fer_book execute --only {chapter[:2]}`)")
    return nbformat.read(path, as_version=4)


def equation_cell(nb: nbformat.NotebookNode, latex: str) -> int:
    """The index of the markdown cell whose `$$` block holds `latex` (whitespace as written)."""
    found = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "markdown" and any(latex in block for block in MATH_BLOCK.findall(cell.source))
    ]
    assert len(found) == 1, f"{latex!r} is in {len(found)} math blocks, expected 1"
    return found[0]


def predicting_cell(nb: nbformat.NotebookNode, chapter: str, latex: str, code: str) -> int:
    """The index of the code cell that computes the prediction of the equation `latex`, within NEAR cells of it
    (after it, or before it where the text states the computed numbers right after the equation)."""
    at = equation_cell(nb, latex)
    around = sorted(range(max(0, at - NEAR), min(len(nb.cells), at + 1 + NEAR)), key=lambda i: (i < at, abs(i - at)))
    near = [i for i in around if nb.cells[i].cell_type == "code" and code in nb.cells[i].source]
    assert near, f"{chapter}: no code cell within {NEAR} cells of {latex!r} computes it ({code!r})"
    return near[0]


def printed(nb: nbformat.NotebookNode, index: int) -> str:
    """What the code cell `index` of an executed notebook printed."""
    return "".join(out.get("text", "") for out in nb.cells[index].outputs if out.get("output_type") == "stream")


def numbers(pattern: str, text: str) -> list[tuple[float, ...]]:
    """Every match of `pattern` in `text`, its groups as floats (thousands separators dropped)."""
    return [tuple(float(g.replace(",", "")) for g in m.groups()) for m in re.finditer(pattern, text)]


@pytest.mark.book
def test_chapter3_formulas_predict_the_model_keras_built() -> None:
    from fer_book.scorecard import Glued
    from fer_utils.book.results import read_results, results_file

    nb, (latex, code) = read("03_architecture", STAGE / "notebooks"), EQUATIONS["03_architecture"]
    predicting_cell(nb, "03_architecture", latex, code)
    results = read_results(results_file(STAGE, "03_architecture"))  # what the executed chapter glued
    formulas, keras_count = (Glued("03_architecture", n).read(results) for n in ("ch3_formula_total", "ch3_params"))
    assert formulas.number == keras_count.number == 542_136  # the paper's count, at 180x180 with 8 classes
    assert Glued("03_architecture", "ch3_formulas").read(results).text == "give exactly what Keras built"


@pytest.mark.book
def test_chapter4_chance_loss_is_ln_c() -> None:
    import math

    nb, (latex, code) = read("04_training", STAGE / "notebooks"), EQUATIONS["04_training"]
    text = printed(nb, predicting_cell(nb, "04_training", latex, code))
    [(classes, log_of, formula, keras_loss)] = numbers(
        r"C = (\d+) classes: ln\((\d+)\) = ([\d.]+) by the formula, ([\d.]+) by Keras", text
    )
    assert classes == log_of and formula == pytest.approx(math.log(classes), abs=1e-4)
    assert keras_loss == pytest.approx(formula, abs=2e-4), text


def test_macro_f1_and_accuracy_are_the_equations_of_chapter_4() -> None:
    """Per-class counts through P_c, R_c, F1_c, then their mean over the classes present: what
    `classification_metrics` reports, with an emotion never found (F1_c = 0) and one never true (left out)."""
    from fer_utils.evaluate.metrics import classification_metrics

    truth = ["happy"] * 5 + ["sad"] * 3 + ["angry"] * 2
    guess = ["happy"] * 4 + ["sad"] + ["sad"] * 2 + ["happy"] + ["happy", "calm"]
    present = ["happy", "sad", "angry"]
    f1 = []
    for c in present:
        tp = sum(t == c and g == c for t, g in zip(truth, guess))
        fp = sum(t != c and g == c for t, g in zip(truth, guess))
        fn = sum(t == c and g != c for t, g in zip(truth, guess))
        p, r = (tp / (tp + fp) if tp + fp else 0.0), (tp / (tp + fn) if tp + fn else 0.0)
        f1.append(2 * p * r / (p + r) if p + r else 0.0)
    assert f1[2] == 0.0  # angry is never found
    metrics = classification_metrics(truth, guess, ["angry", "calm", "happy", "sad"])
    assert metrics["f1_macro"] == pytest.approx(sum(f1) / len(present))
    assert metrics["accuracy"] == pytest.approx(sum(t == g for t, g in zip(truth, guess)) / len(truth))


def test_grad_cam_is_the_weighted_sum_of_chapter_8() -> None:
    """A convolution, global average pooling and a softmax layer: there the gradient of log p_c with respect to
    A^k_ij is (W_kc - sum_j p_j W_kj) / Z at every position, so alpha_k^c and ReLU(sum_k alpha_k^c A^k) follow by
    hand. `grad_cam` (both methods: the gradient is the same everywhere) returns that map over its peak."""
    import keras
    import numpy as np

    from fer_utils.evaluate.explain import grad_cam

    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 1))
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(pooled))
    image = np.random.default_rng(0).uniform(0, 1, (6, 6, 1)).astype("float32")
    maps = keras.Model(model.input, model.get_layer("conv").output)(image[None]).numpy()[0]  # A: (6, 6, K)
    p = model(image[None]).numpy()[0]
    weights = model.layers[-1].get_weights()[0]  # (K, C)
    checked = 0
    for c in range(3):
        alpha = (weights[:, c] - weights @ p) / maps[..., 0].size
        expected = np.maximum((maps * alpha).sum(axis=-1), 0)
        if expected.max() <= 0:  # an empty map: nothing to compare after the division by the peak
            continue
        checked += 1
        for method in ("gradcam", "hirescam"):
            found = grad_cam(model, image, class_index=c, method=method)
            assert found == pytest.approx(expected / expected.max(), abs=1e-4), (c, method)
    assert checked >= 2


def test_int8_dequantizes_by_the_affine_map_of_chapter_8() -> None:
    """The int8 model's uint8 output, read as r = s (q - z) with the (scale, zero point) the interpreter lists,
    gives the float model's probabilities to within a few steps s; read without the map, it does not."""
    import keras
    import numpy as np

    from fer_utils.deploy.tflite import tflite_interpreter, to_tflite

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    images = np.random.default_rng(0).integers(0, 256, (32, 8, 8, 1)).astype("float32")
    interpreter = tflite_interpreter(to_tflite(model, "int8", representative=images))
    (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()
    (s_in, z_in), (s, z) = source["quantization"], target["quantization"]
    assert s > 0 and target["dtype"] == np.uint8
    expected = model(images).numpy()
    for image, probabilities in zip(images, expected):
        interpreter.set_tensor(source["index"], np.clip(np.round(image / s_in) + z_in, 0, 255).astype(np.uint8)[None])
        interpreter.invoke()
        q = interpreter.get_tensor(target["index"])[0].astype(float)
        assert s * (q - z) == pytest.approx(probabilities, abs=4 * s)
        assert not np.allclose(q, probabilities, atol=4 * s)


def test_the_bootstrap_resamples_people_and_scores_ratios_of_sums_as_in_chapter_9() -> None:
    """One run, two people: A with two faces both right, B with one face wrong. Redrawing two people gives
    (A, A) 1, (A, B) or (B, A) 2/3 (right over faces, not the mean of the people's accuracies, 1/2) and
    (B, B) 0, with chances 1/4, 1/2 and 1/4: the middle fifth of the redrawn means is 2/3, the middle 95 % spans
    0 to 1."""
    import pandas as pd

    from fer_utils.book.chapters import bootstrap_interval

    run = pd.DataFrame({"group": ["A", "A", "B"], "correct": [True, True, False]})
    assert bootstrap_interval([run], level=0.2) == pytest.approx((2 / 3, 2 / 3))
    assert bootstrap_interval([run], level=0.95) == pytest.approx((0.0, 1.0))
