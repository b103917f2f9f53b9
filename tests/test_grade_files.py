"""A class of the tiny chapter whose files are named and made as careless and hostile users make them
(names that are not UTF-8, NFD names, names the CSV guard prefixes, FIFOs, folders, dangling links, huge and
deeply nested notebooks), graded once and once more, to see what a rerun keeps; and a grade sheet that is
another folder's or another grader's.

Like test_grade.py these need bubblewrap (`bwrap`); they fail, never skip, without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from test_grade import by_submission, tiny, tiny_book, write  # noqa: F401

from fer_book.grade import grade_folder
from fer_book.grade_notebooks import GradeError, read_submissions, submission_paths
from fer_utils.errors import OutputError

LATIN1 = os.fsdecode(b"Jos\xe9.ipynb")  # a name made on a Latin-1 system: not UTF-8
NFD = "Zoe\u0308.ipynb"  # Zoë typed on a Mac (NFD)
LITERAL = "Zoe\\u0308.ipynb"  # a file literally named so: what the NFD name used to be escaped to
TIMEOUT_S = 120


def deep_notebook(depth: int) -> str:
    """The tiny chapter answered right, its metadata nesting a list `depth` levels deep (JSON text)."""
    notebook = tiny("answer = 3", "answer2 = 4")
    notebook["metadata"]["deep"] = "@@DEEP@@"
    return json.dumps(notebook).replace('"@@DEEP@@"', "[" * depth + "]" * depth)


def unblock(fifo: Path, done: threading.Event) -> None:
    """Open and close the FIFO's writing end now and then, so that a grader blocked reading it (the bug)
    reads an empty file and goes on, instead of hanging the test."""
    while not done.wait(5):
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


@pytest.fixture(scope="module")
def graded(tiny_book: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:  # noqa: F811
    """The class graded once and then again: {"first": grades, "again": grades, "kept": n, "subs", "out"}."""
    root = tmp_path_factory.mktemp("class")
    subs, out = root / "subs", root / "grades.csv"
    write(subs, "ada", tiny("answer = 3", "answer2 = 4"))
    (subs / LATIN1).write_text(json.dumps(tiny("answer = 3", "answer2 = 4")))
    (subs / NFD).write_text(json.dumps(tiny("answer = 3")))  # one right
    (subs / LITERAL).write_text(json.dumps(tiny("answer = 3", "answer2 = 4")))  # two right
    write(subs, "=cmd", tiny("answer = 3"))
    write(subs, "-rm", tiny("answer = 3"))
    os.mkfifo(subs / "pipe.ipynb")
    (subs / "deep.ipynb").write_text(deep_notebook(3000))
    (subs / "folder.ipynb").mkdir()
    (subs / "gone.ipynb").symlink_to(root / "nowhere.ipynb")
    with (subs / "huge.ipynb").open("wb") as fh:  # sparse: 70 MB on paper, nothing on disk
        fh.truncate(70_000_000)
    write(subs, "nan", tiny("answer = float('nan')"))
    hidden = tiny("answer = 3", "answer2 = 4")
    hidden["cells"][3]["metadata"] = {"tags": ["solution"]}  # the student tagged exercise 1's own cell
    write(subs, "hidden", hidden)
    write(subs, "ADA2", tiny("answer = 3")).rename(subs / "ADA2.IPYNB")
    write(subs / ".ipynb_checkpoints", "ada-checkpoint", tiny())
    done = threading.Event()
    threading.Thread(target=unblock, args=(subs / "pipe.ipynb", done), daemon=True).start()
    notes: list[str] = []
    try:
        first, _, _ = grade_folder(subs, out, timeout_s=TIMEOUT_S, root=tiny_book, progress=notes.append)
        again, _, kept = grade_folder(subs, out, timeout_s=TIMEOUT_S, root=tiny_book)
    finally:
        done.set()
    yield {"first": first, "again": again, "kept": kept, "subs": subs, "out": out, "notes": notes}


def statuses(grades: pd.DataFrame, key: str) -> list[tuple[str, str]]:
    """(status, message) of each exercise of the submission `key`, in order."""
    rows = by_submission(grades)
    return [rows[k] for k in sorted(k for k in rows if k[0] == key)]


# --- names and files that stopped or blocked grading ---------------------------------------------------------------------------------------


def test_a_latin1_file_name_is_graded_and_the_class_after_it_too(graded: dict) -> None:
    """A name that is not UTF-8 no longer stops the sheet's write (UnicodeEncodeError)."""
    rows = statuses(graded["first"], "Jos\\udce9.ipynb")
    assert [status for status, _ in rows] == ["passed", "passed"]
    assert graded["first"].set_index("submission").loc["Jos\\udce9.ipynb", "student"].tolist() == ["Jos\\xe9"] * 2
    assert [status for status, _ in statuses(graded["first"], "ada.ipynb")] == ["passed", "passed"]
    graded["out"].read_text(encoding="utf-8")  # the sheet is UTF-8 text


def test_an_nfd_name_and_its_escaped_spelling_are_two_submissions_with_their_own_grades(graded: dict) -> None:
    """`Zoë` in NFD and a file literally named `Zoe\\u0308` had one key: one was never graded."""
    nfd, literal = statuses(graded["first"], "Zoe\\u0308.ipynb"), statuses(graded["first"], "Zoe\\\\u0308.ipynb")
    assert [s for s, _ in nfd] == ["passed", "unanswered"]
    assert [s for s, _ in literal] == ["passed", "passed"]


