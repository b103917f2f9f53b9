"""Executing the book's notebooks with papermill, building the HTML book, writing the student edition.

The book is built in two steps so that each can be checked on its own: `execute_book` copies the
book's sources into a *stage* folder and runs every notebook listed in `_toc.yml` there (outputs and
widget state kept), then `build_book` runs `jupyter-book build` on the stage with notebook execution
off and warnings as errors. The notebooks run with the stage's `notebooks/` folder as working
directory, like Jupyter does, and they find their data through `fer_utils.artifacts` (absolute
paths), so the same notebook runs unchanged on Colab.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fer_utils.errors import FerError

# What a stage holds besides the executed notebooks.
BOOK_FILES = ("_config.yml", "_toc.yml", "references.bib", "DATA_LICENSES.md")  # the last is included by book/data_licenses.md
BOOK_DIRS = ("book",)
SOLUTION_TAG = "solution"
PARAMETERS_TAG = "parameters"
DEFAULT_TIMEOUT_S = 900
# The ipywidgets embed bundle (fer_utils.npm.WIDGETS_HTML_MANAGER) is served from the book's own _static.
WIDGETS_STATIC_DIR = Path("_static") / "ipywidgets"
# The list of files a build wrote into OUT/html; a rebuild replaces only those (issue 12).
SITE_MANIFEST = ".book-files.json"
# What the demo page says about its default model, the reference run of chapter 4.
REFERENCE_MODEL_ABOUT = {
    "trained_on": "the book's reference run (chapter 4): the paper's CNN trained on the embedded synthetic "
                  "sample (faces animated from 24 RAVDESS stills), random frame split",
    "license": "model trained on data derived from RAVDESS (CC BY-NC-SA 4.0): non-commercial use",
}
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
WIDGETS_JS_FILES = (".js", ".txt", ".woff", ".woff2", ".ttf", ".eot", ".svg")


class NotebookExecutionError(FerError):
    """One or more notebooks failed to execute; the message names each notebook and cell."""


class BookBuildError(FerError):
    """`jupyter-book build` failed or reported warnings (they are errors for this book)."""


@dataclass(frozen=True)
class NotebookRun:
    """The outcome of executing one notebook: where it went, how long it took, what failed."""

    notebook: str
    seconds: float
    error: str | None = None


def repo_root() -> Path:
    """The folder holding `_toc.yml` next to the installed package (the repository checkout)."""
    return Path(__file__).resolve().parents[1]


def read_toc(root: Path) -> dict:
    """Parse `<root>/_toc.yml`; a missing file is a clear error."""
    import yaml

    toc = root / "_toc.yml"
    if not toc.is_file():
        raise FerError(f"no _toc.yml in {root}")
    return yaml.safe_load(toc.read_text())


def toc_entries(root: Path) -> list[str]:
    """Every file listed in `_toc.yml` (root first), as written there, without extension."""
    toc = read_toc(root)
    entries = [toc["root"]]
    stack = list(toc.get("parts", [])) + [{"chapters": toc.get("chapters", [])}]
    for part in stack:
        for chapter in part.get("chapters", []) or []:
            if "file" in chapter:
                entries.append(chapter["file"])
            stack.extend([{"chapters": chapter.get("sections", [])}])
    return entries


def toc_notebooks(root: Path) -> list[Path]:
    """The notebooks listed in `_toc.yml`, in book order, as paths relative to `root`."""
    found = []
    for entry in toc_entries(root):
        path = Path(entry).with_suffix(".ipynb")
        if (root / path).is_file():
            found.append(path)
    return found


def stage_sources(root: Path, stage: Path) -> None:
    """Copy the book's configuration, bibliography and prose pages from `root` into `stage`."""
    stage.mkdir(parents=True, exist_ok=True)
    for name in BOOK_FILES:
        if not (root / name).is_file():
            raise FerError(f"the book needs {root / name}, which does not exist")
        shutil.copy2(root / name, stage / name)
    for name in BOOK_DIRS:
        if (root / name).is_dir():
            shutil.copytree(root / name, stage / name, dirs_exist_ok=True)


