"""The paper's claims, scored: `fer_book.scorecard` writes the appendix page from the executed
chapters, every claim with a verdict computed by its rule, and a claim whose run recorded no value fails the build.

The checks marked `book` read the executed stage of `make book` (`_build/stage`, or `$FER_BOOK_BUILD/stage`); the
others check the definitions and the rules on results records written by the book's own `fer.glue`, `fer.record`
and `fer.check_claims`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import tomllib
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

from fer_book import scorecard
from fer_book.scorecard import (
    CLAIMS,
    VERDICTS,
    Benchmark,
    BookError,
    Glued,
    Lesson,
    Reading,
    Recorded,
    read_run,
    score_stage,
    write_scorecard,
)
from fer_book.toc import toc_notebooks
from fer_utils.book.cited import CITED, Cited
from fer_utils.book.glue import Difference, glue, over_seeds, speed_words
from fer_utils.book.results import RESULTS_ENV, read_results, record, results_file, start_results

REPO = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("FER_BOOK_BUILD", REPO / "_build"))
STAGE, HTML = BUILD / "stage", BUILD / "html"
CHAPTERS = {path.stem for path in toc_notebooks(REPO)}


def require_stage() -> Path:
    """The executed stage, or a failure telling how to make it."""
    if not (STAGE / "results").is_dir():
        pytest.fail(f"{STAGE} is missing: run `make book` first (these tests check its output)")
    return STAGE


# --- the definitions --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.name)
def test_every_claim_has_a_run_and_a_rule_or_a_reason(claim: scorecard.ScoredClaim) -> None:
    """A testable claim reads recorded values of chapters of the book, shows only those, and its rule reads only
    those; its figure is a cited one (fer_utils.book.cited) or words; a claim not testable says why. A checked
    claim it reads is one its chapter checks; a glued value is named for its chapter (`ch5_…`) and, once the
    chapter glues its values, glued by it."""
    assert (claim.cited in CITED) if claim.cited else claim.figure
    assert {source.chapter for source in claim.sources.values()} <= CHAPTERS
    readings = {name: Reading(1.0, (1.0,), "1", checked=(">", 0.0)) for name in claim.sources}
    if claim.sources:
        assert claim.shown.format(**readings)
    if claim.not_testable:  # its sources, if any, are shown as information and judged by no rule
        assert len(claim.not_testable.split()) >= 10 and claim.rule is None
        return
    given = claim.rule.keywords
    fields = ("reading", "numerator", "denominator", "spread")
    read = {value for field, value in given.items() if field in fields} | set(given.get("names", ()))
    assert read and read <= set(claim.sources), f"{claim.name}: its rule reads {read - set(claim.sources)}"
    if claim.rule.func is scorecard.lesson_holds:
        assert all(isinstance(claim.sources[name], Lesson) for name in given["names"]), given
    for source in claim.sources.values():
        if isinstance(source, Glued):
            assert source.name.startswith(f"ch{int(source.chapter[:2])}_"), source
    words, verdict = claim.rule(readings, claim.quoted(), run_of(claim.chapter, []))
    assert words and verdict.verdict in VERDICTS


def test_the_claims_have_distinct_names_and_cover_the_paper_and_both_related_works() -> None:
    names = [claim.name for claim in CLAIMS]
    assert len(set(names)) == len(names)
    by = {claim.by for claim in CLAIMS}
    works = tomllib.loads(scorecard.CLAIMS_FILE.read_text(encoding="utf-8"))["by"]
    assert set(works) == {"paper", "mobilenet_inception", "optimized_xception"} and set(works.values()) == by
    for figure in ("paper_params", "paper_resnet50_ratio", "paper_ravdess_accuracy", "paper_mead_f1"):
        assert figure in {claim.cited for claim in CLAIMS}


ROW = {"name": "a_claim", "by": "paper", "claim": "A claim", "figure": "no figure", "shown": "{x}"}


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ({"sources": {"x": {"glued": "ch4_x"}}}, r"claim 'a_claim', field 'sources\.x': .*missing.*'chapter'"),
        ({"sources": {"x": {"glued": "ch4_x", "chapter": "04_training", "indx": 0}}}, r"'sources\.x': .*'indx'"),
        ({"sources": {"x": {"cell": "x", "chapter": "04_training"}}}, r"'sources\.x': .*kind.*not 'cell'"),
        (
            {"sources": {"x": {"lesson": "x", "chapter": "04_training"}}, "rule": {"kind": "Bigger"}},
            r"'rule'.*'Bigger'",
        ),
        ({"not_testable": "a reason", "rule": {"kind": "effect"}}, r"field 'rule': missing .*'reading'"),
        (
            {"not_testable": "a reason", "rule": {"kind": "effect", "reading": "x", "spread": "x", "claimed": "rise"}},
            r"claim 'a_claim': give",
        ),
        ({"sources": {"x": {"lesson": "x", "chapter": "04_training"}}}, r"claim 'a_claim': give"),
        ({"not_testable": "a reason", "cited": "paper_params"}, r"claim 'a_claim': give `cited`"),
        ({"not_testable": "a reason", "figure": None}, r"claim 'a_claim': give `cited`"),
        (
            {"not_testable": "a reason", "name": None, "colour": 1},
            r"claim #1: .*'colour'",
        ),
    ],
)
def test_a_row_of_the_data_file_that_does_not_read_names_the_row_and_the_field(row: dict, error: str) -> None:
    """The data file's rows become claims by the kinds the module knows; an unknown kind, field or a missing
    field is a BookError naming the row and the field, and so is a row with neither or both of a quoted figure
    and words, or of a rule with sources and a reason it is not testable."""
    given = {name: value for name, value in (ROW | row).items() if value is not None}
    works = {"by": {"paper": "the paper"}}
    assert scorecard.claims_from(works | {"claim": [ROW | {"not_testable": "a reason"}]})[0].by == "the paper"
    with pytest.raises(BookError, match=error):
        scorecard.claims_from({"claim": [given]})


def results_of(*calls: tuple) -> dict:
    """The results record a chapter's run writes when it makes `calls`, each (function, *args): the book's own
    `fer.glue` and `fer.record`."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        path = Path(folder) / "results.json"
        start_results(path, "chapter", "A chapter", {}, {})
        patch.setenv(RESULTS_ENV, str(path))
        with capture_output():
            for function, *args in calls:
                function(*args)
        return read_results(path)


