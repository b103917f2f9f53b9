"""`python -m fer_book assign --out DIR [--only NN …]`: each chapter as an otter-grader assignment.

Each chapter's `### Exercise N` sections (a stub and a `solution` cell ending with one `exercises.check_…`
call) become otter questions, and the questions graded by hand (an experiment's prediction and explanation, the
chapter's discussion prompt) carry their answer keys as solutions (`manual_questions.toml`); `otter assign`
writes `student/` without them and `autograder/<chapter>-autograder.zip`.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import tempfile
import time
import tomllib
from pathlib import Path
from typing import NamedTuple

from fer_book.toc import repo_root, toc_notebooks
from fer_utils.cli import run_handler
from fer_utils.errors import BookError
from fer_utils.interrupts import raise_on_signals
from fer_utils.storage.atomic import move
from fer_utils.storage.outputs import check_place

EXERCISE_HEADING = re.compile(r"^###\s+Exercise\s+(\d+)")
LEADING_COMMENTS = re.compile(r"^(?:\s*<!--.*?-->)+\s*", re.DOTALL)
SOLUTION_TAG = "solution"
CHECKERS = "exercises"  # how the chapters name fer_utils.book.exercises in their checker calls
QUESTION_POINTS = 1
MANUAL_POINTS = 2  # a prediction or an explanation, graded by hand with its rubric
EXPERIMENT_CHECKER = "check_experiment"  # an experiment exercise: framed by a prediction and an explanation
BACKUP_MARK = ".bak-"
MANUAL_FILE = Path(__file__).with_name("manual_questions.toml")  # the discussion prompts and the answer keys
NEXT_HEADING = "## What's next"  # the chapter's discussion question goes before it


class Exercise(NamedTuple):
    """One exercise: heading cell, stub and solution (without their checker call), and the call."""

    number: int
    heading: dict
    stub: str
    solution: str
    call: str


def source(cell: dict) -> str:
    """A cell's source as one string."""
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else text


def is_solution(cell: dict) -> bool:
    """Whether a cell is tagged `solution` (the book hides it behind a toggle)."""
    return SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def heading_number(cell: dict) -> int | None:
    """N of a markdown cell `### Exercise N` (after any HTML comments otter puts first), else None."""
    text = LEADING_COMMENTS.sub("", source(cell).strip())
    found = EXERCISE_HEADING.match(text) if cell.get("cell_type") == "markdown" else None
    return int(found.group(1)) if found else None


def title_of(notebook: dict) -> str:
    """A notebook's title: the first line of its first cell (`# 1. A tour of the datasets`)."""
    cells = notebook.get("cells", [])
    text = source(cells[0]).strip() if cells else ""
    return text.splitlines()[0].strip() if text else ""


def section_end(cells: list[dict], index: int) -> int:
    """The index of the next `### Exercise` heading after `index`, else the number of cells."""
    return next((j for j in range(index + 1, len(cells)) if heading_number(cells[j]) is not None), len(cells))


def exercise_cells(notebook: dict) -> dict[int, int]:
    """Exercise number -> index of its stub: the first code cell after `### Exercise N` that is no solution."""
    cells, found = notebook.get("cells", []), {}
    for index, cell in enumerate(cells):
        number = heading_number(cell)
        if number is None or number in found:
            continue
        end = section_end(cells, index)
        stubs = [j for j in range(index + 1, end) if cells[j]["cell_type"] == "code" and not is_solution(cells[j])]
        if stubs:
            found[number] = stubs[0]
    return found


def split_call(text: str, where: str) -> tuple[str, str]:
    """(the code before its last statement, that statement) of a cell ending with `exercises.check_…(…)`."""
    body = ast.parse(text).body
    last = body[-1] if body else None
    call = last.value if isinstance(last, ast.Expr) else None
    func = call.func if isinstance(call, ast.Call) else None
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == CHECKERS):
        raise BookError(f"{where} does not end with a call `{CHECKERS}.check_…(answer, …)`")
    lines = text.splitlines(keepends=True)
    return "".join(lines[: last.lineno - 1]).rstrip() + "\n", ast.get_source_segment(text, last) or ""


