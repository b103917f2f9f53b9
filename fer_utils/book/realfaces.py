"""The real faces the book ships, as test sets for a model trained elsewhere, and scoring a model on them.

Four small sets, cropped and cached: the London faces, 24 neutral RAVDESS stills, six CREMA-D clips and one
RAVDESS clip. Scores are per set, pooled and per clip (mean vote), macro F1 over the emotions present.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import pandas as pd

from fer_utils.assets import cremad_dir, london_faces_dir, ravdess_clip_path, still_paths
from fer_utils.book import artifacts
from fer_utils.book.chapters import bootstrap_interval
from fer_utils.data.manifest import load_manifest, usable_frames
from fer_utils.deploy.crossdata import Predict, predict_known
from fer_utils.errors import InputError
from fer_utils.evaluate.metrics import classification_metrics, clip_vote, predicted_labels, present_classes

LONDON_PATTERN = r"^(\d+)_"  # the London person is the number before the underscore
STILLS_PATTERN = r"^(Actor_\d+)"  # a still is named after its RAVDESS actor
STILLS_FOLDER = "ravdess_stills_neutral"  # in the cache: the stills laid out as a folder of classes
FRAMES_PER_CLIP = 6  # the paper's six frames per clip
POOLED = "all real faces"
CLIP_SETS = ("CREMA-D clips", "RAVDESS clip")  # the sets whose frames come from clips (voted per clip)


@dataclass(frozen=True)
class RealSet:
    """One real test set: its crops folder and its usable frames."""

    name: str
    crops: Path
    frames: pd.DataFrame


def stills_folder(cache: str | os.PathLike | None = None) -> Path:
    """The 24 neutral RAVDESS stills copied into a folder of classes (`neutral/Actor_NN.png`) the indexer reads."""
    folder = artifacts.default_cache(cache) / STILLS_FOLDER

    def copy(tmp: Path) -> None:
        (tmp / "neutral").mkdir(parents=True)
        for still in still_paths():
            shutil.copy2(still, tmp / "neutral" / still.name)

    return artifacts.build_atomically(folder, copy)


def real_sets(cache: str | os.PathLike | None = None) -> dict[str, RealSet]:
    """The four real sets, cropped (cached) and read: London faces, RAVDESS stills, CREMA-D clips, RAVDESS clip."""
    sources = {  # name: (indexer, root, indexer options)
        "London faces": ("folder", london_faces_dir(), {"subject_pattern": LONDON_PATTERN}),
        "RAVDESS stills": ("folder", stills_folder(cache), {"subject_pattern": STILLS_PATTERN}),
        "CREMA-D clips": ("cremad", cremad_dir(), {}),
        "RAVDESS clip": ("ravdess", ravdess_clip_path().parent, {"modalities": ("01", "02")}),
    }
    sets = {}
    for name, (kind, root, options) in sources.items():
        crops = artifacts.Dataset(kind, root).crops(cache, frames=FRAMES_PER_CLIP, **options)
        sets[name] = RealSet(name, crops, usable_frames(load_manifest(crops)).reset_index(drop=True))
    return sets


def predict_set(
    model: keras.Model, classes: Sequence[str], real: RealSet, predict: Predict | None = None, tta: str = "none"
) -> pd.DataFrame:
    """One row per frame of `real` whose emotion the model knows, predicted by `model` or `predict` (e.g. TFLite),
    averaged over test-time augmentation `tta`'s views."""
    known = predict_known(model, list(classes), real.frames, real.crops, predict, tta=tta)
    table = known.frames[["clip_id", "subject", "emotion", "image"]].assign(
        set=real.name, predicted=predicted_labels(known.probabilities, classes)
    )
    return pd.concat([table, pd.DataFrame(known.probabilities, columns=[f"p_{c}" for c in classes])], axis=1)


def predict_real(
    model: keras.Model,
    classes: Sequence[str],
    sets: dict[str, RealSet],
    predict: Predict | None = None,
    tta: str = "none",
) -> pd.DataFrame:
    """`predict_set` over every set in one table (a set with no emotion the model knows adds no row)."""
    tables = [predict_set(model, classes, real, predict, tta) for real in sets.values()]
    return pd.concat([t for t in tables if len(t)], ignore_index=True)


def _scores(table: pd.DataFrame, classes: Sequence[str]) -> dict[str, float]:
    """Accuracy, macro F1 over the emotions present, and the majority baseline of a predictions table."""
    metrics = classification_metrics(table["emotion"], table["predicted"], classes)
    return {
        "frames": len(table),
        "emotions": len(present_classes(table["emotion"], classes)),
        "accuracy": metrics["accuracy"],
        "macro F1": metrics["f1_macro"],
        "majority baseline": float(table["emotion"].value_counts(normalize=True).iloc[0]),
    }


def table_classes(predictions: pd.DataFrame) -> list[str]:
    """The classes a predictions table was made with: its `p_<class>` columns, in the model's output order."""
    return [str(column)[2:] for column in predictions.columns if str(column).startswith("p_")]


def common_classes(*class_lists: Sequence[str]) -> list[str]:
    """The classes every list holds, in the first list's order: the emotions on which models can be compared."""
    first, *others = class_lists or [[]]
    return [c for c in first if all(c in other for other in others)]


