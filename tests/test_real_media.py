"""Real datasets as readers have them: the shipped CREMA-D, RAVDESS and London media, and
folders of small face crops built from them, through the indexers and `python -m fer_utils preprocess`."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import astuple
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_runner import preprocess_args, run_cli

from fer_utils.assets import cremad_dir, london_faces_dir, ravdess_clip_path, still_paths
from fer_utils.data.folders import index_class_folders
from fer_utils.data.indexing import index_dataset
from fer_utils.data.manifest import MANIFEST_NAME, load_manifest
from fer_utils.data.media import frame_count, frame_indices, read_frames, sample_frames
from fer_utils.data.splits import check_leakage, split_frames
from fer_utils.errors import InputError
from fer_utils.faces.crops import Box, FaceDetector, crop_face, make_detector
from fer_utils.faces.preprocess import preprocess_dataset

CREMAD_CLIPS = sorted(cremad_dir().glob("*.flv"))
CROP_SIDE = 48
# The real RAVDESS clip's sampled frames and face boxes as the reference path (OpenCV's default decoder
# threads, every frame searched at 400 px) found them before detection ran on a reduced copy.
RAVDESS_FRAMES = [10, 30, 50, 71, 91, 111]
RAVDESS_BOXES = [Box(162, 203, 389, 389)] * 4 + [Box(162, 247, 389, 388), Box(162, 203, 389, 389)]
LONDON_PATTERN = r"^(\d+)_"


def small_crop(path: Path, finder: FaceDetector) -> np.ndarray:
    """The face of a real image as a face-crop dataset ships it: a tight 48×48 gray crop."""
    image = cv2.imread(str(path))
    return crop_face(image, finder.detect(image)[0], side=CROP_SIDE, margin=0.1)


@pytest.fixture(scope="module")
def finder() -> FaceDetector:
    """One dlib HOG detector for the module (making one takes a second or two)."""
    return make_detector("dlib-hog")


@pytest.fixture(scope="module")
def london_crops(finder: FaceDetector) -> dict[str, np.ndarray]:
    """48×48 gray crops of 8 London people's neutral and smiling faces, keyed `<person>_<n|h>`."""
    crops = {}
    for person in range(1, 9):
        crops[f"{person:03d}_n"] = small_crop(london_faces_dir() / "neutral" / f"{person:03d}_03.jpg", finder)
        crops[f"{person:03d}_h"] = small_crop(london_faces_dir() / "smiling" / f"{person:03d}_08.jpg", finder)
    return crops


@pytest.fixture(scope="module")
def crops_dataset(
    tmp_path_factory: pytest.TempPathFactory, london_crops: dict[str, np.ndarray], finder: FaceDetector
) -> Path:
    """A folder of small gray face crops as people name classes (`Neutral/`, `Happiness/`, `anger/`,
    `surprise/`) with the subject id in each file name (`S<nnn>_…`). The London faces give neutral and
    smiling; 6 RAVDESS stills stand in for the two other classes (the labels exercise the names only)."""
    root = tmp_path_factory.mktemp("crops_dataset")
    for key, crop in london_crops.items():
        person, kind = key.split("_")
        folder = root / ("Neutral" if kind == "n" else "Happiness")
        folder.mkdir(exist_ok=True)
        cv2.imwrite(str(folder / f"S{person}_{kind}.png"), crop)
    for k, still in enumerate(still_paths()[:6]):
        folder = root / ("anger" if k < 3 else "surprise")
        folder.mkdir(exist_ok=True)
        cv2.imwrite(str(folder / f"S9{k:02d}_x.png"), small_crop(still, finder))
    return root


# --- real clips -------------------------------------------------------------------------------


