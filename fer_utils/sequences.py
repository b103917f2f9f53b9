"""Clips as sequences: what a sequence model (`registry.SEQUENCE_MODELS`, the CNN-LSTM of
`models.build_cnn_lstm`) reads, trains on and predicts.

**A clip's frames** are the usable manifest rows of one clip (same dataset and `clip_id`), in the order of
their `frame_index`. A sequence model reads N of them at once (`registry.SEQUENCE_FRAMES`, the paper's 6,
the frames preprocessing cuts by default). `frame_positions` chooses them: the centres of N equal
segments of the clip's frames, the rule `video.frame_indices` samples a video with, so a clip with more
frames gives N evenly spaced ones, a clip with exactly N gives all of them in order, and **a clip with
fewer usable frames** (a face the detector missed in some) gives each of its frames once or twice, in
order, until there are N: every clip with at least one usable frame is one example, and its `n_frames`
says how many it had.

`clip_table` turns frames into one row per clip (the split protocols keep a clip whole under `clip`,
`subject` and `given`; `random` would put frames of one clip on both sides, and `train_checks.check_config`
refuses it for a sequence model). `clip_dataset` is tf.data over those rows, given the frame decoder and
the augmenter of `fer_utils.training` (which calls it through `training.make_clip_dataset`): the N
decoded frames of each clip stacked (N, H, W, 1), cached, shuffled, batched, and augmented with one
random transform for all the frames of a clip (they are stacked as channels for it). `predict_clip`
answers for a video as training saw clips: N frames sampled evenly, the largest face of each cropped as
preprocessing crops it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fer_utils.errors import DatasetError, PredictionError
from fer_utils.registry import DEFAULT_DETECTOR, DEFAULT_MARGIN, SEQUENCE_FRAMES
from fer_utils.run_files import probability_columns

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from fer_utils.faces import FaceDetector

CLIP_IMAGES = "clip_images"  # a clip row's N chosen crops, in order, as a JSON list (CSV-safe)


def frame_positions(count: int, n: int = SEQUENCE_FRAMES) -> list[int]:
    """Which of a clip's `count` frames (0..count-1, in order) make its `n`: the centre of each of `n` equal
    segments, so fewer frames than `n` repeat (4 → 0, 1, 1, 2, 3, 3) and more are evenly thinned."""
    if count < 1 or n < 1:
        raise DatasetError(f"a clip needs at least one frame and n at least 1, got {count} frames, n={n}")
    return [int((i + 0.5) * count / n) for i in range(n)]


def clip_keys(frames: pd.DataFrame) -> list[str]:
    """The columns that name a clip: dataset and clip_id when there is a dataset column, else clip_id."""
    return ["dataset", "clip_id"] if "dataset" in frames.columns else ["clip_id"]


def clip_table(frames: pd.DataFrame, n: int = SEQUENCE_FRAMES) -> pd.DataFrame:
    """One row per clip of `frames` (usable manifest rows), in the order clips first appear: the first
    frame's columns, `image` and `frame_index` of its middle chosen frame, `n_frames` (its usable frames)
    and CLIP_IMAGES (its `n` chosen crops, `frame_positions`). A clip whose frames disagree on the emotion
    is a DatasetError."""
    if frames.empty:
        raise DatasetError("no frames to group into clips")
    keys = clip_keys(frames)
    mixed = frames.groupby(keys, sort=False)["emotion"].nunique()
    if (mixed > 1).any():
        raise DatasetError(f"clips {list(mixed[mixed > 1].index[:3])} hold frames of different emotions")
    ordered = frames.assign(_order=np.arange(len(frames))).sort_values([*keys, "frame_index", "_order"])
    rows = []
    for _, clip in ordered.groupby(keys, sort=False):
        chosen = [str(clip["image"].iloc[i]) for i in frame_positions(len(clip), n)]
        middle = clip.iloc[frame_positions(len(clip), n)[n // 2]]
        row = clip.iloc[0].to_dict()
        row.update(image=middle["image"], frame_index=middle["frame_index"], n_frames=len(clip))
        rows.append({**row, CLIP_IMAGES: json.dumps(chosen)})
    table = pd.DataFrame(rows).sort_values("_order").drop(columns="_order")
    return table.reset_index(drop=True)


def clip_dataset(
    clips: pd.DataFrame,
    root: Path,
    labels: np.ndarray,
    decode: Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]],
    *,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    augmenter: keras.Layer | None = None,
    drop_remainder: bool = False,
    cache: bool = True,
) -> tf.data.Dataset:
    """Batches of (clips (B, N, H, W, 1), class index) from a `clip_table`, each crop read by `decode` (a
    tf.data map of (path, label) → (image, label): the training pipeline's) in order, `labels` one per
    clip; cached, reshuffled every epoch from `seed`, batched, augmented by `augmenter` (one transform per
    clip: its frames stacked as channels) and prefetched."""
    import tensorflow as tf

    chosen = [json.loads(images) for images in clips[CLIP_IMAGES]]
    n = len(chosen[0]) if chosen else SEQUENCE_FRAMES
    paths = [str(Path(root) / image) for images in chosen for image in images]
    ds = tf.data.Dataset.from_tensor_slices((paths, np.repeat(np.asarray(labels, np.int32), n)))
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(n, drop_remainder=True)
    ds = ds.map(lambda images, frame_labels: (images, frame_labels[0]))
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(max(1, len(clips)), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if augmenter is not None:
        ds = ds.map(lambda x, y: (augment_clips(augmenter, x), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def augment_clips(augmenter: keras.Layer, clips: tf.Tensor) -> tf.Tensor:
    """`augmenter` applied to a batch of gray clips (B, N, H, W, 1) with one random transform per clip:
    the frames become the channels of one image (B, H, W, N), which the image layers move together."""
    import tensorflow as tf

    stacked = tf.transpose(clips[..., 0], [0, 2, 3, 1])
    moved = augmenter(stacked, training=True)
    return tf.transpose(moved, [0, 3, 1, 2])[..., None]


def clip_shape(model: keras.Model) -> tuple[int, int] | None:
    """(frames, side) of a model that reads clips (input (None, N, H, W, 1)); None for a frame model."""
    shape = model.input_shape
    return (int(shape[1]), int(shape[2])) if len(shape) == 5 else None


def clip_crops(
    path: Path, frames: int, side: int, detector: FaceDetector, margin: float = DEFAULT_MARGIN
) -> tuple[np.ndarray, int]:
    """(the clip (frames, side, side, 1) float32, faces found) of a video: `frames` frames sampled evenly
    (`video.sample_frames`, as preprocessing samples), the largest face of each cropped as preprocessing
    crops it; frames without a face are left out and the rest repeated in order (`frame_positions`)."""
    from fer_utils.crops import largest_face_crop
    from fer_utils.video import check_media, sample_frames

    path = Path(path)
    if check_media(path) == "image":
        raise PredictionError(f"{path.name} is a still image: a clip model reads {frames} frames of a video")
    faces = [largest_face_crop(image, detector, size=side, margin=margin) for _, image in sample_frames(path, frames)]
    crops = [face.crop for face in faces if face is not None]
    if not crops:
        raise PredictionError(f"{path.name}: no face in any of the {frames} frames sampled")
    clip = np.stack([crops[i] for i in frame_positions(len(crops), frames)]).astype(np.float32)
    return clip[..., None], len(crops)


def predict_clip(
    model: keras.Model,
    classes: list[str],
    path: Path,
    detector: str | FaceDetector = DEFAULT_DETECTOR,
    margin: float = DEFAULT_MARGIN,
) -> pd.DataFrame:
    """A sequence model's answer for a video, one row: `frames` (read), `faces` (found among them),
    `emotion`, and one probability column per class (`run_files.probability_columns`)."""
    from fer_utils.faces import make_detector
    from fer_utils.models import check_classes

    shape = clip_shape(model)
    if shape is None:
        raise PredictionError(f"{model.name} reads single images, not clips: use inference.Recognizer")
    classes = check_classes(model, classes)
    detector = make_detector(detector) if isinstance(detector, str) else detector
    clip, faces = clip_crops(path, shape[0], shape[1], detector, margin)
    probabilities = np.asarray(model.predict_on_batch(clip[None]))[0]
    row = {
        "source": Path(path).name,
        "frames": shape[0],
        "faces": faces,
        "emotion": classes[int(probabilities.argmax())],
    }
    row.update(zip(probability_columns(classes), map(float, probabilities)))
    return pd.DataFrame([row])
