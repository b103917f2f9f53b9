"""Folder datasets: `<root>/[<split>/]<class>/[<subject>/]<image>`, the layout of most face collections, of the
crops `fer_utils.faces.preprocess` writes and of datasets that ship their own split (FER-2013, RAF-DB; CONTRACTS.md,
"Folder datasets").
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path

from fer_utils.data.corpora import (
    CROP_NAME,
    EMOTIONS,
    FER2013_USAGES,
    IMAGE_SUFFIXES,
    DatasetIndex,
    check_root,
    data_files,
    index_files,
    subject_of_clip_id,
)
from fer_utils.errors import InputError

# Class-folder names (compared lower-case) → the vocabulary: its names, common datasets' and everyday English.
FOLDER_SYNONYMS: dict[str, str] = {
    **{emotion: emotion for emotion in EMOTIONS},
    "neutrality": "neutral",
    **dict.fromkeys(("calmness", "relaxed"), "calm"),
    **dict.fromkeys(("happiness", "smile", "smiling", "joy", "joyful"), "happy"),
    "sadness": "sad",
    **dict.fromkeys(("anger", "mad"), "angry"),
    **dict.fromkeys(("fear", "afraid", "scared"), "fearful"),
    "disgusted": "disgust",
    "surprise": "surprised",
    "contemptuous": "contempt",
}

# A dataset's own split folders (compared lower-case) → the side (`data.corpora.SPLITS`) they hold.
SPLIT_FOLDERS: dict[str, str] = {
    **dict.fromkeys(("train", "training", "train_set"), "train"),
    **dict.fromkeys(("val", "valid", "validation", "val_set"), "val"),
    **dict.fromkeys(("test", "testing", "test_set"), "test"),
}
# RAF-DB's basic set: numbered class folders 1..7 (`--classes` maps them; see `parse_class_map`).
RAFDB_CLASSES = "1=surprised,2=fearful,3=disgust,4=happy,5=sad,6=angry,7=neutral"


def folder_emotion(name: str, class_map: Mapping[str, str] | None = None) -> str | None:
    """The emotion class folder `name` stands for (`class_map`, then FOLDER_SYNONYMS, any case); None if unknown."""
    key = name.strip().lower()
    return (class_map or {}).get(key) or FOLDER_SYNONYMS.get(key)


def _class_map_error(text: str, problem: str) -> InputError:
    """The InputError of a class mapping that cannot be used: what is wrong and what is accepted."""
    return InputError(
        f"--classes (classes=) {text!r}: {problem}. Write FOLDER=EMOTION pairs separated by commas, e.g. RAF-DB's "
        f"{RAFDB_CLASSES}; emotions accepted (any case): {', '.join(sorted(FOLDER_SYNONYMS))}"
    )


def parse_class_map(classes: str | Mapping[str, str] | None) -> dict[str, str]:
    """Class-folder name (lower-case) → vocabulary emotion, from `1=surprised,2=fear,…` or a dict; InputError for
    a malformed pair, a folder named twice or an unknown emotion."""
    if classes is None:
        return {}
    if isinstance(classes, str):
        text = classes
        pairs = [part.partition("=") for part in classes.split(",") if part.strip()]
        if not pairs or any(not sep or not key.strip() or not value.strip() for key, sep, value in pairs):
            raise _class_map_error(text, "not a list of FOLDER=EMOTION pairs")
        items = [(key, value) for key, _, value in pairs]
    else:
        items = list(dict(classes).items())
        text = ",".join(f"{k}={v}" for k, v in items)
        if not items:
            raise _class_map_error(text, "the mapping is empty")
    mapping: dict[str, str] = {}
    for key, value in items:
        folder, emotion = str(key).strip().lower(), FOLDER_SYNONYMS.get(str(value).strip().lower())
        if folder in mapping:
            raise _class_map_error(text, f"folder {folder!r} is mapped twice")
        if emotion is None:
            raise _class_map_error(text, f"{str(value).strip()!r} (for folder {folder!r}) is no emotion")
        mapping[folder] = emotion
    return mapping


FER2013_NAME = re.compile(rf"^(?P<usage>{'|'.join(FER2013_USAGES)})_\d+$")

# A quantified group holding a quantifier, e.g. `(\w+)+`: on a name that almost matches, Python's regex engine
# tries exponentially many ways (seconds for one 30-character name, doubling with each further character).
NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)(?:[+*]|\{\d*,)")


def subject_regex(pattern: str | None) -> re.Pattern | None:
    """`pattern` compiled; InputError unless it has exactly one group (the subject) and no nested quantifier."""
    if pattern is None:
        return None
    if NESTED_QUANTIFIER.search(pattern):
        raise InputError(
            f"subject pattern {pattern!r} repeats a group that itself repeats (like '(\\w+)+'): on a name that "
            "almost matches, that takes exponential time. Write the group once, e.g. '^(\\w+)_' instead of "
            "'^(\\w+)+_'"
        )
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise InputError(f"subject pattern {pattern!r} is not a valid regular expression: {exc}") from exc
    if regex.groups != 1:
        raise InputError(
            f"subject pattern {pattern!r} must have exactly one group (...) that captures the "
            f"subject, e.g. '^(S\\d+)_' or '^(\\d+)_'; it has {regex.groups}"
        )
    return regex


def has_split_folders(root: Path, class_map: Mapping[str, str] | None = None) -> bool:
    """Whether `root`'s top folders are a dataset's own split (`SPLIT_FOLDERS`) rather than classes; a root
    that mixes both is an InputError (which folder is the label?)."""
    folders = {  # the top folders that hold images (at any depth)
        path.relative_to(root).parts[0]
        for path in data_files(root)
        if path.suffix.lower() in IMAGE_SUFFIXES and len(path.relative_to(root).parts) > 1
    }
    splits = sorted(f for f in folders if f.strip().lower() in SPLIT_FOLDERS)
    if splits and len(splits) < len(folders):
        mixed = (
            f" {', '.join(repr(s) for s in splits)} name(s) a split: this root mixes split folders with class folders "
            f"({', '.join(sorted(folders - set(splits)))}). Put every class folder inside a split folder "
            f"({', '.join(sorted(set(SPLIT_FOLDERS.values())))}), or point the root at one split folder"
        )
        _check_class_folders(root, False, class_map or {}, mixed)
        raise InputError(f"{root}:{mixed}")  # reached only when --classes maps a split folder's name
    return bool(splits)


def _check_class_folders(root: Path, split: bool, class_map: Mapping[str, str], note: str = "") -> None:
    """InputError naming every class folder with images (inside split folders when `split`) mapping to no emotion."""
    depth = 1 if split else 0
    found = {
        parts[: depth + 1]
        for parts in (path.relative_to(root).parts for path in data_files(root))
        if Path(parts[-1]).suffix.lower() in IMAGE_SUFFIXES
        and len(parts) > depth + 1
        and folder_emotion(parts[depth], class_map) is None
    }
    unknown = sorted({folders[-1] for folders in found})
    inside = f" (in split folder(s) {', '.join(sorted({f[0] for f in found}))})" if split else ""
    if unknown:
        raise InputError(
            f"class folder(s) {', '.join(repr(u) for u in unknown)} under {root}{inside} map to no emotion; accepted "
            f"names (any case): {', '.join(sorted(FOLDER_SYNONYMS))}. Rename the folder, map it with --classes "
            f"(classes=), e.g. RAF-DB's numbered folders: --classes {RAFDB_CLASSES}, or point the root at "
            f"the folder that holds the class folders.{note}"
        )


def _split_of_image(path: Path, folder: str) -> str:
    """The side of an image in split folder `folder`, or its FER-2013 name's usage; InputError if they disagree."""
    side = SPLIT_FOLDERS.get(folder.strip().lower())
    match = FER2013_NAME.match(path.stem)
    if match is None:
        return side
    usage = match.group("usage")
    named = FER2013_USAGES[usage]
    if (named == "train") != (side == "train"):
        raise InputError(f"FER-2013 name says {usage} ({named}) but the image is in split folder {folder!r} ({side})")
    return named


