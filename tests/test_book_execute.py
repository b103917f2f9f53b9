"""Executing chapters side by side (`python -m fer_book execute --jobs N`): real kernels, shared cache.

Two chapters that need the same artefact at the same time must make it once, and the record must
say how long the execution took in wall time as well as per chapter.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from fer_book.execute import BOOK_DIRS, BOOK_FILES, SKIP_TAG, execute_book
from fer_utils.book.results import read_results, results_file

REPO = Path(__file__).resolve().parents[1]
CHAPTER = """
import time
from pathlib import Path
from fer_utils.book.artifacts import build_atomically

def build(tmp):
    with open(LOG, "a") as handle:
        handle.write("built\\n")
    time.sleep(4)
    tmp.mkdir()

build_atomically(Path(TARGET), build)
"""


def tiny_book(root: Path, cache: Path, chapters: int) -> None:
    """A book of `chapters` notebooks that all ask for one cached artefact (a slow build)."""
    for name in BOOK_FILES:
        shutil.copy2(REPO / name, root / name)
    for name in BOOK_DIRS:
        shutil.copytree(REPO / name, root / name)
    (root / "notebooks").mkdir()
    entries = []
    for i in range(1, chapters + 1):
        nb = nbformat.v4.new_notebook()
        source = f'LOG = "{cache / "calls.log"}"\nTARGET = "{cache / "artefact"}"' + ("\nEPOCHS = 1" if i == 2 else "")
        params = nbformat.v4.new_code_cell(source)  # the second chapter alone declares EPOCHS
        params.metadata["tags"] = ["parameters"]
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {i}"), params, nbformat.v4.new_code_cell(CHAPTER)]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, root / "notebooks" / f"0{i}_chapter.ipynb")
        entries.append({"file": f"notebooks/0{i}_chapter"})
    (root / "_toc.yml").write_text(json.dumps({"format": "jb-book", "root": "book/intro", "chapters": entries}))


@pytest.mark.slow
def test_chapters_side_by_side_make_a_shared_artefact_once(tmp_path: Path, capsys) -> None:
    """...and a parameter that one chapter declares reaches it, while the other is warned of and runs without it."""
    root, cache, stage = tmp_path / "repo", tmp_path / "cache", tmp_path / "stage"
    root.mkdir()
    cache.mkdir()
    tiny_book(root, cache, chapters=2)
    runs = execute_book(stage, root=root, jobs=2, parameters={"EPOCHS": 3})
    assert [r.error for r in runs] == [None, None]
    assert "warning: 01_chapter.ipynb does not declare EPOCHS; not passed to it" in capsys.readouterr().out
    injected = [c for c in nbformat.read(stage / "notebooks" / "02_chapter.ipynb", 4).cells if "EPOCHS = 3" in c.source]
    assert len(injected) == 1 and not any(
        "EPOCHS" in c.source for c in nbformat.read(stage / "notebooks" / "01_chapter.ipynb", 4).cells
    )
    assert (cache / "calls.log").read_text() == "built\n", "the second chapter waited for the first one's artefact"
    record = json.loads((stage / "execution_times.json").read_text())
    assert record["jobs"] == 2 and set(record["seconds"]) == {"01_chapter.ipynb", "02_chapter.ipynb"}
    assert record["wall_seconds"] < record["total_seconds"], "the chapters overlapped"
    assert not (stage / ".execute.lock").exists(), "a finished stage holds no lock file"


def test_the_cells_left_to_the_reader_run_only_for_the_record_of_every_cell(tmp_path: Path) -> None:
    """`make book` leaves the cells tagged `skip-execution` (the experiment exercises, minutes of training each)
    unrun; `--every-cell` runs them, for the record of how long a chapter takes a reader, and says so."""
    root, cache = tmp_path / "repo", tmp_path / "cache"
    root.mkdir()
    cache.mkdir()
    tiny_book(root, cache, chapters=1)
    chapter = root / "notebooks" / "01_chapter.ipynb"
    nb = nbformat.read(chapter, 4)
    ran = tmp_path / "experiment-ran"
    nb.cells.append(nbformat.v4.new_code_cell(f"open({str(ran)!r}, 'w').close()", metadata={"tags": [SKIP_TAG]}))
    nbformat.write(nb, chapter)
    for every_cell in (False, True):
        stage = tmp_path / f"stage-{every_cell}"
        assert [r.error for r in execute_book(stage, root=root, every_cell=every_cell)] == [None]
        assert ran.exists() == every_cell
        assert json.loads((stage / "execution_times.json").read_text())["every_cell"] == every_cell


def test_jobs_must_be_positive(tmp_path: Path) -> None:
    from fer_utils.errors import FerError

    with pytest.raises(FerError, match="--jobs must be at least 1, got 0"):
        execute_book(tmp_path / "stage", root=REPO, jobs=0)


# --- parameters and --only are checked before anything is staged or executed -------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--param", "DATSET=ravdess"], "no chapter declares the parameter(s) DATSET; the known parameters are "),
        (
            ["--param", "DATA_DIR=/data/ravdess"],
            "DATA_DIR is given without DATASET: the chapters would run on the sample",
        ),
        (["--only", "99"], "no notebook in _toc.yml matches ['99']"),
    ],
)
def test_execute_refuses_bad_parameters_and_chapters_before_staging(
    tmp_path: Path, capsys, argv: list[str], message: str
) -> None:
    from fer_book.commands import main

    stage = tmp_path / "stage"
    assert main(["execute", "--out", str(stage), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    if "known parameters" in message:
        assert "DATASET" in err.split("known parameters are ")[1] and "DATA_DIR" in err
    if "without DATASET" in message:
        from fer_utils.data.indexing import INDEXERS

        assert f"DATASET=<{'|'.join(INDEXERS)}>" in err and "fer2013" in err, err
    assert not stage.exists(), "nothing staged or copied"


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("EPOCHS=-1", "EPOCHS = -1 cannot be used: epochs must be at least 1, got -1"),
        ("IMAGE_SIZE=7", "IMAGE_SIZE = 7 cannot be used: paper-cnn needs inputs of at least 8×8 px"),
        ("EPOCHS=2.5", "EPOCHS = 2.5 cannot be used: it must be a whole number"),
    ],
)
def test_execute_refuses_a_run_parameter_no_run_can_take_before_staging(
    tmp_path: Path, capsys, param: str, message: str
) -> None:
    """Issue 74: `execute --only 03 --param EPOCHS=-1` was refused only after 88 s of making crops, by the chapter's
    training; `IMAGE_SIZE=7` was told to "pass a larger --size", an option no chapter has. Both are refused at once
    now, naming the parameter, before anything is staged."""
    from fer_book.commands import main

    stage = tmp_path / "stage"
    assert main(["execute", "--out", str(stage), "--only", "03", "--param", param]) == 2
    err = capsys.readouterr().err
    assert message in err and "--size" not in err and len(err.strip().splitlines()) == 1
    assert not stage.exists(), "nothing staged or executed"


# --- one execution per stage --------------------------------------------------------------

HOLD_LOCK = """
import sys, time
from pathlib import Path
from fer_utils.storage.locking import folder_lock
with folder_lock(Path(sys.argv[1]), ".execute.lock"):  # fer_book.execute.STAGE_LOCK
    print("holding", flush=True)
    time.sleep(60)
