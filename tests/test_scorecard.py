"""The paper's claims, scored (issue 46, item 1): `fer_book.scorecard` writes the appendix page from the executed
chapters, every claim with a verdict computed by its rule, and a claim whose run recorded no value fails the build.

The checks marked `book` read the executed stage of `make book` (`_build/stage`, or `$FER_BOOK_BUILD/stage`); the
others check the definitions and the rules on records written by the book's own `prose.render`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from fer_book import scorecard
from fer_book.scorecard import (
    CLAIMS,
    MARKERS,
    VERDICTS,
    Lesson,
    Prose,
    Reading,
    ScorecardError,
    ScoreOnData,
    TableCell,
    read_run,
    score_stage,
    write_scorecard,
)
from fer_book.toc import toc_entries, toc_notebooks
from fer_utils.book.cited import CITED, Cited
from fer_utils.book.lessons import LESSON_KEY, LESSONS
from fer_utils.book.prose import PROSE_KEY, over_seeds, render

REPO = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("FER_BOOK_BUILD", REPO / "_build"))
STAGE, HTML = BUILD / "stage", BUILD / "html"
CHAPTERS = {path.stem for path in toc_notebooks(REPO)}


def require_stage() -> Path:
    """The executed stage, or a failure telling how to make it."""
    if not (STAGE / "notebooks").is_dir():
        pytest.fail(f"{STAGE} is missing: run `make book` first (these tests check its output)")
    return STAGE


# --- the definitions --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.name)
def test_every_claim_has_a_run_and_a_rule_or_a_reason(claim: scorecard.ScoredClaim) -> None:
    """A testable claim reads recorded values of chapters of the book, shows only those, and its rule reads only
    those; its figure is a cited one (fer_utils.book.cited) or words; a claim not testable says why."""
    if claim.figure.key:
        assert claim.figure.key in CITED
    if claim.not_testable:
        assert len(claim.not_testable.split()) >= 10 and not claim.sources and claim.rule is None
        return
    assert {source.chapter for source in claim.sources.values()} <= CHAPTERS
    assert claim.shown.format(**{name: Reading(1.0, (1.0,), "1") for name in claim.sources})
    read = {value for field, value in vars(claim.rule).items() if field in ("reading", "numerator", "denominator")}
    read |= {getattr(claim.rule, "heavier", None)} - {None}
    read |= set(getattr(claim.rule, "names", ()))
    assert read and read <= set(claim.sources), f"{claim.name}: its rule reads {read - set(claim.sources)}"
    for source in claim.sources.values():
        if isinstance(source, Lesson):
            assert source.name in {c.name for c in LESSONS[source.chapter]}, source
    assert claim.rule.words(claim.figure.cited())


def test_the_claims_have_distinct_names_and_cover_the_paper_and_both_related_works() -> None:
    names = [claim.name for claim in CLAIMS]
    assert len(set(names)) == len(names)
    by = {claim.by for claim in CLAIMS}
    assert {scorecard.PAPER, scorecard.MOBILENET_INCEPTION, scorecard.OPTIMIZED_XCEPTION} == by
    for figure in ("paper_params", "paper_resnet50_ratio", "paper_ravdess_accuracy", "paper_mead_f1"):
        assert figure in {claim.figure.key for claim in CLAIMS}


def test_the_page_is_an_appendix_of_the_book_linked_from_the_intro() -> None:
    entries = toc_entries(REPO)
    assert "book/scorecard" in entries
    assert entries.index("book/scorecard") > max(entries.index(f"notebooks/{c}") for c in CHAPTERS)
    page = (REPO / scorecard.PAGE).read_text()
    assert page.count(MARKERS[0]) == 1 and page.count(MARKERS[1]) == 1
    assert "</book/scorecard>" in (REPO / "book" / "intro.md").read_text()


def rendered(template: str, **values: object) -> dict:
    """An output holding a paragraph's record, as `prose.paragraph` displays it."""
    text, record = render(template, **values)
    return {"output_type": "display_data", "data": {"text/markdown": text}, "metadata": {PROSE_KEY: record}}


def chapter_run(dataset: str, outputs: list[dict], parameters: dict | None = None) -> scorecard.Run:
    notebook = {"cells": [{"cell_type": "code", "metadata": {}, "source": "", "outputs": outputs}]}
    return scorecard.Run("04_training", notebook, "4. Training", dataset, None, parameters or {})


