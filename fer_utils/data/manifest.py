"""The preprocessing manifest (one row per sampled frame, CONTRACTS.md "Preprocessing manifest"): its columns and
statuses, reading and writing it, the frames a model can use, and what a finished run yielded.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from fer_utils.data.corpora import IMAGE_SUFFIXES, ROW_PATH
from fer_utils.data.media import media_size
from fer_utils.errors import MEDIA_STATUSES, InputError
from fer_utils.registry import NO_DETECTOR

MANIFEST_NAME = "manifest.csv"
# What an interrupted run lists: never manifest.csv, whose presence means that the folder is complete.
PARTIAL_MANIFEST_NAME = "manifest.partial.csv"
STATUSES: tuple[str, ...] = ("ok", "no_face", *MEDIA_STATUSES, "bad_name")
MANIFEST_COLUMNS: tuple[str, ...] = (
    *("dataset", "clip_id", "subject", "emotion", "source", "frame_index"),  # which frame
    *("detector", "x", "y", "w", "h", "n_faces", "status", "reason", "image", "split"),  # what came of it
)
INT_COLUMNS: tuple[str, ...] = ("frame_index", "x", "y", "w", "h", "n_faces")


def manifest_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """Rows as a manifest table: the fixed columns, nullable integers, empty strings for missing text."""
    table = pd.DataFrame(list(rows), columns=list(MANIFEST_COLUMNS))
    for column in INT_COLUMNS:
        table[column] = pd.array(table[column].tolist(), dtype="Int64")
    for column in set(MANIFEST_COLUMNS) - set(INT_COLUMNS):
        table[column] = table[column].fillna("").astype(str)
    return table


def csv_bytes(table: pd.DataFrame) -> bytes:
    """The table as CSV bytes (Unix newlines, no index)."""
    return table.to_csv(index=False, lineterminator="\n").encode("utf-8")


def read_manifest_csv(path: Path) -> pd.DataFrame:
    """A manifest (or part) CSV read back with the manifest's column types."""
    dtypes = {c: ("Int64" if c in INT_COLUMNS else str) for c in MANIFEST_COLUMNS}
    table = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values={c: [""] for c in INT_COLUMNS})
    missing = [c for c in MANIFEST_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"{path} is not a preprocessing manifest (missing columns: {', '.join(missing)})")
    return table[list(MANIFEST_COLUMNS)]


def load_manifest(out_dir: Path) -> pd.DataFrame:
    """The manifest of a preprocessed folder (`read_manifest_csv`'s types)."""
    folder = Path(out_dir)
    path = folder / MANIFEST_NAME
    if not path.is_file():
        if folder.is_dir():
            found = f"no {MANIFEST_NAME} in this folder"
        else:
            found = "a file, not a folder of crops" if folder.exists() else "no such folder"
        raise InputError(f"{out_dir}: {found}: crops are a folder `python -m fer_utils preprocess` writes")
    return read_manifest_csv(path)


def usable_frames(manifest: pd.DataFrame) -> pd.DataFrame:
    """The manifest rows that have a crop (status "ok" and an image path)."""
    if "image" not in manifest.columns or "emotion" not in manifest.columns:
        raise InputError("a frame table needs `image` and `emotion` columns (see the manifest contract)")
    ok = manifest["status"].eq("ok") if "status" in manifest.columns else True
    has_image = manifest["image"].fillna("").astype(str).str.len() > 0
    return manifest[ok & has_image].reset_index(drop=True)


LOW_YIELD_FRACTION = 0.5  # below this fraction of usable frames, a run is reported with a loud warning
CROP_LIKE_SIDE = 256  # images no longer than this that yield no face probably are face crops already
SIZE_PROBES = 20  # sources whose size is read to guess why no face was found


def status_counts(manifest: pd.DataFrame) -> dict[str, int]:
    """Frames per status, in STATUSES order (statuses with no frame left out)."""
    counts = manifest["status"].value_counts().to_dict()
    order = (*STATUSES, *sorted(set(counts) - set(STATUSES)))
    return {status: int(counts[status]) for status in order if status in counts}


def _no_face_cause(manifest: pd.DataFrame) -> str:
    """The likely reason a detector found no face: images already cropped, detection downscaled, or neither."""
    sources = manifest.loc[manifest["status"] == "no_face", "source"].drop_duplicates().head(SIZE_PROBES)
    sizes = [size for size in (media_size(Path(s)) for s in sources) if size is not None]
    if sizes and max(max(s) for s in sizes) <= CROP_LIKE_SIDE:
        width, height = sorted(sizes, key=max)[len(sizes) // 2]
        return f"they look like face crops already ({width}x{height}): try --detector {NO_DETECTOR}"
    example = manifest.loc[manifest["status"] == "no_face", "reason"].iloc[0]
    if "--max-side" in example:
        return f"detection ran on downscaled copies ({example}): try --max-side full"
    return (
        f"{manifest['detector'].iloc[0]} found no frontal face ({example}): check that the files show faces, or try "
        "--detector dlib-cnn (more angles)"
    )


def likely_cause(manifest: pd.DataFrame) -> str:
    """One sentence on why most frames of a run are unusable, from its most frequent failure status."""
    failed = manifest[manifest["status"] != "ok"]
    if failed.empty:
        return "no frames were sampled"
    status = failed["status"].value_counts().index[0]
    if status == "no_face":
        return _no_face_cause(manifest)
    example = failed[failed["status"] == status].iloc[0]
    return f"most are {status}, e.g. {example['source']}: {example['reason']}"


def yield_report(manifest: pd.DataFrame) -> str:
    """'N of M frames usable (p %): status n, …' for a finished run."""
    usable = int((manifest["status"] == "ok").sum())
    share = 100.0 * usable / len(manifest) if len(manifest) else 0.0
    counts = ", ".join(f"{status} {n}" for status, n in status_counts(manifest).items())
    return f"{usable} of {len(manifest)} frames usable ({share:.0f} %): {counts or 'none sampled'}"


def check_yield(manifest: pd.DataFrame) -> str | None:
    """InputError when a run gave no usable crop (counts per status and the likely cause);
    a warning text when fewer than LOW_YIELD_FRACTION of its frames are usable; None otherwise."""
    usable = int((manifest["status"] == "ok").sum())
    if usable == 0:
        failed = status_counts(manifest)
        if len(failed) == 1:  # still images (by their names) or frames
            image = manifest["source"].map(
                lambda s: Path(s).suffix.lower() in IMAGE_SUFFIXES or bool(ROW_PATH.match(s))
            )
            what = f"all {len(manifest)} {'images' if image.all() else 'frames'} are {next(iter(failed))}"
        else:
            what = yield_report(manifest)
        raise InputError(f"no usable crop: {what}; {likely_cause(manifest)}")
    if usable < LOW_YIELD_FRACTION * len(manifest):
        return f"most frames are unusable: {yield_report(manifest)}; {likely_cause(manifest)}"
    return None
