"""The book's steps, defined once: `python -m fer_book setup|book|test` runs them, and so does make (its targets call
this). Standard library only: it runs with any supported Python before the environment exists (Windows has no make).

`setup` makes `.venv` and installs the pins and the package; `book` generates the sample, executes every chapter
and builds `_build/html`; `test` runs what CI runs. A step runs the steps it needs first, each once.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from fer_utils import python_problem

REQUIREMENTS = "requirements.txt"
PEER_REQUIREMENTS = "requirements-peer.txt"  # the peer's package, installed without its dependencies
VENV = ".venv"
SAMPLE = "data/sample"
STAGE = "_build/stage"
# The environment is made again when one of these changes (their digest is kept in the venv's stamp file).
ENVIRONMENT_FILES = (REQUIREMENTS, PEER_REQUIREMENTS, "pyproject.toml")
STAMP = ".installed"
# Chapters executed, and test files run, side by side (the CI machine has 2 cores).
JOBS = 2
# Seconds one cell may run: chapter 7's training cell (nine runs, two chapters sharing 2 cores) took about 800 s
# on a fast 2-core machine; 900 left no margin for a slower one.
CELL_TIMEOUT_S = 1800


class Options(NamedTuple):
    """Where the steps run and what the user chose (make's JOBS, CELL_TIMEOUT, PARAMS and EVERY_CELL)."""

    root: Path
    venv: Path
    jobs: int = JOBS
    timeout: int = CELL_TIMEOUT_S
    params: tuple[str, ...] = ()
    every_cell: bool = False  # run the experiment exercises too: the run of record of the chapters' times

    @property
    def python(self) -> str:
        """The virtual environment's Python (its `bin/`, or `Scripts\\` on Windows)."""
        return str(venv_bin(self.venv) / "python")


class Plan(NamedTuple):
    """What a step runs now: its commands, then `done` (a file and its text) written once they all succeed."""

    commands: list[list[str]]
    done: tuple[Path, str] | None = None


class Step(NamedTuple):
    """A step: what it does, the steps it needs first, and its plan."""

    about: str
    needs: tuple[str, ...]
    plan: Callable[[Options], Plan]


def venv_bin(venv: Path) -> Path:
    """The folder of a virtual environment's programs."""
    return venv / ("Scripts" if os.name == "nt" else "bin")


def step_environment(root: Path) -> dict[str, str]:
    """The environment the steps run in: these defaults, unless the caller's environment sets them."""
    return {
        "FER_CACHE": str(root / "_cache"),  # where the notebooks cache what they make (fer_utils/book/artifacts.py)
        "TF_CPP_MIN_LOG_LEVEL": "3",  # TensorFlow's C++ runtime logs only FATAL: its spurious ERRORs would show
        "PYTHONHASHSEED": "0",
        **os.environ,
    }


def environment_digest(root: Path) -> str:
    """A digest of the files the environment is made from."""
    digest = hashlib.sha256()
    for name in ENVIRONMENT_FILES:
        digest.update((root / name).read_bytes())
    return digest.hexdigest()


def setup_plan(o: Options) -> Plan:
    """Make the venv if missing; install the pins, the peer (no dependencies), the package and the kernel when stale."""
    made = any(Path(o.python + suffix).exists() for suffix in ("", ".exe"))
    make_venv = [] if made else [[sys.executable, "-m", "venv", str(o.venv)]]
    stamp, digest = o.venv / STAMP, environment_digest(o.root)
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == digest:
        return Plan(make_venv)
    pip = [o.python, "-m", "pip", "install", "--quiet"]
    return Plan(
        [
            *make_venv,
            [*pip, "--upgrade", "pip"],
            [*pip, "-r", REQUIREMENTS],
            [*pip, "--no-deps", "-r", PEER_REQUIREMENTS],
            [*pip, "--no-deps", "--no-build-isolation", "-e", "."],
            [o.python, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"],
        ],
        (stamp, digest),
    )


def sample_plan(o: Options) -> Plan:
    """Generate the embedded synthetic sample, unless complete."""
    complete = o.root / SAMPLE / ".complete"
    if complete.is_file():
        return Plan([])
    return Plan([[o.python, "-m", "fer_utils", "sample", "--out", SAMPLE]], (complete, ""))


def lint_plan(o: Options) -> Plan:
    """ruff over the package, the tooling, the tests and the chapters; actionlint over the workflows."""
    workflows = sorted(p.relative_to(o.root).as_posix() for p in (o.root / ".github" / "workflows").glob("*.yml"))
    return Plan(
        [
            [o.python, "-m", "ruff", "check", "."],
            [o.python, "-m", "ruff", "format", "--check", "."],
            [str(venv_bin(o.venv) / "actionlint"), *workflows],
        ]
    )


def book_plan(o: Options) -> Plan:
    """Execute every chapter between two measurements of the machine's speed (fer_book/calibrate.py), then build."""
    calibrate = [o.python, "fer_book/calibrate.py", "--out", f"{STAGE}/calibration.json"]
    params = [arg for param in o.params for arg in ("--param", param)]
    execute = ["--out", STAGE, "--jobs", str(o.jobs), "--timeout", str(o.timeout), *params]
    execute += ["--every-cell"] if o.every_cell else []
    return Plan(
        [
            calibrate,
            [o.python, "-m", "fer_book", "execute", *execute],
            [*calibrate, "--append"],
            [o.python, "-m", "fer_book", "build", "--stage", STAGE, "--out", "_build"],
        ]
    )


def pytest_plan(*args: str) -> Callable[[Options], Plan]:
    """A plan that runs pytest with `args` (`{workers}` replaced by the chosen number of jobs, plus one: the pins'
    and the Colab test's downloads wait on the network for minutes, measured 5 to 12 on 2 cores, a core left idle)."""
    return lambda o: Plan([[o.python, "-m", "pytest", *(arg.format(workers=o.jobs + 1) for arg in args)]])


def release_plan(o: Options) -> Plan:
    """Check that the version, _config.yml, the install cells and CHANGELOG.md agree (before tagging)."""
    return Plan([[o.python, "-m", "fer_book", "release", "--check"]])


STEPS: dict[str, Step] = {
    "setup": Step(
        "make .venv and install the pins and the package (again when a requirements file changes)", (), setup_plan
    ),
    "sample": Step("generate the embedded synthetic sample into data/sample", ("setup",), sample_plan),
    "lint": Step("ruff check, ruff format --check, actionlint", ("setup",), lint_plan),
    "book": Step("execute every chapter with papermill and build _build/html", ("sample",), book_plan),
    "unit-test": Step(
        "the tests that need no built book",
        ("sample",),
        pytest_plan("-n", "{workers}", "--dist", "worksteal", "-m", "not book"),
    ),
    "book-test": Step("the built book's tests", ("book",), pytest_plan("-m", "book")),
    "test": Step(
        "lint, the book, then the whole test suite: what CI runs",
        ("sample", "lint", "book"),
        pytest_plan("-n", "{workers}", "--dist", "worksteal", "--durations=40"),
    ),
    "release-check": Step(
        "the version, _config.yml, the install cells and CHANGELOG.md agree", ("setup",), release_plan
    ),
}


def step_order(name: str) -> list[str]:
    """`name` and every step it needs, needs first, each once."""
    order: list[str] = []
    for need in STEPS[name].needs:
        order += [step for step in step_order(need) if step not in order]
    return [*order, name]


def run_step(name: str, options: Options, dry_run: bool = False) -> int:
    """Run `name` after what it needs, printing each command; the first failing command's exit code, else 0."""
    problem = python_problem(sys.version_info)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    env = step_environment(options.root)
    for step in step_order(name):
        plan = STEPS[step].plan(options)
        print(f"== {step}: {STEPS[step].about}" + ("" if plan.commands else " (up to date)"), flush=True)
        for command in plan.commands:
            print("$ " + shlex.join(command), flush=True)
            code = 0 if dry_run else subprocess.run(command, cwd=options.root, env=env).returncode
            if code:
                print(f"error: step {step} failed: `{shlex.join(command)}` exited {code}", file=sys.stderr)
                return code
        if plan.done and not dry_run:
            plan.done[0].parent.mkdir(parents=True, exist_ok=True)
            plan.done[0].write_text(plan.done[1], encoding="utf-8")
    return 0
