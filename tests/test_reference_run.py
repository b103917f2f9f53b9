"""One reference run: chapters 3, 4, 8 and 9 obtain it only from the preset
`TrainConfig.preset("reference", image_size=(IMAGE_SIZE, IMAGE_SIZE), epochs=EPOCHS[, seed=…])`, trained by
`fer.train` on `fer.FaceData(...)` of their DATASET with the package's code (or the same code shown), with
the same parameter names and the same defaults, so that `fer_book execute --param IMAGE_SIZE=96` (or any
DATASET, DATA_DIR, EPOCHS) gives all four the same cached run. Read from the chapters' code (the syntax tree
of every code cell), not executed: executing the four chapters at another size trains for many minutes."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from fer_book.execute import PARAMETERS_TAG
from fer_utils.train.config import PRESETS, REFERENCE_EPOCHS, REFERENCE_SIZE, TrainConfig

REPO = Path(__file__).resolve().parents[1]
REFERENCE_CHAPTERS = ("03_architecture", "04_training", "08_deployment", "09_real_faces")
# The preset call every reference chapter makes (its keywords, as written); `seed=` may follow.
PRESET_CALL = 'TrainConfig.preset("reference", image_size=(IMAGE_SIZE, IMAGE_SIZE), epochs=EPOCHS'
# The code a chapter may pass to FaceData: the same source as the package's has the same cache key, so it keeps
# the run the chapters share (tests/test_artifacts.py checks the keys agree).
DATA_KEYWORDS = {"pipeline", "split"}
# Chapter parameters that select which reference run: set in the parameters cell only.
SELECTING = ("DATASET", "DATA_DIR", "IMAGE_SIZE", "EPOCHS", "SEED")
# Calls that train or configure a run: the reference run's EPOCHS may reach none of them but the preset.
TRAINING_CALLS = {"train", "fit_model", "train_variants", "TrainConfig", "replace"}


def cell_trees(name: str) -> tuple[ast.Module, list[ast.Module]]:
    """The syntax trees of a chapter's parameters cell and of its other code cells (IPython magics and
    shell lines as IPython runs them)."""
    nb = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    params, others = None, []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tree = ast.parse(TransformerManager().transform_cell(cell.source))
        if PARAMETERS_TAG in cell.metadata.get("tags", []):
            params = tree
        else:
            others.append(tree)
    assert params is not None, f"{name} has no parameters cell"
    return params, others


def called_name(call: ast.Call) -> str:
    """`f` for `f(...)` and `module.f(...)`."""
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def defaults(params: ast.Module) -> dict[str, ast.expr]:
    """The parameters cell's assignments, name -> value expression."""
    return {
        target.id: node.value
        for node in params.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def test_the_reference_preset_is_the_one_definition_of_the_reference_settings() -> None:
    reference = TrainConfig.preset("reference")
    assert reference.image_size == (REFERENCE_SIZE, REFERENCE_SIZE) and reference.epochs == REFERENCE_EPOCHS
    assert set(PRESETS["reference"]) == {"image_size", "epochs", "patience"}


def preset_seed(call: ast.Call) -> ast.expr | None:
    """The `seed=` of a reference preset call, None without one."""
    return next((k.value for k in call.keywords if k.arg == "seed"), None)


def reference_problems(params: ast.Module, others: list[ast.Module]) -> list[str]:
    """What in a chapter (its parameters cell, its other code cells) could give it another reference run
    than the other chapters get with the same parameters; empty when it has none."""
    problems = []
    values = defaults(params)
    for parameter, definition in (("IMAGE_SIZE", "REFERENCE_SIZE"), ("EPOCHS", "REFERENCE_EPOCHS")):
        if parameter not in values or ast.unparse(values[parameter]) not in (definition, f"fer.{definition}"):
            problems.append(f"{parameter} does not default to the package's {definition}")
    imported = {  # the package's names, imported from their module or from the book's kit (which gathers them)
        alias.name
        for tree in (params, *others)
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module in ("fer_utils.train.config", "fer_utils.book.kit")
        for alias in node.names
    }
    read_through_kit = all(
        ast.unparse(values.get(p, ast.Constant(0))).startswith("fer.") for p in ("IMAGE_SIZE", "EPOCHS")
    )
    if not read_through_kit and not imported >= {"REFERENCE_SIZE", "REFERENCE_EPOCHS"}:
        problems.append("the chapter does not import REFERENCE_SIZE and REFERENCE_EPOCHS from train_config or the kit")
    nodes = [node for tree in others for node in ast.walk(tree)]
    problems += [
        f"{node.id} is set outside the parameters cell"
        for node in nodes
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id in SELECTING
    ]
    calls = [node for node in nodes if isinstance(node, ast.Call)]
    presets = [
        call
        for call in calls
        if called_name(call) == "preset" and call.args and ast.unparse(call.args[0]) == "'reference'"
    ]
    if not presets:
        problems.append("the reference preset is never asked for")
    for call in presets:
        text = ast.unparse(call).replace("'", '"').removeprefix("fer.")
        if not text.startswith(PRESET_CALL) or any(
            k.arg not in {"image_size", "epochs", "seed"} for k in call.keywords
        ):
            problems.append(f"{text} is not {PRESET_CALL}[, seed=…])")
    # at least one reference run is the one every chapter shares: the default seed, or SEED defaulting to it
    default_seed = TrainConfig().seed
    seed_default = values.get("SEED")
    seeds = [ast.unparse(s) for s in (preset_seed(c) for c in presets) if s is not None]
    configs = {  # the names the preset's config is assigned to
        target.id
        for node in nodes
        if isinstance(node, ast.Assign) and node.value in presets
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    replaced = [  # replace(<the preset's config>, seed=…)
        ast.unparse(k.value)
        for call in calls
        if called_name(call) == "replace" and call.args and ast.unparse(call.args[0]) in configs
        for k in call.keywords
        if k.arg == "seed"
    ]
    shares = any(preset_seed(c) is None and not replaced for c in presets) or any(
        seed == "SEED" and seed_default is not None and ast.literal_eval(seed_default) == default_seed
        for seed in [*seeds, *replaced]
    )
    if presets and not shares:
        problems.append(f"no reference run asks for the default seed {default_seed}")
    for call in calls:
        names = {node.id for node in ast.walk(call) if isinstance(node, ast.Name)}
        if called_name(call) in TRAINING_CALLS and "EPOCHS" in names:  # EPOCHS reaches no other run
            problems.append(f"{ast.unparse(call)[:100]} trains with the reference run's EPOCHS")
        if called_name(call) == "FaceData" and any(k.arg not in DATA_KEYWORDS for k in call.keywords):
            problems.append(f"{ast.unparse(call)[:100]} keeps other frames than the reference run's")
    if not any(called_name(call) == "train" for call in calls):
        problems.append("no run is trained or fetched with train(...)")
    return problems


@pytest.mark.parametrize("name", REFERENCE_CHAPTERS)
def test_a_reference_chapter_gets_the_run_only_from_the_reference_preset(name: str) -> None:
    params, others = cell_trees(name)
    assert reference_problems(params, others) == []


def test_the_reference_chapters_default_to_the_same_data() -> None:
    """Same DATASET and DATA_DIR (and so the same crops) in all four chapters' quick defaults."""
    chosen = {
        name: tuple(ast.literal_eval(defaults(cell_trees(name)[0])[p]) for p in ("DATASET", "DATA_DIR"))
        for name in REFERENCE_CHAPTERS
    }
    assert len(set(chosen.values())) == 1, chosen


GOOD_PARAMETERS = """
from fer_utils.train.config import REFERENCE_EPOCHS, REFERENCE_SIZE

DATASET = "sample"
DATA_DIR = None
IMAGE_SIZE = REFERENCE_SIZE
EPOCHS = REFERENCE_EPOCHS
SEED = 0
"""
GOOD_CALL = (
    'reference = fer.TrainConfig.preset("reference", image_size=(IMAGE_SIZE, IMAGE_SIZE), epochs=EPOCHS, seed=SEED)\n'
    "run = fer.train(None, fer.FaceData(dataset.crops()), reference)\n"
)


@pytest.mark.parametrize(
    ("parameters", "code", "problem"),
    [
        (GOOD_PARAMETERS.replace("= REFERENCE_SIZE", "= 48"), GOOD_CALL, "IMAGE_SIZE does not default"),
        (GOOD_PARAMETERS.replace("= REFERENCE_EPOCHS", "= 50"), GOOD_CALL, "EPOCHS does not default"),
        (GOOD_PARAMETERS.replace("REFERENCE_EPOCHS, ", ""), GOOD_CALL, "does not import"),
        (
            GOOD_PARAMETERS.replace("= REFERENCE_SIZE", "= fer.REFERENCE_SIZE").replace(
                "= REFERENCE_EPOCHS", "= fer.EPOCHS"
            ),
            GOOD_CALL,
            "EPOCHS does not default",
        ),
        (GOOD_PARAMETERS, GOOD_CALL + "IMAGE_SIZE = 96", "IMAGE_SIZE is set outside"),
        (GOOD_PARAMETERS, GOOD_CALL + "for SEED in [1]: pass", "SEED is set outside"),
        (GOOD_PARAMETERS, GOOD_CALL.replace("image_size=(IMAGE_SIZE, IMAGE_SIZE)", "image_size=(96, 96)"), "is not"),
        (GOOD_PARAMETERS, GOOD_CALL.replace("seed=SEED", "patience=1"), "is not"),
        (GOOD_PARAMETERS.replace("SEED = 0", "SEED = 1"), GOOD_CALL, "default seed"),
        (GOOD_PARAMETERS, GOOD_CALL + "other = fer.TrainConfig(epochs=EPOCHS)", "trains with the reference"),
        (GOOD_PARAMETERS, GOOD_CALL.replace("dataset.crops()", "dataset.crops(), subjects=['a']"), "other frames"),
        (GOOD_PARAMETERS, "run = RunFolder(run_dir)", "never asked for"),
        (GOOD_PARAMETERS, GOOD_CALL.replace("fer.train(", "fer.other("), "no run is trained"),
    ],
)
def test_a_chapter_that_could_get_another_reference_run_is_caught(parameters: str, code: str, problem: str) -> None:
    assert reference_problems(ast.parse(GOOD_PARAMETERS), [ast.parse(GOOD_CALL)]) == []
    problems = reference_problems(ast.parse(parameters), [ast.parse(code)])
    assert any(problem in text for text in problems), problems
