"""What changes a training batch beyond flips and shifts (`config.BatchAugmentation`, all off by default): the
pixels' intensity jittered (brightness, contrast, gamma, blur), random erasing (Zhong et al. 2020) and mixing
each image with another of its batch, mixup (Zhang et al. 2018) or cutmix (Yun et al. 2019).

`augment_batches` adds them to a tf.data pipeline of batches of raw pixels (0..255 float32) and class indices,
as `pipeline.make_dataset` does for the training side only: the validation and test sides and every inference
path never see them. They are stateless random ops seeded by a stream that the run's seed fixes and that
differs every epoch, like `pipeline.flip_and_shift`. Mixing makes the labels class distributions (one row of
probabilities per image), which `recipe.SmoothedCrossentropy` and `recipe.label_accuracy` read as they read
class indices.
"""

from __future__ import annotations

import math

import tensorflow as tf

from fer_utils.train.config import BatchAugmentation

# mixup's Beta(α, α) for its mixing weight (Zhang et al. 2018 use 0.2 on ImageNet); cutmix draws its box's
# area uniformly (Beta(1, 1)), as Yun et al. 2019 do.
MIXUP_ALPHA = 0.2
# Random erasing's rectangle: a share of the image's area and an aspect ratio (Zhong et al. 2020's defaults).
ERASE_AREA = (0.02, 0.25)
ERASE_RATIO = (0.3, 3.3)
# Intensity jitter at strength 1: brightness ± a quarter of the range, contrast ×(1 ± 0.5), gamma e^(±0.4) and a
# 3×3 box blur for half the images; a strength s scales each of them by s.
BRIGHTNESS, CONTRAST, GAMMA, BLUR = 0.25, 0.5, 0.4, 0.5
# Offset of their random stream from the run's seed (flip_and_shift draws from the seed itself).
STREAM_OFFSET = 7919


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
    y = tf.range(rows)[None, :]
    x = tf.range(columns)[None, :]
    in_rows = (y >= top[:, None]) & (y < (top + tall)[:, None])
    in_columns = (x >= left[:, None]) & (x < (left + wide)[:, None])
    chosen = tf.random.stateless_uniform([count], seeds[4]) < probability
    mask = in_rows[:, :, None] & in_columns[:, None, :] & chosen[:, None, None]
    noise = tf.random.stateless_uniform(tf.shape(images), seeds[5], 0.0, 255.0)
    return tf.where(mask[..., None], noise, images)


def mix_batch(
    images: tf.Tensor, labels: tf.Tensor, classes: int, mix: str, seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """The batch mixed with itself reversed (image i with image B−1−i) by `mix`, and the labels as class
    distributions mixed in the same proportion: "mixup" blends whole images with a Beta(α, α) weight, "cutmix"
    pastes a box of the other image whose area is drawn uniformly."""
    seeds = tf.random.split(seed, 4)
    target = tf.one_hot(tf.cast(labels, tf.int32), classes)
    other_images, other_target = tf.reverse(images, [0]), tf.reverse(target, [0])
    if mix == "mixup":
        first = tf.random.stateless_gamma([], seeds[0], MIXUP_ALPHA)
        second = tf.random.stateless_gamma([], seeds[1], MIXUP_ALPHA)
        weight = first / tf.maximum(first + second, 1e-12)
        return weight * images + (1.0 - weight) * other_images, weight * target + (1.0 - weight) * other_target
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    rows, columns = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    side = tf.sqrt(tf.random.stateless_uniform([], seeds[0]))  # the box's share of each side: area uniform
    centre = tf.random.stateless_uniform([2], seeds[1]) * tf.stack([rows, columns])
    top, bottom = (
        tf.clip_by_value(centre[0] - side * rows / 2, 0.0, rows),
        tf.clip_by_value(centre[0] + side * rows / 2, 0.0, rows),
    )
    left, right = (
        tf.clip_by_value(centre[1] - side * columns / 2, 0.0, columns),
        tf.clip_by_value(centre[1] + side * columns / 2, 0.0, columns),
    )
    y, x = tf.range(rows)[:, None], tf.range(columns)[None, :]
    box = (y >= tf.floor(top)) & (y < tf.floor(bottom)) & (x >= tf.floor(left)) & (x < tf.floor(right))
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
