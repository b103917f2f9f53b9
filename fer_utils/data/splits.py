"""Reproducible train/test(/val) splits, the leak check and the duplicate audit.

Protocols: `random` (rows stratified by emotion, the paper's 80/20), `clip` and `subject` (whole clips or actors on
one side), `given` (the dataset's own `split`). The audit finds exact copies (`md5`) and near-duplicates (`phash`
within NEAR_BITS); splits keep exact copies together (CONTRACTS.md, "Duplicate audit").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold, train_test_split

from fer_utils.data.corpora import SPLITS, has_split
from fer_utils.data.manifest import load_manifest, usable_frames
from fer_utils.data.media import check_media, read_image, to_gray
from fer_utils.errors import InputError, MediaError
from fer_utils.registry import GIVEN_PROTOCOL, PAPER_PROTOCOL, PAPER_TEST_SIZE, PROTOCOLS
from fer_utils.storage.atomic import write_atomic

REQUIRED_COLUMNS: tuple[str, ...] = ("emotion", "clip_id", "subject")
# What a run on a dataset whose own split has no test side (AffectNet: train and val) is told.
VAL_AS_TEST = (
    "the dataset gives no test side: its val side ({rows} rows) is the test side (a val side for early "
    "stopping is carved out of train when val_size is above 0)"
)


@dataclass
class Split:
    """Disjoint train, test and optional val tables; `notes` and `duplicates` go into a run's config.json."""

    train: pd.DataFrame
    test: pd.DataFrame
    val: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    duplicates: dict = field(default_factory=dict)

    def sides(self) -> dict[str, pd.DataFrame]:
        """The sides by name (val only when there is one)."""
        return {k: v for k, v in {"train": self.train, "test": self.test, "val": self.val}.items() if v is not None}


@dataclass
class LeakReport:
    """Clip ids and subjects that appear on more than one side of a split."""

    shared_clips: list[str] = field(default_factory=list)
    shared_subjects: list[str] = field(default_factory=list)

    @property
    def leaks(self) -> bool:
        """True when any clip or subject is shared between sides."""
        return bool(self.shared_clips or self.shared_subjects)

    def __str__(self) -> str:
        if not self.leaks:
            return "no leak: no clip and no subject appears on two sides"
        clips, subjects = len(self.shared_clips), len(self.shared_subjects)
        named = ", ".join(map(str, self.shared_subjects[:10]))
        where = f"appear on two sides (subjects: {named})"
        return f"leaks: {clips} clip(s) and {subjects} subject(s) {where}"


def random_holdout(
    df: pd.DataFrame,
    size: float,
    seed: int,
) -> tuple[pd.Index, pd.Index]:
    """Row-level holdout stratified by emotion: (keep, held-out) index labels. Each row
    is drawn on its own, so the frames of one clip (and every actor) end up on both
    sides."""
    try:
        keep, held = train_test_split(
            df.index,
            test_size=size,
            random_state=seed,
            stratify=df["emotion"],
        )
    except ValueError as exc:
        raise InputError(
            f"cannot stratify {len(df)} rows by emotion with size {size}: {exc}",
        ) from exc
    return pd.Index(keep), pd.Index(held)


def group_holdout(
    df: pd.DataFrame,
    groups: str,
    size: float,
    seed: int,
) -> tuple[pd.Index, pd.Index]:
    """Group holdout (no group on both sides), stratified by emotion when there are
    enough groups.

    StratifiedGroupKFold with round(1/size) folds gives one fold as held-out; with fewer
    groups than folds it falls back to GroupShuffleSplit (unstratified), e.g. one of
    SAVEE's four speakers.
    """
    n_groups = df[groups].nunique()
    if n_groups < 2:
        raise InputError(
            f"cannot split by {groups}: only {n_groups} distinct value(s)",
        )
    n_splits = max(2, round(1 / size))
    if n_groups >= n_splits:
        splitter = StratifiedGroupKFold(
            n_splits=n_splits,
            shuffle=True,
            random_state=seed,
        )
        keep, held = next(splitter.split(df, df["emotion"], groups=df[groups]))
    else:
        splitter = GroupShuffleSplit(n_splits=1, test_size=size, random_state=seed)
        keep, held = next(splitter.split(df, groups=df[groups]))
    return df.index[np.sort(keep)], df.index[np.sort(held)]


