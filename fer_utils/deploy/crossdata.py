"""Cross-dataset evaluation: a model trained on one corpus scored on every usable crop of another.

Classes are matched by name (`folders.folder_emotion`); crops that copy the run's training crops are scored
apart. Only predicting imports TensorFlow. See CONTRACTS.md, "Cross-dataset evaluation".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fer_utils.data.corpora import EMOTIONS
from fer_utils.data.folders import folder_emotion
from fer_utils.data.manifest import MANIFEST_NAME, load_manifest, usable_frames
from fer_utils.errors import InputError
from fer_utils.evaluate.metrics import known_class_scores
from fer_utils.storage.run_files import CONFIG_FILE

if TYPE_CHECKING:  # TensorFlow is imported only to predict
    import keras

SPLIT_COLUMN = "split"  # the optional manifest column that names each row's side (train, val, test, ...)
Predict = Callable[[np.ndarray], np.ndarray]  # raw-pixel images (N, H, W, 1) -> probabilities


@dataclass(frozen=True)
class CrossReport:
    """A model's scores on another crops folder: what was scored, what was left out, and the numbers."""

    crops: str
    split: str | None
    classes: list[str]
    renamed: dict[str, str]
    frames: int
    present: list[str]
    left_out: dict[str, int]
    absent: list[str]
    accuracy: float
    macro_f1: float
    recall: dict[str, float]
    confusion: list[list[int]]
    majority_emotion: str
    majority_baseline: float
    chance: float
    unusable_rows: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    crop_sides: dict[int, int] = field(default_factory=dict)
    model_side: int | None = None
    overlap: int | None = None
    overlap_source: str = ""
    clean: dict[str, float] | None = None
    tta: str = "none"  # the test-time augmentation the probabilities were averaged over (evaluate.metrics)

    def to_dict(self) -> dict:
        """The report as plain JSON types (lists, dicts, str, int, float, None)."""
        return asdict(self)

    def per_class(self) -> pd.DataFrame:
        """One row per class present: true frames, frames predicted as it, and recall."""
        matrix = self.confusion_frame()
        table = {"frames": matrix.sum(axis=1), "predicted": matrix.sum(axis=0), "recall": pd.Series(self.recall)}
        return pd.DataFrame(table).loc[self.present].rename_axis("class")

    def confusion_frame(self) -> pd.DataFrame:
        """The confusion matrix as a table (rows: true, columns: predicted)."""
        index = pd.Index(self.classes, name="true")
        return pd.DataFrame(self.confusion, index=index, columns=index.rename("predicted"))

    def summary(self) -> str:
        """A few lines for a reader: where, how many, the scores beside their baselines, what was left out."""
        side = f" (split {self.split})" if self.split else ""
        lines = [
            f"{self.frames} frames of {self.crops}{side} scored over {len(self.present)} classes "
            f"({', '.join(self.present)})",
            f"accuracy {self.accuracy:.3f}, macro F1 {self.macro_f1:.3f} (over the classes present); majority "
            f"baseline {self.majority_baseline:.3f} (always {self.majority_emotion}), chance {self.chance:.3f}",
        ]
        if self.tta != "none":
            lines.append(f"test-time augmentation: {self.tta} (probabilities averaged over its views)")
        if self.left_out:
            counts = ", ".join(f"{name} {count}" for name, count in self.left_out.items())
            lines.append(f"left out, emotions the model lacks: {counts} frames")
        if self.absent:
            lines.append(f"model classes the folder lacks: {', '.join(self.absent)}")
        if self.renamed:
            lines.append("model classes read as: " + ", ".join(f"{k} -> {v}" for k, v in self.renamed.items()))
        return "\n".join(lines + self.input_lines())

    def input_lines(self) -> list[str]:
        """What was not scored and why, the crops' size against the model's, and the overlap with its training."""
        lines = []
        if self.unusable_rows:
            counts = ", ".join(f"{status} {n}" for status, n in self.unusable_rows.items())
            lines.append(f"manifest rows without a usable crop (not scored): {counts}")
        for reason, images in self.skipped.items():
            shown = ", ".join(images[:3]) + (", ..." if len(images) > 3 else "")
            lines.append(f"left out, {len(images)} crop(s) {reason}: {shown}")
        for word, keep in (("down", lambda side: side > self.model_side), ("up", lambda side: side < self.model_side)):
            resized = {side: n for side, n in self.crop_sides.items() if self.model_side and keep(side)}
            if resized:
                sides = ", ".join(f"{n} of {side} px" for side, n in resized.items())
                lines.append(f"crops resized {word} to the model's {self.model_side} px input: {sides}")
        if self.overlap is None:
            lines.append(f"overlap with the model's training crops not checked: {self.overlap_source}")
        elif self.overlap:
            clean = self.clean
            rest = "no frame left"
            if clean:
                rest = f"{clean['frames']} frames, accuracy {clean['accuracy']:.3f}, macro F1 {clean['macro_f1']:.3f}"
            lines.append(
                f"WARNING: {self.overlap} of the {self.frames} frames scored copy the model's training "
                f"crops ({self.overlap_source}): this is no cross-dataset score. Without them: {rest}"
            )
        else:
            lines.append(f"no scored crop copies the model's training crops ({self.overlap_source})")
        return lines