def read_exercises(notebook: dict, name: str) -> tuple[list[dict | Exercise], int]:
    """The chapter's cells with each exercise section (heading, stub, solution cells) as one Exercise."""
    cells, out, index = notebook["cells"], [], 0
    while index < len(cells):
        cell, number = cells[index], heading_number(cells[index])
        if number is None:
            if not is_solution(cell):
                out.append(cell)
            index += 1
            continue
        end = section_end(cells, index)
        section = cells[index + 1 : end]
        stubs = [c for c in section if c["cell_type"] == "code" and not is_solution(c)]
        solutions = [c for c in section if c["cell_type"] == "code" and is_solution(c)]
        if not stubs or not solutions:
            raise BookError(f"{name}, exercise {number}: no stub cell or no solution cell tagged `solution`")
        stub, call = split_call(source(stubs[0]), f"{name}, exercise {number}'s stub")
        solution, solution_call = split_call(source(solutions[0]), f"{name}, exercise {number}'s solution")
        if ast.dump(ast.parse(call)) != ast.dump(ast.parse(solution_call)):
            raise BookError(f"{name}, exercise {number}: the stub calls {call} but the solution {solution_call}")
        out.append(Exercise(number, cell, stub, solution, call))
        # the cells after the stub that are no solution (prose after the exercise) stay where they are
        out += [c for c in section if c is not stubs[0] and not is_solution(c)]
        index = end
    return out, sum(isinstance(item, Exercise) for item in out)


def raw(text: str) -> dict:
    return {"cell_type": "raw", "metadata": {}, "source": text}


def code(text: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "source": text, "outputs": [], "execution_count": None}


def test_source(call: str) -> str:
    """The otter test: asserts of the tampering check and of the checker call, with their messages."""
    checker = re.sub(rf"^{CHECKERS}\.", "_checks.", call.strip())
    return (
        "from fer_utils.book import exercises as _checks\n"
        "assert (_fb := _checks.untampered()).ok, _fb.message\n"
        f"assert (_fb := {checker}).ok, _fb.message\n"
    )


