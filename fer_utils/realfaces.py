"""The real faces the book ships, as test sets for a model trained elsewhere, and scoring a model on them.

A model trained on generated faces (DiffusionFER-S) is worth as much as it recognises on photographs
and videos of real people. The package ships four small real sets; each is cropped like every dataset
of the book (dlib HOG, the paper's margin, `artifacts.ensure_crops`) and cached:

- the London faces: 102 people, neutral and smiling (CC BY 4.0);
- the 24 RAVDESS actor stills, all neutral (CC BY-NC-SA 4.0);
- six CREMA-D clips of one actor in six emotions, six frames each (ODbL / DbCL);
- one RAVDESS clip, surprised, six frames (CC BY-NC-SA 4.0).

Together they hold all seven expressions of the generated faces, mostly neutral and happy. A model is
scored per set and on all of them pooled, by accuracy and by macro F1 over the emotions each set
holds (a class absent from a set is not counted), and per clip by the mean vote of chapter 4.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from fer_utils import artifacts
from fer_utils.assets import cremad_dir, london_faces_dir, ravdess_clip_path, still_paths
from fer_utils.evaluation import classification_metrics, clip_vote, predicted_labels
from fer_utils.manifest import load_manifest, usable_frames
from fer_utils.training import load_images, make_dataset

LONDON_PATTERN = r"^(\d+)_"  # the London person is the number before the underscore
STILLS_PATTERN = r"^(Actor_\d+)"  # a still is named after its RAVDESS actor
STILLS_FOLDER = "ravdess_stills_neutral"  # in the cache: the stills laid out as a folder of classes
FRAMES_PER_CLIP = 6  # the paper's six frames per clip
POOLED = "all real faces"
CLIP_SETS = ("CREMA-D clips", "RAVDESS clip")  # the sets whose frames come from clips (voted per clip)
Predict = Callable[[np.ndarray], np.ndarray]  # raw-pixel images (N, H, W, 1) -> probabilities


@dataclass(frozen=True)
class RealSet:
    """One real test set: its crops folder and its usable frames."""

    name: str
    crops: Path
    frames: pd.DataFrame


def stills_folder(cache: Path | None = None) -> Path:
    """The 24 neutral RAVDESS stills copied as `<cache>/ravdess_stills_neutral/neutral/Actor_NN.png`, so
    that the folder indexer reads them like any folder of classes."""
    folder = (cache or artifacts.default_cache()) / STILLS_FOLDER

    def copy(tmp: Path) -> None:
        (tmp / "neutral").mkdir(parents=True)
        for still in still_paths():
            shutil.copy2(still, tmp / "neutral" / still.name)

    return artifacts.build_atomically(folder, copy)


def real_sets(cache: Path | None = None, london_dir: Path | None = None) -> dict[str, RealSet]:
    """The four real sets, cropped (cached) and read: London faces, RAVDESS stills, CREMA-D clips, RAVDESS clip."""
    sources = {  # name: (indexer, root, indexer options)
        "London faces": ("folder", london_dir or london_faces_dir(), {"subject_pattern": LONDON_PATTERN}),
        "RAVDESS stills": ("folder", stills_folder(cache), {"subject_pattern": STILLS_PATTERN}),
        "CREMA-D clips": ("cremad", cremad_dir(), {}),
        "RAVDESS clip": ("ravdess", ravdess_clip_path().parent, {"modalities": ("01", "02")}),
    }
    sets = {}
    for name, (kind, root, options) in sources.items():
        crops = artifacts.ensure_crops(kind, root, cache, frames=FRAMES_PER_CLIP, **options)
        sets[name] = RealSet(name, crops, usable_frames(load_manifest(crops)).reset_index(drop=True))
    return sets


def predict_set(
    model: keras.Model, classes: Sequence[str], real: RealSet, predict: Predict | None = None
) -> pd.DataFrame:
    """One row per frame of `real` whose emotion the model knows: its set, clip, subject and true emotion,
    the prediction and `p_<class>`. `predict` (raw-pixel images → probabilities, e.g. a TFLite copy of
    `model`) replaces `model.predict`; the images are sized to `model`'s input either way."""
    size = tuple(int(d) for d in model.input_shape[1:3])
    frames = real.frames[real.frames["emotion"].isin(classes)].reset_index(drop=True)
    if frames.empty:  # none of this set's emotions is among the model's classes: an empty table
        probabilities = np.zeros((0, len(classes)), dtype="float32")
    elif predict is None:
        probabilities = model.predict(make_dataset(frames, real.crops, list(classes), image_size=size), verbose=0)
    else:
        probabilities = predict(load_images(frames, real.crops, size))
    table = frames[["clip_id", "subject", "emotion", "image"]].assign(
        set=real.name, predicted=predicted_labels(probabilities, classes)
    )
    return pd.concat([table, pd.DataFrame(probabilities, columns=[f"p_{c}" for c in classes])], axis=1)