def glued(name: str, value: object, spec: str = "") -> tuple:
    """A chapter's `fer.glue(name, value, spec)`, to make."""
    return (glue, name, value, spec)


def chapter_run(dataset: str, calls: list[tuple], parameters: dict | None = None) -> scorecard.Run:
    return scorecard.Run("04_training", results_of(*calls), "4. Training", dataset, None, parameters or {})


def test_a_score_is_scored_only_on_the_claims_own_dataset() -> None:
    """The same recorded accuracy is no reproduction on other data, and on the claim's data it is reproduced or
    not by the stated margin."""
    output = glued("ch4_accuracy", over_seeds([0.88, 0.9]))
    reading = Glued("04_training", "ch4_accuracy").read(chapter_run("ravdess", [output]).results)
    assert reading is not None and reading.number == pytest.approx(0.89) and reading.values == (0.88, 0.9)

    def judge(dataset: str, figure: str) -> scorecard.Verdict:
        cited = Cited(figure, "the paper", "paper")
        return scorecard.score_on_data(
            {"accuracy": reading}, cited, chapter_run(dataset, [output]), "accuracy", "ravdess"
        )[1]

    assert judge("sample", "92").verdict == "not testable here" and "different data" in judge("sample", "92").why
    assert judge("savee", "92").verdict == "not testable here"
    assert judge("ravdess", "92").verdict == "reproduced"  # 0.89 >= 0.92 - 0.05
    assert judge("ravdess", "95").verdict == "not reproduced"  # 0.89 < 0.90


