"""The datasets' downloads (`download_dataset`, `python -m fer_utils download`): RAVDESS from Zenodo, its zip
archives extracted safely (`safe_extract`), and CREMA-D from its Git LFS store or a mirror.

Files go to `<name>.part` (resumed by Range requests) and are renamed once verified. GitHub refuses CREMA-D's LFS
media since 2025 (CREMA-D issue #15), so `CREMAD_SOURCES` are probed in order.
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
from contextlib import suppress
from itertools import chain
from pathlib import Path, PurePosixPath
from typing import Literal

import pandas as pd
import requests
import urllib3
from tqdm.auto import tqdm

from fer_utils.assets import cremad_index_dir
from fer_utils.data.corpora import CREMAD_ACTORS, CREMAD_EMOTIONS, CREMAD_SENTENCES, RAVDESS_ACTORS
from fer_utils.errors import DownloadError, InputError
from fer_utils.interrupts import Stopped, signal_of, stop_on_signals
from fer_utils.registry import DOWNLOADABLE_DATASETS
from fer_utils.storage.atomic import move

ZENODO_URL = "https://zenodo.org/records/1188976/files"
ZENODO_RECORD_API = "https://zenodo.org/api/records/1188976"
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60.0

# What a server sends instead of the file: a Git LFS pointer, or a refusal naming a budget or quota (GitHub's).
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/"
QUOTA_WORDS = ("budget", "quota", "bandwidth", "exceeded")
QUOTA_STATUSES = (402, 403, 429, 509)
SNIFF_BYTES = 512

# Zip-bomb limits on what members expand to (RAVDESS's zips hold already-compressed mp4: a ratio of about 1).
MAX_EXPANSION = 20.0
MAX_EXTRACT_BYTES = 16 << 30


def _member_problem(info: zipfile.ZipInfo, root: Path) -> str | None:
    """Why a zip member must not be extracted into `root`, or None if safe."""
    name, kind = info.filename, stat.S_IFMT(info.external_attr >> 16)  # kind 0: no unix type recorded
    path, target = PurePosixPath(name.replace("\\", "/")), (root / name).resolve()
    problems = {  # the first found is said
        "is an absolute path": path.is_absolute() or (len(name) > 1 and name[1] == ":"),  # or a drive
        "has '..' in its path": ".." in path.parts,
        "is a symbolic link": kind == stat.S_IFLNK,
        "is not a regular file or folder (hard link, device or fifo)": kind not in (0, stat.S_IFREG, stat.S_IFDIR),
        "lands outside the target folder": root != target and root not in target.parents,
    }
    return next((problem for problem, found in problems.items() if found), None)


def safe_extract(
    archive: Path, dest: Path, *, max_expansion: float = MAX_EXPANSION, max_total_bytes: int = MAX_EXTRACT_BYTES
) -> list[Path]:
    """Extract a zip into `dest`, returning the files; DownloadError, nothing written, if a member is unsafe, fails
    its CRC or declares more than `max_expansion` × the archive's size or `max_total_bytes` (a zip bomb)."""
    archive, dest = Path(archive), Path(dest)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DownloadError(f"{archive} is not a readable zip archive: {exc}", status="unreadable") from exc
    with zf:
        root, infos = dest.resolve(), zf.infolist()
        for info in infos:
            if problem := _member_problem(info, root):
                raise DownloadError(f"refusing to extract {archive.name}: member {info.filename!r} {problem}")
        total, size = sum(info.file_size for info in infos), archive.stat().st_size
        if total > (limit := min(int(max_expansion * size), int(max_total_bytes))):
            capped = limit == int(max_total_bytes)
            which = f"the hard cap of {limit:,}" if capped else f"{max_expansion:g} × the archive's {size:,}"
            raise DownloadError(
                f"refusing to extract {archive.name}: its {len(infos)} member(s) expand to {total:,} bytes, past the "
                f"limit of {limit:,} bytes ({which} bytes); a zip bomb?"
            )
        if (bad := zf.testzip()) is not None:
            raise DownloadError(f"{archive.name} is corrupt: member {bad!r} fails its CRC check", status="unreadable")
        dest.mkdir(parents=True, exist_ok=True)
        written = [Path(zf.extract(info, root)) for info in infos]
    return [p for p in written if p.is_file()]


