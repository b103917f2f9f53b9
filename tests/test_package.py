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
    for command in (
        "sample",
        "download",
        "index",
        "preprocess",
        "detect",
        "train",
        "evaluate",
        "predict",
        "compare",
        "quantize",
    ):
        assert command in out


def test_stills_ship_with_attribution() -> None:
    attribution = (stills_dir() / "ATTRIBUTION.md").read_text()
    assert "CC BY-NC-SA 4.0" in attribution
    assert "Livingstone" in attribution


def _option_choices(command: str, option: str) -> tuple[object, tuple]:
    """(default, choices) of `option` of `python -m fer_utils command`, read from the CLI's parser."""
    import argparse

    from fer_utils.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    action = next(a for a in commands[command]._actions if option in a.option_strings or a.dest == option)
    return action.default, tuple(action.choices or ())


def test_cli_choices_are_the_registry_names() -> None:
    from fer_utils import registry
    from fer_utils.indexing import INDEXERS

    assert _option_choices("train", "--model") == (None, registry.MODEL_NAMES)
    assert _option_choices("compare", "--models") == (list(registry.MODEL_NAMES), registry.MODEL_NAMES)
    assert _option_choices("train", "--protocol") == (None, registry.PROTOCOLS)
    assert _option_choices("evaluate", "--protocol") == (None, registry.PROTOCOLS)
    assert _option_choices("train", "--init") == (None, registry.INITS)
    assert _option_choices("predict", "--detector") == (registry.DEFAULT_DETECTOR, registry.FACE_DETECTORS)
    assert _option_choices("preprocess", "--detector") == (registry.DEFAULT_DETECTOR, registry.DETECTORS)
    assert _option_choices("detect", "--detector") == (registry.DEFAULT_DETECTOR, registry.DETECTORS)
    assert _option_choices("quantize", "--mode") == (registry.DEFAULT_TFLITE_MODE, registry.TFLITE_MODES)
    assert _option_choices("download", "dataset") == ("ravdess", registry.DOWNLOADABLE_DATASETS)
    assert _option_choices("index", "--dataset") == (None, tuple(INDEXERS))
    assert _option_choices("preprocess", "--size")[0] == _option_choices("compare", "--size")[0] == registry.PAPER_SIDE


def test_every_registered_name_has_its_implementation() -> None:
    """What each owning module defines itself (a builder, a downloader, a detector's search size) covers
    the registry's names: comparisons that can fail, unlike a constant compared with its own import."""
    from fer_utils import faces, fetch, models, registry

    assert tuple(models.MODEL_BUILDERS) == registry.MODEL_NAMES
    assert ("ravdess", "cremad", *fetch.MANUAL_DATASETS) == registry.DOWNLOADABLE_DATASETS
    assert tuple(faces.DETECTOR_TABLE) == registry.DETECTORS
    assert [name for name, kind in faces.DETECTOR_TABLE.items() if kind.max_side is None] == [registry.NO_DETECTOR]


def test_cli_help_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from fer_utils.cli import main\n"
        "for argv in (['--help'], ['train', '--help'], ['quantize', '--help'], ['preprocess', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'dlib', 'cv2', 'sklearn') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
