"""The CREMA-D download against a real HTTP server on 127.0.0.1 serving the six real clips the package ships,
laid out like CREMA-D's Git LFS media endpoint: fetch and verify, resume, reject a corrupted file, preprocess."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from http_site import Site, lfs_pointer, over_quota

from fer_utils.assets import cremad_dir, cremad_index_dir
from fer_utils.data.download import (
    BESIDE_CLIPS,
    CREMAD_COMMIT,
    CREMAD_MEDIA_URL,
    CREMAD_MIRROR_URL,
    CREMAD_RELEASES_URL,
    REPORT_FILE,
    cremad_index,
    describe_selection,
    download_cremad,
    download_dataset,
    select_clips,
)
from fer_utils.data.indexing import index_dataset
from fer_utils.errors import DownloadError, InputError

CLIPS = sorted(cremad_dir().glob("*.flv"))
MEDIA_PATH = f"/media/CheyneyComputerScience/CREMA-D/{CREMAD_COMMIT}"
DOWNLOAD = (sys.executable, "-m", "fer_utils", "download", "cremad")


def serve_clips(site: Site, clips: list[Path] = CLIPS) -> str:
    """Serve the real clips at their LFS media paths; return the base URL to download from."""
    for clip in clips:
        site.files[f"{MEDIA_PATH}/VideoFlash/{clip.name}"] = clip.read_bytes()
    return f"{site.url}{MEDIA_PATH}/"


def clip_requests(site: Site) -> list[tuple[str, str | None]]:
    """The requests the server saw for clips: (file name, Range header)."""
    return [(path.rsplit("/", 1)[1], rng) for path, rng in site.ranges if path.endswith(".flv")]


def test_the_shipped_index_matches_the_shipped_clips_and_sizes_selections() -> None:
    index = cremad_index()
    assert len(index) == 7442 and index["actor"].nunique() == 91 and index["size"].sum() == 2_443_021_141
    rows = index.set_index("file")
    for clip in CLIPS:
        data = clip.read_bytes()
        assert rows.loc[clip.name, "size"] == len(data)
        assert rows.loc[clip.name, "sha256"] == hashlib.sha256(data).hexdigest()
    assert describe_selection(index) == "7,442 CREMA-D clip(s) of 91 actor(s), 2.44 GB"
    assert describe_selection(select_clips(index, sentences=["dfa"])) == "546 CREMA-D clip(s) of 91 actor(s), 160.8 MB"
    assert describe_selection(select_clips(index, actors=[1001])) == "82 CREMA-D clip(s) of 1 actor(s), 23.7 MB"
    assert CREMAD_MEDIA_URL.startswith("https://media.githubusercontent.com/media/CheyneyComputerScience/CREMA-D/")
    assert CREMAD_COMMIT in (cremad_index_dir() / "README.md").read_text()


def test_unknown_codes_list_the_valid_ones(tmp_path: Path) -> None:
    index = cremad_index()
    with pytest.raises(InputError, match=r"unknown CREMA-D actor code\(s\) 1092, 7; valid: 1001..1091"):
        select_clips(index, actors=[1092, 7])
    with pytest.raises(InputError, match="emotion code.*JOY; valid: ANG, DIS, FEA, HAP, NEU, SAD"):
        select_clips(index, emotions=["ANG", "joy"])
    with pytest.raises(InputError, match="sentence code.*XYZ; valid: IEO, TIE"):
        select_clips(index, sentences=["XYZ"])
    done = subprocess.run(
        [*DOWNLOAD, "--dest", str(tmp_path / "unused"), "--emotions", "ANG,JOY"], capture_output=True, text=True
    )
    assert done.returncode == 2 and "error: unknown CREMA-D emotion code(s) JOY; valid: ANG" in done.stderr
    assert not (tmp_path / "unused").exists()


def test_download_fetches_verifies_and_skips_what_it_has(site: Site, tmp_path: Path) -> None:
    base = serve_clips(site)
    report = download_cremad(tmp_path, actors=[1001], sentences=["DFA"], base_url=base, workers=3, progress=False)
    assert list(report["status"]) == ["ok"] * 6 and list(report["file"]) == [c.name for c in CLIPS]
    for clip in CLIPS:
        assert (tmp_path / "VideoFlash" / clip.name).read_bytes() == clip.read_bytes()
    assert not list(tmp_path.rglob("*.part")) and not list(tmp_path.rglob("*.corrupt"))
    assert all((tmp_path / name).read_bytes() == (cremad_index_dir() / name).read_bytes() for name in BESIDE_CLIPS)
    assert pd.read_csv(tmp_path / REPORT_FILE).equals(report)
    seen = len(site.ranges)
    again = download_cremad(tmp_path, actors=[1001], sentences=["DFA"], base_url=base, progress=False)
    assert set(again["status"]) == {"skipped"} and len(site.ranges) == seen  # verified on disk, nothing fetched


def test_an_interrupted_clip_resumes_with_a_range_request(site: Site, tmp_path: Path) -> None:
    base = serve_clips(site)
    clip = cremad_dir() / "1001_DFA_HAP_XX.flv"
    part = tmp_path / "VideoFlash" / f"{clip.name}.part"
    part.parent.mkdir(parents=True)
    kept = 100_000
    part.write_bytes(clip.read_bytes()[:kept])  # what an interrupted run left
    report = download_cremad(
        tmp_path, actors=[1001], sentences=["DFA"], emotions=["HAP", "SAD"], base_url=base, progress=False
    )
    assert list(report["status"]) == ["ok", "ok"]
    assert sorted(clip_requests(site)) == [(clip.name, f"bytes={kept}-"), ("1001_DFA_SAD_XX.flv", None)]
    assert (tmp_path / "VideoFlash" / clip.name).read_bytes() == clip.read_bytes() and not part.exists()


def test_a_server_that_drops_the_connection_leaves_a_part_that_the_next_run_completes(
    site: Site, tmp_path: Path
) -> None:
    base = serve_clips(site, CLIPS[:1])
    path = f"{MEDIA_PATH}/VideoFlash/{CLIPS[0].name}"
    site.truncate.add(path)
    report = download_cremad(
        tmp_path, actors=[1001], sentences=["DFA"], emotions=["ANG"], base_url=base, progress=False
    )
    assert list(report["status"]) == ["failed"] and "run again to resume" in report["reason"][0]
    part = tmp_path / "VideoFlash" / f"{CLIPS[0].name}.part"
    kept = part.stat().st_size
    assert 0 < kept < CLIPS[0].stat().st_size and not (tmp_path / "VideoFlash" / CLIPS[0].name).exists()
    site.truncate.clear()
    report = download_cremad(
        tmp_path, actors=[1001], sentences=["DFA"], emotions=["ANG"], base_url=base, progress=False
    )
    assert list(report["status"]) == ["ok"] and site.ranges[-1] == (path, f"bytes={kept}-")


def test_a_corrupted_clip_is_rejected_and_reported(site: Site, tmp_path: Path) -> None:
    base = serve_clips(site)
    bad = "1001_DFA_FEA_XX.flv"
    real = (cremad_dir() / bad).read_bytes()
    site.files[f"{MEDIA_PATH}/VideoFlash/{bad}"] = real[:5000] + bytes(len(real) - 5000)  # same size, wrong bytes
    done = subprocess.run(
        [*DOWNLOAD, "--dest", str(tmp_path), "--actors", "1001", "--emotions", "fea,HAP", "--sentences", "DFA"]
        + ["--base-url", base, "--workers", "2", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"selected 2 CREMA-D clip(s) of 1 actor(s), 0.5 MB, from {base} into {tmp_path / 'VideoFlash'}"
    assert lines[1].startswith("1 ok, 0 skipped, 1 failed")
    assert lines[2].startswith(f"  failed {bad}: sha256 mismatch for {bad}.part")
    report = pd.read_csv(tmp_path / REPORT_FILE).set_index("file")
    assert report.loc[bad, "status"] == "failed" and "sha256 mismatch" in report.loc[bad, "reason"]
    assert report.loc["1001_DFA_HAP_XX.flv", "status"] == "ok"
    assert not (tmp_path / "VideoFlash" / bad).exists()  # never under its final name
    assert (tmp_path / "VideoFlash" / f"{bad}.part.corrupt").stat().st_size == len(real)
    with pytest.raises(DownloadError, match=f"(?s)1 CREMA-D clip\\(s\\) failed.*{bad}: sha256 mismatch"):
        download_dataset(
            "cremad", tmp_path, actors=[1001], sentences=["DFA"], emotions=["FEA"], base_url=base, progress=False
        )


def test_a_wrong_sized_file_is_rejected_by_its_size(site: Site, tmp_path: Path) -> None:
    base = serve_clips(site, CLIPS[:1])
    site.files[f"{MEDIA_PATH}/VideoFlash/{CLIPS[0].name}"] += b"extra"
    report = download_cremad(
        tmp_path, emotions=["ANG"], actors=[1001], sentences=["DFA"], base_url=base, progress=False
    )
    size = CLIPS[0].stat().st_size  # refused from its Content-Length, before a byte is written
    assert (
        report["status"][0] == "failed"
        and f"sent a Content-Length of {size + 5:,} bytes, more than the expected {size:,}" in report["reason"][0]
    )
    assert not list(tmp_path.rglob("*.part"))


def test_the_download_indexes_and_preprocesses_as_cremad(site: Site, tmp_path: Path) -> None:
    base = serve_clips(site)
    dest = tmp_path / "cremad"
    paths = download_dataset(
        "cremad", dest, actors=[1001], sentences=["DFA"], emotions=["HAP"], base_url=base, progress=False
    )
    assert paths == [dest / "VideoFlash" / "1001_DFA_HAP_XX.flv"]
    index = index_dataset("cremad", dest / "VideoFlash")
    assert len(index.clips) == 1 and len(index.rejected) == 0 and index.clips["emotion"].tolist() == ["happy"]
    done = subprocess.run(
        [sys.executable, "-m", "fer_utils", "preprocess", "--dataset", "cremad", "--src", str(dest / "VideoFlash")]
        + ["--out", str(tmp_path / "crops"), "--detector", "dlib-hog", "--frames", "2", "--side", "48"]
        + ["--workers", "1", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "1 clips, 1 subject(s); 2 of 2 frames usable (100 %): ok 2" in done.stdout
    assert len(list((tmp_path / "crops" / "happy").glob("1001_DFA_HAP_XX_f*.png"))) == 2


def test_a_corrupted_file_already_there_is_moved_aside_and_fetched_again(site: Site, tmp_path: Path) -> None:
    base = serve_clips(site)
    clip = cremad_dir() / "1001_DFA_NEU_XX.flv"
    target = tmp_path / "VideoFlash" / clip.name
    target.parent.mkdir(parents=True)
    target.write_bytes(bytes(clip.stat().st_size))  # right size, wrong bytes: e.g. a disk error
    report = download_cremad(
        tmp_path, actors=[1001], sentences=["DFA"], emotions=["NEU"], base_url=base, progress=False
    )
    assert list(report["status"]) == ["ok"] and target.read_bytes() == clip.read_bytes()
    assert (tmp_path / "VideoFlash" / f"{clip.name}.corrupt").read_bytes() == bytes(clip.stat().st_size)


# --- Ctrl-C, worker counts, a stream that never ends, CREMA-D's sources in order -----------------


def wait_for(condition, seconds: float = 20.0) -> None:
    """Poll `condition` until it holds (or fail after `seconds`)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_ctrl_c_stops_the_download_at_once_keeps_the_parts_and_writes_the_report(site: Site, tmp_path: Path) -> None:
    base = serve_clips(site)
    for clip in CLIPS:  # 1 KB every 50 ms: each clip would take 15 s
        site.trickle[f"{MEDIA_PATH}/VideoFlash/{clip.name}"] = 0.05
    command = [*DOWNLOAD, "--dest", str(tmp_path), "--actors", "1001", "--sentences", "DFA", "--base-url", base]
    run = subprocess.Popen([*command, "--workers", "2", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: sum(p.stat().st_size > 0 for p in tmp_path.rglob("*.flv.part")) == 2)
        sent = time.monotonic()
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=10)
        stopped_in = time.monotonic() - sent
    finally:
        run.kill()
    out, err = out.decode(), err.decode()
    assert run.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert stopped_in < 3, f"stopped {stopped_in:.1f} s after Ctrl-C"
    assert "interrupted" in err and "rerun the same command to resume" in err
    parts = {p.name.removesuffix(".part"): p.stat().st_size for p in (tmp_path / "VideoFlash").glob("*.part")}
    assert len(parts) == 2 and all(size > 0 for size in parts.values())
    report = pd.read_csv(tmp_path / REPORT_FILE, keep_default_na=False).set_index("file")
    assert sorted(report["status"]) == ["interrupted"] * 2 + ["not started"] * 4
    assert set(report.index[report["status"] == "interrupted"]) == set(parts)
    assert "0 ok, 0 skipped, 0 failed, 2 interrupted, 4 not started" in out
    site.trickle.clear()  # the rerun resumes each .part where it stopped
    again = download_cremad(tmp_path, actors=[1001], sentences=["DFA"], base_url=base, progress=False)
    assert set(again["status"]) == {"ok"}
    assert {(name, f"bytes={size}-") for name, size in parts.items()} <= set(clip_requests(site))
    assert all((tmp_path / "VideoFlash" / c.name).read_bytes() == c.read_bytes() for c in CLIPS)