def predict_real(
    model: keras.Model, classes: Sequence[str], sets: dict[str, RealSet], predict: Predict | None = None
) -> pd.DataFrame:
    """`predict_set` over every set, in one table (a set none of whose emotions the model knows adds no row)."""
    tables = [predict_set(model, classes, real, predict) for real in sets.values()]
    return pd.concat([t for t in tables if len(t)], ignore_index=True)


def _scores(table: pd.DataFrame, classes: Sequence[str]) -> dict[str, float]:
    """Accuracy and macro F1 over the emotions `table` holds (absent classes are not averaged in)."""
    present = [c for c in classes if c in set(table["emotion"])]
    metrics = classification_metrics(table["emotion"], table["predicted"], present)
    return {
        "frames": len(table),
        "emotions": len(present),
        "accuracy": metrics["accuracy"],
        "macro F1": metrics["f1_macro"],
    }


def clip_votes(predictions: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """One row per clip of the clip sets: true emotion, mean-vote prediction, frames, right or not."""
    clips = predictions[predictions["set"].isin(CLIP_SETS)].reset_index(drop=True)
    if clips.empty:
        return pd.DataFrame(columns=["dataset", "clip_id", "emotion", "predicted", "n_frames", "correct"])
    probabilities = clips[[f"p_{c}" for c in classes]].to_numpy()
    return clip_vote(clips.assign(dataset=clips["set"]), probabilities, classes)


def score_real(predictions: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """One row per set, one for all sets pooled and one for the clip votes: frames (or clips), emotions,
    accuracy, macro F1 over the emotions present, and the accuracy of always answering the commonest one."""
    groups = [*predictions.groupby("set", sort=False), (POOLED, predictions)]
    votes = clip_votes(predictions, classes)
    rows = [{"set": name, **_scores(group, classes), "majority baseline": _majority(group)} for name, group in groups]
    if len(votes):
        scored = _scores(votes, classes)
        rows.append({"set": "clip votes (CREMA-D + RAVDESS)", **scored, "majority baseline": _majority(votes)})
    return pd.DataFrame(rows)


def _majority(table: pd.DataFrame) -> float:
    """The accuracy of always answering `table`'s commonest emotion."""
    return float(table["emotion"].value_counts(normalize=True).iloc[0])


def recall_per_class(predictions: pd.DataFrame, classes: Sequence[str]) -> pd.Series:
    """Recall of every class present in `predictions` (all sets pooled), in `classes` order."""
    right = predictions["emotion"] == predictions["predicted"]
    recall = right.groupby(predictions["emotion"]).mean()
    return recall.reindex([c for c in classes if c in recall.index])


def mixed_crops(generated: Path, real: RealSet, subjects: Sequence[str], cache: Path | None = None) -> Path:
    """A crops folder holding the generated faces and the frames of `real`'s `subjects`, for training on both.

    The folder links the two crop folders (`generated/`, `real/`) and writes one manifest whose image
    paths go through those links; it is cached by the generated folder, the real one and the subjects.
    """
    from fer_utils.manifest import MANIFEST_NAME

    chosen = sorted(map(str, subjects))
    spec = {"generated": str(Path(generated).resolve()), "real": str(real.crops.resolve()), "subjects": chosen}
    target = (cache or artifacts.default_cache()) / "mixed" / artifacts.cache_key(spec)

    def build(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        (tmp / "generated").symlink_to(Path(generated).resolve(), target_is_directory=True)
        (tmp / "real").symlink_to(real.crops.resolve(), target_is_directory=True)
        ours = load_manifest(generated).assign(image=lambda m: "generated/" + m["image"])
        theirs = load_manifest(real.crops)
        theirs = theirs[theirs["subject"].astype(str).isin(chosen)].assign(image=lambda m: "real/" + m["image"])
        pd.concat([ours, theirs], ignore_index=True).to_csv(tmp / MANIFEST_NAME, index=False)

    return artifacts.build_atomically(target, build)


def split_people(real: RealSet, share: float, seed: int) -> tuple[list[str], RealSet]:
    """`share` of `real`'s people drawn with `seed` for training, and the set of the others, for testing."""
    people = np.array(sorted(real.frames["subject"].astype(str).unique()))
    chosen = sorted(np.random.default_rng(seed).permutation(people)[: round(share * len(people))])
    held = real.frames[~real.frames["subject"].astype(str).isin(chosen)].reset_index(drop=True)
    return chosen, RealSet(real.name, real.crops, held)