def zip_problem(path: Path) -> str | None:
    """Why `path` is no readable zip, or None; only its central directory (at the end) is read: cheap."""
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


def _blocks(response: requests.Response, chunk: int) -> Iterator[bytes]:
    """The body in blocks of at most `chunk` bytes as they arrive (a stop is seen even from a slow server)."""
    return iter(lambda: response.raw.read1(chunk, decode_content=True), b"")


def probe_url(url: str) -> str | None:
    """What is wrong with `url` as a source (unreachable, HTTP error, `answer_problem`) by its first bytes, or None."""
    try:
        with requests.get(url, headers={"Range": f"bytes=0-{SNIFF_BYTES - 1}"}, stream=True, timeout=TIMEOUT_S) as r:
            head = next(_blocks(r, SNIFF_BYTES), b"")
            problem = answer_problem(r.status_code, r.headers.get("Content-Type", ""), head)
            return problem or (f"HTTP {r.status_code} {r.reason}" if r.status_code >= 400 else None)
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        return f"unreachable ({exc})"


def file_digest(path: Path, algorithm: str = "md5") -> str:
    """Hex digest (`algorithm` of hashlib: md5, sha256 …) of a file, streamed."""
    with Path(path).open("rb") as fh:
        return hashlib.file_digest(fh, algorithm).hexdigest()


def _quarantine(path: Path) -> Path:
    """Move a file that failed verification to `<name>.corrupt` (replacing an older one)."""
    move(path, bad := path.with_name(path.name + ".corrupt"))
    return bad


def verify_file(
    path: Path, expected: str | None, algorithm: str, size: int | None, missing_checksum: Literal["warn", "error"]
) -> str:
    """Check `path`'s `size` (when given: cheap, first) and `algorithm` digest against `expected`, returning the
    digest; a mismatch is quarantined (DownloadError); no `expected` warns or raises as `missing_checksum` says."""
    if size is not None and (got := path.stat().st_size) != int(size):
        bad = _quarantine(path)
        raise DownloadError(f"size mismatch for {path.name}: expected {int(size):,} bytes, got {got:,}; moved to {bad}")
    actual = file_digest(path, algorithm)
    if expected is None:
        message = f"no known {algorithm} for {path.name} (computed {actual}); not verified against the publisher"
        if missing_checksum == "error":
            raise DownloadError(f"{message}; pass the {algorithm} or missing_checksum='warn'")
        warnings.warn(message, DownloadWarning, stacklevel=2)
    elif actual.lower() != expected.lower():
        bad = _quarantine(path)
        raise DownloadError(f"{algorithm} mismatch for {path.name}: expected {expected}, got {actual}; moved to {bad}")
    return actual


def _too_long(url: str, part: Path, expected_size: int, got: str) -> DownloadError:
    """A server sending more than `expected_size`: `part` (not the file's bytes) is moved aside for a fresh start."""
    kept = f"moved to {_quarantine(part)}" if part.exists() else "nothing written"
    return DownloadError(
        f"{url} sent {got} than the expected {expected_size:,} bytes: stopped, {kept}; "
        "the source does not serve this file (pass another with --base-url)"
    )


