"""CREMA-D from its official Git LFS store: the shipped index, a selection of it, and its verified download.

CREMA-D (Cao et al. 2014; 7,442 video clips of 91 actors in 6 emotions; ODbL 1.0 / DbCL 1.0) keeps
its media in Git LFS in CheyneyComputerScience/CREMA-D. The package ships what that repository's git
tree says about each `VideoFlash/*.flv` clip (`assets/cremad_index/videoflash_lfs.csv`: path, the
SHA-256 of its bytes, its size), its actors' demographics, its sentence table and its license.
`download_cremad` fetches a selection (actors × emotions × sentences) from GitHub's LFS media endpoint
(or a mirror laid out the same way) in parallel, each file through `download.download_file`: into
`<name>.part`, resumed with an HTTP Range request, checked against its size and SHA-256, and only
then renamed into place, so a clip under its final name is always a verified one. A clip that fails
is recorded in `download_report.csv` and the others go on.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from fer_utils.assets import cremad_index_dir
from fer_utils.data import CREMAD_ACTORS, CREMAD_EMOTIONS, CREMAD_SENTENCES
from fer_utils.download import download_file, verify_sha256
from fer_utils.errors import DatasetError, DownloadError

# The commit of CheyneyComputerScience/CREMA-D the shipped index was read from (assets/cremad_index/README.md).
CREMAD_COMMIT = "1658cd342dff90010aa843eaeebd53610a08b1dc"
CREMAD_MEDIA_URL = f"https://media.githubusercontent.com/media/CheyneyComputerScience/CREMA-D/{CREMAD_COMMIT}/"
INDEX_FILE = "videoflash_lfs.csv"
# Copied beside the clips, so that the downloaded folder carries its license and its actors' demographics.
BESIDE_CLIPS = ("LICENSE.txt", "VideoDemographics.csv", "SentenceFilenames.csv")
CLIP_FOLDER = "VideoFlash"
REPORT_FILE = "download_report.csv"
STATUSES = ("ok", "skipped", "failed")
DEFAULT_WORKERS = 8
# Clips are about 330 KB: read in 64 KiB blocks, so that an interrupted transfer keeps what it got for the resume.
CLIP_CHUNK_BYTES = 64 << 10


@dataclass(frozen=True)
class ClipResult:
    """What became of one clip: `status` ok (downloaded and verified), skipped (already there, verified) or failed."""

    file: str
    status: str
    reason: str


def cremad_index(path: Path | None = None) -> pd.DataFrame:
    """The shipped index of CREMA-D's clips: `path` (`VideoFlash/<name>.flv`), `sha256`, `size`, plus the
    `file` name and the `actor` (int), `sentence`, `emotion_code` and `level` its name carries."""
    table = pd.read_csv(path or cremad_index_dir() / INDEX_FILE, dtype={"path": str, "sha256": str, "size": "int64"})
    fields = table["path"].str.extract(r"^VideoFlash/((\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})\.flv)$")
    if fields.isna().any(axis=None):
        raise DatasetError("the CREMA-D index has rows that are not VideoFlash/<actor>_<sentence>_<EMO>_<level>.flv")
    table["file"], table["actor"] = fields[0], fields[1].astype(int)
    table["sentence"], table["emotion_code"], table["level"] = fields[2], fields[3], fields[4]
    return table


def _checked_codes(given: Iterable[object] | None, valid: range | Iterable[str], what: str) -> list | None:
    """`given` (None: all) if every code is among `valid`, else a DatasetError that lists the valid ones."""
    if given is None:
        return None
    given = list(given)
    unknown = [code for code in given if code not in valid]
    if unknown:
        shown = f"{valid.start}..{valid.stop - 1}" if isinstance(valid, range) else ", ".join(valid)
        raise DatasetError(f"unknown CREMA-D {what} code(s) {', '.join(map(str, unknown))}; valid: {shown}")
    return given


def select_clips(
    index: pd.DataFrame,
    actors: Iterable[int] | None = None,
    emotions: Iterable[str] | None = None,
    sentences: Iterable[str] | None = None,
) -> pd.DataFrame:
    """The rows of `index` whose actor, emotion code and sentence code are among those given (None: all).

    Codes are CREMA-D's: actors 1001..1091, emotions ANG DIS FEA HAP NEU SAD, sentences IEO TIE …
    (upper case; lower case is accepted). An unknown code, or a selection with no clip, is a DatasetError.
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
        raise DatasetError("the CREMA-D selection holds no clip (not every actor said every sentence in every emotion)")
    return selection


