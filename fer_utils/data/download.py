"""The verified, resumable RAVDESS downloader and the download machinery it shares with CREMA-D's
(`fer_utils.data.cremad`), and the safe extraction of its zip archives; `fer_utils.data.fetch` downloads any
dataset by name.

RAVDESS (Livingstone & Russo 2018, CC BY-NC-SA 4.0) is on Zenodo, record 1188976, as one
`Video_Speech_Actor_XX.zip` per actor (about 0.5-1 GB each, holding the audio-video (01) and
video-only (02) copy of each of the 60 speech trials). A download goes to `<name>.part`, resumes
with an HTTP Range request when interrupted, is checked against an md5, and only then renamed;
extraction (`safe_extract`) checks every member before writing anything: one that is absolute, holds `..`,
is a link or a device, or lands outside the target folder is refused, and so is an archive whose members
expand past a limit (a zip bomb); every member's CRC-32 is checked.

Checksums: Zenodo publishes an md5 per file in its REST API (`/api/records/1188976`, each file's
`checksum` is `md5:<hex>`); the package holds none (its machines cannot reach Zenodo), so
`download_ravdess` reads them from the record's API (`zenodo_md5s`) when it downloads from Zenodo
(or from `record_api` for a mirror). Where no md5 is known even then, `missing_checksum` decides:
"warn" (the default: a DownloadWarning that gives the computed md5, while the zip's own per-member
CRC-32 is still checked by `safe_extract`) or "error" (fail closed). `checksums={"Video_Speech_Actor_01.zip":
"<md5>", ...}` overrides everything.
"""

from __future__ import annotations

import hashlib
import shutil
import stat
import threading
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain
from pathlib import Path, PurePosixPath
from typing import Literal

import requests
import urllib3
from tqdm.auto import tqdm

from fer_utils.errors import DownloadError, InputError
from fer_utils.storage.atomic import move

ZENODO_URL = "https://zenodo.org/records/1188976/files"
ZENODO_RECORD_API = "https://zenodo.org/api/records/1188976"
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60.0

# What a server sends instead of the file when a source cannot serve it: Git LFS's pointer (the git tree's
# text that names the object), an HTML page, or a refusal that names a budget or quota (GitHub's media
# endpoint answers "This repository exceeded its LFS budget" once the owner's LFS bandwidth is spent).
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/"
QUOTA_WORDS = ("budget", "quota", "bandwidth", "exceeded")
QUOTA_STATUSES = (402, 403, 429, 509)
SNIFF_BYTES = 512

