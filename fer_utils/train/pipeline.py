"""What a run learns from: `FaceData`, the data module (d2l's: the crops, the frames used, their split and the
pipeline feeding them), and that pipeline, `make_dataset` (tf.data). A chapter passes its own `FaceData`, built
from the code it shows, so that an edit there changes the runs it reports.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from fer_utils.data.manifest import load_manifest, usable_frames
from fer_utils.data.splits import Split, audited_split, resolve_protocol, split_frames
from fer_utils.errors import InputError
from fer_utils.faces.crops import CropSpec
from fer_utils.faces.preprocess import folder_crop_spec
from fer_utils.train.config import Augmentation, BatchAugmentation, Feed, TrainConfig

Splitter = Callable[[pd.DataFrame, str, float, float, int], Split]  # as splits.split_frames
Pipeline = Callable[[pd.DataFrame, Path, Sequence[str], Feed], tf.data.Dataset]  # as make_dataset


def class_indices(frames: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
    """Each frame's emotion as an index into `classes`; an emotion not in `classes` is an InputError."""
    unknown = sorted(set(frames["emotion"]) - set(classes))
    if unknown:
        raise InputError(f"emotions {unknown} are not among the model's classes {list(classes)}")
    lookup = {name: i for i, name in enumerate(classes)}
    return frames["emotion"].map(lookup).to_numpy(dtype=np.int32)


def _decoder(image_size: tuple[int, int] | None = None):
    """A tf.data map function: PNG path → (H, W, 1) raw pixels, uint8 at the crop's own
    side (the model resizes it itself), or float32 resized to `image_size` (bilinear,
    as the model does) for crops that share no side or a model of one side only."""

    def decode(path: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.io.decode_png(tf.io.read_file(path), channels=1)
        if image_size is not None:
            # float32; a no-op copy at the same size
            image = tf.image.resize(image, tuple(image_size))
            image.set_shape((*image_size, 1))
        return image, label

    return decode


def _augmenter(seed: int, augment: Augmentation) -> keras.Sequential:
    """`augment` as Keras layers: a horizontal flip, a shift, a zoom and a rotation
    (left out at 0 degrees, so the light default draws the transforms it always drew)."""
    turns = augment.rotation / 360
    rotate = [keras.layers.RandomRotation(turns, seed=seed + 3)] if turns else []
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            *rotate,
            keras.layers.RandomTranslation(augment.shift, augment.shift, seed=seed + 1),
            keras.layers.RandomZoom(augment.zoom, seed=seed + 2),
        ],
        name="augment",
    )