def test_a_score_is_scored_only_on_the_claims_own_dataset() -> None:
    """The same recorded accuracy is no reproduction on other data, and on the claim's data it is reproduced or
    not by the stated margin."""
    output = rendered(
        scorecard.REFERENCE_RUN + ": {accuracy}", seeds="0, 1", data="RAVDESS", accuracy=over_seeds([0.88, 0.9])
    )
    reading = Prose("04_training", scorecard.REFERENCE_RUN, "accuracy").read(chapter_run("ravdess", [output]).notebook)
    assert reading is not None and reading.number == pytest.approx(0.89) and reading.values == (0.88, 0.9)
    rule = ScoreOnData("accuracy", "ravdess")

    def judge(dataset: str, figure: str) -> scorecard.Verdict:
        return rule.judge({"accuracy": reading}, Cited(figure, "the paper", "paper"), chapter_run(dataset, [output]))

    assert judge("sample", "92").verdict == "not testable here" and "different data" in judge("sample", "92").why
    assert judge("savee", "92").verdict == "not testable here"
    assert judge("ravdess", "92").verdict == "reproduced"  # 0.89 >= 0.92 - 0.05
    assert judge("ravdess", "95").verdict == "not reproduced"  # 0.89 < 0.90


def test_a_missing_value_is_an_error_naming_the_claim_and_the_key() -> None:
    claim = next(c for c in CLAIMS if c.name == "ravdess_accuracy")
    run = chapter_run("sample", [rendered("Another paragraph: {accuracy}", accuracy=0.5)])
    with pytest.raises(ScorecardError, match=r"'ravdess_accuracy'.*04_training.*'accuracy'"):
        scorecard.score_claim(claim, {"04_training": run})
    with pytest.raises(ScorecardError, match=r"'ravdess_accuracy'.*no executed notebooks/04_training"):
        scorecard.score_claim(claim, {"04_training": None})


# --- on the executed book ---------------------------------------------------------------------------------------


@pytest.mark.book
def test_the_generated_page_holds_every_claim_with_a_verdict(tmp_path: Path) -> None:
    """Written from the executed stage, the page has one row per claim, each with one of the three verdicts;
    the parameter count and the ResNet50 ratio are reproduced by chapter 7's counts."""
    stage = require_stage()
    page = tmp_path / "scorecard.md"
    shutil.copy(REPO / scorecard.PAGE, page)
    scores = write_scorecard(stage, page=page)
    text = page.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith(("| claim", "| ---"))]
    assert len(rows) == len(CLAIMS) == len(scores)
    for claim, score, row in zip(CLAIMS, scores, rows):
        assert score.claim is claim and score.verdict.verdict in VERDICTS
        assert claim.claim in row and f"**{score.verdict.verdict}**" in row, row
        if not claim.not_testable:
            assert f"</notebooks/{claim.chapter}>" in row, "the row links the run that made its measurement"
    verdicts = {score.claim.name: score.verdict.verdict for score in scores}
    assert verdicts["params"] == verdicts["resnet50_ratio"] == "reproduced"
    for dataset in ("ravdess", "savee", "mead"):
        run = next(s.run for s in scores if s.claim.name == f"{dataset}_accuracy")
        expected = {"not testable here"} if run.dataset != dataset else {"reproduced", "not reproduced"}
        assert verdicts[f"{dataset}_accuracy"] in expected and verdicts[f"{dataset}_f1"] in expected


@pytest.mark.book
def test_the_built_page_shows_the_verdicts() -> None:
    """The HTML book's appendix holds the table written at build time, not the placeholder of the checkout."""
    page = HTML / "book" / "scorecard.html"
    if not page.is_file():
        pytest.fail(f"{page} is missing: run `make book` first (these tests check its output)")
    html = page.read_text()
    assert "has not been built" not in html
    for verdict in ("reproduced", "not testable here"):
        assert verdict in html


def copy_of_the_stage(tmp_path: Path) -> Path:
    """The executed chapters the claims read, the table of contents, the config and the page, copied."""
    stage = require_stage()
    target = tmp_path / "stage"
    (target / "notebooks").mkdir(parents=True)
    for name in ("_toc.yml", "_config.yml"):
        shutil.copy(stage / name, target / name)
    (target / "_toc.yml").write_text((REPO / "_toc.yml").read_text())  # the stage of an older book may lack the page
    (target / "book").mkdir()
    shutil.copy(REPO / scorecard.PAGE, target / scorecard.PAGE)
    for chapter in {source.chapter for claim in CLAIMS for source in claim.sources.values()}:
        shutil.copy(stage / "notebooks" / f"{chapter}.ipynb", target / "notebooks" / f"{chapter}.ipynb")
    return target


def remove_record(notebook: dict, source: scorecard.Source) -> int:
    """Remove from the executed notebook the record `source` reads; how many records it took out."""
    removed = 0
    for cell in notebook["cells"]:
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {})
            if isinstance(source, Prose) and source.paragraph in meta.get(PROSE_KEY, {}).get("literal", ""):
                values = meta[PROSE_KEY]["values"]
                for key in [k for k in values if k.split(":")[0] == source.value]:
                    del values[key]
                    removed += 1
            elif isinstance(source, Lesson) and source.name in meta.get(LESSON_KEY, {}).get("measured", {}):
                del meta[LESSON_KEY]["measured"][source.name]
                removed += 1
            elif isinstance(source, TableCell) and "text/html" in out.get("data", {}):
                html = "".join(out["data"]["text/html"])
                row = rf"<tr>(?:(?!</tr>).)*?<td>{re.escape(source.row)}</td>.*?</tr>"
                out["data"]["text/html"], found = re.subn(row, "", html, flags=re.DOTALL)
                removed += found
    return removed


