"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

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
