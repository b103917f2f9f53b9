"""Indexers: every RAVDESS/SAVEE/MEAD code on realistic trees, malformed names, wrong roots, folders."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pytest
from conftest import build_savee_tree, touch_file

from fer_utils.data.corpora import (
    CREMAD_EMOTIONS,
    CREMAD_LEVELS,
    CREMAD_SENTENCES,
    EMOTIONS,
    MEAD_EMOTIONS,
    RAVDESS_EMOTIONS,
    SAVEE_EMOTIONS,
    classes_in,
    index_cremad,
    index_mead,
    index_ravdess,
    index_savee,
    subject_of_clip_id,
)
from fer_utils.data.folders import FOLDER_SYNONYMS, index_class_folders
from fer_utils.data.indexing import INDEXERS, index_dataset
from fer_utils.errors import InputError

CLIP_COLUMNS = ["path", "dataset", "emotion", "subject", "clip_id"]


def reasons(index) -> dict[str, str]:
    """File name -> rejection reason."""
    return {Path(p).name: r for p, r in zip(index.rejected["path"], index.rejected["reason"])}


def assert_rejected(index, bad: dict[str, str]) -> None:
    """Each file of `bad` (its path: a fragment of its rejection's reason) is rejected with that reason."""
    found = reasons(index)
    for path, fragment in bad.items():
        name = Path(path).name
        assert fragment in found.get(name, ""), (name, found.get(name))


def touch_files(root: Path, paths: Iterable[str]) -> None:
    """An empty file at each of `paths` (relative to `root`)."""
    for path in paths:
        touch_file(root / path)


def test_vocabulary_is_ravdess_order_then_contempt() -> None:
    assert EMOTIONS == ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised", "contempt")
    assert [RAVDESS_EMOTIONS[f"{c:02d}"] for c in range(1, 9)] == list(EMOTIONS[:8])
    assert set(SAVEE_EMOTIONS.values()) <= set(EMOTIONS) and set(MEAD_EMOTIONS.values()) <= set(EMOTIONS)
    assert set(MEAD_EMOTIONS.values()) == set(EMOTIONS) - {"calm"}


def test_ravdess_indexes_every_code_video_only_by_default(ravdess_tree: Path) -> None:
    index = index_ravdess(ravdess_tree)
    clips = index.clips
    assert list(clips.columns[:5]) == CLIP_COLUMNS
    assert len(clips) == 6 * 60  # 6 actors × 60 video-only speech trials
    assert set(clips["modality"]) == {"02"} and (clips["dataset"] == "ravdess").all()
    assert classes_in(clips) == list(EMOTIONS[:8])
    assert sorted(clips["subject"].unique()) == [f"Actor_{a:02d}" for a in range(1, 7)]
    assert clips["clip_id"].is_unique and all(Path(p).is_absolute() for p in clips["path"])
    row = clips[clips["clip_id"] == "02-01-06-02-01-02-05"].iloc[0]
    assert (row.emotion, row.intensity, row.statement, row.repetition, row.actor) == ("fearful", 2, 1, 2, 5)
    assert len(clips[clips["emotion"] == "neutral"]) == 6 * 4  # neutral: normal intensity only
    # the audio-video copies are reported, not silently dropped
    assert len(index.rejected) == 6 * 60
    assert index.rejected["reason"].str.contains("modality 01").all()


def test_ravdess_both_modalities_on_request(tmp_path: Path) -> None:
    take = "01-05-01-01-01"  # vocal channel, emotion, intensity, statement, repetition
    touch_file(tmp_path / "Actor_02" / f"01-{take}-02.mp4")  # actor 2's take only as audio-video
    touch_file(tmp_path / "Actor_01" / f"02-{take}-01.mp4")  # actor 1's only as video-only
    clips = index_ravdess(tmp_path, modalities=("01", "02")).clips
    assert sorted(clips["clip_id"]) == [f"01-{take}-02", f"02-{take}-01"]
    with pytest.raises(InputError, match="modalities"):
        index_ravdess(tmp_path, modalities=("04",))


def test_both_modalities_of_one_take_index_one_copy_and_say_why(ravdess_tree: Path) -> None:
    """Regression: `--modalities 01,02` made two clips of each take (the same video)
    without a warning, so a clip split could put one copy in training and the other in the test set."""
    for modalities in (("01", "02"), ("02", "01")):
        index = index_ravdess(ravdess_tree, modalities=modalities)
        assert len(index.clips) == 6 * 60 and set(index.clips["modality"]) == {modalities[0]}
        assert index.clips["clip_id"].str[3:].is_unique
        assert len(index.rejected) == 6 * 60
        first = index.rejected.iloc[0]
        kept = Path(first["path"]).with_name(modalities[0] + Path(first["path"]).name[2:])
        assert first["reason"] == f"the same take as {kept} (modalities 01 and 02 hold the same video; one is indexed)"


def test_ravdess_malformed_names_are_rejected_with_reasons(tmp_path: Path) -> None:
    good = touch_file(tmp_path / "deep" / "er" / "Actor_01" / "02-01-03-01-01-01-01.mp4")
    bad = {
        "02-01-09-01-01-01-01.mp4": "emotion code '09'",
        "02-01-01-02-01-01-01.mp4": "neutral has no strong",
        "02-01-03-03-01-01-01.mp4": "intensity code '03'",
        "02-01-03-01-01-01-25.mp4": "actor code '25'",
        "02-01-03-01-01-01-07.mp4": "folder Actor_01",
        "02-01-03-01-01-01.mp4": "7-part",
        "clip.mp4": "7-part",
        "02-01-03-01-01-01-01.avi": "not .avi",
        "05-01-03-01-01-01-01.mp4": "modality code '05'",
    }
    touch_files(tmp_path / "deep" / "er" / "Actor_01", bad)
    touch_files(tmp_path, ("README.md", "deep/.DS_Store"))
    index = index_ravdess(tmp_path)
    assert index.clips["path"].tolist() == [str(good.resolve())]
    assert set(reasons(index)) == set(bad)  # docs and hidden files are not dataset files
    assert_rejected(index, bad)


@pytest.mark.parametrize("indexer", list(INDEXERS.values()))
def test_wrong_roots_and_empty_folders_raise(indexer, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        indexer(tmp_path / "missing")
    with pytest.raises(InputError, match="not a folder"):
        indexer(touch_file(tmp_path / "file.mp4"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no .* files found"):
        indexer(tmp_path / "empty")


def test_ravdess_indexer_on_a_savee_root_explains(tmp_path: Path) -> None:
    build_savee_tree(tmp_path)
    with pytest.raises(InputError, match="no ravdess files.*rejected.*7-part"):
        index_ravdess(tmp_path)


def test_savee_every_speaker_and_code(savee_tree: Path) -> None:
    index = index_savee(savee_tree)
    clips = index.clips
    assert len(clips) == 4 * 7 * 3 and index.rejected.empty
    assert sorted(clips["subject"].unique()) == ["DC", "JE", "JK", "KL"]
    assert set(clips["emotion_code"]) == set(SAVEE_EMOTIONS)
    row = clips[clips["clip_id"] == "KL_sa03"].iloc[0]
    assert (row.emotion, row.sentence, row.subject) == ("sad", 3, "KL")
    assert clips.loc[clips["emotion_code"] == "su", "emotion"].eq("surprised").all()
    assert classes_in(clips) == ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


# corpus: (its one well-formed file, {a malformed file: a fragment of the reason it is rejected})
MALFORMED = {
    "savee": (
        "KL/a01.avi",
        {
            "KL/x03.avi": "unknown emotion code 'x'",
            "KL/sa3.avi": "2-digit",
            "XY/a01.avi": "not a SAVEE speaker",
            "KL/a01.wav": "not a video",
            "KL/happy.avi": "<emotion code><2-digit",
        },
    ),
    "mead": (
        "M003/video/front/angry/level_1/001.mp4",
        {
            "M003/video/sideways/angry/level_1/002.mp4": "unknown view 'sideways'",
            "M003/video/front/disgust/level_1/003.mp4": "unknown emotion folder 'disgust'",
            "M003/video/front/angry/level_4/004.mp4": "level_4",
            "M003/video/front/angry/level_1/05.mp4": "3-digit",
            "X001/video/front/sad/level_1/006.mp4": "M### or W###",
            "M003/audio/front/sad/level_1/007.mp4": "<subject>/video/",
        },
    ),
    "cremad": (
        "1001_DFA_ANG_XX.flv",
        {
            "1000_DFA_ANG_XX.flv": "unknown actor '1000' (1001..1091)",
            "1092_DFA_ANG_XX.flv": "unknown actor '1092'",
            "1001_ABC_ANG_XX.flv": "unknown sentence code 'ABC'",
            "1001_DFA_JOY_XX.flv": "unknown emotion code 'JOY'",
            "1001_DFA_ANG_ZZ.flv": "unknown level code 'ZZ' (known: LO, MD, HI, XX)",
            "1001-DFA-ANG-XX.flv": "<actor>_<sentence>_<EMO>_<level>",
            "1001_DFA_HAP_XX.wav": "audio-only",
            "1001_DFA_HAP_XX.txt2": "not a video",
            "copy/1001_DFA_ANG_XX.mp4": "same clip id '1001_DFA_ANG_XX'",  # one take twice would leak across a split
        },
    ),
}


@pytest.mark.parametrize("corpus", MALFORMED)
def test_malformed_names_are_rejected_with_reasons_and_the_good_file_kept(corpus: str, tmp_path: Path) -> None:
    good, bad = MALFORMED[corpus]
    touch_files(tmp_path, [good, *bad])
    index = index_dataset(corpus, tmp_path)
    assert index.clips["path"].tolist() == [str((tmp_path / good).resolve())]
    assert_rejected(index, bad)


def build_mead(root: Path) -> Path:
    """MEAD layout, two subjects, two views, every emotion folder and level (neutral: level_1)."""
    for subject in ("M003", "W009"):
        for view in ("front", "left_30"):
            for emotion in MEAD_EMOTIONS:
                for level in (1,) if emotion == "neutral" else (1, 2, 3):
                    for clip in (1, 2):
                        touch_file(
                            root / "MEAD" / subject / "video" / view / emotion / f"level_{level}" / f"{clip:03d}.mp4"
                        )
    return root


def test_mead_every_emotion_view_and_level(tmp_path: Path) -> None:
    index = index_mead(build_mead(tmp_path))
    clips = index.clips
    assert index.rejected.empty
    assert len(clips) == 2 * 2 * (7 * 3 + 1) * 2
    assert classes_in(clips) == [e for e in EMOTIONS if e != "calm"]
    assert set(clips["view"]) == {"front", "left_30"} and set(clips["level"]) == {1, 2, 3}
    row = clips[clips["clip_id"] == "W009_left_30_disgusted_level_2_002"].iloc[0]
    assert (row.emotion, row.subject, row.level, row.clip_number, row.mead_emotion) == (
        "disgust",
        "W009",
        2,
        2,
        "disgusted",
    )


def test_folder_of_classes_with_crops_subjects_and_rejections(tmp_path: Path) -> None:
    touch_file(tmp_path / "happy" / "02-01-03-01-01-01-07_f0003.png")
    touch_file(tmp_path / "happy" / "02-01-03-01-01-01-07_f0010.png")
    touch_file(tmp_path / "sad" / "KL_sa03_f0001.jpg")
    touch_file(tmp_path / "contempt" / "M003_front_contempt_level_1_001_f0000.png")
    touch_file(tmp_path / "angry" / "Bob" / "selfie.jpeg")
    touch_file(tmp_path / "angry" / "portrait.png")
    touch_file(tmp_path / "happy" / "anim.gif")
    touch_file(tmp_path / "loose.png")
    touch_file(tmp_path / "manifest.csv")
    index = index_class_folders(tmp_path)
    clips = index.clips.set_index(index.clips["path"].map(lambda p: Path(p).name))
    assert len(clips) == 6 and (clips["class_folder"] == clips["emotion"]).all()
    assert clips.loc["02-01-03-01-01-01-07_f0010.png", ["clip_id", "frame", "subject", "origin"]].tolist() == [
        "02-01-03-01-01-01-07",
        10,
        "Actor_07",
        "ravdess",
    ]
    assert clips.loc["KL_sa03_f0001.jpg", ["clip_id", "subject", "emotion"]].tolist() == ["KL_sa03", "KL", "sad"]
    assert clips.loc["M003_front_contempt_level_1_001_f0000.png", "subject"] == "M003"
    assert clips.loc["selfie.jpeg", ["subject", "frame"]].tolist() == ["Bob", -1]
    assert clips.loc["portrait.png", ["clip_id", "subject", "origin"]].tolist() == ["portrait", "portrait", ""]
    assert (
        clips.loc["portrait.png", "subject_source"] == "image"
        and clips.loc["selfie.jpeg", "subject_source"] == "subfolder"
    )
    found = reasons(index)
    assert set(found) == {"anim.gif", "loose.png"}
    assert "not an image" in found["anim.gif"]


def test_index_dataset_dispatch_strict_and_unknown(savee_tree: Path, tmp_path: Path) -> None:
    assert len(index_dataset("SAVEE", savee_tree).clips) == 84
    with pytest.raises(InputError, match="unknown dataset 'casme'"):
        index_dataset("casme", savee_tree)
    build_savee_tree(tmp_path)
    touch_file(tmp_path / "KL" / "zz01.avi")
    assert len(index_dataset("savee", tmp_path).rejected) == 1
    with pytest.raises(InputError, match="1 file.*zz01.avi.*unknown emotion code"):
        index_dataset("savee", tmp_path, strict=True)


def test_classes_in_uses_vocabulary_order_and_refuses_unknown() -> None:
    assert classes_in(pd.DataFrame({"emotion": ["surprised", "neutral", "contempt", "neutral"]})) == [
        "neutral",
        "surprised",
        "contempt",
    ]
    with pytest.raises(InputError, match="joy"):
        classes_in(pd.DataFrame({"emotion": ["joy"]}))


def test_cli_index_prints_counts_and_rejections(savee_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "table.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fer_utils",
            "index",
            "--dataset",
            "savee",
            "--root",
            str(savee_tree),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "84 savee file(s), 4 subject(s)" in done.stdout and "neutral    12" in done.stdout
    assert len(pd.read_csv(out)) == 84
    failed = subprocess.run(
        [sys.executable, "-m", "fer_utils", "index", "--dataset", "ravdess", "--root", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 2 and "error: dataset root" in failed.stderr


def test_cli_index_records_a_name_that_is_not_utf8_and_writes_the_others(tmp_path: Path) -> None:
    import os
    import shutil

    from fer_utils.assets import diffusionfer_dir

    faces = sorted((diffusionfer_dir() / "happy").glob("*.png"))[:3]
    for folder in ("happy", "sad"):
        (tmp_path / "src" / folder).mkdir(parents=True)
        for face in faces:
            shutil.copy(face, tmp_path / "src" / folder / face.name)
    shutil.copy(faces[0], tmp_path / "src" / "happy" / os.fsdecode(b"caf\xe9.png"))  # Latin-1 name: not UTF-8
    out, rejected = tmp_path / "table.csv", tmp_path / "rejected.csv"
    argv = ["index", "--dataset", "folder", "--root", str(tmp_path / "src"), "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "fer_utils", *argv, "--rejected-out", str(rejected)], capture_output=True, text=True
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "caf\\xe9.png: bad_name: not valid UTF-8" in done.stdout
    assert len(pd.read_csv(out)) == 6
    assert pd.read_csv(rejected)["path"].str.endswith("caf\\xe9.png").tolist() == [True]


def test_symlink_loops_and_dangling_links_are_listed_as_rejected_with_their_reason(tmp_path: Path) -> None:
    import os

    for name in ("a.png", "b.png"):
        touch_file(tmp_path / "happy" / name)
    (tmp_path / "happy" / "loop.png").symlink_to("loop.png")
    (tmp_path / "happy" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    os.symlink("ring2.png", tmp_path / "happy" / "ring1.png")
    os.symlink("ring1.png", tmp_path / "happy" / "ring2.png")
    index = index_dataset("folder", tmp_path)
    assert sorted(index.clips["clip_id"]) == ["a", "b"]
    reasons = dict(zip(index.rejected["path"].map(lambda p: Path(p).name), index.rejected["reason"]))
    assert reasons["gone.png"] == f"a symbolic link to {tmp_path / 'nowhere.png'}, which is missing"
    for name in ("loop.png", "ring1.png", "ring2.png"):
        assert reasons[name] == "a symbolic link that loops (it leads back to itself)"


# --- CREMA-D -----------------------------------------------------------------------


def test_cremad_indexes_every_code_with_the_actor_as_subject(tmp_path: Path) -> None:
    for actor in (1001, 1091):
        for sentence in CREMAD_SENTENCES:
            for emotion in CREMAD_EMOTIONS:
                for level in CREMAD_LEVELS:
                    touch_file(tmp_path / "VideoFlash" / f"{actor}_{sentence}_{emotion}_{level}.flv")
    index = index_cremad(tmp_path)
    clips = index.clips
    assert len(clips) == 2 * 12 * 6 * 4 and len(index.rejected) == 0
    assert list(clips.columns[:5]) == CLIP_COLUMNS and (clips["dataset"] == "cremad").all()
    assert classes_in(clips) == ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
    assert sorted(clips["subject"].unique()) == ["1001", "1091"] and clips["clip_id"].is_unique
    row = clips[clips["clip_id"] == "1091_WSI_FEA_HI"].iloc[0]
    assert (row.emotion, row.actor, row.sentence, row.emotion_code, row.level, row.intensity) == (
        "fearful",
        1091,
        "WSI",
        "FEA",
        "HI",
        "high",
    )


def test_subject_of_clip_id_recovers_cremad_actors_and_disambiguated_ids() -> None:
    assert subject_of_clip_id("1001_DFA_ANG_XX") == ("cremad", "1001")
    assert subject_of_clip_id("1091_IEO_SAD_LO") == ("cremad", "1091")
    assert subject_of_clip_id("1001_DFA_ANG_XX-0a1b2c3d") == ("cremad", "1001")
    assert subject_of_clip_id("02-01-03-01-01-01-07-0a1b2c3d") == ("ravdess", "Actor_07")
    assert subject_of_clip_id("0999_DFA_ANG_XX") is None and subject_of_clip_id("001_03") is None


# --- folders of classes as people name them -----------------------------


def test_folder_synonyms_cover_the_vocabulary_and_common_names() -> None:
    assert set(FOLDER_SYNONYMS.values()) == set(EMOTIONS)
    assert all(FOLDER_SYNONYMS[e] == e for e in EMOTIONS)
    expected = {
        "anger": "angry",
        "angry": "angry",
        "sadness": "sad",
        "sad": "sad",
        "surprise": "surprised",
        "surprised": "surprised",
        "happiness": "happy",
        "smile": "happy",
        "smiling": "happy",
        "disgusted": "disgust",
        "fearful": "fearful",
        "fear": "fearful",
        "afraid": "fearful",
        "neutral": "neutral",
        "calm": "calm",
        "contempt": "contempt",
    }
    assert {k: FOLDER_SYNONYMS[k] for k in expected} == expected
    assert all(k == k.lower() for k in FOLDER_SYNONYMS)


def test_folder_class_names_go_through_the_synonyms_in_any_case(tmp_path: Path) -> None:
    for folder in ("anger", "Happiness", "SURPRISE", "sadness", "Fear", "disgusted", "contempt", "Neutral"):
        touch_file(tmp_path / folder / f"S01_{folder}.png")
    clips = index_class_folders(tmp_path).clips.set_index("class_folder")
    assert clips["emotion"].to_dict() == {
        "Fear": "fearful",
        "Happiness": "happy",
        "Neutral": "neutral",
        "SURPRISE": "surprised",
        "anger": "angry",
        "contempt": "contempt",
        "disgusted": "disgust",
        "sadness": "sad",
    }


def test_folder_that_maps_to_no_emotion_is_an_error_naming_it(tmp_path: Path) -> None:
    touch_file(tmp_path / "happy" / "a.png")
    touch_file(tmp_path / "bored" / "b.png")
    touch_file(tmp_path / "train" / "happy" / "c.png")
    touch_file(tmp_path / "docs" / "notes.md")  # documentation beside the data is not a class
    with pytest.raises(InputError, match=r"'bored', 'train' .*map to no emotion; accepted names.*anger.*smiling"):
        index_class_folders(tmp_path)


def test_subject_pattern_takes_the_subject_from_the_file_name(tmp_path: Path) -> None:
    for subject in ("S005", "S010"):
        for emotion in ("anger", "happy"):
            touch_file(tmp_path / emotion / f"{subject}_{emotion}_001.png")
    touch_file(tmp_path / "happy" / "unknown_person.png")
    index = index_class_folders(tmp_path, subject_pattern=r"^(S\d+)_")
    assert sorted(index.clips["subject"].unique()) == ["S005", "S010"]
    assert (index.clips["subject_source"] == "pattern").all()
    assert reasons(index) == {"unknown_person.png": "file name does not match the subject pattern '^(S\\d+)_'"}
    with pytest.raises(InputError, match="exactly one group"):
        index_class_folders(tmp_path, subject_pattern=r"^S\d+_")
    with pytest.raises(InputError, match="not a valid regular expression"):
        index_class_folders(tmp_path, subject_pattern=r"^(S\d+_")
    with pytest.raises(InputError, match=r"cremad indexer takes no subject_pattern \(--subject-pattern\).*folder"):
        index_dataset("cremad", tmp_path, subject_pattern=r"^(S\d+)_")


def test_same_named_images_get_distinct_clip_ids(tmp_path: Path) -> None:
    """Regression: `happy/A/001.png` and `happy/B/001.png`, or `x.png` beside `x.jpg`, shared one
    clip id, so one crop overwrote the other under two subjects."""
    for rel in ("happy/A/001.png", "happy/B/001.png", "sad/x.png", "sad/x.jpg", "angry/x.png", "angry/y.png"):
        touch_file(tmp_path / rel)
    for frame in (3, 4):  # frames of one clip stay one clip, even when another folder has that clip too
        touch_file(tmp_path / "surprised" / f"02-01-08-01-01-01-07_f{frame:04d}.png")
        touch_file(tmp_path / "surprised" / "copy" / f"02-01-08-01-01-01-07_f{frame:04d}.png")
    clips = index_class_folders(tmp_path).clips
    rel = clips["path"].map(lambda p: Path(p).relative_to(tmp_path).as_posix())
    ids = dict(zip(rel, clips["clip_id"]))
    assert (
        len(set(ids[r] for r in ("happy/A/001.png", "happy/B/001.png", "sad/x.png", "sad/x.jpg", "angry/x.png"))) == 5
    )
    assert ids["angry/y.png"] == "y" and ids["happy/A/001.png"].startswith("001-")
    assert dict(zip(rel, clips["subject"]))["happy/A/001.png"] == "A"
    assert dict(zip(rel, clips["subject"]))["sad/x.png"] == ids["sad/x.png"]  # no subject known: its own
    same_clip = [ids[f"surprised/02-01-08-01-01-01-07_f{f:04d}.png"] for f in (3, 4)]
    copy_clip = [ids[f"surprised/copy/02-01-08-01-01-01-07_f{f:04d}.png"] for f in (3, 4)]
    assert same_clip[0] == same_clip[1] and copy_clip[0] == copy_clip[1] and same_clip[0] != copy_clip[0]
    subjects = dict(zip(rel, clips["subject"]))
    assert subjects["surprised/02-01-08-01-01-01-07_f0003.png"] == "Actor_07"  # from the clip id
    assert subjects["surprised/copy/02-01-08-01-01-01-07_f0003.png"] == "copy"  # a subfolder comes first
    assert not clips[["clip_id", "frame"]].duplicated().any()
    assert index_class_folders(tmp_path).clips["clip_id"].tolist() == clips["clip_id"].tolist()  # stable


def test_cli_index_reports_subjects_and_class_folder_names(tmp_path: Path) -> None:
    from fer_utils.cli import main

    for subject in ("S1", "S2", "S3"):
        touch_file(tmp_path / "Happiness" / f"{subject}_a.png")
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["index", "--dataset", "folder", "--root", str(tmp_path), "--subject-pattern", r"^(S\d+)_"]) == 0
    assert "3 folder file(s), 3 subject(s) (from pattern: 3)" in out.getvalue()
    assert "class folder 'Happiness' read as 'happy'" in out.getvalue()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["index", "--dataset", "folder", "--root", str(tmp_path)]) == 0
    assert "each image is its own subject: pass --subject-pattern" in out.getvalue()


def test_a_subject_pattern_with_a_nested_quantifier_is_refused_before_any_name_is_searched(tmp_path: Path) -> None:
    """Regression: `^(\\w+)+_` took 34 s per file name that almost matches
    (catastrophic backtracking). Such a pattern is now refused at once, with a pattern that works."""
    import time

    import cv2
    import numpy as np

    (tmp_path / "happy").mkdir()
    cv2.imwrite(str(tmp_path / "happy" / ("a" * 30 + "!.png")), np.zeros((8, 8), np.uint8))
    start = time.monotonic()
    with pytest.raises(InputError, match="repeats a group that itself repeats") as refused:
        index_class_folders(tmp_path, subject_pattern=r"^(\w+)+_")
    assert time.monotonic() - start < 1.0
    assert "e.g. '^(\\w+)_' instead" in str(refused.value)
    with pytest.raises(InputError, match="does not match the subject pattern"):  # the safe form runs, at once
        index_class_folders(tmp_path, subject_pattern=r"^(\w+)_")


def test_a_class_folder_inside_another_class_folder_is_rejected_not_made_a_subject(tmp_path: Path) -> None:
    """Regression: `happy/sad/x.png` became an image of subject "sad" labelled happy."""
    import cv2
    import numpy as np

    for rel in ("happy/S01/a.png", "happy/sad/b.png", "sad/S02/c.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / rel), np.zeros((8, 8), np.uint8))
    index = index_class_folders(tmp_path)
    assert sorted(index.clips["subject"]) == ["S01", "S02"]
    assert "class folder 'sad' inside class folder 'happy'" in reasons(index)["b.png"]
