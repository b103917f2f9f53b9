"""A class graded together with five hostile submissions of chapter 1, each on a real kernel.

Every attack is one that broke the grader before: no attack may get an exercise `passed`, the classmate's
notebook and the checkout must be byte-identical afterwards, the honest submission passes, nothing a
submission started outlives grading, and a grader killed after its first submission keeps that grade.
These tests need bubblewrap (`bwrap`): where it is missing they fail, they do not skip.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from test_grade import answered, chapter_notebook, run_grade, solutions, with_exercise_cell, write

from fer_book.student import strip_solutions

PARSER_CALL = "exercises.check_ravdess_parser(parse_ravdess_name, clips)"
COUNT_CALL = 'exercises.check_clip_count(answer, clips, "neutral")'
# A parser that returns one constant, and a wrong count: every attack answers so, and must not pass.
CONSTANT_PARSER = (
    "def parse_ravdess_name(file_name):\n"
    '    return {"emotion": "happy", "intensity": 1, "statement": 1, "repetition": 1, "actor": 1}\n\n\n'
)
WRONG_COUNT = "answer = 1\n"

# 1. The grader's object in the kernel is rewritten: its checkers report success, its calls print a verdict.
REPLACE_THE_GRADERS_OBJECT = """
import json
from fer_utils.book import exercises as _ex


def _yes(*args, **kwargs):
    return _ex.Feedback(True, "forged by a1")


for _name, _obj in list(globals().items()):
    if not _name.startswith("__fer"):
        continue
    _checkers = getattr(_obj, "checkers", None)
    if isinstance(_checkers, dict):
        for _key in _checkers:
            _checkers[_key] = _yes
    _nonce = getattr(_obj, "nonce", "")

    def _forged(number, *args, _nonce=_nonce, **kwargs):
        verdict = {"exercise": number, "status": "passed", "message": "forged by a1"}
        print("FER-GRADE", _nonce, json.dumps(verdict))

    for _attr in [a for a in dir(_obj) if not a.startswith("_")]:
        if callable(getattr(_obj, _attr, None)):
            try:
                setattr(_obj, _attr, _forged)
            except Exception:
                pass
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

# 4. The checkers rewritten on disk for every later submission, and the classmates' notebooks overwritten
# (found through the parent's command line, and by the path a student could guess).
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
try:
    _args = pathlib.Path(f"/proc/{os.getppid()}/cmdline").read_bytes().split(b"\\0")
    _folders |= {pathlib.Path(a.decode()) for a in _args if a and a != b"/" and pathlib.Path(a.decode()).is_dir()}
except OSError as exc:
    print("cannot read the parent's command line", exc)
for _folder in _folders:
    for _notebook in [*_folder.glob("*.ipynb"), *_folder.glob("*/*.ipynb")]:
        if _notebook.name != "a4_rewrite.ipynb":
            try:
                _notebook.write_text('{"nbformat": 4, "overwritten": "by a4"}')
            except OSError as exc:
                print("cannot overwrite", _notebook, exc)
