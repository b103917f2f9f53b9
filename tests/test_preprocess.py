"""Crop → grayscale → resize, and the dataset run: labels, manifest, resume after a kill, bad input."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from cli_runner import preprocess_args

from fer_utils.data.indexing import index_dataset
from fer_utils.data.manifest import MANIFEST_COLUMNS, csv_bytes, load_manifest, manifest_frame, read_manifest_csv
from fer_utils.errors import FerError, InputError
from fer_utils.faces.crops import Box, CropSpec, crop_face, largest_face_crop, make_detector, make_landmarker
from fer_utils.faces.preprocess import Settings, _row, part_bytes, preprocess_dataset, read_part_rows

# `sample_dir` (tests/conftest.py): 32 synthetic RAVDESS-named clips at 1280×720 from fer_utils.faces.sample.
N_SAMPLE_CLIPS = 32
FER_UTILS = (sys.executable, "-m", "fer_utils")  # the command line, in a subprocess


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file below `folder`: bytes and modification time."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def reference_run(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run over the sample, in this process."""
    out = tmp_path_factory.mktemp("reference")
    preprocess_dataset(index_dataset("ravdess", sample_dir).clips, out, workers=1, progress=False)
    return out


def cli_env() -> dict[str, str]:
    """The environment of a command-line subprocess: TensorFlow's C++ runtime quiet."""
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _cli(argv: list[str], prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """`python -m fer_utils argv` in a subprocess (after `prefix`), run to its end."""
    command = [*prefix, *FER_UTILS, *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=cli_env())


def started(argv: list[str], out: Path, finished: int = 2) -> subprocess.Popen:
    """`python -m fer_utils argv` running in a session of its own (as a terminal starts one), once `finished`
    clips are done in `out`; the test fails if it ended before."""
    run = subprocess.Popen(
        [*FER_UTILS, *argv],
        env=cli_env(),
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while len(list((out / ".parts").glob("*.csv"))) < finished and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert run.poll() is None, "the run ended before the test could stop it"
    return run


# --- crop_face / largest_face_crop on the real stills -------------------------------------------


def test_crops_have_the_requested_size_and_one_channel_for_any_input_format(stills: list[Path]) -> None:
    bgr = cv2.imread(str(stills[3]))
    box = make_detector("dlib-hog").detect(bgr)[0]
    variants = {
        "gray": cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY),
        "bgr": bgr,
        "bgra": cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA),
        "16-bit": bgr.astype(np.uint16) * 257,
    }
    reference = crop_face(bgr, box, side=180)
    for label, image in variants.items():
        for size in (48, 180):
            crop = crop_face(image, box, side=size)
            assert crop.shape == (size, size) and crop.dtype == np.uint8, label
        assert np.abs(crop_face(image, box).astype(int) - reference.astype(int)).max() <= 1, label


def test_margin_widens_the_crop_and_edges_are_padded(stills: list[Path]) -> None:
    image = cv2.imread(str(stills[0]))
    box = make_detector("dlib-hog").detect(image)[0]
    tight = crop_face(image, box, side=100, margin=0.0)
    wide = crop_face(image, box, side=100, margin=0.5)
    assert not np.array_equal(tight, wide)
    # a box touching the corner still gives a full square crop
    corner = crop_face(image, Box(0, 0, 60, 60), side=64, margin=0.3)
    assert corner.shape == (64, 64)


def test_largest_face_crop_on_every_still(stills: list[Path]) -> None:
    detector = make_detector("dlib-hog")
    for path in stills:
        found = largest_face_crop(cv2.imread(str(path)), detector, CropSpec(side=96))
        assert found is not None, path.name
        assert found.crop.shape == (96, 96) and found.n_faces == 1
    assert largest_face_crop(np.full((224, 398, 3), 200, np.uint8), detector) is None


