"""The executed book's prose: short enough to read in one sitting, its numbers glued from the run, its
claims borne out (`fer_book.prose`, `fer_utils.book.claims`).

The checks of the executed chapters need `make book` first (marker `book`); the others run the same
checks on notebooks made here, with each defect planted, so the checks can fail.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from fer_book import prose
from fer_book.toc import toc_notebooks
from fer_utils.book.claims import check_claims, failed_claims
from fer_utils.book.glue import (
    Difference,
    difference,
    fastest,
    glue,
    numbers_of,
    over_seeds,
    speed_words,
    stated,
)

REPO = Path(__file__).resolve().parents[1]
STAGE = Path(os.environ.get("FER_BOOK_BUILD", REPO / "_build")) / "stage"


def executed(chapter: str) -> dict:
    """The chapter's notebook as `make book` executed it (the test fails, saying so, when it is missing)."""
    path = STAGE / "notebooks" / f"{chapter}.ipynb"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make book` first (this test checks its output)")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.book
@pytest.mark.parametrize("chapter", [path.stem for path in toc_notebooks(REPO)])
def test_an_executed_chapter_reads_in_one_sitting_with_its_numbers_glued(chapter: str) -> None:
    nb = executed(chapter)
    assert prose.problems(nb) == [], f"{chapter}: {prose.problems(nb)}"


SHOWN_WIDTH = 88  # the widest code line the HTML book shows without clipping it (notebooks/ruff.toml)


def shown_package_lines(nb: dict, width: int = SHOWN_WIDTH) -> list[str]:
    """The lines wider than `width` of the package code a chapter displays (`fer.show`: a Markdown code block)."""
    found = []
    for index, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            text = out.get("data", {}).get("text/markdown", "")
            text = "".join(text) if isinstance(text, list) else text
            if text.startswith("```python"):
                found += [f"cell {index}: {line}" for line in text.splitlines() if len(line) > width]
    return found


@pytest.mark.book
@pytest.mark.parametrize("chapter", [path.stem for path in toc_notebooks(REPO)])
def test_the_package_code_a_chapter_shows_fits_the_books_width(chapter: str) -> None:
    assert shown_package_lines(executed(chapter)) == []


def test_a_shown_line_wider_than_the_book_is_found() -> None:
    from fer_utils.book.source import source_of
    from fer_utils.data.media import frame_indices

    shown = {"output_type": "display_data", "data": {"text/markdown": source_of(frame_indices)}, "metadata": {}}
    assert shown_package_lines(notebook([], [shown])) == []
    wide = {"output_type": "display_data", "data": {"text/markdown": "```python\n" + "x" * 89 + "\n```"}}
    assert shown_package_lines(notebook([], [{**wide, "metadata": {}}])) == ["cell 0: " + "x" * 89]


def notebook(markdown: list[str], outputs: list[dict] | None = None) -> dict:
    """A notebook of `markdown` cells and one code cell with `outputs`, as the stage holds it."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(text) for text in markdown]
    code = nbformat.v4.new_code_cell("x = 1")
    code.outputs = [nbformat.from_dict(out) for out in outputs or []]
    nb.cells.append(code)
    return json.loads(nbformat.writes(nb))


def glued(name: str, text: str) -> dict:
    """The output myst-nb's `glue(name, text, display=False)` writes."""
    return {
        "output_type": "display_data",
        "data": {"application/papermill.record/text/plain": repr(text)},
        "metadata": {"scrapbook": {"name": name, "mime_prefix": "application/papermill.record/"}},
    }