def holdout(
    df: pd.DataFrame,
    protocol: str,
    size: float,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split `df` into (rest, held-out) with `protocol`: single rows for `random`, whole
    clips (`clip_id` groups) for `clip`, whole actors (`subject` groups) for
    `subject`."""
    if protocol == "random":
        keep, held = random_holdout(df, size, seed)
    else:
        keep, held = group_holdout(
            df,
            "clip_id" if protocol == "clip" else "subject",
            size,
            seed,
        )
    rest, out = df.loc[keep].sort_index(), df.loc[held].sort_index()
    if rest.empty or out.empty:
        raise InputError(
            f"the {protocol} split of {len(df)} rows left one side empty",
        )
    return rest, out


def check_split_request(df: pd.DataFrame, protocol: str, test_size: float, val_size: float) -> None:
    """InputError, before anything is split, for an unknown protocol, missing columns or unusable sizes."""
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown split protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"a split needs columns {REQUIRED_COLUMNS}; missing {missing}")
    if len(df) < 2:
        raise InputError(f"cannot split a table of {len(df)} row(s)")
    for name, value, allow_zero in (("test_size", test_size, False), ("val_size", val_size, True)):
        if not (0 < value < 1 or (allow_zero and value == 0)):
            raise InputError(f"{name} must be a fraction in (0, 1), got {value}")
    if test_size + val_size >= 1:
        raise InputError(f"test_size + val_size must be below 1, got {test_size + val_size}")


def resolve_protocol(df: pd.DataFrame, protocol: str | None = None) -> str:
    """`protocol`, else `given` when `df` has its own split (comparable with published scores), else `random`."""
    if protocol is not None:
        return protocol
    return GIVEN_PROTOCOL if has_split(df) else PAPER_PROTOCOL


def chosen_protocol(df: pd.DataFrame, protocol: str | None = None) -> str | None:
    """`protocol`, else "subject" when a table without its own split has several rows of a person (a random
    split would teach the person, not the expression: chapter 6), else None (`resolve_protocol` decides)."""
    if protocol is not None or has_split(df) or "subject" not in df.columns:
        return protocol
    return "subject" if df["subject"].dropna().duplicated().any() else None


def given_sides(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The rows of each side of the dataset's own split; InputError without one or for a split not in SPLITS."""
    if not has_split(df):
        raise InputError(
            f"protocol {GIVEN_PROTOCOL!r} takes the dataset's own split (a `split` column of train, val, test: "
            "train/ and test/ folders, FER-2013's Usage), and this table has none (a dataset without split "
            "folders): use protocol "
            f"{', '.join(p for p in PROTOCOLS if p != GIVEN_PROTOCOL)} instead (--protocol random, clip or subject)"
        )
    values = df["split"].fillna("").astype(str)
    unknown = values[~values.isin(SPLITS)]
    if len(unknown):
        raise InputError(
            f"{len(unknown)} row(s) have split {sorted(set(unknown))[:5]}, not one of {', '.join(SPLITS)}: the "
            f"{GIVEN_PROTOCOL} protocol needs a side for every row"
        )
    return {side: df[values == side] for side in SPLITS}


def given_split(df: pd.DataFrame, val_size: float, seed: int) -> Split:
    """The dataset's own split, tested on val when it has no test side (AffectNet); with no val side left,
    `val_size` of the whole table is carved out of train (whole clips when clips have several frames)."""
    sides = given_sides(df)
    train, val, test = sides["train"], sides["val"], sides["test"]
    if train.empty:
        raise InputError(f"the dataset's own split has no train rows ({len(val)} val, {len(test)} test)")
    notes = []
    if test.empty:
        if val.empty:
            raise InputError(f"the dataset's own split has no test (nor val) rows, only {len(train)} train rows")
        test, val = val, val.iloc[0:0]
        notes.append(VAL_AS_TEST.format(rows=len(test)))
    if val.empty and val_size > 0:
        share = val_size * len(df) / len(train)
        if share >= 1:
            raise InputError(f"val_size {val_size} of {len(df)} rows is more than the {len(train)} train rows")
        by_clip = train["clip_id"].duplicated().any()
        keep, held = group_holdout(train, "clip_id", share, seed) if by_clip else random_holdout(train, share, seed)
        train, val = train.loc[keep].sort_index(), train.loc[held].sort_index()
    return Split(train=train, test=test, val=val if len(val) else None, notes=notes)


def split_note(df: pd.DataFrame) -> str:
    """One line saying that the dataset's own split is used, with each side's rows; InputError without one."""
    given_sides(df)
    counts = df["split"].fillna("").astype(str).value_counts()
    sides = ", ".join(f"{side} {int(counts[side])}" for side in SPLITS if side in counts)
    line = f"protocol {GIVEN_PROTOCOL}: the dataset's own split, {sides} rows"
    if not counts.get("test", 0) and counts.get("val", 0):
        line += "; " + VAL_AS_TEST.format(rows=int(counts["val"]))
    return line + "; --protocol random, clip or subject splits the rows instead"


def given_warnings(df: pd.DataFrame) -> list[str]:
    """A warning for the train classes the tested side (test, else val) lacks: their F1 cannot be measured."""
    sides = given_sides(df)
    name, tested = ("test", sides["test"]) if len(sides["test"]) else ("val (tested on)", sides["val"])
    lacking = sorted(set(sides["train"]["emotion"].astype(str)) - set(tested["emotion"].astype(str)))
    if not lacking or tested.empty:
        return []
    return [
        f"the dataset's {name} side has no frame of {', '.join(lacking)}: its scores cannot say how the model "
        f"recognises {'it' if len(lacking) == 1 else 'them'}, and the macro F1 averages the classes present only"
    ]


def split_frames(
    df: pd.DataFrame,
    protocol: str = PAPER_PROTOCOL,
    test_size: float = PAPER_TEST_SIZE,
    val_size: float = 0.0,
    seed: int = 0,
) -> Split:
    """Split `df` into train/test (and val when `val_size` > 0) with one protocol,
    reproducibly from `seed`.

    `test_size` and `val_size` are fractions of the whole table (of its groups for
    `clip`/`subject`); the validation side is taken from what remains after the test
    side, with the same protocol. `given` takes the dataset's own sides (`given_split`;
    `test_size` does not apply).
    """
    check_split_request(df, protocol, test_size, val_size)
    if protocol == GIVEN_PROTOCOL:
        return given_split(df, val_size, seed)
    rest, test = holdout(df, protocol, test_size, seed)
    if val_size == 0:
        return Split(train=rest, test=test, val=None)
    train, val = holdout(rest, protocol, val_size / (1 - test_size), seed)
    return Split(train=train, test=test, val=val)


def check_leakage(split: Split) -> LeakReport:
    """The clip ids and subjects that appear on two sides of `split` (train/test/val
    pairwise)."""
    clips: set = set()
    subjects: set = set()
    for a, b in combinations(split.sides().values(), 2):
        clips |= set(a["clip_id"]) & set(b["clip_id"])
        subjects |= set(a["subject"]) & set(b["subject"])
    return LeakReport(
        shared_clips=sorted(map(str, clips)),
        shared_subjects=sorted(map(str, subjects)),
    )


def _merged_groups(labels: pd.Series, copies: pd.Series) -> pd.Series:
    """`labels` with the labels of rows that `copies` labels alike merged, transitively; the first names the group."""
    parent: dict[str, str] = {}

    def root(label: str) -> str:
        while parent.get(label, label) != label:
            label = parent[label]
        return label

    for rows in labels.astype(str).groupby(copies.to_numpy()):
        names = list(dict.fromkeys(rows[1]))
        for name in names[1:]:
            a, b = root(names[0]), root(name)
            if a != b:
                parent[b] = a
    return labels.astype(str).map(root)


def split_keeping_copies(
    df: pd.DataFrame,
    copies: pd.Series,
    protocol: str = PAPER_PROTOCOL,
    test_size: float = PAPER_TEST_SIZE,
    val_size: float = 0.0,
    seed: int = 0,
    split_with: Callable[[pd.DataFrame, str, float, float, int], Split] = split_frames,
) -> Split:
    """`split_with`, with the rows that `copies` labels alike (`copy_labels`) on one side: `random` splits one
    row per copy and the others follow it; `clip` and `subject` merge the groups that share a copy."""
    check_split_request(df, protocol, test_size, val_size)
    if protocol == GIVEN_PROTOCOL or not copies.duplicated().any():
        return split_with(df, protocol, test_size, val_size, seed)
    if protocol == "random":
        split = split_with(df[~copies.duplicated()], protocol, test_size, val_size, seed)
        side = {copies[i]: name for name, part in split.sides().items() for i in part.index}
        where = copies.map(side)
        parts = {name: df[where == name].sort_index() for name in ("train", "test", "val")}
        return Split(train=parts["train"], test=parts["test"], val=parts["val"] if split.val is not None else None)
    column = "clip_id" if protocol == "clip" else "subject"
    merged = df.assign(**{column: _merged_groups(df[column], copies)})
    split = split_with(merged, protocol, test_size, val_size, seed)
    own = {name: df.loc[part.index] for name, part in split.sides().items()}
    return Split(train=own["train"], test=own["test"], val=own.get("val"))


# Perceptual hashes within this many bits: the same picture. JPEG at quality 50-90 and resizing by 0.5-2 move it
# by at most 2 bits; distinct faces are 4 or more apart (benchmarks/README.md, "the duplicate audit").
NEAR_BITS = 2
HASH_BITS = 64
DUPLICATES_CSV = "duplicates.csv"  # one row per audited image: hashes and groups
DUPLICATES_JSON = "duplicates.json"  # the counts, and how they were found
HASH_NAME = "imagehash.phash (64-bit DCT hash of a 32x32 gray copy)"
SIDE_PAIRS: tuple[tuple[str, str], ...] = (("train", "test"), ("train", "val"), ("val", "test"))
NO_GROUP = -1
AUDIT_COLUMNS = ("key", "clip_id", "emotion", "split", "md5", "phash", "exact_group", "near_group")


def content_digest(path: Path, image: np.ndarray | None = None) -> str:
    """The md5 of a file's bytes or, for a source that is no file of its own (a row of FER-2013's CSV, which
    `read_image` reads), of its decoded pixels (`image` when already read)."""
    if not Path(path).is_file():
        image = read_image(path) if image is None else image
        return hashlib.md5(np.ascontiguousarray(image).tobytes()).hexdigest()
    with Path(path).open("rb") as fh:
        return hashlib.file_digest(fh, "md5").hexdigest()


def image_hashes(path: Path, near: bool = True) -> tuple[str, str]:
    """(md5, phash) of one file: phash "" for a video (and when not `near`), both "" for an unreadable file."""
    try:
        if check_media(path) != "image" or not near:
            return content_digest(path), ""
        import imagehash
        from PIL import Image

        image = read_image(path)
        return content_digest(path, image), str(imagehash.phash(Image.fromarray(to_gray(image))))  # 16 hex digits
    except (MediaError, OSError):
        return "", ""


def hash_table(paths: Sequence[Path], near: bool = True) -> pd.DataFrame:
    """`md5` and `phash` of each path, in order. Videos (and everything when `near` is False) are hashed by
    their bytes only when another file has the same size: a dataset of large clips costs a `stat` per file."""
    paths = [Path(p) for p in paths]
    sizes = pd.Series([_size(p) for p in paths], dtype="int64")
    shared = (sizes.duplicated(keep=False) & sizes.ge(0)).to_numpy()
    rows = []
    for path, size, same_size in zip(paths, sizes, shared):
        try:
            kind = check_media(path)
        except (MediaError, OSError):  # not there: nothing to hash
            kind = None
        # a source with no file size of its own (a FER-2013 row) cannot be ruled out by size: hashed
        wanted = (kind == "image" and near) or (kind is not None and (same_size or size < 0))
        rows.append(image_hashes(path, near) if wanted else ("", ""))
    return pd.DataFrame(rows, columns=["md5", "phash"], dtype=object)


def _size(path: Path) -> int:
    """The file's size; -1 if there is no such file (absent, or a row of FER-2013's CSV)."""
    try:
        return path.stat().st_size
    except OSError:
        return -1


def near_pairs(hashes: Sequence[int], bits: int = NEAR_BITS) -> np.ndarray:
    """Index pairs (i < j) of `hashes` (64-bit ints, distinct values) within `bits` differing bits, by multi-index
    hashing: of `bits` + 1 bands two such hashes share one exactly, so only each band's buckets are compared."""
    values = np.asarray(hashes, dtype=np.uint64)
    found: list[np.ndarray] = []
    edges = np.linspace(0, HASH_BITS, bits + 2).astype(int)
    for low, high in zip(edges[:-1], edges[1:]):
        band = (values >> np.uint64(low)) & np.uint64((1 << int(high - low)) - 1)
        order = np.argsort(band, kind="stable")
        starts = np.flatnonzero(np.r_[True, band[order][1:] != band[order][:-1]])
        for start, stop in zip(starts, np.r_[starts[1:], len(order)]):
            if stop - start < 2:
                continue
            members = order[start:stop]
            i, j = np.triu_indices(len(members), 1)
            close = np.bitwise_count(values[members[i]] ^ values[members[j]]) <= bits
            found.append(np.stack([members[i][close], members[j][close]], axis=1))
    pairs = np.sort(np.concatenate(found), axis=1) if found else np.zeros((0, 2), dtype=np.int64)
    return np.unique(pairs, axis=0)


def _numbered(keys: pd.Series, keep: pd.Series) -> pd.Series:
    """Group numbers 0, 1, … in order of first appearance for the rows `keep` marks, NO_GROUP elsewhere."""
    codes = pd.Series(NO_GROUP, index=keys.index, dtype="int64")
    if keep.any():
        codes[keep] = pd.factorize(keys[keep])[0]
    return codes


def group_hashes(table: pd.DataFrame, bits: int = NEAR_BITS) -> pd.DataFrame:
    """`table` with `exact_group` (one md5 on several clips) and `near_group` (md5 or phash within `bits` linking
    several different files across clips); NO_GROUP for an image with no copy."""
    table = table.reset_index(drop=True)
    clips = table["clip_id"].astype(str)
    hashed = table["md5"].astype(str) != ""
    md5_clips = clips.groupby(table["md5"]).transform("nunique")
    exact = _numbered(table["md5"], hashed & (md5_clips > 1))
    links: list[tuple[int, int]] = []
    for rows in table[hashed].groupby("md5").groups.values():
        rows = list(rows)
        links += [(rows[0], other) for other in rows[1:]]
    has_phash = table["phash"].astype(str) != ""
    if has_phash.any():
        values = table.loc[has_phash, "phash"].map(lambda h: int(h, 16))
        distinct, inverse = np.unique(values.to_numpy(dtype=np.uint64), return_inverse=True)
        rows = values.index.to_numpy()
        first_of = np.empty(len(distinct), dtype=np.int64)  # the first row holding each distinct hash
        first_of[inverse[::-1]] = rows[::-1]
        links += [(int(first_of[a]), int(first_of[b])) for a, b in near_pairs(distinct, bits)]
        first = first_of[inverse]
        links += [(int(f), int(r)) for f, r in zip(first, rows) if f != r]
    edges = np.array(links, dtype=np.int64).reshape(-1, 2)
    # imported here: the tamper check (`feedback.untampered`) would take compiled module attributes for tampering
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(len(table), len(table)))
    component = pd.Series(connected_components(graph, directed=False)[1])
    several_clips = clips.groupby(component).transform("nunique") > 1
    several_files = table["md5"].where(hashed, table.index.astype(str)).groupby(component).transform("nunique") > 1
    near = _numbered(component, several_clips & several_files)
    return table.assign(exact_group=exact, near_group=near)


