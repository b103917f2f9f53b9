"""Executing the book's notebooks with papermill into a *stage* folder (the first step of a book build).

The notebooks run in the stage's `notebooks/` folder, as in Jupyter, and find their data through
`fer_utils.book.artifacts` (absolute paths), so the same notebook runs unchanged on Colab.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from fer_book.book_times import recorded_seconds
from fer_book.steps import CELL_TIMEOUT_S
from fer_book.toc import repo_root, toc_notebooks
from fer_utils.book.results import RESULTS_DIR
from fer_utils.errors import BookError
from fer_utils.storage.atomic import write_atomic
from fer_utils.storage.locking import folder_lock

# What a stage holds besides the executed notebooks (DATA_LICENSES.md is included by book/data_licenses.md).
BOOK_FILES = ("_config.yml", "_toc.yml", "references.bib", "DATA_LICENSES.md")
BOOK_DIRS = ("book",)
PARAMETERS_TAG = "parameters"
# nbclient's (and myst-nb's) tag for a cell the book does not run: the experiment exercises, minutes of training
# each, which a reader runs; `--every-cell` runs them too, for the record of how long each chapter takes.
SKIP_TAG = "skip-execution"
# Seconds `fer_book grade` lets one submitted notebook run: the slowest chapter on the slow machine, with margin.
GRADE_TIMEOUT_S = 2400
# One execution per stage at a time: a second would overwrite the first one's notebooks.
STAGE_LOCK = ".execute.lock"
TIMES_FILE = "execution_times.json"
# The files executions wrote into a stage (`claim_stage`): a later one overwrites only those, never a reader's own.
STAGE_MANIFEST = ".execute-files.json"


class NotebookRun(NamedTuple):
    """The outcome of executing one notebook: where it went, how long it took, what failed."""

    notebook: str
    seconds: float
    error: str | None = None


def stage_sources(root: Path, stage: Path) -> None:
    """Copy the book's configuration, bibliography and prose pages from `root` into `stage`."""
    stage.mkdir(parents=True, exist_ok=True)
    for name in BOOK_FILES:
        if not (root / name).is_file():
            raise BookError(f"the book needs {root / name}, which does not exist")
        shutil.copy2(root / name, stage / name)
    for name in BOOK_DIRS:
        if (root / name).is_dir():
            shutil.copytree(root / name, stage / name, dirs_exist_ok=True)


def staged_files(root: Path, notebooks: Sequence[Path]) -> set[str]:
    """The files of a stage (relative POSIX paths) that executing `notebooks` of the book in `root` writes."""
    sources = {p.relative_to(root).as_posix() for name in BOOK_DIRS for p in (root / name).rglob("*") if p.is_file()}
    records = (f"{RESULTS_DIR}/{Path(nb).stem}.json" for nb in notebooks)
    return {*BOOK_FILES, *sources, *(Path(nb).as_posix() for nb in notebooks), *records, TIMES_FILE}


def claim_stage(stage: Path, files: set[str]) -> None:
    """Record `files` in the stage's manifest beside what earlier executions wrote there; BookError, with nothing
    changed, when one of them is already in `stage` and no execution wrote it (a reader's own file)."""
    manifest = stage / STAGE_MANIFEST
    written = set(json.loads(manifest.read_text(encoding="utf-8"))) if manifest.is_file() else set()
    clashes = sorted(name for name in files - written if (stage / name).exists())
    if clashes:
        raise BookError(
            f"{stage} holds files that no `fer_book execute` wrote and this one would overwrite: "
            f"{clashes[:5]}{' …' if len(clashes) > 5 else ''}; nothing was changed. Move them, or choose another "
            "--out (a stage executed before executions recorded their files has no record: delete it)"
        )
    write_atomic(manifest, json.dumps(sorted(written | files), indent=0) + "\n")


