"""Class activation maps ("Grad-CAM" in the chapters, the family's name): which parts of the face drive a prediction.

From feature maps A and gradients G of the class's log-probability (no softmax saturation): "hirescam" (Draelos
& Carin 2020, the default) is ReLU(Σ_k A_k ⊙ G_k), "gradcam" (Selvaraju et al. 2017) ReLU(Σ_k α_k A_k), α_k the
spatial mean of G_k. Averaged gradients often cancel behind the paper's dense head; HiResCAM is faithful there."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from fer_utils.errors import InputError
from fer_utils.registry import CAM_METHODS, DEFAULT_CAM_METHOD


def last_conv_layer(model: keras.Model) -> str:
    """Name of the model's last Conv2D layer (the default Grad-CAM layer)."""
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    if not convs:
        raise InputError(f"model {model.name} has no Conv2D layer for Grad-CAM")
    return convs[-1].name


def grad_cam(
    model: keras.Model,
    image: np.ndarray,
    class_index: int | None = None,
    layer_name: str | None = None,
    method: str = DEFAULT_CAM_METHOD,
) -> np.ndarray:
    """A class activation map in [0, 1] at the image's height×width for one raw-pixel
    image (H, W) or (H, W, 1), a crop as the model takes it.

    `class_index` defaults to the predicted class, `layer_name` to the last Conv2D
    layer; `method` is "hirescam" or "gradcam" (see the module docstring).
    """
    if method not in CAM_METHODS:
        raise InputError(
            f"unknown CAM method {method!r}; choose one of {CAM_METHODS}",
        )
    layer = model.get_layer(layer_name or last_conv_layer(model))
    # one input: called with one tensor
    probe = keras.Model(model.input, [layer.output, model.output])
    image = np.asarray(image, np.float32)
    batch = image.reshape((1, image.shape[0], image.shape[1], model.input_shape[-1]))
    x = tf.convert_to_tensor(batch)
    with tf.GradientTape() as tape:
        features, predictions = probe(x, training=False)
        index = int(tf.argmax(predictions[0]) if class_index is None else class_index)
        # log-probability: no softmax saturation
        score = tf.math.log(predictions[:, index] + 1e-12)
    gradients = tape.gradient(score, features)
    hires = method == "hirescam"
    weights = gradients[0] if hires else tf.reduce_mean(gradients, axis=(0, 1, 2))
    cam = tf.nn.relu(tf.reduce_sum(features[0] * weights, axis=-1))
    resized = tf.image.resize(cam[..., None], image.shape[:2])[..., 0].numpy()
    cam = np.maximum(resized, 0.0)
    peak = cam.max()
    return (cam / peak if peak > 0 else cam).astype(np.float32)


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.4, cmap: str = "jet") -> np.ndarray:
    """RGB uint8 picture of the gray `image` with the `heatmap` blended on top through a colormap."""
    import matplotlib

    gray = np.asarray(image, np.float32).reshape(heatmap.shape)
    base = np.repeat((gray / max(gray.max(), 1.0))[..., None], 3, axis=-1)
    colours = matplotlib.colormaps[cmap](heatmap)[..., :3]
    return np.clip(255 * ((1 - alpha) * base + alpha * colours), 0, 255).astype(np.uint8)