def _fetch(
    url: str, part: Path, chunk: int, progress: bool, expected_size: int | None, stop: threading.Event | None
) -> None:
    """Append the rest of `url` to `part` (a Range request); DownloadError when `stop` is set (`part` kept), past
    `expected_size` bytes, or (status `refused`, nothing written) for an answer that is not the file."""
    offset = part.stat().st_size if part.exists() else 0
    limit = float("inf") if expected_size is None else expected_size
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        with requests.get(url, headers=headers, stream=True, timeout=TIMEOUT_S) as response:
            if response.status_code == 416:  # the .part is already complete
                return
            blocks = _blocks(response, chunk)
            first = next(blocks, b"")
            if problem := answer_problem(response.status_code, response.headers.get("Content-Type", ""), first):
                raise DownloadError(f"{url} answered with {problem}", status="refused")
            response.raise_for_status()
            if response.status_code != 206:  # no Range asked, or the server ignored it: start over
                offset = 0
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None else None
            if total is not None and total > limit:
                raise _too_long(url, part, expected_size, f"a Content-Length of {total:,} bytes, more")
            desc = part.name.removesuffix(".part")
            with (
                part.open("ab" if offset else "wb") as fh,
                tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=desc, disable=not progress) as bar,
            ):
                for block in chain((first,), blocks):
                    if stop is not None and stop.is_set():
                        raise DownloadError("stopped on request", status="stopped")
                    if fh.tell() + len(block) > limit:  # fh.tell(): the bytes of `part` so far
                        fh.close()
                        raise _too_long(url, part, expected_size, "more")
                    bar.update(fh.write(block))
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise DownloadError(f"download of {url} failed ({exc}); run again to resume from {part}") from exc
    if total is not None and (size := part.stat().st_size) != total:
        raise DownloadError(f"download of {url} ended early: {size} of {total} bytes; run again to resume from {part}")


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
    """Download `url` to `dest` via a resumable `dest.part`, verified by sha256 (else md5) and size, then renamed;
    a file already at `dest` is only verified; a corrupt download is moved to `<dest>.part.corrupt`."""
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    algorithm, expected = ("md5", expected_md5) if expected_sha256 is None else ("sha256", expected_sha256)
    if dest.exists():
        verify_file(dest, expected, algorithm, expected_size, missing_checksum)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    _fetch(url, part, chunk, progress, expected_size, stop)
    verify_file(part, expected, algorithm, expected_size, missing_checksum)
    move(part, dest)
    return dest


def zenodo_md5s(record_api_url: str = ZENODO_RECORD_API) -> dict[str, str]:
    """The md5 of each file of a Zenodo record by name, from its REST API (either shape of `files` it has served)."""
    try:
        response = requests.get(record_api_url, timeout=TIMEOUT_S)
        response.raise_for_status()
        record = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise DownloadError(f"cannot read the checksums of {record_api_url}: {exc}") from exc
    files = record.get("files", []) if isinstance(record, dict) else []
    if isinstance(files, dict):  # InvenioRDM's `files.entries`: a list, or entries by name
        files = files.get("entries", [])
        files = files.values() if isinstance(files, dict) else files
    checksums = ((entry.get("key"), *str(entry.get("checksum", "")).partition(":")) for entry in files)
    md5s = {key: digest for key, algorithm, _, digest in checksums if key and algorithm == "md5" and digest}
    if not md5s:
        raise DownloadError(f"{record_api_url} lists no md5 checksums")
    return md5s


def quarantine_unreadable(archive: Path, problem: str) -> str:
    """Move an unreadable archive no md5 verified to `<name>.corrupt` (else every rerun would keep it), saying so."""
    bad = _quarantine(archive)
    return f"{archive.name} is not a readable zip archive ({problem}) and no md5 is known to verify it: moved to {bad}"