@dataclass(frozen=True)
class DuplicateAudit:
    """One row per audited image (`AUDIT_COLUMNS`; `key` is its path or crop)."""

    table: pd.DataFrame

    @property
    def unhashed(self) -> int:
        """Images that could not be read (no md5)."""
        return int((self.table["md5"].astype(str) == "").sum())

    def sides(self, sides: pd.Series | None = None) -> pd.Series:
        """Each image's side: `sides` (key → side, e.g. a run's split) or the dataset's own `split` column."""
        if sides is None:
            return self.table["split"].fillna("").astype(str)
        return self.table["key"].map(sides[~sides.index.duplicated()]).fillna("").astype(str)

    def counts(self, sides: pd.Series | None = None) -> dict[str, dict[str, int]]:
        """Per kind (`exact`, `near`): groups, their images, groups across sides (and per pair), label conflicts."""
        side = self.sides(sides)
        result = {}
        for kind in ("exact", "near"):
            groups = self.table[f"{kind}_group"]
            member = groups != NO_GROUP
            by_group = pd.DataFrame({"group": groups[member], "side": side[member], "emotion": self.table["emotion"]})
            sides_of = by_group[by_group["side"] != ""].groupby("group")["side"].agg(set)
            row = {
                "groups": int(groups[member].nunique()),
                "images": int(member.sum()),
                "across sides": int((sides_of.map(len) > 1).sum()),
                "conflicting labels": int((by_group.groupby("group")["emotion"].nunique() > 1).sum()),
            }
            for a, b in SIDE_PAIRS:
                row[f"{a}/{b}"] = int(sides_of.map(lambda s, a=a, b=b: a in s and b in s).sum())
            result[kind] = row
        return result

    def lines(self, sides: pd.Series | None = None) -> list[str]:
        """The report: what was audited, then exact copies and near-duplicates, each with its sides and labels."""
        counts = self.counts(sides)
        has_sides = bool((self.sides(sides) != "").any())
        what = {
            "exact": "groups of byte-identical images",
            "near": f"groups of near-duplicates (perceptual hash within {NEAR_BITS} of {HASH_BITS} bits: the "
            "same picture re-encoded or resized, or frames that look the same)",
        }
        lines = [f"duplicate audit of {len(self.table)} images ({self.unhashed} unreadable, not hashed):"]
        for kind, row in counts.items():
            line = f"  {row['groups']} {what[kind]}, {row['images']} images"
            if has_sides:
                pairs = ", ".join(f"{a}/{b} {row[f'{a}/{b}']}" for a, b in SIDE_PAIRS if row[f"{a}/{b}"])
                line += f"; {row['across sides']} span two sides" + (f" ({pairs})" if pairs else "")
            lines.append(line + f"; {row['conflicting labels']} with conflicting labels")
        return lines

    def line(self, sides: pd.Series | None = None) -> str:
        """The report in one line (what `train` prints and a chapter shows)."""
        counts = self.counts(sides)
        exact, near = counts["exact"], counts["near"]
        has_sides = bool((self.sides(sides) != "").any())
        across = f" ({exact['train/test']} and {near['train/test']} across train and test)" if has_sides else ""
        return (
            f"duplicates: {exact['groups']} groups of identical images and {near['groups']} of near-duplicates "
            f"among {len(self.table)}{across}; {exact['conflicting labels'] + near['conflicting labels']} "
            "with conflicting labels"
        )

    def write(self, csv_path: Path, json_path: Path) -> None:
        """The per-image table (grouped images first) and the counts, atomically; unchanged files are left alone."""
        alone = (self.table["near_group"] == NO_GROUP) & (self.table["exact_group"] == NO_GROUP)
        grouped = self.table.assign(_alone=alone)
        ordered = grouped.sort_values(["_alone", "near_group", "exact_group", "key"], kind="stable")
        summary = {"images": len(self.table), "unhashed": self.unhashed, "near_bits": NEAR_BITS}
        summary.update(hash=HASH_NAME, counts=self.counts(), report=self.lines())
        _write_changed(Path(csv_path), ordered.drop(columns="_alone").to_csv(index=False, lineterminator="\n"))
        _write_changed(Path(json_path), json.dumps(summary, indent=2) + "\n")