def test_largest_face_crop_keeps_the_largest_and_counts_faces(stills: list[Path]) -> None:
    big = cv2.imread(str(stills[2]))
    small = cv2.resize(cv2.imread(str(stills[5])), None, fx=0.8, fy=0.8)
    canvas = np.full((big.shape[0], big.shape[1] + small.shape[1], 3), 255, np.uint8)
    canvas[:, : big.shape[1]] = big
    canvas[: small.shape[0], big.shape[1] :] = small
    found = largest_face_crop(canvas, make_detector("dlib-hog", max_side=None))
    assert found is not None and found.n_faces == 2
    assert found.box.x + found.box.w <= big.shape[1]


def test_aligned_crop_needs_a_landmarker_and_has_the_requested_size(stills: list[Path]) -> None:
    image = cv2.imread(str(stills[7]))
    detector = make_detector("dlib-hog")
    with pytest.raises(ValueError, match="landmarker"):
        largest_face_crop(image, detector, CropSpec(align=True))
    found = largest_face_crop(image, detector, CropSpec(side=64, align=True), make_landmarker())
    assert found is not None and found.crop.shape == (64, 64)


# --- the dataset run on the synthetic sample ----------------------------------------------------


def test_run_writes_crops_and_a_manifest_whose_labels_match_the_index(sample_dir: Path, reference_run: Path) -> None:
    clips = index_dataset("ravdess", sample_dir).clips
    manifest = load_manifest(reference_run)
    assert list(manifest.columns) == list(MANIFEST_COLUMNS)
    assert len(clips) == N_SAMPLE_CLIPS and len(manifest) == 6 * len(clips)
    assert set(manifest["status"]) == {"ok"}
    assert (manifest["detector"] == "dlib-hog").all() and (manifest["n_faces"] == 1).all()
    merged = manifest.merge(clips, on="clip_id", suffixes=("", "_index"))
    assert len(merged) == len(manifest)
    assert (merged["emotion"] == merged["emotion_index"]).all()
    assert (merged["subject"] == merged["subject_index"]).all()
    assert (merged["source"] == merged["path"]).all()
    for row in manifest.itertuples():
        assert row.image == f"{row.emotion}/{row.clip_id}_f{row.frame_index:04d}.png"
        crop = cv2.imread(str(reference_run / row.image), cv2.IMREAD_UNCHANGED)
        assert crop.shape == (180, 180) and crop.dtype == np.uint8
    # the crop folder is itself a folder-of-classes dataset with the same labels
    crops = index_dataset("folder", reference_run).clips
    assert sorted(zip(crops["clip_id"], crops["emotion"])) == sorted(zip(manifest["clip_id"], manifest["emotion"]))


def test_second_identical_run_changes_nothing(sample_dir: Path, reference_run: Path) -> None:
    before = _snapshot(reference_run)
    preprocess_dataset(index_dataset("ravdess", sample_dir).clips, reference_run, workers=1, progress=False)
    assert _snapshot(reference_run) == before


def test_other_settings_in_the_same_folder_are_refused(sample_dir: Path, reference_run: Path) -> None:
    clips = index_dataset("ravdess", sample_dir).clips
    with pytest.raises(InputError, match="other settings.*size"):
        preprocess_dataset(clips, reference_run, CropSpec(side=96), workers=1, progress=False)
    with pytest.raises(InputError, match="unknown detector"):
        preprocess_dataset(clips, reference_run, CropSpec(detector="mtcnn"), workers=1, progress=False)


@pytest.mark.slow
def test_resume_after_killing_the_run_ends_with_the_same_manifest(
    sample_dir: Path, reference_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "crops"
    argv = preprocess_args("ravdess", sample_dir, out, workers=2)
    run, parts = started(argv, out, finished=3), out / ".parts"
    workers = [
        int(p) for p in subprocess.run(["pgrep", "-P", str(run.pid)], capture_output=True, text=True).stdout.split()
    ]
    os.killpg(run.pid, signal.SIGKILL)  # the CLI, its manager and its worker processes, mid-run
    run.wait()
    assert run.returncode == -signal.SIGKILL and workers
    done_before = {p.name: p.stat().st_mtime_ns for p in parts.glob("*.csv")}
    assert 3 <= len(done_before) < N_SAMPLE_CLIPS
    assert not (out / "manifest.csv").exists()
    # every crop on disk is a complete PNG (written atomically)
    for crop in out.rglob("*.png"):
        assert cv2.imread(str(crop), cv2.IMREAD_UNCHANGED).shape == (180, 180)

    rerun = _cli(argv)
    assert rerun.returncode == 0, rerun.stderr
    assert (out / "manifest.csv").read_bytes() == (reference_run / "manifest.csv").read_bytes()
    # finished clips were not redone
    assert {p: (parts / p).stat().st_mtime_ns for p in done_before} == done_before
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]
    ref = _snapshot(reference_run)
    got = _snapshot(out)
    assert {k: v[0] for k, v in got.items()} == {k: v[0] for k, v in ref.items()}


