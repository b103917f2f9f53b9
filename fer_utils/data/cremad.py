"""CREMA-D from its official Git LFS store: the shipped index, a selection of it, and its verified download.

CREMA-D (Cao et al. 2014; 7,442 video clips of 91 actors in 6 emotions; ODbL 1.0 / DbCL 1.0) keeps
its media in Git LFS in CheyneyComputerScience/CREMA-D. The package ships what that repository's git
tree says about each `VideoFlash/*.flv` clip (`assets/cremad_index/videoflash_lfs.csv`: path, the
SHA-256 of its bytes, its size), its actors' demographics, its sentence table and its license.
`download_cremad` fetches a selection (actors × emotions × sentences) in parallel, each file through
`download.download_file`: into `<name>.part`, resumed with an HTTP Range request, checked against its
size and SHA-256, and only then renamed into place, so a clip under its final name is always a verified
one. A clip that fails is recorded in `download_report.csv` and the others go on; Ctrl-C stops the
run at once, keeps the `.part` files and writes the report.

Sources (`CREMAD_SOURCES`, tried in order, each asked for one clip's first bytes before anything is
downloaded): GitHub's LFS media endpoint at the pinned commit, then the maintainers' GitLab mirror.
The repository's LFS budget was exhausted in 2025 (CheyneyComputerScience/CREMA-D issue #15: GitHub
then refuses the media, "This repository exceeded its LFS budget"); its maintainers point to the
mirror and to the repository's releases (whose archives hold the clips' LFS pointers, not the clips).
A source that answers over its quota, with an LFS pointer or with an HTML page is skipped, saying so;
`base_url` (`--base-url`) names one source instead. Every clip is verified against the shipped
index's SHA-256 whichever source served it.
"""

from __future__ import annotations

import shutil
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from fer_utils.assets import cremad_index_dir
from fer_utils.data.corpora import CREMAD_ACTORS, CREMAD_EMOTIONS, CREMAD_SENTENCES
from fer_utils.data.download import download_file, probe_url, verify_sha256
from fer_utils.errors import DownloadError, InputError
from fer_utils.interrupts import stop_on_signals

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
STATUSES = ("ok", "skipped", "failed")
# Statuses of an interrupted run: in flight when it stopped (its .part kept), or never started.
STOPPED_STATUSES = ("interrupted", "not started")
DEFAULT_WORKERS = 8
# Clips are about 330 KB: read in 64 KiB blocks, so that an interrupted transfer keeps what it got for the resume.
CLIP_CHUNK_BYTES = 64 << 10


@dataclass(frozen=True)
class ClipResult:
    """What became of one clip: `status` ok (downloaded and verified), skipped (already there, verified), failed,
    or after Ctrl-C interrupted (its `.part` kept) or not started."""

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


def _checked_codes(given: Iterable[object] | None, valid: range | Iterable[str], what: str) -> list | None:
    """`given` (None: all) if every code is among `valid`, else an InputError that lists the valid ones."""
    if given is None:
        return None
    given = list(given)
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
    actors = _checked_codes(None if actors is None else [int(a) for a in actors], CREMAD_ACTORS, "actor")
    emotions = _checked_codes(None if emotions is None else [e.upper() for e in emotions], CREMAD_EMOTIONS, "emotion")
    sentences = _checked_codes(
        None if sentences is None else [s.upper() for s in sentences], CREMAD_SENTENCES, "sentence"
    )
    keep = pd.Series(True, index=index.index)
    for column, codes in (("actor", actors), ("emotion_code", emotions), ("sentence", sentences)):
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
    """Download one clip of the index into `dest/VideoFlash/`, verified (see `download.download_file`).

    A verified file already there is skipped; one that fails verification is moved aside
    (`.corrupt`) and downloaded again. A failure becomes a `failed` result, never an exception; a
    transfer stopped by `stop` is `interrupted`, its `.part` kept.
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
    """The base URL of the first source whose answer for `clip` may be the clip (`download.probe_url` reads
    its first bytes), printing why each one before it was skipped; a DownloadError listing every source's
    answer when none can serve it."""
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
    """Download the selected CREMA-D clips into `dest/VideoFlash/`, ready for `index_dataset("cremad", ...)`.

    Prints the selection's clip count and size first, picks the first of `sources` that serves the clips
    (`choose_source`; `base_url` names the one source to use instead), fetches `workers` clips at a time
    under one progress bar, copies the license, demographics and sentence table into `dest`, and writes
    `dest/download_report.csv` (`file, status, reason`; status ok, skipped or failed), which it returns.
    Run it again to resume: verified clips are skipped, interrupted ones continue from their `.part`.
    Ctrl-C (or SIGTERM) stops at once: the transfers in flight keep their `.part`, nothing new starts, the
    report is written (interrupted and not started clips included) and KeyboardInterrupt is raised.
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

    At most 2 × `workers` clips are queued in the pool at a time. On Ctrl-C nothing new is queued and the
    transfers in flight stop after their next read (`download._blocks`), so the run ends within a moment
    instead of working through the selection; the clips never queued are reported `not started`."""
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
    shown = STATUSES + tuple(s for s in STOPPED_STATUSES if counts.get(s, 0))
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