@pytest.mark.parametrize("workers", ["0", "-3"])
def test_a_worker_count_below_one_is_refused(tmp_path: Path, workers: str) -> None:
    done = subprocess.run(
        [*DOWNLOAD, "--dest", str(tmp_path / "d"), "--actors", "1001", "--workers", workers],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and f"argument --workers: must be at least 1, got {workers}" in done.stderr
    with pytest.raises(DownloadError, match=f"workers must be at least 1, got {workers}"):
        download_cremad(tmp_path / "d", actors=[1001], workers=int(workers), base_url="http://127.0.0.1:9/")
    assert not (tmp_path / "d").exists()


def test_a_stream_past_the_expected_size_is_stopped_there(site: Site, tmp_path: Path) -> None:
    base = serve_clips(site, CLIPS[:1])
    site.endless.add(f"{MEDIA_PATH}/VideoFlash/{CLIPS[0].name}")  # no Content-Length, never ends
    start = time.monotonic()
    report = download_cremad(
        tmp_path, actors=[1001], sentences=["DFA"], emotions=["ANG"], base_url=base, progress=False
    )
    assert time.monotonic() - start < 10
    size = CLIPS[0].stat().st_size
    assert report["status"][0] == "failed"
    assert f"sent more than the expected {size:,} bytes: stopped, moved to" in report["reason"][0]
    folder = tmp_path / "VideoFlash"
    assert not (folder / CLIPS[0].name).exists() and not (folder / f"{CLIPS[0].name}.part").exists()
    assert (folder / f"{CLIPS[0].name}.part.corrupt").stat().st_size <= size  # the next run starts afresh


def two_sources(site: Site, answer: str) -> list[tuple[str, str]]:
    """A first source that answers `answer` (quota, pointer or html) for every clip, then a mirror that serves
    them: the order and the answers of CREMA-D's LFS media and its maintainers' mirror."""
    for clip in CLIPS:
        path = f"/lfs/VideoFlash/{clip.name}"
        if answer == "quota":
            over_quota(site, path)
        elif answer == "pointer":
            site.answers[path] = (200, "text/plain; charset=utf-8", lfs_pointer(clip.read_bytes()))
        else:
            site.answers[path] = (200, "text/html; charset=utf-8", b"<!DOCTYPE html><html><body>Sign in</body></html>")
        site.files[f"/mirror/VideoFlash/{clip.name}"] = clip.read_bytes()
    return [("the LFS media", f"{site.url}/lfs/"), ("the mirror", f"{site.url}/mirror/")]


SAID = {
    "quota": "a refusal over its quota (HTTP 403: 'This repository exceeded its LFS budget.",
    "pointer": "a Git LFS pointer instead of the file",
    "html": "an HTML page instead of the file (HTTP 200",
}


@pytest.mark.parametrize("answer", sorted(SAID))
def test_a_source_that_cannot_serve_the_clips_is_skipped_for_the_next(
    site: Site, tmp_path: Path, capsys, answer: str
) -> None:
    sources = two_sources(site, answer)
    report = download_cremad(tmp_path, actors=[1001], sentences=["DFA"], sources=sources, progress=False)
    assert set(report["status"]) == {"ok"}
    assert all((tmp_path / "VideoFlash" / c.name).read_bytes() == c.read_bytes() for c in CLIPS)
    out = capsys.readouterr().out
    assert f"skipping the LFS media ({site.url}/lfs/) answered with {SAID[answer]}" in out
    assert f"from {site.url}/mirror/ into" in out
    assert sum(path.startswith("/lfs/") for path, _ in site.ranges) == 1, "one probe, no clip from the first"


def test_when_no_source_serves_the_clips_the_error_says_which_to_pass_with_base_url(site: Site, tmp_path: Path) -> None:
    sources = two_sources(site, "quota")
    for clip in CLIPS:
        site.answers[f"/mirror/VideoFlash/{clip.name}"] = (200, "text/plain", lfs_pointer(clip.read_bytes()))
    with pytest.raises(DownloadError) as caught:
        download_cremad(tmp_path, actors=[1001], sentences=["DFA"], sources=sources, progress=False)
    message = str(caught.value)
    assert "no CREMA-D source can serve VideoFlash/1001_DFA_ANG_XX.flv" in message
    assert SAID["quota"] in message and SAID["pointer"] in message
    assert f"--base-url {CREMAD_MIRROR_URL}" in message and CREMAD_RELEASES_URL in message
    assert not list((tmp_path / "VideoFlash").glob("*.flv*"))
    # a source named with --base-url is used as it is: each clip's failure says what it answered and what to pass
    done = subprocess.run(
        [*DOWNLOAD, "--dest", str(tmp_path), "--actors", "1001", "--sentences", "DFA", "--emotions", "ANG"]
        + ["--base-url", f"{site.url}/lfs/", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1, done.stderr
    assert f"answered with {SAID['quota']}" in done.stdout and f"--base-url {CREMAD_MIRROR_URL}" in done.stdout
    assert not list((tmp_path / "VideoFlash").glob("*.flv*")), "nothing written from a refusal"


def test_the_default_sources_are_the_lfs_media_then_the_maintainers_mirror() -> None:
    from fer_utils.data.download import CREMAD_SOURCES

    assert [url for _, url in CREMAD_SOURCES] == [CREMAD_MEDIA_URL, CREMAD_MIRROR_URL]
    assert CREMAD_MIRROR_URL == "https://gitlab.com/cs-cooper-lab/crema-d-mirror/-/raw/main/"
