"""Expression datasets that ship their own train/val/test split: FER-2013 and RAF-DB as
downloaded (split folders), FER-2013's one CSV, the `split` column through preprocessing into the
manifest, and `train --protocol given` (the default for such crops).

The datasets are small copies built from the generated faces the package ships (tests/layouts.py); every
command runs through `fer_utils.cli.main` on real files.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from layouts import (
    FER2013_FOLDERS,
    RAFDB_LABELS,
    faces,
    make_fer2013_csv,
    make_fer2013_folder,
    make_rafdb_folder,
)
from toy_data import make_toy_crops

from fer_utils.cli import main
from fer_utils.data.corpora import SPLITS, parse_row_path, split_counts, split_warnings
from fer_utils.data.folders import RAFDB_CLASSES, parse_class_map
from fer_utils.data.indexing import index_dataset
from fer_utils.data.manifest import MANIFEST_COLUMNS, load_manifest
from fer_utils.data.media import read_image
from fer_utils.data.splits import hash_table, resolve_protocol, split_frames
from fer_utils.errors import InputError
from fer_utils.train.runs import RunFolder

PER_CLASS, TEST_PER_CLASS, CLASSES = 4, 1, 7
RAFDB_PER_CLASS = 8  # 70 faces: a validation side of 10 % (carved from train) holds all 7 classes
SIDE = 32


EXPECTED_SIDES = {
    "fer2013-folder": {"train": PER_CLASS, "val": TEST_PER_CLASS, "test": TEST_PER_CLASS},
    "rafdb": {"train": RAFDB_PER_CLASS, "test": 2 * TEST_PER_CLASS},
    "fer2013-csv": {"train": PER_CLASS, "val": TEST_PER_CLASS, "test": TEST_PER_CLASS},
}


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """`python -m fer_utils argv` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[str]]]:
    """Each layout's root and the index options it needs (as CLI arguments)."""
    root = tmp_path_factory.mktemp("layouts")
    return {
        "fer2013-folder": (make_fer2013_folder(root / "fer2013", PER_CLASS, TEST_PER_CLASS), ["--dataset", "folder"]),
        "rafdb": (
            make_rafdb_folder(root / "rafdb", RAFDB_PER_CLASS, 2 * TEST_PER_CLASS),
            ["--dataset", "folder", "--classes", RAFDB_CLASSES],
        ),
        "fer2013-csv": (make_fer2013_csv(root / "csv", PER_CLASS, TEST_PER_CLASS), ["--dataset", "fer2013"]),
    }


