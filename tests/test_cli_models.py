"""The `train`, `evaluate` and `quantize` handlers, run through `fer_utils.cli.main` on real faces.

The crops are 24 real London faces (12 people, neutral and smiling) that `preprocess` detects with
dlib and crops to 32×32; one 2-epoch run trained by `train` is shared by the module.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run_cli
from toy_data import london_source

from fer_utils.assets import london_faces_dir
from fer_utils.data.manifest import load_manifest
from fer_utils.evaluate.metrics import evaluate_predictions
from fer_utils.faces.crops import CROP_SPEC_FILE
from fer_utils.storage.run_files import CLASSES_FILE, PREDICTIONS_FILE, WRITTEN_FILES
from fer_utils.train.runs import RunFolder

SIDE = 32
PEOPLE = 12
EPOCHS = 2
PROTOCOL = "subject"
LONDON_PATTERN = r"^(\d+)_"


def first_json(text: str) -> dict:
    """The first JSON object printed in `text` (the handlers print their metrics first)."""
    return json.JSONDecoder().raw_decode(text[text.index("{") :])[0]


def assert_same_metrics(printed: dict, expected: dict) -> None:
    """Every metric of every level equal (floats to 1e-9)."""
    assert printed.keys() == expected.keys()
    for level, values in expected.items():
        assert printed[level] == pytest.approx(values, abs=1e-9), level


@pytest.fixture(scope="module")
def crops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`preprocess` (dlib HOG) of 12 London people's neutral and smiling faces into 32×32 crops."""
    root = tmp_path_factory.mktemp("london")
    london_source(root / "src", PEOPLE)
    code, out, err = run_cli(
        [
            "preprocess",
            "--dataset",
            "folder",
            "--subject-pattern",
            LONDON_PATTERN,
            "--src",
            str(root / "src"),
            "--out",
            str(root / "crops"),
            "--side",
            str(SIDE),
            "--workers",
            "1",
            "--quiet",
        ]
    )
    assert code == 0, err
    assert f"{2 * PEOPLE} of {2 * PEOPLE} frames usable" in out
    return root / "crops"


