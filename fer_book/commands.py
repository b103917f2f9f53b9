"""`python -m fer_book …`: the command line of the steps that make, check and grade the book.

Handlers import papermill, Sphinx or TensorFlow only when they run, so `--help` is instant, and the steps of
fer_book.steps (`setup`, `book`, `test` …, which make's targets call) run with the standard library alone.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from fer_book import steps
from fer_book.execute import GRADE_TIMEOUT_S
from fer_book.toc import repo_root
from fer_utils.cli import run_handler

# Steps whose module parses its own arguments: `python -m fer_book prose …` is `python -m fer_book.prose …`.
MODULE_STEPS = {
    "architecture": ("fer_book.architecture", "write ARCHITECTURE.md's module tables from the docstrings (--check)"),
    "assign": ("fer_book.assign", "write each chapter as an otter-grader assignment: student notebook, autograder zip"),
    "teaching": ("fer_book.teaching", "write the teacher's page's exercise list and session plans (--check)"),
    "pretrain": ("fer_book.pretrain", "train the package's pretrained model on a FER-2013 folder, with its card"),
    "prose": ("fer_book.prose", "measure each executed chapter's prose: words, sentences, typed numbers (exit 1 over)"),
    "scorecard": ("fer_book.scorecard", "score the paper's claims on an executed stage into its scorecard page"),
}


def positive_seconds(text: str) -> float:
    """A time limit in seconds: a finite number above 0 (0, negatives, nan and inf are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number of seconds above 0, e.g. 300")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The parser of the book's steps (execute, build, links, student, and those of MODULE_STEPS)."""
    parser = argparse.ArgumentParser(
        prog="python -m fer_book", description="Execute the book's notebooks and build the HTML book."
    )
    sub = parser.add_subparsers(dest="book_command", required=True, metavar="STEP")
    for name, step in steps.STEPS.items():
        needs = f" (after {', '.join(step.needs)})" if step.needs else ""
        command = sub.add_parser(name, help=f"{step.about}{needs}; `make {name}` runs the same")
        command.add_argument("--jobs", type=int, default=steps.JOBS, help="chapters and test files run side by side")
        command.add_argument(
            "--timeout", type=int, default=steps.CELL_TIMEOUT_S, help="seconds one cell may run (default %(default)s)"
        )
        command.add_argument(
            "--param", action="append", default=[], metavar="NAME=VALUE", help="a chapter parameter (see `execute`)"
        )
        command.add_argument("--venv", type=Path, default=Path(steps.VENV), help="the virtual environment's folder")
        command.add_argument(
            "--every-cell", action="store_true", help="execute the experiment exercises too (see `execute`)"
        )
        command.add_argument("--dry-run", action="store_true", help="print the commands the step would run now")
        command.set_defaults(handler=partial(run_step, name))

    execute = sub.add_parser("execute", help="stage the book and execute every notebook with papermill")
    execute.add_argument("--out", type=Path, required=True, help="the stage folder to write")
    execute.add_argument("--only", nargs="+", metavar="NN", help="execute only notebooks starting with NN")
    execute.add_argument(
        "--timeout", type=int, default=steps.CELL_TIMEOUT_S, help="seconds allowed per cell (default %(default)s)"
    )
    execute.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a chapter parameter in every notebook that declares it, e.g. "
        "--param DATASET=ravdess --param DATA_DIR=/data/ravdess (repeatable)",
    )
    execute.add_argument(
        "--jobs", type=int, default=1, metavar="N", help="chapters run side by side (default 1; shared work made once)"
    )
    execute.add_argument(
        "--every-cell",
        action="store_true",
        help="run the cells the book leaves to the reader too (the experiment exercises): the run of record of "
        "benchmarks/results/book_times.json",
    )
    execute.set_defaults(handler=run_execute)

    build = sub.add_parser("build", help="build an executed stage into OUT/html (warnings are errors)")
    build.add_argument("--stage", type=Path, required=True, help="a folder written by `python -m fer_book execute`")
    build.add_argument("--out", type=Path, required=True, help="output folder; the site goes to OUT/html")
    build.add_argument(
        "--demo-model", type=Path, help="the demo page's .keras model (default: a chapter's, else the reference run)"
    )
    build.add_argument("--demo-about", type=Path, help="JSON describing it: trained_on, accuracy, license")
    build.set_defaults(handler=run_build)

    links = sub.add_parser("links", help="point badges, install cells and README at _config.yml's repository")
    links.add_argument("--check", action="store_true", help="change nothing; exit 1 listing what disagrees")
    links.set_defaults(handler=run_links)

    release = sub.add_parser("release", help="check that the version, _config.yml, install cells and changelog agree")
    release.add_argument(
        "--check", action="store_true", required=True, help="change nothing; exit 1 listing each disagreement"
    )
    release.add_argument("--tag", default=None, help="the tag being published (e.g. $GITHUB_REF_NAME): must match too")
    release.set_defaults(handler=run_release)

    grade = sub.add_parser("grade", help="grade submitted notebooks of one chapter with otter, each in a sandbox")
    grade.add_argument("submissions", type=Path, help="folder of submitted notebooks (searched recursively)")
    grade.add_argument("--chapter", required=True, metavar="NN", help="the chapter they are, e.g. 01")
    grade.add_argument("--out", type=Path, required=True, help="grades CSV (the summary goes beside it)")
    grade.add_argument("--autograder", type=Path, help="the chapter's autograder zip (default: made as `assign` does)")
    grade.add_argument(
        "--timeout", type=positive_seconds, default=GRADE_TIMEOUT_S, help="seconds per notebook (default %(default)s)"
    )
    grade.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="grade without bubblewrap's sandbox: a submission can then read and change the checkout, the other "
        "submissions and the grades",
    )
    grade.set_defaults(handler=run_grade)

    for step, (_, about) in MODULE_STEPS.items():
        sub.add_parser(step, help=f"{about}; `{step} --help` lists its options")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` and run the chosen step (a FerError becomes a one-line message and exit code 2)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in MODULE_STEPS:
        return int(importlib.import_module(MODULE_STEPS[argv[0]][0]).main(argv[1:]) or 0)
    return run_handler(build_parser().parse_args(argv))


def run_step(name: str, args: argparse.Namespace) -> int:
    """Run one of the book's steps (fer_book.steps) with what it needs first."""
    root = repo_root()
    options = steps.Options(root, root / args.venv, args.jobs, args.timeout, tuple(args.param), args.every_cell)
    return steps.run_step(name, options, dry_run=args.dry_run)


def run_execute(args: argparse.Namespace) -> int:
    """Execute the book's notebooks into the stage and print each one's wall time."""
    from fer_book.execute import execute_book, parse_parameter

    parameters = dict(parse_parameter(text) for text in args.param)
    start = time.perf_counter()
    runs = execute_book(
        args.out,
        only=args.only,
        timeout=args.timeout,
        parameters=parameters,
        jobs=args.jobs,
        every_cell=args.every_cell,
    )
    print(
        f"executed {len(runs)} notebooks in {time.perf_counter() - start:.0f} s wall with {args.jobs} job(s), "
        f"{sum(r.seconds for r in runs):.0f} s summed over chapters (times in {args.out / 'execution_times.json'})"
    )
    return 0


def run_build(args: argparse.Namespace) -> int:
    """Build the HTML book from an executed stage."""
    import json

    from fer_book.build import build_book
    from fer_utils.book.artifacts import default_cache

    start = time.perf_counter()
    about = json.loads(args.demo_about.read_text(encoding="utf-8")) if args.demo_about else None
    index = build_book(args.stage, args.out, default_cache(), args.demo_model, about)
    print(f"built {index} in {time.perf_counter() - start:.0f} s")
    return 0


def run_links(args: argparse.Namespace) -> int:
    """Rewrite (or with --check, list) every link that disagrees with _config.yml's repository."""
    from fer_book.links import sync_repository

    stale = sync_repository(repo_root(), check=args.check)
    verb = "disagree with" if args.check else "rewritten from"
    print(f"{len(stale)} file(s) {verb} _config.yml's repository" + "".join(f"\n  {name}" for name in stale))
    return 1 if args.check and stale else 0


def run_release(args: argparse.Namespace) -> int:
    """Print whether the book is ready to tag (exit 0) or each disagreement (exit 1)."""
    from fer_book.links import package_version, release_problems

    problems = release_problems(repo_root(), tag=args.tag)
    tag = f"v{package_version(repo_root())}"
    if not problems:
        print(f"ready to release {tag}: _config.yml, fer_utils.__version__, the install cells and CHANGELOG.md agree")
        return 0
    print(f"not ready to release {tag}: {len(problems)} disagreement(s)" + "".join(f"\n  {p}" for p in problems))
    return 1


def run_grade(args: argparse.Namespace) -> int:
    """Grade every submitted notebook; write the grades and their summary; print passed/total per student."""
    from fer_book.grade import grade_folder
    from fer_book.grade_sandbox import Isolation
    from fer_book.grade_sheet import summary_path

    start = time.perf_counter()
    isolation = Isolation.NONE if args.unsafe_no_sandbox else Isolation.BWRAP
    progress = partial(print, file=sys.stderr, flush=True)
    grades, summary, kept = grade_folder(
        args.submissions,
        args.chapter,
        args.out,
        autograder=args.autograder,
        timeout_s=args.timeout,
        isolation=isolation,
        progress=progress,
    )
    for row in summary.itertuples():
        print(f"{row.submission:<32} {row.chapter:<28} {row.passed}/{row.total}")
    counts, notebooks = grades["status"].value_counts(), grades["submission"].nunique()
    print(
        f"graded {notebooks} notebook(s), {len(grades)} exercise(s) in {time.perf_counter() - start:.0f} s: "
        + ", ".join(f"{n} {status}" for status, n in counts.items())
        + f"; grades in {args.out}, summary in {summary_path(args.out)}"
        + (f"; kept the grades of {kept} notebook(s) already in {args.out}" if kept else "")
    )
    return 0
