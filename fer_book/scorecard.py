"""The paper's claims, scored: the book's appendix page, written at build time from the executed chapters.

`CLAIMS` defines, once, each claim of the paper and of its two related works: the figure quoted (a
`fer_utils.book.cited` key, with its source), the values of the executed chapters that measure it (a value a
generated paragraph stated, `fer_utils.book.prose`; a number of a chapter's lesson record,
`fer_utils.book.lessons`; or a cell of a table a chapter printed), the protocol in words, and the rule that
turns the measured values into a verdict: reproduced, not reproduced, or not testable here (an accuracy
measured on other data than the claim's is not a reproduction of it). A claim the book cannot test gives its
reason instead of a run. `write_scorecard(stage)` reads the stage's executed notebooks and writes the
verdicts between the markers of the staged `book/scorecard.md`; `fer_book.build` calls it before Sphinx
whenever the stage's table of contents lists that page. A claim whose chapter recorded no such value fails
the build (ScorecardError, naming the claim, the chapter and the key). `python -m fer_book scorecard --stage
_build/stage` writes it alone and prints the verdicts.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Protocol

from fer_book.grade_notebooks import cell_source, title_of
from fer_book.markers import MarkerError, between
from fer_book.toc import toc_entries
from fer_utils.book.cited import Cited, cited
from fer_utils.book.lessons import LESSON_KEY, LESSONS, checked_as
from fer_utils.book.prose import PROSE_KEY
from fer_utils.storage.atomic import write_atomic

PAGE = Path("book") / "scorecard.md"
MARKERS = (
    "<!-- scorecard: written by `python -m fer_book build` from the executed chapters; do not edit -->",
    "<!-- end of the scorecard -->",
)
VERDICTS = ("reproduced", "not reproduced", "not testable here")
# An accuracy or F1 on the claim's own dataset reproduces the paper's figure when the book's mean over seeds is
# at most this far below it (in accuracy, 0..1): the book's runs differ in budget and details the paper omits.
ACCURACY_MARGIN = 0.05
# The book's readers pass these names to run a chapter on real data (fer_utils.book.artifacts.Dataset).
DATASET_NAMES = {"ravdess": "RAVDESS", "savee": "SAVEE", "mead": "MEAD"}


class ScorecardError(MarkerError):
    """A claim names a run whose executed chapter recorded no value it reads, or the page lacks its markers."""


# --- where a measured value is recorded in an executed chapter -------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """A value read from an executed chapter: its number (the mean, for a value over seeds), every number
    behind it and the text the chapter stated."""

    number: float
    values: tuple[float, ...]
    text: str

    @property
    def spread(self) -> str:
        """How many runs the value is over, in words ("" for one number)."""
        return f" over {len(self.values)} seeds" if len(self.values) > 1 else ""

    def __format__(self, spec: str) -> str:
        return f"{self.text}{self.spread}"


@dataclass(frozen=True)
class Prose:
    """A value stated by a generated paragraph: the paragraph whose template holds `paragraph`, its value `value`."""

    chapter: str
    paragraph: str
    value: str

    @property
    def key(self) -> str:
        return f"{PROSE_KEY} value {self.value!r} of the paragraph holding {self.paragraph!r}"

    def read(self, nb: Mapping) -> Reading | None:
        for record in records(nb, PROSE_KEY):
            if self.paragraph not in record.get("literal", ""):
                continue
            for name, stated in record.get("values", {}).items():
                if name == self.value or name.startswith(f"{self.value}:"):
                    numbers = stated.get("number")
                    if numbers is None:
                        return None
                    values = tuple(float(v) for v in (numbers if isinstance(numbers, list) else [numbers]))
                    return Reading(sum(values) / len(values) if values else math.nan, values, stated["text"])
        return None


@dataclass(frozen=True)
class Lesson:
    """A number of the chapter's lesson record (`show_lesson`)."""

    chapter: str
    name: str

    @property
    def key(self) -> str:
        return f"{LESSON_KEY} number {self.name!r}"

    def read(self, nb: Mapping) -> Reading | None:
        for record in records(nb, LESSON_KEY):
            if self.name in record.get("measured", {}):
                value = float(record["measured"][self.name])
                return Reading(value, (value,), f"{value:.3g}")
        return None