def vocabulary_classes(classes: Sequence[str]) -> list[str]:
    """The model's class names as vocabulary emotions (`fear` -> `fearful`); InputError for none or a duplicate."""
    mapped = [folder_emotion(str(name)) for name in classes]
    unknown = [name for name, emotion in zip(classes, mapped) if emotion is None]
    if unknown:
        raise InputError(
            f"model classes {unknown} name no emotion of the book's vocabulary ({', '.join(EMOTIONS)} or a synonym "
            "in folders.FOLDER_SYNONYMS): rename them in classes.json to score the model on another folder"
        )
    if len(set(mapped)) != len(mapped):
        raise InputError(f"model classes {list(classes)} name one emotion twice ({mapped}): fix classes.json")
    return [str(emotion) for emotion in mapped]


def folder_rows(crops: Path, split: str | None = None) -> pd.DataFrame:
    """The manifest rows of a crops folder (or of side `split`), any status; InputError for an unknown `split`."""
    manifest = load_manifest(crops)
    if split is None:
        return manifest
    sides = manifest[SPLIT_COLUMN].fillna("").astype(str)  # "" (no side) in a manifest without the column
    available = sorted(set(sides) - {""})
    if not available:
        raise InputError(
            f"--split {split}: {Path(crops) / MANIFEST_NAME} has no {SPLIT_COLUMN!r} column (or an empty one): "
            "its dataset records no split. Leave the split out to score every usable frame of the folder"
        )
    if split not in available:
        raise InputError(
            f"--split {split}: {Path(crops) / MANIFEST_NAME} has no row of that side; its sides are "
            f"{', '.join(available)}"
        )
    return manifest[sides.to_numpy() == split]


def unusable_rows(rows: pd.DataFrame) -> dict[str, int]:
    """The manifest rows without a usable crop (none scored), counted by status."""
    usable = rows["status"].eq("ok") & rows["image"].fillna("").astype(str).str.len().gt(0)
    return {str(status): int(n) for status, n in rows.loc[~usable, "status"].value_counts().items()}


def scorable(frames: pd.DataFrame, classes: Sequence[str]) -> tuple[pd.DataFrame, dict[str, int], list[str]]:
    """(the frames whose emotion is among `classes`, the other emotions' frame counts, the classes no frame holds)."""
    known = frames["emotion"].isin(list(classes))
    counts = frames.loc[~known, "emotion"].value_counts()
    left_out = {str(name): int(counts[name]) for name in sorted(counts.index, key=_vocabulary_order)}
    absent = [c for c in classes if c not in set(frames["emotion"])]
    return frames[known].reset_index(drop=True), left_out, absent


def _vocabulary_order(name: str) -> tuple[int, str]:
    """Sort key: vocabulary order, then any other name alphabetically."""
    return (EMOTIONS.index(name), name) if name in EMOTIONS else (len(EMOTIONS), name)


