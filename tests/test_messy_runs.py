"""Training and evaluation on messy input: the recorded
split, classes files, options a model does not take, a class left out of training, damaged crops and
predictions, diverging runs, argument bounds and unsafe model archives. Real London faces, 32×32 crops."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from toy_data import london_source

from fer_utils.cli import main
from fer_utils.data.manifest import load_manifest, usable_frames
from fer_utils.data.splits import split_frames
from fer_utils.errors import InputError
from fer_utils.models.networks import build_model, load_classes, load_model, save_model
from fer_utils.storage.run_files import CLASSES_FILE, PREDICTIONS_FILE
from fer_utils.train.config import TrainConfig, check_config
from fer_utils.train.runs import RunFolder

SIDE = 32
PEOPLE = 12


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """`python -m fer_utils argv` in this process: (exit code, stdout, stderr); argparse errors give 2."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def first_json(text: str) -> dict:
    """The first JSON object printed in `text`."""
    return json.JSONDecoder().raw_decode(text[text.index("{") :])[0]


@pytest.fixture(scope="module")
def crops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`preprocess` of 12 London people's neutral and smiling faces into 32×32 crops, subject from the name."""
    root = tmp_path_factory.mktemp("london")
    london_source(root / "src", PEOPLE)
    argv = ["preprocess", "--dataset", "folder", "--subject-pattern", r"^(\d+)_", "--src", str(root / "src")]
    code, _, err = run_cli([*argv, "--out", str(root / "crops"), "--side", str(SIDE), "--workers", "1", "--quiet"])
    assert code == 0, err
    return root / "crops"


def train_argv(crops: Path, out: Path, *extra: str) -> list[str]:
    """A 2-epoch `train` at 32 px."""
    return ["train", "--crops", str(crops), "--out", str(out), "--side", str(SIDE), "--epochs", "2", *extra]