def test_cremad_and_ravdess_clips_index() -> None:
    cremad = index_dataset("cremad", cremad_dir())
    assert len(cremad.clips) == 6 and len(cremad.rejected) == 0
    assert sorted(cremad.clips["emotion"]) == ["angry", "disgust", "fearful", "happy", "neutral", "sad"]
    assert set(cremad.clips["subject"]) == {"1001"} and set(cremad.clips["sentence"]) == {"DFA"}
    ravdess = index_dataset("ravdess", ravdess_clip_path().parent, modalities=("01", "02"))
    assert ravdess.clips[["clip_id", "emotion", "subject", "intensity"]].values.tolist() == [
        ["01-01-08-02-01-01-19", "surprised", "Actor_19", 2]
    ]
    with pytest.raises(InputError, match="modality 01 .audio-video. not selected"):
        index_dataset("ravdess", ravdess_clip_path().parent)  # video-only by default: says why it is empty


@pytest.mark.parametrize("clip", [*CREMAD_CLIPS, ravdess_clip_path()], ids=lambda p: p.name)
def test_real_clips_sample_the_same_frames_by_seek_and_by_decoding(clip: Path) -> None:
    seeking = sample_frames(clip, 6)
    decoding = sample_frames(clip, 6, seek=False)
    assert len(seeking) == 6 and [i for i, _ in seeking] == [i for i, _ in decoding]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(seeking, decoding))


def test_cremad_preprocesses_to_one_face_per_frame_and_its_crops_keep_the_actor(tmp_path: Path) -> None:
    code, out, _ = run_cli(preprocess_args("cremad", cremad_dir(), tmp_path / "crops", "--frames", "3", "--side", "64"))
    assert code == 0 and "6 clips, 1 subject(s); 18 of 18 frames usable (100 %): ok 18" in out
    manifest = load_manifest(tmp_path / "crops")
    assert (manifest["status"] == "ok").all() and (manifest["n_faces"] == 1).all()
    assert set(manifest["subject"]) == {"1001"} and manifest["clip_id"].nunique() == 6
    again = index_class_folders(tmp_path / "crops").clips  # the crops folder is itself a dataset
    assert len(again) == 18 and set(again["subject"]) == {"1001"} and set(again["origin"]) == {"cremad"}
    assert sorted(again["clip_id"].unique()) == sorted(manifest["clip_id"].unique())


def test_ravdess_clip_preprocesses_to_one_face_per_frame(tmp_path: Path) -> None:
    code, out, _ = run_cli(
        preprocess_args("ravdess", ravdess_clip_path().parent, tmp_path / "crops", "--modalities", "01", "--side", "64")
    )
    assert code == 0, out
    manifest = load_manifest(tmp_path / "crops")
    assert len(manifest) == 6 and (manifest["status"] == "ok").all() and (manifest["n_faces"] == 1).all()
    assert set(manifest["subject"]) == {"Actor_19"} and set(manifest["emotion"]) == {"surprised"}


def test_one_decoder_thread_decodes_the_real_clip_to_the_same_pixels() -> None:
    clip = ravdess_clip_path()
    targets = frame_indices(frame_count(clip), 6)
    one, default = read_frames(clip, targets, threads=1), read_frames(clip, targets, threads=None)
    assert [i for i, _ in one] == [i for i, _ in default] == RAVDESS_FRAMES
    assert all(a is not None and np.array_equal(a, b) for (_, a), (_, b) in zip(one, default))


def test_frames_far_apart_are_reached_by_seeking_and_are_the_decoded_frames() -> None:
    clip = ravdess_clip_path()
    far = [5, 60, 115]  # gaps longer than media.SEEK_GAP: read by seeking
    seeking, decoding = read_frames(clip, far), read_frames(clip, far, seek=False)
    assert [i for i, _ in seeking] == far
    assert all(a is not None and np.array_equal(a, b) for (_, a), (_, b) in zip(seeking, decoding))


def _boxes(manifest) -> list[Box]:
    """The manifest's face boxes."""
    return [Box(*map(int, row)) for row in manifest[["x", "y", "w", "h"]].itertuples(index=False)]


