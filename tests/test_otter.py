"""The classroom on otter-grader: `fer_book assign` makes every chapter an otter assignment, and `fer_book grade`
grades a class with `otter run` in bubblewrap sandboxes (these tests need `bwrap`: they fail, never skip, without it).

Chapter 1 is graded as a class: the solutions, an untouched student notebook, and the five attacks of issue 38 (each
also answering wrong). Chapter 3's solutions and planted mistakes are graded, each mistake with its checker's
own message. The roster and a teacher's column are kept.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from fer_book.assign import Assigned, chapters_with_exercises, heading_number, is_solution, manual_questions, source

GRADE = (sys.executable, "-m", "fer_book", "grade")
ANSWER_TAG = "otter_answer_cell"

CONSTANT_PARSER = (
    "def parse_ravdess_name(file_name):\n"
    '    return {"emotion": "happy", "intensity": 1, "statement": 1, "repetition": 1, "actor": 1}\n'
)
WRONG_COUNT = "answer = 1\n"
WRONG_COUNT_MESSAGE = "1 is too low for the number of neutral clips. Look again at how it is computed."

# 1. Every checker the kernel can reach rewritten to report success.
REPLACE_THE_CHECKERS = """
from fer_utils.book import exercises as _ex


def _yes(*args, **kwargs):
    return _ex.Feedback(True, "forged by a1")


for _name in [n for n in dir(_ex) if n.startswith("check_")]:
    setattr(_ex, _name, _yes)
"""

# 2. The library functions the checker calls are patched: the "real" index holds one clip, which the constant
# parser reads right.
PATCH_THE_LIBRARY = """
import sys
import pandas as pd
import fer_utils.data.corpora


class _FakeIndex:
    clips = pd.DataFrame(
        [{"path": "/x/01-01-03-01-01-01-01.mp4", "dataset": "ravdess", "emotion": "happy", "intensity": 1,
          "statement": 1, "repetition": 1, "actor": 1, "subject": "01"}]
    )
    rejected = pd.DataFrame()


def _fake_index(*args, **kwargs):
    return _FakeIndex()


for _module in list(sys.modules.values()):
    for _function in ("index_ravdess", "index_dataset"):
        if getattr(_module, "__name__", "").startswith("fer_utils") and hasattr(_module, _function):
            setattr(_module, _function, _fake_index)
"""

# 3. A made-up clip index (one row, a path that does not exist) handed to the counting exercise.
MADE_UP_CLIPS = """
import pandas as pd

clips = pd.DataFrame([{"path": "/nowhere/01-01-01-01-01-01-01.mp4", "dataset": "ravdess", "emotion": "neutral"}])
"""

# 4. The checkers rewritten on disk, and the classmates' notebooks overwritten (found through the parents'
# command lines, and by the path a student could guess).
REWRITE_ON_DISK = """
import os
import pathlib
import fer_utils.book.exercises.ch01 as _ch01

_evil = (
    "\\n\\ndef check_clip_count(*args, **kwargs):\\n    return Feedback(True, 'rewritten by a4')\\n"
    "\\n\\ndef check_ravdess_parser(*args, **kwargs):\\n    return Feedback(True, 'rewritten by a4')\\n"
)
for _target in {pathlib.Path(_ch01.__file__), pathlib.Path(CHECKOUT) / "fer_utils/book/exercises/ch01.py"}:
    try:
        _target.write_text(_target.read_text() + _evil)
    except OSError as exc:
        print("cannot rewrite", _target, exc)
_folders = {pathlib.Path(SUBMISSIONS)}
for _pid in (os.getppid(), 1):
    try:
        _args = pathlib.Path(f"/proc/{_pid}/cmdline").read_bytes().split(b"\\0")
        _folders |= {pathlib.Path(a.decode()) for a in _args if a and a != b"/" and pathlib.Path(a.decode()).is_dir()}
    except OSError as exc:
        print("cannot read a parent's command line", exc)