def test_keys_that_would_collide_are_refused_naming_both_files(tmp_path: Path, tiny_book: Path) -> None:  # noqa: F811
    """Keys are unique by construction; were two equal, grading stops naming both files."""
    from fer_book.grade_notebooks import book_chapters

    subs = tmp_path / "subs"
    write(subs, "a", tiny())
    write(subs, "b", tiny())
    paths = submission_paths(subs)
    with pytest.raises(GradeError, match=r"two submissions would share the key .*a\.ipynb.*a\.ipynb"):
        read_submissions([paths[0], paths[0]], subs, book_chapters(tiny_book))


def test_a_name_the_csv_guard_prefixes_keeps_its_grades_on_a_rerun(graded: dict) -> None:
    """`=cmd.ipynb` is written `'=cmd.ipynb` and read back as itself: kept, not regraded."""
    assert statuses(graded["first"], "=cmd.ipynb")[0][0] == "passed"
    assert statuses(graded["again"], "=cmd.ipynb") == statuses(graded["first"], "=cmd.ipynb")
    assert graded["kept"] == graded["first"]["submission"].nunique(), "every submission kept its grades"
    assert "'=cmd.ipynb" in graded["out"].read_text(encoding="utf-8"), "still neutralised in the file"


def test_a_fifo_named_as_a_notebook_is_an_error_row_and_does_not_block(graded: dict) -> None:
    """A FIFO is never opened for reading; it is recorded and the class is graded."""
    [(status, message)] = statuses(graded["first"], "pipe.ipynb")
    assert status == "error" and message.startswith("it is a FIFO, not a notebook file")


def test_json_nested_3000_deep_is_an_error_row_of_its_student(graded: dict) -> None:
    """A RecursionError no longer stops grading for the whole class."""
    [(status, message)] = statuses(graded["first"], "deep.ipynb")
    assert status == "error" and "nests more than 64 levels deep" in message
    assert [s for s, _ in statuses(graded["first"], "ada.ipynb")] == ["passed", "passed"]


# --- other files and sheets --------------------------------------------------------------------------------------


def test_a_folder_and_a_dangling_link_named_as_notebooks_are_error_rows(graded: dict) -> None:
    [(status, message)] = statuses(graded["first"], "folder.ipynb")
    assert status == "error" and message.startswith("it is a folder, not a notebook file")
    [(status, message)] = statuses(graded["first"], "gone.ipynb")
    assert status == "error" and "dangling link" in message


def test_a_notebook_over_the_size_bound_is_an_error_row_never_read(graded: dict) -> None:
    [(status, message)] = statuses(graded["first"], "huge.ipynb")
    assert status == "error" and message == "the file is 70 MB, over the 64 MB a notebook may have"


def test_a_nan_answer_is_not_too_low(graded: dict) -> None:
    status, message = statuses(graded["first"], "nan.ipynb")[0]
    assert status == "failed" and message.startswith("three is a finite number; got nan")


def test_an_exercise_cell_the_student_tagged_solution_says_so(graded: dict) -> None:
    (status, message), second = statuses(graded["first"], "hidden.ipynb")
    assert status == "error" and "the cell of exercise 1 is tagged `solution`" in message
    assert second == ("passed", "four is 4.")


def test_an_upper_case_suffix_is_graded_and_checkpoints_are_named(graded: dict) -> None:
    assert statuses(graded["first"], "ADA2.IPYNB")[0][0] == "passed"
    assert any("skipped 1 notebook(s) in .ipynb_checkpoints" in note for note in graded["notes"])
    assert not graded["first"]["submission"].str.contains("checkpoint").any()


def test_a_second_folder_graded_into_an_existing_out_is_refused_keeping_the_rows(
    graded: dict,
    tmp_path: Path,
    tiny_book: Path,  # noqa: F811
) -> None:
    other = tmp_path / "section2"
    write(other, "bea", tiny())
    before = graded["out"].read_bytes()
    with pytest.raises(OutputError, match="holds the grades of .* other notebook"):
        grade_folder(other, graded["out"], timeout_s=TIMEOUT_S, root=tiny_book)
    assert graded["out"].read_bytes() == before


def test_a_second_grader_on_the_same_sheet_is_refused(tmp_path: Path, tiny_book: Path) -> None:  # noqa: F811
    from fer_book.grade_sheet import grade_sheet_lock

    subs, out = tmp_path / "subs", tmp_path / "grades.csv"
    write(subs, "ada", tiny())
    with grade_sheet_lock(out), pytest.raises(OutputError, match="being written by another run"):
        grade_folder(subs, out, timeout_s=TIMEOUT_S, root=tiny_book)
    assert not out.exists()


def test_grading_this_class_takes_no_longer_than_its_notebooks(graded: dict) -> None:
    """Nothing blocked: the FIFO (which the old grader read forever) cost no time of its own."""
    start = time.monotonic()
    assert submission_paths(graded["subs"])  # listing a folder with a FIFO never opens it
    assert time.monotonic() - start < 5