@dataclass(frozen=True)
class TableCell:
    """A cell of a table the chapter printed (a DataFrame output): the column `column` of the row whose
    `row_column` is `row`."""

    chapter: str
    column: str
    row_column: str
    row: str

    @property
    def key(self) -> str:
        return f"column {self.column!r}, row {self.row_column} = {self.row!r} of a printed table"

    def read(self, nb: Mapping) -> Reading | None:
        for table in printed_tables(nb):
            if not table or self.column not in table[0] or self.row_column not in table[0]:
                continue
            for row in table[1:]:
                cells = dict(zip(table[0], row))
                if cells.get(self.row_column) == self.row:
                    try:
                        value = float(cells[self.column].replace(",", ""))
                    except (KeyError, ValueError):
                        return None
                    return Reading(value, (value,), f"{value:,.0f}" if value.is_integer() else f"{value:g}")
        return None


Source = Prose | Lesson | TableCell


def records(nb: Mapping, key: str) -> list[dict]:
    """The records under `key` in the metadata of the notebook's outputs, in order."""
    return [
        out["metadata"][key]
        for cell in nb.get("cells", [])
        if cell.get("cell_type") == "code"
        for out in cell.get("outputs", [])
        if key in out.get("metadata", {})
    ]


class _Tables(HTMLParser):
    """The rows (lists of cell texts) of every <table> of an HTML text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.row: list[str] | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None and self.row is not None:
            self.row.append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "tr" and self.row is not None:
            if any(self.row):
                self.tables[-1].append(self.row)
            self.row = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def printed_tables(nb: Mapping) -> list[list[list[str]]]:
    """Every table the notebook's outputs show as HTML: its header row first (a DataFrame's index column has
    an empty header), then its rows, each as cell texts."""
    found = []
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            html = out.get("data", {}).get("text/html")
            if html:
                parser = _Tables()
                parser.feed("".join(html) if isinstance(html, list) else html)
                found += parser.tables
    return found


# --- the run a chapter made: its data ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """An executed chapter: its notebook, title, the dataset it ran on and the parameters papermill gave it."""

    chapter: str
    notebook: dict
    title: str
    dataset: str
    label: str | None
    parameters: dict

    def data_words(self) -> str:
        """The data in words: the chapter's own label for it when it states one, and the dataset parameter."""
        given = ", ".join(f"{k}={v!r}" for k, v in sorted(self.parameters.items()))
        data = f"DATASET={self.dataset!r}" + (f"; parameters given: {given}" if given else ", the chapter's default")
        return f"{self.label} ({data})" if self.label else data


def default_parameter(nb: Mapping, name: str) -> object:
    """The value the notebook's `parameters` cell assigns to `name` (a literal), else None."""
    for cell in nb.get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            for node in ast.parse(cell_source(cell)).body:
                if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
                    try:
                        return ast.literal_eval(node.value)
                    except ValueError:
                        return None
    return None


def read_run(stage: Path, chapter: str) -> Run | None:
    """The executed chapter `chapter` of the stage, or None when the stage has no such notebook."""
    path = stage / "notebooks" / f"{chapter}.ipynb"
    if not path.is_file():
        return None
    nb = json.loads(path.read_text(encoding="utf-8"))
    parameters = dict(nb.get("metadata", {}).get("papermill", {}).get("parameters", {}) or {})
    dataset = str(parameters.get("DATASET", default_parameter(nb, "DATASET")))
    labels = [
        value["text"]
        for record in records(nb, PROSE_KEY)
        for name, value in record.get("values", {}).items()
        if name.split(":")[0] == "data" and value.get("words")
    ]
    label = (
        labels[0] if labels else dataset_label(dataset, parameters.get("DATA_DIR", default_parameter(nb, "DATA_DIR")))
    )
    return Run(chapter, nb, title_of(nb).lstrip("# ").strip(), dataset, label, parameters)


def dataset_label(name: str, data_dir: object) -> str | None:
    """How the chapters name a dataset in their sentences (fer_utils.book.artifacts.Dataset.label), for a
    chapter that states no label of its own; None when the parameters name no dataset the book knows."""
    from fer_utils.book.artifacts import Dataset
    from fer_utils.errors import DatasetError

    try:
        return Dataset(name, Path(str(data_dir)) if data_dir else None).label
    except DatasetError:
        return None


# --- verdict rules ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """A claim's verdict (one of VERDICTS) and why, in words."""

    verdict: str
    why: str


