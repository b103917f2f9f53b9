"""The paper's claims, scored: the book's appendix page, written at build time from the executed chapters.

`CLAIMS` defines, once, each claim of the paper and of its two related works: the figure quoted (a
`fer_utils.book.cited` key, with its source), the values of the executed chapters that measure it (a value a
generated paragraph stated, `fer_utils.book.prose`; a number of a chapter's lesson record,
`fer_utils.book.lessons`; a cell of a table a chapter printed; or, for a claim no chapter measures, a count
over a benchmark's committed record in `benchmarks/results/`), the protocol in words, and the rule that
turns the measured values into a verdict: reproduced, not reproduced, or not testable here (an accuracy
measured on other data than the claim's is not a reproduction of it, and the page shows no number of it beside
the claim). A claim the book cannot test gives its reason instead of a rule (with the values it reads shown as
information, if any). The page's table has one short row per claim; each row's rule, data, protocol and keys
are in a numbered note below it. `write_scorecard(stage)` reads the stage's executed notebooks and writes the
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

from fer_book.assign import source as cell_source
from fer_book.assign import title_of
from fer_book.markers import MarkerError, between
from fer_book.toc import toc_entries
from fer_utils.book.cited import Cited, cited
from fer_utils.book.lessons import LESSON_KEY, LESSONS, checked_as
from fer_utils.book.prose import PROSE_KEY
from fer_utils.storage.atomic import write_atomic

PAGE = Path("book") / "scorecard.md"
REPO = Path(__file__).resolve().parents[1]  # where the benchmarks' committed records are
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
    over_seeds: bool = True  # False: `text` already says how many runs it counts

    @property
    def spread(self) -> str:
        """How many runs the value is over, in words ("" for one number)."""
        return f" over {len(self.values)} seeds" if len(self.values) > 1 and self.over_seeds else ""

    def __format__(self, spec: str) -> str:
        return f"{self.text}{self.spread}"


@dataclass(frozen=True)
class Prose:
    """A value stated by a generated paragraph: the paragraph whose template holds `paragraph`, its value `value`."""

    chapter: str
    paragraph: str
    value: str
    index: int | None = None  # one of the recorded numbers (a difference records [diff, spread]); None: their mean

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
                    if self.index is not None:
                        if len(values) <= self.index:
                            return None
                        return Reading(values[self.index], (values[self.index],), stated["text"].split(",")[0])
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


@dataclass(frozen=True)
class Benchmark:
    """A count over the runs of a benchmark's committed record (`benchmarks/results/*.json`, its `runs` list):
    the runs whose `where` field equals `value` and whose `flag` is true. For a claim no executed chapter
    measures; `chapter` is the chapter that states the result, linked as the run."""

    chapter: str
    record: str
    where: str
    value: str
    flag: str

    @property
    def key(self) -> str:
        return f"the runs of {self.record} with {self.where} = {self.value!r} whose {self.flag!r} is true"

    def read(self, nb: Mapping) -> Reading | None:
        path = REPO / self.record
        if not path.is_file():
            return None
        runs = [
            r for r in json.loads(path.read_text(encoding="utf-8")).get("runs", []) if r.get(self.where) == self.value
        ]
        if not runs or any(self.flag not in r for r in runs):
            return None
        flags = tuple(float(bool(r[self.flag])) for r in runs)
        return Reading(sum(flags), flags, f"{sum(flags):.0f} of {len(flags)} seeds", over_seeds=False)


Source = Prose | Lesson | TableCell | Benchmark


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
    comparable: bool = True  # False: the run measured other data than the claim's, and its number is not shown


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
                f"different data: the run used {run.label or run.dataset}, not {name}. A reader with {name} runs "
                f"chapter {run.chapter[:2].lstrip('0')} with DATASET={self.dataset!r} and DATA_DIR set",
                comparable=False,
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
            return Verdict("not reproduced", " and ".join(failed))
        return Verdict(
            "reproduced", " and ".join(f"{claim.name} = {value:.3g} ({checked_as(claim)})" for claim, value in checks)
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
class KeepsAccuracy:
    """Reproduced when the accuracy `reading` (after a change) is at most `margin` below `baseline` (before
    it); not testable when `baseline` is at chance (`chance`), where there is no accuracy to keep."""

    reading: str
    baseline: str
    chance: str
    margin: float = 0.02

    def words(self, figure: Cited) -> str:
        return (
            f"reproduced when the accuracy after it is at most {self.margin:.2f} below the accuracy before it; not "
            "testable when the accuracy before it is at chance"
        )

    def judge(self, readings: Mapping[str, Reading], figure: Cited, run: Run) -> Verdict:
        before, after = readings[self.baseline].number, readings[self.reading].number
        if not before > readings[self.chance].number:
            return Verdict("not testable here", f"unpruned at chance ({before:.3f}): no accuracy to keep")
        change = after - before
        ok = change >= -self.margin
        return Verdict(
            "reproduced" if ok else "not reproduced",
            f"{after:.3f} against {before:.3f}: {change:+.3f}, {'within' if ok else 'beyond'} the margin of {self.margin:.2f}",
        )


@dataclass(frozen=True)
class RaisesBeyondSpread:
    """Reproduced when the change `reading` (with − without, means over seeds) is positive and its size exceeds
    the spread: `beyond` is |change| − the larger std (a lesson value)."""

    reading: str
    beyond: str

    def words(self, figure: Cited) -> str:
        return "reproduced when the test accuracy rises by more than the spread over seeds"

    def judge(self, readings: Mapping[str, Reading], figure: Cited, run: Run) -> Verdict:
        change, beyond = readings[self.reading].number, readings[self.beyond].number
        ok = change > 0 and beyond > 0
        where = "beyond" if beyond > 0 else "within"
        return Verdict("reproduced" if ok else "not reproduced", f"test accuracy {change:+.3f}, {where} the spread")


@dataclass(frozen=True)
class WithinSpread:
    """Reproduced when the difference `reading` stays within the spread: `beyond` (|difference| or difference −
    the larger std, a lesson value) is at most 0."""

    reading: str
    beyond: str

    def words(self, figure: Cited) -> str:
        return "reproduced when the difference is within the spread over seeds"

    def judge(self, readings: Mapping[str, Reading], figure: Cited, run: Run) -> Verdict:
        difference, beyond = readings[self.reading].number, readings[self.beyond].number
        ok = beyond <= 0
        return Verdict(
            "reproduced" if ok else "not reproduced",
            f"{difference:+.3f}, {'within' if ok else 'beyond'} the spread",
        )


@dataclass(frozen=True)
class RatioAbove:
    """Reproduced when `numerator` / `denominator` is above `threshold` (a time over a time: how many times
    faster the denominator's path is)."""

    numerator: str
    denominator: str
    threshold: float = 1.05

    def words(self, figure: Cited) -> str:
        return f"reproduced when {self.numerator} / {self.denominator} is above {self.threshold:.2f}"

    def judge(self, readings: Mapping[str, Reading], figure: Cited, run: Run) -> Verdict:
        ratio = readings[self.numerator].number / readings[self.denominator].number
        ok = ratio > self.threshold
        return Verdict(
            "reproduced" if ok else "not reproduced", f"ratio {ratio:.2f} {'>' if ok else '≤'} {self.threshold:.2f}"
        )


@dataclass(frozen=True)
class MostOf:
    """Reproduced when the count `reading` (a Benchmark's) is more than half of the runs it counts."""

    reading: str

    def words(self, figure: Cited) -> str:
        return "reproduced when more than half of the seeds learn"

    def judge(self, readings: Mapping[str, Reading], figure: Cited, run: Run) -> Verdict:
        count, runs = readings[self.reading].number, len(readings[self.reading].values)
        ok = count > runs / 2
        return Verdict("reproduced" if ok else "not reproduced", f"{count:.0f} of {runs} seeds learnt")


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
    data: str = ""  # the data in words, for a value no executed chapter measured (a Benchmark's)

    def __post_init__(self) -> None:
        if bool(self.not_testable) == bool(self.sources and self.rule) or (self.not_testable and self.rule):
            raise ValueError(
                f"claim {self.name!r}: give either sources and a rule, or a reason it is not testable (with "
                "sources shown as information, and no rule)"
            )

    @property
    def chapter(self) -> str | None:
        return next(iter(self.sources.values())).chapter if self.sources else None


PAPER = "the paper {cite}`ding2023lightweight`"
MOBILENET_INCEPTION = "MobileNetV2 + Inception, 2019 {cite}`lightweight2019mobilenetv2inception`"
OPTIMIZED_XCEPTION = "optimized Xception, 2022 {cite}`valverde2022optimized`"
REFERENCE_RUN = "Over seeds {seeds}, the reference run on {data}"  # chapter 4's result paragraph
PUBLISHED = "**The network as published.**"  # chapter 5: the paper's network at 180×180 with its remedy
FINAL_WEIGHTS = "**Final weights and best epochs.**"  # chapter 5: the remedy's test accuracy against none
PROTOCOLS = "{#random_minus_subject_over_spread}The random split scores"  # chapter 6's result paragraph
PRUNING = "Unpruned, the paper's CNN scores"  # chapter 8's pruning paragraph
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
        name="alexnet_ratio",
        by=PAPER,
        claim="AlexNet, a comparator of its Tables I and II, has many times its parameters",
        figure=Figure(words="not quoted: the book holds the paper's abstract, not its tables' AlexNet figure"),
        sources={
            "alexnet": TableCell(CATALOGUE, "params", "model", "alexnet"),
            "paper_cnn": TableCell(CATALOGUE, "params", "model", "paper-cnn"),
        },
        shown="AlexNet {alexnet} parameters, the paper's CNN {paper_cnn}",
        protocol="Keras's AlexNet (227×227×3, 1,000 classes) and the paper's CNN, counted in chapter 7's catalogue",
        not_testable="the book quotes no figure of the paper's for AlexNet; it holds the abstract, which gives only "
        "the 47 and 116.5 ratios, so the count is shown as information and scored against nothing",
    ),
    ScoredClaim(
        name="vggface_lstm_ratio",
        by=PAPER,
        claim="VGG-Face+LSTM, a comparator of its Table I, has many times its parameters",
        figure=Figure(words="not quoted: the book holds the paper's abstract, not its tables' VGG-Face+LSTM figure"),
        not_testable="the book quotes no figure of the paper's for it; the paper gives no LSTM width: chapter 7 "
        "counts a full-size build with 512 LSTM units (our assumption) and prints that count without recording it",
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
        name="random_split_measures_new_faces",
        by=PAPER,
        claim="Its random 80/20 frame split measures accuracy on unseen faces (implicit: every accuracy it reports "
        "is on that split)",
        figure=Figure(words="no figure: the protocol behind all its accuracies"),
        sources={
            "random_subject": Prose("06_evaluation_protocols", PROTOCOLS, "random_subject", index=0),
            "random": Prose("06_evaluation_protocols", PROTOCOLS, "random"),
            "subject": Prose("06_evaluation_protocols", PROTOCOLS, "subject"),
            "beyond": Lesson("06_evaluation_protocols", "random_minus_subject_over_spread"),
        },
        shown="random split {random}, subject split {subject}: random − subject {random_subject}",
        protocol="chapter 6: the same network and seeds under the random frame split (the paper's) and the subject "
        "split (no person on both sides), test accuracy over seeds; the random split's lead over the subject split "
        "is what it adds by testing frames of people, and clips, seen in training",
        rule=WithinSpread("random_subject", "beyond"),
    ),
    ScoredClaim(
        name="paper_recipe_learns",
        by=PAPER,
        claim="Its recipe (dropout 0.3 after every pooling stage, Adam 1e-3, Glorot) trains the CNN",
        figure=Figure(words="no figure: the recipe, as the paper gives it"),
        sources={
            "learnt": Benchmark("04_training", "benchmarks/results/recipe_seeds.json", "recipe", "paper", "learnt")
        },
        shown="learnt in {learnt}",
        protocol="benchmarks/recipe_seeds.py (chapter 4 states its result): the paper's recipe trained over seeds "
        "0-4, 30 epochs, 'learnt' when the test accuracy is at least 0.65 (chance 0.5)",
        rule=MostOf("learnt"),
        data="the London faces, neutral vs happy (204 crops of 102 people, 96×96), split by person; a committed "
        "benchmark record, not an executed chapter",
    ),
    ScoredClaim(
        name="opencv_faster_than_dlib",
        by=PAPER,
        claim="OpenCV's face detector is faster than dlib's (the paper uses dlib)",
        figure=Figure(words="no figure: the remark, in words"),
        sources={
            "dlib_hog": TableCell("02_preprocessing", "ms_per_frame", "detector", "dlib-hog"),
            "opencv_haar": TableCell("02_preprocessing", "ms_per_frame", "detector", "opencv-haar"),
        },
        shown="dlib HOG {dlib_hog} ms per frame, OpenCV Haar {opencv_haar} ms",
        protocol="chapter 2: each detector on the same frames (longest side at most 400 px), mean milliseconds per "
        "frame on the CPU that executed the chapter; dlib's HOG detector is its default",
        rule=RatioAbove("dlib_hog", "opencv_haar"),
    ),
    ScoredClaim(
        name="remedy_closes_the_gap",
        by=PAPER,
        claim="Dropout 0.5 and L1 cure the overfitting the CNN shows on SAVEE: they close the train/validation gap",
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
        name="remedy_raises_test_accuracy",
        by=PAPER,
        claim="…and, cured, the CNN scores higher on unseen faces (the paper: 94 % on SAVEE after the cure)",
        figure=Figure(words="no figure for the change: the claim that the cure lifts the test score, in words"),
        sources={
            "change": Prose("05_regularization", FINAL_WEIGHTS, "remedy_change", index=0),
            "beyond": Lesson("05_regularization", "remedy_test_change_beyond_spread"),
        },
        shown="test accuracy with the remedy − without {change}",
        protocol="chapter 5: the final weights of the paper's CNN with the remedy against those without it, same "
        "faces, split and seeds, test accuracy over seeds; beyond the spread when |change| exceeds the larger std",
        rule=RaisesBeyondSpread("change", "beyond"),
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
        shown="the book's own hybrid: {hybrid} parameters, against ResNet50's {resnet50}",
        protocol="the book's MobileNetV2 + Inception hybrid (180×180×1, 8 classes) beside ResNet50, counted in "
        "chapter 7's catalogue",
        not_testable="the work's architecture is not published in enough detail to rebuild it (references.bib: its "
        "authors and venue are unconfirmed); the book's hybrid is its own guess, so its count, shown as information, "
        "says nothing about the work's model",
    ),
    ScoredClaim(
        name="mobilenet_inception_accuracy",
        by=MOBILENET_INCEPTION,
        claim="Its accuracy on facial expressions",
        figure=Figure(words="not quoted: the work's authors, venue and figures could not be confirmed"),
        not_testable="the book quotes no figure of this work (references.bib: authors and venue unconfirmed); "
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
        sources={
            "unpruned": Prose("08_deployment", PRUNING, "unpruned"),
            "pruned": Prose("08_deployment", PRUNING, "half"),
            "sparsity": Prose("08_deployment", PRUNING, "half_s"),
            "chance": Prose("08_deployment", PRUNING, "chance"),
        },
        shown="unpruned {unpruned}; at {sparsity} sparsity, without fine-tuning, {pruned} (chance {chance})",
        protocol="chapter 8: the reference model of chapter 4 pruned by weight magnitude, the same fraction in every "
        "layer, without the fine-tuning the work's pipeline uses (fine-tuning recovers accuracy, so a loss here "
        "overstates the pipeline's), test frames scored; the paper's CNN stands in for the work's network, which the book does not have",
        rule=KeepsAccuracy("pruned", "unpruned", "chance"),
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
    if claim.not_testable and not claim.sources:
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
    if claim.not_testable:  # the values shown as information, no verdict computed from them
        return Score(claim, Verdict("not testable here", claim.not_testable), readings, run)
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


def chapter_link(run: Run) -> str:
    """A short link to the executed chapter that made a run."""
    return f"{{doc}}`chapter {run.chapter[:2].lstrip('0')} </notebooks/{run.chapter}>`"


def measured_words(score: Score) -> str:
    """What the book measured for the claim, short, with a link to the run that made it; a run on other data
    than the claim's shows no number, only which data it used."""
    claim, run = score.claim, score.run
    if run is None:
        return "—"
    if not score.verdict.comparable:
        return f"no measurement on the claim's data: {chapter_link(run)} ran on {run.label or run.dataset}"
    return f"**{claim.shown.format(**score.readings)}** ({chapter_link(run)})"


def short(why: str) -> str:
    """A verdict's reason, cut at its first clause for the table (the whole of it is in the row's note)."""
    return why.split("; ")[0].split(". ")[0]


def note_words(score: Score) -> str:
    """The long part of a row, below the table: the whole reason, the rule, the run's title and data, the
    protocol and the keys."""
    claim, run = score.claim, score.run
    rule = f"Rule: {claim.rule.words(claim.figure.cited())}. " if claim.rule else ""
    why = score.verdict.why
    if short(why) != why:
        rule = f"{score.verdict.verdict.capitalize()}: {why}. {rule}"
    if run is None:
        return f"Not testable here: {why}."
    keys = "; ".join(
        source.key if isinstance(source, Benchmark) else f"{source.key} in chapter {source.chapter[:2].lstrip('0')}"
        for source in claim.sources.values()
    )
    data = claim.data or run.data_words()
    return f"{rule}Run: {run.title}, on {data}. Protocol: {claim.protocol}. Read from {keys}."


def page_table(scores: Sequence[Score]) -> str:
    """The scorecard: a summary line, one short row per claim (claim, quoted figure, measured values, verdict)
    and, below the table, one numbered note per row with its rule, data, protocol and keys."""
    counts = {verdict: sum(s.verdict.verdict == verdict for s in scores) for verdict in VERDICTS}
    summary = ", ".join(f"{n} {verdict}" for verdict, n in counts.items())
    rows = [
        "| # | claim | quoted | what the book measured | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]
    notes = []
    for number, score in enumerate(scores, start=1):
        claim, figure = score.claim, score.claim.figure.cited()
        quoted = f"{figure.text} ({figure.source})" if claim.figure.key else figure.text
        why = short(score.verdict.why)
        verdict = f"**{score.verdict.verdict}**: {why}" + (f" (note {number})" if why != score.verdict.why else "")
        claim_words = f"{claim.claim} ({claim.by})"
        rows.append(
            "| "
            + " | ".join(cell(text) for text in (str(number), claim_words, quoted, measured_words(score), verdict))
            + " |"
        )
        notes.append(f"{number}. **{cell(claim.claim)}**: {' '.join(note_words(score).split())}")
    return (
        f"Of {len(scores)} claims: {summary}. An accuracy or F1 is scored only on a run of its chapter on the claim's "
        f"own dataset, where it is reproduced when the book's mean is at least the paper's figure less "
        f"{ACCURACY_MARGIN:.2f}; on any other data the verdict is *not testable here*, the row shows no number "
        "beside the claim's figure and says which data the run used. Each row's rule, data, protocol and the "
        "records it reads are in its note below the table.\n\n"
        + "\n".join(rows)
        + "\n\n**Notes**\n\n"
        + "\n".join(notes)
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
