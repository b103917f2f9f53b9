"""Frame sampling from real clips written from the stills (mp4 and avi), stills, GIFs and bad files."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fer_utils.data.media import (
    frame_count,
    frame_indices,
    frame_rate,
    read_image,
    sample_frames,
    sniff,
    try_sample_frames,
)
from fer_utils.errors import MediaError

N_FRAMES = 40
SIZE = (320, 180)  # (width, height)
MARK = 24  # side of the two top-left squares whose grey levels encode the frame number (base 8)


def _frame(still: np.ndarray, index: int) -> np.ndarray:
    """A still resized, with its frame number written in base 8 as grey levels (steps of 32) of two squares."""
    frame = cv2.resize(still, SIZE, interpolation=cv2.INTER_AREA)
    frame[:MARK, :MARK] = (index // 8) * 32
    frame[:MARK, MARK : 2 * MARK] = (index % 8) * 32
    return frame


def _mark(frame: np.ndarray) -> int:
    """The frame number encoded by `_frame` (robust to lossy compression)."""
    high = round(float(frame[4 : MARK - 4, 4 : MARK - 4].mean()) / 32)
    low = round(float(frame[4 : MARK - 4, MARK + 4 : 2 * MARK - 4].mean()) / 32)
    return int(high * 8 + low)


def _write_clip(path: Path, fourcc: str, stills: list[Path]) -> Path:
    images = [cv2.imread(str(p)) for p in stills[:4]]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25, SIZE)
    assert writer.isOpened()
    for i in range(N_FRAMES):
        writer.write(_frame(images[i % 4], i))
    writer.release()
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, stills: list[Path]) -> dict[str, Path]:
    """An mp4 (mp4v) and an avi (MJPG, as SAVEE) of 40 numbered frames, a GIF, and broken files."""
    folder = tmp_path_factory.mktemp("clips")
    made = {
        "mp4": _write_clip(folder / "clip.mp4", "mp4v", stills),
        "avi": _write_clip(folder / "clip.avi", "MJPG", stills),
    }
    frames = [
        Image.fromarray(cv2.cvtColor(_frame(cv2.imread(str(p)), i), cv2.COLOR_BGR2RGB))
        for i, p in enumerate(stills[:5])
    ]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    made["gif"] = folder / "anim.gif"
    for kind in ("mp4", "avi"):
        data = made[kind].read_bytes()
        made[f"truncated-{kind}"] = folder / f"truncated.{kind}"
        made[f"truncated-{kind}"].write_bytes(data[: len(data) // 2])
    made["zero"] = folder / "zero.mp4"
    made["zero"].write_bytes(b"")
    made["text"] = folder / "notes.mp4"
    made["text"].write_text("this is not a video\n")
    made["garbage"] = folder / "garbage.avi"
    made["garbage"].write_bytes(b"RIFF\x00\x10\x00\x00AVI LIST" + bytes(range(256)) * 20)
    return made


@pytest.mark.parametrize("kind", ["mp4", "avi"])
def test_evenly_spaced_frames_by_seeking_are_the_right_frames(clips: dict[str, Path], kind: str) -> None:
    assert frame_count(clips[kind]) == N_FRAMES
    assert frame_count(clips[kind], exact=True) == N_FRAMES
    sampled = sample_frames(clips[kind], 6)
    assert [i for i, _ in sampled] == frame_indices(N_FRAMES, 6) == [3, 10, 16, 23, 30, 36]
    for index, frame in sampled:
        assert frame.shape == (SIZE[1], SIZE[0], 3)
        assert _mark(frame) == index
    sequential = sample_frames(clips[kind], 6, seek=False)
    for (i, a), (j, b) in zip(sampled, sequential):
        assert i == j and np.array_equal(a, b)


@pytest.mark.parametrize("kind", ["mp4", "avi"])
def test_every_kth_and_all_frames(clips: dict[str, Path], kind: str) -> None:
    every = sample_frames(clips[kind], None, every=7)
    assert [i for i, _ in every] == [0, 7, 14, 21, 28, 35]
    assert all(_mark(f) == i for i, f in every)
    assert [i for i, _ in sample_frames(clips[kind], 2, every=7)] == [0, 7]
    everything = sample_frames(clips[kind], None)
    assert [i for i, _ in everything] == list(range(N_FRAMES))
    assert all(_mark(f) == i for i, f in everything)


def test_frame_indices() -> None:
    assert frame_indices(15, 6) == [1, 3, 6, 8, 11, 13]
    assert frame_indices(4, 6) == [0, 1, 2, 3]
    assert frame_indices(10, None, every=3) == [0, 3, 6, 9]
    assert frame_indices(0, 6) == []
    with pytest.raises(ValueError):
        frame_indices(10, 0)
    with pytest.raises(ValueError):
        frame_indices(10, None, every=0)


def test_animated_gif_and_still_images(clips: dict[str, Path], stills: list[Path]) -> None:
    assert sniff(clips["gif"]) == "gif"
    frames = sample_frames(clips["gif"], None)
    assert [i for i, _ in frames] == [0, 1, 2, 3, 4]
    assert [_mark(f) for _, f in frames] == [0, 1, 2, 3, 4]
    still = sample_frames(stills[0], 6)
    assert len(still) == 1 and still[0][0] == 0 and still[0][1].shape == (224, 398, 3)
    assert frame_count(stills[0]) == 1


def test_frame_rate_is_the_containers_and_a_still_has_none(clips: dict[str, Path], stills: list[Path]) -> None:
    assert frame_rate(clips["mp4"]) == pytest.approx(25) and frame_rate(clips["avi"]) == pytest.approx(25)
    assert frame_rate(clips["gif"]) == pytest.approx(10)  # 100 ms a frame
    assert frame_rate(stills[0]) is None
    with pytest.raises(MediaError, match="neither a video nor an image"):
        frame_rate(clips["text"])


def test_truncated_mp4_is_unreadable(clips: dict[str, Path]) -> None:
    with pytest.raises(MediaError, match="could not be opened") as info:
        sample_frames(clips["truncated-mp4"])
    assert info.value.status == "unreadable"


def test_truncated_avi_is_sampled_over_the_frames_it_holds(clips: dict[str, Path]) -> None:
    """Cut in half, the avi's header still claims 40 frames: the 6 samples spread over the frames it holds."""
    clip = clips["truncated-avi"]
    held = frame_count(clip, exact=True)
    assert 0 < held < frame_count(clip) == N_FRAMES
    sampled = try_sample_frames(clip, 6)
    assert [i for i, _ in sampled] == frame_indices(held, 6)
    assert all(f is not None and _mark(f) == i for i, f in sampled)


