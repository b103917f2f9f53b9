"""The RAVDESS downloader against a real HTTP server on 127.0.0.1, and safe extraction of real zips."""

from __future__ import annotations

import hashlib
import io
import json
import random
import stat
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
from http_site import Site

from fer_utils.data.corpora import index_ravdess
from fer_utils.data.download import (
    DownloadWarning,
    download_dataset,
    download_file,
    download_ravdess,
    file_digest,
    safe_extract,
    zenodo_md5s,
)
from fer_utils.errors import DownloadError, InputError


def actor_zip(actor: int, extra: dict[str, bytes] | None = None) -> bytes:
    """A Video_Speech_Actor_XX.zip as Zenodo ships it: Actor_XX/ with AV (01) and video-only (02) clips."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for modality in ("01", "02"):
            for emotion in (1, 3, 5):
                name = f"Actor_{actor:02d}/{modality}-01-{emotion:02d}-01-01-01-{actor:02d}.mp4"
                zf.writestr(name, random.Random(name).randbytes(8000))  # incompressible: a real-sized body
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buffer.getvalue()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def symlink_zip(target: str = "/etc/passwd", kind: int = stat.S_IFLNK) -> bytes:
    """A zip whose member `Actor_01/link.mp4` is a link (or another special file: `kind`), as unix
    mode bits in the external attributes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("Actor_01/02-01-03-01-01-01-01.mp4", b"fine")
        info = zipfile.ZipInfo("Actor_01/link.mp4")
        info.external_attr = (kind | 0o777) << 16
        zf.writestr(info, target)
    return buffer.getvalue()


def test_good_download_verifies_and_leaves_no_part(site: Site, tmp_path: Path) -> None:
    data = actor_zip(1)
    site.files["/Video_Speech_Actor_01.zip"] = data
    dest = download_file(
        f"{site.url}/Video_Speech_Actor_01.zip?download=1",
        tmp_path / "a.zip",
        expected_md5=md5(data),
        chunk=4096,
        progress=False,
    )
    assert dest.read_bytes() == data and file_digest(dest) == md5(data)
    assert not (tmp_path / "a.zip.part").exists()
    # an existing verified file is kept without asking the server again
    seen = len(site.ranges)
    download_file(f"{site.url}/Video_Speech_Actor_01.zip", dest, expected_md5=md5(data), progress=False)
    assert len(site.ranges) == seen


def test_corrupted_download_is_quarantined(site: Site, tmp_path: Path) -> None:
    data = actor_zip(1)
    site.files["/x.zip"] = data[:-10] + b"0123456789"
    with pytest.raises(DownloadError, match="md5 mismatch"):
        download_file(f"{site.url}/x.zip", tmp_path / "x.zip", expected_md5=md5(data), progress=False)
    assert not (tmp_path / "x.zip").exists() and not (tmp_path / "x.zip.part").exists()
    assert (tmp_path / "x.zip.part.corrupt").exists()


def test_missing_checksum_warns_or_fails_as_asked(site: Site, tmp_path: Path) -> None:
    site.files["/x.zip"] = data = actor_zip(2)
    with pytest.warns(DownloadWarning, match=md5(data)):
        download_file(f"{site.url}/x.zip", tmp_path / "warn.zip", progress=False)
    with pytest.raises(DownloadError, match="no known md5"):
        download_file(f"{site.url}/x.zip", tmp_path / "strict.zip", progress=False, missing_checksum="error")
    assert not (tmp_path / "strict.zip").exists()


def test_truncated_download_fails_then_resumes_with_range(site: Site, tmp_path: Path) -> None:
    data = actor_zip(3)
    site.files["/x.zip"] = data
    site.truncate.add("/x.zip")
    with pytest.raises(DownloadError, match="run again to resume"):
        download_file(f"{site.url}/x.zip", tmp_path / "x.zip", expected_md5=md5(data), chunk=1024, progress=False)
    part = tmp_path / "x.zip.part"
    kept = part.stat().st_size
    assert 0 < kept < len(data) and not (tmp_path / "x.zip").exists()
    site.truncate.clear()
    download_file(f"{site.url}/x.zip", tmp_path / "x.zip", expected_md5=md5(data), progress=False)
    assert site.ranges[-1] == ("/x.zip", f"bytes={kept}-")
    assert (tmp_path / "x.zip").read_bytes() == data


