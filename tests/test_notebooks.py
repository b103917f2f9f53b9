"""The notebooks' structure: one parameters cell, the standard opening and closing, Colab links, tags.

These read the notebook files only (no execution); `make book` executes them and
tests/test_book_build.py checks the result.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat
import pytest
import yaml
from IPython.core.inputtransformer2 import TransformerManager

import fer_utils
from fer_book.assign import SOLUTION_TAG
from fer_book.execute import PARAMETERS_TAG
from fer_book.links import LINKED_TEXT_FILES, book_links, sync_repository
from fer_book.toc import toc_entries, toc_notebooks

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
COLAB_LINK = re.compile(
    r"https://colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/([\w.-]+)/([\w./-]+\.ipynb)"
)
OPENING = ("## Overview", "## Prerequisites", "## Time to learn")
CLOSING = ("## Summary", "## Exercises", "## What's next")


def read(path: Path) -> nbformat.NotebookNode:
    """A notebook file, validated against the nbformat schema."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    return nb


def tags(cell: dict) -> list[str]:
    """The tags of a cell."""
    return cell.get("metadata", {}).get("tags", [])


def markdown(nb: dict) -> str:
    """All markdown of a notebook, joined."""
    return "\n".join(c["source"] for c in nb["cells"] if c["cell_type"] == "markdown")


def test_there_are_ten_chapters_named_nn_slug() -> None:
    names = [p.stem for p in NOTEBOOKS]
    assert len(names) == 10, names
    assert [n[:3] for n in names] == [f"{i:02d}_" for i in range(1, 11)]
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+", n) for n in names)


def test_toc_lists_exactly_the_notebooks_present_in_order() -> None:
    listed = [REPO / p for p in toc_notebooks(REPO)]
    assert listed == NOTEBOOKS
    notebook_entries = [e for e in toc_entries(REPO) if e.startswith("notebooks/")]
    assert [REPO / f"{e}.ipynb" for e in notebook_entries] == NOTEBOOKS, "a _toc.yml entry has no notebook"


def test_toc_pages_exist() -> None:
    for entry in toc_entries(REPO):
        assert any((REPO / f"{entry}{ext}").is_file() for ext in (".md", ".ipynb")), entry


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exactly_one_parameters_cell_with_quick_and_full_values(path: Path) -> None:
    nb = read(path)
    cells = [c for c in nb.cells if PARAMETERS_TAG in tags(c)]
    assert len(cells) == 1, f"{path.name} has {len(cells)} cells tagged {PARAMETERS_TAG}"
    cell = cells[0]
    assert cell.cell_type == "code"
    assert "DATASET" in cell.source and "# " in cell.source, "quick defaults and commented full-run values"
    compile(cell.source, path.name, "exec")  # papermill injects after it: it must be plain assignments


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_reads_every_parameter_of_the_cell(path: Path) -> None:
    """Regression: chapter 5's `EPOCHS = 45  # patience = EPOCHS: …` was left out by papermill's parser (an `=` in
    the comment), which `make book` printed as "Unable to parse line"; every assignment must be a parameter."""
    from papermill.translators import PythonTranslator

    (cell,) = [c for c in read(path).cells if PARAMETERS_TAG in tags(c)]
    assigned = re.findall(r"^(\w+)\s*=", cell.source, re.M)
    read_by_papermill = [parameter.name for parameter in PythonTranslator.inspect(cell)]
    assert read_by_papermill == assigned, f"papermill reads {read_by_papermill}, the cell assigns {assigned}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_standard_opening(path: Path) -> None:
    nb = read(path)
    first, install = nb.cells[0], nb.cells[1]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    links = book_links(REPO / "_config.yml")
    assert links.badge(f"notebooks/{path.name}") in first.source, "the Open-in-Colab badge, from _config.yml"
    assert install.cell_type == "code" and install.source == "".join(links.install_cell())
    assert f'"{links.install_spec}"' in install.source and len(install.source.splitlines()) == 3
    text = markdown(nb)
    positions = [text.find(h) for h in OPENING]
    assert all(p >= 0 for p in positions), f"missing one of {OPENING}"
    assert positions == sorted(positions)
    params = next(i for i, c in enumerate(nb.cells) if PARAMETERS_TAG in tags(c))
    assert params <= 4, "the parameters cell comes right after the opening"


MAX_IMPORTS = 5  # import statements a chapter may hold, as d2l's three