def test_words_and_sentences_are_counted_in_prose_not_in_code_math_or_headings() -> None:
    text = (
        "# A heading of five words\n\n"
        "The gap closes. It closes by {glue:text}`ch5_gap`, e.g. on faces.\n\n"
        "* one item here\n* another item\n\n"
        "```python\nx = 1  # not prose at all\n```\n\n"
        "$$\na = b + c\n$$\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    measured = prose.stats(notebook([text]))
    # "The gap closes." (3) "It closes by N, e.g. on faces." (7) "one item here" (3) "another item" (2)
    assert (measured.words, measured.sentences) == (15, 4)


def test_an_aside_is_prose_but_its_options_are_not() -> None:
    text = "```{admonition} Where these numbers come from\n:class: dropdown\nThe run took long.\n```\n"
    assert prose.stats(notebook([text])).words == 4


def test_a_directive_the_parser_reads_as_text_is_refused() -> None:
    """A backtick in a backtick fence's title is not CommonMark: chapter 7's aside rendered as a paragraph."""
    broken = "```{admonition} Why `batch_norm` uses a momentum\n:class: dropdown\nIt keeps the mean.\n```\n"
    assert prose.problems(notebook([broken])) == [
        "a directive read as text: cell 0: ```{admonition} Why `batch_norm` uses a momentum"
    ]
    nested = "````{admonition} Why batch_norm uses a momentum\nIt keeps it.\n```{code} python\nx = 1\n```\n````\n"
    colon = ":::{note}\nA note.\n:::\n"
    assert prose.problems(notebook([nested, colon])) == []


def test_a_long_chapter_and_long_sentences_are_refused() -> None:
    long_sentence = " ".join(["word"] * 30) + "."
    found = prose.problems(notebook([long_sentence]))
    assert found == ["a mean sentence of 30.0 words (at most 20)"]
    many = "\n\n".join(["Ten words are here in this short sentence of prose."] * 300)
    assert prose.problems(notebook([many]))[0].startswith("3000 words of prose")


def test_a_number_typed_into_the_text_is_refused_and_a_glued_one_passes() -> None:
    nb = notebook(["The remedy scores 0.612 on the test faces."])
    assert prose.problems(nb) == ["typed by hand, not glued: 0.612"]
    nb = notebook(["The remedy scores {glue:text}`ch5_score` on the test faces."], [glued("ch5_score", "0.612")])
    assert prose.problems(nb) == []


def test_a_figure_quoted_from_the_paper_passes_only_beside_its_source() -> None:
    assert prose.typed_decimals("The paper's LSTM reaches 98.90 % on RAVDESS.") == []
    assert prose.typed_decimals("An LSTM reaches 98.90 % on RAVDESS.") == ["98.90"]


def test_a_value_the_text_states_but_no_cell_glued_is_refused() -> None:
    nb = notebook(["The gap is {glue:text}`ch5_gap`."], [glued("ch5_other", "0.1")])
    assert prose.problems(nb) == ["the text states 'ch5_gap', which no cell glued"]


def test_prose_written_by_a_code_cell_is_refused_but_shown_code_is_not() -> None:
    paragraph = " ".join(["The network learns its training faces well."] * 8)
    nb = notebook([], [{"output_type": "display_data", "data": {"text/markdown": paragraph}, "metadata": {}}])
    assert prose.problems(nb)[0].startswith("prose written by code, not in markdown: cell 0")
    code = "```python\n" + "\n".join(f"x{i} = {i}  # a comment of words" for i in range(40)) + "\n```"
    nb = notebook([], [{"output_type": "display_data", "data": {"text/markdown": code}, "metadata": {}}])
    assert prose.problems(nb) == []


def test_a_checkers_verdict_in_a_solution_cell_is_not_the_books_prose() -> None:
    """The experiments' verdict states the change and the spread in more than 40 words (seven chapters failed)."""
    verdict = " ".join(["Correct: the mean change is larger than the spread between the seeds."] * 6)
    out = {"output_type": "display_data", "data": {"text/markdown": verdict}, "metadata": {}}
    nb = notebook([], [out])
    assert prose.problems(nb)[0].startswith("prose written by code")
    nb["cells"][-1]["metadata"]["tags"] = ["solution", "hide-cell"]
    assert prose.problems(nb) == []


def test_a_warning_that_the_run_does_not_bear_out_the_text_is_refused() -> None:
    out = {"output_type": "stream", "name": "stdout", "text": "⚠️ This run does not bear out the text"}
    assert prose.problems(notebook([], [out])) == ["a warning that the run does not bear out the text: cell 0"]


def test_the_fastest_of_timings_within_a_few_percent_is_a_tie_not_a_winner() -> None:
    """Chapter 8 named "tflite float16" the fastest variant at 0.4991 ms beside float32's 0.5005 (idxmin)."""
    timings = pd.Series({"tflite float32": 0.5005, "tflite float16": 0.4991, "tflite int8": 0.9})
    assert fastest(timings) == "tflite float16 and tflite float32, tied within 5 %"
    assert fastest({"eager": 2.0, "xla": 1.0, "tf.function": 1.2}) == "xla"


def test_values_are_stated_the_books_way_with_their_numbers_kept() -> None:
    assert stated(0.12345) == "0.123" and stated(12345) == "12,345" and stated("words") == "words"
    assert format(over_seeds([0.5, 0.7]), "") == "0.600 ± 0.141"
    assert format(over_seeds([0.5]), "") == "0.500 (one run: no spread)"
    change = difference([0.9, 0.8], [0.5, 0.6])
    assert isinstance(change, Difference) and change.beyond and format(change, "") == "+0.300 (std up to 0.071)"
    assert format(speed_words(2.1), "") == "2.10× as fast as" and format(speed_words(0.5), "") == "2.00× slower than"
    with pytest.raises(TypeError, match="in words"):
        stated(True)
    assert numbers_of(over_seeds([0.5, 0.7])) == [0.5, 0.7] and numbers_of(change) == [change.diff, change.spread]
    assert glue("ch0_value", over_seeds([0.5, 0.7])) is None  # a cell ending with it displays nothing


def test_a_strict_tie_or_a_missing_number_never_holds() -> None:
    def failed(value: float, op: str) -> list[str]:
        return failed_claims({"chapter": "07_comparison", "measured": {"lead": value}, "claims": {"lead": [op, 0.0]}})

    assert failed(5e-7, ">") == ["lead: measured 5e-07, checked as > 0"]
    assert failed(float("nan"), ">=") == ["lead: measured nan, checked as ≥ 0"]
    assert failed(2e-6, ">") == [] and failed(0.0, ">=") == []
    with pytest.raises(ValueError, match="unknown comparison"):
        check_claims("07_comparison", {"lead": (1.0, "=>", 0.0)})


def test_the_claims_and_glued_values_go_to_the_chapters_results_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    from fer_utils.book.results import RESULTS_ENV, read_results, record, start_results

    path = tmp_path / "results" / "04_training.json"
    start_results(path, "04_training", "4. Training", {"DATASET": "sample", "EPOCHS": 5}, {"EPOCHS": 5})
    monkeypatch.setenv(RESULTS_ENV, str(path))
    InteractiveShell.instance()
    with capture_output() as captured:
        check_claims("04_training", {"collapsed_runs": (0, "==", 0), "loss": (0.4, "<=", 0.7)})
        glue("ch4_loss", over_seeds([0.5, 0.7]))
        record("params", pd.Series({"paper-cnn": np.int64(542_119)}))
    assert captured.outputs[0].data == {"text/plain": "2 claims of the text hold on this run."}
    results = read_results(path)
    assert results["parameters"] == {"DATASET": "sample", "EPOCHS": 5} and results["given"] == {"EPOCHS": 5}
    assert results["glued"] == {"ch4_loss": {"text": "0.600 ± 0.141", "numbers": [0.5, 0.7]}}
    assert results["values"] == {"params": {"paper-cnn": 542_119}}
    (check,) = results["checks"]
    assert check == {
        "chapter": "04_training",
        "measured": {"collapsed_runs": 0.0, "loss": 0.4},
        "claims": {"collapsed_runs": ["==", 0.0], "loss": ["<=", 0.7]},
    }