def test_existing_part_is_resumed(site: Site, tmp_path: Path) -> None:
    data = actor_zip(4)
    site.files["/x.zip"] = data
    (tmp_path / "x.zip.part").write_bytes(data[:5000])
    download_file(f"{site.url}/x.zip", tmp_path / "x.zip", expected_md5=md5(data), progress=False)
    assert site.ranges == [("/x.zip", "bytes=5000-")]
    assert file_digest(tmp_path / "x.zip") == md5(data)


def test_server_ignoring_range_restarts_cleanly(site: Site, tmp_path: Path) -> None:
    data = actor_zip(5)
    site.files["/x.zip"] = data
    site.ignore_range.add("/x.zip")
    (tmp_path / "x.zip.part").write_bytes(b"stale bytes from another file")
    download_file(f"{site.url}/x.zip", tmp_path / "x.zip", expected_md5=md5(data), progress=False)
    assert (tmp_path / "x.zip").read_bytes() == data


def test_download_ravdess_subset_then_index(site: Site, tmp_path: Path) -> None:
    checksums = {}
    for actor in (2, 7):
        site.files[f"/Video_Speech_Actor_{actor:02d}.zip"] = data = actor_zip(actor)
        checksums[f"Video_Speech_Actor_{actor:02d}.zip"] = md5(data)
    archives = download_ravdess(tmp_path, actors=[2, 7], base_url=site.url, checksums=checksums, progress=False)
    assert [a.name for a in archives] == ["Video_Speech_Actor_02.zip", "Video_Speech_Actor_07.zip"]
    index = index_ravdess(tmp_path)
    assert sorted(index.clips["subject"].unique()) == ["Actor_02", "Actor_07"]
    assert len(index.clips) == 6 and set(index.clips["emotion"]) == {"neutral", "happy", "angry"}


def zenodo_record(md5s: dict[str, str], shape: str = "list") -> bytes:
    """A Zenodo record's API JSON listing `md5s`, as a list (legacy) or InvenioRDM `files.entries`."""
    entries = [{"key": name, "checksum": f"md5:{digest}", "size": 1} for name, digest in md5s.items()]
    files = entries if shape == "list" else {"entries": {e["key"]: e for e in entries}}
    return json.dumps({"id": 1188976, "files": files}).encode()


@pytest.mark.parametrize("shape", ["list", "entries"])
def test_checksums_come_from_the_record_api(site: Site, tmp_path: Path, shape: str) -> None:
    good, tampered = actor_zip(3), actor_zip(4, extra={"Actor_04/extra.txt": b"not from zenodo"})
    site.files["/Video_Speech_Actor_03.zip"] = good
    site.files["/Video_Speech_Actor_04.zip"] = tampered
    published = {"Video_Speech_Actor_03.zip": md5(good), "Video_Speech_Actor_04.zip": md5(actor_zip(4))}
    site.files["/api/records/1188976"] = zenodo_record(published, shape)
    api = f"{site.url}/api/records/1188976"
    assert zenodo_md5s(api) == published
    with warnings.catch_warnings():
        warnings.simplefilter("error", DownloadWarning)  # every archive has a published md5: no warning
        download_ravdess(tmp_path, actors=[3], base_url=site.url, record_api=api, progress=False)
    with pytest.raises(DownloadError, match="md5 mismatch"):
        download_ravdess(tmp_path, actors=[4], base_url=site.url, record_api=api, progress=False)
    assert [p.name for p in (tmp_path / "archives").glob("*.corrupt")] == ["Video_Speech_Actor_04.zip.part.corrupt"]
    assert not (tmp_path / "Actor_04").exists()


