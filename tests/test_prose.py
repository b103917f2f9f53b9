"""Every number a page states comes from its run (issue 34): no decimal typed by hand into a chapter's prose.

A chapter states its results in paragraphs written from the run (`fer_utils.book.prose.paragraph`, which
records its template and every value it states in the output's metadata); the only decimals typed into
its markdown cells, or into a paragraph's template, are figures quoted from others, each registered with
its source in `fer_utils.book.cited.CITED` and named in the same paragraph. A decimal here is a number with
two or more digits after the point (0.924, 2.44): what a result is quoted as.

The check of the executed chapters needs `make book` first (marker `book`); the others plant a typed
number into a notebook and show that it is caught, so the check can fail.
"""

from __future__ import annotations

import os
import re
import string
from pathlib import Path

import nbformat
import pytest

from fer_book.toc import toc_notebooks
from fer_utils.book.cited import CITED, Cited, cited
from fer_utils.book.prose import NOT_SHOWN, PROSE_KEY, over_seeds, render

REPO = Path(__file__).resolve().parents[1]
STAGE = Path(os.environ.get("FER_BOOK_BUILD", REPO / "_build")) / "stage"
# A number as a result is quoted: two or more digits after the point, not part of a longer token.
DECIMAL = re.compile(r"(?<![\w.])\d[\d,]*\.\d{2,}(?!\.?\d)")
# Addresses and embedded images hold digits that are no statement (a DOI, a base64 badge).
NOT_PROSE = re.compile(r"https?://\S+|data:[\w/+.-]+;base64,[\w+/=]+")


def cited_spans(paragraph: str, figures: dict[str, Cited] = CITED) -> list[tuple[int, int]]:
    """Where `paragraph` quotes a registered figure whose source it names (its `near` words)."""
    return [
        (found.start(), found.end())
        for figure in figures.values()
        if figure.stated_in(paragraph)
        for found in re.finditer(rf"(?<![\w.]){re.escape(figure.text)}(?!\.?\d)", paragraph)
    ]


def typed_decimals(markdown: str, figures: dict[str, Cited] = CITED) -> list[str]:
    """The decimals typed into `markdown` that are not a cited figure named with its source (paragraph by
    paragraph: blank lines apart)."""
    found = []
    for paragraph in re.split(r"\n\s*\n", NOT_PROSE.sub(" ", markdown)):
        quoted = cited_spans(paragraph, figures)
        found += [
            m.group()
            for m in DECIMAL.finditer(paragraph)
            if not any(start <= m.start() and m.end() <= end for start, end in quoted)
        ]
    return found


def literal_text(template: str) -> str:
    """A paragraph's template without its fields: the words typed by hand."""
    return "".join(text for text, *_ in string.Formatter().parse(template))


def paragraph_records(nb: nbformat.NotebookNode) -> list[dict]:
    """The records (`PROSE_KEY`) of the paragraphs the executed notebook's code wrote, in order."""
    return [
        out["metadata"][PROSE_KEY]
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if PROSE_KEY in out.get("metadata", {})
    ]


def hand_typed(nb: nbformat.NotebookNode, figures: dict[str, Cited] = CITED) -> list[str]:
    """Every decimal the notebook's prose states that is neither written from its run nor a cited figure,
    each as `cell N: <where>: <number>` (other outputs, such as an exercise's feedback, are the code's)."""
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            problems += [f"cell {index}: markdown: {number}" for number in typed_decimals(cell.source, figures)]
            continue
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            record = out.get("metadata", {}).get(PROSE_KEY)
            if record is None:
                continue
            problems += [
                f"cell {index}: paragraph template: {number}"
                for number in typed_decimals(literal_text(record["literal"]), figures)
            ]
            problems += [
                f"cell {index}: paragraph value {name!r} given as words: {number}"
                for name, value in record["values"].items()
                if value.get("words")
                for number in DECIMAL.findall(value["text"])
            ]
    return problems


def executed_chapters() -> list[str]:
    """The chapters of the table of contents, by file stem."""
    return [path.stem for path in toc_notebooks(REPO)]