def known_frames(predictions: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """The rows of `predictions` whose true emotion is among `classes` (the frames a comparison scores)."""
    return predictions[predictions["emotion"].isin(list(classes))].reset_index(drop=True)


def clip_votes(predictions: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """One row per clip whose true emotion is among `classes`, voted over the table's own `p_` columns."""
    clips = known_frames(predictions[predictions["set"].isin(CLIP_SETS)], classes)
    if clips.empty:
        return pd.DataFrame(columns=["dataset", "clip_id", "emotion", "predicted", "n_frames", "correct"])
    own = table_classes(clips)
    if not own:
        raise InputError("clip votes need the predictions' p_<class> columns (as predict_set writes them)")
    return clip_vote(clips.assign(dataset=clips["set"]), clips[[f"p_{c}" for c in own]].to_numpy(), own)


def score_real(predictions: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Scores per set, pooled and of the clip votes, on the frames whose true emotion is in `classes`."""
    predictions = known_frames(predictions, classes)
    groups = [*predictions.groupby("set", sort=False), (POOLED, predictions)]
    votes = clip_votes(predictions, classes)
    rows = [{"set": name, **_scores(group, classes)} for name, group in groups]
    if len(votes):
        rows.append({"set": "clip votes (CREMA-D + RAVDESS)", **_scores(votes, classes)})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class SharedScores:
    """Models scored on the real frames of the classes every one knows; `left_out`: the other classes' frames."""

    scores: dict[Hashable, pd.DataFrame]
    classes: list[str]
    left_out: dict[str, int]

    def note(self) -> str:
        """One sentence on what was compared and what was left out."""
        if not self.left_out:
            return f"every model knows the same {len(self.classes)} classes: all their frames are scored"
        dropped = ", ".join(f"{name} ({frames} frames)" for name, frames in self.left_out.items())
        return (
            f"scored on the frames of the {len(self.classes)} classes every model knows ({', '.join(self.classes)}); "
            f"left out, known to some models only: {dropped}"
        )


def score_shared(predictions: Mapping[Hashable, pd.DataFrame]) -> SharedScores:
    """`score_real` of each model's `predict_real` table on the frames whose true emotion every model knows."""
    class_lists = [table_classes(table) for table in predictions.values()]
    shared = common_classes(*class_lists)
    if not shared:
        raise InputError(f"the models share no class ({class_lists}): there is nothing to compare them on")
    others = dict.fromkeys(c for classes in class_lists for c in classes if c not in shared)  # in order of first use
    left_out = {name: max(int((table["emotion"] == name).sum()) for table in predictions.values()) for name in others}
    scores = {key: score_real(table, shared) for key, table in predictions.items()}
    return SharedScores(scores, shared, left_out)


def recall_per_class(predictions: pd.DataFrame, classes: Sequence[str]) -> pd.Series:
    """Recall of every class of `classes` present in `predictions` (all sets pooled), in `classes` order."""
    predictions = known_frames(predictions, classes)
    right = predictions["emotion"] == predictions["predicted"]
    recall = right.groupby(predictions["emotion"]).mean()
    return recall.reindex([c for c in classes if c in recall.index])


# The London sitters' self-reported age in bands (years), for accuracy per group.
AGE_BANDS = ((18, 24, "18-24"), (25, 34, "25-34"), (35, 120, "35 and over"))


def london_groups() -> pd.DataFrame:
    """One row per London sitter (`subject`, the number of their file names): gender, ethnicity and age band."""
    info = pd.read_csv(london_faces_dir() / "london_info.csv", dtype=str)
    age = pd.to_numeric(info["face_age"], errors="coerce")
    bands = pd.Series("not given", index=info.index)
    for low, high, name in AGE_BANDS:
        bands[(age >= low) & (age <= high)] = name
    return pd.DataFrame(
        {"subject": info["face_id"], "gender": info["face_gender"], "ethnicity": info["face_eth"], "age": bands}
    )


MIN_GROUP_PEOPLE = 5  # a group of fewer sitters is shown, never compared: its bootstrap has next to no spread


def groups_apart(groups: pd.DataFrame, min_people: int = MIN_GROUP_PEOPLE) -> list[str]:
    """Each pair of groups of one attribute, of at least `min_people` sitters each, whose intervals do not overlap,
    as "attribute: better a [lo, hi] against worse b [lo, hi]" (`group_scores`' rows of one model)."""
    compared = groups[groups["people"] >= min_people]
    return [
        f"{a.attribute}: {a.group} {a.accuracy:.2f} [{a.low:.2f}, {a.high:.2f}] against {b.group} "
        f"{b.accuracy:.2f} [{b.low:.2f}, {b.high:.2f}]"
        for a in compared.itertuples()
        for b in compared.itertuples()
        if a.attribute == b.attribute and a.low > b.high
    ]


def group_scores(predictions: pd.DataFrame, draws: int = 2000, level: float = 0.95) -> pd.DataFrame:
    """Accuracy on the London faces per gender, ethnicity and age band, with a bootstrap interval over the sitters
    (both photos of a person drawn together): one row per group, the sitters and faces it holds."""
    london = predictions[predictions["set"] == "London faces"]
    faces = london.assign(correct=london["emotion"] == london["predicted"]).merge(london_groups(), on="subject")
    rows = []
    for attribute in ("gender", "ethnicity", "age"):
        for value, group in faces.groupby(attribute, sort=True):
            low, high = bootstrap_interval([group.assign(group=group["subject"])], level, draws)
            rows.append(
                {
                    "attribute": attribute,
                    "group": value,
                    "people": group["subject"].nunique(),
                    "faces": len(group),
                    "accuracy": float(group["correct"].mean()),
                    "low": low,
                    "high": high,
                }
            )
    return pd.DataFrame(rows)