def test_the_fast_path_finds_the_reference_faces_in_the_real_clip(tmp_path: Path) -> None:
    clips = index_dataset("ravdess", ravdess_clip_path().parent, modalities=("01",)).clips
    runs = {
        scale: preprocess_dataset(clips, tmp_path / str(scale), scale_to_face=scale, workers=1, progress=False)
        for scale in (False, True)
    }
    reference, fast = runs[False], runs[True]
    assert list(reference["frame_index"]) == list(fast["frame_index"]) == RAVDESS_FRAMES
    assert (reference["status"] == "ok").all() and (fast["status"] == "ok").all()
    assert _boxes(reference) == RAVDESS_BOXES  # the reference path's crops are what they were
    for ref, box in zip(_boxes(reference), _boxes(fast)):
        assert max(abs(a - b) for a, b in zip(astuple(ref), astuple(box))) <= 0.02 * ref.w
    for ref_image, fast_image in zip(reference["image"], fast["image"]):
        a, b = (
            cv2.imread(str(tmp_path / str(s) / image), cv2.IMREAD_GRAYSCALE)
            for s, image in ((False, ref_image), (True, fast_image))
        )
        assert np.abs(a.astype(int) - b).mean() < 6  # the same face, framed within 2 % (of 255 levels)
    assert _boxes(fast)[0] == RAVDESS_BOXES[0]  # the first frame is searched in full either way


# --- the London faces: a folder of classes with subjects in the file names ------------------------


def test_london_faces_index_as_102_people_by_2_emotions_and_split_by_subject() -> None:
    index = index_dataset("folder", london_faces_dir(), subject_pattern=LONDON_PATTERN)
    clips = index.clips
    assert len(clips) == 204 and len(index.rejected) == 0
    assert clips["subject"].nunique() == 102 and sorted(clips["emotion"].unique()) == ["happy", "neutral"]
    assert (clips.groupby("subject")["emotion"].nunique() == 2).all()  # everybody neutral and smiling
    assert set(clips.loc[clips["class_folder"] == "smiling", "emotion"]) == {"happy"}
    split = split_frames(clips, "subject", test_size=0.2, seed=0)
    report = check_leakage(split)
    assert not report.shared_subjects and len(split.test) > 0
    # the same people under a random image split do sit on both sides: the check can fail
    assert check_leakage(split_frames(clips, "random", test_size=0.2, seed=0)).shared_subjects


# --- folders of small face crops ------------------------------------------------------------------