for _folder in _folders:
    for _notebook in [*_folder.glob("*.ipynb"), *_folder.glob("*/*.ipynb")]:
        if _notebook.name != "a4_rewrite.ipynb":
            try:
                _notebook.write_text('{"nbformat": 4, "overwritten": "by a4"}')
            except OSError as exc:
                print("cannot overwrite", _notebook, exc)
"""

# 5. A detached process that would outlive grading, then the parent (otter's executor) killed.
KILL_THE_PARENT = """
import os
import signal
import subprocess
import sys

subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(300)", TOKEN],
    start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
)
os.kill(os.getppid(), signal.SIGTERM)
"""

# Chapter 3's planted mistakes: the usual slips each checker names.
PLANTED_03 = {
    1: "def conv_params(kernel, in_channels, filters):\n    return kernel * kernel * in_channels * filters\n",
    2: "def fc_params(side, filters=64, units=16):\n    return (side // 8) ** 2 * filters * units\n",
    3: (
        "def sequential_cnn(num_classes=8, input_shape=(180, 180, 1)):\n"
        "    return keras.Sequential([keras.Input(shape=tuple(input_shape)), layers.Flatten(),\n"
        "                             layers.Dense(num_classes, activation='softmax')])\n"
    ),
}
CHECKERS_03 = {1: "check_conv_params", 2: "check_fc_params", 3: "check_sequential_cnn"}


@pytest.fixture(scope="module")
def assigned(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Assigned]:
    """`fer_book assign` on every chapter, by chapter name."""
    out = tmp_path_factory.mktemp("assign")
    done = subprocess.run(
        [sys.executable, "-m", "fer_book", "assign", "--out", str(out)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {
        path.stem: Assigned(
            path.stem,
            out / path.stem / path.name,
            out / path.stem / "student" / path.name,
            out / path.stem / "autograder" / f"{path.stem}-autograder.zip",
            0,
        )
        for path in chapters_with_exercises(repo_root)
    }


def exercise_sections(notebook: dict) -> dict[int, tuple[str, str]]:
    """Exercise number -> (the stub, the solution) of a book chapter."""
    cells, found = notebook["cells"], {}
    for i, cell in enumerate(cells):
        number = heading_number(cell)
        if number is None:
            continue
        end = next((j for j in range(i + 1, len(cells)) if heading_number(cells[j]) is not None), len(cells))
        code = [c for c in cells[i + 1 : end] if c["cell_type"] == "code"]
        found[number] = (
            source(next(c for c in code if not is_solution(c))),
            source(next(c for c in code if is_solution(c))),
        )
    return found


def before_last_statement(text: str) -> str:
    """A cell's code before its last statement (the checker call), stripped."""
    return "".join(text.splitlines(keepends=True)[: ast.parse(text).body[-1].lineno - 1]).strip()


def answer_cells(notebook: dict) -> dict[int, int]:
    """Exercise number -> index of its answer cell in an otter notebook (the first tagged code cell after its
    heading)."""
    cells, found = notebook["cells"], {}
    for i, cell in enumerate(cells):
        number = heading_number(cell)
        if number is not None:
            found[number] = next(
                j
                for j in range(i + 1, len(cells))
                if cells[j]["cell_type"] == "code" and ANSWER_TAG in cells[j]["metadata"].get("tags", [])
            )
    return found


def with_answers(notebook: dict, answers: dict[int, str]) -> dict:
    """`notebook` with the answer cells of `answers` replaced by their source."""
    notebook = json.loads(json.dumps(notebook))
    cells = answer_cells(notebook)
    for number, text in answers.items():
        notebook["cells"][cells[number]]["source"] = text
    return notebook


