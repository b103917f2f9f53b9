"""One reference run (issue 19): chapters 3, 4, 8 and 9 obtain it only through
`artifacts.reference_run(DATASET, DATA_DIR, IMAGE_SIZE, EPOCHS…)`, with the same parameter names and the
same defaults, so that `fer_book execute --param IMAGE_SIZE=96` (or any DATASET, DATA_DIR, EPOCHS) gives all
four the same cached run. Read from the chapters' code (the syntax tree of every code cell), not executed:
executing the four chapters at another size trains for many minutes."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import nbformat
import pytest

from fer_book.execute import PARAMETERS_TAG
from fer_utils.book import artifacts

REPO = Path(__file__).resolve().parents[1]
REFERENCE_CHAPTERS = ("03_architecture", "04_training", "08_deployment", "09_real_faces")
# The chapter parameters that name the reference run, in reference_run's order.
REFERENCE_ARGS = ("DATASET", "DATA_DIR", "IMAGE_SIZE", "EPOCHS")
# The code a chapter shows and passes (issue 29): the same code as the package's has the same fingerprint,
# so these keep the run the chapters share (tests/test_edited_builders.py checks the fingerprints agree).
CODE_KEYWORDS = {"build", "fit"}
# Chapter parameters that select which reference run: set in the parameters cell only.
SELECTING = (*REFERENCE_ARGS, "SEED")
# Calls that train or fetch a run: the reference run's EPOCHS may reach none of them but reference_run.
TRAINING_CALLS = {"ensure_run", "train_run", "train_on_split", "fit_model", "train_variants", "TrainConfig"}


def cell_trees(name: str) -> tuple[ast.Module, list[ast.Module]]:
    """The syntax trees of a chapter's parameters cell and of its other code cells (IPython magics and
    shell lines left out)."""
    nb = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    params, others = None, []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        tree = ast.parse(source)
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


def test_reference_run_takes_the_chapters_parameters_in_their_order_and_defaults_to_the_one_definition() -> None:
    signature = inspect.signature(artifacts.reference_run)
    assert list(signature.parameters)[:5] == ["dataset", "data_dir", "image_size", "epochs", "seed"]
    assert signature.parameters["image_size"].default == artifacts.REFERENCE_SIZE
    assert signature.parameters["epochs"].default == artifacts.REFERENCE_EPOCHS


def reference_problems(params: ast.Module, others: list[ast.Module]) -> list[str]:
    """What in a chapter (its parameters cell, its other code cells) could give it another reference run
    than the other chapters get with the same parameters; empty when it has none."""
    problems = []
    values = defaults(params)
    for parameter, definition in (("IMAGE_SIZE", "REFERENCE_SIZE"), ("EPOCHS", "REFERENCE_EPOCHS")):
        if parameter not in values or ast.unparse(values[parameter]) != definition:
            problems.append(f"{parameter} does not default to the package's {definition}")
    imported = {
        alias.name
        for node in params.body
        if isinstance(node, ast.ImportFrom) and node.module == "fer_utils.book.artifacts"
        for alias in node.names
    }
    if not imported >= {"REFERENCE_SIZE", "REFERENCE_EPOCHS"}:
        problems.append("the parameters cell does not import REFERENCE_SIZE and REFERENCE_EPOCHS from artifacts")
    nodes = [node for tree in others for node in ast.walk(tree)]
    problems += [
        f"{node.id} is set outside the parameters cell"
        for node in nodes
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id in SELECTING
    ]
    calls = [node for node in nodes if isinstance(node, ast.Call)]
    reference = [call for call in calls if called_name(call) == "reference_run"]
    if not reference:
        problems.append("artifacts.reference_run is never called")
    for call in reference:
        if [ast.unparse(arg) for arg in call.args] != list(REFERENCE_ARGS) or any(
            keyword.arg not in CODE_KEYWORDS | {"seed"} for keyword in call.keywords
        ):
            problems.append(
                f"{ast.unparse(call)} is not reference_run({', '.join(REFERENCE_ARGS)}[, seed=…][, build=…, fit=…])"
            )
    # at least one call asks for the run every chapter shares: reference_run's default seed, or SEED
    # when the chapter's SEED defaults to it
    default_seed = inspect.signature(artifacts.reference_run).parameters["seed"].default
    seed_default = values.get("SEED")
    seeds = {id(call): [k.value for k in call.keywords if k.arg == "seed"] for call in reference}
    shares = [
        call
        for call in reference
        if not seeds[id(call)]
        or (
            ast.unparse(seeds[id(call)][0]) == "SEED"
            and seed_default is not None
            and ast.literal_eval(seed_default) == default_seed
        )
    ]
    if reference and not shares:
        problems.append(f"no reference_run call asks for the default seed {default_seed}")
    # EPOCHS (the reference run's epoch ceiling) reaches no other training call: no second reference run
    for call in calls:
        names = {node.id for node in ast.walk(call) if isinstance(node, ast.Name)}
        if called_name(call) in TRAINING_CALLS and "EPOCHS" in names:
            problems.append(f"{ast.unparse(call)[:100]} trains with the reference run's EPOCHS")
        if "QUICK_TRAINING" in ast.unparse(call):
            problems.append(f"{ast.unparse(call)[:100]} builds the reference settings by hand")
    return problems


@pytest.mark.parametrize("name", REFERENCE_CHAPTERS)
def test_a_reference_chapter_gets_the_run_only_from_reference_run_with_the_package_sizes(name: str) -> None:
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
from fer_utils.book.artifacts import REFERENCE_EPOCHS, REFERENCE_SIZE

DATASET = "sample"
DATA_DIR = None
IMAGE_SIZE = REFERENCE_SIZE
EPOCHS = REFERENCE_EPOCHS
SEED = 0
"""
GOOD_CALL = "run = artifacts.reference_run(DATASET, DATA_DIR, IMAGE_SIZE, EPOCHS, seed=SEED)\n"


