"""The chapters' equations (issue 46), each beside the number it predicts.

A chapter writes an equation in MyST's math (`$$ … $$`, dollarmath in _config.yml), and a code cell right after
it computes what the equation predicts and sets it beside the number the code being taught gives: chapter 3's
output side and parameter counts against the model Keras built, chapter 4's loss of chance ln C against Keras's
cross-entropy of a uniform guess, chapter 5's L1 penalty against the one Keras adds to the loss and inverted
dropout's 1 / (1 - r) against a Dropout layer's output, chapter 6's mean ± sample std against `fer.mean_std`.

The source checks read the notebooks; the checks of the printed values read the executed chapters (marker
`book`: `make book`, or `python -m fer_book execute --only NN`, first).
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
    "03_architecture": [
        (
            r"P_{\text{conv}} = \left(k^2 \, c_{\text{in}} + 1\right) c_{\text{out}}",
            "(k**2 * channels + 1) * layer.filters",
        ),
        (r"P_{\text{dense}} = (n + 1) \, m", "(width + 1) * layer.units"),
        (
            r"H_{\text{out}} = \left\lfloor \frac{H_{\text{in}} + 2p - k}{s} \right\rfloor + 1",
            "(side + 2 * pad - k) // s + 1",
        ),
    ],
    "04_training": [
        (r"p_k = \frac{e^{z_k}}{\sum_{j=1}^{C} e^{z_j}}", "sparse_categorical_crossentropy"),
        (r"\mathcal{L}_{\text{chance}} = -\ln \frac{1}{C} = \ln C", "np.log(len(classes))"),
    ],
    "05_regularization": [
        (r"\lambda \sum_{i,j} \lvert W_{ij} \rvert", 'changes.get("l1", 0.0) * float(np.abs('),
        (r"\tilde h = \frac{m \, h}{1 - r}", "1 / (1 - rate)"),
    ],
    "06_evaluation_protocols": [
        (r"\hat\sigma = \sqrt{\frac{1}{n - 1} \sum_{s=1}^{n}", "np.sqrt(squares / (n_seeds - 1))"),
        (r"\bar a \pm t_{n - 1} \, \frac{\hat\sigma}{\sqrt{n}}", "stats.t.ppf(0.975, n_seeds - 1)"),
    ],
}
MATH_BLOCK = re.compile(r"^\$\$\n(.+?)\n\$\$$", re.M | re.S)


def read(chapter: str, folder: Path = REPO / "notebooks") -> nbformat.NotebookNode:
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
    """The index of the code cell that computes the prediction of the equation `latex`, within NEAR cells of it."""
    at = equation_cell(nb, latex)
    near = [i for i in range(at + 1, at + 1 + NEAR) if nb.cells[i].cell_type == "code" and code in nb.cells[i].source]
    assert near, f"{chapter}: no code cell within {NEAR} cells after {latex!r} computes it ({code!r})"
    return near[0]


def printed(nb: nbformat.NotebookNode, index: int) -> str:
    """What the code cell `index` of an executed notebook printed."""
    return "".join(out.get("text", "") for out in nb.cells[index].outputs if out.get("output_type") == "stream")


@pytest.mark.parametrize("chapter", sorted(EQUATIONS))
def test_every_equation_is_valid_math_and_has_its_prediction_nearby(chapter: str) -> None:
    nb = read(chapter)
    for cell in nb.cells:
        if cell.cell_type == "markdown":  # dollarmath: display math opens and closes on lines of its own
            assert cell.source.count("$$") % 2 == 0, cell.source[:200]
            assert len(MATH_BLOCK.findall(cell.source)) * 2 == cell.source.count("$$"), cell.source[:200]
    for latex, code in EQUATIONS[chapter]:
        predicting_cell(nb, chapter, latex, code)


def test_a_prediction_moved_away_from_its_equation_is_caught() -> None:
    nb = read("03_architecture")
    latex, code = EQUATIONS["03_architecture"][0]
    at = predicting_cell(nb, "03_architecture", latex, code)
    nb.cells.insert(at, nbformat.v4.new_markdown_cell("a"))
    nb.cells.insert(at, nbformat.v4.new_markdown_cell("b"))
    nb.cells.insert(at, nbformat.v4.new_markdown_cell("c"))
    with pytest.raises(AssertionError, match="no code cell within"):
        predicting_cell(nb, "03_architecture", latex, code)


def test_dollarmath_is_on() -> None:
    config = (REPO / "_config.yml").read_text()
    extensions = re.search(r"myst_enable_extensions: \[([^\]]*)\]", config)
    assert extensions and "dollarmath" in [e.strip() for e in extensions.group(1).split(",")]


def numbers(pattern: str, text: str) -> list[tuple[float, ...]]:
    """Every match of `pattern` in `text`, its groups as floats (thousands separators dropped)."""
    return [tuple(float(g.replace(",", "")) for g in m.groups()) for m in re.finditer(pattern, text)]


@pytest.mark.book
def test_chapter3_formulas_predict_the_model_keras_built() -> None:
    nb, (latex, code) = read("03_architecture", STAGE / "notebooks"), EQUATIONS["03_architecture"][0]
    text = printed(nb, predicting_cell(nb, "03_architecture", latex, code))
    assert "every side and parameter count agree: True" in text, text
    pairs = numbers(r"(\d[\d,]*) = (\d[\d,]*)", text)
    assert len(pairs) == 4 and all(a == b for a, b in pairs), text
    assert pairs[-1][0] == 542_136  # the paper's count, at 180x180 with 8 classes


@pytest.mark.book
def test_chapter4_chance_loss_is_ln_c() -> None:
    import math

    nb, (latex, code) = read("04_training", STAGE / "notebooks"), EQUATIONS["04_training"][1]
    text = printed(nb, predicting_cell(nb, "04_training", latex, code))
    [(classes, log_of, formula, keras_loss)] = numbers(
        r"C = (\d+) classes: ln\((\d+)\) = ([\d.]+) by the formula, ([\d.]+) by Keras", text
    )
    assert classes == log_of and formula == pytest.approx(math.log(classes), abs=1e-4)
    assert keras_loss == pytest.approx(formula, abs=2e-4), text


@pytest.mark.book
def test_chapter5_penalty_and_inverted_dropout_match_keras() -> None:
    nb = read("05_regularization", STAGE / "notebooks")
    (l1_latex, l1_code), (drop_latex, drop_code) = EQUATIONS["05_regularization"]
    knobs = nb.cells[predicting_cell(nb, "05_regularization", l1_latex, l1_code)]
    table = next(out for out in knobs.outputs if "text/html" in out.get("data", {}))["data"]["text/plain"]
    lines = table.splitlines()
    header = next(i for i, line in enumerate(lines) if "(formula)" in line)  # pandas wraps a wide table
    rows = [line.split() for line in lines[header + 1 :] if line.strip()][:2]
    penalties = [(float(row[-2]), float(row[-1])) for row in rows]  # Keras's penalty, the formula's
    assert len(penalties) == 2 and penalties[0] == (0.0, 0.0) and penalties[1][1] > 0, table
    assert all(keras == pytest.approx(formula, rel=1e-4) for keras, formula in penalties), table
    text = printed(nb, predicting_cell(nb, "05_regularization", drop_latex, drop_code))
    found = numbers(
        r"dropout ([\d.]+): keeps ([\d.]+) .*? each scaled to ([\d.]+) \(formula 1 / \(1 - r\) = ([\d.]+)\)", text
    )
    assert found and "passes them through: True" in text, text
    for rate, kept, scaled, formula in found:
        assert scaled == pytest.approx(formula, abs=1e-3) == pytest.approx(1 / (1 - rate), abs=1e-3)
        assert kept == pytest.approx(1 - rate, abs=0.01)


@pytest.mark.book
def test_chapter6_mean_and_sample_std_are_what_the_book_states() -> None:
    nb, (latex, code) = read("06_evaluation_protocols", STAGE / "notebooks"), EQUATIONS["06_evaluation_protocols"][0]
    text = printed(nb, predicting_cell(nb, "06_evaluation_protocols", latex, code))
    [(mean, std, std_n)] = numbers(r"mean ([\d.]+), sample std ([\d.]+) \(divided by n: ([\d.]+)\)", text)
    [(stated_mean, stated_std)] = numbers(r"fer.mean_std: ([\d.]+) ± ([\d.]+)", text)
    assert (mean, std) == (stated_mean, stated_std), text
    assert std_n < std or std == 0
    [(low, high, pkg_low, pkg_high)] = numbers(
        r"interval of the mean is \[([\d.]+), ([\d.]+)\] \(fer.confidence_interval: \[([\d.]+), ([\d.]+)\]\)", text
    )
    assert (low, high) == (pkg_low, pkg_high) and low <= mean <= high, text
