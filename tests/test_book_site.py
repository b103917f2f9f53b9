"""`book build` writes only what it owns into OUT/html, and vendors npm packages only when their sha512 matches.

`book build --out www` used to delete an existing `www/html` wholesale, including files the
build did not write. The site's manifest (`SITE_MANIFEST`) now records what a build wrote.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fer_book.build import SITE_MANIFEST, build_book, install_site
from fer_book.execute import stage_sources
from fer_book.npm import LITERT_WASM_UTILS, check_integrity, npm_tarball
from fer_book.toc import repo_root
from fer_utils.book.artifacts import default_cache
from fer_utils.errors import BookError


def site(folder: Path, files: dict[str, str]) -> Path:
    """A folder holding `files` (relative path → text), like a freshly built site."""
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def test_a_rebuild_keeps_files_it_did_not_write_and_drops_its_stale_ones(tmp_path: Path) -> None:
    html = site(tmp_path / "www" / "html", {"notes/mine.txt": "the reader's own file", "CNAME": "book.example"})
    install_site(site(tmp_path / "b1", {"index.html": "v1", "old/page.html": "old"}), html)
    install_site(site(tmp_path / "b2", {"index.html": "v2", "new/page.html": "new"}), html)
    assert (html / "notes/mine.txt").read_text() == "the reader's own file"
    assert (html / "CNAME").read_text() == "book.example"
    assert (html / "index.html").read_text() == "v2" and (html / "new/page.html").is_file()
    assert not (html / "old/page.html").exists(), "a page the new build no longer makes is removed"
    assert json.loads((html / SITE_MANIFEST).read_text()) == ["index.html", "new/page.html"]


def test_the_build_refuses_to_overwrite_a_file_it_did_not_write(tmp_path: Path) -> None:
    html = site(tmp_path / "www" / "html", {"index.html": "hand-written", "keep.txt": "x"})
    with pytest.raises(BookError, match="no book build wrote"):
        install_site(site(tmp_path / "built", {"index.html": "generated", "a.html": "a"}), html)
    assert (html / "index.html").read_text() == "hand-written"
    assert not (html / "a.html").exists() and not (html / SITE_MANIFEST).exists(), "nothing changed"


@pytest.mark.slow
def test_book_build_into_an_existing_folder_keeps_the_readers_files(tmp_path: Path) -> None:
    """The real `build_book` (jupyter-book) of a one-page stage, twice, into a folder with a foreign file."""
    import keras

    from fer_utils.models.networks import build_paper_cnn, save_model

    root, stage, out = repo_root(), tmp_path / "stage", tmp_path / "www"
    stage_sources(root, stage)
    (stage / "_toc.yml").write_text("format: jb-book\nroot: book/demo\nchapters:\n  - file: book/data_licenses\n")
    keras.utils.set_random_seed(0)
    model = save_model(
        build_paper_cnn(num_classes=2, input_shape=(48, 48, 1)), tmp_path / "m" / "model.keras", ["neutral", "happy"]
    )
    site(out / "html", {"drafts/notes.md": "mine"})
    build_book(stage, out, default_cache(), model, {"trained_on": "an untrained test model"})
    build_book(stage, out, default_cache(), model, {"trained_on": "an untrained test model"})
    assert (out / "html" / "drafts/notes.md").read_text() == "mine"
    assert (out / "html" / "book" / "demo.html").is_file()
    assert (out / "html" / "demo-assets" / "model.tflite").is_file()


def test_a_tampered_npm_tarball_is_refused(tmp_path: Path) -> None:
    good = npm_tarball(LITERT_WASM_UTILS, default_cache())  # the cache of `make book`, else the registry
    check_integrity(good, LITERT_WASM_UTILS)
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    with pytest.raises(BookError, match="sha512"):
        check_integrity(bytes(bad), LITERT_WASM_UTILS)
    cache = tmp_path / "cache"
    (cache / "npm").mkdir(parents=True)
    (cache / "npm" / LITERT_WASM_UTILS.cache_name).write_bytes(bytes(bad))
    with pytest.raises(BookError, match="sha512"):
        npm_tarball(LITERT_WASM_UTILS, cache)


def test_a_build_points_every_staged_link_at_a_changed_repository(tmp_path: Path) -> None:
    """`build_book` syncs the stage from its _config.yml: a fork that edits only that file gets its own links."""
    from fer_book.links import book_links, sync_repository
    from fer_book.toc import toc_notebooks

    root, stage = repo_root(), tmp_path / "stage"
    stage_sources(root, stage)
    for notebook in toc_notebooks(root):
        (stage / notebook).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / notebook, stage / notebook)
    old = book_links(stage / "_config.yml")
    config = stage / "_config.yml"
    config.write_text(config.read_text().replace(old.url, "https://github.com/a-fork/fer-book"))
    sync_repository(stage)
    new = book_links(config)
    for notebook in toc_notebooks(stage):
        text = (stage / notebook).read_text()
        assert old.slug not in text and new.colab_url(notebook.as_posix()) in text
        assert new.install_spec in text