def describe_failure(exc: Exception) -> str:
    """A one-line description of a papermill failure naming the cell (number and first line)."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        first = next(iter((exc.source or "").strip().splitlines()), "")
        return f"cell {exc.cell_index} (execution count {exc.exec_count}, `{first}`) raised {exc.ename}: {exc.evalue}"
    return f"{type(exc).__name__}: {exc}"


def execute_notebook(
    source: Path,
    target: Path,
    timeout: int = CELL_TIMEOUT_S,
    parameters: dict | None = None,
    every_cell: bool = False,
) -> NotebookRun:
    """Execute `source` into `target` with papermill in its folder (widget state kept), its results record beside
    (`<stage>/results/`, for a `target` in `<stage>/notebooks/`); the time or failure. Run on its defaults (no
    `parameters`) it is the book's own run, which fails on a claim of its text it does not bear out. Cells tagged
    SKIP_TAG are left unrun unless `every_cell`."""
    import papermill

    from fer_book.assign import title_of
    from fer_utils.book.claims import contradicted
    from fer_utils.book.results import RESULTS_ENV, read_results, results_file, start_results

    target.parent.mkdir(parents=True, exist_ok=True)
    results = results_file(target.parent.parent, target.name)
    given = parameters or {}
    title = title_of(json.loads(source.read_text(encoding="utf-8"))).lstrip("# ").strip()
    start_results(results, target.stem, title, parameter_defaults(source) | given, given)
    start = time.perf_counter()
    error, before = None, os.environ.get(RESULTS_ENV)
    os.environ[RESULTS_ENV] = str(results.resolve())  # the kernel papermill starts inherits it
    try:
        papermill.execute_notebook(
            str(source),
            str(target),
            parameters=given,
            kernel_name="python3",
            cwd=str(target.parent),
            execution_timeout=timeout,
            progress_bar=False,
            store_widget_state=True,
            skip_cells_with_tag=SKIP_TAG if not every_cell else "",  # no cell carries the tag ""
        )
        failed = [] if given else contradicted(read_results(results))
        error = "the run does not bear out the text: " + "; ".join(failed) if failed else None
    except Exception as exc:
        error = describe_failure(exc)
    finally:
        if before is None:
            del os.environ[RESULTS_ENV]
        else:
            os.environ[RESULTS_ENV] = before
    return NotebookRun(source.name, round(time.perf_counter() - start, 1), error)


def select_notebooks(notebooks: Sequence[Path], only: Sequence[str] | None) -> list[Path]:
    """The notebooks whose names start with one of `only` (e.g. "03"), or all when `only` is empty."""
    if not only:
        return list(notebooks)
    chosen = [nb for nb in notebooks if any(nb.name.startswith(prefix) for prefix in only)]
    if not chosen:
        raise BookError(f"no notebook in _toc.yml matches {list(only)}")
    return chosen


def parse_parameter(text: str) -> tuple[str, object]:
    """`NAME=VALUE` as (NAME, value): VALUE as a Python literal, else as a string (`DATA_DIR=/data/ravdess`)."""
    import ast

    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise BookError(f"a notebook parameter is NAME=VALUE (e.g. DATASET=ravdess), got {text!r}")
    try:
        return name, ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        return name, value.strip()


def declared_parameters(notebook: Path) -> set[str]:
    """The names assigned in the notebook's cell tagged `parameters` (what papermill can override)."""
    return set(parameter_defaults(notebook))


def parameter_defaults(notebook: Path) -> dict[str, object]:
    """The notebook's parameters with their defaults as papermill reads them: a literal's value, else its expression
    as text (`fer.REFERENCE_SIZE`)."""
    import ast

    import papermill

    found = {}
    for name, parameter in papermill.inspect_notebook(str(notebook)).items():
        try:
            found[name] = ast.literal_eval(parameter["default"])
        except (ValueError, SyntaxError):
            found[name] = parameter["default"]
    return found


# The data parameters: DATA_DIR means nothing without DATASET (the chapters would run on the sample).
DATASET_PARAMETER, DATA_DIR_PARAMETER = "DATASET", "DATA_DIR"


def check_parameters(parameters: dict, notebooks: Sequence[Path], root: Path) -> dict[Path, set[str]]:
    """Each notebook's declared parameters; BookError for a name no chapter declares or DATA_DIR alone, InputError for
    a value no run can train with (`chapters.check_run_parameters`)."""
    from fer_utils.book.chapters import check_run_parameters

    declared = {notebook: declared_parameters(root / notebook) for notebook in notebooks}
    known = set().union(*declared.values())
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise BookError(
            f"no chapter declares the parameter(s) {', '.join(unknown)}; the known parameters are "
            + ", ".join(sorted(known))
        )
    check_run_parameters(parameters)  # EPOCHS=-1 fails now, not after the chapter has made its crops
    if DATA_DIR_PARAMETER in parameters and DATASET_PARAMETER not in parameters:
        from fer_utils.data.indexing import INDEXERS  # the one table of the datasets a DATA_DIR can hold

        raise BookError(
            f"{DATA_DIR_PARAMETER} is given without {DATASET_PARAMETER}: the chapters would run on the sample; "
            f"pass --param {DATASET_PARAMETER}=<{'|'.join(INDEXERS)}> too"
        )
    return declared


