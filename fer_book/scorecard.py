"""The paper's claims, scored: the book's appendix page, written at build time from the executed chapters.

Each claim (`CLAIMS`, from `scorecard_claims.toml`) names its quoted figure, the chapters' values that measure
it (a `Source`) and the rule (`RULES`) giving its verdict; a value its chapter did not record fails the build.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from fer_book.markers import between
from fer_book.toc import toc_entries
from fer_utils.book.cited import Cited, cited
from fer_utils.book.claims import checked_as, holds
from fer_utils.book.results import read_results, results_file
from fer_utils.errors import BookError, InputError
from fer_utils.storage.atomic import write_atomic

PAGE = Path("book") / "scorecard.md"
REPO = Path(__file__).resolve().parents[1]  # where the benchmarks' committed records are
CLAIMS_FILE = Path(__file__).with_name("scorecard_claims.toml")  # the claims, as data: its header says how
MARKERS = (
    "<!-- scorecard: written by `python -m fer_book build` from the executed chapters; do not edit -->",
    "<!-- end of the scorecard -->",
)
VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not testable here")
# How far below the paper's accuracy or F1 the book's mean may be (0..1): its runs differ in budget and details.
ACCURACY_MARGIN = 0.05
# The book's readers pass these names to run a chapter on real data (fer_utils.book.artifacts.Dataset).
DATASET_NAMES = {"ravdess": "RAVDESS", "savee": "SAVEE", "mead": "MEAD"}


# --- where a measured value is recorded in an executed chapter -------------------------------------------------


class Reading(NamedTuple):
    """A value a chapter recorded: mean, numbers, text (`counted`: it counts runs), checked (op, threshold)."""

    number: float
    values: tuple[float, ...]
    text: str
    counted: bool = False
    checked: tuple[str, float] | None = None

    def __format__(self, spec: str) -> str:
        """The text, with how many seeds it is over (for a claim's `shown` template)."""
        many = len(self.values) > 1 and not self.counted
        return f"{self.text} over {len(self.values)} seeds" if many else self.text


@dataclass(frozen=True)
class Source:
    """Where a measured value is recorded: the chapter and its `key` in words; `read(nb)` gives it, or None."""

    chapter: str
    KEY = ""

    @property
    def key(self) -> str:
        return self.KEY.format(**vars(self))


@dataclass(frozen=True)
class Glued(Source):
    """A value the chapter glued: its numbers' mean, or the one at `index`, and the text it states."""

    name: str
    index: int | None = None
    KEY = "the value glued as {name!r}"

    def read(self, results: Mapping) -> Reading | None:
        stated = results.get("glued", {}).get(self.name)
        if not isinstance(stated, Mapping) or "numbers" not in stated:
            return None
        values, text = tuple(float(v) for v in stated["numbers"]), str(stated["text"])
        if self.index is not None:
            if len(values) <= self.index:
                return None
            values, text = (values[self.index],), text.split(" (")[0]
        return Reading(sum(values) / len(values) if values else math.nan, values, text)


@dataclass(frozen=True)
class Lesson(Source):
    """A number of the chapter's checked claims (`fer.check_claims`), with the threshold it is checked against."""

    name: str
    KEY = "the checked claim {name!r}"

    def read(self, results: Mapping) -> Reading | None:
        for record in results.get("checks", []):
            if self.name in record.get("measured", {}) and self.name in record.get("claims", {}):
                value, (op, threshold) = float(record["measured"][self.name]), record["claims"][self.name]
                return Reading(value, (value,), f"{value:.3g}", checked=(op, float(threshold)))
        return None


@dataclass(frozen=True)
class Recorded(Source):
    """A value the chapter recorded (`fer.record`) that its text does not state: the one of `row` in a mapping."""

    name: str
    row: str
    KEY = "the value recorded as {name!r} for {row!r}"

    def read(self, results: Mapping) -> Reading | None:
        value = results.get("values", {}).get(self.name, {}).get(self.row)
        if not isinstance(value, int | float):
            return None
        value = float(value)
        return Reading(value, (value,), f"{value:,.0f}" if value.is_integer() else f"{value:g}")


@dataclass(frozen=True)
class Benchmark(Source):
    """How many of a benchmark record's runs with `where` = `value` have `flag` true, for a claim no chapter
    measures; `chapter` is the one that states the result, linked as the run."""

    record: str
    where: str
    value: str
    flag: str
    KEY = "the runs of {record} with {where} = {value!r} whose {flag!r} is true"

    def read(self, results: Mapping) -> Reading | None:
        path = REPO / self.record
        runs = json.loads(path.read_text(encoding="utf-8")).get("runs", []) if path.is_file() else []
        runs = [run for run in runs if run.get(self.where) == self.value]
        if not runs or any(self.flag not in run for run in runs):
            return None
        flags = tuple(float(bool(run[self.flag])) for run in runs)
        return Reading(sum(flags), flags, f"{sum(flags):.0f} of {len(flags)} seeds", counted=True)


# --- the run a chapter made: its data ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """An executed chapter: its results record, title, dataset (`label`: None if unknown) and the parameters given."""

    chapter: str
    results: dict
    title: str
    dataset: str
    label: str | None
    parameters: dict


def read_run(stage: Path, chapter: str) -> Run | None:
    """The executed chapter `chapter` of the stage, from its results record; None when the stage has none."""
    from fer_utils.book.artifacts import Dataset

    path = results_file(stage, chapter)
    if not path.is_file():
        return None
    results = read_results(path)
    dataset, data_dir = str(results["parameters"].get("DATASET")), results["parameters"].get("DATA_DIR")
    try:
        label = Dataset(dataset, Path(str(data_dir)) if data_dir else None).label
    except InputError:
        label = None
    return Run(chapter, results, results["title"], dataset, label, results["given"])


# --- verdict rules: (readings, quoted figure, run, the rule's fields) -> (the rule in words, the verdict) -------


class Verdict(NamedTuple):
    """A claim's verdict (one of VERDICTS) and why; not `comparable` (its number not shown) on other data."""

    verdict: str
    why: str
    comparable: bool = True


Got = Mapping[str, Reading]  # a claim's readings, named as it names its sources
Judged = tuple[str, Verdict]  # a rule as the page states it, and the verdict


def of(ok: bool, why: str) -> Verdict:
    """Reproduced when `ok`, else not reproduced, for the reason `why`."""
    return Verdict("reproduced" if ok else "not reproduced", why)


def number(figure: Cited) -> float:
    """The number a quoted figure states ("542,136" → 542136.0)."""
    return float(figure.text.replace(",", ""))


def same_count(got: Got, figure: Cited, run: Run, reading: str) -> Judged:
    """Reproduced when the count `reading` equals the quoted figure exactly."""
    count = got[reading].number
    ok = count == number(figure)
    why = f"{count:,.0f} {'=' if ok else '≠'} {figure.text}"
    return f"reproduced when the count equals {figure.text} exactly", of(ok, why)


def rounded_ratio(got: Got, figure: Cited, run: Run, numerator: str, denominator: str) -> Judged:
    """Reproduced when `numerator` / `denominator` rounds to the quoted figure (a whole number)."""
    ratio = got[numerator].number / got[denominator].number
    ok = abs(ratio - number(figure)) < 0.5
    why = f"ratio {ratio:.2f}, {'≈' if ok else '≠'} {figure.text}"
    return f"reproduced when the ratio rounds to {figure.text} (within ±0.5)", of(ok, why)


def score_on_data(
    got: Got, figure: Cited, run: Run, reading: str, dataset: str, margin: float = ACCURACY_MARGIN
) -> Judged:
    """A score on `dataset`, comparable only there: reproduced when the mean is at least figure (%) - `margin`."""
    name, floor = DATASET_NAMES[dataset], number(figure) / 100 - margin
    words = f"on {name} only; reproduced when the mean is at least {floor:.2f} (the paper's {figure.text} % less {margin:.2f})"
    if run.dataset != dataset:
        why = (
            f"different data: the run used {run.label or run.dataset}, not {name}. A reader with {name} runs "
            f"chapter {run.chapter[:2].lstrip('0')} with DATASET={dataset!r} and DATA_DIR set"
        )
        return words, Verdict("not testable here", why, comparable=False)
    mean = got[reading].number
    ok = mean == mean and mean >= floor
    return words, of(ok, f"mean {mean:.3f} {'≥' if ok else '<'} {floor:.2f} on {name}")


def lesson_holds(got: Got, figure: Cited, run: Run, names: Sequence[str]) -> Judged:
    """Reproduced when each of the chapter's checked claims `names` holds as the chapter checks it."""
    checks = [(name, got[name].number, got[name].checked) for name in names]
    failed = [f"{name} = {v:.3g}, not {checked_as(*c)}" for name, v, c in checks if not holds(v, *c)]
    held = [f"{name} = {v:.3g} ({checked_as(*c)})" for name, v, c in checks]
    words = f"reproduced when each of {' and '.join(names)} holds as the chapter checks it"
    return words, of(not failed, " and ".join(failed or held))


CLAIMED = {"rise": "rises", "fall": "falls", "none": "stays level"}  # the direction an effect claims


def effect(got: Got, figure: Cited, run: Run, reading: str, spread: str, claimed: str) -> Judged:
    """A difference between two settings over seeds (`reading`, a glued `Difference`'s mean change, and `spread`,
    its larger std): reproduced beyond the spread in the `claimed` direction (a key of CLAIMED), not reproduced
    beyond it the other way (or either way, for a claim of no change), inconclusive within it."""
    change, std = got[reading].number, got[spread].number
    beyond = abs(change) > std
    words = f"the claim is that the difference {CLAIMED[claimed]}"
    why = f"{change:+.3f}, {'beyond' if beyond else 'within'} the spread over seeds ({std:.3f})"
    if not beyond:
        return words, Verdict("inconclusive", f"{why}: these seeds cannot tell")
    return words, of(claimed != "none" and (change > 0) == (claimed == "rise"), why)


RULES = {rule.__name__: rule for rule in (same_count, rounded_ratio, score_on_data, lesson_holds, effect)}
# The rules in words, stated once at the top of the page: every row's verdict comes from one of them (RULE_OF).
RULE_WORDS = {
    "a count": "a parameter count is reproduced when it equals the paper's figure, a ratio when it rounds to it",
    "a score": (
        "an accuracy or F1 is scored only on a run of its chapter on the claim's own dataset, and reproduced when "
        f"the book's mean is at least the paper's figure less {ACCURACY_MARGIN:.2f}; on any other data it is not "
        "testable here, and the row shows no number beside the claim's figure"
    ),
    "an effect": (
        "a difference between two settings is read against the spread over seeds (the larger standard "
        "deviation): reproduced beyond it in the claimed direction, not reproduced beyond it the other way (or "
        "either way, for a claim of no difference), inconclusive within it"
    ),
    "a check": "a claim about one model is reproduced when each of the chapter's checks of it holds",
    "not testable here": (
        "the book lacks the claim's data or a figure to compare with, the chapter does not apply the cited method "
        "as the work applies it, the value is a timing on the book's shared build machine (its load moves it), or "
        "it is a benchmark's record rather than an executed chapter's: any values are shown as information"
    ),
}
RULE_OF = {"same_count": "a count", "rounded_ratio": "a count", "score_on_data": "a score"}
RULE_OF |= {"effect": "an effect", "lesson_holds": "a check"}


# --- the claims -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoredClaim:
    """One claim, a [[claim]] row of CLAIMS_FILE; `rule` is a function of RULES with the row's fields."""

    name: str
    by: str
    claim: str
    cited: str = ""
    figure: str = ""
    sources: Mapping[str, Source] = field(default_factory=dict)
    shown: str = ""
    protocol: str = ""
    rule: Callable[[Mapping[str, Reading], Cited, Run], Judged] | None = None
    not_testable: str = ""
    data: str = ""

    @property
    def chapter(self) -> str | None:
        """The chapter of the first source: the run the page links."""
        return next(iter(self.sources.values())).chapter if self.sources else None

    def quoted(self) -> Cited:
        """The figure quoted: the cited one, or the words given where the book quotes none."""
        return cited(self.cited) if self.cited else Cited(self.figure, self.figure, r".")


SOURCES = {"glued": Glued, "lesson": Lesson, "recorded": Recorded, "benchmark": Benchmark}  # by a source's first key


def made(kind: Callable, values: Mapping, where: str) -> Any:
    """`kind(**values)`; BookError naming `where` when a value is unknown or missing."""
    try:
        return kind(**values)
    except TypeError as exc:
        raise BookError(f"{where}: {exc}") from None


def source_of(table: Mapping, where: str) -> Source:
    """The source a `sources.<name>` table gives: its first key names its kind (SOURCES) and first field."""
    kind = next(iter(table), None)
    if kind not in SOURCES:
        raise BookError(f"{where}: a source's first key names its kind, one of {', '.join(SOURCES)}; not {kind!r}")
    first = fields(SOURCES[kind])[1].name
    return made(SOURCES[kind], {first if name == kind else name: v for name, v in table.items()}, where)


def rule_of(table: Mapping, where: str) -> Callable:
    """The rule a `rule` table gives: its `kind` (a name of RULES) with the table's other fields."""
    kind, given = table.get("kind"), {name: v for name, v in table.items() if name != "kind"}
    if kind not in RULES:
        raise BookError(f"{where}: a rule's kind is one of {', '.join(RULES)}, not {kind!r}")
    made(inspect.signature(RULES[kind]).bind, {"got": {}, "figure": None, "run": None} | given, where)
    return partial(RULES[kind], **given)


def claims_from(data: Mapping, origin: str = CLAIMS_FILE.name) -> tuple[ScoredClaim, ...]:
    """The claims of the [[claim]] rows of `data` (tomllib's); BookError naming a row that is not one."""
    claims = []
    for number, given in enumerate(data.get("claim", []), start=1):
        row, where = dict(given), f"{origin}: claim {repr(given['name']) if 'name' in given else f'#{number}'}"
        for shared in ("by", "protocol"):  # a name of the file's [by] or [protocol] table stands for its text
            if shared in row:
                row[shared] = data.get(shared, {}).get(row[shared], row[shared])
        if "rule" in row:
            row["rule"] = rule_of(row["rule"], f"{where}, field 'rule'")
        sources = row.get("sources", {}).items()
        row["sources"] = {name: source_of(table, f"{where}, field 'sources.{name}'") for name, table in sources}
        claim = made(ScoredClaim, row, where)
        rule, testable = bool(claim.rule), bool(claim.rule and claim.sources)
        if bool(claim.cited) == bool(claim.figure) or bool(claim.not_testable) == rule or rule != testable:
            raise BookError(
                f"{where}: give `cited` (a key of fer_utils.book.cited) or `figure` (words); and sources and a rule, "
                "or a reason it is not testable (with sources shown as information, and no rule)"
            )
        claims.append(claim)
    return tuple(claims)


CLAIMS = claims_from(tomllib.loads(CLAIMS_FILE.read_text(encoding="utf-8")))


# --- the page ---------------------------------------------------------------------------------------------------


class Score(NamedTuple):
    """A claim scored on a stage: verdict, readings, run (None without sources) and the rule in words."""

    claim: ScoredClaim
    verdict: Verdict
    readings: Mapping[str, Reading]
    run: Run | None
    rule: str = ""


def score_claim(claim: ScoredClaim, runs: Mapping[str, Run | None]) -> Score:
    """The claim scored on the executed chapters `runs`; BookError when a run or a value it reads is missing."""
    readings = {}
    for name, source in claim.sources.items():
        run = runs.get(source.chapter)
        if run is None:
            raise BookError(
                f"claim {claim.name!r} reads {source.key} in chapter {source.chapter}, but the stage has no results "
                f"record of it (results/{source.chapter}.json): execute the chapter"
            )
        readings[name] = source.read(run.results)
        if readings[name] is None:
            raise BookError(
                f"claim {claim.name!r} found no recorded value in the executed chapter {source.chapter}: it looked for "
                f"{source.key}. Rerun the chapter, or correct the claim in fer_book/scorecard_claims.toml"
            )
    run = runs.get(claim.chapter)  # None for a claim with no sources
    if claim.rule is None:  # not testable: any values shown as information, no verdict computed from them
        return Score(claim, Verdict("not testable here", claim.not_testable), readings, run)
    words, verdict = claim.rule(readings, claim.quoted(), run)
    return Score(claim, verdict, readings, run, words)


def score_stage(stage: Path, claims: Sequence[ScoredClaim] = CLAIMS) -> list[Score]:
    """Every claim scored on the executed chapters of `stage`."""
    chapters = {source.chapter for claim in claims for source in claim.sources.values()}
    runs = {chapter: read_run(stage, chapter) for chapter in sorted(chapters)}
    return [score_claim(claim, runs) for claim in claims]


def cell(text: str) -> str:
    """`text` as one cell of a Markdown table (one line, `|` escaped)."""
    return " ".join(text.split()).replace("|", "\\|")


def measured_words(score: Score) -> str:
    """What the book measured, with a link to the run; on other data than the claim's, which data, no number."""
    run = score.run
    if run is None:
        return "—"
    link = f"{{doc}}`chapter {run.chapter[:2].lstrip('0')} </notebooks/{run.chapter}>`"
    if not score.verdict.comparable:
        return f"no measurement on the claim's data: {link} ran on {run.label or run.dataset}"
    return f"**{score.claim.shown.format(**score.readings)}** ({link})"


def short(why: str) -> str:
    """A verdict's reason, cut at its first clause for the table (the whole of it is in the row's note)."""
    return why.split("; ")[0].split(". ")[0]


def note_words(score: Score) -> str:
    """A row's note: the whole reason, the rule, the run's title and data, the protocol and the keys."""
    claim, run, why = score.claim, score.run, score.verdict.why
    if run is None:
        return f"Not testable here: {why}."
    named = RULE_OF[claim.rule.func.__name__] if claim.rule else "not testable here"
    rule = f"Rule: {named}" + (f", {score.rule}. " if score.rule else ". ")
    if short(why) != why:
        rule = f"{score.verdict.verdict.capitalize()}: {why}. {rule}"
    keys = "; ".join(
        source.key if isinstance(source, Benchmark) else f"{source.key} in chapter {source.chapter[:2].lstrip('0')}"
        for source in claim.sources.values()
    )
    given = ", ".join(f"{k}={v!r}" for k, v in sorted(run.parameters.items()))
    data = f"DATASET={run.dataset!r}" + (f"; parameters given: {given}" if given else ", the chapter's default")
    data = claim.data or (f"{run.label} ({data})" if run.label else data)
    return f"{rule}Run: {run.title}, on {data}. Protocol: {claim.protocol}. Read from {keys}."


def page_table(scores: Sequence[Score]) -> str:
    """The scorecard: a summary line, one short row per claim and one numbered note per row below the table."""
    summary = ", ".join(f"{sum(s.verdict.verdict == verdict for s in scores)} {verdict}" for verdict in VERDICTS)
    rows = ["| # | claim | quoted | what the book measured | verdict |", "| --- | --- | --- | --- | --- |"]
    notes = []
    for number, score in enumerate(scores, start=1):
        claim, figure, why = score.claim, score.claim.quoted(), short(score.verdict.why)
        quoted = f"{figure.text} ({figure.source})" if claim.cited else figure.text
        verdict = f"**{score.verdict.verdict}**: {why}" + (f" (note {number})" if why != score.verdict.why else "")
        texts = (str(number), f"{claim.claim} ({claim.by})", quoted, measured_words(score), verdict)
        rows.append(f"| {' | '.join(cell(text) for text in texts)} |")
        notes.append(f"{number}. **{cell(claim.claim)}**: {' '.join(note_words(score).split())}")
    rules = "\n".join(f"- **{name}**: {words}." for name, words in RULE_WORDS.items())
    return (
        f"Of {len(scores)} claims: {summary}. Every verdict comes from one of these rules, applied to every row "
        f"alike; each row's note names its rule, its data, its protocol and the records it reads.\n\n{rules}\n\n"
        + "\n".join(rows)
        + "\n\n**Notes**\n\n"
        + "\n".join(notes)
    )


def write_scorecard(stage: Path, claims: Sequence[ScoredClaim] = CLAIMS, page: Path | None = None) -> list[Score]:
    """Score every claim on the stage and write the table between the MARKERS of the staged page (or `page`)."""
    scores = score_stage(stage, claims)
    page = page or stage / PAGE
    if not page.is_file():
        raise BookError(f"{page} is missing: the stage holds no scorecard page to write")
    write_atomic(page, between(page.read_text(encoding="utf-8"), MARKERS, page_table(scores), page).encode("utf-8"))
    return scores


def listed(stage: Path) -> bool:
    """Whether the stage's table of contents lists the scorecard page (a stage of a few pages may not)."""
    return PAGE.with_suffix("").as_posix() in toc_entries(stage)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the staged page and print each verdict; exit 2 when a claim's value is missing."""
    parser = argparse.ArgumentParser(prog="python -m fer_book scorecard", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", type=Path, default=Path("_build") / "stage", help="an executed stage")
    args = parser.parse_args(argv)
    try:
        scores = write_scorecard(args.stage)
    except BookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for score in scores:
        print(f"{score.claim.name}: {score.verdict.verdict} ({score.verdict.why})")
    print(f"wrote {args.stage / PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