def test_unreachable_record_api_falls_back_to_the_missing_checksum_policy(site: Site, tmp_path: Path) -> None:
    site.files["/Video_Speech_Actor_05.zip"] = actor_zip(5)
    api = f"{site.url}/api/records/missing"
    with pytest.raises(DownloadError, match="cannot read the checksums"):
        zenodo_md5s(api)
    with (
        pytest.warns(DownloadWarning, match="cannot read the checksums"),
        pytest.raises(DownloadError, match="no known md5"),
    ):
        download_ravdess(
            tmp_path, actors=[5], base_url=site.url, record_api=api, progress=False, missing_checksum="error"
        )


def test_cli_download_from_a_mirror(site: Site, tmp_path: Path) -> None:
    site.files["/Video_Speech_Actor_09.zip"] = actor_zip(9)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fer_utils",
            "download",
            "--dest",
            str(tmp_path),
            "--actors",
            "9",
            "--base-url",
            site.url,
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "no known md5" in done.stderr
    assert len(list((tmp_path / "Actor_09").glob("*.mp4"))) == 6
    strict = subprocess.run(
        [
            sys.executable,
            "-m",
            "fer_utils",
            "download",
            "--dest",
            str(tmp_path / "s"),
            "--actors",
            "9",
            "--base-url",
            site.url,
            "--quiet",
            "--require-checksum",
        ],
        capture_output=True,
        text=True,
    )
    assert strict.returncode == 2 and "error: no known md5" in strict.stderr


@pytest.mark.parametrize("member", ["../evil.mp4", "Actor_01/../../evil.mp4", "/tmp/fer_abs_evil.mp4"])
def test_traversal_members_refuse_the_whole_archive(member: str, tmp_path: Path) -> None:
    archive = tmp_path / "bad.zip"
    archive.write_bytes(actor_zip(1, extra={member: b"pwned"}))
    target = tmp_path / "out" / "inner"
    with pytest.raises(DownloadError, match="refusing to extract"):
        safe_extract(archive, target)
    assert not target.exists()  # not even the good members
    assert not (tmp_path / "evil.mp4").exists() and not (tmp_path / "out" / "evil.mp4").exists()
    assert not Path("/tmp/fer_abs_evil.mp4").exists()


