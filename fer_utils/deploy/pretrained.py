"""The book's pretrained model: its network for faces in the wild trained on real FER-2013, shipped in the package
with its card (`fer_utils/assets/pretrained/`, written by `python -m fer_book pretrain`). `Recognizer()`, `predict` and
`evaluate` use it when given no model; its file is checked against the card's SHA-256 before it loads."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from fer_utils.errors import MissingFileError, SetupError
from fer_utils.storage.run_files import MODEL_FILE

if TYPE_CHECKING:
    import pandas as pd

    from fer_utils.train.runs import LoadedRun

PRETRAINED_NAME = "fer-book-wild"  # the name tables and the page give it, beside the peer's
CARD_FILE = "card.json"  # what was trained, how, and what it scored: the one source of MODEL_CARD.md
CARD_MARKDOWN = "MODEL_CARD.md"


def pretrained_dir() -> Path:
    """The pretrained model's folder: model.keras, classes.json, crop_spec.json, config.json, history.csv, its card."""
    return Path(str(files("fer_utils.assets") / "pretrained"))


def pretrained_card(folder: Path | None = None) -> dict:
    """The card (`card.json`) of the pretrained model in `folder` (default: the package's)."""
    path = Path(folder or pretrained_dir()) / CARD_FILE
    if not path.is_file():
        raise MissingFileError(f"{path} is missing: this install of fer_utils ships no pretrained model; reinstall it")
    return json.loads(path.read_text(encoding="utf-8"))


def recipe_runs(path: Path | None = None) -> pd.DataFrame:
    """The FER-2013 runs the presets were chosen by (default: the package's record), one row a run: its PublicTest
    accuracy and macro F1 per test-time augmentation (`none accuracy`, `flip macro_f1`, …), its `train_seconds` (on
    the 2-core machine of its record); `as_shipped` when the run trained its preset unchanged."""
    import pandas as pd

    from fer_utils.assets import recipe_runs_path

    path = Path(path or recipe_runs_path())
    runs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return pd.DataFrame(
        {
            **{key: run[key] for key in ("candidate", "preset", "seed", "params", "epochs", "train_seconds")},
            "as_shipped": not run["changes"] and not run["options"],
            **{
                f"{mode} {name}": score[name] for mode, score in run["tta"].items() for name in ("accuracy", "macro_f1")
            },
        }
        for run in runs
    )


def pretrained_model_file(folder: Path | None = None) -> Path:
    """The pretrained model file in `folder` (default: the package's), once its SHA-256 matches its card's."""
    from fer_utils.data.download import file_digest

    folder = Path(folder or pretrained_dir())
    expected, path = pretrained_card(folder)["model"]["sha256"], folder / MODEL_FILE
    if not path.is_file() or file_digest(path, "sha256") != expected:
        raise SetupError(
            f"{path} is missing or is not the file its card describes (SHA-256 {expected[:12]}…): the install is "
            "damaged; reinstall fer_utils"
        )
    return path


def pretrained_run(folder: Path | None = None) -> LoadedRun:
    """The pretrained model read once, digest checked: its model, classes, crop spec and served TTA."""
    from fer_utils.train.runs import RunFolder

    path = pretrained_model_file(folder)
    return RunFolder(path.parent).open(path)