# --- bad input ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_inputs(sample_dir: Path, stills: list[Path], tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """A clip table mixing a good clip with every kind of bad input."""
    folder = tmp_path_factory.mktemp("bad")
    good = sorted(sample_dir.rglob("*.mp4"))[0]
    data = good.read_bytes()
    files = {
        "good": good,
        "truncated": folder / "truncated.mp4",
        "zero": folder / "zero.mp4",
        "text": folder / "text.mp4",
        "noface": folder / "noface.mp4",
        "missing": folder / "missing.mp4",
        "broken_png": folder / "broken.png",
        "empty_png": folder / "empty.png",
    }
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["zero"].write_bytes(b"")
    files["text"].write_text("not a video\n")
    writer = cv2.VideoWriter(str(files["noface"]), cv2.VideoWriter_fourcc(*"mp4v"), 15, (320, 180))
    for i in range(10):
        writer.write(np.full((180, 320, 3), 40 + 10 * i, np.uint8))
    writer.release()
    files["broken_png"].write_bytes(stills[0].read_bytes()[:300])
    files["empty_png"].write_bytes(b"")
    bgr = cv2.imread(str(stills[1]))
    images = {
        "gray_png": cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY),
        "bgr_png": bgr,
        "bgra_png": cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA),
        "deep_png": bgr.astype(np.uint16) * 257,
        "deep_gray_png": cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257,
        "tiny_png": cv2.resize(bgr, (12, 8)),
    }
    for name, image in images.items():
        files[name] = folder / f"{name}.png"
        assert cv2.imwrite(str(files[name]), image)
    rows = [
        {"path": str(p), "dataset": "mixed", "emotion": "happy", "subject": "S1", "clip_id": name}
        for name, p in files.items()
    ]
    return pd.DataFrame(rows)


EXPECTED_STATUS = {
    "good": "ok",
    "truncated": "unreadable",
    "zero": "empty",
    "text": "not_video",
    "noface": "no_face",
    "missing": "missing",
    "broken_png": "unreadable",
    "empty_png": "empty",
    "tiny_png": "bad_image",
    "gray_png": "ok",
    "bgr_png": "ok",
    "bgra_png": "ok",
    "deep_png": "ok",
    "deep_gray_png": "ok",
}


def test_each_bad_input_gets_its_status_and_the_run_completes(bad_inputs: pd.DataFrame, tmp_path: Path) -> None:
    manifest = preprocess_dataset(bad_inputs, tmp_path, workers=1, progress=False)
    statuses = manifest.groupby("clip_id")["status"].agg(lambda s: sorted(set(s))).to_dict()
    assert statuses == {k: [v] for k, v in EXPECTED_STATUS.items()}
    by_clip = manifest.set_index("clip_id")
    assert "zero-byte" in by_clip.loc["zero", "reason"]
    assert "neither a video nor an image" in by_clip.loc["text", "reason"]
    assert "does not exist" in by_clip.loc["missing", "reason"]
    assert "could not be opened" in by_clip.loc["truncated", "reason"]
    assert "image data could not be decoded" in by_clip.loc["broken_png", "reason"]
    assert "too small to hold a face" in by_clip.loc["tiny_png", "reason"]
    noface = manifest[manifest["clip_id"] == "noface"]
    assert len(noface) == 6 and (noface["n_faces"] == 0).all() and (noface["image"] == "").all()
    assert noface["reason"].str.contains("no face found by dlib-hog").all()
    ok = manifest[manifest["status"] == "ok"]
    assert len(ok) == 6 + 5
    for image in ok["image"]:
        crop = cv2.imread(str(tmp_path / image), cv2.IMREAD_UNCHANGED)
        assert crop.shape == (180, 180) and crop.dtype == np.uint8
    # images from every bit depth and channel count give (nearly) the same crop
    crops = [
        cv2.imread(str(tmp_path / f"happy/{n}_f0000.png"), 0).astype(int)
        for n in ("gray_png", "bgr_png", "bgra_png", "deep_png", "deep_gray_png")
    ]
    assert all(np.abs(c - crops[1]).max() <= 1 for c in crops)
    # nothing failed loudly: each bad clip is one row, each clip has a completion record
    assert len(list((tmp_path / ".parts").glob("*.csv"))) == len(bad_inputs)


