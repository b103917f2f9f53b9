"""The package installs, reports its version and exposes its command line."""

from __future__ import annotations

import subprocess
import sys

import fer_utils
from fer_utils.assets import stills_dir


def test_version_is_semver() -> None:
    parts = fer_utils.__version__.split(".")
    assert len(parts) == 3 and all(p.isdigit() for p in parts)


def test_cli_help_lists_subcommands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fer_utils", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("sample", "download", "index", "preprocess", "detect", "train", "evaluate",
                    "predict", "compare", "quantize"):
        assert command in out


def test_stills_ship_with_attribution() -> None:
    attribution = (stills_dir() / "ATTRIBUTION.md").read_text()
    assert "CC BY-NC-SA 4.0" in attribution
    assert "Livingstone" in attribution
