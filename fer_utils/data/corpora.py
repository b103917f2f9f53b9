"""The shared emotion vocabulary, the clip-index machinery and the indexers of the publishers' own naming.

Each indexer parses a publisher's file names into the clip table (CONTRACTS.md, "Clip index"), as the paper labels
images; a file that does not follow them goes to `DatasetIndex.rejected` with the reason, never guessed or dropped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fer_utils.errors import InputError

if TYPE_CHECKING:  # pandas is imported where tables are built, so the CLI's --help stays light
    import pandas as pd

EMOTIONS: tuple[str, ...] = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised", "contempt")

# RAVDESS's emotion codes 01..08 are the vocabulary's first eight emotions, in order.
RAVDESS_EMOTIONS: dict[str, str] = {f"{code:02d}": emotion for code, emotion in enumerate(EMOTIONS[:8], start=1)}
RAVDESS_MODALITIES: dict[str, str] = {"01": "audio-video", "02": "video-only", "03": "audio-only"}
RAVDESS_CHANNELS: dict[str, str] = {"01": "speech", "02": "song"}
RAVDESS_INTENSITIES: dict[str, str] = {"01": "normal", "02": "strong"}
RAVDESS_STATEMENTS: dict[str, str] = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}

SAVEE_EMOTIONS: dict[str, str] = {
    "a": "angry",
    "d": "disgust",
    "f": "fearful",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprised",
}
SAVEE_SPEAKERS: tuple[str, ...] = ("DC", "JE", "JK", "KL")

MEAD_EMOTIONS: dict[str, str] = {
    "angry": "angry",
    "contempt": "contempt",
    "disgusted": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "surprised": "surprised",
}
MEAD_VIEWS: tuple[str, ...] = ("front", "down", "top", "left_30", "left_60", "right_30", "right_60")

CREMAD_EMOTIONS: dict[str, str] = dict(ANG="angry", DIS="disgust", FEA="fearful", HAP="happy", NEU="neutral", SAD="sad")
CREMAD_SENTENCES: dict[str, str] = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
CREMAD_LEVELS: dict[str, str] = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
CREMAD_ACTORS: range = range(1001, 1092)  # 91 actors, 1001..1091
RAVDESS_ACTORS: range = range(1, 25)  # 24 actors, 1..24

# The sides of a dataset's own split (its `split` column).
SPLITS: tuple[str, ...] = ("train", "val", "test")
# FER-2013's usages (its CSV's `Usage`, the prefix of Kaggle's image names) → the side of the standard protocol.
FER2013_USAGES: dict[str, str] = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}

VIDEO_SUFFIXES: frozenset[str] = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".flv"})
IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg"})
DOC_SUFFIXES: frozenset[str] = frozenset({".md", ".txt", ".csv", ".json", ".pdf", ".yml", ".yaml"})

CROP_NAME = re.compile(r"^(?P<clip_id>.+)_f(?P<frame>\d{4,})$")
# A folder image whose name another file also has gets `<stem>-<8 hex>` (hash of its relative path).
DISAMBIGUATED = re.compile(r"^(?P<base>.+)-[0-9a-f]{8}$")

REJECTED_COLUMNS: tuple[str, ...] = ("path", "reason")

# Maps one file (and the dataset root) to a row dict, or raises InputError with the reason (the file is rejected).
Parser = Callable[[Path, Path], dict]


@dataclass
class DatasetIndex:
    """The clip table of a dataset and the files that were not indexed, with the reason for each."""

    clips: pd.DataFrame
    rejected: pd.DataFrame


# A face stored as a row of a CSV (FER-2013): `<csv>#<row>@<byte offset>`, read in place as if an image file.
ROW_PATH = re.compile(r"^(?P<csv>.+\.csv)#(?P<row>\d+)@(?P<offset>\d+)$", re.IGNORECASE)


def row_path(csv_path: Path, row: int, offset: int) -> str:
    """The path of data row `row` (1-based) of a CSV (FER-2013's), which starts `offset` bytes into the file."""
    return f"{csv_path}#{row}@{offset}"


def parse_row_path(path: str | Path) -> tuple[Path, int, int] | None:
    """(CSV file, row, byte offset) of a row path, or None for any other path."""
    if match := ROW_PATH.match(str(path)):
        return Path(match.group("csv")), int(match.group("row")), int(match.group("offset"))
    return None


def source_file(path: str) -> str:
    """The file a source path reads (a row path's CSV), which keys preprocessing's completion record."""
    parsed = parse_row_path(path)
    return str(parsed[0]) if parsed else path


def classes_in(df: pd.DataFrame) -> list[str]:
    """The emotions present in `df`, in vocabulary order: the class list of a model trained on it."""
    present = set(df["emotion"].unique())
    if unknown := present - set(EMOTIONS):
        raise InputError(f"emotions outside the vocabulary: {sorted(unknown)}; expected {EMOTIONS}")
    return [e for e in EMOTIONS if e in present]


def check_root(root: Path) -> Path:
    """The absolute root, or an InputError if it is missing or not a folder."""
    root = Path(root).expanduser()
    if not root.exists():
        raise InputError(f"dataset root {root} does not exist")
    if not root.is_dir():
        raise InputError(f"dataset root {root} is not a folder")
    return root.resolve()


def data_files(root: Path) -> Iterator[Path]:
    """Every file below `root` (any depth) that may be a dataset file: not hidden, not documentation."""
    for path in sorted(root.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
        if not hidden and path.is_file() and path.suffix.lower() not in DOC_SUFFIXES:
            yield path


def broken_links(root: Path) -> list[dict]:
    """Rejected rows for the links below `root` (not hidden) that loop or lead nowhere, which `data_files` skips."""
    rejected = []
    for path in sorted(root.rglob("*")):
        if not path.is_symlink() or any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        try:
            path.resolve(strict=True)
        except FileNotFoundError:
            rejected.append({"path": str(path), "reason": f"a symbolic link to {os.readlink(path)}, which is missing"})
        except (RuntimeError, OSError):  # RuntimeError: pathlib's "Symlink loop"; OSError: ELOOP and the like
            rejected.append({"path": str(path), "reason": "a symbolic link that loops (it leads back to itself)"})
    return rejected


# Runs over all parsed rows of a dataset (and its root) before the duplicate check, e.g. to rename.
RowsHook = Callable[[list[dict], Path], list[dict]]


def index_files(name: str, root: Path, parse: Parser, post: RowsHook | None = None) -> DatasetIndex:
    """Run `parse` over every data file below `root`; InputError when no file is indexed. A later file with
    the same clip id (and frame) is rejected, so no file's output overwrites another's."""
    import pandas as pd

    root = check_root(root)
    parsed: list[dict] = []
    rejected: list[dict] = []
    for path in data_files(root):
        try:
            parsed.append({"path": str(path), "dataset": name, **parse(path, root)})
        except InputError as why:  # a parser's only error: the file does not follow the dataset's naming
            rejected.append({"path": str(path), "reason": str(why)})
    rows: list[dict] = []
    first: dict[tuple, str] = {}  # the path of the first file of each clip id (and frame, for crops)
    for row in post(parsed, root) if post else parsed:
        key = (row["clip_id"], row.get("frame"))
        if key in first:
            reason = f"same clip id {row['clip_id']!r} as {first[key]} (a second copy of the same clip?)"
            rejected.append({"path": row["path"], "reason": reason})
        else:
            first[key] = row["path"]
            rows.append(row)
    rejected.extend(broken_links(root))
    if not rows:
        detail = ""
        if rejected:
            detail = f"; {len(rejected)} file(s) rejected, e.g. {rejected[0]['path']}: {rejected[0]['reason']}"
        raise InputError(f"no {name} files found under {root}{detail}")
    # clips: `path`, `dataset`, then the parser's fields in its order
    return DatasetIndex(clips=pd.DataFrame(rows), rejected=pd.DataFrame(rejected, columns=list(REJECTED_COLUMNS)))


_RAVDESS_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")


def _parse_ravdess(path: Path, root: Path, modalities: Collection[str]) -> dict:
    """Fields of one RAVDESS file name `MM-VV-EE-II-SS-RR-AA.mp4`, checked against the codebook."""
    if not (match := _RAVDESS_NAME.match(path.stem)):
        raise InputError("name is not the 7-part RAVDESS identifier MM-VV-EE-II-SS-RR-AA")
    modality, channel, emotion, intensity, statement, repetition, actor = match.groups()
    checks = (
        (modality, RAVDESS_MODALITIES, "modality"),
        (channel, RAVDESS_CHANNELS, "vocal channel"),
        (emotion, RAVDESS_EMOTIONS, "emotion"),
        (intensity, RAVDESS_INTENSITIES, "intensity"),
        (statement, RAVDESS_STATEMENTS, "statement"),
        (repetition, {"01": 1, "02": 2}, "repetition"),
    )
    for code, table, field in checks:
        if code not in table:
            raise InputError(f"unknown {field} code {code!r} (known: {', '.join(table)})")
    if int(actor) not in RAVDESS_ACTORS:
        raise InputError(f"unknown actor code {actor!r} (01..24)")
    if emotion == "01" and intensity == "02":
        raise InputError("neutral has no strong intensity (02) in RAVDESS")
    expected_suffix = ".wav" if modality == "03" else ".mp4"
    if path.suffix.lower() != expected_suffix:
        raise InputError(f"modality {modality} files are {expected_suffix}, not {path.suffix or 'extensionless'}")
    if modality not in modalities:
        raise InputError(
            f"modality {modality} ({RAVDESS_MODALITIES[modality]}) not selected (modalities={tuple(modalities)})"
        )
    folder = path.parent.name
    if folder.startswith("Actor_") and folder != f"Actor_{actor}":
        raise InputError(f"actor {actor} in the name but the file is in folder {folder}")
    return {
        "emotion": RAVDESS_EMOTIONS[emotion],
        "subject": f"Actor_{actor}",
        "clip_id": path.stem,
        "modality": modality,
        "vocal_channel": channel,
        "emotion_code": emotion,
        "intensity": int(intensity),
        "statement": int(statement),
        "repetition": int(repetition),
        "actor": int(actor),
    }


def index_ravdess(root: Path, modalities: Collection[str] = ("02",)) -> DatasetIndex:
    """Index RAVDESS as unpacked from Zenodo (`Actor_XX/MM-VV-EE-II-SS-RR-AA.mp4`, any depth), video-only (02) by
    default, other modalities rejected: the audio-video copy (01) of a trial is the same recording (twice, leaking)."""
    if unknown := set(modalities) - set(RAVDESS_MODALITIES):
        raise InputError(f"unknown RAVDESS modalities {sorted(unknown)}; known: {list(RAVDESS_MODALITIES)}")
    index = index_files("ravdess", root, lambda p, r: _parse_ravdess(p, r, tuple(modalities)))
    return one_copy_per_take(index, tuple(modalities))


def one_copy_per_take(index: DatasetIndex, modalities: tuple[str, ...]) -> DatasetIndex:
    """Keep one file per RAVDESS take (01 and 02 hold the same video), of the modality listed first; reject the rest."""
    import pandas as pd

    clips = index.clips.assign(_rank=index.clips["modality"].map(modalities.index)).sort_values("_rank", kind="stable")
    take = clips["clip_id"].str[3:]  # the identifier without its modality code
    first = clips.groupby(take)["path"].transform("first")
    copies = clips[clips["path"] != first]
    reasons = [
        {"path": path, "reason": f"the same take as {kept} (modalities 01 and 02 hold the same video; one is indexed)"}
        for path, kept in zip(copies["path"], first[copies.index])
    ]
    kept = clips.drop(index=copies.index).drop(columns="_rank").sort_index().reset_index(drop=True)
    rejected = pd.concat([index.rejected, pd.DataFrame(reasons, columns=index.rejected.columns)], ignore_index=True)
    return DatasetIndex(clips=kept, rejected=rejected)


_SAVEE_NAME = re.compile(r"^(sa|su|a|d|f|h|n)(\d{2})$")
_SAVEE_LOOSE = re.compile(r"^([a-z]+)(\d+)$")


def _parse_savee(path: Path, root: Path) -> dict:
    """Fields of one SAVEE clip `<speaker>/<code><nn>.avi`, e.g. `KL/sa03.avi`."""
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise InputError(f"not a video file ({path.suffix or 'no extension'})")
    speaker = path.parent.name
    if speaker not in SAVEE_SPEAKERS:
        raise InputError(f"folder {speaker!r} is not a SAVEE speaker ({', '.join(SAVEE_SPEAKERS)})")
    if not (match := _SAVEE_NAME.match(path.stem)):
        if (loose := _SAVEE_LOOSE.match(path.stem)) and loose.group(1) not in SAVEE_EMOTIONS:
            raise InputError(f"unknown emotion code {loose.group(1)!r} (known: {', '.join(SAVEE_EMOTIONS)})")
        raise InputError("name is not <emotion code><2-digit sentence number>, e.g. sa03")
    code, sentence = match.groups()
    return {
        "emotion": SAVEE_EMOTIONS[code],
        "subject": speaker,
        "clip_id": f"{speaker}_{path.stem}",
        "emotion_code": code,
        "sentence": int(sentence),
    }


def index_savee(root: Path) -> DatasetIndex:
    """Index SAVEE's audio-visual clips laid out as `<root>/.../<DC|JE|JK|KL>/<code><nn>.avi`."""
    return index_files("savee", root, _parse_savee)


_MEAD_SUBJECT = re.compile(r"^[MW]\d{3}$")
_MEAD_LEVEL = re.compile(r"^level_([1-3])$")
_MEAD_CLIP = re.compile(r"^\d{3}$")


def _parse_mead(path: Path, root: Path) -> dict:
    """Fields of one MEAD clip `<subject>/video/<view>/<emotion>/level_<n>/<nnn>.mp4`."""
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise InputError(f"not a video file ({path.suffix or 'no extension'})")
    parts = path.relative_to(root).parts
    if len(parts) < 6 or parts[-5] != "video":
        raise InputError("path is not <subject>/video/<view>/<emotion>/level_<n>/<nnn>.mp4")
    subject, _, view, emotion, level, _ = parts[-6:]
    if not _MEAD_SUBJECT.match(subject):
        raise InputError(f"subject folder {subject!r} is not M### or W###")
    if view not in MEAD_VIEWS:
        raise InputError(f"unknown view {view!r} (known: {', '.join(MEAD_VIEWS)})")
    if emotion not in MEAD_EMOTIONS:
        raise InputError(f"unknown emotion folder {emotion!r} (known: {', '.join(MEAD_EMOTIONS)})")
    if not (level_match := _MEAD_LEVEL.match(level)):
        raise InputError(f"intensity folder {level!r} is not level_1, level_2 or level_3")
    if not _MEAD_CLIP.match(path.stem):
        raise InputError(f"clip name {path.name!r} is not a 3-digit number")
    return {
        "emotion": MEAD_EMOTIONS[emotion],
        "subject": subject,
        "clip_id": f"{subject}_{view}_{emotion}_{level}_{path.stem}",
        "view": view,
        "mead_emotion": emotion,
        "level": int(level_match.group(1)),
        "clip_number": int(path.stem),
    }


def index_mead(root: Path) -> DatasetIndex:
    """Index MEAD videos unpacked as `<root>/.../M003/video/front/angry/level_1/001.mp4` (all views)."""
    return index_files("mead", root, _parse_mead)


_CREMAD_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def _parse_cremad(path: Path, root: Path) -> dict:
    """Fields of one CREMA-D clip `<actor>_<sentence>_<EMO>_<level>.flv`, e.g. `1001_DFA_ANG_XX.flv`."""
    suffix = path.suffix.lower()
    if suffix in (".wav", ".mp3"):
        raise InputError("audio-only file (CREMA-D's AudioWAV/AudioMP3); the video clips are VideoFlash/*.flv")
    if suffix not in VIDEO_SUFFIXES:
        raise InputError(f"not a video file ({path.suffix or 'no extension'})")
    if not (match := _CREMAD_NAME.match(path.stem)):
        raise InputError("name is not <actor>_<sentence>_<EMO>_<level>, e.g. 1001_DFA_ANG_XX")
    actor, sentence, emotion, level = match.groups()
    checks = (
        (sentence, CREMAD_SENTENCES, "sentence"),
        (emotion, CREMAD_EMOTIONS, "emotion"),
        (level, CREMAD_LEVELS, "level"),
    )
    for code, table, field in checks:
        if code not in table:
            raise InputError(f"unknown {field} code {code!r} (known: {', '.join(table)})")
    if int(actor) not in CREMAD_ACTORS:
        raise InputError(f"unknown actor {actor!r} ({CREMAD_ACTORS.start}..{CREMAD_ACTORS.stop - 1})")
    return {
        "emotion": CREMAD_EMOTIONS[emotion],
        "subject": actor,
        "clip_id": path.stem,
        "actor": int(actor),
        "sentence": sentence,
        "emotion_code": emotion,
        "level": level,
        "intensity": CREMAD_LEVELS[level],
    }


def index_cremad(root: Path) -> DatasetIndex:
    """Index CREMA-D's clips (`VideoFlash/<actor>_<sentence>_<EMO>_<level>.flv`, any depth), rejecting its audio."""
    return index_files("cremad", root, _parse_cremad)


def _subject_of_id(clip_id: str) -> tuple[str, str] | None:
    """(origin dataset, subject) of a clip id exactly as an indexer of this module writes it."""
    if (match := _RAVDESS_NAME.match(clip_id)) and 1 <= int(match.group(7)) <= 24:
        return "ravdess", f"Actor_{match.group(7)}"
    match = _CREMAD_NAME.match(clip_id)
    if match and int(match.group(1)) in CREMAD_ACTORS and match.group(3) in CREMAD_EMOTIONS:
        return "cremad", match.group(1)
    speaker = clip_id.split("_", 1)[0]
    if speaker in SAVEE_SPEAKERS and "_" in clip_id:
        return "savee", speaker
    if _MEAD_SUBJECT.match(speaker) and "_" in clip_id:
        return "mead", speaker
    return None


def subject_of_clip_id(clip_id: str) -> tuple[str, str] | None:
    """(origin dataset, subject) of a RAVDESS, CREMA-D, SAVEE or MEAD clip id (a `-<8 hex>` suffix allowed), or None."""
    base = DISAMBIGUATED.match(clip_id)
    return _subject_of_id(clip_id) or (_subject_of_id(base.group("base")) if base else None)


def has_split(table: pd.DataFrame) -> bool:
    """Whether `table` (a clip index or manifest) carries the dataset's own split: a non-empty `split` value."""
    return "split" in table.columns and bool(table["split"].fillna("").astype(str).ne("").any())


def split_counts(clips: pd.DataFrame) -> pd.DataFrame:
    """Rows per emotion and side of the dataset's own split, with a `total` column; empty without a split."""
    import pandas as pd

    if not has_split(clips):
        return pd.DataFrame()
    sides = [s for s in SPLITS if s in set(clips["split"])]
    table = pd.crosstab(clips["emotion"], clips["split"]).reindex(index=classes_in(clips), columns=sides)
    table = table.fillna(0).astype(int)
    table["total"] = table.sum(axis=1)
    return table.rename_axis(index="emotion", columns=None)


def split_warnings(clips: pd.DataFrame) -> list[str]:
    """One line per class that some side of the dataset's own split lacks while another holds it: a model
    trained on such a train side never predicts the class, a test side without it never measures it."""
    counts = split_counts(clips).drop(columns="total", errors="ignore")
    lines = []
    for emotion, row in counts.iterrows():
        if missing := [side for side, n in row.items() if n == 0]:
            held = ", ".join(f"{side} {n}" for side, n in row.items() if n)
            lines.append(f"class {emotion!r} has no image in the {' and '.join(missing)} split ({held})")
    return lines