@pytest.fixture(scope="module")
def crops(datasets, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each layout preprocessed by the CLI (no detector: the faces are crops already) into 32×32 crops."""
    out = tmp_path_factory.mktemp("crops")
    folders = {}
    for name, (root, options) in datasets.items():
        argv = ["preprocess", *options, "--src", root, "--out", out / name, "--detector", "none"]
        code, stdout, err = run_cli([*argv, "--side", SIDE, "--workers", 1, "--quiet"])
        assert code == 0, err
        assert f"{CLASSES * sum(EXPECTED_SIDES[name].values())} of" in stdout
        folders[name] = out / name
    return folders


@pytest.mark.parametrize("name", list(EXPECTED_SIDES))
def test_index_gives_the_split_column_and_counts(datasets, name: str) -> None:
    root, options = datasets[name]
    kwargs = {"classes": RAFDB_CLASSES} if "--classes" in options else {}
    index = index_dataset(options[1], root, **kwargs)
    clips = index.clips
    expected = EXPECTED_SIDES[name]
    assert clips["split"].value_counts().to_dict() == {side: CLASSES * n for side, n in expected.items()}
    counts = split_counts(clips)
    assert list(counts.columns) == [*(s for s in SPLITS if s in expected), "total"]
    assert len(counts) == CLASSES and all((counts[side] == n).all() for side, n in expected.items())
    assert split_warnings(clips) == []
    code, out, err = run_cli(["index", *options, "--root", root])
    assert code == 0, err
    assert "the dataset's own split" in out and "WARNING" not in err
    table = out.split("the dataset's own split")[1].splitlines()
    table_line = next(line for line in table if line.strip().startswith("angry"))
    assert table_line.split()[1:] == [str(n) for n in expected.values()] + [str(sum(expected.values()))]


def test_fer2013_folder_names_decide_the_side(datasets) -> None:
    """Kaggle's test/ folder holds PublicTest_N (the validation side) and PrivateTest_N (the test side)."""
    clips = index_dataset("folder", datasets["fer2013-folder"][0]).clips
    prefix = clips["clip_id"].str.split("_").str[0]
    assert dict(zip(prefix, clips["split"])) == {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
    assert (clips.loc[clips["split"] != "train", "path"].str.contains("/test/")).all()
    assert sorted(clips["class_folder"].unique()) == sorted(FER2013_FOLDERS)


def test_rafdb_numbered_folders_map_through_classes(datasets) -> None:
    root = datasets["rafdb"][0]
    clips = index_dataset("folder", root, classes=RAFDB_CLASSES).clips
    mapping = parse_class_map(RAFDB_CLASSES)
    shipped = {str(label): folder for folder, label in RAFDB_LABELS.items()}  # the faces each folder got
    for label, group in clips.groupby("class_folder"):
        assert set(group["emotion"]) == {mapping[label]}
        assert mapping[label].startswith(shipped[label][:4])  # surprise → surprised, fear → fearful, …
    names = clips.set_index("clip_id")["split"]
    assert names["train_00001_aligned"] == "train" and names["test_0001_aligned"] == "test"
    # a dict works too, and names on the right go through the synonyms
    same = index_dataset("folder", root, classes={str(k): v for k, v in mapping.items()} | {"2": "fear"}).clips
    assert same["emotion"].tolist() == clips["emotion"].tolist()


def test_the_csv_is_read_in_place_row_by_row(datasets) -> None:
    csv_path = datasets["fer2013-csv"][0]
    index = index_dataset("fer2013", csv_path)
    clips = index.clips
    assert len(clips) == CLASSES * (PER_CLASS + 2 * TEST_PER_CLASS)
    assert "pixels" not in clips.columns  # the table holds where each face is, not the face
    assert dict(zip(clips["usage"], clips["split"])) == {
        "Training": "train",
        "PublicTest": "val",
        "PrivateTest": "test",
    }
    assert [r.split(" ")[0] for r in index.rejected["reason"]] == ["2000"]  # the malformed row, with its reason
    assert "expected 2304" in index.rejected["reason"].iloc[0]
    first = clips.iloc[0]
    assert parse_row_path(first["path"])[0] == csv_path.resolve() and first["emotion"] == "angry"
    expected = next(faces(FER2013_FOLDERS[first["emotion_code"]], 1, 48))
    assert np.array_equal(read_image(first["path"]), expected)
    assert index_dataset("fer2013", csv_path.parent).clips["path"].tolist() == clips["path"].tolist()  # its folder


def test_the_csvs_rows_are_hashed_by_their_pixels_and_a_copied_row_is_found(tmp_path: Path) -> None:
    """A row of FER-2013's CSV is no file of its own: the duplicates audit hashes its decoded pixels, with or
    without the near-duplicate hash (a row has no file size to rule it out by)."""
    path = make_fer2013_csv(tmp_path, rows_per_class=2, test_per_class=1, malformed=())
    first = path.read_text().splitlines()[1]
    with path.open("a") as fh:
        fh.write(first + "\n")  # the first face again, as FER-2013's own duplicates are
    rows = index_dataset("fer2013", path).clips["path"].tolist()
    for near in (True, False):
        md5 = hash_table(rows, near=near)["md5"]
        assert md5.str.len().eq(32).all(), md5  # every row hashed
        assert md5.iloc[-1] == md5.iloc[0] and md5.nunique() == len(rows) - 1
    assert hash_table(rows, near=True)["phash"].str.len().eq(16).all()


def test_malformed_csv_rows_are_rejected_with_the_reason(tmp_path: Path) -> None:
    path = make_fer2013_csv(tmp_path, rows_per_class=1, test_per_class=1, malformed=("pixels", "code", "usage"))
    with path.open("a") as fh:
        fh.write("3,1 2 3\n")  # too few fields
    index = index_dataset("fer2013", path)
    reasons = index.rejected["reason"].tolist()
    assert len(index.clips) == CLASSES * 3 and len(reasons) == 4
    assert all(f in r for f, r in zip(["pixel values", "code '9'", "'Holdout'", "field"], reasons, strict=True))
    with pytest.raises(InputError, match="do not follow the fer2013 naming"):
        index_dataset("fer2013", path, strict=True)
    (tmp_path / "other.csv").write_text("label,image\n1,2 3\n")
    with pytest.raises(InputError, match="not FER-2013's CSV.*lacks emotion, pixels, usage"):
        index_dataset("fer2013", tmp_path / "other.csv")


@pytest.mark.parametrize("name", list(EXPECTED_SIDES))
def test_preprocess_keeps_the_split_in_the_manifest(datasets, crops, name: str) -> None:
    root, options = datasets[name]
    kwargs = {"classes": RAFDB_CLASSES} if "--classes" in options else {}
    clips = index_dataset(options[1], root, **kwargs).clips
    manifest = load_manifest(crops[name])
    assert list(manifest.columns) == list(MANIFEST_COLUMNS)
    assert dict(zip(manifest["clip_id"], manifest["split"])) == dict(zip(clips["clip_id"], clips["split"]))
    assert resolve_protocol(manifest) == "given"


@pytest.mark.parametrize("name", list(EXPECTED_SIDES))
def test_train_uses_the_given_split_by_default(crops, tmp_path: Path, name: str) -> None:
    run = tmp_path / "run"
    code, out, err = run_cli(["train", "--crops", crops[name], "--epochs", 1, "--side", SIDE, "--out", run])
    assert code == 0, err
    assert "protocol given" in out
    config = json.loads((run / "config.json").read_text())
    assert config["protocol"] == "given"
    manifest = load_manifest(crops[name])
    test_side = set(manifest.loc[manifest["split"] == "test", "clip_id"])
    frames, _, _ = RunFolder(run).test_predictions()
    assert set(frames["clip_id"]) == test_side and len(frames) == len(test_side)
    train_and_val = config["sizes"]["train"] + config["sizes"]["val"]
    assert train_and_val == int(manifest["split"].isin(["train", "val"]).sum())


def test_a_class_missing_from_a_split_folder_is_named(tmp_path: Path) -> None:
    root = make_fer2013_folder(tmp_path / "fer", per_class=2, omit={"test": ["disgust"]})
    clips = index_dataset("folder", root).clips
    assert split_warnings(clips) == ["class 'disgust' has no image in the val and test split (train 2)"]
    code, out, err = run_cli(["index", "--dataset", "folder", "--root", root])
    assert code == 0
    assert "WARNING: class 'disgust' has no image in the val and test split" in err
    disgust = next(line for line in out.split("own split")[1].splitlines() if line.strip().startswith("disgust"))
    assert disgust.split() == ["disgust", "2", "0", "0", "2"]


def test_training_on_a_train_side_without_a_class_says_which(tmp_path: Path) -> None:
    root = make_fer2013_folder(tmp_path / "fer", per_class=2, omit={"train": ["sad"]})
    assert "class 'sad' has no image in the train split (val 1, test 1)" in split_warnings(
        index_dataset("folder", root).clips
    )
    argv = ["preprocess", "--dataset", "folder", "--src", root, "--out", tmp_path / "crops", "--detector", "none"]
    assert run_cli([*argv, "--side", SIDE, "--workers", 1, "--quiet"])[0] == 0
    code, _, err = run_cli(["train", "--crops", tmp_path / "crops", "--epochs", 1, "--out", tmp_path / "run"])
    assert code == 2
    assert "no training image of ['sad'] (sad: 1 in test, 1 in val)" in err and "--protocol random" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        ("1:surprised,2:fearful", "not a list of FOLDER=EMOTION pairs"),
        ("1=surprised,1=happy", "folder '1' is mapped twice"),
        ("1=surprised,2=feared", "'feared' \\(for folder '2'\\) is no emotion"),
        ("1=surprised,,=happy", "not a list of FOLDER=EMOTION pairs"),
    ],
)
def test_a_bad_classes_mapping_is_a_clear_error(datasets, classes: str, message: str) -> None:
    with pytest.raises(InputError, match=message + ".*RAF-DB's 1=surprised.*accepted.*afraid, anger"):
        parse_class_map(classes)
    code, out, err = run_cli(["index", "--dataset", "folder", "--root", datasets["rafdb"][0], "--classes", classes])
    assert code == 2 and "--classes" in err and "error:" in err


