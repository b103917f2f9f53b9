"""The duplicate audit of a dataset: byte-identical images and near-duplicates, within and across the sides
of a split, and the groups whose labels conflict.

A copy on the train and the test side is scored as if it were new. Exact copies share an `md5` (of the
bytes; of the decoded pixels for a FER-2013 row). Near-duplicates are stills whose 64-bit `phash` differ in
at most NEAR_BITS bits: measured, JPEG at quality 50 to 90 and resizing by 0.5 to 2 move it by at most 2
bits, distinct generated faces are 6 or more apart, distinct photographs 4 or more (benchmarks/README.md,
"the duplicate audit"). Frames of one clip are never copies of each other. Near-duplicates (also frames of
different clips that look the same) are reported and mark test copies, but splits keep only exact copies
together. Files and uses: CONTRACTS.md, "Duplicate audit".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.data.fer2013 import parse_row_path
from fer_utils.data.splits import Split, split_frames, split_keeping_copies
from fer_utils.errors import InputError, MediaError

NEAR_BITS = 2  # perceptual hashes within this many of their 64 bits: the same picture re-encoded or resized
HASH_BITS = 64
DUPLICATES_CSV = "duplicates.csv"  # one row per audited image: hashes and groups
DUPLICATES_JSON = "duplicates.json"  # the counts, and how they were found
HASH_NAME = "imagehash.phash (64-bit DCT hash of a 32x32 gray copy)"
SIDE_PAIRS: tuple[tuple[str, str], ...] = (("train", "test"), ("train", "val"), ("val", "test"))
NO_GROUP = -1
AUDIT_COLUMNS = ("key", "clip_id", "emotion", "split", "md5", "phash", "exact_group", "near_group")


def file_digest(path: Path, image: np.ndarray | None = None) -> str:
    """The md5 of a file's bytes (streamed), or of the decoded pixels (`image`, when already read) of a
    FER-2013 row path."""
    from fer_utils.data.images import read_image

    if parse_row_path(path) is not None:
        image = read_image(path) if image is None else image
        return hashlib.md5(np.ascontiguousarray(image).tobytes()).hexdigest()
    with Path(path).open("rb") as fh:
        return hashlib.file_digest(fh, "md5").hexdigest()


def perceptual_hash(image: np.ndarray) -> str:
    """The 64-bit perceptual hash of an image (any channels or depth) as 16 hex digits (`imagehash.phash`)."""
    import imagehash
    from PIL import Image

    from fer_utils.data.images import to_gray

    return str(imagehash.phash(Image.fromarray(to_gray(image))))


def image_hashes(path: Path, near: bool = True) -> tuple[str, str]:
    """(md5, phash) of one file: phash "" for a video (and when not `near`), and both "" for a file that
    cannot be read (the preprocessing records why; the audit counts it as unhashed)."""
    from fer_utils.data.images import check_media, read_image

    try:
        if check_media(path) != "image" or not near:
            return file_digest(path), ""
        image = read_image(path)
        return file_digest(path, image), perceptual_hash(image)
    except (MediaError, OSError):
        return "", ""


def hash_table(paths: Sequence[Path], near: bool = True) -> pd.DataFrame:
    """`md5` and `phash` of each path, in order. Videos (and everything when `near` is False) are hashed by
    their bytes only when another file has the same size: a dataset of large clips costs a `stat` per file."""
    paths = [Path(p) for p in paths]
    sizes = pd.Series([_size(p) for p in paths], dtype="int64")
    shared = (sizes.duplicated(keep=False) & sizes.ge(0)).to_numpy()
    rows = []
    for path, same_size in zip(paths, shared):
        kind = _kind(path)
        wanted = (kind == "image" and near) or (kind is not None and (same_size or parse_row_path(path) is not None))
        rows.append(image_hashes(path, near) if wanted else ("", ""))
    return pd.DataFrame(rows, columns=["md5", "phash"], dtype=object)


def _size(path: Path) -> int:
    """The file's size (a row path: its own text, so rows never share a size by accident: -1), -1 if absent."""
    if parse_row_path(path) is not None:
        return -1
    try:
        return path.stat().st_size
    except OSError:
        return -1


def _kind(path: Path) -> str | None:
    """What `images.check_media` says the file is ('image', 'gif', 'video'), or None for one that is not there."""
    from fer_utils.data.images import check_media

    try:
        return check_media(path)
    except (MediaError, OSError):
        return None


def near_pairs(hashes: Sequence[int], bits: int = NEAR_BITS) -> np.ndarray:
    """Index pairs (i < j) of `hashes` (64-bit ints, distinct values) within `bits` differing bits.

    Multi-index hashing: cut into `bits` + 1 bands, two hashes within `bits` bits share a band exactly, so
    only hashes that share a band value are compared (the pairs of each band's buckets)."""
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
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.sort(np.concatenate(found), axis=1)
    return np.unique(pairs, axis=0)