# Extraction limits against zip bombs: members may expand to at most MAX_EXPANSION × the archive's size,
# and never past MAX_EXTRACT_BYTES. RAVDESS zips hold already-compressed mp4 (ratio ≈ 1).
MAX_EXPANSION = 20.0
MAX_EXTRACT_BYTES = 16 << 30


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a zip member must not be extracted (absolute, `..`, drive, link, device), or None if safe."""
    name = info.filename
    path = PurePosixPath(name.replace("\\", "/"))
    mode = info.external_attr >> 16
    if path.is_absolute() or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in path.parts:
        return "path with '..'"
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # 0: no unix type recorded
        return "not a regular file or folder (hard link, device or fifo)"
    return None


def check_expansion(archive: Path, infos: list[zipfile.ZipInfo], max_expansion: float, max_total_bytes: int) -> None:
    """Raise DownloadError when the members' total uncompressed size passes `max_expansion` × the
    archive's size or `max_total_bytes` (a zip bomb). The declared sizes can be trusted as an upper
    bound: zipfile never decompresses a member past its declared size (it fails the CRC instead)."""
    total = sum(info.file_size for info in infos)
    size = Path(archive).stat().st_size
    limit = min(int(max_expansion * size), int(max_total_bytes))
    if total > limit:
        which = (
            f"the hard cap of {int(max_total_bytes):,} bytes"
            if limit == int(max_total_bytes)
            else f"{max_expansion:g} × the archive's {size:,} bytes"
        )
        raise DownloadError(
            f"refusing to extract {Path(archive).name}: its {len(infos)} member(s) expand to "
            f"{total:,} bytes, past the limit of {limit:,} bytes ({which}); a zip bomb?"
        )


def safe_extract(
    archive: Path, dest: Path, *, max_expansion: float = MAX_EXPANSION, max_total_bytes: int = MAX_EXTRACT_BYTES
) -> list[Path]:
    """Extract a zip into `dest` after checking every member; nothing is written if any is unsafe.

    Refuses absolute paths, `..`, symlinks and other non-regular members (zip external attributes),
    members that resolve outside `dest`, and archives whose members expand past `max_expansion` × the
    archive's size or `max_total_bytes` (`check_expansion`); then checks every member's CRC-32
    (`testzip`). Returns the extracted files.
    """
    archive, dest = Path(archive), Path(dest)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DownloadError(f"{archive} is not a readable zip archive: {exc}", status="unreadable") from exc
    with zf:
        root = dest.resolve()
        infos = zf.infolist()
        for info in infos:
            problem = _member_problem(info)
            target = (root / info.filename).resolve()
            if problem is None and root != target and root not in target.parents:
                problem = "lands outside the target folder"
            if problem:
                raise DownloadError(f"refusing to extract {archive.name}: member {info.filename!r} is a {problem}")
        check_expansion(archive, infos, max_expansion, max_total_bytes)
        bad = zf.testzip()
        if bad is not None:
            raise DownloadError(f"{archive.name} is corrupt: member {bad!r} fails its CRC check", status="unreadable")
        dest.mkdir(parents=True, exist_ok=True)
        written = [Path(zf.extract(info, root)) for info in infos]
    return [p for p in written if p.is_file()]


def zip_problem(path: Path) -> str | None:
    """Why `path` cannot be opened as a zip archive (its central directory, at the end, is read: a truncated
    download fails here without reading the members), or None."""
    try:
        with zipfile.ZipFile(path):
            return None
    except (zipfile.BadZipFile, OSError) as exc:
        return str(exc) or type(exc).__name__


class DownloadWarning(UserWarning):
    """A download that could not be fully verified (no known checksum)."""


def answer_problem(status: int, content_type: str, head: bytes) -> str | None:
    """What a server sent instead of the file, from its status, Content-Type and first bytes: over its quota,
    a Git LFS pointer or an HTML page; None when the answer may be the file (other HTTP errors are left to
    the caller)."""
    text = head[:SNIFF_BYTES].decode("utf-8", "replace")
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")[:120]
    textual = status >= 400 or content_type.startswith("text/")
    if textual and any(word in text.lower() for word in QUOTA_WORDS) and status in (200, *QUOTA_STATUSES):
        return f"a refusal over its quota (HTTP {status}: {first_line!r})"
    if head.startswith(LFS_POINTER_PREFIX):
        return "a Git LFS pointer instead of the file (the source serves its git tree, not its LFS media)"
    if content_type.startswith("text/html") or head.lstrip()[:14].lower().startswith((b"<!doctype html", b"<html")):
        return f"an HTML page instead of the file (HTTP {status}: a login, error or landing page?)"
    return None


def _blocks(response: requests.Response, chunk: int, stop: threading.Event | None) -> Iterator[bytes]:
    """The body as it arrives, each block (at most `chunk` bytes) as soon as the socket has any, so that a stop
    request is seen after every read even from a slow server; a DownloadError of status `stopped` once `stop` is set."""
    while True:
        if stop is not None and stop.is_set():
            raise DownloadError("stopped on request", status="stopped")
        block = response.raw.read1(chunk, decode_content=True)
        if not block:
            return
        yield block


def probe_url(url: str) -> str | None:
    """What is wrong with `url` as a source of a file (unreachable, an HTTP error, over its quota, a Git LFS
    pointer, an HTML page), from its first bytes only; None when it answers with what may be the file."""
    try:
        with requests.get(url, headers={"Range": f"bytes=0-{SNIFF_BYTES - 1}"}, stream=True, timeout=TIMEOUT_S) as r:
            head = next(_blocks(r, SNIFF_BYTES, None), b"")
            problem = answer_problem(r.status_code, r.headers.get("Content-Type", ""), head)
            if problem is None and r.status_code >= 400:
                problem = f"HTTP {r.status_code} {r.reason}"
            return problem
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        return f"unreachable ({exc})"


def ravdess_archive_name(actor: int) -> str:
    """Zenodo file name of one actor's video speech archive, e.g. Video_Speech_Actor_01.zip."""
    if not 1 <= int(actor) <= 24:
        raise InputError(f"RAVDESS actors are 1..24, got {actor}")
    return f"Video_Speech_Actor_{int(actor):02d}.zip"