def test_small_face_crops_with_synonym_classes_preprocess_with_detector_none(
    crops_dataset: Path, london_crops: dict[str, np.ndarray], tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    code, out, err = run_cli(
        preprocess_args(
            "folder",
            crops_dataset,
            out_dir,
            "--detector",
            "none",
            "--subject-pattern",
            r"^(S\d+)_",
            "--side",
            str(CROP_SIDE),
        )
    )
    assert code == 0 and "22 clips, 14 subject(s); 22 of 22 frames usable (100 %)" in out and not err
    manifest = load_manifest(out_dir)
    by_name = manifest.set_index(manifest["source"].map(lambda s: Path(s).name))
    assert by_name.loc["S001_h.png", ["emotion", "subject"]].tolist() == ["happy", "S001"]
    assert by_name.loc["S008_n.png", ["emotion", "subject"]].tolist() == ["neutral", "S008"]
    assert by_name.loc["S900_x.png", ["emotion", "subject"]].tolist() == ["angry", "S900"]
    assert by_name.loc["S905_x.png", ["emotion", "subject"]].tolist() == ["surprised", "S905"]
    crop = cv2.imread(str(out_dir / by_name.loc["S003_h.png", "image"]), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(crop, london_crops["003_h"])  # the crop is the whole image, untouched


def test_small_face_crops_are_found_by_the_default_detector_after_upsampling(
    crops_dataset: Path, tmp_path: Path
) -> None:
    """Regression: 48×48 face crops were all `no_face` with a real detector."""
    code, out, _ = run_cli(
        preprocess_args(
            "folder", crops_dataset, tmp_path / "out", "--subject-pattern", r"^(S\d+)_", "--side", str(CROP_SIDE)
        )
    )
    manifest = load_manifest(tmp_path / "out")
    assert code == 0 and (manifest["status"] == "ok").sum() >= 20, out


def test_same_named_images_keep_one_crop_each(london_crops: dict[str, np.ndarray], tmp_path: Path) -> None:
    """Regression: `happy/A/001.png` and `happy/B/001.png` (and `x.png` beside `x.jpg`) wrote one
    crop between them, listed under two subjects."""
    src = tmp_path / "src"
    sources = {"happy/A/001.png": "001_h", "happy/B/001.png": "002_h", "sad/x.png": "003_n", "sad/x.jpg": "004_n"}
    for rel, key in sources.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(src / rel), london_crops[key])
    code, out, _ = run_cli(
        preprocess_args("folder", src, tmp_path / "out", "--detector", "none", "--side", str(CROP_SIDE))
    )
    assert code == 0 and "4 of 4 frames usable" in out
    manifest = load_manifest(tmp_path / "out")
    assert manifest["image"].nunique() == 4 and manifest["clip_id"].nunique() == 4
    for row in manifest.itertuples():
        rel = Path(row.source).relative_to(src).as_posix()
        crop = cv2.imread(str(tmp_path / "out" / row.image), cv2.IMREAD_UNCHANGED)
        assert np.abs(crop.astype(int) - london_crops[sources[rel]]).mean() < 3, rel  # its own face (jpg: lossy)
    subjects = dict(zip(manifest["source"].map(lambda s: Path(s).relative_to(src).as_posix()), manifest["subject"]))
    assert subjects["happy/A/001.png"] == "A" and subjects["happy/B/001.png"] == "B"


# --- runs that yield nothing usable -----------------------------------------------------------------


def test_a_run_with_no_usable_crop_exits_non_zero_with_counts_and_cause(
    london_crops: dict[str, np.ndarray], tmp_path: Path
) -> None:
    """Regression: a folder of face crops the detector cannot find gave 0 crops and exit 0."""
    src = tmp_path / "src" / "happy"
    src.mkdir(parents=True)
    for key, crop in list(london_crops.items())[:5]:  # turned on their side: no frontal face for dlib
        cv2.imwrite(str(src / f"{key}.png"), cv2.rotate(crop, cv2.ROTATE_90_CLOCKWISE))
    done = subprocess.run(
        [sys.executable, "-m", "fer_utils", *preprocess_args("folder", src.parent, tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert (
        "no usable crop: all 5 images are no_face; they look like face crops already (48x48): try --detector none"
        in done.stderr
    )
    assert (tmp_path / "out" / MANIFEST_NAME).is_file()  # what was done is kept for inspection


def test_a_run_with_mostly_unusable_crops_warns_loudly(london_crops: dict[str, np.ndarray], tmp_path: Path) -> None:
    src = tmp_path / "src" / "happy"
    src.mkdir(parents=True)
    for k, (key, crop) in enumerate(list(london_crops.items())[:5]):
        cv2.imwrite(str(src / f"{key}.png"), crop if k < 2 else cv2.rotate(crop, cv2.ROTATE_90_CLOCKWISE))
    code, out, err = run_cli(preprocess_args("folder", src.parent, tmp_path / "out"))
    assert code == 0 and "2 of 5 frames usable (40 %): ok 2, no_face 3" in out
    assert err.startswith("WARNING: most frames are unusable") and "--detector none" in err


def test_a_large_image_whose_face_is_missed_says_where_detection_ran(tmp_path: Path) -> None:
    """Regression: a face in a large image was `no_face` with no word about the 400 px copy."""
    face = cv2.imread(str(london_faces_dir() / "neutral" / "001_03.jpg"))
    canvas = np.full((2400, 2400, 3), 255, np.uint8)
    canvas[50 : 50 + face.shape[0], 50 : 50 + face.shape[1]] = face
    (tmp_path / "src" / "neutral").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "src" / "neutral" / "big.png"), canvas)
    code, _, err = run_cli(preprocess_args("folder", tmp_path / "src", tmp_path / "out"))
    assert code == 2 and "all 1 images are no_face; detection ran on downscaled copies" in err
    reason = load_manifest(tmp_path / "out")["reason"].iloc[0]
    assert "searched a 400x400 copy of the 2400x2400 image" in reason and "--max-side full" in reason
    code, out, _ = run_cli(preprocess_args("folder", tmp_path / "src", tmp_path / "full", "--max-side", "full"))
    assert code == 0 and "1 of 1 frames usable" in out