@pytest.mark.parametrize(
    ("parameters", "code", "problem"),
    [
        (GOOD_PARAMETERS.replace("= REFERENCE_SIZE", "= 48"), GOOD_CALL, "IMAGE_SIZE does not default"),
        (GOOD_PARAMETERS.replace("= REFERENCE_EPOCHS", "= 50"), GOOD_CALL, "EPOCHS does not default"),
        (GOOD_PARAMETERS.replace("REFERENCE_EPOCHS, ", ""), GOOD_CALL, "does not import"),
        (GOOD_PARAMETERS, GOOD_CALL + "IMAGE_SIZE = 96", "IMAGE_SIZE is set outside"),
        (GOOD_PARAMETERS, GOOD_CALL + "for SEED in [1]: pass", "SEED is set outside"),
        (GOOD_PARAMETERS, GOOD_CALL + "run = artifacts.reference_run(DATASET, DATA_DIR, 96, EPOCHS)", "is not"),
        (GOOD_PARAMETERS, GOOD_CALL.replace("seed=SEED", "cache=c"), "is not reference_run"),
        (GOOD_PARAMETERS.replace("SEED = 0", "SEED = 1"), GOOD_CALL, "default seed"),
        (GOOD_PARAMETERS, GOOD_CALL + "run = artifacts.ensure_run(crops, epochs=EPOCHS)", "trains with the reference"),
        (GOOD_PARAMETERS, GOOD_CALL + "run = artifacts.ensure_run(crops, **artifacts.QUICK_TRAINING)", "by hand"),
        (GOOD_PARAMETERS, "run = RunFolder(run_dir)", "never called"),
    ],
)
def test_a_chapter_that_could_get_another_reference_run_is_caught(parameters: str, code: str, problem: str) -> None:
    assert reference_problems(ast.parse(GOOD_PARAMETERS), [ast.parse(GOOD_CALL)]) == []
    problems = reference_problems(ast.parse(parameters), [ast.parse(code)])
    assert any(problem in text for text in problems), problems