@dataclass(frozen=True)
class CropCheck:
    """The frames whose crops can be scored, the others by reason (missing, damaged), and the crops' sides."""

    frames: pd.DataFrame
    skipped: dict[str, list[str]]
    sides: dict[int, int]


def check_scored_crops(frames: pd.DataFrame, crops: Path, side: int, refuse_smaller: bool = True) -> CropCheck:
    """Leave out (and name) missing, damaged or off-spec crops; `refuse_smaller`: InputError for crops under `side`."""
    from fer_utils.faces.crops import CROP_SPEC_FILE
    from fer_utils.faces.preprocess import folder_crop_spec
    from fer_utils.train.config import png_size

    spec = folder_crop_spec(crops)
    skipped: dict[str, list[str]] = {}
    sizes: list[int] = []
    whole: list[int] = []  # the side of every whole PNG, those of another side than the spec's too
    keep: list[bool] = []
    for image in frames["image"].astype(str):
        path = Path(crops) / image
        size = png_size(path) if path.is_file() else None
        if not path.is_file():
            reason = "missing"
        elif size is None:
            reason = "damaged (not a whole PNG)"
        elif spec is not None and size != (spec.side, spec.side):
            reason = f"of {size[0]}×{size[1]} px, not {spec.side}×{spec.side} as {CROP_SPEC_FILE} says"
        else:
            reason = None
        whole += [min(size)] if size else []
        if reason:
            skipped.setdefault(reason, []).append(image)
        else:
            sizes.append(min(size))
        keep.append(reason is None)
    sides = dict(sorted(Counter(sizes).items()))
    smaller = {k: n for k, n in sorted(Counter(whole).items()) if k < side}
    if smaller and refuse_smaller:
        found = ", ".join(f"{n} of {k} px" for k, n in smaller.items())
        raise InputError(
            f"crops in {crops} are smaller than the model's {side}×{side} px input ({found}): scoring would "
            f"upsample them (training refuses to). Preprocess again with --side {side}, or score a model "
            "trained at their size"
        )
    return CropCheck(frames[np.asarray(keep, dtype=bool)].reset_index(drop=True), skipped, sides)


@dataclass(frozen=True)
class KnownFrames:
    """`predict_known`'s result: the frames scored, their probabilities, what was left out and the crop check."""

    frames: pd.DataFrame
    probabilities: np.ndarray
    left_out: dict[str, int]
    absent: list[str]
    check: CropCheck


def predict_known(
    model: keras.Model,
    classes: Sequence[str],
    frames: pd.DataFrame,
    crops: Path,
    predict: Predict | None = None,
    refuse_smaller: bool = False,
    tta: str = "none",
) -> KnownFrames:
    """The frames whose emotion is among `classes`, crops checked, predicted by `model` or `predict`, over `tta`."""
    from fer_utils.evaluate.metrics import check_tta, tta_probabilities
    from fer_utils.models.networks import input_side, network_side
    from fer_utils.train.config import Feed
    from fer_utils.train.fit import predict_batches
    from fer_utils.train.pipeline import load_images, make_dataset

    check_tta(tta)
    known, left_out, absent = scorable(frames, classes)
    side = input_side(model)  # None: the model resizes the crops itself
    size = None if side is None else (side, side)
    check = check_scored_crops(known, crops, network_side(model), refuse_smaller)
    scored = check.frames
    if scored.empty:
        probabilities = np.zeros((0, len(classes)), dtype="float32")
    elif predict is None:
        probabilities = predict_batches(
            model, make_dataset(scored, crops, list(classes), Feed(cache=False, image_size=size)), tta
        )
    else:
        probabilities = tta_probabilities(predict, load_images(scored, crops, size), tta)
    return KnownFrames(scored, probabilities, left_out, absent, check)


