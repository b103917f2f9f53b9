"""The two commands everywhere: each make target is `python -m fer_book <step>`, the steps written once
(fer_book/steps.py), runnable by a Python with nothing installed (Windows has no make)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from fer_book import steps

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine: the Makefile cannot run here")
def test_every_make_target_is_the_fer_book_step_of_its_name() -> None:
    """`make -n` prints what make would run: for every step, fer_book's step of the same name, with make's
    variables as its options."""
    make = ["make", "--no-print-directory", "-n", "-C", str(REPO), f"PYTHON={sys.executable}"]
    for name in [*steps.STEPS, "install"]:
        printed = subprocess.run([*make, name], capture_output=True, text=True, check=True).stdout.split()
        assert printed == [sys.executable, "-m", "fer_book", "setup" if name == "install" else name], printed
    options = ["JOBS=1", "CELL_TIMEOUT=60", "PARAMS=DATASET=folder DATA_DIR=/d", "EVERY_CELL=1"]
    printed = subprocess.run([*make, "book", *options], capture_output=True, text=True, check=True).stdout.split()
    assert printed[3:] == [
        "book",
        "--jobs",
        "1",
        "--timeout",
        "60",
        "--param",
        "DATASET=folder",
        "--param",
        "DATA_DIR=/d",
        "--every-cell",
    ]
    dry = subprocess.run(
        [sys.executable, "-m", "fer_book", "book", "--every-cell", "--dry-run"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    executed = [line for line in dry.stdout.splitlines() if " -m fer_book execute " in line]
    assert len(executed) == 1 and executed[0].endswith("--every-cell"), dry.stdout


def test_the_steps_run_on_a_python_with_nothing_installed(tmp_path: Path) -> None:
    """`python -S` (no site-packages: no third-party package importable) plans `test` for a fresh environment:
    the venv made by the running Python, the pins, the sample, lint, the book, then the suite, in that order."""
    fresh = tmp_path / "venv"
    command = [sys.executable, "-S", "-m", "fer_book", "test", "--dry-run", "--venv", str(fresh), "--jobs", "3"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("==")] == [
        "== setup",
        "== sample",
        "== lint",
        "== book",
        "== test",
    ]
    python = str(steps.venv_bin(fresh) / "python")
    assert f"$ {sys.executable} -m venv {fresh}" in lines
    assert f"$ {python} -m pip install --quiet -r requirements.txt" in lines
    assert any(line.startswith(f"$ {python} -m fer_book execute --out _build/stage --jobs 3") for line in lines)
    assert lines[-1] == f"$ {python} -m pytest -n 4 --dist worksteal --durations=40"  # a worker more than jobs
    assert not fresh.exists(), "a dry run makes nothing"


def environment_root(tmp_path: Path) -> steps.Options:
    """A folder with the files the environment is made from, and a real (pip-less) virtual environment."""
    root = tmp_path / "root"
    root.mkdir()
    for name in steps.ENVIRONMENT_FILES:
        shutil.copy(REPO / name, root / name)
    venv.create(root / steps.VENV, with_pip=False)
    return steps.Options(root, root / steps.VENV)


def test_setup_installs_again_only_when_a_file_it_installs_from_changes(tmp_path: Path) -> None:
    options = environment_root(tmp_path)
    plan = steps.setup_plan(options)
    assert [options.python, "-m", "pip", "install", "--quiet", "-r", steps.REQUIREMENTS] in plan.commands
    plan.done[0].write_text(plan.done[1], encoding="utf-8")  # what a successful setup writes
    assert steps.setup_plan(options).commands == []
    with (options.root / steps.PEER_REQUIREMENTS).open("a", encoding="utf-8") as peer:
        peer.write("# changed\n")
    assert steps.setup_plan(options).commands == plan.commands


def test_a_failing_command_stops_its_step_with_its_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`lint` in an environment without ruff: ruff's command fails, nothing after it runs, its code is returned."""
    options = environment_root(tmp_path)
    stamp = options.venv / steps.STAMP
    stamp.write_text(steps.environment_digest(options.root), encoding="utf-8")  # setup is up to date
    assert steps.run_step("lint", options) == 1
    out, err = capsys.readouterr()
    assert "== setup: " in out and "(up to date)" in out
    assert f"error: step lint failed: `{options.python} -m ruff check .` exited 1" in err
    assert "-m ruff format" not in out, "the step stopped at its failing command"