def imports_of(nb: dict) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of a notebook's code cells (IPython's magics read as Python), nested ones too."""
    trees = [
        ast.parse(TransformerManager().transform_cell(c["source"])) for c in nb["cells"] if c["cell_type"] == "code"
    ]
    return [node for tree in trees for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_chapter_holds_at_most_five_imports_and_reaches_the_package_through_its_kit(path: Path) -> None:
    """A chapter imports its few libraries and one kit (`fer_utils.book.kit`) that gives, by name,
    everything its code reads; the package is imported nowhere else in it. Every name it imports from the kit
    is read in the chapter (a list kept honest)."""
    nb = read(path)
    statements = imports_of(nb)
    assert len(statements) <= MAX_IMPORTS, [ast.unparse(node) for node in statements]
    package = [node for node in statements if isinstance(node, ast.ImportFrom) and node.module.startswith("fer_")]
    package += [node for node in statements if isinstance(node, ast.Import) and node.names[0].name.startswith("fer_")]
    assert [ast.unparse(node).split(" import ")[0] for node in package] == ["from fer_utils.book.kit"]
    code = re.sub(
        r"from fer_utils\.book\.kit import \([^)]*\)",
        "",
        "\n".join(c["source"] for c in nb["cells"] if c["cell_type"] == "code"),
    )
    unread = [a.name for a in package[0].names if not re.search(rf"(?<![\w.]){a.name}\b", code)]
    assert not unread, f"imported from the kit and never read: {unread}"


def test_the_kit_gives_each_name_as_its_own_module_defines_it() -> None:
    """The kit gathers names, it defines none (but `fer`, itself): each is the very object of its module."""
    import inspect

    from fer_utils.book import kit

    assert kit.fer is kit and "fer" in kit.__all__ and len(kit.__all__) == len(set(kit.__all__))
    for name in kit.__all__:
        value = getattr(kit, name)
        home = getattr(value, "__module__", None) or (value.__name__ if inspect.ismodule(value) else None)
        assert home != kit.__name__ or name == "fer", f"{name} is defined in the kit"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_standard_closing_with_two_to_four_exercises(path: Path) -> None:
    nb = read(path)
    text = markdown(nb)
    positions = [text.rfind(h) for h in CLOSING]
    assert all(p >= 0 for p in positions), f"missing one of {CLOSING}"
    assert positions == sorted(positions)
    exercises = re.findall(r"^### Exercise (\d+)", text, re.MULTILINE)
    assert 2 <= len(exercises) <= 4
    checks = [c for c in nb.cells if c.cell_type == "code" and "exercises.check_" in c.source]
    solutions = [c for c in checks if SOLUTION_TAG in tags(c)]
    stubs = [c for c in checks if SOLUTION_TAG not in tags(c)]
    assert len(stubs) == len(exercises) == len(solutions), "each exercise: a stub and a solution, both checked"
    assert all("None" in c.source or "raise NotImplementedError" in c.source for c in stubs), (
        "stubs leave the answer as None or the function as `raise NotImplementedError`"
    )
    assert all("hide-cell" in tags(c) for c in solutions), "solutions (code and result) are hidden behind a toggle"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_committed_without_outputs(path: Path) -> None:
    nb = read(path)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


SHOWN_WIDTH = 88  # the widest code line the HTML book shows without clipping it: notebooks/ruff.toml's
HIDDEN_CODE = ("remove-input", "remove-cell")  # the tags of the only code cells whose code the book does not show


def long_shown_lines(nb: dict, width: int = SHOWN_WIDTH) -> list[str]:
    """`cell N, line M (W characters): the line` for each line wider than `width` in the code cells a chapter
    shows: all but those tagged remove-input or remove-cell (hide-input, hide-cell and solution cells are shown,
    behind a toggle)."""
    return [
        f"cell {index}, line {number} ({len(line)} characters): {line}"
        for index, cell in enumerate(nb["cells"])
        if cell["cell_type"] == "code" and not set(tags(cell)) & set(HIDDEN_CODE)
        for number, line in enumerate("".join(cell["source"]).splitlines(), start=1)
        if len(line) > width
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_shown_code_lines_fit_88_characters(path: Path) -> None:
    """The HTML book clips a code line wider than its column, so no line of a code cell a chapter shows
    is wider than 88 characters; the chapters' formatter wraps code at that width (notebooks/ruff.toml)."""
    assert f"line-length = {SHOWN_WIDTH}\n" in (REPO / "notebooks" / "ruff.toml").read_text()
    long = long_shown_lines(read(path))
    assert not long, f"{path.name}: {len(long)} shown code line(s) over {SHOWN_WIDTH} characters:\n" + "\n".join(long)