def test_a_missing_value_is_an_error_naming_the_claim_and_the_key() -> None:
    claim = next(c for c in CLAIMS if c.name == "ravdess_accuracy")
    run = chapter_run("sample", [glued("ch4_other", 0.5)])
    with pytest.raises(BookError, match=r"'ravdess_accuracy'.*04_training.*'ch4_accuracy'"):
        scorecard.score_claim(claim, {"04_training": run})
    with pytest.raises(BookError, match=r"'ravdess_accuracy'.*no results record of it \(results/04_training"):
        scorecard.score_claim(claim, {"04_training": None})


def recorded(name: str, rows: list[dict], key: str, column: str) -> tuple:
    """A chapter's `fer.record(name, ...)` of a table's column `column` by its column `key`, to make."""
    return (record, name, {row[key]: row[column] for row in rows})


def run_of(chapter: str, calls: list[tuple], dataset: str = "sample") -> scorecard.Run:
    """An executed chapter whose run made `calls`."""
    return scorecard.Run(chapter, results_of(*calls), f"{chapter[:2]}. A chapter", dataset, None, {})


def claim_named(name: str) -> scorecard.ScoredClaim:
    return next(c for c in CLAIMS if c.name == name)


def scored(name: str, *runs: scorecard.Run) -> scorecard.Score:
    return scorecard.score_claim(claim_named(name), {run.chapter: run for run in runs})


def row_of(score: scorecard.Score) -> str:
    """The score's row of the page's table."""
    page = scorecard.page_table([score]).splitlines()
    return next(line for line in page if line.startswith("| ") and score.claim.claim in line)


def chapter5(change: list[float], gap_change: tuple[float, float] = (-0.3, 0.02)) -> scorecard.Run:
    """Chapter 5's glued gaps, their change and the remedy's change in test accuracy (final weights), each a
    difference over seeds with its spread."""
    gap, after_gap = glued("ch5_gap", over_seeds([0.4, 0.42])), glued("ch5_after_gap", over_seeds([0.1, 0.12]))
    changes = [glued("ch5_gap_change", Difference(*gap_change, 3)), glued("ch5_remedy_change", Difference(*change, 3))]
    return run_of("05_regularization", [gap, after_gap, *changes])


def test_a_run_on_other_data_shows_no_number_beside_the_claims_figure() -> None:
    """The sample's accuracy is not shown as a measurement of the paper's 92 % on RAVDESS: the row says which
    data the run used, and that it is not the claim's."""
    score = scored("ravdess_accuracy", run_of("04_training", [glued("ch4_accuracy", 0.931)]))
    row = row_of(score)
    assert score.verdict.verdict == "not testable here" and "0.931" not in row
    assert "no measurement on the claim's data" in row and "ran on sample" in row and "</notebooks/04_training>" in row


def test_the_cure_is_scored_on_the_gap_and_on_the_test_accuracy_apart() -> None:
    """The gap closing does not make the paper's cure reproduced: the test accuracy is its own row. Both are
    effects, judged by the one rule: reproduced beyond the spread in the claimed direction, inconclusive within it.
    Regression: a test accuracy within the spread was scored "not reproduced"."""
    within = chapter5([0.01, 0.04])
    gap = scored("remedy_closes_the_gap", within)
    assert gap.verdict.verdict == "reproduced" and "-0.300, beyond the spread over seeds (0.020)" in gap.verdict.why
    assert "0.410 ± 0.014 over 2 seeds" in row_of(gap)
    assert scored("remedy_closes_the_gap", chapter5([0.01, 0.04], (0.3, 0.02))).verdict.verdict == "not reproduced"
    test = scored("remedy_raises_test_accuracy", within)
    assert test.verdict.verdict == "inconclusive" and "+0.010, within the spread" in test.verdict.why
    assert "+0.010" in row_of(test)
    assert scored("remedy_raises_test_accuracy", chapter5([0.1, 0.04])).verdict.verdict == "reproduced"
    assert scored("remedy_raises_test_accuracy", chapter5([-0.1, 0.04])).verdict.verdict == "not reproduced"