@pytest.fixture(scope="module")
def trained(crops: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The run folder written by `train` and what the command printed."""
    run = tmp_path_factory.mktemp("runs") / "run"
    code, out, err = run_cli(
        [
            "train",
            "--crops",
            str(crops),
            "--out",
            str(run),
            "--side",
            str(SIDE),
            "--epochs",
            str(EPOCHS),
            "--protocol",
            PROTOCOL,
            "--seed",
            "0",
        ]
    )
    assert code == 0, err
    return run, out


# --- train ------------------------------------------------------------------------------------


def test_train_writes_a_complete_run_with_its_metrics(trained: tuple[Path, str], crops: Path) -> None:
    run, out = trained
    folder = RunFolder(run)
    assert folder.is_complete() and sorted(p.name for p in run.iterdir()) == sorted([*WRITTEN_FILES, CROP_SPEC_FILE])
    config, metrics = folder.config(), folder.metrics()
    assert (config["protocol"], config["image_size"], config["epochs"]) == (PROTOCOL, [SIDE, SIDE], EPOCHS)
    assert config["classes"] == folder.classes() == ["neutral", "happy"]
    assert sum(config["sizes"].values()) == len(load_manifest(crops)) == 2 * PEOPLE
    assert 1 <= len(folder.history()) <= EPOCHS
    for level in ("frame", "clip"):
        values = metrics["test"][level]
        assert all(0.0 <= values[name] <= 1.0 for name in ("accuracy", "f1_macro", "f1_weighted")), values
        assert values["n"] == config["sizes"]["test"]  # one frame per image: as many clips as frames
    assert first_json(out) == metrics["test"], "train prints the metrics it saves"
    assert ("COLLAPSED RUN" in out) == metrics["collapsed"]
    assert out.rstrip().endswith(f"run written to {run}")


def test_train_refuses_a_finished_run_folder(trained: tuple[Path, str], crops: Path) -> None:
    run, _ = trained
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    code, _, err = run_cli(["train", "--crops", str(crops), "--out", str(run), "--side", str(SIDE), "--epochs", "1"])
    assert code == 2
    assert f"{run} already holds a complete run" in err
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before


def test_train_refuses_one_class_before_writing_anything(crops: Path, tmp_path: Path) -> None:
    one_class = tmp_path / "crops"
    shutil.copytree(crops, one_class)
    manifest = load_manifest(one_class)
    manifest[manifest["emotion"] == "happy"].to_csv(one_class / "manifest.csv", index=False)
    code, _, err = run_cli(["train", "--crops", str(one_class), "--out", str(tmp_path / "run"), "--side", str(SIDE)])
    assert code == 2 and "training needs at least 2 classes" in err
    assert not (tmp_path / "run").exists()


# --- evaluate ---------------------------------------------------------------------------------


def test_evaluate_run_reports_the_saved_predictions_without_the_crops(
    trained: tuple[Path, str], tmp_path: Path
) -> None:
    run, _ = trained
    written = tmp_path / "metrics.json"
    code, out, err = run_cli(["evaluate", "--run", str(run), "--json", str(written)])
    assert code == 0, err
    frames, probabilities, classes = RunFolder(run).test_predictions()
    expected = evaluate_predictions(frames, probabilities, classes)
    assert_same_metrics(first_json(out), {**expected, "tta": "none"})  # evaluate says it used one view
    assert_same_metrics(json.loads(written.read_text()), {**expected, "tta": "none"})
    assert_same_metrics(expected, RunFolder(run).metrics()["test"])
    for name in classes:  # the per-class report follows the metrics
        assert name in out[out.rindex("}") :]


def test_evaluate_model_on_the_same_split_matches_the_run(trained: tuple[Path, str], crops: Path) -> None:
    run, _ = trained
    code, out, err = run_cli(
        [
            "evaluate",
            "--model",
            str(RunFolder(run).model_file),
            "--crops",
            str(crops),
            "--protocol",
            PROTOCOL,
            "--seed",
            "0",
        ]
    )
    assert code == 0, err
    assert_same_metrics(first_json(out), {**RunFolder(run).metrics()["test"], "tta": "none"})


def _with_manifest(crops: Path, folder: Path, change) -> Path:
    """A copy of the crops folder `crops` at `folder` whose manifest rows are `change(rows)`."""
    import pandas as pd

    shutil.copytree(crops, folder)
    rows = pd.read_csv(folder / "manifest.csv", dtype=str, keep_default_na=False)
    change(rows).to_csv(folder / "manifest.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def random_run(crops: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(crops folder, run): the crops as two subjects, trained 1 epoch on a random split. With two subjects
    both are on every side, so the subjects cannot tell the sides apart."""
    root = tmp_path_factory.mktemp("random")
    two = _with_manifest(crops, root / "two", lambda m: m.assign(subject=m["subject"].astype(int) % 2))
    argv = ["--side", str(SIDE), "--epochs", "1", "--protocol", "random", "--seed", "0"]
    assert run_cli(["train", "--crops", str(two), "--out", str(root / "run"), *argv])[0] == 0
    return two, root / "run"


def test_evaluate_model_on_a_subset_of_its_own_crops_finds_its_training_crops_by_content(
    random_run: tuple[Path, Path], tmp_path: Path
) -> None:
    import hashlib

    import pandas as pd

    from fer_utils.data.manifest import usable_frames
    from fer_utils.data.splits import audited_split
    from fer_utils.registry import DEFAULT_VAL_SIZE, PAPER_TEST_SIZE

    two, run = random_run
    subset = _with_manifest(two, tmp_path / "subset", lambda m: m[m["clip_id"].str[:3].astype(int) <= 8])
    code, out, err = run_cli(["evaluate", "--model", str(RunFolder(run).model_file), "--crops", str(subset)])
    assert code == 0, err
    test = audited_split(
        usable_frames(load_manifest(subset)), subset, "random", PAPER_TEST_SIZE, DEFAULT_VAL_SIZE, 0
    ).test
    trained_on = set(pd.read_csv(run / "train_hashes.csv", dtype=str)["md5"])
    copies = sum(hashlib.md5((subset / image).read_bytes()).hexdigest() in trained_on for image in test["image"])
    assert copies > 0, "the subset's test side holds crops the run trained on"
    assert f"{copies} of the {len(test)} test frames copy a training crop" in out
    assert f"on {len(test) - copies} frames" in out, "the clean part leaves every copy out"


def test_evaluate_model_on_crops_of_other_classes_names_both(random_run: tuple[Path, Path], tmp_path: Path) -> None:
    import pandas as pd

    def other_classes(rows):  # a few crops of two other classes, one of them with a single crop
        rows = rows.assign(emotion=rows["emotion"].map({"neutral": "sad", "happy": "angry"}))
        return pd.concat([rows[rows["emotion"] == "sad"].head(4), rows[rows["emotion"] == "angry"].head(1)])

    other = _with_manifest(random_run[0], tmp_path / "other", other_classes)
    code, out, err = run_cli(["evaluate", "--model", str(RunFolder(random_run[1]).model_file), "--crops", str(other)])
    assert code == 2 and "cannot stratify" not in err and "Traceback" not in err
    classes = ", ".join(RunFolder(random_run[1]).classes())
    assert f"predicts {classes}; {other} holds angry, sad (angry, sad unknown to it)" in err, err


@pytest.mark.parametrize("missing", [PREDICTIONS_FILE, "everything"])
def test_evaluate_run_without_saved_predictions_says_so(
    trained: tuple[Path, str], tmp_path: Path, missing: str
) -> None:
    run, _ = trained
    folder = tmp_path / "old_run"
    if missing == "everything":
        folder.mkdir()
    else:
        shutil.copytree(run, folder)
        (folder / missing).unlink()
    code, out, err = run_cli(["evaluate", "--run", str(folder)])
    assert code == 2 and out == ""
    assert f"{folder} has no {PREDICTIONS_FILE}: it is not a finished run folder" in err


def test_evaluate_options_that_belong_to_the_other_source_are_refused(trained: tuple[Path, str], crops: Path) -> None:
    run, _ = trained
    code, _, err = run_cli(["evaluate", "--run", str(run), "--crops", str(crops), "--seed", "1"])
    assert code == 2 and "--crops, --seed apply to --model only" in err
    code, _, err = run_cli(["evaluate", "--model", str(RunFolder(run).model_file)])
    assert code == 2 and "evaluate --model needs --crops DIR" in err


# --- quantize ---------------------------------------------------------------------------------


def test_quantize_writes_tflite_models_that_predict_like_keras(
    trained: tuple[Path, str], crops: Path, tmp_path: Path
) -> None:
    from fer_utils.data.manifest import usable_frames
    from fer_utils.deploy.tflite import tflite_predict
    from fer_utils.models.networks import load_model
    from fer_utils.train.pipeline import load_images

    run, _ = trained
    model = load_model(RunFolder(run).model_file)
    images = load_images(usable_frames(load_manifest(crops)), crops, (SIDE, SIDE))
    expected = model.predict(images, verbose=0)
    sizes, tolerance = {}, {"float32": 1e-5, "float16": 1e-2, "int8": 0.1}
    for mode in ("float32", "float16", "int8"):
        out = tmp_path / mode / "model.tflite"
        code, printed, err = run_cli(
            [
                "quantize",
                "--model",
                str(RunFolder(run).model_file),
                "--mode",
                mode,
                "--crops",
                str(crops),
                "--out",
                str(out),
            ]
        )
        assert code == 0, err
        assert f"{mode} TFLite model" in printed and str(out) in printed
        assert json.loads((out.parent / CLASSES_FILE).read_text()) == RunFolder(run).classes()
        probabilities = tflite_predict(out.read_bytes(), images)
        assert probabilities.shape == expected.shape
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=0.02)
        np.testing.assert_allclose(probabilities, expected, atol=tolerance[mode], err_msg=mode)
        sizes[mode] = out.stat().st_size
    assert sizes["int8"] < sizes["float16"] < sizes["float32"]