def _components(n: int, pairs: list[tuple[int, int]]) -> np.ndarray:
    """A component label for each of `n` items linked by `pairs` (scipy's connected components)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    links = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    graph = coo_matrix((np.ones(len(links)), (links[:, 0], links[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _numbered(keys: pd.Series, keep: pd.Series) -> pd.Series:
    """Group numbers 0, 1, … in order of first appearance for the rows `keep` marks, NO_GROUP elsewhere."""
    codes = pd.Series(NO_GROUP, index=keys.index, dtype="int64")
    if keep.any():
        codes[keep] = pd.factorize(keys[keep])[0]
    return codes


def group_hashes(table: pd.DataFrame, bits: int = NEAR_BITS) -> pd.DataFrame:
    """`table` (`clip_id`, `md5`, `phash`) with `exact_group` (the same md5 on two or more clips) and
    `near_group` (linked by the same md5 or by perceptual hashes within `bits`, across clips, holding two or
    more different files); NO_GROUP for an image with no copy."""
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
    component = pd.Series(_components(len(table), links))
    several_clips = clips.groupby(component).transform("nunique") > 1
    several_files = table["md5"].where(hashed, table.index.astype(str)).groupby(component).transform("nunique") > 1
    near = _numbered(component, several_clips & several_files)
    return table.assign(exact_group=exact, near_group=near)


@dataclass(frozen=True)
class DuplicateAudit:
    """One row per audited image (`AUDIT_COLUMNS`: `key` is its path or crop, as the audited table names it),
    the perceptual-hash radius used, and how many images could not be hashed."""

    table: pd.DataFrame
    near_bits: int = NEAR_BITS

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
        """Per kind (`exact`, `near`): groups, images in them, groups across two sides (and per pair of
        sides), groups whose labels conflict."""
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
            "near": f"groups of near-duplicates (perceptual hash within {self.near_bits} of {HASH_BITS} bits: the "
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
        """The per-image table (grouped images first) and the counts, each written atomically; a file that
        already holds these bytes is left alone (a second identical run changes nothing)."""
        alone = (self.table["near_group"] == NO_GROUP) & (self.table["exact_group"] == NO_GROUP)
        grouped = self.table.assign(_alone=alone)
        ordered = grouped.sort_values(["_alone", "near_group", "exact_group", "key"], kind="stable")
        summary = {"images": len(self.table), "unhashed": self.unhashed, "near_bits": self.near_bits}
        summary.update(hash=HASH_NAME, counts=self.counts(), report=self.lines())
        _write_changed(Path(csv_path), ordered.drop(columns="_alone").to_csv(index=False, lineterminator="\n"))
        _write_changed(Path(json_path), json.dumps(summary, indent=2) + "\n")


def _write_changed(path: Path, text: str) -> None:
    """Write `text` to `path` atomically unless the file already holds it."""
    from fer_utils.storage.atomic import write_atomic

    data = text.encode("utf-8")
    if not (path.is_file() and path.read_bytes() == data):
        write_atomic(path, data)


def audit_paths(out: Path) -> tuple[Path, Path]:
    """Where the audit of a table written to `out` goes: beside a file (`clips.csv`: `clips.duplicates.csv` and
    `.json`), or DUPLICATES_CSV and DUPLICATES_JSON inside a folder."""
    out = Path(out)
    if out.suffix:
        return out.with_suffix(f".{DUPLICATES_CSV}"), out.with_suffix(f".{DUPLICATES_JSON}")
    return out / DUPLICATES_CSV, out / DUPLICATES_JSON


def audit_duplicates(
    frames: pd.DataFrame, root: Path | None = None, column: str = "path", near: bool = True
) -> DuplicateAudit:
    """The duplicate audit of the images `frames[column]` names (relative to `root` when given), with their
    `clip_id`, `emotion` and `split` (empty when the dataset gives none)."""
    keys = frames[column].astype(str).reset_index(drop=True)
    paths = [Path(root) / key if root is not None else Path(key) for key in keys]
    return _grouped(frames, keys, hash_table(paths, near=near))


def _grouped(frames: pd.DataFrame, keys: pd.Series, hashes: pd.DataFrame) -> DuplicateAudit:
    """The audit of `frames` (their clip, emotion and side) whose images `keys` have the `md5`/`phash` `hashes`."""
    split = frames["split"] if "split" in frames.columns else pd.Series("", index=frames.index)
    table = pd.DataFrame(
        {
            "key": keys.to_numpy(),
            "clip_id": frames["clip_id"].astype(str).to_numpy(),
            "emotion": frames["emotion"].astype(str).to_numpy(),
            "split": split.fillna("").astype(str).to_numpy(),
            "md5": hashes["md5"].to_numpy(),
            "phash": hashes["phash"].to_numpy(),
        }
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
    """`md5` and `phash` of the crops `keys` from the folder's DUPLICATES_CSV, one row each, in order; None when
    it has none or does not list them all."""
    stored = Path(crops) / DUPLICATES_CSV
    if not stored.is_file():
        return None
    known = read_audit(stored).table.drop_duplicates("key").set_index("key")
    return known.loc[keys, ["md5", "phash"]].reset_index(drop=True) if keys.isin(known.index).all() else None


def crops_audit(crops: Path, frames: pd.DataFrame) -> tuple[DuplicateAudit, bool]:
    """(the audit of the crops of `frames`, whether its hashes were read from the folder's DUPLICATES_CSV): the
    stored hashes regrouped over these crops when it lists them all, else a new audit."""
    keys = frames["image"].astype(str).reset_index(drop=True)
    known = _stored_hashes(crops, keys)
    if known is None:
        return audit_duplicates(frames, crops, column="image"), False
    return _grouped(frames, keys, known), True


def crop_hashes(crops: Path, frames: pd.DataFrame) -> pd.DataFrame:
    """`md5` and `phash` of the crops of `frames` (one row each, in order): from the folder's stored audit where
    it lists them, hashed now otherwise."""
    keys = frames["image"].astype(str).reset_index(drop=True)
    known = _stored_hashes(crops, keys)
    return hash_table([Path(crops) / key for key in keys]) if known is None else known


def copies_among(query: pd.DataFrame, reference: pd.DataFrame, bits: int = NEAR_BITS) -> np.ndarray:
    """For each row of `query` (`md5`, `phash`): whether `reference` holds the same bytes or a perceptual hash
    within `bits` bits (the same picture re-encoded or resized), found without comparing every pair."""
    same = query["md5"].isin(set(reference["md5"].astype(str)) - {""}).to_numpy()

    def values(table: pd.DataFrame) -> set[int]:
        return {int(h, 16) for h in table["phash"].astype(str) if h}

    mine, theirs = values(query), values(reference)
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
    """One label per row of `frames`, shared by the exact copies of one image on different clips
    (`copy-<group>`), unique otherwise (`row-<index>`): what `splits.split_keeping_copies` keeps on one side."""
    groups = frames["image"].astype(str).map(audit.table.set_index("key")["exact_group"]).fillna(NO_GROUP)
    own = pd.Series([f"row-{i}" for i in frames.index], index=frames.index)
    return own.where(groups.astype(int) == NO_GROUP, "copy-" + groups.astype(int).astype(str))


def copies_of(frames: pd.DataFrame, others: pd.DataFrame, audit: DuplicateAudit) -> pd.Series:
    """For each row of `frames`: whether its crop copies (exactly or nearly) a crop of `others`."""
    table = audit.table.set_index("key")
    mine = frames["image"].astype(str)
    theirs = others["image"].astype(str)
    result = pd.Series(False, index=frames.index)
    for kind in ("exact_group", "near_group"):
        groups = table[kind]
        other_groups = set(theirs.map(groups).dropna().astype(int)) - {NO_GROUP}
        result |= mine.map(groups).fillna(NO_GROUP).astype(int).isin(other_groups)
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
    """The run's split of `frames` (usable crops under `root`) by `split_with`, with exact copies kept on one
    side (`splits.split_keeping_copies`), each row's `md5` and `phash`, and the test rows that copy a train
    crop (exactly or nearly) marked `copy_of_train` or, with `clean_test`, removed. `Split.duplicates`
    records what the audit found (config.json's `duplicates`)."""
    audit, stored = crops_audit(root, frames)
    hashes = audit.table.drop_duplicates("key").set_index("key")[["md5", "phash"]]
    keys = frames["image"].astype(str)
    frames = frames.assign(md5=keys.map(hashes["md5"]), phash=keys.map(hashes["phash"]))
    copies = copy_labels(frames, audit)
    split = split_keeping_copies(frames, copies, protocol, test_size, val_size, seed, split_with)
    copied = copies_of(split.test, split.train, audit)
    split.test = split.test.assign(copy_of_train=copied)
    removed = int(copied.sum()) if clean_test else 0
    if clean_test:
        split.test = split.test[~copied]
    sides = pd.concat([part["image"].astype(str).to_frame().assign(side=name) for name, part in split.sides().items()])
    split.duplicates = {
        "line": audit.line(sides.set_index("image")["side"]),
        "audit": "read from the crops folder" if stored else "computed (the crops folder holds none)",
        "copies kept on one side": int(copies[copies.str.startswith("copy-")].nunique()) if protocol != "given" else 0,
        "test copies of train": int(copied.sum()),
        "clean_test": bool(clean_test),
        "removed from test": removed,
    }
    return split


def write_train_hashes(split: Split, path: Path) -> bool:
    """Write the content hashes of the train side (`md5`, `phash`, one row per distinct crop) to `path`, what
    `evaluate` compares other crops with; False (nothing written) for a split made without them."""
    if not {"md5", "phash"} <= set(split.train.columns):
        return False
    split.train[["md5", "phash"]].drop_duplicates().sort_values(["md5", "phash"]).to_csv(path, index=False)
    return True


def audit_line(crops: Path) -> str:
    """The one line a chapter shows about the duplicates among its crops, on the dataset's own sides (a run's
    line, on its own split, is its config.json's `duplicates.line`)."""
    from fer_utils.data.manifest import load_manifest, usable_frames

    audit, _ = crops_audit(Path(crops), usable_frames(load_manifest(crops)))
    return audit.line()