def test_the_rules_are_stated_once_and_applied_to_every_row_alike() -> None:
    """The page states its verdict rules once, above the table; each row's note names the rule it applies. The
    same within-spread difference is inconclusive for every claim of an effect, whichever direction it claims."""
    effects = [claim for claim in CLAIMS if claim.rule is not None and claim.rule.func is scorecard.effect]
    assert len(effects) >= 3
    for claim in effects:
        readings = {name: Reading(0.05 if name == "spread" else 0.01, (0.01,), "0.01") for name in claim.sources}
        words, verdict = claim.rule(readings, claim.quoted(), None)
        assert verdict.verdict == "inconclusive", claim.name
        claimed = claim.rule.keywords["claimed"]
        for change in (0.3, -0.3):
            readings = {name: Reading(0.05 if name == "spread" else change, (change,), "x") for name in claim.sources}
            agrees = claimed != "none" and (change > 0) == (claimed == "rise")
            expected = "reproduced" if agrees else "not reproduced"
            assert claim.rule(readings, claim.quoted(), None)[1].verdict == expected, (claim.name, change)
    scores = [scored("ravdess_accuracy", run_of("04_training", [glued("ch4_accuracy", 0.931)]))]
    scores.append(scored("remedy_raises_test_accuracy", chapter5([0.01, 0.04])))
    scores.append(scored("pruning", pruning_run(0.952, 0.61)))
    page = scorecard.page_table(scores)
    table = page.index("| # |")
    for name, words in scorecard.RULE_WORDS.items():
        assert page.count(words) == 1 and page.index(words) < table, name
    notes = [line for line in page.splitlines() if line[:2] in ("1.", "2.", "3.")]
    assert [note.split("Rule: ")[1].split(",")[0].split(".")[0] for note in notes] == [
        "a score",
        "an effect",
        "not testable here",
    ]


def catalogue_run() -> scorecard.Run:
    """Chapter 7's catalogue, with its real counts."""
    rows = [
        {"model": "paper-cnn", "params": 542136, "x paper CNN": 1.0},
        {"model": "mobilenet-inception", "params": 1000000, "x paper CNN": 1.84},
        {"model": "alexnet", "params": 62378344, "x paper CNN": 115.06},
        {"model": "resnet50", "params": 25636712, "x paper CNN": 47.29},
    ]
    return run_of("07_comparison", [recorded("params", rows, "model", "params")])


def test_the_book_s_own_hybrid_is_shown_but_not_scored_as_the_work_s_model() -> None:
    score = scored("mobilenet_inception_is_light", catalogue_run())
    row = row_of(score)
    assert score.verdict.verdict == "not testable here" and "own guess" in score.verdict.why
    assert "1,000,000" in row and "25,636,712" in row


def test_the_resnet50_ratio_is_reproduced_when_it_rounds_to_the_papers_47() -> None:
    score = scored("resnet50_ratio", catalogue_run())
    assert score.verdict == scorecard.Verdict("reproduced", "ratio 47.29, ≈ 47") and "25,636,712" in row_of(score)
    got = {"resnet50": Reading(47.5, (47.5,), "47.5"), "paper_cnn": Reading(1.0, (1.0,), "1")}
    ratio = scorecard.rounded_ratio(got, CITED["paper_resnet50_ratio"], None, "resnet50", "paper_cnn")
    assert ratio[1] == scorecard.Verdict("not reproduced", "ratio 47.50, ≠ 47")


def pruning_run(unpruned: float, half: float) -> scorecard.Run:
    """Chapter 8's glued pruning values: the unpruned accuracy, chance, the accuracy at half sparsity."""
    values = [("ch8_unpruned", unpruned), ("ch8_chance", 0.125), ("ch8_half", half), ("ch8_half_s", 0.5, ".0%")]
    return run_of("08_deployment", [glued(*value) for value in values])