def _subject_of_image(
    path: Path, parts: tuple[str, ...], clip_id: str, regex: re.Pattern | None
) -> tuple[str, str, str]:
    """(subject, where it came from, origin dataset) of one image of a folder dataset."""
    parsed = subject_of_clip_id(clip_id)
    origin = parsed[0] if parsed else ""
    if regex is not None:
        match = regex.search(path.name)
        if not match or not match.group(1):
            raise InputError(f"file name does not match the subject pattern '{regex.pattern}'")
        return match.group(1), "pattern", origin
    if len(parts) == 3:
        return parts[1], "subfolder", origin
    if parsed:
        return parsed[1], "clip id", origin
    return clip_id, "image", origin


def _parse_folder(path: Path, root: Path, regex: re.Pattern | None, split: bool, class_map: Mapping[str, str]) -> dict:
    """Fields of one image `<root>/[<split>/]<class>/[<subject>/]<name>.png`; crops named `<clip_id>_f<frame>`."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(f"not an image ({path.suffix or 'no extension'}; expected .png, .jpg or .jpeg)")
    parts = path.relative_to(root).parts
    where = "<root>/<split>/" if split else "<root>/"
    if len(parts) not in (2 + split, 3 + split):
        raise InputError(f"image is not in {where}<class>/ or {where}<class>/<subject>/")
    side = {"split": _split_of_image(path, parts[0])} if split else {}
    parts = parts[1:] if split else parts
    emotion = folder_emotion(parts[0], class_map)
    if emotion is None:
        raise InputError(
            f"unknown class folder {parts[0]!r} (accepted, any case: {', '.join(sorted(FOLDER_SYNONYMS))})"
        )
    if len(parts) == 3 and folder_emotion(parts[1], class_map) is not None:
        raise InputError(
            f"class folder {parts[1]!r} inside class folder {parts[0]!r}: which is the label? A subfolder of a "
            "class folder is a subject; move the images to the class folder they belong to"
        )
    crop = CROP_NAME.match(path.stem)
    clip_id, frame = (crop.group("clip_id"), int(crop.group("frame"))) if crop else (path.stem, -1)
    subject, source, origin = _subject_of_image(path, parts, clip_id, regex)
    return {
        "emotion": emotion,
        "subject": subject,
        "clip_id": clip_id,
        "frame": frame,
        "origin": origin,
        "class_folder": parts[0],
        "subject_source": source,
        **side,
    }


def _disambiguate(rows: list[dict], root: Path) -> list[dict]:
    """Give same-named images from different folders or formats distinct clip ids `<id>-<8 hex of
    folder/id.suffix>`, so no crop overwrites another; frames of one clip keep one clip id."""
    homes: dict[str, set[tuple[str, str]]] = {}
    for row in rows:
        path = Path(row["path"])
        homes.setdefault(row["clip_id"], set()).add((path.parent.relative_to(root).as_posix(), path.suffix))
    for row in rows:
        if len(homes[row["clip_id"]]) < 2:
            continue
        path = Path(row["path"])
        key = f"{path.parent.relative_to(root).as_posix()}/{row['clip_id']}{path.suffix}"
        new_id = f"{row['clip_id']}-{hashlib.sha1(key.encode('utf-8')).hexdigest()[:8]}"
        if row["subject_source"] == "image":
            row["subject"] = new_id
        row["clip_id"] = new_id
    return rows


def index_class_folders(
    root: Path, subject_pattern: str | None = None, classes: str | Mapping[str, str] | None = None
) -> DatasetIndex:
    """Index `<root>/[<split>/]<class>/[<subject>/]*.png|jpg|jpeg`, one row per image: a crop `<clip_id>_f<frame>`
    belongs to its clip, any other image is its own clip (subjects and classes: CONTRACTS.md)."""
    regex = subject_regex(subject_pattern)
    class_map = parse_class_map(classes)
    root = check_root(root)
    split = has_split_folders(root, class_map)
    _check_class_folders(root, split, class_map)
    return index_files("folder", root, lambda p, r: _parse_folder(p, r, regex, split, class_map), post=_disambiguate)