def test_quantize_int8_without_crops_says_what_it_needs(trained: tuple[Path, str], tmp_path: Path) -> None:
    run, _ = trained
    out = tmp_path / "model.tflite"
    code, _, err = run_cli(["quantize", "--model", str(RunFolder(run).model_file), "--mode", "int8", "--out", str(out)])
    assert code == 2 and "int8 quantization needs --crops DIR" in err
    assert not out.exists()


@pytest.mark.parametrize("metrics", [None, '{"test": ', '{"test": {}}'])
def test_export_needs_only_what_serving_needs_and_says_the_accuracy_is_left_out(
    trained: tuple[Path, str], tmp_path: Path, metrics: str | None
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained[0], run)
    (run / "metrics.json").unlink()
    if metrics is not None:
        (run / "metrics.json").write_text(metrics)
    code, out, err = run_cli(["export", "--run", str(run)])
    assert code == 0, err
    note = "no metrics.json" if metrics is None else "metrics.json is damaged"
    assert "note: " in out and note in out and "the export leaves the accuracy out" in out
    info = json.loads((run / "page" / "model.json").read_text())
    assert info["accuracy"] is None and note in info["accuracy_note"]
    assert (run / "page" / "model.tflite").stat().st_size > 0


def test_export_of_a_run_with_metrics_records_its_accuracy(trained: tuple[Path, str], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained[0], run)
    code, out, err = run_cli(["export", "--run", str(run)])
    assert code == 0, err
    info = json.loads((run / "page" / "model.json").read_text())
    assert info["accuracy"] == RunFolder(run).metrics()["test"]["frame"]["accuracy"] and "accuracy_note" not in info
    assert "note:" not in out


