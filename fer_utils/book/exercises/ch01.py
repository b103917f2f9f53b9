"""The checkers of chapter 1, the dataset tour: each computes the expected answer from the real data it is given."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.book.exercises.feedback import Feedback, check_number, coding_exercise, run_student, same_value

RAVDESS_FIELDS: dict[str, int] = {"emotion": 2, "intensity": 3, "statement": 4, "repetition": 5, "actor": 6}
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh")
# Valid RAVDESS names in which every two fields differ somewhere: a parser that reads a wrong field fails on one.
TELL_APART = ("01-01-03-02-01-02-12.mp4", "02-01-05-01-02-01-07.mp4", "01-01-01-01-02-02-24.mp4")


@coding_exercise
def check_ravdess_parser(parse: Callable[[str], dict], clips: pd.DataFrame | None = None) -> Feedback:
    """`parse(file_name)` returns a RAVDESS name's fields as the book's indexer reads them: `emotion` (a name of
    the codebook), `intensity`, `statement`, `repetition` and `actor` (integers)."""
    from fer_utils.assets import ravdess_clip_path
    from fer_utils.data.corpora import _parse_ravdess, index_ravdess

    table = index_ravdess(ravdess_clip_path().parent, modalities=("01", "02")).clips
    made = [{"path": name, **_parse_ravdess(Path(name), Path(name).parent, ("01", "02"))} for name in TELL_APART]
    table = pd.concat([table, pd.DataFrame(made)], ignore_index=True)
    if clips is not None:
        original, _ = original_index(clips)
        if original is not None and set(RAVDESS_FIELDS) <= set(original.columns):
            table = pd.concat([table, original.groupby("emotion", sort=False).head(1)], ignore_index=True)
    for row in table.itertuples(index=False):
        name = Path(row.path).name
        got = run_student(parse, name)
        if type(got) is not dict:
            return Feedback(False, f"`{parse.__name__}({name!r})` returned {got!r}: return a dict of the fields.")
        codes = name.split(".")[0].split("-")
        for field, position in RAVDESS_FIELDS.items():
            value, code = getattr(row, field), codes[position]
            expected = value.item() if isinstance(value, np.generic) else value
            where = f"the {ORDINALS[position]} field, {code!r}"
            if field not in got:
                return Feedback(False, f"for {name} your dict has no `{field}` ({where}).")
            if not same_value(got[field], expected):
                misread = [i for i, other in enumerate(codes) if i != position and same_value(got[field], int(other))]
                hint = "look the code up in RAVDESS_EMOTIONS" if field == "emotion" else f"an integer: int({code!r})"
                if field != "emotion" and misread and not same_value(got[field], int(code)):
                    places = " or the ".join(f"{ORDINALS[i]} ({codes[i]!r})" for i in misread)
                    hint = f"{got[field]!r} is what the {places} field holds: read the {ORDINALS[position]}"
                return Feedback(
                    False, f"for {name} your `{field}` is {got[field]!r}, but {where} means {expected!r} ({hint})."
                )
    example = Path(table["path"].iloc[0]).name
    return Feedback(True, f"your parser reads all {len(table)} names, e.g. {example} → {parse(example)}.")


def original_index(clips: pd.DataFrame) -> tuple[pd.DataFrame | None, str]:
    """`clips` indexed again from its folder and what differs ("" if nothing), or (None, why): `clips` is no truth."""
    from fer_utils.data.indexing import index_dataset
    from fer_utils.errors import FerError

    if type(clips) is not pd.DataFrame or not {"path", "dataset", "emotion"} <= set(clips.columns) or clips.empty:
        return None, "`clips` is not a clip index (a table with path, dataset and emotion columns)"
    names = set(clips["dataset"].astype(str))
    root = Path(os.path.commonpath([str(Path(p).parent) for p in clips["path"].astype(str)]))
    try:
        fresh = index_dataset(names.pop(), root).clips if len(names) == 1 else None
    except (FerError, OSError, TypeError):
        fresh = None
    if fresh is None:
        return None, f"`clips` cannot be indexed again from {root}"
    given = set(zip(clips["path"].astype(str), clips["emotion"].astype(str)))
    whole = set(zip(fresh["path"].astype(str), fresh["emotion"].astype(str)))
    if given == whole and len(clips) == len(fresh):
        return fresh, ""
    return fresh, (
        f"`clips` is not the index of {root} any more ({len(whole - given)} clip(s) of the folder missing "
        f"or relabelled, {len(given - whole) + max(0, len(clips) - len(given))} added or repeated)"
    )


def check_clip_count(answer: object, clips: pd.DataFrame, emotion: str) -> Feedback:
    """How many clips of `emotion` the clip index holds, counted on the index read again from the dataset's files
    (a `clips` filtered, relabelled or made up before answering changes nothing; one that cannot be indexed again
    fails)."""
    original, changed = original_index(clips)
    if original is None:
        return Feedback(False, f"{changed}: pass the chapter's `clips`, the index of the dataset's files.")
    feedback = check_number(answer, int((original["emotion"] == emotion).sum()), f"the number of {emotion} clips", 0)
    if not feedback.ok and changed:
        return Feedback(False, f"{feedback.message} Note: {changed}; count on the chapter's index.")
    return feedback