def test_cli_reports_a_missing_source_folder_as_a_clear_error(tmp_path: Path) -> None:
    result = _cli(preprocess_args("ravdess", tmp_path / "nowhere", tmp_path / "out"))
    assert result.returncode == 2
    assert "error:" in result.stderr and "does not exist" in result.stderr
    assert not (tmp_path / "out").exists()


def test_cli_runs_on_a_dataset_folder_with_bad_files(sample_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "ravdess"
    actor = src / "Actor_01"
    actor.mkdir(parents=True)
    for clip in sorted((sample_dir / "Actor_01").glob("*.mp4"))[:2]:
        shutil.copy(clip, actor / clip.name)
    (actor / "02-01-04-01-01-01-01.mp4").write_bytes(b"")  # zero-byte, well named
    (actor / "02-01-05-01-01-01-01.mp4").write_text("oops")  # not a video, well named
    out = tmp_path / "out"
    result = _cli(preprocess_args("ravdess", src, out, "--frames", "3", "--side", "64"))
    assert result.returncode == 0, result.stderr
    assert "empty 1" in result.stdout and "not_video 1" in result.stdout and "ok 6" in result.stdout
    manifest = load_manifest(out)
    assert len(manifest) == 8
    sad = manifest[manifest["clip_id"] == "02-01-04-01-01-01-01"]
    assert list(sad["emotion"]) == ["sad"] and list(sad["status"]) == ["empty"]


@pytest.mark.slow
def test_parallel_run_equals_the_serial_run(sample_dir: Path, reference_run: Path, tmp_path: Path) -> None:
    preprocess_dataset(index_dataset("ravdess", sample_dir).clips, tmp_path, workers=2, progress=False)
    assert (tmp_path / "manifest.csv").read_bytes() == (reference_run / "manifest.csv").read_bytes()


def test_aligned_every_kth_run_records_its_settings(sample_dir: Path, tmp_path: Path) -> None:
    clips = index_dataset("ravdess", sample_dir).clips.iloc[:2]
    manifest = preprocess_dataset(
        clips,
        tmp_path,
        CropSpec(margin=0.0, side=64, align=True),
        frames=None,
        every=5,
        workers=1,
        progress=False,
    )
    assert list(manifest["frame_index"]) == [0, 5, 10] * 2  # 15-frame clips
    assert set(manifest["status"]) == {"ok"}
    assert cv2.imread(str(tmp_path / manifest["image"].iloc[0]), cv2.IMREAD_UNCHANGED).shape == (64, 64)
    settings = (tmp_path / ".parts" / "settings.json").read_text()
    assert '"align": true' in settings and '"every": 5' in settings and '"max_side": 400' in settings


# --- the output folder: one source, one writer, no overlap ----------------------------


def _ravdess_copy(sample_dir: Path, root: Path, actor: int, n: int) -> Path:
    """`root/Actor_XX/` with the first `n` sample clips of that actor (real H.264 files)."""
    folder = root / f"Actor_{actor:02d}"
    folder.mkdir(parents=True)
    for clip in sorted((sample_dir / folder.name).glob("*.mp4"))[:n]:
        shutil.copy(clip, folder / clip.name)
    return root


def _still_folder(stills: list[Path], root: Path, n: int = 2) -> Path:
    """A folder-of-classes dataset `root/happy/Actor_XX.png` with `n` real stills."""
    (root / "happy").mkdir(parents=True)
    for still in stills[:n]:
        shutil.copy(still, root / "happy" / still.name)
    return root


def test_out_holding_another_sources_manifest_is_refused_unless_forced(sample_dir: Path, tmp_path: Path) -> None:
    first = _ravdess_copy(sample_dir, tmp_path / "first", 1, 2)
    second = _ravdess_copy(sample_dir, tmp_path / "second", 2, 1)
    out = tmp_path / "out"
    common = ("--frames", "2", "--side", "48")
    assert _cli(preprocess_args("ravdess", first, out, *common)).returncode == 0
    before = _snapshot(out)
    refused = _cli(preprocess_args("ravdess", second, out, *common))
    assert refused.returncode == 2 and "another source" in refused.stderr and str(first) in refused.stderr
    assert _snapshot(out) == before  # nothing touched
    forced = _cli(preprocess_args("ravdess", second, out, *common, "--force"))
    assert forced.returncode == 0, forced.stderr
    manifest = load_manifest(out)
    assert len(manifest) == 2 and manifest["source"].str.startswith(str(second)).all()
    # the first source's crops and records are gone, not silently mixed with the second's
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.png")) == sorted(manifest["image"])
    assert len(list((out / ".parts").glob("*.csv"))) == 1
    # a manifest whose records were deleted still says which source the folder holds
    shutil.rmtree(out / ".parts")
    before = _snapshot(out)
    refused = _cli(preprocess_args("ravdess", first, out, *common))
    assert refused.returncode == 2 and "another source" in refused.stderr and str(second) in refused.stderr
    assert _snapshot(out) == before


def test_out_equal_to_inside_or_around_src_is_refused(stills: list[Path], tmp_path: Path) -> None:
    src = _still_folder(stills, tmp_path / "data" / "faces")
    before = _snapshot(tmp_path)
    for out in (src, src / "crops", src.parent):
        result = _cli(preprocess_args("folder", src, out))
        assert result.returncode == 2 and "overlap" in result.stderr, (out, result.stderr)
    assert _snapshot(tmp_path) == before


@pytest.mark.slow
def test_a_concurrent_run_is_refused_naming_the_lock_holder_and_keeps_live_tmp_files(
    sample_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "crops"
    run = started(preprocess_args("ravdess", sample_dir, out, "--side", "96"), out)
    clips = index_dataset("ravdess", sample_dir).clips
    try:
        for size in (96, 48):  # same settings, and other settings: both refused, naming the writer
            with pytest.raises(FerError, match=f"another run.*pid {run.pid} host"):
                preprocess_dataset(clips, out, CropSpec(side=size), workers=1, progress=False)
        assert run.poll() is None, "the first run ended before the second could start"
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    # the killed run left its lock file; its temporary files may be deleted, a live process's may not
    assert (out / ".preprocess.lock").read_text().startswith(f"pid {run.pid} ")
    live = subprocess.Popen(["sleep", "60"])
    try:
        live_tmp = out / "happy" / f".x.png.tmp-{live.pid}"
        dead_tmp = out / "happy" / f".y.png.tmp-{run.pid}"
        for tmp in (live_tmp, dead_tmp):
            tmp.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(b"partial")
        manifest = preprocess_dataset(clips, out, CropSpec(side=96), workers=1, progress=False)
        assert live_tmp.exists() and not dead_tmp.exists()
    finally:
        live.kill()
        live.wait()
    assert not (out / ".preprocess.lock").exists()
    assert len(manifest) == 6 * N_SAMPLE_CLIPS and set(manifest["status"]) == {"ok"}
    assert {cv2.imread(str(p), cv2.IMREAD_UNCHANGED).shape for p in out.rglob("*.png")} == {(96, 96)}


def test_a_source_file_replaced_after_a_run_is_reprocessed_and_its_old_crops_removed(
    sample_dir: Path, tmp_path: Path
) -> None:
    src = _ravdess_copy(sample_dir, tmp_path / "src", 1, 2)
    first, second = sorted(src.rglob("*.mp4"))
    out = tmp_path / "out"

    def run() -> pd.DataFrame:
        return preprocess_dataset(
            index_dataset("ravdess", src).clips, out, CropSpec(side=64), frames=3, workers=1, progress=False
        )

    assert set(run()["status"]) == {"ok"}
    second_crops = {p.name: p.read_bytes() for p in out.rglob(f"{second.stem}_f*.png")}
    first.write_text("oops, overwritten by a text file")  # the source changes: size and mtime
    manifest = run()
    mine = manifest[manifest["clip_id"] == first.stem]
    assert list(mine["status"]) == ["not_video"]
    assert not list(out.rglob(f"{first.stem}_f*.png")), "the old crops of a replaced file were left behind"
    assert {p.name: p.read_bytes() for p in out.rglob(f"{second.stem}_f*.png")} == second_crops
    shutil.copy(second, first)  # repaired, with the other clip's frames
    manifest = run()
    mine = manifest[manifest["clip_id"] == first.stem]
    assert list(mine["status"]) == ["ok"] * 3
    repaired = sorted(out.rglob(f"{first.stem}_f*.png"))
    assert [p.read_bytes() for p in repaired] == [
        second_crops[p.name.replace(first.stem, second.stem)] for p in repaired
    ]


def test_unreadable_files_and_bad_names_get_statuses_with_two_workers(stills: list[Path], tmp_path: Path) -> None:
    src = _still_folder(stills, tmp_path / "src", n=2)
    locked = src / "happy" / "locked.png"
    shutil.copy(stills[2], locked)
    locked.chmod(0)
    shutil.copy(stills[3], src / "happy" / os.fsdecode(b"caf\xe9.png"))  # Latin-1 name: not UTF-8
    # root reads any file: drop the capabilities that let it, so the permission error is real
    prefix = (
        ("setpriv", "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search")
        if os.geteuid() == 0
        else ()
    )
    out = tmp_path / "out"
    result = _cli(preprocess_args("folder", src, out, workers=2), prefix=prefix)
    assert result.returncode == 0, result.stderr
    manifest = load_manifest(out).set_index("clip_id")
    assert manifest.loc["locked", "status"] == "unreadable"
    assert "locked.png" in manifest.loc["locked", "reason"] and "ermission denied" in manifest.loc["locked", "reason"]
    bad = manifest[manifest["status"] == "bad_name"]
    assert len(bad) == 1 and "caf\\xe9.png" in bad["reason"].iloc[0] and "UTF-8" in bad["reason"].iloc[0]
    assert (manifest.loc[[s.stem for s in stills[:2]], "status"] == "ok").all()
    assert "unreadable 1" in result.stdout and "bad_name 1" in result.stdout


def test_all_frames_and_a_number_of_frames_conflict(stills: list[Path], tmp_path: Path) -> None:
    src = _still_folder(stills, tmp_path / "src", n=1)
    result = _cli(preprocess_args("folder", src, tmp_path / "out", "--all-frames", "--frames", "3"))
    assert result.returncode == 2
    assert "--all-frames (every frame) and --frames 3 (that many per clip) conflict" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_a_long_file_name_is_cropped_under_a_shortened_name_and_stops_nothing(
    stills: list[Path], tmp_path: Path
) -> None:
    src = _still_folder(stills, tmp_path / "src", n=2)
    long = src / "happy" / ("x" * 240 + ".png")  # 244 characters: a valid name, too long to add a suffix to
    shutil.copy(stills[2], long)
    out = tmp_path / "out"
    result = _cli(preprocess_args("folder", src, out, "--side", "48"))
    assert result.returncode == 0, result.stderr
    manifest = load_manifest(out)
    assert set(manifest["status"]) == {"ok"} and len(manifest) == 3
    row = manifest[manifest["source"] == str(long)]
    assert len(row) == 1, "the manifest names the source file itself"
    crop = out / row["image"].iloc[0]
    assert crop.is_file() and len(crop.name) <= 200 and crop.name.startswith("x" * 50)
    again = _cli(preprocess_args("folder", src, out, "--side", "48"))
    assert again.returncode == 0 and load_manifest(out)["image"].tolist() == manifest["image"].tolist()


def test_completion_records_are_written_as_pandas_writes_them_and_read_back(tmp_path: Path) -> None:
    clip = {"path": '/data/a,b "c".mp4', "dataset": "ravdess", "emotion": "calm", "subject": "01", "clip_id": "x"}
    rows = [
        _row(
            clip,
            Settings(),
            frame_index=3,
            x=1,
            y=2,
            w=30,
            h=31,
            n_faces=2,
            status="ok",
            reason="2 faces, kept the largest",
            image="calm/x_f0003.png",
        ),
        _row(clip, Settings(), frame_index=5, n_faces=0, status="no_face", reason="two\nlines"),
        _row(clip, Settings(), status="unreadable", reason=""),
    ]
    data = part_bytes(rows)
    assert data == csv_bytes(manifest_frame(rows))  # the csv module, byte for byte what pandas writes
    (tmp_path / "part.csv").write_bytes(data)
    assert read_part_rows(tmp_path / "part.csv") == rows
    (tmp_path / "cut.csv").write_bytes(data[:-4])  # a record cut inside a row is not one
    assert read_part_rows(tmp_path / "cut.csv") is None


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_stopping_the_run_stops_its_workers_and_keeps_finished_clips(
    sample_dir: Path, tmp_path: Path, stop: signal.Signals
) -> None:
    from fer_utils.storage.locking import process_alive

    out = tmp_path / "crops"
    argv = preprocess_args("ravdess", sample_dir, out, "--detector", "dlib-cnn", workers=2)
    # dlib's CNN detector: each clip takes long enough that a run which ignored the stop would visibly go
    # on to the end of the 32 clips, even on a fast machine (with HOG it could finish within the wait).
    run, parts = started(argv, out), out / ".parts"
    children = [
        int(p) for p in subprocess.run(["pgrep", "-P", str(run.pid)], capture_output=True, text=True).stdout.split()
    ]
    assert len(children) >= 2
    stopped_at = time.monotonic()
    os.kill(run.pid, stop)  # the run only, as `kill` does: its workers must follow
    _, err = run.communicate(timeout=30)
    took = time.monotonic() - stopped_at
    while any(process_alive(pid) for pid in children) and time.monotonic() < stopped_at + 15:
        time.sleep(0.1)
    try:
        assert not [pid for pid in children if process_alive(pid)], "a worker outlived its run"
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    done = list(parts.glob("*.csv"))
    assert 2 <= len(done) < N_SAMPLE_CLIPS, "the workers did not go on to the end of the dataset"
    if stop != signal.SIGKILL:
        assert took < 10, f"{stop.name} took {took:.1f} s"
        assert run.returncode == 128 + stop and "rerun the same command to resume" in err and "Traceback" not in err
        # a partial manifest lists what was finished (an interrupted run wrote none);
        # manifest.csv stays absent, so the folder never looks complete (the cache relies on it)
        finished = read_manifest_csv(out / "manifest.partial.csv")
        assert 2 <= finished["clip_id"].nunique() <= len(list(parts.glob("*.csv"))), err
        assert f"{out / 'manifest.partial.csv'} lists the clips finished so far (of {N_SAMPLE_CLIPS})" in err
        assert not (out / "manifest.csv").exists()


# Runs the preprocess command with Ctrl-C delivered while `concurrent.futures.wait` holds a future's lock
# (the fourth time the run's watch loop takes those locks): the moment a real Ctrl-C or SIGTERM can hit.
LOCK_HELD_INTERRUPT = """
import signal, sys, threading
from concurrent.futures import _base

original = _base._AcquireFutures.__enter__
calls = []


def enter(self):
    calls.append(1)
    if len(calls) != 4 or threading.current_thread() is not threading.main_thread():
        return original(self)
    futures = list(self.futures)
    futures[0]._condition.acquire()
    print("SIGINT with a future's lock held", file=sys.stderr, flush=True)
    signal.raise_signal(signal.SIGINT)  # Python's handler runs here; an exception leaves the lock held
    for future in futures[1:]:
        future._condition.acquire()


if __name__ == "__main__":
    _base._AcquireFutures.__enter__ = enter
    from fer_utils.cli import main

    sys.exit(main(["preprocess", *sys.argv[1:]]))
"""


def test_an_interrupt_while_the_pool_holds_a_lock_still_stops_the_run(sample_dir: Path, tmp_path: Path) -> None:
    """CI once saw a run ignore SIGINT for 30 s: raised by Python's handler, the KeyboardInterrupt landed inside
    `concurrent.futures.wait` with a future's lock held, the pool's manager thread blocked on it and the process
    hung at exit. The run now records the signal and stops between waits (`interrupts.stop_on_signals`)."""
    script = tmp_path / "interrupt_with_lock_held.py"
    script.write_text(LOCK_HELD_INTERRUPT)
    out = tmp_path / "crops"
    run = subprocess.Popen(
        [sys.executable, str(script), "--dataset", "ravdess", "--src", str(sample_dir), "--out", str(out)]
        + ["--detector", "dlib-cnn", "--workers", "2", "--quiet"],
        env=cli_env(),
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, err = run.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)  # a hung run and its workers
    assert "SIGINT with a future's lock held" in err, err[-2000:]
    assert run.returncode == 130 and "rerun the same command to resume" in err and "Traceback" not in err, err
    assert len(read_manifest_csv(out / "manifest.partial.csv")["clip_id"].unique()) < N_SAMPLE_CLIPS


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_to_the_whole_process_group_stops_the_run_and_keeps_its_partial_manifest(
    sample_dir: Path, tmp_path: Path, stop: signal.Signals
) -> None:
    """A terminal's Ctrl-C reaches the run and its workers at once (the process group). The workers
    died of it, the pool broke, and the run exited 2 with `BrokenProcessPool` and no partial manifest in 6 of
    7 tries. Workers now ignore Ctrl-C (the run stops them) and a worker ended by the run's own signal is a
    stop, not a failure."""
    out = tmp_path / "crops"
    argv = preprocess_args("ravdess", sample_dir, out, "--detector", "dlib-cnn", workers=2)
    run = started(argv, out)  # its own process group, as a terminal gives a command
    try:
        os.killpg(run.pid, stop)  # what Ctrl-C in a terminal does: the run and every worker
        _, err = run.communicate(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 128 + stop, err[-2000:]
    assert "rerun the same command to resume" in err and "Traceback" not in err and "BrokenProcessPool" not in err
    finished = read_manifest_csv(out / "manifest.partial.csv")
    assert 2 <= finished["clip_id"].nunique() < N_SAMPLE_CLIPS and not (out / "manifest.csv").exists()


def test_a_crop_spec_larger_than_its_images_warns_that_they_are_upsampled(stills: list[Path], tmp_path: Path) -> None:
    """A 48 px spec over 32 px images upsampled every crop without a word."""
    import contextlib
    import io

    import cv2

    from fer_utils.cli import main

    src = tmp_path / "src" / "neutral"
    src.mkdir(parents=True)
    for i, still in enumerate(stills[:3]):
        cv2.imwrite(str(src / f"{i:03d}_face.png"), cv2.resize(cv2.imread(str(still)), (32, 32)))
    for size, warned in ((48, True), (32, False)):
        argv = ["preprocess", "--dataset", "folder", "--src", str(src.parent), "--out", str(tmp_path / f"c{size}")]
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main([*argv, "--detector", "none", "--side", str(size), "--workers", "1", "--quiet"])
        assert code == 0, err.getvalue()
        expected = "WARNING: 3 of 3 crops were cut from squares smaller than 48 px (median 32 px) and upsampled"
        assert (expected in err.getvalue()) is warned, err.getvalue()
