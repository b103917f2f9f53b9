"""Issue 74: what a submission can make the grader write on the host is bounded, a failure of the grader's own
machine is never a student's grade, and bad input to `fer_book grade` and `assign` is one line (exit 2).

The hostile submissions are graded by `otter run` in bubblewrap (these tests need `bwrap`: they fail, never skip,
without it) on a chapter of one cheap exercise, built here; the command line is tried on the book's chapter 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from fer_book.assign import Assigned, assign_chapter
from fer_book.grade import chapter_path, grade_folder
from fer_book.grade_sandbox import PACKAGE_TREES
from fer_utils.errors import BookError

MB = 2**20
STUB = """def conv_params(kernel: int, in_channels: int, filters: int) -> int:
    raise NotImplementedError


exercises.check_conv_params(conv_params)
"""
SOLUTION = """def conv_params(kernel: int, in_channels: int, filters: int) -> int:
    return (kernel**2 * in_channels + 1) * filters


exercises.check_conv_params(conv_params)
"""
# Put before a right answer (it fails the exercise if it cannot do its part): the flood through the
# notebook's stdout, then a file as large in the folder otter writes its results to (named on otter's command line).
FLOOD_AND_FILL = """
import os
import pathlib

for _ in range({mb}):
    os.write(1, b"y" * 2**20)
_filled = []
for _proc in pathlib.Path("/proc").iterdir():
    try:
        _args = (_proc / "cmdline").read_bytes().split(b"\\0")
        _out = pathlib.Path(os.readlink(_proc / "cwd")) / os.fsdecode(_args[_args.index(b"-o") + 1])
        (_out / "junk.bin").write_bytes(b"z" * ({mb} * 2**20))
        _filled.append(_out)
        break
    except (OSError, ValueError, IndexError):
        pass
assert _filled, "no folder named after -o could be filled"
"""
# A flood written straight to otter's own stdout (the kernel's copy of it): it never enters the executed notebook.
FLOOD_OTTERS_STDOUT = """
import os

_target = os.readlink(f"/proc/{{os.getppid()}}/fd/1")


def _same_file(name):
    try:
        return os.readlink(f"/proc/self/fd/{{name}}") == _target
    except OSError:
        return False


_fd = next(int(name) for name in os.listdir("/proc/self/fd") if _same_file(name))
for _ in range({mb}):
    os.write(_fd, b"y" * 2**20)
