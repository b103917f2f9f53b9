"""Indexers: every RAVDESS/SAVEE/MEAD code on realistic trees, malformed names, wrong roots, folders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import touch_file, build_savee_tree

from fer_utils.data import (
    EMOTIONS,
    MEAD_EMOTIONS,
    RAVDESS_EMOTIONS,
    SAVEE_EMOTIONS,
    classes_in,
    index_dataset,
    index_folder,
    index_mead,
    index_ravdess,
    index_savee,
)
from fer_utils.errors import DatasetError

CLIP_COLUMNS = ["path", "dataset", "emotion", "subject", "clip_id"]


def reasons(index) -> dict[str, str]:
    """File name -> rejection reason."""
    return {Path(p).name: r for p, r in zip(index.rejected["path"], index.rejected["reason"])}


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


def test_ravdess_both_modalities_on_request(ravdess_tree: Path) -> None:
    clips = index_ravdess(ravdess_tree, modalities=("01", "02")).clips
    assert len(clips) == 2 * 6 * 60 and set(clips["modality"]) == {"01", "02"}
    with pytest.raises(DatasetError, match="modalities"):
        index_ravdess(ravdess_tree, modalities=("04",))


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
    for name in bad:
        touch_file(tmp_path / "deep" / "er" / "Actor_01" / name)
    touch_file(tmp_path / "README.md")
    touch_file(tmp_path / "deep" / ".DS_Store")
    index = index_ravdess(tmp_path)
    assert index.clips["path"].tolist() == [str(good.resolve())]
    found = reasons(index)
    assert set(found) == set(bad)  # docs and hidden files are not dataset files
    for name, fragment in bad.items():
        assert fragment in found[name], (name, found[name])


@pytest.mark.parametrize("indexer", [index_ravdess, index_savee, index_mead, index_folder])
def test_wrong_roots_and_empty_folders_raise(indexer, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        indexer(tmp_path / "missing")
    with pytest.raises(DatasetError, match="not a folder"):
        indexer(touch_file(tmp_path / "file.mp4"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no .* files found"):
        indexer(tmp_path / "empty")


def test_ravdess_indexer_on_a_savee_root_explains(tmp_path: Path) -> None:
    build_savee_tree(tmp_path)
    with pytest.raises(DatasetError, match="no ravdess files.*rejected.*7-part"):
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


def test_savee_malformed(tmp_path: Path) -> None:
    touch_file(tmp_path / "KL" / "a01.avi")
    for rel in ("KL/x03.avi", "KL/sa3.avi", "XY/a01.avi", "KL/a01.wav", "KL/happy.avi"):
        touch_file(tmp_path / rel)
    found = reasons(index_savee(tmp_path))
    assert "unknown emotion code 'x'" in found["x03.avi"]
    assert "2-digit" in found["sa3.avi"]
    assert "not a SAVEE speaker" in found["a01.avi"]
    assert "not a video" in found["a01.wav"]
    assert "<emotion code><2-digit" in found["happy.avi"]


def build_mead(root: Path) -> Path:
    """MEAD layout, two subjects, two views, every emotion folder and level (neutral: level_1)."""
    for subject in ("M003", "W009"):
        for view in ("front", "left_30"):
            for emotion in MEAD_EMOTIONS:
                for level in (1,) if emotion == "neutral" else (1, 2, 3):
                    for clip in (1, 2):
                        touch_file(root / "MEAD" / subject / "video" / view / emotion / f"level_{level}" / f"{clip:03d}.mp4")
    return root


def test_mead_every_emotion_view_and_level(tmp_path: Path) -> None:
    index = index_mead(build_mead(tmp_path))
    clips = index.clips
    assert index.rejected.empty
    assert len(clips) == 2 * 2 * (7 * 3 + 1) * 2
    assert classes_in(clips) == [e for e in EMOTIONS if e != "calm"]
    assert set(clips["view"]) == {"front", "left_30"} and set(clips["level"]) == {1, 2, 3}
    row = clips[clips["clip_id"] == "W009_left_30_disgusted_level_2_002"].iloc[0]
    assert (row.emotion, row.subject, row.level, row.clip_number, row.mead_emotion) == ("disgust", "W009", 2, 2, "disgusted")


def test_mead_malformed(tmp_path: Path) -> None:
    base = tmp_path / "M003" / "video"
    touch_file(base / "front" / "angry" / "level_1" / "001.mp4")
    for rel in ("sideways/angry/level_1/002.mp4", "front/disgust/level_1/003.mp4",
                "front/angry/level_4/004.mp4", "front/angry/level_1/05.mp4"):
        touch_file(base / rel)
    touch_file(tmp_path / "X001" / "video" / "front" / "sad" / "level_1" / "006.mp4")
    touch_file(tmp_path / "M003" / "audio" / "front" / "sad" / "level_1" / "007.mp4")
    found = reasons(index_mead(tmp_path))
    assert "unknown view 'sideways'" in found["002.mp4"]
    assert "unknown emotion folder 'disgust'" in found["003.mp4"]
    assert "level_4" in found["004.mp4"]
    assert "3-digit" in found["05.mp4"]
    assert "M### or W###" in found["006.mp4"]
    assert "<subject>/video/" in found["007.mp4"]


def test_folder_of_classes_with_crops_subjects_and_rejections(tmp_path: Path) -> None:
    touch_file(tmp_path / "happy" / "02-01-03-01-01-01-07_f0003.png")
    touch_file(tmp_path / "happy" / "02-01-03-01-01-01-07_f0010.png")
    touch_file(tmp_path / "sad" / "KL_sa03_f0001.jpg")
    touch_file(tmp_path / "contempt" / "M003_front_contempt_level_1_001_f0000.png")
    touch_file(tmp_path / "angry" / "Bob" / "selfie.jpeg")
    touch_file(tmp_path / "angry" / "portrait.png")
    touch_file(tmp_path / "joy" / "x.png")
    touch_file(tmp_path / "happy" / "anim.gif")
    touch_file(tmp_path / "loose.png")
    touch_file(tmp_path / "manifest.csv")
    index = index_folder(tmp_path)
    clips = index.clips.set_index(index.clips["path"].map(lambda p: Path(p).name))
    assert len(clips) == 6
    assert clips.loc["02-01-03-01-01-01-07_f0010.png", ["clip_id", "frame", "subject", "origin"]].tolist() == [
        "02-01-03-01-01-01-07", 10, "Actor_07", "ravdess"]
    assert clips.loc["KL_sa03_f0001.jpg", ["clip_id", "subject", "emotion"]].tolist() == ["KL_sa03", "KL", "sad"]
    assert clips.loc["M003_front_contempt_level_1_001_f0000.png", "subject"] == "M003"
    assert clips.loc["selfie.jpeg", ["subject", "frame"]].tolist() == ["Bob", -1]
    assert clips.loc["portrait.png", ["clip_id", "subject", "origin"]].tolist() == ["portrait", "portrait", ""]
    found = reasons(index)
    assert set(found) == {"x.png", "anim.gif", "loose.png"}
    assert "unknown emotion folder 'joy'" in found["x.png"]
    assert "not an image" in found["anim.gif"]


def test_index_dataset_dispatch_strict_and_unknown(savee_tree: Path, tmp_path: Path) -> None:
    assert len(index_dataset("SAVEE", savee_tree).clips) == 84
    with pytest.raises(DatasetError, match="unknown dataset 'casme'"):
        index_dataset("casme", savee_tree)
    build_savee_tree(tmp_path)
    touch_file(tmp_path / "KL" / "zz01.avi")
    assert len(index_dataset("savee", tmp_path).rejected) == 1
    with pytest.raises(DatasetError, match="1 file.*zz01.avi.*unknown emotion code"):
        index_dataset("savee", tmp_path, strict=True)


def test_classes_in_uses_vocabulary_order_and_refuses_unknown() -> None:
    assert classes_in(pd.DataFrame({"emotion": ["surprised", "neutral", "contempt", "neutral"]})) == [
        "neutral", "surprised", "contempt"]
    with pytest.raises(DatasetError, match="joy"):
        classes_in(pd.DataFrame({"emotion": ["joy"]}))


def test_cli_index_prints_counts_and_rejections(savee_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "table.csv"
    done = subprocess.run([sys.executable, "-m", "fer_utils", "index", "--dataset", "savee", "--root",
                           str(savee_tree), "--out", str(out)], capture_output=True, text=True, check=True)
    assert "84 savee file(s), 4 subject(s)" in done.stdout and "neutral    12" in done.stdout
    assert len(pd.read_csv(out)) == 84
    failed = subprocess.run([sys.executable, "-m", "fer_utils", "index", "--dataset", "ravdess", "--root",
                             str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert failed.returncode == 2 and "error: dataset root" in failed.stderr
