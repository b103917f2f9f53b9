"""Every chapter that trains trains the code it shows (issues 29 and 37): a shown builder edited in a real kernel
makes the run the chapter trains have the edited network, and the shown data code (chapter 2's crop, chapter 4's
input pipeline, chapter 6's split) edited makes the crops or runs it reports use the edited data.

Each case executes, with papermill and the smallest parameters the chapter takes, a trimmed copy of the
chapter: its parameters, imports, definitions and data cell, the shown code's cell as shipped (whose fingerprint must
equal the package's copy: chapters share their cached runs through that), the shown code edited (the cell
changed, or a cell that redefines a function around the shown one), and the chapter's training cells, where
the copy stops. Every run trained into the case's fresh `runs/` folder must hold the edited layer.

The case's cache is a temporary folder whose other entries (crops, real-face folders) are links into the
book's cache, so the crops that `make book` made are reused, and crops made here are kept there.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from fer_book.execute import PARAMETERS_TAG
from fer_utils.book.artifacts import default_cache

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CELL_TIMEOUT_S = 600

# A cell that redefines `name` around the shown one (the shown one stays reachable as `_shown_<name>`).
WRAP = """import keras

_shown_{name} = {name}


def {name}(*args, **kwargs):
    \"\"\"The shown {name}, edited: {what}.\"\"\"
{body}
"""
# Adds a softmax layer named "edited" on top of a shown model builder's network.
EDITED_HEAD = """    model = _shown_{name}(*args, **kwargs)
    head = keras.layers.Dense(model.output_shape[-1], activation="softmax", name="edited")(model.outputs[0])
    return keras.Model(model.inputs, head, name=model.name)"""
# Marks a shown block's output with a layer named "<block name>_edited".
EDITED_BLOCK = """    x = _shown_{name}(*args, **kwargs)
    block = kwargs.get("name", args[2] if len(args) > 2 else "block")
    return keras.layers.Activation("linear", name=f"{{block}}_edited")(x)"""


@dataclass(frozen=True)
class Case:
    """One chapter: what to run, which shown code to edit, how, and what the edited model must hold."""

    notebook: str
    parameters: dict
    training: str  # a pattern of the cells that train: the copy stops after the last one
    shown: str  # the shown function edited, defined in the chapter's `shown_in` cell
    package: str  # the module of its package copy (`fer_book sync` keeps them equal)
    replace: tuple[str, str] | None = None  # the edit as a text change in the shown cell, else a wrapper cell
    wrapper: str = EDITED_HEAD
    layer: str = "edited"  # a layer of every edited run's model, with `config`'s values
    config: dict = field(default_factory=dict)
    # for an edit of the data code: what is wrong with a run folder that does not show the edit (None: nothing)
    shows_edit: Callable[[Path], str | None] | None = None


def same_prediction_everywhere(run: Path) -> str | None:
    """An input pipeline that feeds only black images: every test frame gets the same probabilities (up to float
    rounding: a batch of another size can round in the last bits, 1.5e-8 seen on an AMD EPYC)."""
    import pandas as pd

    table = pd.read_csv(run / "test_predictions.csv")
    probabilities = table[[c for c in table.columns if c.startswith("p_")]]
    spread = float((probabilities.max() - probabilities.min()).max())
    return None if spread < 1e-6 else f"test frames got different predictions (spread {spread:.3g})"


def half_the_frames_on_the_test_side(run: Path) -> str | None:
    """A split edited to hold out half of the frames (the default 20 %)."""
    sizes = json.loads((run / "config.json").read_text())["sizes"]
    share = sizes["test"] / sum(sizes.values())
    return None if share >= 0.45 else f"the test side holds {share:.2f} of the frames, not half"


THIRD_CONV = ("zip((16, 64, 64), dropout)", "zip((16, 64, 24), dropout)")
CASES = [
    Case(
        "03_architecture",
        {"IMAGE_SIZE": 16, "EPOCHS": 1},
        r"fer\.train\(",
        "build_paper_cnn",
        "fer_utils.models.networks",
        replace=THIRD_CONV,
        layer="conv3",
        config={"filters": 24},
    ),
    Case(
        "04_training",
        {"IMAGE_SIZE": 16, "EPOCHS": 1, "SEEDS": [0]},
        r"fer\.train\(",
        "fit_model",
        "fer_utils.train.fit",
        replace=(
            "        **options,\n    )\n",
            "        **options,\n    )\n"
            '    head = keras.layers.Dense(num_classes, activation="softmax", name="edited")(model.outputs[0])\n'
            "    model = keras.Model(model.inputs, head)\n",
        ),
        config={"activation": "softmax"},
    ),
    Case(
        "05_regularization",
        {
            "SUBJECTS": 140,
            "IMAGE_SIZE": 16,
            "EPOCHS": 1,
            "SEEDS": [0],
            "SETTINGS": {
                "no dropout, no L1": {"dropout": [0.0, 0.0, 0.0], "l1": 0.0},
                "paper's SAVEE: (0.3, 0.5, 0.5) + L1": {"dropout": [0.3, 0.5, 0.5], "l1": 1e-4},
            },
            "PUBLISHED_SIZE": 16,
            "PUBLISHED_EPOCHS": 1,
        },
        r"train_variants\(\s*build_paper_cnn",
        "build_paper_cnn",
        "fer_utils.models.networks",
        replace=THIRD_CONV,
        layer="conv3",
        config={"filters": 24},
    ),
    Case(  # passes once chapter 7 builds mini-Xception from the block it shows
        "07_comparison",
        {"SUBJECTS": 4, "IMAGE_SIZE": 32, "EPOCHS": 1, "TRAIN_MODELS": ["mini-xception"], "SEEDS": [0]},
        r"fer\.train_variants\(\s*builders\.get",  # the race of the light models (not the later clip race)
        "separable_residual_block",
        "fer_utils.models.networks",
        wrapper=EDITED_BLOCK,
        layer="block1_edited",
        config={"activation": "linear"},
    ),
    Case(
        "10_seven_expressions",
        {"IMAGE_SIZE": 16, "EPOCHS": 1, "PATIENCE": 1, "TRAIN_MODELS": ["paper-cnn"], "SEEDS": [0]},
        r"fer\.train\(",
        "build_paper_cnn",
        "fer_utils.models.networks",
        config={"activation": "softmax"},
    ),
    Case(  # the pipeline chapter 4 shows feeds its reference run: edited to black images, every frame looks the same
        "04_training",
        {"IMAGE_SIZE": 16, "EPOCHS": 1, "SEEDS": [0]},
        r"fer\.train\(",
        "make_dataset",
        "fer_utils.train.pipeline",
        replace=(
            "        return image, label\n",
            "        image = tf.zeros_like(image)  # edited: black images\n        return image, label\n",
        ),
        shows_edit=same_prediction_everywhere,
    ),
    Case(  # the split chapter 6 shows splits its runs: edited to hold out half the frames
        "06_evaluation_protocols",
        {"SUBJECTS": 4, "IMAGE_SIZE": 16, "EPOCHS": 1, "SEEDS": [0], "PROTOCOLS": ["random"]},
        r"fer\.train_variants\(|dataset\.crops\(",  # the crops' cell, then the runs' cell
        "split_frames",
        "fer_utils.data.splits",
        replace=(
            "rest, test = holdout(df, protocol, test_size, seed)",
            "rest, test = holdout(df, protocol, 0.5, seed)",
        ),
        shows_edit=half_the_frames_on_the_test_side,
    ),
]


def defines(source: str, name: str) -> bool:
    """Whether a cell defines or imports `name`."""
    return bool(re.search(rf"^def {name}\(|^from \S+ import (\([^)]*|[^\n(]*)\b{name}\b", source, re.M))


def keeps(cell: nbformat.NotebookNode) -> bool:
    """The cells a trimmed chapter keeps before its training cells: parameters, imports, definitions and the cell
    that reads the chapter's data (`dataset = fer.Dataset(...)`)."""
    return PARAMETERS_TAG in cell.metadata.get("tags", []) or bool(
        re.search(r"^(import |from \S+ import |def |class |# @save|dataset = fer\.Dataset\()", cell.source, re.M)
    )


