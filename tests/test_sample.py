"""The synthetic sample: naming, labels, attribution, determinism, and faces dlib can find."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_ACTORS

from fer_utils.data.corpora import EMOTIONS, index_ravdess
from fer_utils.data.media import frame_indices
from fer_utils.errors import InputError
from fer_utils.faces.crops import make_detector, make_landmarker
from fer_utils.faces.sample import (
    EMOTION_TEMPLATES,
    FRAME_SIZE,
    INTENSITY_GAIN,
    N_FRAMES,
    generate_sample,
    plan_clips,
    ramp,
    still_landmarks,
    template_displacement,
    warp_field,
)


def min_jacobian(field: np.ndarray) -> float:
    """Smallest Jacobian determinant of the backward map q -> q - field(q) over the image.

    Positive everywhere means the warp is one-to-one (no folds); values near 1 mean little local
    stretch.
    """
    dfx_dy, dfx_dx = np.gradient(field[..., 0].astype(np.float64))
    dfy_dy, dfy_dx = np.gradient(field[..., 1].astype(np.float64))
    return float(((1 - dfx_dx) * (1 - dfy_dy) - dfx_dy * dfy_dx).min())


def read_frames(path: Path | str) -> list[np.ndarray]:
    """Every decoded frame of a clip."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def test_default_plan_is_384_valid_ravdess_names() -> None:
    specs = plan_clips(range(1, 25), range(1, 9), (1, 2))
    assert len(specs) == 384 and len({s.relpath for s in specs}) == 384
    neutral = [s.clip_id for s in specs if s.actor == 5 and s.emotion_code == 1]
    assert neutral == ["02-01-01-01-01-01-05", "02-01-01-01-02-01-05"]  # RAVDESS has no strong neutral
    assert "Actor_05/02-01-08-02-01-01-05.mp4" in {s.relpath for s in specs}
    with pytest.raises(InputError, match="1..24"):
        plan_clips([0], [1], [1])
    with pytest.raises(InputError, match="emotion codes"):
        plan_clips([1], [9], [1])


def test_templates_are_distinct_for_all_eight_emotions() -> None:
    landmarks = still_landmarks([3])[3]
    moves = {e: template_displacement(e, landmarks) for e in EMOTION_TEMPLATES}
    assert list(moves) == list(EMOTIONS[:8])
    assert not moves["neutral"].any()
    names = list(moves)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert np.abs(moves[a] - moves[b]).max() > 2.0, (a, b)  # two pixels apart somewhere, even calm/neutral


def test_every_template_warps_every_still_without_folds() -> None:
    # The backward map q -> q - field(q) must stay one-to-one (Jacobian determinant > 0) at the
    # strongest intensity on all 24 faces; a template pushing two landmarks past each other fails here.
    shape = (224, 398)  # the stills' size (height, width)
    for actor, landmarks in still_landmarks(range(1, 25)).items():
        for emotion in list(EMOTION_TEMPLATES)[1:]:
            peak = template_displacement(emotion, landmarks) * INTENSITY_GAIN[2]
            field = warp_field(landmarks, peak, shape)
            assert min_jacobian(field) > 0.05, (actor, emotion)  # measured minimum: 0.06 (surprised)
            assert np.abs(field).max() > 0.5 * np.abs(peak).max(), (actor, emotion)  # and it does move the face


def test_ramp_starts_neutral_and_every_sampled_frame_carries_the_expression() -> None:
    strength = ramp(N_FRAMES)
    assert strength[0] == 0.0 and strength[-1] == 1.0 and np.all(np.diff(strength) >= 0)
    sampled = strength[frame_indices(N_FRAMES, 6)]  # the 6 frames preprocessing takes, as in the paper
    assert sampled.min() > 0.3 and np.mean(sampled == 1.0) >= 0.5
    assert INTENSITY_GAIN[2] > INTENSITY_GAIN[1]


def test_sample_layout_labels_and_attribution(sample_dir: Path) -> None:
    index = index_ravdess(sample_dir)
    clips = index.clips
    assert index.rejected.empty
    assert len(clips) == len(SAMPLE_ACTORS) * 8
    assert sorted(clips["subject"].unique()) == [f"Actor_{a:02d}" for a in SAMPLE_ACTORS]
    assert sorted(clips["emotion"].unique()) == sorted(EMOTIONS[:8])
    table = pd.read_csv(sample_dir / "clips.csv")
    merged = clips.merge(table, on="clip_id", suffixes=("", "_made"))
    assert len(merged) == len(clips) and (merged["emotion"] == merged["emotion_made"]).all()
    readme = (sample_dir / "README.md").read_text()
    assert "synthetic" in readme.lower() and "Not good for" in readme
    attribution = (sample_dir / "ATTRIBUTION.md").read_text()
    assert "CC BY-NC-SA 4.0" in attribution and "Livingstone" in attribution and "synthetic derivatives" in attribution