def download_ravdess(
    dest: Path,
    actors: Iterable[int] = RAVDESS_ACTORS,
    base_url: str = ZENODO_URL,
    checksums: Mapping[str, str | None] | None = None,
    progress: bool = True,
    extract: bool = True,
    keep_archives: bool = True,
    missing_checksum: Literal["warn", "error"] = "warn",
    record_api: str | None = None,
) -> list[Path]:
    """Download RAVDESS's video speech archives of `actors` to `dest/archives/`, verified by md5 (`checksums`, else
    `record_api`), and extract them to `dest/Actor_XX/`; an unverified unreadable zip goes to `.corrupt`."""
    dest, actors = Path(dest), list(actors)
    if bad := [actor for actor in actors if int(actor) not in RAVDESS_ACTORS]:
        raise InputError(f"RAVDESS actors are 1..24, got {bad[0]}")
    names = [f"Video_Speech_Actor_{int(actor):02d}.zip" for actor in actors]  # Zenodo's file names
    if record_api is None and base_url == ZENODO_URL:
        record_api = ZENODO_RECORD_API
    if checksums is None:
        try:
            checksums = zenodo_md5s(record_api) if record_api else {}
        except DownloadError as exc:
            checksums = {}
            warnings.warn(f"{exc}; archives without a known md5 follow missing_checksum", DownloadWarning, stacklevel=2)
    archives = []
    for name in names:
        target, md5 = dest / "archives" / name, checksums.get(name)
        if md5 is None and target.exists() and (stale := zip_problem(target)):  # left by an earlier run
            warnings.warn(
                f"{quarantine_unreadable(target, stale)}; downloading it again", DownloadWarning, stacklevel=2
            )
        url = f"{base_url.rstrip('/')}/{name}?download=1"
        archive = download_file(url, target, md5, progress=progress, missing_checksum=missing_checksum)
        try:
            if md5 is None and (problem := zip_problem(archive)):
                raise DownloadError(problem, status="unreadable")
            if extract:
                safe_extract(archive, dest)
        except DownloadError as exc:
            # an unsafe member, or a verified archive (the publisher's own): a new download would be the same
            if exc.status != "unreadable" or md5 is not None:
                raise
            raise DownloadError(quarantine_unreadable(archive, str(exc)) + "; run again to download it afresh") from exc
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
OTHER_SOURCES_ADVICE = (
    "pass a source that serves the clips with --base-url (a URL whose VideoFlash/<clip>.flv are the clips): "
    + "; ".join(f"{name}: --base-url {url}" for name, url in CREMAD_SOURCES)
    + f"; or a copy of your own (the maintainers also publish CREMA-D at {CREMAD_RELEASES_URL})"
)
# Copied beside the clips, so that the downloaded folder carries its license and its actors' demographics.
BESIDE_CLIPS = ("LICENSE.txt", "VideoDemographics.csv", "SentenceFilenames.csv")
CLIP_FOLDER = "VideoFlash"
REPORT_FILE = "download_report.csv"
DEFAULT_WORKERS = 8
# Clips are about 330 KB: read in 64 KiB blocks, so that an interrupted transfer keeps what it got for the resume.
CLIP_CHUNK_BYTES = 64 << 10
NOT_STARTED = ("not started", "the run was interrupted first")
POLL_S = 0.2  # how often the main thread looks up from its wait for finished clips (and sees a stop request)


def cremad_index(path: Path | None = None) -> pd.DataFrame:
    """The shipped CREMA-D index (`path`, `sha256`, `size`) plus the `file`, `actor`, `sentence`, `emotion_code`
    and `level` of each clip's name; InputError for a row that is no VideoFlash clip."""
    table = pd.read_csv(
        path or cremad_index_dir() / "videoflash_lfs.csv", dtype={"path": str, "sha256": str, "size": "int64"}
    )
    fields = table["path"].str.extract(r"^VideoFlash/((\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})\.flv)$")
    if fields.isna().any(axis=None):
        raise InputError("the CREMA-D index has rows that are not VideoFlash/<actor>_<sentence>_<EMO>_<level>.flv")
    table["file"], table["actor"] = fields[0], fields[1].astype(int)
    table["sentence"], table["emotion_code"], table["level"] = fields[2], fields[3], fields[4]
    return table


def _matching(
    column: pd.Series, given: Iterable | None, valid: range | Iterable[str], what: str, convert: Callable
) -> pd.Series:
    """Rows of `column` holding a code `given` (None: all); InputError listing the `valid` codes for an unknown one."""
    if given is None:
        return pd.Series(True, index=column.index)
    given = [convert(code) for code in given]
    if unknown := [code for code in given if code not in valid]:
        shown = f"{valid.start}..{valid.stop - 1}" if isinstance(valid, range) else ", ".join(valid)
        raise InputError(f"unknown CREMA-D {what} code(s) {', '.join(map(str, unknown))}; valid: {shown}")
    return column.isin(given)