def describe_failure(exc: Exception) -> str:
    """A one-line description of a papermill failure naming the cell (number and first line)."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        first = (exc.source or "").strip().splitlines()[:1]
        return (
            f"cell {exc.cell_index} (execution count {exc.exec_count}, `{first[0] if first else ''}`)"
            f" raised {exc.ename}: {exc.evalue}"
        )
    return f"{type(exc).__name__}: {exc}"


def execute_notebook(
    source: Path, target: Path, timeout: int = DEFAULT_TIMEOUT_S, parameters: dict | None = None
) -> NotebookRun:
    """Execute `source` into `target` with papermill in its folder; record the time or the failure.

    Papermill keeps every output and nbclient stores the widget state in the notebook metadata, so
    the built book renders the widgets without a kernel.
    """
    import papermill

    target.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    error = None
    try:
        papermill.execute_notebook(
            str(source),
            str(target),
            parameters=parameters or {},
            kernel_name="python3",
            cwd=str(target.parent),
            execution_timeout=timeout,
            progress_bar=False,
            store_widget_state=True,
        )
    except Exception as exc:  # noqa: BLE001 - every failure is reported with its notebook
        error = describe_failure(exc)
    return NotebookRun(source.name, round(time.perf_counter() - start, 1), error)


def select_notebooks(notebooks: Sequence[Path], only: Sequence[str] | None) -> list[Path]:
    """The notebooks whose names start with one of `only` (e.g. "03"), or all when `only` is empty."""
    if not only:
        return list(notebooks)
    chosen = [nb for nb in notebooks if any(nb.name.startswith(prefix) for prefix in only)]
    if not chosen:
        raise FerError(f"no notebook in _toc.yml matches {list(only)}")
    return chosen


def parse_parameter(text: str) -> tuple[str, object]:
    """`NAME=VALUE` as (NAME, value): VALUE is read as a Python literal (`None`, `12`, `[0, 1]`, `"x"`),
    else kept as a string (`DATA_DIR=/data/ravdess`)."""
    import ast

    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise FerError(f"a notebook parameter is NAME=VALUE (e.g. DATASET=ravdess), got {text!r}")
    try:
        return name, ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        return name, value.strip()


def declared_parameters(notebook: Path) -> set[str]:
    """The names assigned in the notebook's cell tagged `parameters` (what papermill can override)."""
    import papermill

    return set(papermill.inspect_notebook(str(notebook)))


def chapter_parameters(notebook: Path, parameters: dict) -> tuple[dict, list[str]]:
    """The subset of `parameters` that `notebook` declares, and the names it does not declare."""
    declared = declared_parameters(notebook)
    return ({k: v for k, v in parameters.items() if k in declared},
            sorted(k for k in parameters if k not in declared))


def execute_book(
    stage: Path, root: Path | None = None, only: Sequence[str] | None = None,
    timeout: int = DEFAULT_TIMEOUT_S, parameters: dict | None = None,
) -> list[NotebookRun]:
    """Stage the book and execute its notebooks; write `execution_times.json`; fail naming each failure.

    `parameters` (e.g. `{"DATASET": "ravdess", "DATA_DIR": "/data/ravdess"}`) go to every chapter
    that declares them in its `parameters` cell; a name a chapter does not declare is a warning
    (printed, and listed in `execution_times.json`), never silently ignored.
    All notebooks are executed even when one fails, so a single run reports every broken chapter.
    """
    from tqdm.auto import tqdm

    root = root or repo_root()
    stage_sources(root, stage)
    runs, ignored = [], {}
    for notebook in tqdm(select_notebooks(toc_notebooks(root), only), desc="notebooks", unit="nb"):
        given, unknown = chapter_parameters(root / notebook, parameters or {})
        if unknown:
            ignored[notebook.name] = unknown
            tqdm.write(f"warning: {notebook.name} does not declare {', '.join(unknown)}; not passed to it")
        run = execute_notebook(root / notebook, stage / notebook, timeout, given)
        tqdm.write(f"{notebook}: {run.seconds:.1f} s" + (f"  FAILED {run.error}" if run.error else ""))
        runs.append(run)
    write_times(stage / "execution_times.json", runs, parameters or {}, ignored)
    failures = [f"{run.notebook}: {run.error}" for run in runs if run.error]
    if failures:
        raise NotebookExecutionError("notebook execution failed:\n  " + "\n  ".join(failures))
    return runs