def test_export_with_tta_labels_the_recorded_accuracy_as_the_models_without_it(
    trained: tuple[Path, str], tmp_path: Path
) -> None:
    """Issue 74: `export --tta flip-shift` recorded the run's test accuracy, scored without TTA, in model.json with
    nothing to say so, beside `"tta": "flip-shift"`. The accuracy now says which TTA it is for."""
    run = tmp_path / "run"
    shutil.copytree(trained[0], run)
    code, _, err = run_cli(["export", "--run", str(run), "--tta", "flip-shift"])
    assert code == 0, err
    info = json.loads((run / "page" / "model.json").read_text())
    assert info["tta"] == "flip-shift" and info["accuracy_tta"] == "none"
    assert info["accuracy"] == RunFolder(run).metrics()["test"]["frame"]["accuracy"]


def test_quantize_defaults_to_float16_which_needs_no_crops_and_says_so_in_its_help(
    trained: tuple[Path, str], tmp_path: Path
) -> None:
    run, _ = trained
    out = tmp_path / "model.tflite"
    code, printed, err = run_cli(["quantize", "--model", str(RunFolder(run).model_file), "--out", str(out)])
    assert code == 0, err
    assert printed.startswith("float16 TFLite model"), printed[:300]  # not Keras's export log ("Saved artifact")
    help_text = subprocess.run(
        [sys.executable, "-m", "fer_utils", "quantize", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "default float16" in " ".join(help_text.split())


def test_quantize_into_an_export_folder_rewrites_its_model_json(
    trained: tuple[Path, str], crops: Path, tmp_path: Path
) -> None:
    run, page = trained[0], tmp_path / "page"
    assert run_cli(["export", "--run", str(run), "--out", str(page)])[0] == 0
    assert json.loads((page / "model.json").read_text())["tflite"] == "float32"
    argv = ["quantize", "--model", str(RunFolder(run).model_file), "--mode", "int8", "--crops", str(crops)]
    code, _, err = run_cli([*argv, "--out", str(page / "model.tflite")])
    assert code == 0, err
    info = json.loads((page / "model.json").read_text())
    assert info["tflite"] == "int8" and info["input_quantization"] is not None
    assert info["classes"] == RunFolder(run).classes()


# --- outputs checked before any work (fer_utils.storage.outputs) ------------------------------------------


def _stamps(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_outputs_that_would_overwrite_what_the_command_reads_are_refused(
    trained: tuple[Path, str], crops: Path, tmp_path: Path
) -> None:
    run, _ = trained
    model, classes_json = RunFolder(run).model_file, run / CLASSES_FILE
    face = next(iter(sorted(crops.rglob("*.png"))))
    before = _stamps(run)
    refused = {
        "predict --json": (["predict", "--model", str(model), str(face), "--json", str(model)], "--json"),
        "predict --csv": (["predict", "--model", str(model), str(face), "--csv", str(classes_json)], "--csv"),
        "quantize --out": (["quantize", "--model", str(model), "--out", str(model)], "--out"),
        "evaluate --json": (["evaluate", "--run", str(run), "--json", str(run / PREDICTIONS_FILE)], "--json"),
    }
    for name, (argv, option) in refused.items():
        code, out, err = run_cli(argv)
        assert code == 2, name
        assert f"error: {option} {argv[argv.index(option) + 1]}" in err, (name, err)
        assert "which this command reads" in err or "would overwrite the input" in err, (name, err)
    assert _stamps(run) == before, "nothing in the run folder was written"


def test_quantize_refuses_an_out_whose_classes_file_lands_in_the_model_folder(
    trained: tuple[Path, str], tmp_path: Path
) -> None:
    run, _ = trained
    before = _stamps(run)
    out = run / "model.tflite"
    code, _, err = run_cli(["quantize", "--model", str(RunFolder(run).model_file), "--out", str(out)])
    assert code == 2 and f"--out {out} is inside {run}" in err
    assert _stamps(run) == before


def test_predict_refuses_json_and_csv_on_one_path(trained: tuple[Path, str], crops: Path, tmp_path: Path) -> None:
    run, _ = trained
    face = next(iter(sorted(crops.rglob("*.png"))))
    same = tmp_path / "predictions"
    code, _, err = run_cli(
        ["predict", "--model", str(RunFolder(run).model_file), str(face), "--json", str(same), "--csv", str(same)]
    )
    assert code == 2 and f"--json and --csv are the same file {same}" in err
    assert not same.exists()


def test_train_and_evaluate_refuse_unwritable_outputs_before_working(
    trained: tuple[Path, str], crops: Path, tmp_path: Path
) -> None:
    run, _ = trained
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    code, out, err = run_cli(["train", "--crops", str(crops), "--out", str(a_file / "run"), "--side", str(SIDE)])
    assert code == 2 and f"--out {a_file / 'run'}: {a_file} is a file, not a folder" in err and out == ""
    code, out, err = run_cli(["train", "--crops", str(crops), "--out", "/sys/fer-run", "--side", str(SIDE)])
    assert code == 2 and "--out /sys/fer-run: cannot write in /sys" in err and out == ""
    code, out, err = run_cli(["train", "--crops", str(crops), "--out", str(crops / "run"), "--side", str(SIDE)])
    assert code == 2 and f"is inside {crops}, which this command reads" in err and out == ""
    code, out, err = run_cli(["evaluate", "--run", str(run), "--json", str(tmp_path)])
    assert code == 2 and f"--json {tmp_path} is a folder" in err and out == ""


def test_a_killed_train_leaves_a_temporary_folder_that_the_next_run_removes(crops: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    command = [sys.executable, "-m", "fer_utils", "train", "--crops", str(crops), "--out", str(run)]
    killed = subprocess.Popen(
        [*command, "--side", str(SIDE), "--epochs", "500", "--patience", "500"],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    leftover = tmp_path / f".run.tmp-{killed.pid}"
    deadline = time.monotonic() + 120
    while not (leftover / "history.csv").exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert leftover.is_dir(), "the killed run was training in its temporary folder"
    live = subprocess.Popen(["sleep", "60"])
    try:
        busy = tmp_path / f".other.tmp-{live.pid}"  # a live process's temporary folder stays
        busy.mkdir()
        code, _, err = run_cli([*command[3:], "--side", str(SIDE), "--epochs", "1"])
        assert code == 0, err
        assert not leftover.exists() and busy.is_dir()
    finally:
        live.kill()
        live.wait()
    assert RunFolder(run).is_complete()


def test_predict_crops_faces_with_the_margin_the_run_recorded(trained: tuple[Path, str], tmp_path: Path) -> None:
    """Regression: `predict --model` of a run's model cropped every face with the default margin, whatever
    the crops the run was trained on: a run recorded with 0.2 crops (`preprocess --margin 0.2`) was served
    0.1 crops. Its predictions are now those of a recognizer with the run's crop spec (margin 0.2), not those
    of the default."""
    from dataclasses import replace

    import pandas as pd

    from fer_utils.deploy.inference import Recognizer
    from fer_utils.faces.crops import read_crop_spec, write_crop_spec
    from fer_utils.registry import DEFAULT_MARGIN

    run, _ = trained
    wide = RunFolder(shutil.copytree(run, tmp_path / "wide"))
    spec = read_crop_spec(wide.path)
    assert spec.margin == DEFAULT_MARGIN and "crops" not in wide.config()  # as `preprocess` cut its crops
    write_crop_spec(wide.path, replace(spec, margin=0.2))
    face = london_faces_dir() / "smiling" / "001_08.jpg"  # a whole photograph: predict finds the face
    out = tmp_path / "faces.csv"
    code, _, err = run_cli(["predict", "--model", str(wide.model_file), str(face), "--csv", str(out)])
    assert code == 0, err
    columns = [f"p_{name}" for name in wide.classes()]
    printed = pd.read_csv(out)[columns].to_numpy()
    model, classes = wide.load(), wide.classes()
    served = {
        m: Recognizer(model, classes, spec=replace(spec, margin=m)).predict_media(face)[columns].to_numpy()
        for m in (0.2, 0.1)
    }
    assert Recognizer.of_run(wide).margin == 0.2 and len(printed) == 1
    assert np.allclose(printed, served[0.2], atol=1e-6)
    assert not np.allclose(printed, served[0.1], atol=1e-6), "the margin must change what the model sees"


def test_a_run_folder_is_the_trained_run_and_stands_for_its_path(
    trained: tuple[Path, str], crops: Path, tmp_path: Path
) -> None:
    """`RunFolder` is the one shape of a trained run: it reads its files, its table row (`scores`), its
    crops' spec and its model, and stands for its folder where a path is needed."""
    from fer_utils.faces.crops import CropSpec, read_crop_spec

    run_dir, _ = trained
    run = RunFolder(run_dir)
    assert os.fspath(run) == str(run) == str(run_dir) and run / CLASSES_FILE == run_dir / CLASSES_FILE
    assert run == run_dir and run_dir == run and RunFolder(run) == run and len({run, run_dir}) == 1
    assert run != run_dir.parent and run != str(run_dir)
    metrics, history, model = run.metrics(), run.history(), run.load()
    scores = run.scores()
    assert scores["accuracy"] == metrics["test"]["frame"]["accuracy"] and scores["collapsed"] == metrics["collapsed"]
    assert scores["best val loss"] == history["val_loss"].min() and scores["train s"] == metrics["train_seconds"]
    assert scores["params"] == run.config()["params"] == model.count_params()
    assert model.output_shape[-1] == len(run.classes())
    assert run.crop_spec() == read_crop_spec(crops) == CropSpec(side=SIDE)  # copied by training
    assert RunFolder(tmp_path).crop_spec() == CropSpec()  # a model folder that records no crops


def test_predict_refuses_an_annotated_copy_it_cannot_write_before_loading_the_model(
    trained: tuple[Path, str], crops: Path, tmp_path: Path
) -> None:
    run, _ = trained
    face = next(iter(sorted(crops.rglob("*.png"))))
    out = tmp_path / "annotated.xyz"
    code, printed, err = run_cli(["predict", "--model", str(RunFolder(run).model_file), str(face), "--out", str(out)])
    assert code == 2 and f"--out {out}: OpenCV cannot write an image named annotated.xyz" in err
    assert printed == "" and not list(tmp_path.iterdir())


def test_train_takes_the_crops_side_and_refuses_to_upsample(crops: Path, tmp_path: Path) -> None:
    """Regression: `preprocess --side 32` then a plain `train` trained at 180 px on upsampled
    crops. `train` now reads the crops' side; a larger --side is refused, naming both sizes."""
    code, out, err = run_cli(
        ["train", "--crops", str(crops), "--out", str(tmp_path / "run"), "--epochs", "1", "--seed", "0"]
    )
    assert code == 0, err
    assert RunFolder(tmp_path / "run").config()["image_size"] == [SIDE, SIDE]
    code, out, err = run_cli(["train", "--crops", str(crops), "--out", str(tmp_path / "big"), "--side", "64"])
    assert code == 2 and f"--side 64 is larger than the crops in {crops} ({SIDE}×{SIDE} px" in err
    assert not (tmp_path / "big").exists(), "nothing written"
