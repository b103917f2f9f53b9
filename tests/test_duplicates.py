"""The duplicate audit and `evaluate` checking what it scores, on real files: a split
folder of the shipped generated faces with planted copies (tests/planted.py: an exact copy, a re-encoded JPEG,
a resized copy, an exact copy with another label, a copy within the train side).

Cost: one preprocessing of 41 faces and three one-epoch runs of the paper CNN at 32 px (under 30 s on 2 cores).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_runner import run_cli
from planted import (
    EXACT_ACROSS,
    EXACT_CONFLICTS,
    EXACT_GROUPS,
    EXACT_IMAGES,
    IMAGES,
    NEAR_ACROSS,
    NEAR_GROUPS,
    NEAR_IMAGES,
    PLANTED,
    TEST_COPIES,
    planted_dataset,
)

from fer_utils.data.manifest import MANIFEST_NAME, load_manifest, usable_frames
from fer_utils.data.splits import DUPLICATES_CSV, DUPLICATES_JSON, near_pairs, read_audit
from fer_utils.train.runs import RunFolder

SIDE = 32
EXACT_LINE = (
    f"  {EXACT_GROUPS} groups of byte-identical images, {EXACT_IMAGES} images; {EXACT_ACROSS} span two sides "
    f"(train/test {EXACT_ACROSS}); {EXACT_CONFLICTS} with conflicting labels"
)
NEAR_LINE = (
    f"  {NEAR_GROUPS} groups of near-duplicates (perceptual hash within 2 of 64 bits: the same picture re-encoded "
    f"or resized, or frames that look the same), {NEAR_IMAGES} images; {NEAR_ACROSS} span two sides (train/test {NEAR_ACROSS}); 0 with "
    "conflicting labels"
)
TEST_PLANTED = {name for name, (_, _, side, _) in PLANTED.items() if side == "test"}


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return planted_dataset(tmp_path_factory.mktemp("planted") / "src")


@pytest.fixture(scope="module")
def crops(planted: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`preprocess --detector none --side 32` of the planted folder: (crops folder, what it printed)."""
    out = tmp_path_factory.mktemp("crops") / "crops"
    argv = ["preprocess", "--dataset", "folder", "--src", str(planted), "--out", str(out), "--detector", "none"]
    code, printed, err = run_cli([*argv, "--side", str(SIDE), "--workers", "1", "--quiet"])
    assert code == 0, err
    return out, printed


def train(crops: Path, out: Path, *options: str) -> tuple[int, str, str]:
    """One epoch of the paper CNN at 32 px on the crops' own split."""
    argv = ["train", "--crops", str(crops), "--out", str(out), "--epochs", "1", "--side", str(SIDE), *options]
    return run_cli(argv)