def test_pruning_without_fine_tuning_is_shown_not_scored() -> None:
    """Regression: pruning was scored "not reproduced" on a network pruned without the fine-tuning the cited work
    uses; the accuracies are shown as information."""
    for half in (0.94, 0.61):
        shown = scored("pruning", pruning_run(0.952, half))
        assert shown.verdict.verdict == "not testable here" and "fine-tun" in shown.verdict.why
        assert "0.952" in row_of(shown) and f"{half:.3f}" in row_of(shown) and "50%" in row_of(shown)


def test_the_random_splits_inflation_is_scored_from_chapter_6() -> None:
    """The paper's random frame split, against the split by person: a lead beyond the spread is the paper's
    protocol not measuring unseen faces; a difference within the spread cannot tell."""

    def chapter6(random: list[float], subject: list[float]) -> scorecard.Run:
        outputs = [
            glued("ch6_random", over_seeds(random)),
            glued("ch6_subject", over_seeds(subject)),
            glued("ch6_random_subject", Difference(sum(random) / 2 - sum(subject) / 2, 0.05, 2)),
        ]
        return run_of("06_evaluation_protocols", outputs)

    inflated = scored("random_split_measures_new_faces", chapter6([0.9, 0.92], [0.5, 0.52]))
    assert inflated.verdict.verdict == "not reproduced" and "+0.400, beyond the spread" in inflated.verdict.why
    assert "random − subject +0.400**" in row_of(inflated)
    level = scored("random_split_measures_new_faces", chapter6([0.9, 0.92], [0.89, 0.9]))
    assert level.verdict.verdict == "inconclusive"


def test_a_timing_on_the_build_machine_is_shown_not_scored() -> None:
    """Regression: the compiler's 5 % speed-up was scored while the detectors' timings on the same machine were
    not testable; both are timings on the shared build machine, shown as information."""
    for ratio in (2.1, 1.03):
        shown = scored("compiler_speedup", run_of("08_deployment", [glued("ch8_paper_xla", speed_words(ratio))]))
        assert shown.verdict.verdict == "not testable here" and "build machine" in shown.verdict.why
        assert "XLA's pass ran" in row_of(shown) and f"{ratio:.2f}×" in row_of(shown)


def test_the_detectors_speed_is_shown_from_chapter_2s_table_without_a_verdict() -> None:
    """A speed ranking on a shared build machine moves with its load: the row shows chapter 2's times as
    information, never a verdict."""

    def chapter2(hog: float, haar: float) -> scorecard.Run:
        rows = [
            {"detector": "dlib-hog", "ms_per_frame": hog, "detection_rate": 1.0},
            {"detector": "opencv-haar", "ms_per_frame": haar, "detection_rate": 0.9},
        ]
        return run_of("02_preprocessing", [recorded("ms_per_frame", rows, "detector", "ms_per_frame")])

    for hog, haar in ((31.5, 12.0), (12.0, 31.5)):
        shown = scored("opencv_faster_than_dlib", chapter2(hog, haar))
        assert shown.verdict.verdict == "not testable here" and "quiet machine" in shown.verdict.why
        assert "31.5" in row_of(shown)


def test_the_papers_recipe_is_shown_from_its_benchmark_record_not_scored(tmp_path: Path) -> None:
    """Regression: a benchmark's record was scored on a page of executed results. It is shown as information
    (the paper's recipe learnt in 1 of 5 seeds); a record that is missing still fails the page, naming the claim
    and the record."""
    score = scored("paper_recipe_learns", run_of("04_training", []))
    assert score.verdict.verdict == "not testable here" and "benchmark" in score.verdict.why
    row = row_of(score)
    assert "learnt in 1 of 5 seeds" in row and "</notebooks/04_training>" in row
    assert "London faces" in scorecard.note_words(score)
    missing = replace(
        claim_named("paper_recipe_learns"),
        sources={
            "learnt": replace(claim_named("paper_recipe_learns").sources["learnt"], record="benchmarks/none.json")
        },
    )
    with pytest.raises(BookError, match=r"'paper_recipe_learns'.*benchmarks/none\.json"):
        scorecard.score_claim(missing, {"04_training": run_of("04_training", [])})