def flip_and_shift(ds: tf.data.Dataset, seed: int, shift: float) -> tf.data.Dataset:
    """Each (image, label) of `ds` flipped left-right with probability 1/2 and shifted by up to `shift` of its side:
    stateless ops on a stream `seed` fixes, new every epoch (Keras's layers doubled the epoch under op determinism)."""
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2, drop_remainder=True)

    def augment(example: tuple[tf.Tensor, tf.Tensor], pair: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        (image, label), seeds = example, tf.random.split(pair, 2)
        image = tf.image.stateless_random_flip_left_right(image, seeds[0])
        pad = tf.cast(tf.round(shift * tf.cast(tf.shape(image)[0], tf.float32)), tf.int32)
        padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]], mode="SYMMETRIC")
        return tf.image.stateless_random_crop(padded, tf.shape(image), seeds[1]), label

    return tf.data.Dataset.zip(ds, seeds).map(augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def make_dataset(
    frames: pd.DataFrame,
    root: Path,
    classes: Sequence[str],
    feed: Feed = Feed(),
) -> tf.data.Dataset:
    """Batches of (raw pixels, class index) from the crops of `frames` (paths relative
    to `root`), fed as `feed` says (`config.Feed`).

    Decode in parallel (order kept), cache the decoded crops in memory, reshuffle
    every epoch from the seed, batch as float32, optionally augment (flips and shifts
    alone by `flip_and_shift`, else `_augmenter`), change the batches as
    `feed.batch_augment` says, and prefetch so the model never waits for input.
    """
    missing = [p for p in frames["image"].head(1) if not (Path(root) / p).is_file()]
    if missing:
        crop = Path(root) / missing[0]
        raise InputError(f"crop {crop} does not exist; is {root} the crops folder?")
    paths = [str(Path(root) / p) for p in frames["image"]]
    ds = tf.data.Dataset.from_tensor_slices((paths, class_indices(frames, classes)))
    ds = ds.map(
        _decoder(feed.image_size),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if feed.cache:
        ds = ds.cache()
    if feed.shuffle:
        ds = ds.shuffle(len(paths), seed=feed.seed, reshuffle_each_iteration=True)
    augment = feed.augment
    if augment and not (augment.rotation or augment.zoom):
        ds = flip_and_shift(ds, feed.seed, augment.shift)
    ds = ds.batch(feed.batch_size, drop_remainder=feed.drop_remainder)
    ds = ds.map(
        lambda x, y: (tf.cast(x, tf.float32), y),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if augment and (augment.rotation or augment.zoom):
        augmenter = _augmenter(feed.seed, augment)
        ds = ds.map(
            lambda x, y: (augmenter(x, training=True), y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    # nothing unless the feed asks
    ds = augment_batches(ds, feed.batch_augment, len(classes), feed.seed)
    return ds.prefetch(tf.data.AUTOTUNE)


def load_images(frames: pd.DataFrame, root: Path, image_size: tuple[int, int] | None = None) -> np.ndarray:
    """All crops of `frames` as one (N, H, W, 1) float32 array of raw pixels, at their side or `image_size`."""
    if not len(frames):
        spec = folder_crop_spec(root)
        side = tuple(image_size) if image_size is not None else (spec.side,) * 2 if spec else (0, 0)
        return np.zeros((0, *side, 1), "float32")
    feed = Feed(batch_size=256, cache=False, image_size=image_size)
    ds = make_dataset(frames, root, sorted(set(frames["emotion"])), feed)
    return np.concatenate([x.numpy() for x, _ in ds])


def replica_batching(n: int, batch_size: int, replicas: int) -> tuple[int, bool]:
    """(batch size, drop_remainder) for `n` frames so that Keras can split every batch over `replicas`."""
    if replicas <= 1:
        return batch_size, False
    size = max(replicas, min(batch_size, n) // replicas * replicas)
    return size, 0 < n % size < replicas


@dataclass(frozen=True, eq=False)
class FaceData:
    """The data module of a run: the crops folder, the frames used (`table`, default its manifest; usable ones, of
    `subjects` when given), their `split` and the `pipeline` feeding them; the book's cache keys runs by their code."""

    crops: Path
    table: pd.DataFrame | None = None
    subjects: tuple[str, ...] | None = None
    split: Splitter = split_frames
    pipeline: Pipeline = make_dataset

    def __post_init__(self) -> None:
        object.__setattr__(self, "crops", Path(self.crops))
        if self.subjects is not None:
            object.__setattr__(self, "subjects", tuple(sorted(map(str, self.subjects))))

    def frames(self) -> pd.DataFrame:
        """The usable frames of `table` (default: the crops' manifest), of `subjects` when given (InputError: none)."""
        frames = usable_frames(load_manifest(self.crops) if self.table is None else self.table)
        if self.subjects is None:
            return frames
        chosen = frames[frames["subject"].astype(str).isin(self.subjects)]
        if chosen.empty:
            raise InputError(f"no usable frames of subjects {list(self.subjects)} in {self.crops}")
        return chosen

    @cached_property
    def spec(self) -> CropSpec | None:
        """How the crops were cut (`preprocess.folder_crop_spec`, read once); None for crops made by hand."""
        return folder_crop_spec(self.crops)

    def check_feed(self, config: TrainConfig) -> None:
        """InputError for an option of `config` that `pipeline` would never apply (`make_dataset` applies all)."""

    def protocol(self, config: TrainConfig, frames: pd.DataFrame) -> str:
        """The protocol this data is split with under `config` (`splits.resolve_protocol`)."""
        return resolve_protocol(frames, config.protocol)

    def split_for(self, config: TrainConfig, frames: pd.DataFrame) -> Split:
        """`frames` split by `config` through the crops' duplicate audit (`splits.audited_split`): copies
        of one image on one side, the test rows that copy a training crop marked (`config.clean_test`: left out)."""
        sizes = (config.test_size, config.val_size, config.seed)
        return audited_split(frames, self.crops, self.protocol(config, frames), *sizes, config.clean_test, self.split)

    def batches(
        self,
        frames: pd.DataFrame,
        classes: Sequence[str],
        config: TrainConfig,
        *,
        training: bool = False,
        replicas: int = 1,
    ) -> tf.data.Dataset:
        """`frames` through `pipeline` in `config`'s batch, split evenly over `replicas`; crops without a spec
        (made by hand) at `config`'s input size. `training` also shuffles and augments them."""
        size, drop = replica_batching(len(frames), config.batch_size, replicas)
        sized = None if self.spec else config.image_size
        feed = config.feed(training, batch_size=size, drop_remainder=drop, image_size=sized)
        return self.pipeline(frames, self.crops, classes, feed)


# Batch augmentation (training side only): intensity jitter, random erasing (Zhong et al. 2020), mixup (Zhang et al.
# 2018) or cutmix (Yun et al. 2019), whose class-distribution labels `fit.SmoothedCrossentropy` reads.
MIXUP_ALPHA = 0.2  # mixup's Beta(α, α) (Zhang et al. use 0.2 on ImageNet); cutmix's box area is uniform, as Yun's
# Random erasing's rectangle: a share of the image's area and an aspect ratio (Zhong et al. 2020's defaults).
ERASE_AREA = (0.02, 0.25)
ERASE_RATIO = (0.3, 3.3)
# Intensity jitter at strength 1: brightness ± a quarter of the range, contrast ×(1 ± 0.5), gamma e^(±0.4) and a
# 3×3 box blur for half the images; a strength s scales each of them by s.
BRIGHTNESS, CONTRAST, GAMMA, BLUR = 0.25, 0.5, 0.4, 0.5
STREAM_OFFSET = 7919  # of their random stream from the run's seed (flip_and_shift draws from the seed itself)


def _per_image(images: tf.Tensor, seed: tf.Tensor, low: float = -1.0, high: float = 1.0) -> tf.Tensor:
    """One uniform draw per image of the batch, shaped (B, 1, 1, 1)."""
    return tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed, low, high)


def jitter_intensity(images: tf.Tensor, strength: float, seed: tf.Tensor) -> tf.Tensor:
    """Each image's gamma, contrast and brightness jittered, and half of them (at strength 1) blurred."""
    seeds = tf.random.split(seed, 4)
    x = tf.clip_by_value(images / 255.0, 0.0, 1.0)
    x = tf.pow(x, tf.exp(_per_image(images, seeds[0]) * GAMMA * strength))
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    x = (x - mean) * (1.0 + _per_image(images, seeds[1]) * CONTRAST * strength) + mean
    x = x + _per_image(images, seeds[2]) * BRIGHTNESS * strength
    blurred = tf.nn.avg_pool2d(x, 3, 1, "SAME")
    x = tf.where(_per_image(images, seeds[3], 0.0, 1.0) < BLUR * strength, blurred, x)
    return tf.clip_by_value(x, 0.0, 1.0) * 255.0


def erase_rectangles(images: tf.Tensor, probability: float, seed: tf.Tensor) -> tf.Tensor:
    """Each image, with `probability`, with a rectangle of random place, area and aspect filled with noise."""
    seeds = tf.random.split(seed, 6)
    count, height, width = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
    rows, columns = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    area = tf.random.stateless_uniform([count], seeds[0], *ERASE_AREA) * rows * columns
    ratio = tf.exp(tf.random.stateless_uniform([count], seeds[1], *(math.log(r) for r in ERASE_RATIO)))
    tall = tf.clip_by_value(tf.sqrt(area * ratio), 1.0, rows)
    wide = tf.clip_by_value(tf.sqrt(area / ratio), 1.0, columns)
    top = tf.random.stateless_uniform([count], seeds[2]) * (rows - tall)
    left = tf.random.stateless_uniform([count], seeds[3]) * (columns - wide)
    y, x = tf.range(rows)[None, :], tf.range(columns)[None, :]
    in_rows = (y >= top[:, None]) & (y < (top + tall)[:, None])
    in_columns = (x >= left[:, None]) & (x < (left + wide)[:, None])
    chosen = tf.random.stateless_uniform([count], seeds[4]) < probability
    mask = in_rows[:, :, None] & in_columns[:, None, :] & chosen[:, None, None]
    noise = tf.random.stateless_uniform(tf.shape(images), seeds[5], 0.0, 255.0)
    return tf.where(mask[..., None], noise, images)


def mix_batch(
    images: tf.Tensor, labels: tf.Tensor, classes: int, mix: str, seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """The batch mixed with itself reversed (image i with B−1−i) by `mix`, the labels as class distributions alike:
    "mixup" blends whole images with a Beta(α, α) weight, "cutmix" pastes a box of uniformly drawn area."""
    seeds = tf.random.split(seed, 4)
    target = tf.one_hot(tf.cast(labels, tf.int32), classes)
    other_images, other_target = tf.reverse(images, [0]), tf.reverse(target, [0])
    if mix == "mixup":
        first = tf.random.stateless_gamma([], seeds[0], MIXUP_ALPHA)
        second = tf.random.stateless_gamma([], seeds[1], MIXUP_ALPHA)
        weight = first / tf.maximum(first + second, 1e-12)
        return weight * images + (1.0 - weight) * other_images, weight * target + (1.0 - weight) * other_target
    sides = tf.cast(tf.shape(images)[1:3], tf.float32)  # (rows, columns)
    side = tf.sqrt(tf.random.stateless_uniform([], seeds[0]))  # the box's share of each side: area uniform
    centre = tf.random.stateless_uniform([2], seeds[1]) * sides
    low = tf.floor(tf.clip_by_value(centre - side * sides / 2, 0.0, sides))  # (top, left)
    high = tf.floor(tf.clip_by_value(centre + side * sides / 2, 0.0, sides))  # (bottom, right)
    y, x = tf.range(sides[0])[:, None], tf.range(sides[1])[None, :]
    box = (y >= low[0]) & (y < high[0]) & (x >= low[1]) & (x < high[1])
    share = tf.reduce_mean(tf.cast(box, tf.float32))
    mixed = tf.where(box[None, :, :, None], other_images, images)
    return mixed, (1.0 - share) * target + share * other_target


def augment_batches(ds: tf.data.Dataset, augment: BatchAugmentation, classes: int, seed: int) -> tf.data.Dataset:
    """`ds` (batches of raw pixels, float32, and class indices) changed as `augment` says, in this order:
    intensity, erasing, mixing (the labels then class distributions); `ds` itself when nothing is asked."""
    if not augment.active():
        return ds
    seeds = tf.data.Dataset.random(seed=seed + STREAM_OFFSET, rerandomize_each_iteration=True).batch(
        2, drop_remainder=True
    )

    def change(batch: tuple[tf.Tensor, tf.Tensor], pair: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        (images, labels), streams = batch, tf.random.split(pair, 3)
        if augment.intensity:
            images = jitter_intensity(images, augment.intensity, streams[0])
        if augment.random_erasing:
            images = erase_rectangles(images, augment.random_erasing, streams[1])
        if augment.mix != "none":
            images, labels = mix_batch(images, labels, classes, augment.mix, streams[2])
        return images, labels

    return tf.data.Dataset.zip(ds, seeds).map(change, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