def ravdess_url(actor: int, base_url: str = ZENODO_URL) -> str:
    """Download URL of one actor's archive (Zenodo's `?download=1` form)."""
    return f"{base_url.rstrip('/')}/{ravdess_archive_name(actor)}?download=1"


def file_digest(path: Path, algorithm: str = "md5") -> str:
    """Hex digest (`algorithm` of hashlib: md5, sha256 …) of a file, streamed."""
    with Path(path).open("rb") as fh:
        return hashlib.file_digest(fh, algorithm).hexdigest()


def _quarantine(path: Path) -> Path:
    """Move a file that failed verification to `<name>.corrupt` (replacing an older one)."""
    bad = path.with_name(path.name + ".corrupt")
    move(path, bad)
    return bad


def verify_md5(path: Path, expected_md5: str | None, missing_checksum: Literal["warn", "error"] = "warn") -> str:
    """Check `path` against `expected_md5`; quarantine and raise DownloadError on a mismatch.

    Returns the computed md5. With no expected value, warns or raises as `missing_checksum` says.
    """
    actual = file_digest(path)
    if expected_md5 is None:
        message = f"no known md5 for {path.name} (computed {actual}); not verified against the publisher"
        if missing_checksum == "error":
            raise DownloadError(message + "; pass the md5 or missing_checksum='warn'")
        warnings.warn(message, DownloadWarning, stacklevel=2)
    elif actual.lower() != expected_md5.lower():
        bad = _quarantine(path)
        raise DownloadError(f"md5 mismatch for {path.name}: expected {expected_md5}, got {actual}; moved to {bad}")
    return actual


def verify_sha256(path: Path, expected_sha256: str, expected_size: int | None = None) -> str:
    """Check `path`'s size (when given: cheap, first) and SHA-256; quarantine and raise DownloadError on a
    mismatch (Git LFS publishes both for every object). Returns the computed SHA-256."""
    size = Path(path).stat().st_size
    if expected_size is not None and size != int(expected_size):
        bad = _quarantine(path)
        raise DownloadError(
            f"size mismatch for {path.name}: expected {int(expected_size):,} bytes, got {size:,}; moved to {bad}"
        )
    actual = file_digest(path, "sha256")
    if actual.lower() != expected_sha256.lower():
        bad = _quarantine(path)
        raise DownloadError(
            f"sha256 mismatch for {path.name}: expected {expected_sha256}, got {actual}; moved to {bad}"
        )
    return actual


def _too_long(url: str, part: Path, expected_size: int, got: str) -> DownloadError:
    """The error for a server that sends more than the expected size; the `.part` is moved aside (its bytes are
    not the file's), so that the next run starts afresh."""
    kept = f"moved to {_quarantine(part)}" if part.exists() else "nothing written"
    return DownloadError(
        f"{url} sent {got} than the expected {expected_size:,} bytes: stopped, {kept}; "
        "the source does not serve this file (pass another with --base-url)"
    )