"""

# 5. A detached process that would outlive grading, then the parent killed.
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


def processes_with(token: str) -> list[int]:
    """The pids of the processes whose command line holds `token`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                if token.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def still_running(token: str, grace_s: float = 5.0) -> list[int]:
    """The processes holding `token` still alive after up to `grace_s` seconds (a SIGKILL takes a moment)."""
    deadline = time.monotonic() + grace_s
    while (found := processes_with(token)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def end(pids: list[int]) -> None:
    """Kill the processes this test's submissions started (by pid), if any outlived grading."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file of the checkout that a submission could aim at (the package, the tooling, the chapters)."""
    digests = {}
    for folder in ("fer_utils", "fer_book", "notebooks"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digests[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def restore(root: Path, saved: dict[str, bytes]) -> None:
    """Put back any checkout file a failing run let an attack rewrite (so that one failure does not cascade)."""
    for name, data in saved.items():
        path = root / name
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)


@pytest.fixture(scope="module")
def chapter_one(repo_root: Path) -> tuple[dict, dict[int, str]]:
    """(chapter 1's student edition, its solutions by exercise)."""
    original = chapter_notebook(repo_root)
    return strip_solutions(original), solutions(original)


def test_five_attacks_graded_with_an_honest_submission(
    chapter_one: tuple[dict, dict[int, str]], repo_root: Path, tmp_path: Path
) -> None:
    edition, solved = chapter_one
    subs = tmp_path / "submissions"
    token = f"fer-attack-{secrets.token_hex(6)}"
    constant = with_exercise_cell(edition, 1, lambda src: CONSTANT_PARSER + PARSER_CALL)
    wrong = with_exercise_cell(constant, 2, lambda src: WRONG_COUNT + COUNT_CALL)

    write(subs, "a1_grader_object", with_exercise_cell(wrong, 1, lambda src: REPLACE_THE_GRADERS_OBJECT + src))
    write(subs, "a2_library", with_exercise_cell(wrong, 1, lambda src: PATCH_THE_LIBRARY + src))
    write(subs, "a3_made_up_clips", with_exercise_cell(wrong, 2, lambda src: MADE_UP_CLIPS + src))
    rewrite = f"CHECKOUT = {str(repo_root)!r}\nSUBMISSIONS = {str(subs)!r}\n" + REWRITE_ON_DISK
    write(subs, "a4_rewrite", with_exercise_cell(wrong, 1, lambda src: rewrite + src))
    write(subs, "a5_kill", with_exercise_cell(wrong, 2, lambda src: f"TOKEN = {token!r}\n" + KILL_THE_PARENT + src))
    kim = write(subs, "kim", edition)  # the classmate: nothing answered yet, graded after the attacks
    zoe = write(subs, "zoe", answered(edition, solved))  # honest, graded last
    handed_in = {path: path.read_bytes() for path in subs.glob("*.ipynb")}
    checkout = tree_digest(repo_root)
    saved = {name: (repo_root / name).read_bytes() for name in checkout}

    try:
        done = run_grade(subs, tmp_path / "grades.csv", timeout=300)
        leftovers = still_running(token)
        after = tree_digest(repo_root)
    finally:
        restore(repo_root, saved)
        end(processes_with(token))

    assert done.returncode == 0, (done.returncode, done.stdout[-2000:], done.stderr[-3000:])
    grades = pd.read_csv(tmp_path / "grades.csv", keep_default_na=False)
    rows = {(r.student, r.exercise): (r.status, r.message) for r in grades.itertuples()}
    assert len(rows) == 14, rows
    for student in ("a1_grader_object", "a2_library", "a3_made_up_clips", "a4_rewrite", "a5_kill"):
        for exercise in (1, 2):
            status, message = rows[student, exercise]
            assert status in ("failed", "tampered") and message, (student, exercise, status, message)
            assert "forged" not in message and "rewritten" not in message, (student, exercise, message)
    assert rows["a3_made_up_clips", 2] == (
        "failed",
        "1 is too low for the number of neutral clips. Look again at how it is computed.",
    )
    assert rows["kim", 1][0] == rows["kim", 2][0] == "unanswered"
    assert rows["kim", 2][1] == "Not answered yet: replace `None` with the number of neutral clips."
    assert rows["zoe", 1][0] == rows["zoe", 2][0] == "passed"
    assert rows["zoe", 1][1].startswith("your parser reads all") and rows["zoe", 2][1].startswith("the number of")
    assert {path: path.read_bytes() for path in subs.glob("*.ipynb")} == handed_in
    assert kim.read_bytes() == handed_in[kim] and zoe.read_bytes() == handed_in[zoe]
    assert after == checkout, sorted(name for name in checkout if after.get(name) != checkout[name])
    assert leftovers == [], "a process a submission started outlived grading"


def test_a_grader_killed_after_its_first_submission_keeps_that_grade(
    chapter_one: tuple[dict, dict[int, str]], tmp_path: Path
) -> None:
    edition, solved = chapter_one
    subs = tmp_path / "submissions"
    token = f"fer-sleeper-{secrets.token_hex(6)}"
    write(subs, "ada", answered(edition, solved))
    sleeper = (
        f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', 'import time; time.sleep(300)', {token!r}])\n"
    )
    write(subs, "bob", with_exercise_cell(edition, 1, lambda src: sleeper + src))
    out = tmp_path / "grades.csv"
    command = [sys.executable, "-m", "fer_book", "grade", str(subs), "--out", str(out), "--timeout", "300"]
    grader = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not processes_with(token) and grader.poll() is None:
            time.sleep(0.5)  # ada graded, bob's notebook running
        assert grader.poll() is None and processes_with(token), "bob's notebook never started"
        first = pd.read_csv(out, keep_default_na=False)  # ada's grades are on disk while bob runs
        grader.send_signal(signal.SIGKILL)
        grader.wait()
        leftovers = still_running(token)
    finally:
        if grader.poll() is None:
            grader.kill()
        end(processes_with(token))
    assert list(first["student"]) == ["ada", "ada"] and list(first["status"]) == ["passed", "passed"]
    kept = out.read_bytes()
    assert pd.read_csv(out, keep_default_na=False).equals(first)
    assert leftovers == [], "the killed grader's sandbox outlived it"

    # a rerun grades only what is missing: ada's rows are kept as they were, bob's notebook runs out of time
    done = run_grade(subs, out, timeout=20)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "kept the grades of 1 notebook(s) already in" in done.stdout, done.stdout
    grades = pd.read_csv(out, keep_default_na=False)
    assert grades[grades["student"] == "ada"].reset_index(drop=True).equals(first)
    assert list(grades.loc[grades["student"] == "bob", "status"]) == ["timeout", "timeout"]
    assert kept.splitlines()[1:3] == out.read_bytes().splitlines()[1:3]  # ada's rows byte for byte
    end(processes_with(token))