SOURCES = [(claim, name) for claim in CLAIMS for name in claim.sources]


@pytest.mark.book
@pytest.mark.parametrize(("claim", "name"), SOURCES, ids=[f"{c.name}-{n}" for c, n in SOURCES])
def test_a_claim_whose_run_recorded_no_value_fails_generation(
    tmp_path: Path, claim: scorecard.ScoredClaim, name: str
) -> None:
    """With the record a claim reads taken out of a real executed chapter, writing the page fails, naming the
    claim, the chapter and the key; the untouched copy is written."""
    stage = copy_of_the_stage(tmp_path)
    write_scorecard(stage)  # the copy as executed: every value is there
    source = claim.sources[name]
    path = stage / "notebooks" / f"{source.chapter}.ipynb"
    notebook = json.loads(path.read_text())
    assert remove_record(notebook, source) >= 1, f"{source.key} is not in the executed chapter"
    path.write_text(json.dumps(notebook))
    with pytest.raises(ScorecardError) as error:
        write_scorecard(stage)
    message = str(error.value)
    assert f"claim {next_claim_reading(source)!r}" in message, message
    assert source.chapter in message and source.key in message


def next_claim_reading(source: scorecard.Source) -> str:
    """The first claim that reads `source` (several claims can read one record; the first fails the build)."""
    return next(c.name for c in CLAIMS if source in c.sources.values())


@pytest.mark.book
def test_the_build_fails_before_sphinx_when_a_value_is_missing(tmp_path: Path) -> None:
    """`fer_book build` writes the scorecard first: a stage whose chapter 4 lost its result paragraph's record
    stops the build with the claim's name, before any asset is fetched or any model trained."""
    from fer_book.build import build_book

    stage = copy_of_the_stage(tmp_path)
    path = stage / "notebooks" / "04_training.ipynb"
    notebook = json.loads(path.read_text())
    remove_record(notebook, Prose("04_training", scorecard.REFERENCE_RUN, "accuracy"))
    path.write_text(json.dumps(notebook))
    with pytest.raises(ScorecardError, match=r"claim 'ravdess_accuracy'.*04_training"):
        build_book(stage, tmp_path / "out", tmp_path / "cache")
    assert not (stage / "_static").exists()


@pytest.mark.book
def test_the_verdict_rules_on_the_values_the_book_recorded() -> None:
    """The rules on real recorded values: chapter 7's count of the paper's CNN equals 542,136 and a figure one
    off is not reproduced; chapter 4's accuracy is not testable on the sample, and scored by the margin once the
    run is on the claim's dataset; chapter 5's gap verdict agrees with its lesson's own check."""
    stage = require_stage()
    count = TableCell("07_comparison", "params", "model", "paper-cnn").read(read_run(stage, "07_comparison").notebook)
    assert count is not None and count.number == 542_136
    run7 = read_run(stage, "07_comparison")
    same = scorecard.SameCount("paper_cnn")
    assert same.judge({"paper_cnn": count}, CITED["paper_params"], run7).verdict == "reproduced"
    assert same.judge({"paper_cnn": count}, Cited("542,135", "one off", "x"), run7).verdict == "not reproduced"

    run4 = read_run(stage, "04_training")
    accuracy = Prose("04_training", scorecard.REFERENCE_RUN, "accuracy").read(run4.notebook)
    assert accuracy is not None and len(accuracy.values) >= 2, "the reference run's accuracy is over seeds"
    rule = ScoreOnData("accuracy", "ravdess")
    if run4.dataset != "ravdess":
        assert rule.judge({"accuracy": accuracy}, CITED["paper_ravdess_accuracy"], run4).verdict == "not testable here"
    on_ravdess = replace(run4, dataset="ravdess")
    at = Cited(f"{100 * (accuracy.number + scorecard.ACCURACY_MARGIN):.4f}", "at the margin", "x")
    above = Cited(f"{100 * (accuracy.number + scorecard.ACCURACY_MARGIN) + 1:.4f}", "past the margin", "x")
    assert rule.judge({"accuracy": accuracy}, at, on_ravdess).verdict == "reproduced"
    assert rule.judge({"accuracy": accuracy}, above, on_ravdess).verdict == "not reproduced"

    gap = next(c for c in CLAIMS if c.name == "remedy_closes_the_gap")
    score = next(s for s in score_stage(stage, [gap]))
    holds = all(
        claim.holds(score.readings[claim.name].number)
        for claim in LESSONS["05_regularization"]
        if claim.name in ("baseline_gap", "gap_shrink_over_spread")
    )
    assert score.verdict.verdict == ("reproduced" if holds else "not reproduced")