def execute_book(
    stage: Path,
    root: Path | None = None,
    only: Sequence[str] | None = None,
    timeout: int = CELL_TIMEOUT_S,
    parameters: dict | None = None,
    jobs: int = 1,
    every_cell: bool = False,
) -> list[NotebookRun]:
    """Stage the book, execute its notebooks (`jobs` at a time; with `every_cell`, the cells tagged SKIP_TAG too),
    write `execution_times.json`; BookError on failure."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    if jobs < 1:
        raise BookError(f"--jobs must be at least 1, got {jobs}")
    root = root or repo_root()
    parameters = parameters or {}
    book = toc_notebooks(root)
    notebooks = select_notebooks(book, only)  # before staging: a bad --only copies nothing
    declared = check_parameters(parameters, book, root)
    given = {nb: {k: v for k, v in parameters.items() if k in declared[nb]} for nb in notebooks}
    ignored = {nb.name: sorted(set(parameters) - declared[nb]) for nb in notebooks if set(parameters) - declared[nb]}
    stage.mkdir(parents=True, exist_ok=True)
    with folder_lock(stage, STAGE_LOCK):
        claim_stage(stage, staged_files(root, notebooks))  # before anything is copied or executed
        stage_sources(root, stage)
        for name, unknown in ignored.items():
            print(f"warning: {name} does not declare {', '.join(unknown)}; not passed to it", flush=True)
        start = time.perf_counter()
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            order = longest_first(notebooks, recorded_seconds(root)) if jobs > 1 else notebooks
            submitted = {
                nb: pool.submit(execute_notebook, root / nb, stage / nb, timeout, given[nb], every_cell) for nb in order
            }
            runs = []
            for notebook in notebooks:  # reported in the book's order
                runs.append(run := submitted[notebook].result())
                failed = f"  FAILED {run.error}" if run.error else ""
                print(f"{run.notebook}: {run.seconds:.1f} s{failed}", flush=True)
        wall = round(time.perf_counter() - start, 1)
        write_times(stage / TIMES_FILE, runs, parameters, ignored, wall=wall, jobs=jobs, every_cell=every_cell)
    failures = [f"{run.notebook}: {run.error}" for run in runs if run.error]
    if failures:
        raise BookError("notebook execution failed:\n  " + "\n  ".join(failures))
    return runs


def longest_first(notebooks: Sequence[Path], seconds: dict[str, float]) -> list[Path]:
    """`notebooks` longest first by the recorded `seconds` (unrecorded ones first), so no long one starts last."""
    return sorted(notebooks, key=lambda nb: -seconds.get(nb.name, float("inf")))


def write_times(
    path: Path,
    runs: Sequence[NotebookRun],
    parameters: dict | None = None,
    ignored: dict[str, list[str]] | None = None,
    wall: float | None = None,
    jobs: int = 1,
    every_cell: bool = False,
) -> dict:
    """Merge the runs' seconds into the JSON at `path`, with their sum, the wall time, the parameters and whether
    every cell ran (SKIP_TAG's too)."""
    times = json.loads(path.read_text(encoding="utf-8")).get("seconds", {}) if path.is_file() else {}
    times.update({run.notebook: run.seconds for run in runs})
    record = {
        "seconds": dict(sorted(times.items())),
        "total_seconds": round(sum(times.values()), 1),
        "wall_seconds": wall if wall is not None else round(sum(r.seconds for r in runs), 1),
        "jobs": jobs,
        "every_cell": every_cell,
        "failed": [run.notebook for run in runs if run.error],
        "parameters": parameters or {},
        "undeclared_parameters": ignored or {},
    }
    write_atomic(path, json.dumps(record, indent=2) + "\n")
    return record