def _claim_frames(avi: Path, claimed: int, out: Path) -> Path:
    """A copy of an avi whose header (avih total frames, strh length) claims `claimed` frames."""
    data = bytearray(avi.read_bytes())
    struct.pack_into("<I", data, data.index(b"avih") + 8 + 16, claimed)
    struct.pack_into("<I", data, data.index(b"strh") + 8 + 32, claimed)
    out.write_bytes(bytes(data))
    return out


def test_a_clip_whose_header_claims_more_frames_yields_the_frames_asked_for(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    """Regression: a header claiming 400 of 40 frames gave 1 frame of 8 asked for."""
    clip = _claim_frames(clips["avi"], 10 * N_FRAMES, tmp_path / "claims.avi")
    assert frame_count(clip) == 10 * N_FRAMES and frame_count(clip, exact=True) == N_FRAMES
    sampled = sample_frames(clip, 8)
    assert [i for i, _ in sampled] == frame_indices(N_FRAMES, 8)
    assert all(_mark(f) == i for i, f in sampled)


def _flv_without_video(flv: Path, out: Path, *, announce_video: bool) -> Path:
    """A copy of a real FLV (audio and video tags) keeping only its audio and script tags; its header
    announces audio only, or audio and video (a recording whose video holds no frame)."""
    data = flv.read_bytes()
    kept = bytearray(data[:4] + bytes([5 if announce_video else 4]) + data[5:13])
    position = 13
    while position + 11 <= len(data):
        end = position + 11 + int.from_bytes(data[position + 1 : position + 4], "big") + 4
        if data[position] != 9:  # 9: a video tag
            kept += data[position:end]
        position = end
    out.write_bytes(bytes(kept))
    return out


def test_audio_only_and_zero_frame_files_say_so(tmp_path: Path) -> None:
    """Regression: both were "the video container could not be opened"."""
    from fer_utils.assets import cremad_dir

    real = cremad_dir() / "1001_DFA_HAP_XX.flv"
    audio = _flv_without_video(real, tmp_path / "audio.flv", announce_video=False)
    with pytest.raises(MediaError, match="audio only .the file holds an audio track and no video track") as info:
        sample_frames(audio)
    assert info.value.status == "not_video"
    from fer_utils.deploy.inference import stream_frames  # predict's reader says the same

    with pytest.raises(MediaError, match="audio only"):
        list(stream_frames(audio))
    silent = _flv_without_video(real, tmp_path / "novideo.flv", announce_video=True)
    writer = cv2.VideoWriter(str(tmp_path / "zero.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25, SIZE)
    writer.release()  # OpenCV writes a complete mp4 with no frame
    for empty in (silent, tmp_path / "zero.mp4"):
        with pytest.raises(MediaError, match="holds no video frames") as info:
            frame_count(empty)
        assert info.value.status == "empty", empty


def test_opencv_and_ffmpeg_messages_stay_off_the_terminal(clips: dict[str, Path], tmp_path: Path) -> None:
    """Regression: damaged clips printed FFmpeg's "overread" and OpenCV's "[ WARN:0]"
    lines on stderr for every file, beside the status the manifest records."""
    code = (
        "import sys; from fer_utils.data.media import try_sample_frames\n"
        "for path in sys.argv[1:]:\n"
        "    try: try_sample_frames(path, 6)\n"
        "    except Exception as exc: print(f'{type(exc).__name__}:{exc.status}')\n"
    )
    damaged = [str(clips[k]) for k in ("truncated-avi", "garbage", "truncated-mp4")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_")}
    done = subprocess.run([sys.executable, "-c", code, *damaged], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and done.stdout.split() == ["MediaError:unreadable"] * 2
    assert done.stderr == ""


@pytest.mark.parametrize(
    ("kind", "status", "message"),
    [
        ("zero", "empty", "zero-byte"),
        ("text", "not_video", "neither a video nor an image"),
        ("garbage", "unreadable", "could not be opened"),
    ],
)
def test_bad_files_raise_specific_errors(clips: dict[str, Path], kind: str, status: str, message: str) -> None:
    with pytest.raises(MediaError, match=message) as info:
        sample_frames(clips[kind])
    assert info.value.status == status
    with pytest.raises(MediaError) as info:
        frame_count(clips[kind])
    assert info.value.status == status


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="does not exist") as info:
        sample_frames(tmp_path / "nope.mp4")
    assert info.value.status == "missing"
    with pytest.raises(MediaError, match="not a file") as info:
        sample_frames(tmp_path)
    assert info.value.status == "not_video"


def test_corrupted_image_is_unreadable(tmp_path: Path, stills: list[Path]) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(stills[0].read_bytes()[:200])
    with pytest.raises(MediaError, match="image data could not be decoded"):
        read_image(broken)
    with pytest.raises(MediaError):
        sample_frames(broken)


# --- real clips in the containers real datasets ship --------------------------------


def test_flv_clips_are_videos_and_seek_gives_the_sequential_frames() -> None:
    """CREMA-D ships Flash video: it must sniff as video and sample the same frames by seek and by decoding."""
    from fer_utils.assets import cremad_dir

    clip = cremad_dir() / "1001_DFA_ANG_XX.flv"
    assert clip.read_bytes()[:3] == b"FLV" and sniff(clip) == "video"
    count = frame_count(clip)
    assert count == frame_count(clip, exact=True) == 67
    seeking = sample_frames(clip, 6)
    decoding = sample_frames(clip, 6, seek=False)
    assert [i for i, _ in seeking] == frame_indices(count, 6) == [i for i, _ in decoding]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(seeking, decoding))
    assert seeking[0][1].shape == (360, 480, 3)


def test_media_size_of_images_videos_and_bad_files(clips: dict[str, Path], stills: list[Path]) -> None:
    from fer_utils.data.media import media_size

    assert media_size(clips["mp4"]) == SIZE and media_size(clips["avi"]) == SIZE
    assert media_size(stills[0]) == (398, 224)
    assert media_size(clips["zero"]) is None and media_size(clips["text"]) is None