@pytest.fixture(scope="module")
def run(crops: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A run on the planted crops with their own split, copies kept: (run folder, what train printed)."""
    out = tmp_path_factory.mktemp("run") / "run"
    code, printed, err = train(crops[0], out)
    assert code == 0, err
    return out, printed


def planted_name(image: str) -> str | None:
    """The PLANTED label a crop was made from ('exact', …), or None for a distinct face."""
    stem = Path(image).name
    return next((name for name in PLANTED if stem.startswith(f"{name}_")), None)


# --- the audit -------------------------------------------------------------------------------------


def test_index_reports_the_planted_copies_and_writes_the_audit_beside_its_table(planted: Path, tmp_path: Path) -> None:
    table = tmp_path / "clips.csv"
    code, out, err = run_cli(["index", "--dataset", "folder", "--root", str(planted), "--out", str(table)])
    assert code == 0, err
    assert f"duplicate audit of {IMAGES} images (0 unreadable, not hashed):\n{EXACT_LINE}\n{NEAR_LINE}\n" in out
    summary = json.loads((tmp_path / "clips.duplicates.json").read_text())
    assert summary["counts"]["exact"]["groups"] == EXACT_GROUPS and summary["counts"]["near"]["groups"] == NEAR_GROUPS
    audit = read_audit(tmp_path / "clips.duplicates.csv")
    grouped = audit.table[(audit.table["exact_group"] >= 0) | (audit.table["near_group"] >= 0)]
    named = {planted_name(key) for key in grouped["key"]} - {None}
    assert named == set(PLANTED) and len(grouped) == EXACT_IMAGES + NEAR_IMAGES  # the copies and their originals


def test_preprocess_reports_the_same_copies_among_its_crops(crops: tuple[Path, str]) -> None:
    folder, printed = crops
    assert f"duplicate audit of {IMAGES} images (0 unreadable, not hashed):\n{EXACT_LINE}\n{NEAR_LINE}\n" in printed
    assert (folder / DUPLICATES_CSV).is_file() and (folder / DUPLICATES_JSON).is_file()
    audit = read_audit(folder / DUPLICATES_CSV)
    assert set(audit.table["key"]) == set(usable_frames(load_manifest(folder))["image"])


def test_near_pairs_finds_what_comparing_every_pair_finds() -> None:
    """The band buckets (pigeonhole) miss no pair within the radius, and report none beyond it."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**63, 300, dtype=np.uint64)
    flips = rng.integers(0, 64, (300, 3))
    near = [
        int(value) ^ (1 << int(a)) ^ (1 << int(b) if k % 2 else 0)
        for k, (value, (a, b, _)) in enumerate(zip(base, flips))
    ]
    values = np.unique(np.array([*map(int, base), *near], dtype=np.uint64))
    distance = np.bitwise_count(values[:, None] ^ values[None, :])
    expected = {(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(distance <= 2, 1)))}
    assert {tuple(map(int, pair)) for pair in near_pairs(values, 2)} == expected and len(expected) >= 250


@pytest.mark.parametrize("protocol", ["random", "clip", "subject"])
def test_the_other_protocols_never_put_two_copies_of_one_image_on_two_sides(
    crops: tuple[Path, str], protocol: str
) -> None:
    """Every exact copy lands on the side of its original, whatever the seed (split_frames alone parts them)."""
    from fer_utils.data.splits import audited_split, split_frames

    folder, _ = crops
    frames = usable_frames(load_manifest(folder))
    exact = read_audit(folder / DUPLICATES_CSV).table.set_index("key")["exact_group"]

    def sides_per_group(split) -> pd.Series:
        side = pd.concat([part.assign(side=name) for name, part in split.sides().items()])
        assert len(side) == len(frames)
        groups = side.assign(group=side["image"].map(exact)).query("group >= 0")
        return groups.groupby("group")["side"].nunique()

    parted = 0
    for seed in range(12):
        assert (sides_per_group(audited_split(frames, folder, protocol, 0.3, 0.2, seed)) == 1).all(), (protocol, seed)
        parted += int((sides_per_group(split_frames(frames, protocol, 0.3, 0.2, seed)) > 1).any())
    assert parted > 0  # the plain split does part them: what the audited one prevents


def test_the_audit_names_the_group_whose_labels_conflict(crops: tuple[Path, str]) -> None:
    """The exact copy filed under another class is one group with two labels: its own and its original's."""
    audit = read_audit(crops[0] / DUPLICATES_CSV).table
    exact = audit[audit["exact_group"] >= 0]
    labels = exact.groupby("exact_group")["emotion"].nunique()
    conflicting = exact[exact["exact_group"].isin(labels[labels > 1].index)]
    source, folder, _, _ = PLANTED["conflict"]
    assert len(conflicting) == 2 and set(conflicting["emotion"]) == {source, folder}
    assert {planted_name(key) for key in conflicting["key"]} == {"conflict", None}  # the copy and its original
    assert set(conflicting["split"]) == {"train", "test"}