def test_numbered_folders_without_classes_point_to_the_option(datasets) -> None:
    code, _, err = run_cli(["index", "--dataset", "folder", "--root", datasets["rafdb"][0]])
    assert code == 2
    assert "class folder(s) '1', '2', '3', '4', '5', '6', '7'" in err and "(in split folder(s) test, train)" in err
    assert f"--classes {RAFDB_CLASSES}" in err
    code, _, err = run_cli(["index", "--dataset", "ravdess", "--root", datasets["rafdb"][0], "--classes", "1=happy"])
    assert code == 2 and "the ravdess indexer takes no classes (--classes) option; it applies to: folder" in err


def test_given_on_crops_without_a_split_is_a_clear_error(tmp_path: Path) -> None:
    """Crops of a dataset without its own split (an empty split column): default protocol random, `given` refused."""
    crops = tmp_path / "crops"
    make_toy_crops(crops, size=32, frames_per_clip=1)
    manifest = load_manifest(crops)
    assert (manifest["split"] == "").all() and resolve_protocol(manifest) == "random"
    code, out, err = run_cli(["train", "--crops", crops, "--protocol", "given", "--epochs", 1, "--out", tmp_path / "r"])
    assert code == 2
    assert "protocol 'given' takes the dataset's own split" in err and "use protocol random, clip, subject" in err