def _write_changed(path: Path, text: str) -> None:
    """Write `text` to `path` atomically unless the file already holds it."""
    data = text.encode("utf-8")
    if not (path.is_file() and path.read_bytes() == data):
        write_atomic(path, data)


def audit_paths(out: Path) -> tuple[Path, Path]:
    """Where the audit of `out` goes: beside a file (`clips.duplicates.csv`, `.json`), or inside a folder."""
    out = Path(out)
    if out.suffix:
        return out.with_suffix(f".{DUPLICATES_CSV}"), out.with_suffix(f".{DUPLICATES_JSON}")
    return out / DUPLICATES_CSV, out / DUPLICATES_JSON


def audit_duplicates(
    frames: pd.DataFrame, root: Path | None = None, column: str = "path", near: bool = True
) -> DuplicateAudit:
    """The duplicate audit of the images `frames[column]` names (relative to `root` when given)."""
    keys = frames[column].astype(str).reset_index(drop=True)
    paths = [Path(root) / key if root is not None else Path(key) for key in keys]
    return _grouped(frames, keys, hash_table(paths, near=near))


def _grouped(frames: pd.DataFrame, keys: pd.Series, hashes: pd.DataFrame) -> DuplicateAudit:
    """The audit of `frames` (their clip, emotion and side) whose images `keys` have the `md5`/`phash` `hashes`."""
    split = frames["split"].fillna("").astype(str).to_numpy() if "split" in frames.columns else ""
    table = frames[["clip_id", "emotion"]].astype(str).reset_index(drop=True)
    table = table.assign(
        key=keys.to_numpy(), split=split, md5=hashes["md5"].to_numpy(), phash=hashes["phash"].to_numpy()
    )
    return DuplicateAudit(group_hashes(table)[list(AUDIT_COLUMNS)])


