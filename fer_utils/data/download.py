"""The datasets' downloads: any dataset by name (`download_dataset`, `python -m fer_utils download`), RAVDESS from
Zenodo (verified, resumable, its zip archives extracted safely) and CREMA-D from its Git LFS store.

A file goes to `<name>.part` (resumed with an HTTP Range request), is verified, and only then renamed.
RAVDESS archives are checked against Zenodo's md5s, read from the record's API since the package ships none
(`missing_checksum` decides when none is known); `safe_extract` writes nothing from an unsafe archive (see
there). CREMA-D clips are checked against the size and SHA-256 of the shipped index
(`assets/cremad_index/videoflash_lfs.csv`), so a clip under its final name is always a verified one.
GitHub refuses CREMA-D's LFS media since its LFS budget ran out in 2025 (CheyneyComputerScience/CREMA-D
issue #15), so `CREMAD_SOURCES` are probed in order. SAVEE and MEAD need registration: `download_dataset`
raises an InputError that says where to get them and how to lay them out.
"""

from __future__ import annotations

import hashlib
import shutil
import stat
import threading
import warnings
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import chain
from pathlib import Path, PurePosixPath
from typing import Literal

import pandas as pd
import requests
import urllib3
from tqdm.auto import tqdm

from fer_utils.assets import cremad_index_dir
from fer_utils.data.corpora import CREMAD_ACTORS, CREMAD_EMOTIONS, CREMAD_SENTENCES
from fer_utils.errors import DownloadError, InputError
from fer_utils.interrupts import stop_on_signals
from fer_utils.registry import DOWNLOADABLE_DATASETS
from fer_utils.storage.atomic import move

ZENODO_URL = "https://zenodo.org/records/1188976/files"
ZENODO_RECORD_API = "https://zenodo.org/api/records/1188976"
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60.0