def select_clips(
    index: pd.DataFrame,
    actors: Iterable[int] | None = None,
    emotions: Iterable[str] | None = None,
    sentences: Iterable[str] | None = None,
) -> pd.DataFrame:
    """The rows of `index` whose actor, emotion and sentence codes (CREMA-D's: 1001..1091, ANG DIS …, IEO TIE …;
    lower case accepted) are among those given (None: all); an unknown code, or no clip, is an InputError."""
    keep = (
        _matching(index["actor"], actors, CREMAD_ACTORS, "actor", int)
        & _matching(index["emotion_code"], emotions, CREMAD_EMOTIONS, "emotion", str.upper)
        & _matching(index["sentence"], sentences, CREMAD_SENTENCES, "sentence", str.upper)
    )
    selection = index[keep].reset_index(drop=True)
    if selection.empty:
        raise InputError("the CREMA-D selection holds no clip (not every actor said every sentence in every emotion)")
    return selection


def describe_selection(selection: pd.DataFrame) -> str:
    """'N clips of A actors, X MB' (sizes from the index), said before anything is downloaded."""
    megabytes = selection["size"].sum() / 1e6
    size = f"{megabytes / 1000:.2f} GB" if megabytes >= 1000 else f"{megabytes:.1f} MB"
    return f"{len(selection):,} CREMA-D clip(s) of {selection['actor'].nunique()} actor(s), {size}"


def fetch_clip(clip: pd.Series, base_url: str, dest: Path, stop: threading.Event | None = None) -> tuple[str, str, str]:
    """(file, status, reason) of one clip downloaded into `dest/VideoFlash/`: ok, skipped, interrupted, not started
    or failed, never an exception, so that the other clips go on."""
    name, target, size, sha256 = clip["file"], dest / clip["path"], int(clip["size"]), clip["sha256"]
    if stop is not None and stop.is_set():
        return name, *NOT_STARTED
    with suppress(DownloadError):  # a corrupt one is moved to <name>.corrupt: download it again
        if target.exists() and verify_file(target, sha256, "sha256", size, "error"):
            return name, "skipped", "already downloaded and verified"
    url = base_url.rstrip("/") + "/" + clip["path"]
    try:
        download_file(
            url, target, chunk=CLIP_CHUNK_BYTES, progress=False, expected_sha256=sha256, expected_size=size, stop=stop
        )
    except DownloadError as exc:
        if exc.status == "stopped":
            return name, "interrupted", "stopped by Ctrl-C; the next run resumes its .part"
        return name, "failed", f"{exc}; {OTHER_SOURCES_ADVICE}" if exc.status == "refused" else str(exc)
    return name, "ok", f"{size:,} bytes, size and sha256 verified"


def choose_source(sources: Sequence[tuple[str, str]], clip: pd.Series) -> str:
    """The base URL of the first of `sources` that may serve `clip`, printing why each skipped; else DownloadError."""
    answers = []
    for name, base in sources:
        if (problem := probe_url(base.rstrip("/") + "/" + clip["path"])) is None:
            return base
        answers.append(f"{name} ({base}) answered with {problem}")
        print(f"skipping {answers[-1]}")
    raise DownloadError(f"no CREMA-D source can serve {clip['path']}: {'; '.join(answers)}; {OTHER_SOURCES_ADVICE}")


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
    """Download the selected CREMA-D clips, `workers` at a time, into `dest/VideoFlash/`, returning the report (also
    in `dest/download_report.csv`); Ctrl-C or SIGTERM stops at once, writes it, then raises KeyboardInterrupt."""
    if int(workers) < 1:
        raise DownloadError(f"workers must be at least 1, got {workers}")
    dest, workers = Path(dest), int(workers)
    selection = select_clips(cremad_index(), actors, emotions, sentences)
    queue = deque(clip for _, clip in selection.iterrows())
    missing = [clip for clip in queue if not (dest / clip["path"]).exists()]
    if base_url is None:
        base_url = choose_source(sources, missing[0]) if missing else sources[0][1]
    print(f"selected {describe_selection(selection)}, from {base_url} into {dest / CLIP_FOLDER}")
    (dest / CLIP_FOLDER).mkdir(parents=True, exist_ok=True)
    for name in BESIDE_CLIPS:
        shutil.copy2(cremad_index_dir() / name, dest / name)
    stop, results = threading.Event(), []
    with (
        stop_on_signals(stop),
        ThreadPoolExecutor(max_workers=workers) as pool,
        tqdm(
            total=int(selection["size"].sum()), unit="B", unit_scale=True, desc="CREMA-D", disable=not progress
        ) as bar,
    ):
        in_flight: dict[Future, pd.Series] = {}
        while in_flight or (queue and not stop.is_set()):
            while queue and len(in_flight) < 2 * workers and not stop.is_set():
                clip = queue.popleft()
                in_flight[pool.submit(fetch_clip, clip, base_url, dest, stop)] = clip
            done, _ = wait(in_flight, timeout=POLL_S, return_when=FIRST_COMPLETED)
            for future in done:
                results.append(future.result())
                bar.update(int(in_flight.pop(future)["size"]))
    results += [(clip["file"], *NOT_STARTED) for clip in queue]
    report = pd.DataFrame(results, columns=["file", "status", "reason"]).sort_values("file", ignore_index=True)
    report.to_csv(dest / REPORT_FILE, index=False)
    if stop.is_set():
        raise Stopped(signal_of(stop), f"CREMA-D download interrupted; report: {dest / REPORT_FILE}")
    return report