class Rule(Protocol):
    """How a claim's measured values become its verdict."""

    def words(self, figure: Cited) -> str:
        """The rule, as the page states it."""

    def judge(self, readings: Mapping[str, Reading], figure: Cited, run: Run) -> Verdict:
        """The verdict on these readings (named as the claim names its sources) of this run."""


def figure_number(figure: Cited) -> float:
    """The number a quoted figure states ("542,136" → 542136.0)."""
    return float(figure.text.replace(",", ""))


@dataclass(frozen=True)
class SameCount:
    """Reproduced when the count read as `reading` equals the quoted figure exactly."""

    reading: str

    def words(self, figure: Cited) -> str:
        return f"reproduced when the count equals {figure.text} exactly"

    def judge(self, readings: Mapping[str, Reading], figure: Cited, run: Run) -> Verdict:
        count = readings[self.reading].number
        if count == figure_number(figure):
            return Verdict("reproduced", f"{count:,.0f} = {figure.text}")
        return Verdict("not reproduced", f"{count:,.0f} ≠ {figure.text}")


@dataclass(frozen=True)
class RoundedRatio:
    """Reproduced when `numerator` / `denominator` rounds to the quoted figure (a whole number)."""

    numerator: str
    denominator: str

    def words(self, figure: Cited) -> str:
        return f"reproduced when the ratio rounds to {figure.text} (within ±0.5)"

    def judge(self, readings: Mapping[str, Reading], figure: Cited, run: Run) -> Verdict:
        ratio = readings[self.numerator].number / readings[self.denominator].number
        ok = abs(ratio - figure_number(figure)) < 0.5
        return Verdict(
            "reproduced" if ok else "not reproduced", f"ratio {ratio:.2f}, {'≈' if ok else '≠'} {figure.text}"
        )


@dataclass(frozen=True)
class ScoreOnData:
    """A score the paper reports on `dataset`: comparable only on a run of the chapter on that dataset, then
    reproduced when the book's mean is at least the paper's figure (%) less ACCURACY_MARGIN."""

    reading: str
    dataset: str
    margin: float = ACCURACY_MARGIN

    def words(self, figure: Cited) -> str:
        return (
            f"on {DATASET_NAMES[self.dataset]} only; reproduced when the mean is at least "
            f"{figure_number(figure) / 100 - self.margin:.2f} (the paper's {figure.text} % less {self.margin:.2f})"
        )

    def judge(self, readings: Mapping[str, Reading], figure: Cited, run: Run) -> Verdict:
        name = DATASET_NAMES[self.dataset]
        if run.dataset != self.dataset:
            return Verdict(
                "not testable here",
                f"different data: chapter {run.chapter[:2].lstrip('0')} ran on {run.data_words()}, not on {name}, "
                f"so its number is no reproduction of the paper's. A reader with {name} runs it with "
                f"DATASET={self.dataset!r} and DATA_DIR set, and this page scores that run",
            )
        mean = readings[self.reading].number
        floor = figure_number(figure) / 100 - self.margin
        ok = mean == mean and mean >= floor
        return Verdict(
            "reproduced" if ok else "not reproduced", f"mean {mean:.3f} {'≥' if ok else '<'} {floor:.2f} on {name}"
        )


@dataclass(frozen=True)
class LessonHolds:
    """Reproduced when every one of the chapter's lesson claims `names` holds on its recorded number (the
    thresholds of fer_utils.book.lessons.LESSONS)."""

    chapter: str
    names: tuple[str, ...]

    def claims(self) -> list:
        by_name = {claim.name: claim for claim in LESSONS[self.chapter]}
        return [by_name[name] for name in self.names]

    def words(self, figure: Cited) -> str:
        return "reproduced when each holds: " + "; ".join(
            f"{claim.text} {checked_as(claim)}" for claim in self.claims()
        )

    def judge(self, readings: Mapping[str, Reading], figure: Cited, run: Run) -> Verdict:
        checks = [(claim, readings[claim.name].number) for claim in self.claims()]
        failed = [
            f"{claim.name} = {value:.3g}, not {checked_as(claim)}" for claim, value in checks if not claim.holds(value)
        ]
        if failed:
            return Verdict("not reproduced", "; ".join(failed))
        return Verdict(
            "reproduced", "; ".join(f"{claim.name} = {value:.3g} ({checked_as(claim)})" for claim, value in checks)
        )