# What a server sends instead of the file: Git LFS's pointer, an HTML page, or a refusal naming a budget or
# quota (GitHub: "This repository exceeded its LFS budget" once the owner's LFS bandwidth is spent).
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
    """DownloadError when the members' declared size passes `max_expansion` × the archive's size or
    `max_total_bytes` (a zip bomb). Declared sizes are a safe bound: zipfile never decompresses past them."""
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
    """Extract a zip into `dest`, returning the files; nothing is written if any member is unsafe.

    Refuses absolute paths, `..`, links, devices, members landing outside `dest` and zip bombs
    (`check_expansion`); every member's CRC-32 is checked before writing.
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
    """Why `path` cannot be opened as a zip archive, or None; only the central directory (at the end) is
    read, so a truncated download fails here cheaply."""
    try:
        with zipfile.ZipFile(path):
            return None
    except (zipfile.BadZipFile, OSError) as exc:
        return str(exc) or type(exc).__name__


class DownloadWarning(UserWarning):
    """A download that could not be fully verified (no known checksum)."""


def answer_problem(status: int, content_type: str, head: bytes) -> str | None:
    """What a server sent instead of the file (over quota, a Git LFS pointer, an HTML page), from its status,
    Content-Type and first bytes; None when it may be the file (other HTTP errors are the caller's)."""
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
    """The body in blocks of at most `chunk` bytes, as they arrive, so that `stop` is seen after every read even
    from a slow server (a DownloadError of status `stopped`)."""
    while True:
        if stop is not None and stop.is_set():
            raise DownloadError("stopped on request", status="stopped")
        block = response.raw.read1(chunk, decode_content=True)
        if not block:
            return
        yield block


def probe_url(url: str) -> str | None:
    """What is wrong with `url` as a source (unreachable, an HTTP error, `answer_problem`), from its first
    bytes only; None when it may serve the file."""
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
    """Check `path` against `expected_md5` and return the md5; quarantine and raise DownloadError on a
    mismatch. With no expected value, warns or raises as `missing_checksum` says."""
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
    """Check `path`'s size (when given: cheap, first) and SHA-256 and return the SHA-256; quarantine and
    raise DownloadError on a mismatch."""
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
    not the file's) so that the next run starts afresh."""
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

    Stops (keeping `part`) when `stop` is set, and refuses more than `expected_size` bytes (a stream that
    never ends); an answer that is not the file is a DownloadError of status `refused` and writes nothing.
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

    Verified by `expected_sha256` (and `expected_size`) when given, else by `expected_md5`. A file already
    at `dest` is verified and kept (no network). A corrupt download is moved to `<dest>.part.corrupt`
    (DownloadError); an interrupted or stopped one keeps its `.part` for the next call.
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
    """Move an unreadable archive that no md5 verified to `<name>.corrupt`, and say so: kept under its name,
    every rerun would keep it and fail again."""
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

    Returns the archives, in `dest/archives/`; clips go to `dest/Actor_XX/`. Each is verified by an md5
    (`ravdess_checksums`; `record_api` defaults to Zenodo's when `base_url` is Zenodo's). One actor is done
    before the next, so an interruption leaves at most one `.part` to resume. An unverified archive that is
    no readable zip (a mirror's truncated file) is moved to `.corrupt`, so that a rerun downloads it again.
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
                # an unsafe member, or a verified archive (the publisher's own): a new download would be the same
                if exc.status != "unreadable" or md5 is not None:
                    raise
                raise DownloadError(
                    quarantine_unreadable(archive, str(exc)) + "; run again to download it afresh"
                ) from exc
        archives.append(archive)
    if not keep_archives:
        shutil.rmtree(dest / "archives", ignore_errors=True)
    return archives


# The commit of CheyneyComputerScience/CREMA-D the shipped index was read from (assets/cremad_index/README.md).
CREMAD_COMMIT = "1658cd342dff90010aa843eaeebd53610a08b1dc"
CREMAD_MEDIA_URL = f"https://media.githubusercontent.com/media/CheyneyComputerScience/CREMA-D/{CREMAD_COMMIT}/"
# The maintainers' mirror (named in the repository's issue #15): GitLab's raw endpoint serves LFS files' contents.
CREMAD_MIRROR_URL = "https://gitlab.com/cs-cooper-lab/crema-d-mirror/-/raw/main/"
CREMAD_RELEASES_URL = "https://github.com/CheyneyComputerScience/CREMA-D/releases"
# (name, base URL holding VideoFlash/<clip>.flv), tried in this order.
CREMAD_SOURCES: tuple[tuple[str, str], ...] = (
    ("CREMA-D's Git LFS media on GitHub", CREMAD_MEDIA_URL),
    ("the maintainers' GitLab mirror", CREMAD_MIRROR_URL),
)
INDEX_FILE = "videoflash_lfs.csv"
# Copied beside the clips, so that the downloaded folder carries its license and its actors' demographics.
BESIDE_CLIPS = ("LICENSE.txt", "VideoDemographics.csv", "SentenceFilenames.csv")
CLIP_FOLDER = "VideoFlash"
REPORT_FILE = "download_report.csv"
REPORT_STATUSES = ("ok", "skipped", "failed")
# Statuses of an interrupted run: in flight when it stopped (its .part kept), or never started.
STOPPED_STATUSES = ("interrupted", "not started")
DEFAULT_WORKERS = 8
# Clips are about 330 KB: read in 64 KiB blocks, so that an interrupted transfer keeps what it got for the resume.
CLIP_CHUNK_BYTES = 64 << 10


@dataclass(frozen=True)
class ClipResult:
    """What became of one clip: `status` ok, skipped (already there, verified), failed, or after Ctrl-C
    interrupted (its `.part` kept) or not started."""

    file: str
    status: str
    reason: str


def cremad_index(path: Path | None = None) -> pd.DataFrame:
    """The shipped index of CREMA-D's clips: `path` (`VideoFlash/<name>.flv`), `sha256`, `size`, plus the
    `file` name and the `actor` (int), `sentence`, `emotion_code` and `level` its name carries."""
    table = pd.read_csv(path or cremad_index_dir() / INDEX_FILE, dtype={"path": str, "sha256": str, "size": "int64"})
    fields = table["path"].str.extract(r"^VideoFlash/((\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})\.flv)$")
    if fields.isna().any(axis=None):
        raise InputError("the CREMA-D index has rows that are not VideoFlash/<actor>_<sentence>_<EMO>_<level>.flv")
    table["file"], table["actor"] = fields[0], fields[1].astype(int)
    table["sentence"], table["emotion_code"], table["level"] = fields[2], fields[3], fields[4]
    return table


def _checked_codes(given: Iterable | None, valid: range | Iterable[str], what: str, convert: Callable) -> list | None:
    """`given` through `convert` (None: all) if every code is among `valid`, else an InputError listing them."""
    if given is None:
        return None
    given = [convert(code) for code in given]
    unknown = [code for code in given if code not in valid]
    if unknown:
        shown = f"{valid.start}..{valid.stop - 1}" if isinstance(valid, range) else ", ".join(valid)
        raise InputError(f"unknown CREMA-D {what} code(s) {', '.join(map(str, unknown))}; valid: {shown}")
    return given


def select_clips(
    index: pd.DataFrame,
    actors: Iterable[int] | None = None,
    emotions: Iterable[str] | None = None,
    sentences: Iterable[str] | None = None,
) -> pd.DataFrame:
    """The rows of `index` whose actor, emotion code and sentence code are among those given (None: all).

    Codes are CREMA-D's: actors 1001..1091, emotions ANG DIS FEA HAP NEU SAD, sentences IEO TIE …
    (upper case; lower case is accepted). An unknown code, or a selection with no clip, is an InputError.
    """
    wanted = {
        "actor": _checked_codes(actors, CREMAD_ACTORS, "actor", int),
        "emotion_code": _checked_codes(emotions, CREMAD_EMOTIONS, "emotion", lambda e: e.upper()),
        "sentence": _checked_codes(sentences, CREMAD_SENTENCES, "sentence", lambda s: s.upper()),
    }
    keep = pd.Series(True, index=index.index)
    for column, codes in wanted.items():
        if codes is not None:
            keep &= index[column].isin(codes)
    selection = index[keep].reset_index(drop=True)
    if selection.empty:
        raise InputError("the CREMA-D selection holds no clip (not every actor said every sentence in every emotion)")
    return selection


def describe_selection(selection: pd.DataFrame) -> str:
    """'N clips of A actors, X MB' (sizes from the index), said before anything is downloaded."""
    megabytes = selection["size"].sum() / 1e6
    size = f"{megabytes / 1000:.2f} GB" if megabytes >= 1000 else f"{megabytes:.1f} MB"
    return f"{len(selection):,} CREMA-D clip(s) of {selection['actor'].nunique()} actor(s), {size}"


def fetch_clip(clip: pd.Series, base_url: str, dest: Path, stop: threading.Event | None = None) -> ClipResult:
    """Download one clip of the index into `dest/VideoFlash/`, verified (see `download_file`).

    A failure becomes a `failed` result, never an exception, so the other clips go on.
    """
    target = dest / clip["path"]
    if stop is not None and stop.is_set():
        return ClipResult(clip["file"], "not started", "the run was interrupted first")
    if target.exists():
        try:
            verify_sha256(target, clip["sha256"], clip["size"])
            return ClipResult(clip["file"], "skipped", "already downloaded and verified")
        except DownloadError:
            pass  # moved to <name>.corrupt: download it again
    url = base_url.rstrip("/") + "/" + clip["path"]
    try:
        download_file(
            url,
            target,
            chunk=CLIP_CHUNK_BYTES,
            progress=False,
            expected_sha256=clip["sha256"],
            expected_size=int(clip["size"]),
            stop=stop,
        )
    except DownloadError as exc:
        if exc.status == "stopped":
            return ClipResult(clip["file"], "interrupted", "stopped by Ctrl-C; the next run resumes its .part")
        if exc.status == "refused":
            return ClipResult(clip["file"], "failed", f"{exc}; {other_sources_advice()}")
        return ClipResult(clip["file"], "failed", str(exc))
    return ClipResult(clip["file"], "ok", f"{int(clip['size']):,} bytes, size and sha256 verified")


def other_sources_advice() -> str:
    """Which sources to pass with `--base-url` when the one used cannot serve the clips."""
    named = "; ".join(f"{name}: --base-url {url}" for name, url in CREMAD_SOURCES)
    return (
        f"pass a source that serves the clips with --base-url (a URL whose VideoFlash/<clip>.flv are the clips): "
        f"{named}; or a copy of your own (the maintainers also publish CREMA-D at {CREMAD_RELEASES_URL})"
    )


def choose_source(sources: Sequence[tuple[str, str]], clip: pd.Series) -> str:
    """The base URL of the first source that may serve `clip` (`probe_url`), printing why each one before it
    was skipped; a DownloadError listing every source's answer when none can."""
    answers = []
    for name, base in sources:
        problem = probe_url(base.rstrip("/") + "/" + clip["path"])
        if problem is None:
            return base
        answers.append(f"{name} ({base}) answered with {problem}")
        print(f"skipping {answers[-1]}")
    raise DownloadError(
        f"no CREMA-D source can serve {clip['path']}: " + "; ".join(answers) + f"; {other_sources_advice()}"
    )


def download_cremad(
    dest: Path,
    actors: Iterable[int] | None = None,
    emotions: Iterable[str] | None = None,
    sentences: Iterable[str] | None = None,
    base_url: str | None = None,
    workers: int = DEFAULT_WORKERS,
    progress: bool = True,
    sources: Sequence[tuple[str, str]] = CREMAD_SOURCES,
) -> pd.DataFrame:
    """Download the selected CREMA-D clips into `dest/VideoFlash/`; the report, also written to
    `dest/download_report.csv` (`file, status, reason`).

    `base_url` names the source, else the first of `sources` that serves the clips (`choose_source`).
    Run it again to resume: verified clips are skipped, interrupted ones continue from their `.part`.
    Ctrl-C (or SIGTERM) stops at once: the report is written, then KeyboardInterrupt is raised.
    """
    if int(workers) < 1:
        raise DownloadError(f"workers must be at least 1, got {workers}")
    dest = Path(dest)
    selection = select_clips(cremad_index(), actors, emotions, sentences)
    missing = [clip for _, clip in selection.iterrows() if not (dest / clip["path"]).exists()]
    if base_url is None:
        base_url = choose_source(sources, missing[0]) if missing else sources[0][1]
    print(f"selected {describe_selection(selection)}, from {base_url} into {dest / CLIP_FOLDER}")
    (dest / CLIP_FOLDER).mkdir(parents=True, exist_ok=True)
    for name in BESIDE_CLIPS:
        shutil.copy2(cremad_index_dir() / name, dest / name)
    results, stop = _fetch_all(selection, base_url, dest, int(workers), progress)
    report = pd.DataFrame(results, columns=["file", "status", "reason"]).sort_values("file", ignore_index=True)
    report.to_csv(dest / REPORT_FILE, index=False)
    if stop.is_set():
        raise KeyboardInterrupt(f"CREMA-D download interrupted; report: {dest / REPORT_FILE}")
    return report


# How often the main thread looks up from its wait for finished clips (a stop request is seen this fast).
POLL_S = 0.2


def _fetch_all(
    selection: pd.DataFrame, base_url: str, dest: Path, workers: int, progress: bool
) -> tuple[list[ClipResult], threading.Event]:
    """Fetch every clip of `selection`, `workers` at a time; the results, and the event that Ctrl-C sets.

    At most 2 × `workers` clips are queued at a time, so that on Ctrl-C nothing new starts and the transfers in
    flight stop after their next read; the clips never queued are reported `not started`."""
    stop = threading.Event()
    results: list[ClipResult] = []
    queue = deque(clip for _, clip in selection.iterrows())
    with (
        stop_on_signals(stop),
        ThreadPoolExecutor(max_workers=workers) as pool,
        tqdm(
            total=int(selection["size"].sum()), unit="B", unit_scale=True, desc="CREMA-D", disable=not progress
        ) as bar,
    ):
        in_flight: dict[Future, pd.Series] = {}
        while True:
            while queue and len(in_flight) < 2 * workers and not stop.is_set():
                clip = queue.popleft()
                in_flight[pool.submit(fetch_clip, clip, base_url, dest, stop)] = clip
            if not in_flight:
                break
            done, _ = wait(in_flight, timeout=POLL_S, return_when=FIRST_COMPLETED)
            for future in done:
                results.append(future.result())
                bar.update(int(in_flight.pop(future)["size"]))
    results += [ClipResult(clip["file"], "not started", "the run was interrupted first") for clip in queue]
    return results, stop


def report_summary(report: pd.DataFrame, dest: Path) -> str:
    """One line per status with its count, and each failed clip with its reason."""
    counts = report["status"].value_counts()
    shown = REPORT_STATUSES + tuple(s for s in STOPPED_STATUSES if counts.get(s, 0))
    lines = [", ".join(f"{counts.get(s, 0)} {s}" for s in shown) + f" (report: {Path(dest) / REPORT_FILE})"]
    lines += [f"  failed {row.file}: {row.reason}" for row in report[report["status"] == "failed"].itertuples()]
    return "\n".join(lines)


def downloaded_paths(report: pd.DataFrame, dest: Path, strict: bool = False) -> list[Path]:
    """The verified clips of a download report (ok or skipped); with `strict`, a DownloadError when any failed."""
    failed = report[report["status"] == "failed"]
    if strict and len(failed):
        raise DownloadError(f"{len(failed)} CREMA-D clip(s) failed:\n{report_summary(report, dest)}")
    done = report[report["status"].isin(("ok", "skipped"))]
    return [Path(dest) / CLIP_FOLDER / name for name in done["file"]]


SAVEE_URL = "http://kahlan.eps.surrey.ac.uk/savee/"
MEAD_URL = "https://wywu.github.io/projects/MEAD/MEAD.html"

# Where the datasets that need registration come from and the layout their indexer expects.
MANUAL_DATASETS: dict[str, str] = {
    "savee": (
        f"SAVEE cannot be downloaded automatically{{where}}: it needs registration at {SAVEE_URL} "
        "(Surrey Audio-Visual Expressed Emotion, University of Surrey). Unpack the AudioVisualClip part as "
        "<root>/<DC|JE|JK|KL>/<code><nn>.avi with codes a, d, f, h, n, sa, su (e.g. KL/sa03.avi), "
        "then index it with fer_utils.data.corpora.index_savee(root)."
    ),
    "mead": (
        f"MEAD cannot be downloaded automatically{{where}}: request access via {MEAD_URL} "
        "(Wang et al., ECCV 2020). Unpack each subject's video archive as "
        "<root>/<M003|W009|...>/video/<view>/<emotion>/level_<n>/<nnn>.mp4 "
        "(e.g. M003/video/front/angry/level_1/001.mp4), then index it with fer_utils.data.corpora.index_mead(root)."
    ),
}


def download_dataset(name: str, dest: Path, **kwargs) -> list[Path]:
    """Download dataset `name`, returning the paths (RAVDESS: its archives; CREMA-D: its clips, DownloadError
    when any failed); SAVEE and MEAD raise an InputError with their instructions."""
    key = name.lower()
    if key == "ravdess":
        return download_ravdess(dest, **kwargs)
    if key == "cremad":
        return downloaded_paths(download_cremad(dest, **kwargs), dest, strict=True)
    if key in MANUAL_DATASETS:
        raise InputError(MANUAL_DATASETS[key].format(where=f" at {dest}"))
    raise InputError(f"unknown dataset {name!r}; choose one of {', '.join(DOWNLOADABLE_DATASETS)}")
