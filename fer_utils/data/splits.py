"""Reproducible train/test(/val) splits and the leak check.

The protocols, on any table with `emotion`, `clip_id` and `subject` columns (a clip index or a manifest):
`random` (rows stratified by emotion, the paper's 80/20 protocol: frames of one clip, and every actor, land
on both sides, so it measures memorisation as much as recognition), `clip` and `subject` (whole clips or
actors on one side), and `given` (the dataset's own `split` column). Split tables keep the input's index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold, train_test_split

from fer_utils.data.corpora import SPLITS, has_split
from fer_utils.errors import InputError
from fer_utils.registry import GIVEN_PROTOCOL, PAPER_PROTOCOL, PAPER_TEST_SIZE, PROTOCOLS

REQUIRED_COLUMNS: tuple[str, ...] = ("emotion", "clip_id", "subject")
# What a run on a dataset whose own split has no test side (AffectNet: train and val) is told.
VAL_AS_TEST = (
    "the dataset gives no test side: its val side ({rows} rows) is the test side (a val side for early "
    "stopping is carved out of train when val_size is above 0)"
)


@dataclass
class Split:
    """Disjoint train and test tables, and an optional validation table; `notes` says what a reader must know
    beyond the protocol (the val side tested on), `duplicates` what the duplicate audit found and did
    (`duplicates.audited_split`); both go into a run's config.json."""

    train: pd.DataFrame
    test: pd.DataFrame
    val: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    duplicates: dict = field(default_factory=dict)

    def sides(self) -> dict[str, pd.DataFrame]:
        """The sides by name (train, test, and val when there is one)."""
        named = {"train": self.train, "test": self.test, "val": self.val}
        return {k: v for k, v in named.items() if v is not None}


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


def _check_table(df: pd.DataFrame) -> None:
    """Raise InputError unless `df` has the columns splits need and at least two rows."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"a split needs columns {REQUIRED_COLUMNS}; missing {missing}")
    if len(df) < 2:
        raise InputError(f"cannot split a table of {len(df)} row(s)")


def _check_fraction(name: str, value: float, allow_zero: bool) -> None:
    """Raise InputError unless 0 < value < 1 (or value == 0 when allowed)."""
    if not (0 < value < 1 or (allow_zero and value == 0)):
        raise InputError(f"{name} must be a fraction in (0, 1), got {value}")


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
    """InputError, before anything is split, for an unknown protocol, a table without the columns a
    split needs, or sizes that are not fractions leaving something to train on."""
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown split protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    _check_table(df)
    _check_fraction("test_size", test_size, allow_zero=False)
    _check_fraction("val_size", val_size, allow_zero=True)
    if test_size + val_size >= 1:
        raise InputError(f"test_size + val_size must be below 1, got {test_size + val_size}")


def resolve_protocol(df: pd.DataFrame, protocol: str | None = None) -> str:
    """The split protocol a run uses: `protocol` when one was chosen, else `given` when `df` carries the
    dataset's own split (its scores are then comparable with the published ones), else the paper's `random`."""
    if protocol is not None:
        return protocol
    return GIVEN_PROTOCOL if has_split(df) else PAPER_PROTOCOL


def chosen_protocol(df: pd.DataFrame, protocol: str | None = None) -> str | None:
    """The protocol to ask for: `protocol`, else "subject" when a dataset without its own split has several
    rows of a person (a random split lets the model recognise the person rather than the expression:
    chapter 6), else None (`resolve_protocol` decides)."""
    if protocol is not None or has_split(df) or "subject" not in df.columns:
        return protocol
    return "subject" if df["subject"].dropna().duplicated().any() else None


def given_sides(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The rows of each side (train, val, test) of the dataset's own split; InputError when `df` has no
    split (naming the protocols to use instead) or a row whose split is not one of SPLITS."""
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
    """The dataset's own split: train, val and test are the rows whose `split` says so.

    A dataset with no test side (AffectNet does not publish its test set) is tested on its val side. With no
    val side left and `val_size` > 0, `val_size` of the whole table is carved out of train (whole clips when
    clips have several frames); the dataset's own val side is kept whatever `val_size` says.
    """
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
        if train["clip_id"].duplicated().any():
            keep, held = group_holdout(train, "clip_id", share, seed)
        else:
            keep, held = random_holdout(train, share, seed)
        train, val = train.loc[keep].sort_index(), train.loc[held].sort_index()
    return Split(train=train, test=test, val=val if len(val) else None, notes=notes)


def split_note(df: pd.DataFrame) -> str:
    """One line saying that the dataset's own split is used, with each side's rows and the side tested on when
    it gives no test side; InputError when `df` has no split."""
    given_sides(df)
    counts = df["split"].fillna("").astype(str).value_counts()
    sides = ", ".join(f"{side} {int(counts[side])}" for side in SPLITS if side in counts)
    line = f"protocol {GIVEN_PROTOCOL}: the dataset's own split, {sides} rows"
    if not counts.get("test", 0) and counts.get("val", 0):
        line += "; " + VAL_AS_TEST.format(rows=int(counts["val"]))
    return line + "; --protocol random, clip or subject splits the rows instead"


def given_warnings(df: pd.DataFrame) -> list[str]:
    """What the dataset's own split leaves its test side without: each class of the train side the tested side
    (test, else val) lacks, whose F1 then cannot be measured (the macro F1 averages the classes present)."""
    sides = given_sides(df)
    tested = sides["test"] if len(sides["test"]) else sides["val"]
    name = "test" if len(sides["test"]) else "val (tested on)"
    trained = sides["train"]["emotion"].astype(str)
    lacking = sorted(set(trained) - set(tested["emotion"].astype(str)))
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
    """`labels` (a clip or subject per row) with every two labels that hold copies of one image (rows that
    `copies` labels alike) merged into one, transitively (union-find); the first label names the merged group."""
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
    """`split_with`, with the rows that `copies` labels alike (copies of one image: `duplicates.copy_labels`)
    on one side: `random` splits one row per copy and the other copies follow it; `clip` and `subject` merge
    the groups that share a copy. Without copies, or with `given`, it is exactly `split_with`."""
    check_split_request(df, protocol, test_size, val_size)
    if protocol == GIVEN_PROTOCOL or not copies.duplicated().any():
        return split_with(df, protocol, test_size, val_size, seed)
    if protocol == "random":
        first = ~copies.duplicated()
        split = split_with(df[first], protocol, test_size, val_size, seed)
        side = {copies[i]: name for name, part in split.sides().items() for i in part.index}
        where = copies.map(side)
        parts = {name: df[where == name].sort_index() for name in ("train", "test", "val")}
        return Split(train=parts["train"], test=parts["test"], val=parts["val"] if split.val is not None else None)
    column = "clip_id" if protocol == "clip" else "subject"
    merged = df.assign(**{column: _merged_groups(df[column], copies)})
    split = split_with(merged, protocol, test_size, val_size, seed)
    own = {name: df.loc[part.index] for name, part in split.sides().items()}
    return Split(train=own["train"], test=own["test"], val=own.get("val"))