def test_the_width_check_reads_shown_cells_only() -> None:
    line = "x = " + "1 + " * 30 + "1"
    cells = [
        {"cell_type": "code", "metadata": {"tags": tags}, "source": ["y = 0\n", line]}
        for tags in ([], ["hide-input"], ["hide-cell", SOLUTION_TAG], ["remove-input"], ["remove-cell"])
    ]
    cells.append({"cell_type": "markdown", "metadata": {}, "source": [line]})
    found = long_shown_lines({"cells": cells})
    assert [entry.split(" (")[0] for entry in found] == ["cell 0, line 2", "cell 1, line 2", "cell 2, line 2"]


def colab_links(text: str) -> list[tuple[str, str, str]]:
    """(repository, branch, path) of every Colab link in `text`."""
    return COLAB_LINK.findall(text)


def test_every_colab_link_points_at_an_existing_notebook() -> None:
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    repo_url = config["repository"]["url"].rstrip("/")
    repository, branch = repo_url.split("github.com/")[1], config["repository"]["branch"]
    assert config["launch_buttons"]["colab_url"].startswith("https://colab.research.google.com")
    assert config["repository"].get("path_to_book", "") == "", "notebooks/ must sit at the repo root"
    found = 0
    sources = [REPO / "README.md", *sorted((REPO / "book").glob("*.md")), *NOTEBOOKS]
    for source in sources:
        if not source.is_file():
            continue
        for repo, ref, path in colab_links(source.read_text()):
            found += 1
            assert (repo, ref) == (repository, branch), f"{source.name} links {repo}@{ref}"
            assert (REPO / path).is_file(), f"{source.name} links {path}, which does not exist"
    assert found >= len(NOTEBOOKS)


def test_colab_link_check_catches_a_missing_notebook() -> None:
    text = "[x](https://colab.research.google.com/github/lightweight-fer/fer-book/blob/main/notebooks/99_nope.ipynb)"
    ((_, _, path),) = colab_links(text)
    assert not (REPO / path).is_file()


def test_every_badge_install_cell_and_readme_link_agrees_with_the_config() -> None:
    assert sync_repository(REPO, check=True) == [], "run `python -m fer_book links`"


def test_the_book_ref_is_the_package_version_tag() -> None:
    links = book_links(REPO / "_config.yml")
    assert links.ref == f"v{fer_utils.__version__}", "install cells must pin the book's own version"
    assert links.install_spec.endswith(f"@v{fer_utils.__version__}")


def copy_linked_files(target: Path) -> Path:
    """The files that carry repository links (config, toc, notebooks, README, pyproject) in `target`."""
    for name in ("_config.yml", "_toc.yml", *LINKED_TEXT_FILES):
        (target / name).write_text((REPO / name).read_text())
    (target / "book").mkdir()
    for page in (REPO / "book").glob("*.md"):
        (target / "book" / page.name).write_text(page.read_text())
    (target / "notebooks").mkdir()
    for path in NOTEBOOKS:
        (target / "notebooks" / path.name).write_text(path.read_text())
    return target


def test_changing_the_repository_in_the_config_changes_every_link(tmp_path: Path) -> None:
    root = copy_linked_files(tmp_path)
    old = book_links(root / "_config.yml")
    config = (root / "_config.yml").read_text()
    (root / "_config.yml").write_text(
        config.replace(old.url, "https://github.com/a-fork/fer-book-fork").replace(
            f"branch: {old.ref}", "branch: v9.9.9"
        )
    )
    new = book_links(root / "_config.yml")
    assert new.slug == "a-fork/fer-book-fork" and new.ref == "v9.9.9"
    stale = sync_repository(root, check=True)
    assert set(stale) == {f"notebooks/{p.name}" for p in NOTEBOOKS} | set(LINKED_TEXT_FILES)
    assert set(sync_repository(root)) == set(stale)
    assert sync_repository(root, check=True) == []
    for path in [
        *(root / "notebooks").glob("*.ipynb"),
        *(root / "book").glob("*.md"),
        *(root / n for n in LINKED_TEXT_FILES),
    ]:
        text = path.read_text()
        assert old.slug not in text, f"{path.name} still names {old.slug}"
        assert new.url in text or path.parent.name == "book"
    nb = read(root / "notebooks" / NOTEBOOKS[0].name)
    assert f"blob/v9.9.9/notebooks/{NOTEBOOKS[0].name}" in nb.cells[0].source
    assert "git+https://github.com/a-fork/fer-book-fork@v9.9.9" in nb.cells[1].source