def test_the_cited_comparators_without_a_quoted_figure_are_not_testable() -> None:
    """AlexNet's count is shown from chapter 7's catalogue, VGG-Face+LSTM's is not recorded; neither is scored
    against a figure the book does not quote."""
    alexnet = scored("alexnet_ratio", catalogue_run())
    assert alexnet.verdict.verdict == "not testable here" and "62,378,344" in row_of(alexnet)
    assert scored("vggface_lstm_ratio").verdict.verdict == "not testable here"


def test_the_table_s_cells_are_short_and_the_long_words_are_notes() -> None:
    """Every cell of the table fits a column of the book's width: the rule, data, protocol and keys of each row
    are in a numbered note below it."""
    runs = {
        "04_training": run_of("04_training", [glued("ch4_accuracy", 0.931)]),
        "05_regularization": chapter5([0.01, 0.04]),
        "07_comparison": catalogue_run(),
        "08_deployment": pruning_run(0.952, 0.94),
    }
    names = ("ravdess_accuracy", "remedy_closes_the_gap", "resnet50_ratio", "pruning", "lstm_ratio")
    scores = [scorecard.score_claim(claim_named(name), runs) for name in names]
    page = scorecard.page_table(scores)
    rows = [line for line in page.splitlines() if line.startswith("| ") and not line.startswith(("| #", "| ---"))]
    assert len(rows) == len(names)
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert len(cells) == 5 and max(map(len, cells)) <= 260, [c for c in cells if len(c) > 260]
    for number, score in enumerate(scores, start=1):
        note = next(line for line in page.splitlines() if line.startswith(f"{number}. "))
        assert "Rule:" in note or "Not testable here" in note
        if score.run is not None:
            assert score.claim.protocol.split(";")[0] in note and "Read from" in note


# --- on the executed book ---------------------------------------------------------------------------------------


@pytest.mark.book
def test_the_generated_page_holds_every_claim_with_a_verdict(tmp_path: Path) -> None:
    """Written from the executed stage, the page has one row per claim, each with one of the verdicts;
    the parameter count and the ResNet50 ratio are reproduced by chapter 7's counts."""
    stage = require_stage()
    page = tmp_path / "scorecard.md"
    shutil.copy(REPO / scorecard.PAGE, page)
    scores = write_scorecard(stage, page=page)
    text = page.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith(("| #", "| ---"))]
    assert len(rows) == len(CLAIMS) == len(scores)
    for claim, score, row in zip(CLAIMS, scores, rows):
        assert score.claim is claim and score.verdict.verdict in VERDICTS
        assert claim.claim in row and f"**{score.verdict.verdict}**" in row, row
        if not claim.not_testable:
            assert f"</notebooks/{claim.chapter}>" in row, "the row links the run that made its measurement"
        if not score.verdict.comparable:  # measured on other data: none of its numbers stands beside the claim
            assert not any(reading.text in row for reading in score.readings.values()), row
        assert max(len(cell) for cell in row.strip("|").split(" | ")) <= 260, "a cell too long for the book's width"
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
    """The results records the claims read, the table of contents, the config and the page, copied."""
    stage = require_stage()
    target = tmp_path / "stage"
    target.mkdir()
    for name in ("_toc.yml", "_config.yml"):
        shutil.copy(stage / name, target / name)
    (target / "_toc.yml").write_text((REPO / "_toc.yml").read_text())  # the stage of an older book may lack the page
    (target / "book").mkdir()
    shutil.copy(REPO / scorecard.PAGE, target / scorecard.PAGE)
    for chapter in {source.chapter for claim in CLAIMS for source in claim.sources.values()}:
        results_file(target, chapter).parent.mkdir(exist_ok=True)
        shutil.copy(results_file(stage, chapter), results_file(target, chapter))
    return target


