"""Issue 47's minor findings outside grading and export: each input built here, each a clear message or a
recorded status now (the FER-2013 pixel bound is in test_fer2013_csv.py, the crop side bound in
test_crop_spec.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from fer_utils.data.splits import split_note
from fer_utils.errors import DatasetError


def test_a_given_split_note_on_a_table_without_a_split_is_the_error_not_a_blank_count() -> None:
    """`train --protocol given` printed "the dataset's own split,  rows" before its error."""
    frames = pd.DataFrame({"clip_id": ["a", "b"], "emotion": ["happy", "sad"], "subject": ["1", "2"]})
    with pytest.raises(DatasetError, match="protocol 'given' takes the dataset's own split"):
        split_note(frames)
    with_split = frames.assign(split=["train", "test"])
    assert split_note(with_split).startswith("protocol given: the dataset's own split, train 1, test 1 rows")


@pytest.mark.slow
def test_ctrl_c_during_train_exits_130_with_a_message_and_no_half_run(tmp_path: Path) -> None:
    """Ctrl-C ended `train` in a KeyboardInterrupt traceback; now exit 130, one line, and no run folder (the
    run is written aside and renamed only when complete)."""
    from fer_utils.book import artifacts

    crops, out = artifacts.Dataset().crops(), tmp_path / "run"
    argv = [sys.executable, "-u", "-m", "fer_utils", "train", "--crops", str(crops), "--out", str(out)]
    argv += ["--size", "32", "--epochs", "200", "--protocol", "clip"]
    log = tmp_path / "log.txt"
    with log.open("w") as fh:
        process = subprocess.Popen(
            argv, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        deadline = time.monotonic() + 240
        while "Epoch 1/" not in log.read_text() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.5)
        assert "Epoch 1/" in log.read_text(), log.read_text()[-2000:]
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=120)
    text = log.read_text()
    assert code == 130, text[-2000:]
    assert "Traceback" not in text and "error: interrupted (Ctrl-C)" in text
    assert not out.exists(), "no half run in place"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run")], "its temporary folder is removed"


def test_half_a_jpeg_closed_with_its_end_marker_is_unreadable_not_a_grey_image(
    tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    """The byte check (an end marker after the last scan) passed it, and OpenCV decoded it grey below the cut."""
    from fer_utils.assets import london_faces_dir
    from fer_utils.data.images import JPEG_END_OF_IMAGE, JPEG_START_OF_SCAN, read_image
    from fer_utils.errors import UnreadableVideoError

    whole = london_faces_dir() / "neutral" / "001_03.jpg"
    data = whole.read_bytes()
    scan = data.rfind(JPEG_START_OF_SCAN)
    half = tmp_path / "half.jpg"
    half.write_bytes(data[: scan + (len(data) - scan) // 2] + JPEG_END_OF_IMAGE)
    with pytest.raises(UnreadableVideoError, match="the JPEG data is cut short"):
        read_image(half)
    assert read_image(whole).shape[:2] == (512, 512)
    print("still here", file=sys.stderr, flush=True)
    assert capfd.readouterr().err == "still here\n", "stderr is given back, the decoder's warning held"


@pytest.mark.parametrize("count", [1, 3])
def test_a_clip_models_answer_on_a_short_video_says_how_many_frames_it_read(
    stills: list[Path], tmp_path: Path, count: int
) -> None:
    """The CNN-LSTM's `predict` on a 1–3-frame video reported 6 frames (the model's N, repeated ones counted)."""
    import keras
    from test_deploy import write_clip

    from fer_utils.faces.crop_spec import CropSpec
    from fer_utils.models.networks import build_cnn_lstm
    from fer_utils.train.sequences import predict_clip

    keras.utils.set_random_seed(0)
    model = build_cnn_lstm(2, (6, 32, 32, 1))
    video = write_clip(tmp_path / "short.mp4", stills[0], count)
    [row] = predict_clip(model, ["neutral", "happy"], video, CropSpec(side=32)).to_dict("records")
    assert row["frames"] == count and 1 <= row["faces"] <= count


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
            code = main([*argv, "--detector", "none", "--size", str(size), "--workers", "1", "--quiet"])
        assert code == 0, err.getvalue()
        expected = "WARNING: 3 of 3 crops were cut from squares smaller than 48 px (median 32 px) and upsampled"
        assert (expected in err.getvalue()) is warned, err.getvalue()