def _fetch(
    url: str,
    part: Path,
    chunk: int,
    progress: bool,
    expected_size: int | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Append the rest of `url` to `part`, resuming from its size with a Range request.

    Stops (keeping `part`) when `stop` is set, and refuses more than `expected_size` bytes in all (a stream
    that never ends); an answer that is not the file (`answer_problem`) is a DownloadError of status `refused` and writes nothing.
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        with requests.get(url, headers=headers, stream=True, timeout=TIMEOUT_S) as response:
            if response.status_code == 416:  # the .part is already complete
                return
            blocks = _blocks(response, chunk, stop)
            first = next(blocks, b"")
            problem = answer_problem(response.status_code, response.headers.get("Content-Type", ""), first)
            if problem is not None:
                raise DownloadError(f"{url} answered with {problem}", status="refused")
            response.raise_for_status()
            if offset and response.status_code != 206:  # server ignored Range: start over
                offset = 0
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None else None
            if expected_size is not None and total is not None and total > expected_size:
                raise _too_long(url, part, expected_size, f"a Content-Length of {total:,} bytes, more")
            mode = "ab" if offset else "wb"
            with (
                part.open(mode) as fh,
                tqdm(
                    total=total,
                    initial=offset,
                    unit="B",
                    unit_scale=True,
                    desc=part.name.removesuffix(".part"),
                    disable=not progress,
                ) as bar,
            ):
                written = offset
                for block in chain((first,), blocks):
                    if expected_size is not None and written + len(block) > expected_size:
                        fh.close()
                        raise _too_long(url, part, expected_size, "more")
                    fh.write(block)
                    written += len(block)
                    bar.update(len(block))
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise DownloadError(f"download of {url} failed ({exc}); run again to resume from {part}") from exc
    if total is not None and part.stat().st_size != total:
        raise DownloadError(
            f"download of {url} ended early: {part.stat().st_size} of {total} bytes; run again to resume from {part}"
        )


def download_file(
    url: str,
    dest: Path,
    expected_md5: str | None = None,
    chunk: int = CHUNK_BYTES,
    progress: bool = True,
    missing_checksum: Literal["warn", "error"] = "warn",
    expected_sha256: str | None = None,
    expected_size: int | None = None,
    stop: threading.Event | None = None,
) -> Path:
    """Download `url` to `dest` via `dest.part` (resumed if present), verify it, then rename.

    Verified against `expected_sha256` (and `expected_size`) when given, else against `expected_md5`
    (`missing_checksum` says what happens when neither is known). A file already at `dest` is verified
    and kept (no network). A corrupt download is moved to `<dest>.part.corrupt` and a DownloadError
    raised; an interrupted one keeps its `.part` for the next call, and so does one stopped by setting
    `stop` (a DownloadError of status `stopped`). A stream past `expected_size` is stopped there (DownloadError, `.part` moved
    aside); an answer that is not the file is a DownloadError of status `refused`.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)

    def verify(path: Path) -> None:
        if expected_sha256 is not None:
            verify_sha256(path, expected_sha256, expected_size)
        else:
            verify_md5(path, expected_md5, missing_checksum)

    if dest.exists():
        verify(dest)
        return dest
    part = dest.with_name(dest.name + ".part")
    _fetch(url, part, chunk, progress, expected_size, stop)
    verify(part)
    move(part, dest)
    return dest


def zenodo_md5s(record_api_url: str = ZENODO_RECORD_API) -> dict[str, str]:
    """The md5 of every file of a Zenodo record, by file name, from the record's REST API.

    Accepts both shapes Zenodo has served: `files` as a list, or InvenioRDM's `files.entries`.
    """
    try:
        response = requests.get(record_api_url, timeout=TIMEOUT_S)
        response.raise_for_status()
        record = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise DownloadError(f"cannot read the checksums of {record_api_url}: {exc}") from exc
    files = record.get("files", []) if isinstance(record, dict) else []
    if isinstance(files, dict):
        files = files.get("entries", [])
        files = list(files.values()) if isinstance(files, dict) else files
    md5s = {}
    for entry in files:
        algorithm, _, digest = str(entry.get("checksum", "")).partition(":")
        if algorithm == "md5" and entry.get("key") and digest:
            md5s[entry["key"]] = digest
    if not md5s:
        raise DownloadError(f"{record_api_url} lists no md5 checksums")
    return md5s


def quarantine_unreadable(archive: Path, problem: str) -> str:
    """Move an archive that no md5 verified and that cannot be read to `<name>.corrupt`, and say so: kept under
    its name, it would be "verified and kept" by every rerun and fail again."""
    bad = _quarantine(archive)
    return f"{archive.name} is not a readable zip archive ({problem}) and no md5 is known to verify it: moved to {bad}"


def ravdess_checksums(
    names: Iterable[str], checksums: Mapping[str, str | None] | None, record_api: str | None
) -> dict[str, str | None]:
    """The md5 to verify each archive against: `checksums` if given, else the Zenodo record's API
    (`record_api`; None: no look-up, every md5 unknown)."""
    if checksums is not None:
        return {name: checksums.get(name) for name in names}
    published: dict[str, str] = {}
    if record_api:
        try:
            published = zenodo_md5s(record_api)
        except DownloadError as exc:
            warnings.warn(f"{exc}; archives without a known md5 follow missing_checksum", DownloadWarning, stacklevel=3)
    return {name: published.get(name) for name in names}


def download_ravdess(
    dest: Path,
    actors: Iterable[int] = range(1, 25),
    base_url: str = ZENODO_URL,
    checksums: Mapping[str, str | None] | None = None,
    progress: bool = True,
    extract: bool = True,
    keep_archives: bool = True,
    missing_checksum: Literal["warn", "error"] = "warn",
    record_api: str | None = None,
) -> list[Path]:
    """Download (and by default extract) RAVDESS video speech archives for `actors` into `dest`.

    Archives go to `dest/archives/`, clips to `dest/Actor_XX/`, ready for `data.corpora.index_ravdess(dest)`.
    Each archive is verified against an md5 (`ravdess_checksums`: `checksums` if given, else the
    Zenodo record's API — `record_api`, which defaults to
    Zenodo's when `base_url` is Zenodo's). Returns the archive paths. Each actor is done fully before
    the next, so an interruption loses at most one `.part`, which the next call resumes. An archive that
    no md5 verified and that cannot be read as a zip (a mirror's truncated file) is moved to `.corrupt`
    (DownloadError), and one left by an earlier run is set aside and downloaded again, so that a rerun
    recovers instead of keeping the broken file under its final name.
    """
    dest = Path(dest)
    actors = list(actors)
    if record_api is None and base_url == ZENODO_URL:
        record_api = ZENODO_RECORD_API
    table = ravdess_checksums([ravdess_archive_name(a) for a in actors], checksums, record_api)
    archives = []
    for actor in actors:
        name = ravdess_archive_name(actor)
        target, md5 = dest / "archives" / name, table.get(name)
        stale = zip_problem(target) if md5 is None and target.exists() else None
        if stale:  # left by an earlier run: set it aside and fetch it again
            message = f"{quarantine_unreadable(target, stale)}; downloading it again"
            warnings.warn(message, DownloadWarning, stacklevel=2)
        archive = download_file(
            ravdess_url(actor, base_url), target, md5, progress=progress, missing_checksum=missing_checksum
        )
        problem = zip_problem(archive) if md5 is None else None
        if problem:
            raise DownloadError(quarantine_unreadable(archive, problem) + "; run again to download it afresh")
        if extract:
            try:
                safe_extract(archive, dest)
            except DownloadError as exc:
                if exc.status != "unreadable":  # an unsafe member: a new download would hold it too
                    raise
                if md5 is not None:  # verified: the publisher's own archive, a new download would be the same
                    raise
                raise DownloadError(
                    quarantine_unreadable(archive, str(exc)) + "; run again to download it afresh"
                ) from exc
        archives.append(archive)
    if not keep_archives:
        shutil.rmtree(dest / "archives", ignore_errors=True)
    return archives