@pytest.fixture(scope="module")
def seed3_run(crops: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run trained with seed 3 and the subject protocol."""
    run = tmp_path_factory.mktemp("runs") / "seed3"
    code, _, err = run_cli(train_argv(crops, run, "--seed", "3", "--protocol", "subject"))
    assert code == 0, err
    return run


# --- evaluate --model uses the split recorded beside the model ---------------------------


def test_evaluate_model_tests_on_the_runs_own_test_rows(seed3_run: Path, crops: Path) -> None:
    saved = RunFolder(seed3_run).test_predictions()[0]
    code, out, err = run_cli(["evaluate", "--model", str(seed3_run / "model.keras"), "--crops", str(crops)])
    assert code == 0, err
    by_model = first_json(out)
    _, out_run, _ = run_cli(["evaluate", "--run", str(seed3_run)])
    assert by_model["frame"]["n"] == len(saved)
    by_run = first_json(out_run)
    for level in ("frame", "clip"):  # the same rows, predicted by the same model
        assert by_model[level] == pytest.approx(by_run[level], abs=1e-6), level


def test_evaluate_model_refuses_another_split_or_none_recorded(seed3_run: Path, crops: Path, tmp_path: Path) -> None:
    model = seed3_run / "model.keras"
    code, _, err = run_cli(["evaluate", "--model", str(model), "--crops", str(crops), "--seed", "0"])
    assert code == 2 and "--seed 0 (recorded 3)" in err
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(model, alone)
    shutil.copy(seed3_run / CLASSES_FILE, alone)
    code, _, err = run_cli(["evaluate", "--model", str(alone / "model.keras"), "--crops", str(crops)])
    assert code == 2 and "records the split" in err


# --- classes.json is read by index, or refused -------------------------------------------


def test_a_classes_dict_is_read_by_index_and_other_shapes_are_refused(tmp_path: Path) -> None:
    model = save_model(build_model("paper-cnn", 2, (SIDE, SIDE, 1)), tmp_path / "model.keras", ["neutral", "happy"])
    (tmp_path / CLASSES_FILE).write_text(json.dumps({"happy": 1, "neutral": 0}))
    assert load_classes(model) == ["neutral", "happy"]
    for bad in ("happy", ["happy", "happy"], [1, 2], {"happy": 1, "neutral": 1}, {"happy": "1", "neutral": 0}, []):
        (tmp_path / CLASSES_FILE).write_text(json.dumps(bad))
        with pytest.raises(InputError, match=CLASSES_FILE):
            load_classes(model)
    (tmp_path / CLASSES_FILE).write_text("not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_classes(model)


# --- options only the paper CNN takes ----------------------------------------------------


def test_train_refuses_paper_cnn_options_for_another_model(crops: Path, tmp_path: Path) -> None:
    argv = train_argv(crops, tmp_path / "run", "--model", "mini-xception", "--dropout", "0.5,0.5,0.5", "--l1", "0.5")
    code, _, err = run_cli(argv)
    assert code == 2 and "--dropout, --l1 apply to paper-cnn only" in err
    assert not (tmp_path / "run").exists()


# --- a class left out of training --------------------------------------------------------


def test_a_split_that_leaves_a_class_out_of_training_is_refused(crops: Path, tmp_path: Path) -> None:
    one_happy = tmp_path / "crops"
    shutil.copytree(crops, one_happy)
    manifest = load_manifest(one_happy)
    keep = (manifest["emotion"] == "neutral") | (
        manifest["subject"].astype(str) == manifest["subject"].astype(str).max()
    )
    manifest[keep].to_csv(one_happy / "manifest.csv", index=False)
    frames = usable_frames(load_manifest(one_happy))
    seed = next(
        s for s in range(50) if "happy" not in set(split_frames(frames, "subject", 0.2, 0.1, s).train["emotion"])
    )
    code, out, err = run_cli(train_argv(one_happy, tmp_path / "run", "--protocol", "subject", "--seed", str(seed)))
    assert code == 2, out
    assert f"the subject split with seed {seed} leaves ['happy'] out of training" in err
    assert "another --seed" not in err and not (tmp_path / "run").exists()


def test_an_overfitted_collapse_is_not_called_learnt_nothing() -> None:
    from fer_utils.train.fit import collapse_advice

    assert "overfitted" in collapse_advice(1.0) and "learnt nothing" not in collapse_advice(1.0)
    assert "learnt nothing" in collapse_advice(0.4) and "learnt nothing" in collapse_advice(None)


@pytest.mark.parametrize("train_accuracy", [0.4, 1.0])  # a run that learnt nothing; one that overfitted
def test_the_collapse_advice_of_another_model_suggests_no_option_train_refuses_it(
    train_accuracy: float, tmp_path: Path
) -> None:
    """Issue 74: a collapsed wild-cnn run was advised `--dropout 0,0,0.3`, which `train --model wild-cnn` refuses (the
    paper CNN's option). Its advice now names none of the paper CNN's options; the paper CNN's keeps them."""
    import re

    from fer_utils.registry import MODEL_OPTIONS, PAPER_MODEL, WILD_MODEL
    from fer_utils.train.fit import collapse_advice

    argv = ["train", "--crops", str(tmp_path), "--out", str(tmp_path / "run"), "--model", WILD_MODEL]
    code, _, err = run_cli([*argv, "--dropout", "0,0,0.3"])  # what the old advice led to
    assert code == 2 and f"apply to {PAPER_MODEL} only" in err
    paper_only = {f"--{name}" for name in MODEL_OPTIONS}
    assert not set(re.findall(r"--[a-z-]+", collapse_advice(train_accuracy, WILD_MODEL))) & paper_only
    assert "--dropout" in collapse_advice(train_accuracy, PAPER_MODEL)


# --- damaged crops and predictions ------------------------------------------------------


def test_a_damaged_crop_stops_train_before_training_naming_it(crops: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "crops"
    shutil.copytree(crops, damaged)
    victim = damaged / load_manifest(damaged)["image"].iloc[5]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    code, _, err = run_cli(train_argv(damaged, tmp_path / "run"))
    assert code == 2 and str(victim) in err and "damaged" in err
    assert not (tmp_path / "run").exists()


def test_a_damaged_predictions_file_is_a_clear_error(seed3_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(seed3_run, run)
    for damage in (b"\x00\xff\xfe garbage \x00", b"emotion,p_neutral\nhappy,abc\n", b""):
        (run / PREDICTIONS_FILE).write_bytes(damage)
        code, _, err = run_cli(["evaluate", "--run", str(run)])
        assert code == 2 and f"{run / PREDICTIONS_FILE} is damaged" in err, err


# --- a diverging run --------------------------------------------------------------------


def test_a_diverging_run_stops_and_says_so(crops: Path, tmp_path: Path) -> None:
    code, _, err = run_cli(train_argv(crops, tmp_path / "run", "--learning-rate", "1e30"))
    assert code == 2 and "diverged" in err and "learning rate 1e+30" in err, err
    assert not (tmp_path / "run").exists()
    for value in ("inf", "nan", "-1"):
        code, _, err = run_cli(train_argv(crops, tmp_path / "run", "--learning-rate", value))
        assert code == 2 and "finite number above 0" in err
    with pytest.raises(InputError, match="finite"):
        check_config(TrainConfig(learning_rate=float("inf")))


# --- argument bounds -------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--crops", "c", "--out", "o", "--seed", "-1"], "must be 0 or more"),
        (["train", "--crops", "c", "--out", "o", "--side", "0"], "between 1 and 1024"),
        (["train", "--crops", "c", "--out", "o", "--side", "100000"], "between 1 and 1024"),
        (["preprocess", "--dataset", "folder", "--src", "s", "--out", "o", "--side", "100000"], "between 1 and 1024"),
        (["predict", "--model", "m", "x.png", "--every", "0"], "must be at least 1"),
        (["compare", "--side", "0"], "between 1 and 1024"),
        (["compare", "--classes", "0"], "must be at least 1"),
        (["quantize", "--model", "m", "--out", "o", "--samples", "0"], "must be at least 1"),
        (["quantize", "--model", "m", "--out", "o", "--samples", "-1"], "must be at least 1"),
        (["evaluate", "--run", "r", "--val-size", "1"], "below 1"),
        (["evaluate", "--run", "r", "--val-size", "-0.1"], "at least 0"),
    ],
)
def test_out_of_bounds_arguments_are_refused_by_the_parser(
    argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a model file "m" and a run folder "r" that exist: only the bound is wrong
    (tmp_path / "m").write_bytes(b"")
    (tmp_path / "r").mkdir()
    code, _, err = run_cli(argv)
    assert code == 2 and message in err, err


def test_train_needs_the_smallest_side_its_model_takes(crops: Path, tmp_path: Path) -> None:
    from fer_utils.models.networks import smallest_side

    assert smallest_side("paper-cnn") == 8  # three 2×2 poolings
    for size in ("1", "4", "7"):
        code, _, err = run_cli([*train_argv(crops, tmp_path / "run"), "--side", size])
        assert code == 2 and "paper-cnn needs inputs of at least 8×8 px" in err, err
    code, _, err = run_cli(["compare", "--models", "paper-cnn", "--side", "4"])
    assert code == 2 and "at least 8×8" in err


# --- a .keras archive with members outside it -------------------------------------------


def test_a_keras_file_with_parent_members_is_refused(tmp_path: Path) -> None:
    good = save_model(build_model("paper-cnn", 2, (SIDE, SIDE, 1)), tmp_path / "good.keras", ["a", "b"])
    evil = tmp_path / "evil.keras"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item))
        dst.writestr("../outside.txt", "x")
    with pytest.raises(InputError, match="points outside the archive"):
        load_model(evil)
