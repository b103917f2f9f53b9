"""The checkers of chapter 1, the dataset tour: each computes the expected answer from the real data it is given."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from fer_utils.exercises.feedback import Feedback, check_number, coding_exercise, run_student

RAVDESS_FIELDS: dict[str, int] = {"emotion": 2, "intensity": 3, "statement": 4, "repetition": 5, "actor": 6}
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh")


@coding_exercise
def check_ravdess_parser(parse: Callable[[str], dict], clips: pd.DataFrame | None = None) -> Feedback:
    """`parse(file_name)` returns a RAVDESS name's fields as the book's indexer reads them: `emotion` (a name
    of the codebook), `intensity`, `statement`, `repetition` and `actor` (integers). Checked on the real
    RAVDESS clip shipped with the package and on one clip per emotion of the chapter's index `clips`."""
    from fer_utils.assets import ravdess_clip_path
    from fer_utils.data import index_ravdess

    table = index_ravdess(ravdess_clip_path().parent, modalities=("01", "02")).clips
    if clips is not None and set(RAVDESS_FIELDS) <= set(clips.columns):
        table = pd.concat([table, clips.groupby("emotion", sort=False).head(1)], ignore_index=True)
    for row in table.itertuples(index=False):
        name = Path(row.path).name
        got = run_student(parse, name)
        if not isinstance(got, dict):
            return Feedback(False, f"`{parse.__name__}({name!r})` returned {got!r}: return a dict of the fields.")
        for field, position in RAVDESS_FIELDS.items():
            value, code = getattr(row, field), name.split(".")[0].split("-")[position]
            expected = value.item() if isinstance(value, np.generic) else value
            where = f"the {ORDINALS[position]} field, {code!r}"
            if field not in got:
                return Feedback(False, f"for {name} your dict has no `{field}` ({where}).")
            if got[field] != expected:
                hint = "look the code up in RAVDESS_EMOTIONS" if field == "emotion" else f"an integer: int({code!r})"
                return Feedback(
                    False, f"for {name} your `{field}` is {got[field]!r}, but {where} means {expected!r} ({hint})."
                )
    example = Path(table["path"].iloc[0]).name
    return Feedback(True, f"your parser reads all {len(table)} names, e.g. {example} → {parse(example)}.")


def check_clip_count(answer: object, clips: pd.DataFrame, emotion: str) -> Feedback:
    """How many clips of `emotion` the clip index holds."""
    return check_number(answer, int((clips["emotion"] == emotion).sum()), f"the number of {emotion} clips", 0)
