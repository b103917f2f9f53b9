"""Fixtures shared by the whole suite."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from http_site import Site, make_handler

from fer_utils.assets import still_paths

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (where _toc.yml lives)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def stills() -> list[Path]:
    """The 24 real neutral RAVDESS actor stills shipped in fer_utils/assets."""
    paths = still_paths()
    assert len(paths) == 24, "the package must ship all 24 RAVDESS stills"
    return paths


# --- dataset trees and the synthetic sample -------------------------------------------

SAMPLE_ACTORS = (1, 2, 3, 4)


def touch_file(path: Path) -> Path:
    """Create an empty file (and its folders): indexers only read names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def build_ravdess_tree(root: Path, actors: tuple[int, ...] = (1, 2, 3, 4, 5, 6)) -> Path:
    """A RAVDESS tree as Video_Speech_Actor_XX.zip unpacks: every trial in audio-video (01) and
    video-only (02) form, every emotion, intensity (none strong for neutral), statement, repetition."""
    for actor in actors:
        for modality in ("01", "02"):
            for emotion in range(1, 9):
                for intensity in (1,) if emotion == 1 else (1, 2):
                    for statement in (1, 2):
                        for repetition in (1, 2):
                            name = f"{modality}-01-{emotion:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}.mp4"
                            touch_file(root / f"Actor_{actor:02d}" / name)
    return root


def build_savee_tree(root: Path) -> Path:
    """SAVEE's AudioVisualClip layout: four speakers, every emotion code, two sentences each."""
    for speaker in ("DC", "JE", "JK", "KL"):
        for code in ("a", "d", "f", "h", "n", "sa", "su"):
            for sentence in (1, 2, 3):
                touch_file(root / speaker / f"{code}{sentence:02d}.avi")
    return root


@pytest.fixture(scope="session")
def ravdess_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty-file RAVDESS tree (6 actors, all 60 speech trials × 2 modalities each)."""
    return build_ravdess_tree(tmp_path_factory.mktemp("ravdess"))


@pytest.fixture(scope="session")
def savee_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty-file SAVEE tree (4 speakers × 7 emotion codes × 3 sentences)."""
    return build_savee_tree(tmp_path_factory.mktemp("savee"))


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real synthetic sample: actors 1-4 × 8 emotions × intensity 1 = 32 clips (15 frames,
    1280×720), generated once per session with `fer_utils.faces.sample.generate_sample`."""
    from fer_utils.faces.sample import generate_sample

    out = tmp_path_factory.mktemp("sample")
    generate_sample(out, actors=SAMPLE_ACTORS, intensities=(1,), workers=1, progress=False)
    return out


# --- a local HTTP server for the downloaders (tests/http_site.py) ---


@pytest.fixture()
def site() -> Iterator[Site]:
    """A ThreadingHTTPServer on 127.0.0.1 (random port) in a thread, serving a Site."""
    state = Site()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


# The modules whose tests need Linux's tools: Debian's chromium (tests/browser.py) or bubblewrap (fer_book.grade).
LINUX_TOOLS = frozenset({"browser", "fer_book.grade"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `linux` the tests of a module that uses LINUX_TOOLS (macOS and Windows CI deselect them)."""
    for item in items:
        module = getattr(item, "module", None)
        used = {getattr(value, "__module__", None) for value in vars(module).values()} if module else set()
        if used & LINUX_TOOLS:
            item.add_marker(pytest.mark.linux)
