"""The two LSTMs the paper's Table I cites, built at full size for counting only (parameters, FLOPs): the
landmark LSTM it concedes to and VGG-Face+LSTM. Never trained by the book; the trained sequence model is
`models.networks.build_cnn_lstm`."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from fer_utils.registry import SEQUENCE_FRAMES

# Pairwise distances between dlib's 68 landmarks: what each frame gives the paper's cited LSTM.
LANDMARK_DISTANCES = 68 * 67 // 2


def build_landmark_lstm(
    num_classes: int = 8, frames: int = SEQUENCE_FRAMES, features: int = LANDMARK_DISTANCES, units: int = 3000
) -> keras.Model:
    """The LSTM the paper concedes to (Ryumina & Karpov 2020): 3,000 units (assumed) hold about its 63 M parameters."""
    inputs = keras.Input(shape=(frames, features), name="distances")
    x = layers.LSTM(units, name="lstm")(inputs)
    return keras.Model(inputs, layers.Dense(num_classes, activation="softmax")(x), name="landmark_lstm")


def build_vggface_lstm(
    num_classes: int = 8, input_shape: Sequence[int] = (SEQUENCE_FRAMES, 224, 224, 3), units: int = 512
) -> keras.Model:
    """VGG-Face + LSTM of Table I: VGG-Face (VGG16, 2,622 identities) to fc7 per frame, an LSTM of `units` (assumed)."""
    frames, frame_shape = input_shape[0], tuple(input_shape[1:])
    vgg = keras.applications.VGG16(weights=None, include_top=True, classes=2622, input_shape=frame_shape)
    body = keras.Model(vgg.input, vgg.get_layer("fc2").output, name="vggface_fc7")
    clips = keras.Input(shape=(frames, *frame_shape), name="clip")
    x = layers.LSTM(units, name="lstm")(layers.TimeDistributed(body, name="frames")(clips))
    return keras.Model(clips, layers.Dense(num_classes, activation="softmax")(x), name="vggface_lstm")