def test_a_root_mixing_split_and_class_folders_is_refused(tmp_path: Path) -> None:
    root = make_fer2013_folder(tmp_path / "fer", per_class=1)
    shutil.copytree(root / "train" / "happy", root / "happy")
    mixed = r"'test', 'train' under .* map to no emotion.*'test', 'train' name\(s\) a split: .* class folders \(happy\)"
    with pytest.raises(InputError, match=mixed):
        index_dataset("folder", root)


def test_a_fer2013_name_in_the_wrong_split_folder_is_rejected(tmp_path: Path) -> None:
    root = make_fer2013_folder(tmp_path / "fer", per_class=1)
    moved = next((root / "train" / "happy").glob("Training_*.jpg"))
    moved.rename(root / "test" / "happy" / moved.name)
    index = index_dataset("folder", root)
    assert index.rejected["reason"].tolist() == [
        "FER-2013 name says Training (train) but the image is in split folder 'test' (test)"
    ]


def test_given_split_carves_val_from_train_when_the_dataset_has_none(datasets) -> None:
    clips = index_dataset("folder", datasets["rafdb"][0], classes=RAFDB_CLASSES).clips
    split = split_frames(clips, "given", val_size=0.2, seed=1)
    assert (split.test["split"] == "test").all() and len(split.test) == (clips["split"] == "test").sum()
    assert (split.val["split"] == "train").all() and abs(len(split.val) - 0.2 * len(clips)) <= 1
    assert set(split.train.index).isdisjoint(split.val.index)
    assert split.val["emotion"].nunique() == CLASSES  # stratified
    again = split_frames(clips, "given", val_size=0.2, seed=1)
    assert again.val.index.equals(split.val.index)  # reproducible from the seed
    assert split_frames(clips, "given", val_size=0.0).val is None
    # the FER-2013 layout keeps its own val side, whatever val_size says
    fer = index_dataset("folder", datasets["fer2013-folder"][0]).clips
    own = split_frames(fer, "given", val_size=0.0)
    assert (own.val["split"] == "val").all() and (own.test["split"] == "test").all()
    # AffectNet-style (train_set/ and val_set/, no test): tested on the val side
    affectnet = clips.assign(split=clips["split"].replace({"test": "val"}))
    tested = split_frames(affectnet, "given", val_size=0.1)
    assert tested.test.index.equals(clips.index[clips["split"] == "test"])


def test_a_run_defaults_to_the_given_split(crops, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from fer_utils.book.artifacts import train
    from fer_utils.train.config import TrainConfig
    from fer_utils.train.pipeline import FaceData

    config = TrainConfig.preset("reference", epochs=1, image_size=(SIDE, SIDE))
    run = train(None, FaceData(crops["rafdb"]), config, cache=tmp_path)
    assert "protocol given" in capsys.readouterr().out
    assert json.loads((run / "config.json").read_text())["protocol"] == "given"
    explicit = train(None, FaceData(crops["rafdb"]), replace(config, protocol="random"), cache=tmp_path)
    assert explicit != run and json.loads((explicit / "config.json").read_text())["protocol"] == "random"