@pytest.mark.book
@pytest.mark.parametrize("chapter", executed_chapters())
def test_no_number_in_an_executed_chapter_is_typed_by_hand(chapter: str) -> None:
    path = STAGE / "notebooks" / f"{chapter}.ipynb"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make book` first (this test reads its output)")
    problems = hand_typed(nbformat.read(path, as_version=4))
    assert problems == [], f"{chapter}: decimals typed by hand (write them from the run, or cite them):\n" + "\n".join(
        problems
    )


@pytest.mark.book
def test_a_number_planted_in_an_executed_chapter_is_caught() -> None:
    """A result typed into a copy of an executed chapter (a markdown cell and a paragraph's template)."""
    path = STAGE / "notebooks" / f"{executed_chapters()[0]}.ipynb"
    nb = nbformat.read(path, as_version=4)
    before = hand_typed(nb)
    nb.cells.append(nbformat.v4.new_markdown_cell("The random split scores 0.924 on this run."))
    assert hand_typed(nb) == [*before, f"cell {len(nb.cells) - 1}: markdown: 0.924"]


def notebook(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A notebook of `cells`."""
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def paragraph_cell(template: str, **values: object) -> nbformat.NotebookNode:
    """A code cell whose output is the paragraph `prose.paragraph` displays for `template` and `values`."""
    text, record = render(template, **values)
    cell = nbformat.v4.new_code_cell("prose.paragraph(...)")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data", data={"text/markdown": text, "text/plain": text}, metadata={PROSE_KEY: record}
        )
    ]
    return cell


def test_a_decimal_typed_into_a_markdown_cell_is_caught() -> None:
    nb = notebook(
        nbformat.v4.new_markdown_cell("With the quick defaults the random split scores 0.924 ± 0.025."),
        nbformat.v4.new_markdown_cell("Python 3.11, 92 % in the paper, 8.6 times the parameters, 542,136 of them."),
    )
    assert hand_typed(nb) == ["cell 0: markdown: 0.924", "cell 0: markdown: 0.025", "cell 1: markdown: 3.11"]


def test_a_cited_figure_passes_only_beside_its_source() -> None:
    figure = cited("keras_bn_momentum")
    beside = f"With Keras's default momentum, {figure.text}, the averages forget their start slowly."
    alone = f"The network reached {figure.text} on its training frames."
    assert hand_typed(notebook(nbformat.v4.new_markdown_cell(beside))) == []
    assert hand_typed(notebook(nbformat.v4.new_markdown_cell(alone))) == [f"cell 0: markdown: {figure.text}"]
    # the source must be named in the same paragraph, not anywhere in the cell
    split = f"{alone}\n\nKeras is the library."
    assert hand_typed(notebook(nbformat.v4.new_markdown_cell(split))) == [f"cell 0: markdown: {figure.text}"]


def test_links_and_embedded_images_are_not_prose() -> None:
    cell = nbformat.v4.new_markdown_cell(
        "[the paper](https://doi.org/10.1109/TENCON58879.2023.10322470) "
        '<img src="data:image/svg+xml;base64,PHN2Zz4xMC4yNTwvc3ZnPg=="/>'
    )
    assert hand_typed(notebook(cell)) == []


def test_a_speed_ratio_stated_in_words_is_recorded_as_the_runs_number() -> None:
    """Issue 36 regression: chapter 8 stated XLA's speed ratios as strings ("1.32× as fast as"), which the
    executed-book check rightly flagged as decimals given as words; a `prose.Speed` states the same words and
    records its ratio as the run's number."""
    from fer_utils.book.prose import speed_words

    ratios = {"faster": 1.32, "slower": 1 / 2.7, "tie": 1.03}
    stated = paragraph_cell(
        "XLA ran {faster} the graph, {slower} it, {tie} it.", **{k: speed_words(v) for k, v in ratios.items()}
    )
    assert hand_typed(notebook(stated)) == []
    text = render("{a} / {b} / {c}", a=speed_words(1.32), b=speed_words(1 / 2.7), c=speed_words(1.03))[0]
    assert text == "1.32× as fast as / 2.70× slower than / about as fast as (1.03×)"
    as_text = paragraph_cell("XLA ran {faster} the graph.", faster=format(speed_words(1.32)))
    assert hand_typed(notebook(as_text)) == ["cell 0: paragraph value 'faster' given as words: 1.32"]


def test_a_paragraph_written_from_the_run_passes_and_a_typed_number_in_it_is_caught() -> None:
    from_run = paragraph_cell(
        "The random split scores {random}, {diff:+.3f} above the subject split ({verdict}); Keras {m}.",
        random=over_seeds([0.9, 0.95, 0.92]),
        diff=0.398,
        verdict="larger than the spread",
        m=cited("keras_bn_momentum"),
    )
    assert hand_typed(notebook(from_run)) == []
    typed = paragraph_cell("The random split scores {random}, the subject split 0.525.", random=0.924)
    assert hand_typed(notebook(typed)) == ["cell 0: paragraph template: 0.525"]
    as_words = paragraph_cell("The subject split scores {subject}.", subject="0.525")
    assert hand_typed(notebook(as_words)) == ["cell 0: paragraph value 'subject' given as words: 0.525"]


def test_a_paragraph_formats_and_records_what_it_states() -> None:
    text, record = render(
        "On {data}, {#claim_a}{n} faces score {acc} (one seed: {one}), {gain:+.2f} over chance.",
        lesson={"claim_a": True},
        data="the synthetic sample",
        n=1289,
        acc=over_seeds([0.5, 0.6, float("nan")]),
        one=over_seeds([0.5]),
        gain=0.25,
    )
    assert text == (
        'On the synthetic sample, <a id="claim-claim_a"></a>1,289 faces score 0.550 ± 0.071 '
        "(one seed: 0.500 (one run: no spread)), +0.25 over chance."
    )
    assert record["anchors"] == ["claim_a"]
    assert record["values"]["acc"] == {"text": "0.550 ± 0.071", "number": [0.5, 0.6]}
    assert record["values"]["gain:+.2f"] == {"text": "+0.25", "number": 0.25}
    assert record["values"]["data"]["words"] is True


def test_a_sentence_whose_claim_fails_says_so() -> None:
    text, _ = render("{#a}The remedy keeps the test accuracy.", lesson={"a": False})
    assert text == f'<a id="claim-a"></a>{NOT_SHOWN} The remedy keeps the test accuracy.'


@pytest.mark.parametrize(
    ("template", "values", "error", "message"),
    [
        ("scores {acc}", {}, KeyError, "no value named 'acc'"),
        ("scores {acc}", {"acc": 0.5, "spare": 1}, KeyError, "not stated in the paragraph: ['spare']"),
        ("it {worked}", {"worked": True}, TypeError, "in words"),
    ],
)
def test_a_paragraph_refuses_a_missing_an_unused_or_a_yes_no_value(
    template: str, values: dict, error: type, message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        render(template, **values)


def test_every_cited_figure_names_its_source() -> None:
    for key, figure in CITED.items():
        assert DECIMAL.fullmatch(figure.text) or figure.text.strip(), key
        assert figure.source and figure.near, key
    with pytest.raises(KeyError, match="the book cites"):
        cited("no such figure")