@pytest.mark.parametrize(
    ("kind", "message"), [(stat.S_IFLNK, "symbolic link"), (stat.S_IFCHR, "device"), (stat.S_IFIFO, "fifo")]
)
def test_link_and_special_members_are_refused(kind: int, message: str, tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    archive.write_bytes(symlink_zip(kind=kind))
    with pytest.raises(DownloadError, match=message):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_corrupt_member_and_non_zip_are_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("Actor_01/02-01-03-01-01-01-01.mp4", b"original payload bytes")
    data = buffer.getvalue().replace(b"original payload", b"tampered payload")
    archive = tmp_path / "crc.zip"
    archive.write_bytes(data)
    with pytest.raises(DownloadError, match="CRC"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (tmp_path / "not.zip").write_bytes(b"hello")
    with pytest.raises(DownloadError, match="not a readable zip"):
        safe_extract(tmp_path / "not.zip", tmp_path / "out2")


def test_malicious_archive_from_the_server_writes_nothing_outside(site: Site, tmp_path: Path) -> None:
    site.files["/Video_Speech_Actor_01.zip"] = data = actor_zip(1, extra={"../../escaped.mp4": b"x"})
    dest = tmp_path / "a" / "b"
    with pytest.raises(DownloadError, match="'..'"):
        download_ravdess(
            dest, actors=[1], base_url=site.url, checksums={"Video_Speech_Actor_01.zip": md5(data)}, progress=False
        )
    assert not (tmp_path / "escaped.mp4").exists() and not (dest / "Actor_01").exists()


def test_savee_and_mead_explain_where_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="registration.*surrey.*KL/sa03.avi"):
        download_dataset("savee", tmp_path)
    with pytest.raises(InputError, match="MEAD.*M003/video/front/angry/level_1/001.mp4"):
        download_dataset("mead", tmp_path)
    with pytest.raises(InputError, match="actors are 1..24"):
        download_ravdess(tmp_path, actors=[25], progress=False)


def zip_bomb(megabytes: int = 200) -> bytes:
    """A real zip bomb: one member of `megabytes` MB of zeros, deflated to a few hundred KB."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
        zf.open("Actor_01/01-01-03-01-01-01-01.mp4", "w", force_zip64=True) as member,
    ):
        block = bytes(1 << 20)
        for _ in range(megabytes):
            member.write(block)
    return buffer.getvalue()


def test_zip_bomb_from_the_server_is_refused_before_anything_is_written(site: Site, tmp_path: Path) -> None:
    site.files["/Video_Speech_Actor_01.zip"] = bomb = zip_bomb(200)
    assert len(bomb) < 400_000  # 200 MB of zeros in a few hundred KB
    dest = tmp_path / "ravdess"
    with pytest.raises(DownloadError, match=r"expand to 209,715,200 bytes.*limit.*20 × the archive"):
        download_ravdess(
            dest, actors=[1], base_url=site.url, checksums={"Video_Speech_Actor_01.zip": md5(bomb)}, progress=False
        )
    assert not (dest / "Actor_01").exists()
    # an honest archive passes the default limits, and the hard cap applies even at a sane ratio
    archive = tmp_path / "honest.zip"
    archive.write_bytes(actor_zip(1))
    assert len(safe_extract(archive, tmp_path / "ok")) == 6
    with pytest.raises(DownloadError, match="hard cap of 10,000 bytes"):
        safe_extract(archive, tmp_path / "capped", max_total_bytes=10_000)
    assert not (tmp_path / "capped").exists()


def test_an_unverifiable_archive_that_cannot_be_opened_is_moved_aside_and_the_rerun_recovers(
    site: Site, tmp_path: Path
) -> None:
    """A mirror's truncated zip with no md5 to check it: kept under its final name, every rerun "verified and
    kept" it and failed on it again, forever."""
    data = actor_zip(6)
    site.files["/Video_Speech_Actor_06.zip"] = data[: len(data) // 2]  # truncated, served as if whole
    archive = tmp_path / "archives" / "Video_Speech_Actor_06.zip"
    with (
        pytest.warns(DownloadWarning, match="no known md5"),
        pytest.raises(DownloadError, match=r"not a readable zip archive .* no md5 is known to verify it: moved to"),
    ):
        download_ravdess(tmp_path, actors=[6], base_url=site.url, progress=False)
    assert not archive.exists() and not (tmp_path / "Actor_06").exists()
    assert (tmp_path / "archives" / "Video_Speech_Actor_06.zip.corrupt").stat().st_size == len(data) // 2
    site.files["/Video_Speech_Actor_06.zip"] = data  # the mirror is fixed: the rerun downloads it afresh
    with pytest.warns(DownloadWarning, match="no known md5"):
        download_ravdess(tmp_path, actors=[6], base_url=site.url, progress=False)
    assert archive.read_bytes() == data and len(list((tmp_path / "Actor_06").glob("*.mp4"))) == 6


def test_a_broken_archive_an_earlier_run_left_is_set_aside_and_fetched_again(site: Site, tmp_path: Path) -> None:
    data = actor_zip(7)
    site.files["/Video_Speech_Actor_07.zip"] = data
    archive = tmp_path / "archives" / "Video_Speech_Actor_07.zip"
    archive.parent.mkdir()
    archive.write_bytes(data[:1000])  # what an earlier version kept under the final name
    with pytest.warns(DownloadWarning, match="not a readable zip archive .* moved to .*; downloading it again"):
        download_ravdess(tmp_path, actors=[7], base_url=site.url, progress=False)
    assert archive.read_bytes() == data and len(list((tmp_path / "Actor_07").glob("*.mp4"))) == 6
    assert (tmp_path / "archives" / "Video_Speech_Actor_07.zip.corrupt").read_bytes() == data[:1000]