"""


def test_a_second_execution_into_a_stage_in_use_fails_at_once(tmp_path: Path, capsys) -> None:
    """Two executions into one stage both exited 0, and its record no longer matched its notebooks."""
    import subprocess
    import sys

    from fer_book.commands import main
    from fer_utils.errors import OutputError

    root, cache, stage = tmp_path / "repo", tmp_path / "cache", tmp_path / "stage"
    for folder in (root, cache, stage):
        folder.mkdir()
    tiny_book(root, cache, chapters=1)
    first = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(stage)], stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "holding"  # another execution is writing the stage
        with pytest.raises(OutputError, match=rf"{stage} is being written by another run \(pid {first.pid} "):
            execute_book(stage, root=root)
        assert main(["execute", "--out", str(stage)]) == 2
        assert f"is being written by another run (pid {first.pid} " in capsys.readouterr().err
        assert sorted(p.name for p in stage.iterdir()) == [".execute.lock"], "nothing staged, nothing recorded"
    finally:
        first.kill()
        first.wait()
    assert not (cache / "calls.log").exists(), "no chapter ran"


def test_side_by_side_the_longest_chapters_start_first() -> None:
    """Chapter 7 (the longest) was handed out seventh, and the build waited for it after the others ended."""
    from fer_book.execute import longest_first

    book = [Path(f"notebooks/0{i}.ipynb") for i in range(1, 5)]
    seconds = {"01.ipynb": 4.0, "02.ipynb": 30.0, "03.ipynb": 400.0}  # 04 has no record: it may be long
    assert [p.name for p in longest_first(book, seconds)] == ["04.ipynb", "03.ipynb", "02.ipynb", "01.ipynb"]


def test_a_failing_cell_is_reported_with_its_notebook_and_cell(tmp_path: Path) -> None:
    from fer_book.execute import execute_notebook

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("y = x / 0")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source = tmp_path / "broken.ipynb"
    nbformat.write(nb, source)
    run = execute_notebook(source, tmp_path / "out" / "broken.ipynb", timeout=60)
    assert run.notebook == "broken.ipynb"
    assert run.error and "ZeroDivisionError" in run.error and "y = x / 0" in run.error
    executed = nbformat.read(tmp_path / "out" / "broken.ipynb", as_version=4)
    assert any(o.output_type == "error" for c in executed.cells for o in c.get("outputs", []))


CLAIMS = """
from fer_utils.book.claims import check_claims

