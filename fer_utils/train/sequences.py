"""Clips as sequences: what a sequence model (`registry.SEQUENCE_MODELS`) reads, trains on and predicts. A clip's
frames are its usable manifest rows in `frame_index` order, N of them chosen as `media.frame_indices` samples a
video. `ClipData` trains through `fit.train_run` on one row per clip; `predict_clip` answers for a video.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import tensorflow as tf

from fer_utils.data.splits import Split, resolve_protocol
from fer_utils.errors import InputError
from fer_utils.faces.crops import CropSpec
from fer_utils.registry import DEFAULT_DETECTOR, FACE_DETECTORS, PAPER_PROTOCOL, SEQUENCE_FRAMES, SEQUENCE_PROTOCOLS
from fer_utils.storage.run_files import probability_columns
from fer_utils.train.config import BatchAugmentation, Feed, TrainConfig, changed_options, check_sides
from fer_utils.train.pipeline import FaceData, Pipeline, _augmenter, _decoder, class_indices

if TYPE_CHECKING:
    import keras

    from fer_utils.faces.crops import FaceDetector

CLIP_IMAGES = "clip_images"  # a clip row's N chosen crops, in order, as a JSON list (CSV-safe)


def frame_positions(count: int, n: int = SEQUENCE_FRAMES) -> list[int]:
    """Which of a clip's `count` frames (0..count-1, in order) make its `n`: the centre of each of `n` equal
    segments, so fewer frames than `n` repeat (4 → 0, 1, 1, 2, 3, 3) and more are evenly thinned."""
    if count < 1 or n < 1:
        raise InputError(f"a clip needs at least one frame and n at least 1, got {count} frames, n={n}")
    return [int((i + 0.5) * count / n) for i in range(n)]


def clip_table(frames: pd.DataFrame, n: int = SEQUENCE_FRAMES) -> pd.DataFrame:
    """One row per clip of `frames` (usable rows), in order of appearance: the first frame's columns, the middle chosen
    frame's `image` and `frame_index`, `n_frames` and CLIP_IMAGES; InputError for a clip of mixed emotions."""
    if frames.empty:
        raise InputError("no frames to group into clips")
    keys = ["dataset", "clip_id"] if "dataset" in frames.columns else ["clip_id"]  # what names a clip
    mixed = frames.groupby(keys, sort=False)["emotion"].nunique()
    if (mixed > 1).any():
        raise InputError(f"clips {list(mixed[mixed > 1].index[:3])} hold frames of different emotions")
    ordered = frames.assign(_order=np.arange(len(frames))).sort_values([*keys, "frame_index", "_order"])
    rows = []
    for _, clip in ordered.groupby(keys, sort=False):
        picked = clip.iloc[frame_positions(len(clip), n)]
        middle = picked.iloc[n // 2]
        row = {**clip.iloc[0].to_dict(), "image": middle["image"], "frame_index": middle["frame_index"]}
        rows.append({**row, "n_frames": len(clip), CLIP_IMAGES: json.dumps(list(map(str, picked["image"])))})
    return pd.DataFrame(rows).sort_values("_order").drop(columns="_order").reset_index(drop=True)


def make_clip_dataset(clips: pd.DataFrame, root: Path, classes: Sequence[str], feed: Feed = Feed()) -> tf.data.Dataset:
    """`pipeline.make_dataset` for a sequence model: batches of (clip (N, H, W, 1) raw pixels, class index),
    one per row of a `clip_table`, decoded as frames are and augmented with one transform per clip; batch
    augmentation (`Feed.batch_augment`) it never applies (`ClipData.check_feed` refuses it)."""
    chosen = [json.loads(images) for images in clips[CLIP_IMAGES]]
    n = len(chosen[0]) if chosen else SEQUENCE_FRAMES
    missing = [p for images in chosen[:1] for p in images if not (Path(root) / p).is_file()]
    if missing:
        raise InputError(f"crop {Path(root) / missing[0]} does not exist; is {root} the crops folder?")
    paths = [str(Path(root) / image) for images in chosen for image in images]
    labels = np.repeat(class_indices(clips, classes), n)
    ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    ds = ds.map(_decoder(feed.image_size), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(n, drop_remainder=True).map(lambda images, frame_labels: (images, frame_labels[0]))
    if feed.cache:
        ds = ds.cache()
    if feed.shuffle:
        ds = ds.shuffle(max(1, len(clips)), seed=feed.seed, reshuffle_each_iteration=True)
    ds = ds.batch(feed.batch_size, drop_remainder=feed.drop_remainder)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if feed.augment:
        augmenter = _augmenter(feed.seed, feed.augment)
        ds = ds.map(lambda x, y: (augment_clips(augmenter, x), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def load_clips(clips: pd.DataFrame, root: Path, image_size: tuple[int, int] | None = None) -> np.ndarray:
    """Every clip of a `clip_table` as one (K, N, H, W, 1) float32 array of raw pixels, at their side or image_size."""
    feed = Feed(batch_size=64, cache=False, image_size=image_size)
    ds = make_clip_dataset(clips, root, sorted(set(clips["emotion"])), feed)
    return np.concatenate([x.numpy() for x, _ in ds])


def augment_clips(augmenter: keras.Layer, clips: tf.Tensor) -> tf.Tensor:
    """`augmenter` applied to a batch of gray clips (B, N, H, W, 1) with one random transform per clip:
    the frames become the channels of one image (B, H, W, N), which the image layers move together."""
    stacked = tf.transpose(clips[..., 0], [0, 2, 3, 1])
    moved = augmenter(stacked, training=True)
    return tf.transpose(moved, [0, 3, 1, 2])[..., None]


def clip_split(split: Split) -> Split:
    """`split` (of frames) with one row per clip on each side (`clip_table`), its notes and duplicate audit kept."""
    check_sides(split)
    sides = {side: clip_table(frames) for side, frames in split.sides().items() if len(frames)}
    return replace(split, train=sides["train"], test=sides["test"], val=sides.get("val"))


@dataclass(frozen=True, eq=False)
class ClipData(FaceData):
    """`FaceData` for a sequence model, each side one row per clip, split by clip by default (or the dataset's own
    split); the random protocol is an InputError: a clip's frames would be on both sides."""

    pipeline: Pipeline = make_clip_dataset

    def protocol(self, config: TrainConfig, frames: pd.DataFrame) -> str:
        """`FaceData.protocol`, with the clip protocol instead of the paper's random one by default."""
        protocol = resolve_protocol(frames, config.protocol)
        if protocol != PAPER_PROTOCOL:
            return protocol
        if config.protocol is None:
            return SEQUENCE_PROTOCOLS[0]
        raise InputError(
            f"a sequence model reads whole clips, and the {PAPER_PROTOCOL} protocol draws single frames, which would "
            f"put frames of one clip on both sides: use protocol {', '.join(SEQUENCE_PROTOCOLS)}"
        )

    def check_feed(self, config: TrainConfig) -> None:
        """InputError naming the batch augmentation `config` asks for: `make_clip_dataset` flips and shifts whole
        clips but never jitters, erases or mixes them, so those options would be recorded but never applied."""
        asked = changed_options(config, [f.name for f in fields(BatchAugmentation)])
        if asked:
            named = ", ".join(f"{name} (--{name.replace('_', '-')})" for name in asked)
            raise InputError(
                "a clip model is fed whole clips, which are flipped and shifted (--augment) but "
                f"never jittered, erased or mixed: {named} would be recorded but never applied; leave them off"
            )

    def split_for(self, config: TrainConfig, frames: pd.DataFrame) -> Split:
        """`FaceData.split_for` (frames, through the duplicate audit), each side then one row per clip."""
        return clip_split(super().split_for(config, frames))


def clip_shape(model: keras.Model) -> tuple[int, int | None] | None:
    """(frames, side) of a clip model (side None when it resizes crops itself); None for a frame model."""
    shape = model.input_shape
    return (int(shape[1]), None if shape[2] is None else int(shape[2])) if len(shape) == 5 else None


def clip_crops(path: Path, frames: int, spec: CropSpec, detector: FaceDetector) -> tuple[np.ndarray, int, int]:
    """(clip (frames, side, side, 1) float32, faces found, distinct frames read) of a video: `frames` frames sampled
    evenly, the largest face of each cut as `spec` says; frames without one left out, the rest repeated in order."""
    from fer_utils.data.media import check_media, sample_frames
    from fer_utils.faces.crops import largest_face_crop

    path = Path(path)
    if check_media(path) == "image":
        raise InputError(f"{path.name} is a still image: a clip model reads {frames} frames of a video")
    sampled = sample_frames(path, frames)
    faces = [largest_face_crop(image, detector, spec) for _, image in sampled]
    crops = [face.crop for face in faces if face is not None]
    if not crops:
        raise InputError(f"{path.name}: no face in any of the {frames} frames sampled")
    clip = np.stack([crops[i] for i in frame_positions(len(crops), frames)]).astype(np.float32)
    return clip[..., None], len(crops), len({index for index, _ in sampled})


def predict_clip(
    model: keras.Model,
    classes: Sequence[str],
    path: Path,
    spec: CropSpec | None = None,
    detector: str | FaceDetector | None = None,
) -> pd.DataFrame:
    """A sequence model's answer for a video, one row: `frames` read, `faces` found, `emotion`, a probability per
    class; faces cut as `spec` says (default: the default spec), found by `detector` (default: the spec's)."""
    from fer_utils.faces.crops import make_detector
    from fer_utils.models.networks import check_classes

    shape = clip_shape(model)
    if shape is None:
        raise InputError(f"{model.name} reads single images, not clips: use inference.Recognizer")
    classes = check_classes(model, classes)
    spec = spec or (CropSpec(side=shape[1]) if shape[1] else CropSpec())
    if detector is None:
        detector = spec.detector if spec.detector in FACE_DETECTORS else DEFAULT_DETECTOR
    detector = make_detector(detector) if isinstance(detector, str) else detector
    clip, faces, read = clip_crops(path, shape[0], spec.served_with(detector.name), detector)
    probabilities = np.asarray(model.predict_on_batch(clip[None]))[0]
    # `frames`: the video's frames the answer read (a 2-frame video: 2, repeated to the model's N)
    row = {"source": Path(path).name, "frames": read, "faces": faces, "emotion": classes[int(probabilities.argmax())]}
    row.update(zip(probability_columns(classes), map(float, probabilities)))
    return pd.DataFrame([row])
