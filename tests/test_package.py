"""The package installs, reports its version and exposes its command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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


def test_every_choice_the_cli_offers_works(tmp_path) -> None:
    """What the command line offers (read from its parser, as `--help` shows it) is what the package can do:
    every model has a builder, every protocol splits a table, every detector can be made, every dataset has an
    indexer or a downloader (each TFLite mode is converted in tests/test_deploy.py). A choice added to the CLI without its
    implementation fails here (comparing the choices with the constants they come from could not)."""
    import pandas as pd

    from fer_utils.data.download import MANUAL_DATASETS, download_dataset
    from fer_utils.data.indexing import INDEXERS
    from fer_utils.data.splits import split_frames
    from fer_utils.errors import InputError
    from fer_utils.faces.crops import make_detector
    from fer_utils.models.networks import MODEL_BUILDERS

    assert set(_option_choices("train", "--model")[1]) <= set(MODEL_BUILDERS)
    assert set(_option_choices("compare", "--models")[1]) <= set(MODEL_BUILDERS)
    frames = pd.DataFrame(
        {
            "clip_id": [f"c{i}" for i in range(40)],
            "subject": [f"s{i % 10}" for i in range(40)],
            "emotion": ["happy", "sad"] * 20,
            "split": ["train"] * 30 + ["test"] * 10,
        }
    )
    for option in ("train", "evaluate"):
        for protocol in _option_choices(option, "--protocol")[1]:
            split = split_frames(frames, protocol, 0.2, 0.1, seed=0)
            assert len(split.train) and len(split.test), protocol
    for command in ("predict", "preprocess", "detect"):
        for name in _option_choices(command, "--detector")[1]:
            assert callable(make_detector(name).detect), (command, name)
    assert set(_option_choices("index", "--dataset")[1]) <= set(INDEXERS)
    for name in _option_choices("download", "dataset")[1]:
        if name in MANUAL_DATASETS:  # its instructions, not "unknown dataset"
            with pytest.raises(InputError, match=name.upper()) as refused:
                download_dataset(name, tmp_path)
            assert "unknown dataset" not in str(refused.value)
        else:  # fetched for real from a local server by tests/test_download.py and test_download_cremad.py
            assert name in ("ravdess", "cremad"), name


def test_every_registered_name_has_its_implementation() -> None:
    """What each owning module defines itself (a builder, a downloader, a detector's search size) covers
    the registry's names: comparisons that can fail, unlike a constant compared with its own import."""
    from fer_utils import registry
    from fer_utils.data import download
    from fer_utils.faces import crops as faces
    from fer_utils.models import networks as models

    assert tuple(models.MODEL_BUILDERS) == registry.MODEL_NAMES
    assert ("ravdess", "cremad", *download.MANUAL_DATASETS) == registry.DOWNLOADABLE_DATASETS
    assert tuple(faces.DETECTOR_TABLE) == registry.DETECTORS
    assert [name for name, kind in faces.DETECTOR_TABLE.items() if kind.max_side is None] == [registry.NO_DETECTOR]


def test_cli_help_imports_no_heavy_library() -> None:
    """`--help` builds the parsers only: the libraries load when a command runs (pandas came in through
    `train.config` once its checks moved there)."""
    code = (
        "import sys\n"
        "from fer_utils.cli import main\n"
        "for argv in (['--help'], ['train', '--help'], ['quantize', '--help'], ['preprocess', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'dlib', 'cv2', 'sklearn', 'pandas') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_the_recognizer_is_one_import_from_the_package_which_stays_cheap_to_import() -> None:
    """`from fer_utils import Recognizer`, what a reader types first, was an ImportError (it lives in
    `fer_utils.deploy.inference`); importing the package still loads no TensorFlow."""
    code = (
        "import sys\nimport fer_utils\nprint('tensorflow' in sys.modules)\n"
        "from fer_utils import Recognizer\nprint(Recognizer.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "fer_utils.deploy.inference"]
    with pytest.raises(AttributeError, match="no attribute 'Recogniser'"):
        import fer_utils

        fer_utils.Recogniser  # noqa: B018


@pytest.mark.parametrize(
    ("version", "supported"),
    [
        ((3, 9, 18), False),
        ((3, 10, 13), False),
        ((3, 11, 7), True),
        ((3, 12, 1), True),
        ((3, 13, 0), True),
        ((3, 14, 0), False),
    ],
)
def test_python_versions_outside_the_supported_ones_get_one_line_naming_them(version: tuple, supported: bool) -> None:
    """Python 3.9 and 3.10 ended in ModuleNotFoundError with no word of the supported versions (README said 3.11
    and 3.12, pyproject.toml >= 3.10). The range is said once (fer_utils.SUPPORTED_PYTHONS: 3.11 to 3.13, where
    the pinned tensorflow-cpu, SciPy and Pillow have wheels); `python -m fer_utils` checks it before importing
    anything else, and pyproject.toml's requires-python is the same range."""
    import tomllib

    problem = fer_utils.python_problem(version)
    assert (problem is None) is supported
    if not supported:
        assert problem.startswith("fer_utils runs on Python 3.11 to 3.13 (") and "\n" not in problem
        assert f"this is Python {version[0]}.{version[1]}" in problem
    from packaging.specifiers import SpecifierSet

    project = tomllib.loads((Path(fer_utils.__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert SpecifierSet(project["requires-python"]).contains(".".join(map(str, version))) is supported