check_claims("04_training", {"gap": (GAP, ">=", 0.15), "collapsed_runs": (0, "==", 0)})
print("the chapter went on")
"""


def test_a_claim_the_run_does_not_bear_out_fails_the_books_own_run_and_is_said_on_a_readers(tmp_path: Path) -> None:
    """The book's own run (its defaults) fails on a claim of its text that does not hold; a reader's run (any
    parameter given) says it in one line and goes on to the end (it was an AssertionError that stopped the chapter,
    so a reader who shortened EPOCHS on the sample lost the rest of it)."""
    from fer_book.execute import execute_notebook

    params = nbformat.v4.new_code_cell("GAP = 0.1")
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(CLAIMS)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source = tmp_path / "04_training.ipynb"
    nbformat.write(nb, source)

    def printed(run_folder: str) -> str:
        executed = nbformat.read(tmp_path / run_folder / source.name, as_version=4)
        return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in executed.cells[-1].outputs)

    own = execute_notebook(source, tmp_path / "own" / source.name, timeout=120)
    assert own.error == ("the run does not bear out the text: 04_training: gap: measured 0.1, checked as ≥ 0.15"), (
        own.error
    )
    assert "the chapter went on" in printed("own")  # the whole run is there to read
    readers = execute_notebook(source, tmp_path / "readers" / source.name, timeout=120, parameters={"GAP": 0.12})
    assert readers.error is None
    said = printed("readers")
    assert "On this data the text's claim does not hold: gap: measured 0.12" in said and "collapsed" not in said
    assert "the chapter went on" in said
    held = execute_notebook(source, tmp_path / "held" / source.name, timeout=120, parameters={"GAP": 0.2})
    assert held.error is None and "2 claims of the text hold on this run." in printed("held")
    # each run's results record (beside its notebooks' folder) holds its own run alone: parameters and checks
    results = read_results(results_file(tmp_path, source.name))
    assert results["parameters"] == {"GAP": 0.2} == results["given"] and results["title"] == "GAP = 0.1"
    (check,) = results["checks"]
    assert check["measured"] == {"gap": 0.2, "collapsed_runs": 0.0} and check["claims"]["gap"] == [">=", 0.15]


def test_execute_refuses_a_stage_holding_files_it_did_not_write_and_reruns_over_its_own(tmp_path: Path, capsys) -> None:
    """Issue 74: `execute --out FOLDER --only 01` replaced the reader's own `notebooks/01_dataset_tour.ipynb` and
    `_config.yml` in FOLDER without a word. Refused now, naming them, with nothing changed; a stage that executions
    wrote is executed again over their files, and a reader's file that no execution writes is kept."""
    from fer_book.commands import main
    from fer_utils.errors import BookError

    root, cache, stage = tmp_path / "repo", tmp_path / "cache", tmp_path / "mine"
    for folder in (root, cache, stage / "notebooks"):
        folder.mkdir(parents=True)
    tiny_book(root, cache, chapters=1)
    mine = {"notebooks/01_chapter.ipynb": "my own notebook", "_config.yml": "title: my own book\n"}
    for name, text in mine.items():
        (stage / name).write_text(text)
    with pytest.raises(BookError, match="holds files that no `fer_book execute` wrote") as refused:
        execute_book(stage, root=root, only=["01"])
    assert "'_config.yml', 'notebooks/01_chapter.ipynb'" in str(refused.value) and "nothing was changed" in str(
        refused.value
    )
    assert {p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file()} == set(mine)
    assert all((stage / name).read_text() == text for name, text in mine.items())
    assert not (cache / "calls.log").exists(), "no chapter ran"
    users = tmp_path / "users"  # the command line, on the book itself: one line, exit 2, nothing run
    (users / "notebooks").mkdir(parents=True)
    (users / "notebooks" / "01_dataset_tour.ipynb").write_text("my own notebook")
    assert main(["execute", "--out", str(users), "--only", "01"]) == 2
    err = capsys.readouterr().err
    assert "notebooks/01_dataset_tour.ipynb" in err and len(err.strip().splitlines()) == 1
    assert (users / "notebooks" / "01_dataset_tour.ipynb").read_text() == "my own notebook"
    fresh = tmp_path / "stage"
    fresh.mkdir()
    (fresh / "notes.md").write_text("kept")
    for _ in range(2):  # the second execution replaces the first one's files
        assert [run.error for run in execute_book(fresh, root=root)] == [None]
    assert (fresh / "notes.md").read_text() == "kept" and (fresh / "notebooks" / "01_chapter.ipynb").is_file()
