"""An export never writes into another run's folder: `quantize --out` pointing into run B
while exporting run C, and two runs exported into one `deploy/` folder, are refused before anything is
written; an export of one run into its own folder (new, or its earlier export) is complete and repeatable.

The runs are real saved models (untrained, seeded, the paper CNN at 32 px) with their `classes.json` and
`crop_spec.json`, as training leaves them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import run_cli

from fer_utils.deploy.tflite import EXPORT_FILE, check_export_folder, write_export
from fer_utils.errors import OutputError
from fer_utils.faces.crops import CROP_SPEC_FILE, CropSpec, spec_bytes
from fer_utils.storage.run_files import CLASSES_FILE

SIDE = 32


def make_run(folder: Path, classes: list[str], side: int = SIDE) -> Path:
    """A run folder as training leaves it (model, classes, crop spec); its model file."""
    import keras

    from fer_utils.models.networks import build_paper_cnn, save_model

    keras.utils.set_random_seed(0)
    model = save_model(build_paper_cnn(len(classes), (side, side, 1)), folder / "model.keras", classes)
    (folder / CROP_SPEC_FILE).write_bytes(spec_bytes(CropSpec(side=side)))
    return model


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of `folder` with its bytes."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Run B (angry, happy) and run C (neutral, sad, surprise): two runs with different labels."""
    root = tmp_path_factory.mktemp("runs")
    b = make_run(root / "runB", ["angry", "happy"])
    c = make_run(root / "runC", ["neutral", "sad", "surprise"])
    return b, c


def test_quantize_into_another_runs_folder_is_refused_and_leaves_it_whole(runs: tuple[Path, Path]) -> None:
    b, c = runs
    before = snapshot(b.parent)
    out = b.parent / "x.tflite"
    code, printed, err = run_cli(["quantize", "--model", str(c), "--mode", "float32", "--out", str(out)])
    assert code == 2 and printed == ""
    assert f"--out {b.parent} already holds other files" in err and "nothing was written" in err
    assert snapshot(b.parent) == before, "run B's classes and crop spec are untouched"
    assert json.loads((b.parent / CLASSES_FILE).read_text()) == ["angry", "happy"]


def test_two_runs_exported_into_one_deploy_folder_the_second_is_refused(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    b, c = runs
    deploy = tmp_path / "deploy"
    code, _, err = run_cli(["quantize", "--model", str(b), "--mode", "float32", "--out", str(deploy / "b.tflite")])
    assert code == 0, err
    first = snapshot(deploy)
    assert json.loads(first[CLASSES_FILE]) == ["angry", "happy"]
    assert json.loads(first[EXPORT_FILE]) == {"run": str(b.parent.resolve())}
    code, _, err = run_cli(["quantize", "--model", str(c), "--mode", "float32", "--out", str(deploy / "c.tflite")])
    assert code == 2 and f"--out {deploy} holds the export of another run ({b.parent.resolve()})" in err
    assert snapshot(deploy) == first, "the first export is left as it was"


def test_the_same_run_exported_again_into_its_folder_replaces_its_own_files(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    b, _ = runs
    deploy = tmp_path / "deploy"
    for mode in ("float32", "float16"):
        code, _, err = run_cli(["quantize", "--model", str(b), "--mode", mode, "--out", str(deploy / f"{mode}.tflite")])
        assert code == 0, err
    assert sorted(p.name for p in deploy.iterdir()) == sorted(
        [CLASSES_FILE, CROP_SPEC_FILE, EXPORT_FILE, "float16.tflite", "float32.tflite"]
    )


def test_the_export_rule_is_one_function_a_later_export_step_can_call(runs: tuple[Path, Path], tmp_path: Path) -> None:
    b, c = runs
    with pytest.raises(OutputError, match="already holds other files"):
        check_export_folder(b.parent, c.parent)
    with pytest.raises(OutputError, match="already holds other files"):
        write_export(b.parent, c.parent, {"page.json": "{}"})
    write_export(tmp_path / "page", c.parent, {"page.json": "{}", CLASSES_FILE: "[]"})
    assert sorted(p.name for p in (tmp_path / "page").iterdir()) == [CLASSES_FILE, EXPORT_FILE, "page.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary left"