@dataclass(frozen=True)
class FasterThan:
    """Reproduced when the speed ratio read as `reading` (a baseline's time over this path's) is above 1 + tie
    (the tie of fer_utils.book.prose.Speed: within it, "about as fast")."""

    reading: str
    tie: float = 0.05

    def words(self, figure: Cited) -> str:
        return f"reproduced when the speed ratio is above {1 + self.tie:.2f}"

    def judge(self, readings: Mapping[str, Reading], figure: Cited, run: Run) -> Verdict:
        ratio = readings[self.reading].number
        ok = ratio > 1 + self.tie
        return Verdict(
            "reproduced" if ok else "not reproduced", f"ratio {ratio:.2f} {'>' if ok else '≤'} {1 + self.tie:.2f}"
        )


@dataclass(frozen=True)
class FewerThan:
    """Reproduced when `heavier` / `reading` is at least `factor` (a model at least `factor` times lighter)."""

    reading: str
    heavier: str
    factor: float

    def words(self, figure: Cited) -> str:
        return f"reproduced when it has at most 1/{self.factor:g} of the parameters of {self.heavier}"

    def judge(self, readings: Mapping[str, Reading], figure: Cited, run: Run) -> Verdict:
        ratio = readings[self.heavier].number / readings[self.reading].number
        ok = ratio >= self.factor
        return Verdict(
            "reproduced" if ok else "not reproduced", f"{ratio:.1f}× fewer, {'≥' if ok else '<'} {self.factor:g}×"
        )


# --- the claims -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """A claim's figure: a cited key (fer_utils.book.cited), or words when the book quotes no number."""

    key: str | None = None
    words: str = ""

    def cited(self) -> Cited:
        return cited(self.key) if self.key else Cited(self.words, self.words, r".")


@dataclass(frozen=True)
class ScoredClaim:
    """One claim: who makes it, what it says, the figure quoted; the values that measure it (`sources`, by
    name; the first one's chapter is the run), what the page shows of them (`shown`, a template of their names),
    the protocol in words and the rule; or `not_testable`, the reason."""

    name: str
    by: str
    claim: str
    figure: Figure
    sources: Mapping[str, Source] = field(default_factory=dict)
    shown: str = ""
    protocol: str = ""
    rule: Rule | None = None
    not_testable: str = ""

    def __post_init__(self) -> None:
        if bool(self.not_testable) == bool(self.sources and self.rule):
            raise ValueError(f"claim {self.name!r}: give either sources and a rule, or a reason it is not testable")

    @property
    def chapter(self) -> str | None:
        return next(iter(self.sources.values())).chapter if self.sources else None


PAPER = "the paper {cite}`ding2023lightweight`"
MOBILENET_INCEPTION = "MobileNetV2 + Inception, 2019 {cite}`lightweight2019mobilenetv2inception`"
OPTIMIZED_XCEPTION = "optimized Xception, 2022 {cite}`valverde2022optimized`"
REFERENCE_RUN = "Over seeds {seeds}, the reference run on {data}"  # chapter 4's result paragraph
PUBLISHED = "**The network as published.**"  # chapter 5: the paper's network at 180×180 with its remedy
CATALOGUE = "07_comparison"  # chapter 7's table of every model counted from Keras


def _score(name: str, dataset: str, metric: str, chapter: str, paragraph: str, value: str, protocol: str):
    """A claim of the paper's accuracy or F1 on `dataset`, read from a chapter's paragraph."""
    return ScoredClaim(
        name=f"{dataset}_{metric}",
        by=PAPER,
        claim=name,
        figure=Figure(f"paper_{dataset}_{metric}"),
        sources={value: Prose(chapter, paragraph, value)},
        shown=f"{metric.replace('f1', 'macro F1')} {{{value}}}",
        protocol=protocol,
        rule=ScoreOnData(value, dataset),
    )


REFERENCE_PROTOCOL = (
    "the paper's CNN trained by chapter 4's reference run (random frame split 80/20 with a validation share, early "
    "stopping), test frames scored; F1 is the macro F1; mean ± std over seeds"
)
PUBLISHED_PROTOCOL = (
    "chapter 5's network as published: the paper's CNN at 180×180 with the SAVEE remedy (dropout 0.3, 0.5, 0.5 and "
    "L1 on the dense layer), one run trained until its validation loss stopped improving (best epoch's weights), "
    "test faces scored; F1 is the macro F1"
)