def markdown(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def manual_questions(chapter: str, path: Path = MANUAL_FILE) -> dict[str, str]:
    """The chapter's discussion prompt and answer keys (`prompt`, `key`, `prediction`, `explanation`), each on
    one line; empty for a chapter the file does not list."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {name: " ".join(text.split()) for name, text in data.get(chapter, {}).items()}


def manual_question(name: str, prompt: str, rubric: str, key: str | None = None) -> list[dict]:
    """An otter question graded by hand: its prompt and, as its solution (the instructor's edition only), its
    answer key and rubric."""
    answer = (f"**Answer key.** {key}\n\n" if key else "") + f"**Rubric ({MANUAL_POINTS} points).** {rubric}"
    return [
        raw(f"# BEGIN QUESTION\nname: {name}\nmanual: true\npoints: {MANUAL_POINTS}\n"),
        markdown(prompt),
        raw("# BEGIN SOLUTION"),
        markdown(answer),
        raw("# END SOLUTION"),
        raw("# END QUESTION"),
    ]


def design_of(call: str) -> str:
    """The design (a key of the experiment checker's DESIGNS) its call names: its fourth argument or `design=`."""
    node = ast.parse(call).body[0].value
    given = [*node.args[3:4], *(k.value for k in node.keywords if k.arg == "design")]
    return ast.literal_eval(given[0]) if given else ""


def experiment_questions(exercise: Exercise, keys: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """The prediction before an experiment exercise and the explanation after it, graded by hand with the
    rubrics of the exercise's design and the chapter's answer keys."""
    from fer_utils.book.exercises.experiment import DESIGNS

    number, design = exercise.number, DESIGNS.get(design_of(exercise.call))
    if design is None:
        raise BookError(f"exercise {number}: {exercise.call} names no design of {', '.join(DESIGNS)}")
    before = manual_question(
        f"exercise_{number}_prediction",
        f"**Before you run exercise {number}** ({design.title}), write your prediction: which way will the "
        "measured number move, by roughly how much, and why? Will the change be larger than the spread between "
        "seeds of the same run?",
        design.before,
        keys.get("prediction"),
    )
    after = manual_question(
        f"exercise_{number}_explanation",
        f"**After exercise {number}**, explain the result from the checker's message: the change, its interval "
        "and the verdict. Was your prediction right, and why (not)? What would more seeds tell you?",
        design.after,
        keys.get("explanation"),
    )
    return before, after


def discussion_question(keys: dict[str, str]) -> list[dict]:
    """The chapter's discussion prompt as a question graded by hand, its answer key as the solution."""
    prompt = f"**Discussion.** {keys['prompt']}"
    rubric = "1 point for a position on the question, 1 for a reason from the chapter's runs or text"
    return manual_question("discussion", prompt, rubric, keys.get("key"))


def question_cells(exercise: Exercise, prompt: dict | None = None) -> list[dict]:
    """The otter question of one exercise: its prompt, its answer cell and its test (see the module's)."""
    answer = f"{exercise.stub.rstrip()}\n# BEGIN SOLUTION NO PROMPT\n{exercise.solution.rstrip()}\n# END SOLUTION\n"
    return [
        raw(f"# BEGIN QUESTION\nname: exercise_{exercise.number}\npoints: {QUESTION_POINTS}\n"),
        prompt or exercise.heading,
        raw("# BEGIN SOLUTION"),
        code(answer),
        raw("# END SOLUTION"),
        raw("# BEGIN TESTS"),
        code(test_source(exercise.call)),
        raw("# END TESTS"),
        raw("# END QUESTION"),
    ]


def assignment_config(name: str, root: Path) -> str:
    """The master notebook's `# ASSIGNMENT CONFIG` cell: no run, no PDFs, the package at its published version."""
    from fer_book.links import book_links

    config: dict = {"name": name}
    if (root / "_config.yml").is_file():  # a book of its own (tests' small books have none)
        config["requirements"] = [book_links(root / "_config.yml").install_spec]
    config |= {
        "run_tests": False,
        "export_cell": False,
        "init_cell": True,
        "check_all_cell": False,
        "generate": {"pdf": False, "filtering": False},
        "tests": {"files": False, "ok_format": True},
    }
    return "# ASSIGNMENT CONFIG\n" + json.dumps(config, indent=1)  # JSON is YAML


def master_notebook(notebook: dict, name: str, root: Path | None = None) -> dict:
    """The otter master notebook of one chapter (see the module's docstring)."""
    items, count = read_exercises(notebook, name)
    if not count:
        raise BookError(f"{name} has no `### Exercise N` section")
    cells = [raw(assignment_config(name, Path(root or repo_root())))]
    keys = manual_questions(name)
    for item in items:
        if not isinstance(item, Exercise):
            cells.append(item)
        elif f"{CHECKERS}.{EXPERIMENT_CHECKER}(" in item.call:
            before, after = experiment_questions(item, keys)  # the heading first, then the prediction
            run = markdown(f"Now run the experiment of exercise {item.number}:")
            cells += [item.heading, *before, *question_cells(item, run), *after]
        else:
            cells += question_cells(item)
    if "prompt" in keys:  # the discussion: before "What's next", else last
        ends = [i for i, cell in enumerate(cells) if source(cell).startswith(NEXT_HEADING)]
        at = ends[0] if ends else len(cells)
        cells[at:at] = discussion_question(keys)
    for index, cell in enumerate(cells):
        cell.setdefault("id", f"otter-{index}")  # the cells made here have none; nbformat 5 wants one
    metadata = {k: v for k, v in notebook.get("metadata", {}).items() if k != "widgets"}
    return {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": notebook.get("nbformat_minor", 5)}


def chapters_with_exercises(root: Path, only: list[str] | None = None) -> list[Path]:
    """The chapters of `_toc.yml` (those whose name starts with one of `only`) that have exercises."""
    found = []
    for path in toc_notebooks(root):
        if only and not any(path.name.startswith(prefix) for prefix in only):
            continue
        notebook = json.loads((root / path).read_text(encoding="utf-8"))
        if any(heading_number(cell) is not None for cell in notebook["cells"]):
            found.append(root / path)
    return found


class Assigned(NamedTuple):
    """What `otter assign` made of one chapter."""

    chapter: str
    master: Path
    student: Path
    autograder: Path
    questions: int


def without_ids(path: Path) -> object:
    """A notebook's JSON without its cells' ids (otter assign draws new ones on each run), None if unreadable."""
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        return {**notebook, "cells": [{k: v for k, v in c.items() if k != "id"} for c in notebook["cells"]]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def make_way(folder: Path, made: Path, force: bool) -> None:
    """Make way for `made`: replace the same assignment in `folder`, back up an edited one (`force`), else refuse."""
    if not folder.exists():
        return
    names = [Path(folder.name + ".ipynb"), Path("student") / (folder.name + ".ipynb")]
    if not folder.is_dir():
        raise BookError(f"{folder} is a file, where the assignment goes: move it (or give another --out) and run again")
    others = sorted(p.name for p in folder.iterdir() if p.name not in {names[0].name, "student", "autograder"})
    if others:
        raise BookError(
            f"{folder} holds {', '.join(others[:5])}{' …' if len(others) > 5 else ''}, which no assignment has: "
            "assign never replaces what it did not write, --force included; move that out of the folder (or give "
            "another --out) and run again; nothing was written"
        )
    if all((folder / n).is_file() and without_ids(folder / n) == without_ids(made / n) for n in names):
        shutil.rmtree(folder)
    elif force:
        folder.rename(folder.with_name(f"{folder.name}{BACKUP_MARK}{time.strftime('%Y%m%d-%H%M%S')}"))
    else:
        raise BookError(
            f"{folder} holds an assignment that differs from this chapter's (edited?): pass --force to replace "
            "it (it is then kept as <folder>.bak-<time>); nothing was written"
        )


def assign_chapter(chapter: Path, out: Path, force: bool = False, root: Path | None = None) -> Assigned:
    """Write the chapter's master notebook and its `otter assign` output into `out/<chapter>/`."""
    from otter.assign import main as otter_assign

    name = chapter.stem
    master = master_notebook(json.loads(chapter.read_text(encoding="utf-8")), name, root)
    Path(out).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=out))
    try:
        made = staging / name
        made.mkdir()
        (made / f"{name}.ipynb").write_text(json.dumps(master, indent=1) + "\n", encoding="utf-8")
        otter_assign(str(made / f"{name}.ipynb"), str(made), no_pdfs=True)
        zips = sorted((made / "autograder").glob("*.zip"))
        if len(zips) != 1:
            raise BookError(f"otter assign made {len(zips)} autograder zips for {name}, not one")
        move(zips[0], made / "autograder" / f"{name}-autograder.zip")  # no time stamp in its name
        folder = Path(out) / name
        make_way(folder, made, force)
        move(made, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    questions = sum(
        source(c).startswith("# BEGIN QUESTION") and "manual: true" not in source(c) for c in master["cells"]
    )
    autograder = folder / "autograder" / f"{name}-autograder.zip"
    return Assigned(name, folder / f"{name}.ipynb", folder / "student" / f"{name}.ipynb", autograder, questions)


def assign(out: Path, only: list[str] | None = None, root: Path | None = None, force: bool = False) -> list[Assigned]:
    """Every chapter with exercises (or those of `only`) as an otter assignment under `out`."""
    root = Path(root or repo_root())
    check_place("--out", out, is_folder=True)
    out = Path(out).resolve()
    if out == root.resolve() or root.resolve().is_relative_to(out) or out.is_relative_to(root.resolve() / "notebooks"):
        raise BookError(f"--out {out} holds or is the book's own notebooks: give a folder of its own")
    chapters = chapters_with_exercises(root, only)
    if not chapters:
        raise BookError(f"no chapter with exercises matches {only}")
    return [assign_chapter(chapter, out, force, root) for chapter in chapters]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_book assign", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the assignments, one per chapter")
    parser.add_argument("--only", nargs="+", metavar="NN", help="only the chapters whose name starts with NN")
    parser.add_argument(
        "--force", action="store_true", help="replace an edited assignment in --out (it is kept as <name>.bak-<time>)"
    )
    parser.set_defaults(handler=run_assign)
    with raise_on_signals():  # Ctrl-C or SIGTERM: one line, exit 130 or 143; the staging folder is removed
        return run_handler(parser.parse_args(argv))


def run_assign(args: argparse.Namespace) -> int:
    """Write the assignments and print one line per chapter."""
    for done in assign(args.out, args.only, force=args.force):
        print(f"{done.chapter}: {done.questions} questions; student {done.student}; autograder {done.autograder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