def test_split_keeping_copies_moves_each_copy_to_its_originals_side() -> None:
    """On a table alone: rows labelled alike land together under random, clip and subject; without copies the
    split is exactly split_frames's."""
    from fer_utils.data.splits import split_frames, split_keeping_copies

    n = 60
    table = pd.DataFrame(
        {
            "emotion": np.tile(["happy", "sad", "angry"], n // 3),
            "clip_id": [f"c{i}" for i in range(n)],
            "subject": [f"s{i // 2}" for i in range(n)],
        }
    )
    alone = pd.Series([f"row-{i}" for i in range(n)])
    copies = alone.copy()
    copies[[1, 7, 13, 40]] = "copy-a"  # one image on four clips (and three subjects)
    copies[[2, 50]] = "copy-b"
    for protocol in ("random", "clip", "subject"):
        for seed in range(8):
            split = split_keeping_copies(table, copies, protocol, 0.3, 0.2, seed)
            where = pd.concat([pd.Series(name, index=part.index) for name, part in split.sides().items()])
            assert len(where) == n and where.index.is_unique
            assert where[[1, 7, 13, 40]].nunique() == 1 and where[[2, 50]].nunique() == 1, (protocol, seed)
            plain = split_frames(table, protocol, 0.3, 0.2, seed)
            same = split_keeping_copies(table, alone, protocol, 0.3, 0.2, seed)
            for name, part in plain.sides().items():
                assert same.sides()[name].index.equals(part.index)


def test_a_chapters_own_split_function_drives_the_audited_split(crops: tuple[Path, str]) -> None:
    """`FaceData.split_for` (what `train.fit.train_run` splits with) goes through the audit with the data's own split
    function (a chapter passes the `split_frames` it shows): that function is called, copies stay on one side, the
    test copies of training crops are marked, and `clean_test` leaves them out."""
    from fer_utils.data.splits import split_frames
    from fer_utils.train.config import TrainConfig
    from fer_utils.train.pipeline import FaceData

    folder, _ = crops
    calls = []

    def shown_split(frames, protocol, test_size, val_size, seed):
        calls.append(protocol)
        return split_frames(frames, protocol, test_size, val_size, seed)

    data = FaceData(folder, split=shown_split)
    exact = read_audit(folder / DUPLICATES_CSV).table.set_index("key")["exact_group"]
    for seed in range(6):
        split = data.split_for(TrainConfig(protocol="random", seed=seed), data.frames())
        side = pd.concat([part.assign(side=name) for name, part in split.sides().items()])
        grouped = side.assign(group=side["image"].map(exact)).query("group >= 0")
        assert (grouped.groupby("group")["side"].nunique() == 1).all()
        assert "copy_of_train" in split.test and split.duplicates["clean_test"] is False
    assert calls == ["random"] * 6
    given = data.split_for(TrainConfig(), data.frames())  # the crops' own split: the planted copies cross it
    clean = data.split_for(TrainConfig(clean_test=True), data.frames())
    assert calls[-2:] == ["given", "given"]
    copied = given.test.loc[given.test["copy_of_train"], "image"]
    assert {planted_name(image) for image in copied} == TEST_PLANTED
    assert set(given.test["image"]) - set(clean.test["image"]) == set(copied)
    assert clean.duplicates["removed from test"] == TEST_COPIES


# --- training: the given split, whole and clean ----------------------------------------------------


def test_train_says_how_many_test_images_copy_a_training_image_and_keeps_them(run: tuple[Path, str]) -> None:
    folder, printed = run
    config = RunFolder(folder).config()
    assert config["protocol"] == "given" and config["clean_test"] is False
    assert config["duplicates"]["test copies of train"] == TEST_COPIES
    assert f"{TEST_COPIES} test image(s) copy a training image" in printed
    frames, _, _ = RunFolder(folder).test_predictions()
    copied = frames.loc[frames["copy_of_train"].astype(bool), "image"]
    assert {planted_name(image) for image in copied} == TEST_PLANTED
    assert (folder / "train_hashes.csv").is_file()


def test_the_clean_test_option_leaves_out_exactly_the_test_copies(
    crops: tuple[Path, str], run: tuple[Path, str], tmp_path: Path
) -> None:
    code, printed, err = train(crops[0], tmp_path / "clean", "--clean-test")
    assert code == 0, err
    config = RunFolder(tmp_path / "clean").config()
    assert config["clean_test"] is True and config["duplicates"]["removed from test"] == TEST_COPIES
    assert f"--clean-test left out the {TEST_COPIES} test image(s)" in printed
    clean, _, _ = RunFolder(tmp_path / "clean").test_predictions()
    whole, _, _ = RunFolder(run[0]).test_predictions()
    assert set(whole["image"]) - set(clean["image"]) == set(whole.loc[whole["copy_of_train"].astype(bool), "image"])
    assert len(whole) - len(clean) == TEST_COPIES and not {planted_name(i) for i in clean["image"]} & TEST_PLANTED


def test_evaluate_run_scores_the_whole_test_side_and_its_clean_part(run: tuple[Path, str]) -> None:
    code, out, err = run_cli(["evaluate", "--run", str(run[0])])
    assert code == 0, err
    frames, _, _ = RunFolder(run[0]).test_predictions()
    metrics = json.JSONDecoder().raw_decode(out[out.index("{") :])[0]
    assert metrics["frame"]["n"] == len(frames) and metrics["clean"]["frame"]["n"] == len(frames) - TEST_COPIES
    assert f"{TEST_COPIES} of the {len(frames)} test frames copy a training crop" in out


# --- evaluate checks what it scores ------------------------------------------------------------------


def test_evaluate_on_the_models_own_training_crops_says_so_and_scores_without_them(
    crops: tuple[Path, str], run: tuple[Path, str]
) -> None:
    """It presented a score on the run's own training crops as a cross-dataset one."""
    folder = RunFolder(run[0])
    code, out, err = run_cli(["evaluate", "--model", str(folder.model_file), "--test-crops", str(crops[0])])
    assert code == 0, err
    sizes = folder.config()["sizes"]
    train_side = set(pd.read_csv(folder.path / "train_hashes.csv")["md5"])
    audit = read_audit(crops[0] / DUPLICATES_CSV).table
    trained = audit["md5"].isin(train_side)  # the train side's crops, and every crop grouped with one of them
    copies = trained.copy()
    for kind in ("exact_group", "near_group"):
        copies |= audit[kind].isin(set(audit.loc[trained, kind]) - {-1})
    overlap = int(out.split("WARNING: ")[1].split(" of the")[0])
    assert overlap == int(copies.sum()) >= sizes["train"] + TEST_COPIES
    assert f"of the {IMAGES} frames scored copy the model's training crops" in out
    assert f"Without them: {IMAGES - overlap} frames, accuracy" in out


def test_evaluate_names_damaged_and_missing_crops_and_unusable_rows_without_a_traceback(
    crops: tuple[Path, str], run: tuple[Path, str], tmp_path: Path
) -> None:
    """A crop cut to 100 bytes or deleted ended in a TensorFlow traceback, with --test-crops and with --crops."""
    copy = tmp_path / "crops"
    shutil.copytree(crops[0], copy)
    test, _, _ = RunFolder(run[0]).test_predictions()
    damaged, missing = sorted(test["image"])[:2]
    (copy / damaged).write_bytes((copy / damaged).read_bytes()[:100])
    (copy / missing).unlink()
    manifest = pd.read_csv(copy / MANIFEST_NAME, dtype=str, keep_default_na=False)
    unusable = manifest.index[~manifest["image"].isin(test["image"])][0]
    manifest.loc[unusable, ["status", "image"]] = ["no_face", ""]
    manifest.to_csv(copy / MANIFEST_NAME, index=False)
    model = str(RunFolder(run[0]).model_file)
    code, out, err = run_cli(["evaluate", "--model", model, "--test-crops", str(copy)])
    assert code == 0 and "Traceback" not in err, err
    assert f"left out, 1 crop(s) missing: {missing}" in out
    assert f"left out, 1 crop(s) damaged (not a whole PNG): {damaged}" in out
    assert "manifest rows without a usable crop (not scored): no_face 1" in out
    assert f"{IMAGES - 3} frames of {copy} scored" in out
    code, out, err = run_cli(["evaluate", "--model", model, "--crops", str(copy)])
    assert code == 0 and "Traceback" not in err, err
    assert "WARNING: left out of the test side: " in err
    assert f"1 missing ({missing})" in err and f"1 damaged (not a whole PNG) ({damaged})" in err
    assert json.JSONDecoder().raw_decode(out[out.index("{") :])[0]["frame"]["n"] == len(test) - 2


def test_evaluate_leaves_out_a_test_crop_of_another_side_than_its_spec_and_names_it(
    crops: tuple[Path, str], run: tuple[Path, str], tmp_path: Path
) -> None:
    """A 64×64 PNG among the 32 px crops on the test side: `evaluate --model --crops` ended in a traceback
    (InvalidArgumentError: Cannot batch tensors with different shapes). It is now left out and named with its
    size and the spec's, as a damaged crop is, and the rest is scored."""
    import cv2

    copy = tmp_path / "crops"
    shutil.copytree(crops[0], copy)
    test, _, _ = RunFolder(run[0]).test_predictions()
    odd = sorted(test["image"])[0]
    cv2.imwrite(str(copy / odd), cv2.resize(cv2.imread(str(copy / odd), cv2.IMREAD_GRAYSCALE), (64, 64)))
    code, out, err = run_cli(["evaluate", "--model", str(RunFolder(run[0]).model_file), "--crops", str(copy)])
    assert code == 0 and "Traceback" not in err, err
    assert f"WARNING: left out of the test side: 1 of 64×64 px, not 32×32 as crop_spec.json says ({odd})" in err
    assert json.JSONDecoder().raw_decode(out[out.index("{") :])[0]["frame"]["n"] == len(test) - 1


def test_evaluate_refuses_crops_smaller_than_the_models_input(
    crops: tuple[Path, str], run: tuple[Path, str], tmp_path: Path
) -> None:
    """A 48 px model was scored on 32 px crops by upsampling them silently (accuracy 0.061)."""
    import cv2

    copy = tmp_path / "small"
    shutil.copytree(crops[0], copy)
    for image in usable_frames(load_manifest(copy))["image"]:
        cv2.imwrite(str(copy / image), cv2.resize(cv2.imread(str(copy / image), 0), (24, 24)))
    code, out, err = run_cli(["evaluate", "--model", str(RunFolder(run[0]).model_file), "--test-crops", str(copy)])
    assert code == 2 and "Traceback" not in err and out == ""
    assert f"crops in {copy} are smaller than the model's 32×32 px input ({IMAGES} of 24 px)" in err


def test_train_says_which_side_it_tests_on_and_warns_of_a_class_that_side_lacks(
    crops: tuple[Path, str], tmp_path: Path
) -> None:
    """A given split with no test side was tested on its val side silently, and a test side lacking
    a class went unmentioned (its macro F1 then averages the others)."""
    copy = tmp_path / "crops"
    shutil.copytree(crops[0], copy)
    manifest = pd.read_csv(copy / MANIFEST_NAME, dtype=str, keep_default_na=False)
    manifest["split"] = manifest["split"].replace({"test": "val"})  # AffectNet's layout: train and val only
    manifest = manifest[~((manifest["split"] == "val") & (manifest["emotion"] == "angry"))]
    manifest.to_csv(copy / MANIFEST_NAME, index=False)
    code, out, err = train(copy, tmp_path / "run")
    assert code == 0, err
    assert "the dataset gives no test side: its val side (" in out and "rows) is the test side" in out
    assert "WARNING: the dataset's val (tested on) side has no frame of angry" in err
    config = RunFolder(tmp_path / "run").config()
    assert config["split_notes"] and "is the test side" in config["split_notes"][0]
    assert RunFolder(tmp_path / "run").metrics()["test"]["absent"] == ["angry"]
