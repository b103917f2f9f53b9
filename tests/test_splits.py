"""Split protocols: each guarantee on the indexers' output and on a frame-level table, seeds, leak check."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fer_utils.data.corpora import index_ravdess, index_savee
from fer_utils.data.splits import LeakReport, Split, check_leakage, split_frames, split_note
from fer_utils.errors import InputError

FRAMES_PER_CLIP = 6


@pytest.fixture(scope="module")
def clips(ravdess_tree: Path) -> pd.DataFrame:
    """RAVDESS clip index: 6 actors × 60 video-only clips."""
    return index_ravdess(ravdess_tree).clips


@pytest.fixture(scope="module")
def frames(clips: pd.DataFrame) -> pd.DataFrame:
    """A manifest-like table: 6 sampled frames per clip."""
    table = clips.loc[clips.index.repeat(FRAMES_PER_CLIP)].reset_index(drop=True)
    table["frame_index"] = table.groupby("clip_id").cumcount()
    return table


def assert_partition(split: Split, table: pd.DataFrame) -> None:
    """Sides are disjoint by row and together hold every row exactly once."""
    sides = list(split.sides().values())
    labels = [label for side in sides for label in side.index]
    assert len(labels) == len(set(labels)) == len(table)
    assert set(labels) == set(table.index)


def test_random_is_stratified_80_20_and_reproducible(frames: pd.DataFrame) -> None:
    split = split_frames(frames, "random", test_size=0.2, seed=3)
    assert_partition(split, frames)
    assert len(split.test) == pytest.approx(0.2 * len(frames), abs=1)
    share = split.test["emotion"].value_counts() / frames["emotion"].value_counts()
    assert share.between(0.18, 0.22).all(), share  # every emotion keeps its 20 %
    again = split_frames(frames, "random", test_size=0.2, seed=3)
    assert again.test.index.equals(split.test.index)
    other = split_frames(frames, "random", test_size=0.2, seed=4)
    assert not other.test.index.equals(split.test.index)


def test_random_split_of_frames_leaks_clips_and_subjects(frames: pd.DataFrame) -> None:
    report = check_leakage(split_frames(frames, "random", seed=0))
    assert report.leaks and len(report.shared_clips) > 100 and len(report.shared_subjects) == 6


@pytest.mark.parametrize("table_name", ["clips", "frames"])
def test_clip_split_keeps_every_clip_on_one_side(table_name: str, request: pytest.FixtureRequest) -> None:
    table = request.getfixturevalue(table_name)
    split = split_frames(table, "clip", test_size=0.2, seed=1)
    assert_partition(split, table)
    assert not set(split.train["clip_id"]) & set(split.test["clip_id"])
    report = check_leakage(split)
    assert report.shared_clips == [] and report.shared_subjects  # actors still shared: clip != subject
    assert set(split.test["emotion"]) == set(table["emotion"])  # stratified: every emotion tested
    assert len(split.test) == pytest.approx(0.2 * len(table), rel=0.15)
    assert split_frames(table, "clip", seed=1).test.index.equals(split.test.index)


@pytest.mark.parametrize("table_name", ["clips", "frames"])
def test_subject_split_keeps_every_actor_on_one_side(table_name: str, request: pytest.FixtureRequest) -> None:
    table = request.getfixturevalue(table_name)
    split = split_frames(table, "subject", test_size=0.2, val_size=0.2, seed=2)
    assert_partition(split, table)
    report = check_leakage(split)
    assert not report.leaks, str(report)
    subjects = [set(side["subject"]) for side in split.sides().values()]
    assert all(subjects) and sum(map(len, subjects)) == 6


def test_validation_side_for_each_protocol(frames: pd.DataFrame) -> None:
    for protocol in ("random", "clip", "subject"):
        split = split_frames(frames, protocol, test_size=0.2, val_size=0.1, seed=0)
        assert split.val is not None and len(split.val) > 0
        assert_partition(split, frames)
        if protocol != "random":
            assert check_leakage(split).shared_clips == []


def test_savee_subject_split_holds_out_one_speaker(savee_tree: Path) -> None:
    clips = index_savee(savee_tree).clips
    split = split_frames(clips, "subject", test_size=0.2, seed=0)
    assert split.test["subject"].nunique() == 1 and split.train["subject"].nunique() == 3
    assert not check_leakage(split).leaks


def test_leak_check_detects_and_clears() -> None:
    table = pd.DataFrame(
        {
            "emotion": ["happy", "sad", "happy", "sad"],
            "clip_id": ["a", "b", "c", "d"],
            "subject": ["s1", "s1", "s2", "s3"],
        }
    )
    clean = check_leakage(Split(train=table.iloc[:2], test=table.iloc[2:]))
    assert clean == LeakReport([], []) and not clean.leaks and "no leak" in str(clean)
    shared_subject = check_leakage(Split(train=table.iloc[:3], test=table.iloc[[1, 3]]))
    assert shared_subject.shared_clips == ["b"] and shared_subject.shared_subjects == ["s1"]
    via_val = check_leakage(Split(train=table.iloc[:1], test=table.iloc[[2]], val=table.iloc[[1]]))
    assert via_val.shared_subjects == ["s1"] and via_val.leaks


def test_bad_arguments_are_clear(frames: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="unknown split protocol 'video'"):
        split_frames(frames, "video")
    with pytest.raises(InputError, match="missing \\['subject'\\]"):
        split_frames(frames.drop(columns="subject"))
    with pytest.raises(InputError, match="test_size"):
        split_frames(frames, test_size=1.5)
    with pytest.raises(InputError, match="below 1"):
        split_frames(frames, test_size=0.5, val_size=0.5)
    one_actor = frames[frames["subject"] == "Actor_01"]
    with pytest.raises(InputError, match="only 1 distinct"):
        split_frames(one_actor, "subject")


def test_a_run_without_a_chosen_protocol_splits_people_with_several_faces_by_subject(frames: pd.DataFrame) -> None:
    """Chapter 10 split a reader's MEAD at random (its own test side 0.968, real faces elsewhere
    0.079); without a chosen protocol, a dataset whose people have several rows and no sides of its own is
    now split by subject, the generated faces (one face a person) stay on the random split they were cached
    with, a dataset's own sides win, and a chosen protocol is kept."""
    from fer_utils.assets import diffusionfer_dir
    from fer_utils.data.indexing import index_dataset
    from fer_utils.data.splits import chosen_protocol, resolve_protocol

    assert chosen_protocol(frames) == "subject" and resolve_protocol(frames) == "random"
    assert chosen_protocol(frames, "clip") == "clip"
    generated = index_dataset("folder", diffusionfer_dir()).clips
    assert generated["subject"].is_unique
    assert chosen_protocol(generated) is None and resolve_protocol(generated) == "random"
    sides = frames.assign(split=frames["subject"].map(lambda s: "test" if s == frames["subject"].iloc[0] else "train"))
    assert chosen_protocol(sides) is None and resolve_protocol(sides) == "given"


def test_a_given_split_note_on_a_table_without_a_split_is_the_error_not_a_blank_count() -> None:
    """`train --protocol given` printed "the dataset's own split,  rows" before its error."""
    frames = pd.DataFrame({"clip_id": ["a", "b"], "emotion": ["happy", "sad"], "subject": ["1", "2"]})
    with pytest.raises(InputError, match="protocol 'given' takes the dataset's own split"):
        split_note(frames)
    with_split = frames.assign(split=["train", "test"])
    assert split_note(with_split).startswith("protocol given: the dataset's own split, train 1, test 1 rows")