def test_every_clip_is_a_1280x720_video_with_a_face_at_start_middle_end(sample_dir: Path) -> None:
    detector = make_detector("dlib-hog")
    for path in sorted(sample_dir.rglob("*.mp4")):
        frames = read_frames(path)
        assert len(frames) == N_FRAMES, path
        assert frames[0].shape == (FRAME_SIZE[1], FRAME_SIZE[0], 3)
        for i in (0, N_FRAMES // 2, N_FRAMES - 1):
            assert len(detector.detect(frames[i])) == 1, (path.name, i)


def landmark_distance(frame: np.ndarray, a: int, b: int, detector, landmarker) -> float:
    """Distance between landmarks a and b of the one face in `frame`, in inter-ocular distances."""
    points = landmarker.landmarks(frame, detector.detect(frame)[0])
    iod = np.linalg.norm(points[36:42].mean(axis=0) - points[42:48].mean(axis=0))
    return float(np.linalg.norm(points[a] - points[b]) / iod)


def test_expressions_move_the_detected_landmarks(sample_dir: Path) -> None:
    models = make_detector("dlib-hog"), make_landmarker()
    clip = sample_dir / "Actor_01"
    happy = read_frames(clip / "02-01-03-01-01-01-01.mp4")
    surprised = read_frames(clip / "02-01-08-01-01-01-01.mp4")
    neutral = read_frames(clip / "02-01-01-01-01-01-01.mp4")
    sad = read_frames(clip / "02-01-04-01-01-01-01.mp4")
    # happy: mouth corners (48, 54) move apart, already in the second frame; surprised: chin (8) drops
    # away from the nose (30); sad: the mouth narrows as its corners are pulled down.
    # Measured on actor 1 at normal intensity: +0.23, +0.09 (frame 1), +0.25 and -0.10 IOD.
    happy_width = [landmark_distance(frame, 48, 54, *models) for frame in (happy[0], happy[1], happy[-1])]
    assert happy_width[2] > happy_width[0] + 0.15 and happy_width[1] > happy_width[0] + 0.04
    assert landmark_distance(surprised[-1], 8, 30, *models) > landmark_distance(surprised[0], 8, 30, *models) + 0.15
    assert landmark_distance(sad[-1], 48, 54, *models) < landmark_distance(sad[0], 48, 54, *models) - 0.05
    assert abs(landmark_distance(neutral[-1], 8, 30, *models) - landmark_distance(neutral[0], 8, 30, *models)) < 0.05


@pytest.mark.slow
def test_same_seed_same_bytes_any_worker_count(tmp_path: Path) -> None:
    kwargs = {"actors": (5, 6), "emotions": (1, 4, 8), "intensities": (2,), "progress": False}
    one = generate_sample(tmp_path / "one", workers=1, **kwargs)
    two = generate_sample(tmp_path / "two", workers=2, **kwargs)
    assert len(one) == 6 and list(one["clip_id"]) == list(two["clip_id"])
    for rel in one["path"].map(lambda p: Path(p).relative_to(tmp_path / "one")):
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes(), rel
    other = generate_sample(tmp_path / "seed1", seed=1, workers=1, **kwargs)
    changed = [
        Path(p).read_bytes() != (tmp_path / "one" / Path(p).relative_to(tmp_path / "seed1")).read_bytes()
        for p in other["path"]
    ]
    assert all(changed)
    assert not list(tmp_path.rglob(".*partial*"))  # no temporary files left behind


@pytest.mark.slow
def test_dlib_finds_one_face_in_every_frame_of_the_strongest_clips(tmp_path: Path) -> None:
    table = generate_sample(tmp_path, actors=(9, 18), intensities=(2,), workers=1, progress=False)
    detector = make_detector("dlib-hog")
    counts = [len(detector.detect(frame)) for path in table["path"] for frame in read_frames(path)]
    assert len(counts) == 16 * N_FRAMES and set(counts) == {1}


def test_cli_sample_writes_an_indexable_sample(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fer_utils",
            "sample",
            "--out",
            str(tmp_path),
            "--actors",
            "24",
            "--workers",
            "1",
            "--frames",
            "4",
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "wrote 16 synthetic clips" in done.stdout
    clips = index_ravdess(tmp_path).clips
    assert len(clips) == 16 and set(clips["subject"]) == {"Actor_24"}
    assert len(read_frames(clips["path"].iloc[0])) == 4


def _sample_cli(out: Path) -> subprocess.CompletedProcess:
    argv = ["sample", "--out", str(out), "--actors", "24", "--workers", "1", "--frames", "2", "--quiet"]
    return subprocess.run([sys.executable, "-m", "fer_utils", *argv], capture_output=True, text=True)


def test_cli_sample_refuses_a_folder_of_the_users_files_and_reruns_on_its_own(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("# my notes\n")
    (mine / "clips.csv").write_text("name,label\nclip1,happy\n")
    refused = _sample_cli(mine)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines() == [
        f"error: --out {mine} holds files the sample did not write (README.md, clips.csv): give a new or empty "
        "folder (nothing was written)"
    ]
    assert (mine / "README.md").read_text() == "# my notes\n" and sorted(p.name for p in mine.iterdir()) == [
        "README.md",
        "clips.csv",
    ]
    out = tmp_path / "sample"
    assert _sample_cli(out).returncode == 0
    (out / ".complete").touch()  # as `make sample` marks it
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    again = _sample_cli(out)
    assert again.returncode == 0, again.stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