CLAIMS: tuple[ScoredClaim, ...] = (
    ScoredClaim(
        name="params",
        by=PAPER,
        claim="The CNN has 542,136 parameters (180×180×1 input, 8 classes)",
        figure=Figure("paper_params"),
        sources={"paper_cnn": TableCell(CATALOGUE, "params", "model", "paper-cnn")},
        shown="{paper_cnn} parameters",
        protocol="Keras's count_params of build_paper_cnn at 180×180×1 with 8 classes (chapter 7's catalogue; "
        "chapter 3 counts it layer by layer); no data involved",
        rule=SameCount("paper_cnn"),
    ),
    ScoredClaim(
        name="resnet50_ratio",
        by=PAPER,
        claim="ResNet50 has 47 times its parameters (Tables I and II)",
        figure=Figure("paper_resnet50_ratio"),
        sources={
            "resnet50": TableCell(CATALOGUE, "params", "model", "resnet50"),
            "paper_cnn": TableCell(CATALOGUE, "params", "model", "paper-cnn"),
        },
        shown="ResNet50 {resnet50} parameters, the paper's CNN {paper_cnn}",
        protocol="Keras's ResNet50 (224×224×3, 1,000 classes) and the paper's CNN, counted in chapter 7's catalogue",
        rule=RoundedRatio("resnet50", "paper_cnn"),
    ),
    ScoredClaim(
        name="lstm_ratio",
        by=PAPER,
        claim="Its strongest RAVDESS comparator, an LSTM at 98.90 %, has 116.5 times its parameters",
        figure=Figure("paper_lstm_ratio"),
        not_testable="the paper gives that LSTM's parameter ratio but not its layer sizes; chapter 7's landmark "
        "LSTM takes the width at which it holds the paper's 63 million parameters (an assumption), so its ratio checks "
        "that assumption's arithmetic, not the paper; its 98.90 % is on RAVDESS, which the book does not ship",
    ),
    _score(
        "Accuracy 92 % on RAVDESS", "ravdess", "accuracy", "04_training", REFERENCE_RUN, "accuracy", REFERENCE_PROTOCOL
    ),
    _score("F1 92 % on RAVDESS", "ravdess", "f1", "04_training", REFERENCE_RUN, "f1", REFERENCE_PROTOCOL),
    _score(
        "Accuracy 94 % on SAVEE, with dropout 0.5 and L1 against overfitting",
        "savee",
        "accuracy",
        "05_regularization",
        PUBLISHED,
        "accuracy",
        PUBLISHED_PROTOCOL,
    ),
    _score(
        "F1 92 % on SAVEE, with dropout 0.5 and L1",
        "savee",
        "f1",
        "05_regularization",
        PUBLISHED,
        "f1",
        PUBLISHED_PROTOCOL,
    ),
    _score("Accuracy 97 % on MEAD", "mead", "accuracy", "04_training", REFERENCE_RUN, "accuracy", REFERENCE_PROTOCOL),
    _score("F1 97 % on MEAD", "mead", "f1", "04_training", REFERENCE_RUN, "f1", REFERENCE_PROTOCOL),
    ScoredClaim(
        name="remedy_closes_the_gap",
        by=PAPER,
        claim="Dropout 0.5 and L1 cure the overfitting the CNN shows on SAVEE",
        figure=Figure(words="no figure: the train/validation gap it saw on SAVEE, in words"),
        sources={
            "gap": Prose("05_regularization", "**Overfitting, provoked.**", "gap"),
            "after_gap": Prose("05_regularization", "**Overfitting, provoked.**", "after_gap"),
            "baseline_gap": Lesson("05_regularization", "baseline_gap"),
            "gap_shrink_over_spread": Lesson("05_regularization", "gap_shrink_over_spread"),
        },
        shown="gap without regularization {gap}, with the remedy {after_gap}",
        protocol="chapter 5: the paper's CNN without regularization against the paper's remedy (dropout 0.3, 0.5, "
        "0.5 and L1 on the dense layer), same faces, split and seeds; the gap is train − validation accuracy at the "
        "last epoch, both sides scored in inference mode (dropout off). The mechanism is tested on the data the "
        "chapter ran on, named here, not on SAVEE",
        rule=LessonHolds("05_regularization", ("baseline_gap", "gap_shrink_over_spread")),
    ),
    ScoredClaim(
        name="mobilenet_inception_is_light",
        by=MOBILENET_INCEPTION,
        claim="A MobileNetV2 backbone with an Inception stem makes a lightweight model for constrained devices",
        figure=Figure(words="no figure: 'lightweight', in words"),
        sources={
            "hybrid": TableCell(CATALOGUE, "params", "model", "mobilenet-inception"),
            "resnet50": TableCell(CATALOGUE, "params", "model", "resnet50"),
        },
        shown="{hybrid} parameters, against ResNet50's {resnet50}",
        protocol="the book's MobileNetV2 + Inception hybrid (180×180×1, 8 classes) beside ResNet50, counted in "
        "chapter 7's catalogue; 'light' measured against the yardstick of the paper's own argument, ResNet50",
        rule=FewerThan("hybrid", "resnet50", 10.0),
    ),
    ScoredClaim(
        name="mobilenet_inception_accuracy",
        by=MOBILENET_INCEPTION,
        claim="Its accuracy on facial expressions",
        figure=Figure(words="not quoted: the work's authors, venue and figures could not be confirmed"),
        not_testable="the book quotes no figure of this work (references.bib: authors and venue unconfirmed), and "
        "its quick run does not train the hybrid: chapter 7 trains it only with TRAIN_MODELS extended (on Colab), "
        "on the book's data",
    ),
    ScoredClaim(
        name="int8_quantization",
        by=OPTIMIZED_XCEPTION,
        claim="Quantization makes the model smaller at little cost in accuracy",
        figure=Figure(words="no figure quoted: the claim in words"),
        sources={
            "int8_size_share": Lesson("08_deployment", "int8_size_share"),
            "int8_accuracy_change": Lesson("08_deployment", "int8_accuracy_change"),
        },
        shown="int8 file {int8_size_share} of the float32 TFLite file's size, accuracy change {int8_accuracy_change}",
        protocol="chapter 8: the reference model of chapter 4 converted to int8 TFLite, its file size as a share "
        "of the float32 TFLite file's and its accuracy change on the same test frames of the data named here",
        rule=LessonHolds("08_deployment", ("int8_size_share", "int8_accuracy_change")),
    ),
    ScoredClaim(
        name="compiler_speedup",
        by=OPTIMIZED_XCEPTION,
        claim="A deep-learning compiler speeds up inference",
        figure=Figure(words="no figure quoted: the claim in words"),
        sources={"paper_xla": Prose("08_deployment", "{#xla_max_diff_vs_eager}", "paper_xla")},
        shown="XLA's pass ran {paper_xla} the plain tf.function at batch 1",
        protocol="chapter 8: XLA's compiled forward pass of the paper's CNN against the plain tf.function, "
        "milliseconds per frame at batch 1 on the CPU that executed the chapter (the ratio: tf.function's time over "
        "XLA's)",
        rule=FasterThan("paper_xla"),
    ),
    ScoredClaim(
        name="pruning",
        by=OPTIMIZED_XCEPTION,
        claim="Pruning keeps the accuracy of the optimized network",
        figure=Figure(words="no figure quoted: the claim in words"),
        not_testable="chapter 8 prunes the paper's CNN without the fine-tuning such a pipeline uses (left as an "
        "exercise for a full run), on a model whose unpruned accuracy on the sample can sit at chance; the work's "
        "own network and figures are not quoted by the book",
    ),
)