"""
ANSWER_TAG = "otter_assign_solution_cell"  # the answer cell of otter's solutions notebook


def code(text: str, *tags: str) -> dict:
    metadata = {"tags": list(tags)} if tags else {}
    return {"cell_type": "code", "execution_count": None, "metadata": metadata, "outputs": [], "source": text}


def markdown(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Assigned]:
    """A book of one chapter, `01_tiny`, whose one exercise (chapter 3's first) grades in seconds, and its assignment."""
    root = tmp_path_factory.mktemp("book")
    (root / "nb").mkdir()
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: nb/01_tiny\n")
    cells = [
        markdown("# Tiny"),
        code("from fer_utils.book import exercises\n"),
        markdown("### Exercise 1"),
        code(STUB),
        code(SOLUTION, "solution", "hide-cell"),
    ]
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    chapter = root / "nb" / "01_tiny.ipynb"
    chapter.write_text(
        json.dumps({"cells": cells, "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5})
    )
    return root, assign_chapter(chapter, root / "assign")


def solutions(done: Assigned, before: str = "", *extra: dict) -> dict:
    """The chapter's solutions notebook, as a student would hand it in: `before` opens the answer cell, `extra`
    cells come at the end."""
    notebook = json.loads((done.autograder.parent / done.student.name).read_text())
    (answer,) = [c for c in notebook["cells"] if ANSWER_TAG in c["metadata"].get("tags", [])]
    answer["source"] = before + "".join(answer["source"])
    notebook["cells"] += [{**cell, "id": f"extra-{i}"} for i, cell in enumerate(extra)]
    return notebook


def hand_in(folder: Path, name: str, notebook: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    path.write_text(json.dumps(notebook))
    return path


# `fer_book grade` on the small book (the command line grades the book's own chapters): its handler, as the CLI runs it.
GRADE_CODE = """
import argparse
import sys
from pathlib import Path
from fer_book.grade import grade_folder
from fer_utils.cli import run_handler

subs, out, autograder, root = map(Path, sys.argv[1:5])


def grade(args):
    grade_folder(subs, "01", out, autograder, timeout_s=600, root=root)


raise SystemExit(run_handler(argparse.Namespace(handler=grade)))
"""


def grading(
    subs: Path, out: Path, book: tuple[Path, Assigned], env: dict, limit: int | None = None
) -> subprocess.Popen:
    """`grade_folder` on `subs` in a new process (files limited to `limit` bytes, as a full disk stops a write)."""

    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    argv = [sys.executable, "-c", GRADE_CODE, str(subs), str(out), str(book[1].autograder), str(book[0])]
    return subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit_files if limit else None,
    )


def folder_bytes(folder: Path) -> int:
    """The bytes of the files under `folder` now (files vanishing meanwhile are skipped)."""
    total = 0
    for parent, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(parent, name)).st_size
    return total


def pristine_bytes() -> int:
    """At most what the grader's pristine copy of the package takes (every file of its trees)."""
    root = Path(__file__).resolve().parents[1]
    return sum(p.stat().st_size for tree in PACKAGE_TREES for p in (root / tree).rglob("*") if p.is_file())


def largest_pristine_file() -> int:
    """The largest file the grader copies (a file-size limit under it would stop the grader before any student)."""
    root = Path(__file__).resolve().parents[1]
    return max(p.stat().st_size for tree in PACKAGE_TREES for p in (root / tree).rglob("*") if p.is_file())


def test_a_submissions_output_and_files_never_reach_the_graders_disk(
    tiny: tuple[Path, Assigned], tmp_path: Path
) -> None:
    """Defect 2: 96 MB printed and a 96 MB file written where otter puts its results grew the grader's temporary
    folder by as much (a log, a writable bind); now its output stays in memory, bounded, and nothing is writable."""
    subs, tmp = tmp_path / "subs", tmp_path / "tmp"
    tmp.mkdir()
    hand_in(subs, "flood", solutions(tiny[1], FLOOD_AND_FILL.format(mb=96)))
    process = grading(subs, tmp_path / "grades.csv", tiny, {**os.environ, "TMPDIR": str(tmp)})
    peak = 0
    while process.poll() is None:
        peak = max(peak, folder_bytes(tmp))
        time.sleep(0.2)
    _, err = process.communicate()
    assert process.returncode == 0, err[-3000:]
    assert peak < pristine_bytes() + 32 * MB, f"the grader's temporary folder grew to {peak / MB:.0f} MB"
    grades = pd.read_csv(tmp_path / "grades.csv", keep_default_na=False)
    assert list(grades["status"]) == ["passed"], grades.to_dict("records")  # graded on its answer, not its noise


def test_a_full_disk_is_the_graders_failure_never_a_grade_and_the_next_run_grades_on(
    tiny: tuple[Path, Assigned], tmp_path: Path
) -> None:
    """Defect 3: with the grader's files limited (as a full disk limits them) below what a submission printed, the
    print failed in its notebook (the grader's log was full) and that error was its grade, kept by the next run; now
    nothing printed is written, and the grader's own write that fails (a notebook over the limit) stops the run in
    one line, recording nothing for that notebook, which the next run grades."""
    limit = largest_pristine_file() + 2 * MB
    subs, out = tmp_path / "subs", tmp_path / "grades.csv"
    hand_in(subs, "a_loud", solutions(tiny[1], FLOOD_OTTERS_STDOUT.format(mb=4 * limit // MB)))
    hand_in(subs, "zz_big", solutions(tiny[1], "", markdown("x" * (limit + MB))))
    process = grading(subs, out, tiny, dict(os.environ), limit=limit)
    _, err = process.communicate()
    first = pd.read_csv(out, keep_default_na=False)
    assert list(zip(first["student"], first["status"])) == [("a_loud", "passed")], first.to_dict("records")
    assert process.returncode == 2 and len(err.strip().splitlines()) == 1, err[-3000:]
    assert err.startswith("error: grading stopped at zz_big.ipynb: the grader could not write its copy"), err
    assert "(File too large), a failure of this machine, not of the notebook" in err, err

    grades, summary, kept = grade_folder(subs, "01", out, tiny[1].autograder, timeout_s=600, root=tiny[0])
    assert kept == 1 and list(summary["passed"]) == [1, 1], summary.to_dict("records")
    assert dict(zip(grades["student"], grades["status"])) == {"a_loud": "passed", "zz_big": "passed"}


def test_a_link_or_a_file_that_is_no_notebook_is_refused_and_named(tiny: tuple[Path, Assigned], tmp_path: Path) -> None:
    """Defect 9 and a minor one: a link out of the folder (to a secret, to the teacher's solutions) was followed
    and graded as root; nbformat 3 and JSON of another kind were "a submission for assignment 'None'"."""
    outside = tmp_path / "teacher"
    secret = outside / "secret.txt"
    outside.mkdir()
    secret.write_text("root:x:0:0:the-teachers-secret\n")
    answers = hand_in(outside, "answers", solutions(tiny[1]))
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "x_secret.ipynb").symlink_to(secret)
    (subs / "x_answers.ipynb").symlink_to(answers)
    old = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": []}]}
    (subs / "v3.ipynb").write_text(json.dumps(old))
    (subs / "roster.ipynb").write_text(json.dumps({"students": ["ada", "bob"]}))
    (subs / "text.ipynb").write_text("my answers: 42\n")
    out = tmp_path / "grades.csv"
    grades, _, _ = grade_folder(subs, "01", out, tiny[1].autograder, timeout_s=600, root=tiny[0])
    rows = {r.student: (r.status, r.message) for r in grades.itertuples()}
    link = "the file is a symbolic link: grading reads only regular files inside the submissions folder"
    assert {status for status, _ in rows.values()} == {"error"}, rows
    assert rows["x_secret"][1].startswith(link) and rows["x_answers"][1].startswith(link), rows
    assert rows["v3"][1].startswith("the notebook is in nbformat 3, the grader reads nbformat 4: open it in Jupyter")
    assert rows["roster"][1].startswith("the file is JSON but no Jupyter notebook"), rows
    assert rows["text"][1].startswith("the file is not a notebook (not JSON text)"), rows
    assert "the-teachers-secret" not in out.read_text() and "'None'" not in out.read_text()


def test_grade_names_a_chapter_by_its_whole_number_never_a_prefix(repo_root: Path) -> None:
    """A minor one: `--chapter 1` matched `10_seven_expressions` by prefix and graded chapter 1 against it."""
    assert chapter_path(repo_root, "1").stem == chapter_path(repo_root, "01").stem == "01_dataset_tour"
    assert chapter_path(repo_root, "10").stem == chapter_path(repo_root, "10_seven_expressions").stem
    for wrong in ("0", "1_", "01_dataset"):
        with pytest.raises(BookError, match=f"--chapter {wrong} names 0 chapters with exercises"):
            chapter_path(repo_root, wrong)


def wrong_autograder(kind: str, folder: Path) -> Path:
    """An --autograder of `kind`: missing, a folder, a text file, or a zip without tests/exercise_N.py."""
    path = folder / f"{kind}.zip"
    if kind == "folder":
        path.mkdir()
    elif kind == "text":
        path.write_text("not a zip")
    elif kind == "no_tests":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("otter_config.json", "{}")
            archive.writestr("tests/helper.py", "")
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "does not exist"),
        ("folder", "is a folder"),
        ("text", "cannot be read as a zip archive (File is not a zip file)"),
        ("no_tests", "holds no tests/exercise_N.py, so it grades nothing"),
    ],
)
def test_a_wrong_autograder_is_one_line_and_nothing_is_graded(kind: str, message: str, tmp_path: Path) -> None:
    """Defect 4 and a minor one: a missing file, a folder or a non-zip was a traceback (exit 1); a zip without
    `tests/exercise_N.py` graded nothing and exited 0."""
    subs = tmp_path / "subs"
    hand_in(subs, "kim", {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    autograder = wrong_autograder(kind, tmp_path)
    command = [
        sys.executable,
        "-m",
        "fer_book",
        "grade",
        str(subs),
        "--chapter",
        "01",
        "--out",
        str(tmp_path / "g.csv"),
    ]
    done = subprocess.run([*command, "--autograder", str(autograder)], capture_output=True, text=True)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr[-3000:]
    assert done.stderr.startswith(f"error: --autograder {autograder} {message}"), done.stderr
    assert not (tmp_path / "g.csv").exists()


ASSIGN = (sys.executable, "-m", "fer_book", "assign")


def test_assign_onto_a_file_is_one_line_and_the_file_is_left(tmp_path: Path) -> None:
    """Defect 5: `assign --out` naming a file was a FileExistsError traceback (exit 1)."""
    out = tmp_path / "notes.txt"
    out.write_text("mine")
    done = subprocess.run([*ASSIGN, "--out", str(out), "--only", "01"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr == f"error: --out {out} is a file, not a folder\n", done.stderr[-3000:]
    assert out.read_text() == "mine"


def test_assign_force_on_a_folder_with_a_file_of_its_own_says_how_to_go_on(tmp_path: Path) -> None:
    """A minor one: `assign --force` refused a folder holding an extra file without naming it or saying what to do."""
    command = [*ASSIGN, "--out", str(tmp_path), "--only", "01", "--force"]
    assert subprocess.run(command, capture_output=True).returncode == 0
    notes = tmp_path / "01_dataset_tour" / "notes.txt"
    notes.write_text("my rubric")
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr[-3000:]
    assert "holds notes.txt, which no assignment has" in done.stderr, done.stderr
    assert "move that out of the folder (or give another --out) and run again" in done.stderr, done.stderr
    assert notes.read_text() == "my rubric" and not list(tmp_path.glob("*.bak-*"))


def test_ctrl_c_during_assign_is_one_line_exit_130_and_leaves_no_staging_folder(tmp_path: Path) -> None:
    """A minor one: Ctrl-C during `assign` printed a KeyboardInterrupt traceback."""
    process = subprocess.Popen([*ASSIGN, "--out", str(tmp_path), "--only", "01"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".01_dataset_tour-*")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # the staging folder appears before otter assign runs
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and len(err.strip().splitlines()) == 1, err[-3000:]
    assert err.startswith("error: interrupted (Ctrl-C)"), err
    assert list(tmp_path.iterdir()) == []