def read_audit(csv_path: Path) -> DuplicateAudit:
    """An audit written by `DuplicateAudit.write`."""
    table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    missing = [c for c in AUDIT_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"{csv_path} is not a duplicate audit (missing columns {missing})")
    table[["exact_group", "near_group"]] = table[["exact_group", "near_group"]].astype("int64")
    return DuplicateAudit(table[list(AUDIT_COLUMNS)])


def _stored_hashes(crops: Path, keys: pd.Series) -> pd.DataFrame | None:
    """`md5` and `phash` of the crops `keys` from the folder's DUPLICATES_CSV; None unless it lists them all."""
    stored = Path(crops) / DUPLICATES_CSV
    if not stored.is_file():
        return None
    known = read_audit(stored).table.drop_duplicates("key").set_index("key")
    return known.loc[keys, ["md5", "phash"]].reset_index(drop=True) if keys.isin(known.index).all() else None


def crops_audit(crops: Path, frames: pd.DataFrame) -> tuple[DuplicateAudit, bool]:
    """(the audit of the crops of `frames`, whether its hashes were read from the folder's DUPLICATES_CSV)."""
    keys = frames["image"].astype(str).reset_index(drop=True)
    known = _stored_hashes(crops, keys)
    if known is None:
        return audit_duplicates(frames, crops, column="image"), False
    return _grouped(frames, keys, known), True