def write_times(path: Path, runs: Sequence[NotebookRun], parameters: dict | None = None,
                ignored: dict[str, list[str]] | None = None) -> dict:
    """Merge the runs' wall times (seconds) into the JSON file at `path`, with their total, the
    parameters they ran with and the parameters each chapter did not declare."""
    times = json.loads(path.read_text()).get("seconds", {}) if path.is_file() else {}
    times.update({run.notebook: run.seconds for run in runs})
    record = {"seconds": dict(sorted(times.items())), "total_seconds": round(sum(times.values()), 1),
              "failed": [run.notebook for run in runs if run.error],
              "parameters": parameters or {}, "undeclared_parameters": ignored or {}}
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return record


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def vendor_widgets_js(stage: Path, cache: Path) -> Path:
    """Unpack the widgets embed bundle (embed.js, its licence and fonts) into `<stage>/_static/ipywidgets`."""
    from fer_utils.npm import WIDGETS_HTML_MANAGER, vendor_files

    def wanted(inner: PurePosixPath) -> bool:
        return inner.parent == PurePosixPath("dist") and inner.suffix in WIDGETS_JS_FILES and "amd" not in inner.name

    vendor_files(WIDGETS_HTML_MANAGER, cache, stage / WIDGETS_STATIC_DIR, wanted)
    return stage / WIDGETS_STATIC_DIR / "embed.js"


FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="15" fill="#F9AB00"/>'
    '<circle cx="11" cy="12" r="2.5"/><circle cx="21" cy="12" r="2.5"/>'
    '<path d="M9 20 q7 7 14 0" stroke="#000" stroke-width="2.5" fill="none"/></svg>'
)


def write_build_assets(stage: Path, cache: Path) -> None:
    """Put what the HTML build serves from `_static` into the stage: the widgets bundle and the favicon."""
    vendor_widgets_js(stage, cache)
    (stage / "_static" / "favicon.svg").write_text(FAVICON_SVG)