# --- the page ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    """A claim scored on a stage: its verdict, the readings and the run (None for a claim not testable)."""

    claim: ScoredClaim
    verdict: Verdict
    readings: Mapping[str, Reading]
    run: Run | None


def score_claim(claim: ScoredClaim, runs: Mapping[str, Run | None]) -> Score:
    """The claim scored on the executed chapters `runs` (by chapter); ScorecardError when its run is missing or
    recorded no value the claim reads."""
    if claim.not_testable:
        return Score(claim, Verdict("not testable here", claim.not_testable), {}, None)
    readings = {}
    for name, source in claim.sources.items():
        run = runs.get(source.chapter)
        if run is None:
            raise ScorecardError(
                f"claim {claim.name!r} reads {source.key} in chapter {source.chapter}, but the stage has no executed "
                f"notebooks/{source.chapter}.ipynb"
            )
        reading = source.read(run.notebook)
        if reading is None:
            raise ScorecardError(
                f"claim {claim.name!r} found no recorded value in the executed chapter {source.chapter}: it looked for "
                f"{source.key}. Rerun the chapter, or correct the claim in fer_book/scorecard.py"
            )
        readings[name] = reading
    run = runs[claim.chapter]
    assert claim.rule is not None
    return Score(claim, claim.rule.judge(readings, claim.figure.cited(), run), readings, run)