def cross_report(
    truth: Sequence[str],
    probabilities: np.ndarray,
    classes: Sequence[str],
    *,
    crops: Path | str = "",
    split: str | None = None,
    left_out: dict[str, int] | None = None,
    absent: Sequence[str] = (),
    renamed: dict[str, str] | None = None,
    **inputs: object,
) -> CrossReport:
    """The report of `probabilities` (frames × classes) against `truth`; `inputs`: its checks (skipped, overlap)."""
    scores = known_class_scores(truth, probabilities, classes)  # its keys name the report's fields they fill
    computed = {f.name: scores[f.name] for f in fields(CrossReport) if f.name in scores and f.name != "absent"}
    return CrossReport(
        crops=str(crops),
        split=split,
        classes=list(classes),
        renamed=dict(renamed or {}),
        left_out=dict(left_out or {}),
        absent=list(absent),
        **computed,
        **inputs,
    )


def training_overlap(scored: pd.DataFrame, crops: Path, run_dir: Path | None) -> tuple[np.ndarray | None, str]:
    """(per scored frame, whether it copies a training crop of `run_dir`'s run, the source), or (None, why not)."""
    from fer_utils.data.splits import copies_among, crop_hashes
    from fer_utils.storage.run_files import TRAIN_HASHES_FILE

    hashes = None if run_dir is None else Path(run_dir) / TRAIN_HASHES_FILE
    if hashes is None or not hashes.is_file():
        return None, f"no {TRAIN_HASHES_FILE} beside the model (a run made before runs recorded it, or no run)"
    reference = pd.read_csv(hashes, dtype=str, keep_default_na=False)
    found = copies_among(crop_hashes(crops, scored), reference) if len(scored) else np.zeros(0, dtype=bool)
    return found, f"by md5 or perceptual hash against {hashes}"


def cross_evaluate(
    model: keras.Model,
    classes: Sequence[str],
    crops: Path,
    *,
    split: str | None = None,
    predict: Predict | None = None,
    run_dir: Path | None = None,
    tta: str = "none",
) -> CrossReport:
    """Score `model` on every usable frame of `crops` (or side `split`) whose emotion it knows; with its run folder
    `run_dir`, copies of its training crops are scored apart and crops smaller than its input refused."""
    from fer_utils.models.networks import network_side

    names = vocabulary_classes(classes)
    rows = folder_rows(crops, split)
    frames = usable_frames(rows)
    frames = frames.assign(emotion=frames["emotion"].astype(str).map(lambda name: folder_emotion(name) or name))
    trained_here = run_dir is not None and (Path(run_dir) / CONFIG_FILE).is_file()  # a run of this package
    known = predict_known(model, names, frames, crops, predict, refuse_smaller=trained_here, tta=tta)
    if known.frames.empty:
        if not scorable(frames, names)[0].empty:
            raise InputError(f"no frame to score in {crops}: every crop the model could score is missing or damaged")
        folder = sorted(set(frames["emotion"]), key=_vocabulary_order)
        raise InputError(
            f"no frame to score: the model's classes ({', '.join(names)}) and the folder's emotions "
            f"({', '.join(folder) or 'none: no usable frame'}) have no class in common"
        )
    overlap, source = training_overlap(known.frames, crops, run_dir)
    clean = None
    if overlap is not None and overlap.any() and not overlap.all():
        scores = known_class_scores(known.frames["emotion"][~overlap], known.probabilities[~overlap], names)
        clean = {key: scores[key] for key in ("frames", "accuracy", "macro_f1")}
    renamed = {str(old): new for old, new in zip(classes, names) if old != new}
    return cross_report(
        known.frames["emotion"],
        known.probabilities,
        names,
        crops=crops,
        split=split,
        left_out=known.left_out,
        absent=known.absent,
        renamed=renamed,
        unusable_rows=unusable_rows(rows),
        skipped=known.check.skipped,
        crop_sides=known.check.sides,
        model_side=network_side(model),
        overlap=None if overlap is None else int(overlap.sum()),
        overlap_source=source,
        clean=clean,
        tta=tta,
    )


def evaluate_model_file(model_path: Path, crops: Path, split: str | None = None, tta: str = "none") -> CrossReport:
    """`cross_evaluate` of a saved .keras model (classes.json beside it; its run folder when it lies in one)."""
    from fer_utils.train.runs import RunFolder

    run = RunFolder(Path(model_path).parent).open(Path(model_path))
    return cross_evaluate(run.model, run.classes, crops, split=split, run_dir=run.folder.path, tta=tta)