def write(folder: Path, name: str, notebook: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    path.write_text(json.dumps(notebook, indent=1))
    return path


def run_grade(subs: Path, chapter: str, out: Path, autograder: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    command = [*GRADE, str(subs), "--chapter", chapter, "--out", str(out), "--autograder", str(autograder)]
    return subprocess.run([*command, "--timeout", str(timeout)], capture_output=True, text=True)


def rows_of(out: Path) -> dict[tuple[str, int], tuple[str, str]]:
    grades = pd.read_csv(out, keep_default_na=False)
    return {(r.student, r.exercise): (r.status, r.message) for r in grades.itertuples()}


def test_assign_makes_every_chapter_a_student_notebook_and_an_autograder(
    assigned: dict[str, Assigned], repo_root: Path
) -> None:
    chapters = chapters_with_exercises(repo_root)
    assert len(chapters) == 10 and set(assigned) == {p.stem for p in chapters}
    for path in chapters:
        done = assigned[path.stem]
        sections = exercise_sections(json.loads(path.read_text()))
        student = json.loads(done.student.read_text())
        text = "\n".join(source(c) for c in student["cells"])
        assert not any(is_solution(c) for c in student["cells"]), path.stem
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text, path.stem
        for number, (stub, solution) in sections.items():
            body = before_last_statement(solution)  # the solution without its checker call
            assert body and body not in text, (path.stem, number)
            assert before_last_statement(stub) in text, (path.stem, number)  # the stub is there
            assert f'grader.check("exercise_{number}")' in text, (path.stem, number)
        master = "\n".join(source(c) for c in json.loads(done.master.read_text())["cells"])
        for number, (stub, _) in sections.items():  # an experiment: a prediction before, an explanation after
            experiment = "check_experiment" in stub
            for part in ("prediction", "explanation"):
                assert (f"name: exercise_{number}_{part}\nmanual: true" in master) == experiment, (path.stem, number)
            assert (f"**Before you run exercise {number}**" in text) == experiment, (path.stem, number)
        # every question graded by hand has its answer key in the instructor's edition, and none in the student's
        keys = manual_questions(path.stem)
        experiment = any("check_experiment" in stub for stub, _ in sections.values())
        assert {"prompt", "key"} | ({"prediction", "explanation"} if experiment else set()) <= set(keys), path.stem
        assert "name: discussion\nmanual: true" in master and keys["prompt"] in text, path.stem
        for name in ("key", "prediction", "explanation"):
            if name in keys:
                assert f"**Answer key.** {keys[name]}" in master and keys[name] not in text, (path.stem, name)
        assert "**Rubric" not in text and "**Answer key" not in text, path.stem
        assert master.count("**Answer key.**") == master.count("manual: true"), path.stem
        with zipfile.ZipFile(done.autograder) as archive:
            names = set(archive.namelist())
            assert {"run_autograder", "setup.sh", "otter_config.json"} <= names, (path.stem, names)
            assert b"fer-utils @ git+https://github.com/" in archive.read("environment.yml"), path.stem  # the book
            assert {f"tests/exercise_{n}.py" for n in sections} == {n for n in names if n.startswith("tests/")}
            for number, (stub, _) in sections.items():
                test = archive.read(f"tests/exercise_{number}.py").decode()
                checker = ast.parse(stub).body[-1].value.func.attr
                assert f"_checks.{checker}(" in test and "_checks.untampered()" in test, (path.stem, number, test)


def test_assign_refuses_an_out_over_the_book(repo_root: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fer_book", "assign", "--out", str(repo_root / "notebooks")],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "book's own notebooks" in done.stderr, done.stderr[-2000:]


def test_assign_again_replaces_its_own_and_never_an_edited_assignment(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "fer_book", "assign", "--out", str(tmp_path), "--only", "01"]
    for _ in range(2):  # the second run replaces the first quietly: the same assignment
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    student = tmp_path / "01_dataset_tour" / "student" / "01_dataset_tour.ipynb"
    edited = student.read_text().replace("answer = None", "answer = 41  # my work")
    student.write_text(edited)
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 2 and "pass --force" in done.stderr, done.stderr[-2000:]
    assert student.read_text() == edited
    done = subprocess.run([*command, "--force"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    (backup,) = tmp_path.glob("01_dataset_tour.bak-*")
    assert (backup / "student" / student.name).read_text() == edited and "my work" not in student.read_text()


def processes_with(token: str) -> list[int]:
    """The pids of the processes whose command line holds `token`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            with contextlib.suppress(OSError):
                if token.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file of the checkout a submission could aim at (the package, the tooling, the chapters)."""
    digests = {}
    for folder in ("fer_utils", "fer_book", "notebooks"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digests[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


@pytest.fixture(scope="module")
def chapter_one_class(assigned: dict[str, Assigned], repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Chapter 1 graded as a class: the solutions, an untouched student notebook and the five attacks."""
    done = assigned["01_dataset_tour"]
    student = json.loads(done.student.read_text())
    solutions = json.loads((done.autograder.parent / done.student.name).read_text())
    tmp = tmp_path_factory.mktemp("class01")
    subs, token = tmp / "submissions", f"fer-attack-{secrets.token_hex(6)}"
    wrong = with_answers(student, {1: CONSTANT_PARSER, 2: WRONG_COUNT})
    write(subs, "a1_checkers", with_answers(wrong, {1: REPLACE_THE_CHECKERS + CONSTANT_PARSER}))
    write(subs, "a2_library", with_answers(wrong, {1: PATCH_THE_LIBRARY + CONSTANT_PARSER}))
    write(subs, "a3_made_up_clips", with_answers(wrong, {2: MADE_UP_CLIPS + WRONG_COUNT}))
    rewrite = f"CHECKOUT = {str(repo_root)!r}\nSUBMISSIONS = {str(subs)!r}\n" + REWRITE_ON_DISK
    write(subs, "a4_rewrite", with_answers(wrong, {1: rewrite + CONSTANT_PARSER}))
    write(subs, "a5_kill", with_answers(wrong, {2: f"TOKEN = {token!r}\n" + KILL_THE_PARENT + WRONG_COUNT}))
    write(subs, "kim", student)
    write(subs, "zoe", solutions)
    handed_in = {path: path.read_bytes() for path in subs.glob("*.ipynb")}
    checkout = tree_digest(repo_root)
    saved = {name: (repo_root / name).read_bytes() for name in checkout}
    start = time.monotonic()
    try:
        graded = run_grade(subs, "01", tmp / "grades.csv", done.autograder)
        deadline = time.monotonic() + 5
        while processes_with(token) and time.monotonic() < deadline:
            time.sleep(0.2)
        leftovers = processes_with(token)
        after = tree_digest(repo_root)
    finally:
        for name, data in saved.items():  # put back what a failing run let the attack rewrite (its mark only)
            path = repo_root / name
            if path.is_file() and b"rewritten by a4" in path.read_bytes() and b"rewritten by a4" not in data:
                path.write_bytes(data)
        for pid in processes_with(token):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return {
        "done": graded,
        "seconds": time.monotonic() - start,
        "out": tmp / "grades.csv",
        "subs": subs,
        "handed_in": handed_in,
        "checkout": (checkout, after),
        "leftovers": leftovers,
        "autograder": done.autograder,
    }


def test_otter_grades_chapter_one_and_every_attack_fails_in_the_sandbox(chapter_one_class: dict) -> None:
    from fer_utils.book.exercises import check_clip_count, check_ravdess_parser

    done = chapter_one_class["done"]
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    rows = rows_of(chapter_one_class["out"])
    assert len(rows) == 14, rows
    assert rows["zoe", 1] == rows["zoe", 2] == ("passed", "all tests passed")
    assert rows["kim", 1][0] == rows["kim", 2][0] == "unanswered"
    assert rows["kim", 2][1] == "Not answered yet: replace `None` with the number of neutral clips."
    for student in ("a1_checkers", "a2_library", "a3_made_up_clips", "a4_rewrite", "a5_kill"):
        for exercise in (1, 2):
            status, message = rows[student, exercise]
            assert status != "passed" and message, (student, exercise, status, message)
            assert "forged" not in message and "rewritten" not in message, (student, exercise, message)
    # the planted mistakes, each with its checker's message
    assert rows["a3_made_up_clips", 1][0] == "failed"
    scope: dict = {}
    exec(CONSTANT_PARSER, scope)  # the planted parser, judged here by the same checker
    assert rows["a3_made_up_clips", 1][1] == check_ravdess_parser(scope["parse_ravdess_name"]).message
    assert rows["a4_rewrite", 2] == ("failed", WRONG_COUNT_MESSAGE)
    made_up: dict = {}
    exec(MADE_UP_CLIPS, made_up)  # the made-up table: the checker refuses to count on it
    assert rows["a3_made_up_clips", 2] == ("failed", check_clip_count(1, made_up["clips"], "neutral").message)
    assert rows["a3_made_up_clips", 2][1].startswith("`clips` cannot be indexed again from /nowhere")
    # the patches in the kernel are caught
    assert rows["a1_checkers", 1][0] == rows["a2_library", 1][0] == "tampered", (
        rows["a1_checkers", 1],
        rows["a2_library", 1],
    )
    # nothing outside the sandbox changed, nothing it started outlived it
    assert {p: p.read_bytes() for p in chapter_one_class["subs"].glob("*.ipynb")} == chapter_one_class["handed_in"]
    before, after = chapter_one_class["checkout"]
    assert after == before, sorted(name for name in before if after.get(name) != before[name])
    assert chapter_one_class["leftovers"] == [], "a process a submission started outlived grading"


def test_a_teachers_column_is_kept_and_nothing_regraded(chapter_one_class: dict) -> None:
    out = chapter_one_class["out"]
    grades = pd.read_csv(out, keep_default_na=False)
    grades.insert(2, "teacher_note", ["see me" if s == "zoe" else "" for s in grades["student"]])
    grades.to_csv(out, index=False)
    start = time.monotonic()
    done = run_grade(chapter_one_class["subs"], "01", out, chapter_one_class["autograder"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert time.monotonic() - start < 60 and "graded " not in done.stderr, done.stderr  # nothing ran again
    assert "kept the grades of 7 notebook(s)" in done.stdout, done.stdout
    again = pd.read_csv(out, keep_default_na=False)
    assert list(again.columns[:3]) == ["student", "submission", "teacher_note"]
    assert list(again.loc[again["student"] == "zoe", "teacher_note"]) == ["see me", "see me"]
    assert again.drop(columns="teacher_note").equals(grades.drop(columns="teacher_note"))


def test_a_roster_given_as_out_is_refused_and_left_as_it_was(chapter_one_class: dict, tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("student,email\nzoe,zoe@example.org\nkim,kim@example.org\n")
    before = roster.read_bytes()
    done = run_grade(chapter_one_class["subs"], "01", roster, chapter_one_class["autograder"])
    assert done.returncode != 0 and "is not a grade sheet" in done.stderr, done.stderr[-2000:]
    assert roster.read_bytes() == before and not (tmp_path / "roster_summary.csv").exists()


def test_chapter_three_solutions_full_marks_and_planted_mistakes_with_their_checkers_messages(
    assigned: dict[str, Assigned], tmp_path: Path
) -> None:
    import keras
    from keras import layers

    from fer_utils.book import exercises

    done = assigned["03_architecture"]
    student = json.loads(done.student.read_text())
    subs = tmp_path / "submissions"
    write(subs, "ada", json.loads((done.autograder.parent / done.student.name).read_text()))
    write(subs, "bob", with_answers(student, PLANTED_03))
    expected = {}
    for number, text in PLANTED_03.items():
        scope = {"keras": keras, "layers": layers}
        exec(text, scope)  # the planted answer, run here for its checker's message
        function = next(value for name, value in scope.items() if callable(value) and name[0].islower())
        expected[number] = getattr(exercises, CHECKERS_03[number])(function).message
    graded = run_grade(subs, "03", tmp_path / "grades.csv", done.autograder)
    assert graded.returncode == 0, graded.stderr[-3000:]
    rows = rows_of(tmp_path / "grades.csv")
    assert [rows["ada", n][0] for n in (1, 2, 3)] == ["passed"] * 3, rows
    assert {n: rows["bob", n] for n in (1, 2, 3)} == {n: ("failed", expected[n]) for n in (1, 2, 3)}


def test_the_default_timeout_lets_the_slowest_chapter_finish_on_the_slower_machine() -> None:
    """Issue 28: the default must cover the slowest recorded chapter on the slower 2-core machine, with margin."""
    from fer_book.execute import GRADE_TIMEOUT_S

    record = json.loads((Path(__file__).resolve().parents[1] / "benchmarks/results/book_times.json").read_text())
    speedup = record["calibration"]["images_per_s"] / record["slow_machine_images_per_s"]
    slowest = max(record["seconds"].values()) * speedup
    assert 1.5 * slowest <= GRADE_TIMEOUT_S, f"slowest chapter projected at {slowest:.0f} s on the slower machine"


# What otter 7 writes for a failed doctest (trimmed from a real results.json): every example runs, each failure
# with its traceback.
OTTER_OUTPUT = """exercise_1 results:
    exercise_1 - 1 result:
        ❌ Test case failed
        Trying:
            assert (_fb := _checks.untampered()).ok, _fb.message
        Expecting nothing
        **********************************************************************
        Line 2, in exercise_1 0
        Failed example:
            assert (_fb := _checks.untampered()).ok, _fb.message
        Exception raised:
            Traceback (most recent call last):
              File "<doctest exercise_1 0[1]>", line 1, in <module>
                assert (_fb := _checks.untampered()).ok, _fb.message
            AssertionError: tampered: the notebook replaced fer_utils.data.corpora.index_ravdess; grading needs it
        Failed example:
            assert (_fb := _checks.check_ravdess_parser(parse_ravdess_name, clips)).ok, _fb.message
        Exception raised:
            Traceback (most recent call last):
            AssertionError: for 01-01-03-02-01-02-12.mp4 your `intensity` is 1
"""


def test_a_failed_tests_status_and_message_come_from_its_first_failure() -> None:
    from fer_book.grade import failure_message, read_results

    assert failure_message(OTTER_OUTPUT) == (
        "tampered",
        "tampered: the notebook replaced fer_utils.data.corpora.index_ravdess; grading needs it",
    )
    second = OTTER_OUTPUT.split("        Failed example:", 2)
    checker_only = second[0] + "        Failed example:" + second[2]
    assert failure_message(checker_only) == ("failed", "for 01-01-03-02-01-02-12.mp4 your `intensity` is 1")
    assert failure_message("    NameError: name 'answer' is not defined\n") == (
        "error",
        "NameError: name 'answer' is not defined",
    )
    tests = [
        {"name": "Public Tests", "output": "", "status": "passed"},
        {"name": "exercise_1", "score": 0.0, "max_score": 1.0, "output": OTTER_OUTPUT},
        {"name": "exercise_2", "score": 1.0, "max_score": 1.0, "output": "All test cases passed!"},
    ]
    grades = read_results(json.dumps({"tests": tests}).encode(), [1, 2, 3])
    assert grades[1][0] == "tampered" and grades[2] == ("passed", "all tests passed")
    assert grades[3] == ("error", "otter gave no result for this exercise")


def test_grading_without_bubblewrap_is_a_setup_error_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A machine without the sandbox's tools: one SetupError (a RuntimeError) naming them and the unsafe option."""
    from fer_book.grade_sandbox import UNSAFE_OPTION, Isolation, check_isolation
    from fer_utils.errors import SetupError

    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no bwrap, prlimit or setpriv on it
    with pytest.raises(SetupError, match=r"grading needs bwrap, prlimit, setpriv to run each submission") as raised:
        check_isolation(Isolation.BWRAP)
    assert isinstance(raised.value, RuntimeError) and UNSAFE_OPTION in str(raised.value)
    check_isolation(Isolation.NONE)  # grading without a sandbox asks for no tool