def score_stage(stage: Path, claims: Sequence[ScoredClaim] = CLAIMS) -> list[Score]:
    """Every claim scored on the executed chapters of `stage`."""
    chapters = {source.chapter for claim in claims for source in claim.sources.values()}
    runs = {chapter: read_run(stage, chapter) for chapter in sorted(chapters)}
    return [score_claim(claim, runs) for claim in claims]


def cell(text: str) -> str:
    """`text` as one cell of a Markdown table (one line, `|` escaped)."""
    return " ".join(text.split()).replace("|", "\\|")


def measured_words(score: Score) -> str:
    """What the book measured for the claim, with the run that made it, the data, the protocol and the keys."""
    claim, run = score.claim, score.run
    if run is None:
        return "—"
    shown = claim.shown.format(**score.readings)
    number = run.chapter[:2].lstrip("0")
    keys = "; ".join(f"{source.key} in chapter {source.chapter[:2].lstrip('0')}" for source in claim.sources.values())
    return (
        f"**{shown}**. Run: {{doc}}`chapter {number}, {run.title} </notebooks/{run.chapter}>`, on "
        f"{run.data_words()}. Protocol: {claim.protocol}. Read from {keys}"
    )


def page_table(scores: Sequence[Score]) -> str:
    """The scorecard: a summary line, the verdict rules that are not per claim, and one row per claim."""
    counts = {verdict: sum(s.verdict.verdict == verdict for s in scores) for verdict in VERDICTS}
    summary = ", ".join(f"{n} {verdict}" for verdict, n in counts.items())
    rows = [
        "| claim | quoted (source) | what the book measured | verdict |",
        "| --- | --- | --- | --- |",
    ]
    for score in scores:
        claim, figure = score.claim, score.claim.figure.cited()
        quoted = f"{figure.text} ({figure.source})" if claim.figure.key else figure.text
        rule = f" Rule: {claim.rule.words(figure)}." if claim.rule else ""
        verdict = f"**{score.verdict.verdict}**: {score.verdict.why}.{rule}"
        rows.append(
            "| "
            + " | ".join(cell(text) for text in (f"{claim.claim} ({claim.by})", quoted, measured_words(score), verdict))
            + " |"
        )
    return (
        f"Of {len(scores)} claims: {summary}. An accuracy or F1 is scored only on a run of its chapter on the claim's "
        f"own dataset, where it is reproduced when the book's mean is at least the paper's figure less "
        f"{ACCURACY_MARGIN:.2f}; on any other data the verdict is *not testable here* and says which data the run "
        "used.\n\n" + "\n".join(rows)
    )


def write_scorecard(stage: Path, claims: Sequence[ScoredClaim] = CLAIMS, page: Path | None = None) -> list[Score]:
    """Score every claim on the stage's executed chapters and write the table into the staged page (or `page`),
    between MARKERS; ScorecardError when a claim's value is missing or the page lacks its markers."""
    scores = score_stage(stage, claims)
    page = page or stage / PAGE
    if not page.is_file():
        raise ScorecardError(f"{page} is missing: the stage holds no scorecard page to write")
    text = page.read_text(encoding="utf-8")
    try:
        new = between(text, MARKERS, page_table(scores), page)
    except MarkerError as exc:
        raise ScorecardError(str(exc)) from None
    write_atomic(page, new.encode("utf-8"))
    return scores


def listed(stage: Path) -> bool:
    """Whether the stage's table of contents lists the scorecard page (a stage of a few pages may not)."""
    return PAGE.with_suffix("").as_posix() in toc_entries(stage)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m fer_book scorecard --stage STAGE`: write the staged page and print each verdict (exit 2 when a
    claim's value is missing)."""
    parser = argparse.ArgumentParser(prog="python -m fer_book scorecard", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", type=Path, default=Path("_build") / "stage", help="an executed stage")
    args = parser.parse_args(argv)
    try:
        scores = write_scorecard(args.stage)
    except ScorecardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for score in scores:
        print(f"{score.claim.name}: {score.verdict.verdict} ({score.verdict.why})")
    print(f"wrote {args.stage / PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