def trimmed_chapter(case: Case) -> nbformat.NotebookNode:
    """The chapter's parameters, imports, definitions and data cell, the shown code as shipped with its fingerprint checked
    against the package's, the shown code edited, and its training cells (the last one ends the copy)."""
    nb = nbformat.read(REPO / "notebooks" / f"{case.notebook}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    training = [
        i
        for i, c in enumerate(code)
        if re.search(case.training, c.source)
        and not re.search("^def ", c.source, re.M)
        and "exercises.check_" not in c.source  # an exercise's run (chapter 4's experiment) is not the chapter's
    ]
    assert training, f"{case.notebook} has no cell matching {case.training!r}"
    (shown,) = [i for i, c in enumerate(code) if defines(c.source, case.shown)]
    check = nbformat.v4.new_code_cell(
        "from fer_utils.book.fingerprint import code_fingerprint\n"
        f"from {case.package} import {case.shown} as _package_copy\n\n"
        f'assert code_fingerprint({case.shown}) == code_fingerprint(_package_copy), "not the package copy"'
    )
    if case.replace:
        old, new = case.replace
        assert old in code[shown].source, f"{case.notebook}'s {case.shown} cell has no {old!r}"
        edit = nbformat.v4.new_code_cell(code[shown].source.replace(old, new))
    else:
        body = case.wrapper.format(name=case.shown)
        edit = nbformat.v4.new_code_cell(WRAP.format(name=case.shown, what=f"see layer {case.layer}", body=body))
    cells = []
    for i, cell in enumerate(code[: training[-1] + 1]):
        if i == shown:
            cells += [cell, check, edit]
        elif i in training or keeps(cell):
            cells.append(cell)
    nb.cells = cells
    return nb