def crop_hashes(crops: Path, frames: pd.DataFrame) -> pd.DataFrame:
    """`md5` and `phash` of the crops of `frames`: from the folder's stored audit, else hashed now."""
    keys = frames["image"].astype(str).reset_index(drop=True)
    known = _stored_hashes(crops, keys)
    return hash_table([Path(crops) / key for key in keys]) if known is None else known


def copies_among(query: pd.DataFrame, reference: pd.DataFrame, bits: int = NEAR_BITS) -> np.ndarray:
    """For each row of `query` (`md5`, `phash`): whether `reference` holds the same bytes or a perceptual hash
    within `bits` bits (the same picture re-encoded or resized), found without comparing every pair."""
    same = query["md5"].isin(set(reference["md5"].astype(str)) - {""}).to_numpy()
    mine = {int(h, 16) for h in query["phash"].astype(str) if h}
    theirs = {int(h, 16) for h in reference["phash"].astype(str) if h}
    hits = mine & theirs
    distinct = np.array(sorted(mine | theirs), dtype=np.uint64)
    for a, b in near_pairs(distinct, bits):
        x, y = int(distinct[a]), int(distinct[b])
        if x in mine and y in theirs:
            hits.add(x)
        if y in mine and x in theirs:
            hits.add(y)
    near = query["phash"].astype(str).map(lambda h: bool(h) and int(h, 16) in hits).to_numpy(dtype=bool)
    return same | near