def report_summary(report: pd.DataFrame, dest: Path) -> str:
    """A line of counts per status, then one per failed clip with its reason."""
    counts = report["status"].value_counts()
    shown = ("ok", "skipped", "failed") + tuple(s for s in ("interrupted", "not started") if counts.get(s, 0))
    lines = [", ".join(f"{counts.get(s, 0)} {s}" for s in shown) + f" (report: {Path(dest) / REPORT_FILE})"]
    lines += [f"  failed {row.file}: {row.reason}" for row in report[report["status"] == "failed"].itertuples()]
    return "\n".join(lines)


# Where the datasets that need registration come from and the layout their indexer expects.
MANUAL_DATASETS: dict[str, str] = {
    "savee": (
        "SAVEE cannot be downloaded automatically{where}: it needs registration at http://kahlan.eps.surrey.ac.uk/"
        "savee/ (Surrey Audio-Visual Expressed Emotion, University of Surrey). Unpack the AudioVisualClip part as "
        "<root>/<DC|JE|JK|KL>/<code><nn>.avi with codes a, d, f, h, n, sa, su (e.g. KL/sa03.avi), "
        "then index it with fer_utils.data.corpora.index_savee(root)."
    ),
    "mead": (
        "MEAD cannot be downloaded automatically{where}: request access via https://wywu.github.io/projects/MEAD/"
        "MEAD.html (Wang et al., ECCV 2020). Unpack each subject's video archive as "
        "<root>/<M003|W009|...>/video/<view>/<emotion>/level_<n>/<nnn>.mp4 "
        "(e.g. M003/video/front/angry/level_1/001.mp4), then index it with fer_utils.data.corpora.index_mead(root)."
    ),
}


def download_dataset(name: str, dest: Path, **kwargs) -> list[Path]:
    """RAVDESS's archives or CREMA-D's clips downloaded (DownloadError if one failed); InputError for SAVEE, MEAD."""
    key = name.lower()
    if key == "ravdess":
        return download_ravdess(dest, **kwargs)
    if key == "cremad":
        report = download_cremad(dest, **kwargs)
        if (failed := (report["status"] == "failed").sum()) > 0:
            raise DownloadError(f"{failed} CREMA-D clip(s) failed:\n{report_summary(report, dest)}")
        return [Path(dest) / CLIP_FOLDER / f for f in report.loc[report["status"].isin(("ok", "skipped")), "file"]]
    if key in MANUAL_DATASETS:
        raise InputError(MANUAL_DATASETS[key].format(where=f" at {dest}"))
    raise InputError(f"unknown dataset {name!r}; choose one of {', '.join(DOWNLOADABLE_DATASETS)}")