def test_a_hand_edited_link_is_caught(tmp_path: Path) -> None:
    root = copy_linked_files(tmp_path)
    readme = root / "README.md"
    readme.write_text(
        readme.read_text() + "\n[Open](https://colab.research.google.com/github/someone-else/"
        "fer-book/blob/main/notebooks/01_dataset_tour.ipynb)\n"
    )
    assert sync_repository(root, check=True) == ["README.md"]


def test_links_to_other_projects_are_left_alone(tmp_path: Path) -> None:
    root = copy_linked_files(tmp_path)
    other = "LiteRT: https://github.com/google-ai-edge/LiteRT and https://github.com/lightweight-fer/fer-book-data"
    readme = root / "README.md"
    readme.write_text(readme.read_text() + f"\n{other}\n")
    assert sync_repository(root, check=True) == []
    config = root / "_config.yml"
    config.write_text(config.read_text().replace("github.com/lightweight-fer/fer-book", "github.com/fork/fer-book"))
    sync_repository(root)
    text = readme.read_text()
    assert other in text and "https://github.com/fork/fer-book@" in text


def test_a_notebook_whose_sources_are_strings_keeps_its_lines_when_its_links_are_made(tmp_path: Path) -> None:
    """nbformat allows a cell's source as one string: the links are made in it line by line, never split into
    characters."""
    from fer_book.links import sync_notebook

    nb = json.loads((REPO / "notebooks" / "03_architecture.ipynb").read_text())
    for cell in nb["cells"]:
        cell["source"] = "".join(cell["source"])
    made = sync_notebook(nb, "notebooks/03_architecture.ipynb", book_links(REPO / "_config.yml"))
    original = json.loads((REPO / "notebooks" / "03_architecture.ipynb").read_text())
    assert [c["source"] for c in made["cells"]] == [c["source"] for c in original["cells"]]


def test_config_builds_from_saved_outputs_with_local_widgets() -> None:
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert config["only_build_toc_files"] is True
    assert config["bibtex_bibfiles"] == ["references.bib"]
    widget_js = config["sphinx"]["config"]["nb_ipywidgets_js"]
    assert all(not key.startswith("http") for key in widget_js), "widgets JS must not come from a CDN"
    for excluded in ("_build", ".venv", "data", "_cache"):
        assert excluded in config["exclude_patterns"]


def test_a_failing_cell_is_reported_with_its_notebook_and_cell(tmp_path: Path) -> None:
    from nbformat.v4 import new_code_cell, new_notebook

    from fer_book.execute import execute_notebook

    nb = new_notebook(cells=[new_code_cell("x = 1"), new_code_cell("y = x / 0")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source = tmp_path / "broken.ipynb"
    nbformat.write(nb, source)
    run = execute_notebook(source, tmp_path / "out" / "broken.ipynb", timeout=60)
    assert run.notebook == "broken.ipynb"
    assert run.error and "ZeroDivisionError" in run.error and "y = x / 0" in run.error
    executed = nbformat.read(tmp_path / "out" / "broken.ipynb", as_version=4)
    assert any(o.output_type == "error" for c in executed.cells for o in c.get("outputs", []))


def test_links_command_checks_the_repository() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "fer_book", "links", "--check"], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 file(s) disagree" in result.stdout


def test_the_reference_size_and_epochs_are_defined_once_in_the_repository() -> None:
    """`REFERENCE_SIZE =` and `REFERENCE_EPOCHS =` appear once in the package, tooling and chapters."""
    sources = [*REPO.glob("fer_utils/**/*.py"), *REPO.glob("fer_book/*.py"), *REPO.glob("notebooks/*.ipynb")]
    for name in ("REFERENCE_SIZE", "REFERENCE_EPOCHS"):
        hits = [p for p in sources if re.search(rf"^\s*\"?{name} = ", p.read_text(), re.M)]
        assert [p.relative_to(REPO).as_posix() for p in hits] == ["fer_utils/train/config.py"], name