def remove_record(stage: Path, source: scorecard.Source) -> int:
    """Remove from the chapter's results record in `stage` the value `source` reads; how many values it took out."""
    path = results_file(stage, source.chapter)
    results = read_results(path)
    if isinstance(source, Glued):
        removed = int(results["glued"].pop(source.name, None) is not None)
    elif isinstance(source, Lesson):
        checks = [check for check in results["checks"] if source.name in check["measured"]]
        removed = len(checks)
        for check in checks:
            del check["measured"][source.name]
    else:
        removed = int(results["values"].get(source.name, {}).pop(source.row, None) is not None)
    path.write_text(json.dumps(results))
    return removed


# the values recorded by executed chapters (a Benchmark reads a committed record of the repository instead)
SOURCES = [
    (claim, name) for claim in CLAIMS for name in claim.sources if not isinstance(claim.sources[name], Benchmark)
]


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
    assert remove_record(stage, source) >= 1, f"{source.key} is not in the executed chapter's results record"
    with pytest.raises(BookError) as error:
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
    assert remove_record(stage, Glued("04_training", "ch4_accuracy")) >= 1
    with pytest.raises(BookError, match=r"claim 'ravdess_accuracy'.*04_training"):
        build_book(stage, tmp_path / "out", tmp_path / "cache")
    assert not (stage / "_static").exists()


@pytest.mark.book
def test_the_verdict_rules_on_the_values_the_book_recorded() -> None:
    """The rules on real recorded values: chapter 7's count of the paper's CNN equals 542,136 and a figure one
    off is not reproduced; chapter 4's accuracy is not testable on the sample, and scored by the margin once the
    run is on the claim's dataset; chapter 5's gap verdict agrees with its lesson's own check."""
    stage = require_stage()
    run7 = read_run(stage, "07_comparison")
    count = Recorded("07_comparison", "params", "paper-cnn").read(run7.results)
    assert count is not None and count.number == 542_136
    same = partial(scorecard.same_count, {"paper_cnn": count}, run=run7, reading="paper_cnn")
    assert same(CITED["paper_params"])[1].verdict == "reproduced"
    assert same(Cited("542,135", "one off", "x"))[1].verdict == "not reproduced"

    run4 = read_run(stage, "04_training")
    accuracy = Glued("04_training", "ch4_accuracy").read(run4.results)
    assert accuracy is not None and len(accuracy.values) >= 2, "the reference run's accuracy is over seeds"

    def rule(figure: Cited, run: scorecard.Run) -> scorecard.Verdict:
        return scorecard.score_on_data({"accuracy": accuracy}, figure, run, "accuracy", "ravdess")[1]

    if run4.dataset != "ravdess":
        assert rule(CITED["paper_ravdess_accuracy"], run4).verdict == "not testable here"
    on_ravdess = replace(run4, dataset="ravdess")
    # at the margin: the figure written to 4 decimals, never rounded above the mean + margin
    at = Cited(f"{100 * (accuracy.number + scorecard.ACCURACY_MARGIN) - 1e-4:.4f}", "at the margin", "x")
    above = Cited(f"{100 * (accuracy.number + scorecard.ACCURACY_MARGIN) + 1:.4f}", "past the margin", "x")
    assert rule(at, on_ravdess).verdict == "reproduced"
    assert rule(above, on_ravdess).verdict == "not reproduced"

    gap = next(c for c in CLAIMS if c.name == "remedy_closes_the_gap")
    score = next(s for s in score_stage(stage, [gap]))
    change, spread = score.readings["change"].number, score.readings["spread"].number
    expected = "inconclusive" if abs(change) <= spread else "reproduced" if change < 0 else "not reproduced"
    assert score.verdict.verdict == expected