def copy_labels(frames: pd.DataFrame, audit: DuplicateAudit) -> pd.Series:
    """One label per row, shared by exact copies on different clips (`copy-<group>`), else `row-<index>`."""
    groups = frames["image"].astype(str).map(audit.table.set_index("key")["exact_group"]).fillna(NO_GROUP)
    own = pd.Series([f"row-{i}" for i in frames.index], index=frames.index)
    return own.where(groups.astype(int) == NO_GROUP, "copy-" + groups.astype(int).astype(str))


def copies_of(frames: pd.DataFrame, others: pd.DataFrame, audit: DuplicateAudit) -> pd.Series:
    """For each row of `frames`: whether its crop copies (exactly or nearly) a crop of `others`."""
    table = audit.table.set_index("key")
    result = pd.Series(False, index=frames.index)
    for groups in (table["exact_group"], table["near_group"]):
        other_groups = set(others["image"].astype(str).map(groups).dropna().astype(int)) - {NO_GROUP}
        result |= frames["image"].astype(str).map(groups).fillna(NO_GROUP).astype(int).isin(other_groups)
    return result


def audited_split(
    frames: pd.DataFrame,
    root: Path,
    protocol: str,
    test_size: float,
    val_size: float,
    seed: int,
    clean_test: bool = False,
    split_with: Callable[[pd.DataFrame, str, float, float, int], Split] = split_frames,
) -> Split:
    """The run's split with exact copies on one side and `md5`/`phash` per row; test rows copying a train crop
    are marked `copy_of_train` or, with `clean_test`, removed. `Split.duplicates` records the audit."""
    audit, stored = crops_audit(root, frames)
    hashes = audit.table.drop_duplicates("key").set_index("key")[["md5", "phash"]]
    keys = frames["image"].astype(str)
    frames = frames.assign(md5=keys.map(hashes["md5"]), phash=keys.map(hashes["phash"]))
    copies = copy_labels(frames, audit)
    split = split_keeping_copies(frames, copies, protocol, test_size, val_size, seed, split_with)
    copied = copies_of(split.test, split.train, audit)
    split.test = split.test.assign(copy_of_train=copied)
    if clean_test:
        split.test = split.test[~copied]
    sides = pd.concat([part["image"].astype(str).to_frame().assign(side=name) for name, part in split.sides().items()])
    split.duplicates = {
        "line": audit.line(sides.set_index("image")["side"]),
        "audit": "read from the crops folder" if stored else "computed (the crops folder holds none)",
        "copies kept on one side": int(copies[copies.str.startswith("copy-")].nunique()) if protocol != "given" else 0,
        "test copies of train": int(copied.sum()),
        "clean_test": bool(clean_test),
        "removed from test": int(copied.sum()) if clean_test else 0,
    }
    return split


def write_train_hashes(split: Split, path: Path) -> bool:
    """Write the train side's distinct `md5`/`phash` (what `evaluate` checks) to `path`; False if it has none."""
    if not {"md5", "phash"} <= set(split.train.columns):
        return False
    split.train[["md5", "phash"]].drop_duplicates().sort_values(["md5", "phash"]).to_csv(path, index=False)
    return True


def audit_line(crops: Path) -> str:
    """The one line a chapter shows about the duplicates among its crops, on the dataset's own sides."""
    audit, _ = crops_audit(Path(crops), usable_frames(load_manifest(crops)))
    return audit.line()
