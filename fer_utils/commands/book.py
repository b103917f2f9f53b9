"""`python -m fer_utils book …`: execute the notebooks, build the HTML book, write the student edition."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `book` command group (execute, build, student)."""
    book = subparsers.add_parser("book", help="execute the notebooks and build the HTML book")
    sub = book.add_subparsers(dest="book_command", required=True, metavar="STEP")

    execute = sub.add_parser("execute", help="stage the book and execute every notebook with papermill")
    execute.add_argument("--out", type=Path, required=True, help="the stage folder to write")
    execute.add_argument("--only", nargs="+", metavar="NN", help="execute only notebooks starting with NN")
    execute.add_argument("--timeout", type=int, default=900, help="seconds allowed per cell (default 900)")
    execute.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                         help="set a chapter parameter in every notebook that declares it, e.g. "
                              "--param DATASET=ravdess --param DATA_DIR=/data/ravdess (repeatable)")
    execute.set_defaults(handler=run_execute)

    build = sub.add_parser("build", help="build an executed stage into OUT/html (warnings are errors)")
    build.add_argument("--stage", type=Path, required=True, help="a folder written by `book execute`")
    build.add_argument("--out", type=Path, required=True, help="output folder; the site goes to OUT/html")
    build.set_defaults(handler=run_build)

    student = sub.add_parser("student", help="write the notebooks without their solution cells")
    student.add_argument("--out", type=Path, required=True, help="folder for the student edition")
    student.set_defaults(handler=run_student)


def run_execute(args: argparse.Namespace) -> int:
    """Execute the book's notebooks into the stage and print each one's wall time."""
    from fer_utils.book import execute_book, parse_parameter

    parameters = dict(parse_parameter(text) for text in args.param)
    runs = execute_book(args.out, only=args.only, timeout=args.timeout, parameters=parameters)
    print(f"executed {len(runs)} notebooks in {sum(r.seconds for r in runs):.0f} s "
          f"(times in {args.out / 'execution_times.json'})")
    return 0


def run_build(args: argparse.Namespace) -> int:
    """Build the HTML book from an executed stage."""
    import time

    from fer_utils.artifacts import default_cache
    from fer_utils.book import build_book

    start = time.perf_counter()
    index = build_book(args.stage, args.out, default_cache())
    print(f"built {index} in {time.perf_counter() - start:.0f} s")
    return 0


def run_student(args: argparse.Namespace) -> int:
    """Write the student edition (solution cells removed, outputs cleared)."""
    from fer_utils.book import write_student_edition

    written = write_student_edition(args.out)
    print(f"wrote {len(written)} student notebooks under {args.out}")
    return 0