def unique_scripts(scripts: list) -> list:
    """`scripts` without repeats of the same file or inline body (first one kept, order unchanged)."""
    seen, kept = set(), []
    for script in scripts:
        name = getattr(script, "filename", script) or ""  # inline scripts come as None or ""
        key = (str(name), tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    return kept


def dedupe_page_scripts(app: object, pagename: str, templatename: str, context: dict, doctree: object) -> None:
    """Drop repeated <script> entries from a page: with Sphinx 7.4, sphinx-thebe and myst-nb register
    some twice, and a repeated inline `const THEBE_JS_URL = …` is a JavaScript SyntaxError. Pages
    without a widget view do not load the widgets bundle (Jupyter Book adds every _static .js to every page)."""
    if "script_files" in context:
        scripts = unique_scripts(list(context["script_files"]))
        if WIDGET_VIEW_MIME not in context.get("body", ""):  # no widget on this page: skip the 5 MB bundle
            scripts = [s for s in scripts if WIDGETS_STATIC_DIR.name + "/" not in str(getattr(s, "filename", s) or "")]
        context["script_files"][:] = scripts


def setup(app: object) -> dict:
    """Sphinx extension hook (listed in _config.yml): de-duplicate each page's scripts."""
    app.connect("html-page-context", dedupe_page_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def jupyter_book_executable() -> str:
    """The `jupyter-book` script installed next to this Python, else the one on PATH."""
    beside = Path(sys.executable).parent / "jupyter-book"
    found = str(beside) if beside.is_file() else shutil.which("jupyter-book")
    if not found:
        raise BookBuildError("jupyter-book is not installed (pip install -r requirements.txt)")
    return found


def build_book(stage: Path, out: Path, cache: Path, demo_model: Path | None = None,
               demo_about: Mapping[str, object] | None = None) -> Path:
    """Build the executed `stage` into `<out>/html` with jupyter-book: no execution, warnings as errors.

    The demo page gets `demo_model` (.keras) described by `demo_about` (see fer_utils.demo); by default
    the reference model of chapter 4. Only the files this build owns are replaced in `<out>/html`.
    """
    if not (stage / "_config.yml").is_file():
        raise BookBuildError(f"{stage} is not an executed stage (run `book execute --out {stage}` first)")
    html = out / "html"
    write_build_assets(stage, cache)
    write_demo_assets(stage, cache, demo_model, demo_about)
    sync_stage_links(stage)
    work = out / ".jupyter-book"
    command = [jupyter_book_executable(), "build", str(stage), "--path-output", str(work),
               "--builder", "html", "-W", "--keep-going"]
    result = subprocess.run(command, capture_output=True, text=True)
    sys.stdout.write(result.stdout[-4000:])
    if result.returncode != 0:
        raise BookBuildError(
            f"jupyter-book build failed (exit {result.returncode}):\n{result.stderr[-6000:]}"
        )
    install_site(work / "_build" / "html", html)
    shutil.rmtree(work / "_build" / "html")
    return html / "index.html"


def write_demo_assets(stage: Path, cache: Path, model: Path | None, about: Mapping[str, object] | None) -> Path:
    """The demo page's static folder in the stage, with `model` (default: the model chapter 9 published,
    trained on real faces; if chapter 9 has not run, the reference model, labelled as such)."""
    from fer_utils.artifacts import ensure_trained_model, published_demo_model
    from fer_utils.demo import DEMO_EXTRA_DIR, DEMO_STATIC_DIR, write_demo_static

    if model is None:
        published = published_demo_model(cache)
        if published is not None:
            model, about = published[0], about or published[1]
        else:
            model = ensure_trained_model(cache=cache)
            about = about or REFERENCE_MODEL_ABOUT
    return write_demo_static(stage / DEMO_EXTRA_DIR / DEMO_STATIC_DIR, cache, Path(model), about or {"trained_on": Path(model).name},
                             stage)


def sync_stage_links(stage: Path) -> None:
    """Point the staged notebooks' badge and install cells, and every repository link of the staged
    pages, at the stage's `_config.yml` (so a changed repository changes every link of the built book)."""
    from fer_utils.links import book_links, book_slugs, sync_notebook_file, sync_text

    links = book_links(stage / "_config.yml")
    notebooks, pages = toc_notebooks(stage), sorted(stage.glob("book/*.md"))
    old = frozenset().union(*(book_slugs(p.read_text()) for p in [*(stage / nb for nb in notebooks), *pages]))
    for notebook in notebooks:
        sync_notebook_file(stage / notebook, links, notebook.as_posix(), old)
    for page in pages:
        page.write_text(sync_text(page.read_text(), links, old))


def site_files(folder: Path) -> set[str]:
    """Every regular file under `folder`, as POSIX paths relative to it."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def owned_files(html: Path) -> set[str]:
    """The files an earlier build wrote into `html` (its manifest), empty when there is none."""
    manifest = html / SITE_MANIFEST
    return set(json.loads(manifest.read_text())) if manifest.is_file() else set()


def install_site(built: Path, html: Path) -> None:
    """Copy the freshly built site into `html`: replace the files the previous build owned, delete those it
    no longer makes, and leave every other file alone; refuse (before changing anything) to overwrite one."""
    new, old = site_files(built), owned_files(html)
    clashes = sorted(p for p in new if (html / p).exists() and p not in old)
    if clashes:
        raise BookBuildError(f"{html} holds files that no book build wrote and the build would overwrite: "
                             f"{clashes[:5]}{' …' if len(clashes) > 5 else ''}; nothing was changed. Move them, or choose "
                             "another --out (a site built before this check has no manifest: `make clean`)")
    for stale in sorted(old - new):
        (html / stale).unlink(missing_ok=True)
    for name in sorted(new):
        target = html / name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.copy2(built / name, tmp)
        tmp.replace(target)
    atomic_write_text(html / SITE_MANIFEST, json.dumps(sorted(new), indent=0) + "\n")


def strip_solutions(notebook: dict) -> dict:
    """A copy of the notebook JSON without cells tagged `solution` and without outputs."""
    import copy

    nb = copy.deepcopy(notebook)
    nb["cells"] = [c for c in nb["cells"] if SOLUTION_TAG not in c.get("metadata", {}).get("tags", [])]
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb.get("metadata", {}).pop("widgets", None)
    return nb


def write_student_edition(out: Path, root: Path | None = None) -> list[Path]:
    """Write every notebook of the book to `<out>/notebooks` without solutions; return the paths."""
    import nbformat

    root = root or repo_root()
    written = []
    for notebook in toc_notebooks(root):
        nb = nbformat.read(root / notebook, as_version=4)
        student = nbformat.from_dict(strip_solutions(nb))
        target = out / notebook
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(student, target)
        written.append(target)
    return written