def case_cache(tmp_path: Path) -> Path:
    """A fresh cache whose entries but `runs/` are links into the book's cache (`crops/` made there first)."""
    book = default_cache()
    (book / "crops").mkdir(parents=True, exist_ok=True)
    cache = tmp_path / "cache"
    cache.mkdir()
    for entry in book.iterdir():
        if entry.name != "runs" and not entry.name.startswith("."):
            (cache / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return cache


def model_layers(model_file: Path) -> dict[str, dict]:
    """Each layer's config by name, read from a `.keras` file's config.json (nested models included)."""
    with zipfile.ZipFile(model_file) as archive:
        config = json.loads(archive.read("config.json"))
    found: dict[str, dict] = {}

    def walk(node: object) -> None:
        if isinstance(node, dict):
            inner = node.get("config")
            if "class_name" in node and isinstance(inner, dict) and "name" in inner:
                found.setdefault(inner["name"], inner)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return found


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case.notebook[:2]}-{case.shown}")
def test_an_edited_shown_builder_is_what_the_chapter_trains(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chapter, trimmed and executed in a real kernel with its shown code edited, trains runs whose model
    has the edited layer; its shown code as shipped has the package's fingerprint."""
    import papermill

    cache = case_cache(tmp_path)
    monkeypatch.setenv("FER_CACHE", str(cache))
    source = tmp_path / f"{case.notebook}.ipynb"
    nbformat.write(trimmed_chapter(case), source)
    papermill.execute_notebook(
        str(source),
        str(tmp_path / "executed.ipynb"),
        parameters=case.parameters,
        kernel_name="python3",
        cwd=str(tmp_path),
        execution_timeout=CELL_TIMEOUT_S,
        progress_bar=False,
    )
    runs = sorted(p for p in (cache / "runs").glob("[!.]*") if p.is_dir())
    assert runs, f"{case.notebook} trained no run"
    for run in runs:
        if case.shows_edit is not None:
            problem = case.shows_edit(run)
            assert problem is None, f"{run.name}: {problem}"
            continue
        layers = model_layers(run / "model.keras")
        assert case.layer in layers, f"{run.name}: no layer {case.layer!r} in {sorted(layers)}"
        got = {k: layers[case.layer].get(k) for k in case.config}
        assert got == case.config, f"{run.name}: layer {case.layer!r} has {got}, not the edited {case.config}"


def test_an_edited_crop_face_cuts_the_crops_chapter_2_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 37: chapter 2's `crop_face`, edited in a real kernel (every crop one gray level), cuts the dataset's
    crops the chapter reports: a folder of its own, every crop that gray; as shipped it has the package's
    fingerprint, so the chapter shares the package's crops (the check cell of `trimmed_chapter`)."""
    import cv2
    import numpy as np
    import papermill

    gray = 77
    case = Case(
        "02_preprocessing",
        {"FRAMES": 1, "WORKERS": 1, "SPEED_FRAMES": 1},
        r"dataset\.crops\(",
        "crop_face",
        "fer_utils.faces.crops",
        replace=(
            "    if size is None:\n",
            f"    padded = np.full_like(padded, {gray})  # edited\n    if size is None:\n",
        ),
    )
    monkeypatch.setenv("FER_CACHE", str(case_cache(tmp_path)))
    source = tmp_path / f"{case.notebook}.ipynb"
    nbformat.write(trimmed_chapter(case), source)
    executed = tmp_path / "executed.ipynb"
    papermill.execute_notebook(
        str(source),
        str(executed),
        parameters=case.parameters,
        kernel_name="python3",
        cwd=str(tmp_path),
        execution_timeout=CELL_TIMEOUT_S,
        progress_bar=False,
    )
    text = "".join(o.get("text", "") for c in nbformat.read(executed, as_version=4).cells for o in c.get("outputs", []))
    found = re.search(r"crops in (\S+)", text)
    assert found, "the chapter did not say where its crops are"
    crops = sorted(Path(found.group(1)).rglob("*.png"))
    assert crops, f"no crop in {found.group(1)}"
    values = {int(v) for p in crops for v in np.unique(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE))}
    assert values == {gray}, f"the reported crops are not the edited crop_face's: gray levels {sorted(values)[:8]}"
