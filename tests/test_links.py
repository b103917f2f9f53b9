"""The book's links (`python -m fer_book links`): every Colab badge, install cell and repository link is made
from `_config.yml`, so a fork that edits that file gets its own links, and a hand-edited link is caught."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat

import fer_utils
from fer_book.links import LINKED_TEXT_FILES, book_links, sync_notebook, sync_repository

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_every_badge_install_cell_and_readme_link_agrees_with_the_config() -> None:
    assert sync_repository(REPO, check=True) == [], "run `python -m fer_book links`"


def test_links_command_checks_the_repository() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fer_book", "links", "--check"], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 file(s) disagree" in result.stdout


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
    pages = {f"book/{page.name}" for page in (root / "book").glob("*.md") if old.slug in page.read_text()}
    assert "book/how_to_use.md" in pages, "the page that shows the install cell names the repository"
    stale = sync_repository(root, check=True)
    assert set(stale) == {f"notebooks/{p.name}" for p in NOTEBOOKS} | set(LINKED_TEXT_FILES) | pages
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
    assert "https://a-fork.github.io/fer-book-fork/" in (root / "README.md").read_text(), "the published book's address"
    nb = nbformat.read(root / "notebooks" / NOTEBOOKS[0].name, as_version=4)
    nbformat.validate(nb)
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


def test_a_notebook_whose_sources_are_strings_keeps_its_lines_when_its_links_are_made() -> None:
    """nbformat allows a cell's source as one string: the links are made in it line by line, never split into
    characters."""
    nb = json.loads((REPO / "notebooks" / "03_architecture.ipynb").read_text())
    for cell in nb["cells"]:
        cell["source"] = "".join(cell["source"])
    made = sync_notebook(nb, "notebooks/03_architecture.ipynb", book_links(REPO / "_config.yml"))
    original = json.loads((REPO / "notebooks" / "03_architecture.ipynb").read_text())
    assert [c["source"] for c in made["cells"]] == [c["source"] for c in original["cells"]]