def describe_selection(selection: pd.DataFrame) -> str:
    """'N clips of A actors, X MB' (sizes from the index), said before anything is downloaded."""
    megabytes = selection["size"].sum() / 1e6
    size = f"{megabytes / 1000:.2f} GB" if megabytes >= 1000 else f"{megabytes:.1f} MB"
    return f"{len(selection):,} CREMA-D clip(s) of {selection['actor'].nunique()} actor(s), {size}"


def fetch_clip(clip: pd.Series, base_url: str, dest: Path) -> ClipResult:
    """Download one clip of the index into `dest/VideoFlash/`, verified (see `download.download_file`).

    A verified file already there is skipped; one that fails verification is moved aside
    (`.corrupt`) and downloaded again. A failure becomes a `failed` result, never an exception.
    """
    target = dest / clip["path"]
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
        )
    except DownloadError as exc:
        return ClipResult(clip["file"], "failed", str(exc))
    return ClipResult(clip["file"], "ok", f"{int(clip['size']):,} bytes, size and sha256 verified")


def copy_metadata(dest: Path) -> list[Path]:
    """Copy CREMA-D's license, demographics and sentence table from the shipped index into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(cremad_index_dir() / name, dest / name)) for name in BESIDE_CLIPS]


def download_cremad(
    dest: Path,
    actors: Iterable[int] | None = None,
    emotions: Iterable[str] | None = None,
    sentences: Iterable[str] | None = None,
    base_url: str = CREMAD_MEDIA_URL,
    workers: int = DEFAULT_WORKERS,
    progress: bool = True,
) -> pd.DataFrame:
    """Download the selected CREMA-D clips into `dest/VideoFlash/`, ready for `index_dataset("cremad", ...)`.

    Prints the selection's clip count and size first, fetches `workers` clips at a time under one
    progress bar, copies the license, demographics and sentence table into `dest`, and writes
    `dest/download_report.csv` (`file, status, reason`; status ok, skipped or failed), which it returns.
    Run it again to resume: verified clips are skipped, interrupted ones continue from their `.part`.
    """
    dest = Path(dest)
    selection = select_clips(cremad_index(), actors, emotions, sentences)
    print(f"selected {describe_selection(selection)}, from {base_url} into {dest / CLIP_FOLDER}")
    (dest / CLIP_FOLDER).mkdir(parents=True, exist_ok=True)
    copy_metadata(dest)
    results: list[ClipResult] = []
    with (
        ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool,
        tqdm(
            total=int(selection["size"].sum()), unit="B", unit_scale=True, desc="CREMA-D", disable=not progress
        ) as bar,
    ):
        futures = {pool.submit(fetch_clip, clip, base_url, dest): clip for _, clip in selection.iterrows()}
        for future in as_completed(futures):
            results.append(future.result())
            bar.update(int(futures[future]["size"]))
    report = pd.DataFrame(results, columns=["file", "status", "reason"]).sort_values("file", ignore_index=True)
    report.to_csv(dest / REPORT_FILE, index=False)
    return report


def report_summary(report: pd.DataFrame, dest: Path) -> str:
    """One line per status with its count, and each failed clip with its reason."""
    counts = report["status"].value_counts()
    lines = [", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES) + f" (report: {Path(dest) / REPORT_FILE})"]
    lines += [f"  failed {row.file}: {row.reason}" for row in report[report["status"] == "failed"].itertuples()]
    return "\n".join(lines)


def downloaded_paths(report: pd.DataFrame, dest: Path, strict: bool = False) -> list[Path]:
    """The verified clips of a download report (ok or skipped); with `strict`, a DownloadError when any failed."""
    failed = report[report["status"] == "failed"]
    if strict and len(failed):
        raise DownloadError(f"{len(failed)} CREMA-D clip(s) failed:\n{report_summary(report, dest)}")
    done = report[report["status"] != "failed"]
    return [Path(dest) / CLIP_FOLDER / name for name in done["file"]]
