"""Training on real crops: the tf.data pipeline, a short run that learns, determinism, MirroredStrategy.

The crops are cut from the 24 real RAVDESS stills (OpenCV Haar face box) and, to give a learnable
task without video, each class stamps its own mark on the face ("happy": a bright smile arc,
"sad": a dark frown arc, "neutral": none), jittered per frame. `make_toy_crops` is imported by the
other model tests too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fer_utils.assets import still_paths

TOY_CLASSES = ("neutral", "happy", "sad")
MANIFEST_COLUMNS = ("dataset", "clip_id", "subject", "emotion", "source", "frame_index", "detector",
                    "x", "y", "w", "h", "n_faces", "status", "reason", "image")


def _face_crops(size: int) -> list[tuple[str, np.ndarray]]:
    """(actor, gray uint8 size×size face crop) for each still, face box from OpenCV's Haar cascade."""
    import cv2

    from fer_utils.faces import make_detector

    detector = make_detector("opencv-haar")
    crops = []
    for path in still_paths():
        gray = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2GRAY)
        box = detector.detect(gray)[0]
        face = gray[box.y:box.y + box.h, box.x:box.x + box.w]
        crops.append((path.stem, cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)))
    return crops


def _stamp(face: np.ndarray, emotion: str, rng: np.random.Generator) -> np.ndarray:
    """The face with its class mark, shifted by a few pixels, brightness and noise jittered."""
    import cv2

    size = face.shape[0]
    image = face.astype(np.float32)
    dx, dy = rng.integers(-2, 3, size=2)
    centre = (size // 2 + int(dx), int(size * 0.72) + int(dy))
    axes = (size // 5, size // 10)
    if emotion == "happy":
        cv2.ellipse(image, centre, axes, 0, 0, 180, 255.0, max(2, size // 20))
    elif emotion == "sad":
        cv2.ellipse(image, centre, axes, 0, 180, 360, 0.0, max(2, size // 20))
    image = image + rng.normal(0, 6, image.shape) + rng.uniform(-15, 15)
    return np.clip(image, 0, 255).astype(np.uint8)


def make_toy_crops(out: Path, size: int = 64, frames_per_clip: int = 4, seed: int = 0) -> pd.DataFrame:
    """Write `<out>/<emotion>/<clip_id>_f<frame>.png` crops and `<out>/manifest.csv` (the contract's columns).

    One clip per actor and class, `frames_per_clip` frames each; plus one `no_face` row to check
    that only usable rows are used.
    """
    import cv2

    rng = np.random.default_rng(seed)
    rows = []
    for actor, face in _face_crops(size):
        for emotion in TOY_CLASSES:
            clip_id = f"{actor}-{emotion}"
            for frame in range(frames_per_clip):
                image = Path(emotion) / f"{clip_id}_f{frame:04d}.png"
                (out / emotion).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(out / image), _stamp(face, emotion, rng))
                rows.append(dict(dataset="toy", clip_id=clip_id, subject=actor, emotion=emotion,
                                 source=f"{actor}.png", frame_index=frame, detector="opencv-haar",
                                 x=0, y=0, w=size, h=size, n_faces=1, status="ok", reason="", image=str(image)))
    rows.append(dict(dataset="toy", clip_id="Actor_01-lost", subject="Actor_01", emotion="neutral",
                     source="lost.png", frame_index=0, detector="opencv-haar", x=0, y=0, w=0, h=0,
                     n_faces=0, status="no_face", reason="no face found", image=""))
    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    manifest.to_csv(out / "manifest.csv", index=False)
    return manifest


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A crops folder of 288 real-face 64×64 crops in 3 classes, with its manifest."""
    out = tmp_path_factory.mktemp("crops")
    return out, make_toy_crops(out)


def small_config(**changes: object):
    """A TrainConfig small enough for a test: 64×64 input, a few epochs."""
    from fer_utils.training import TrainConfig

    base = dict(epochs=6, batch_size=32, image_size=(64, 64), patience=6, val_size=0.1, seed=3)
    return TrainConfig(**{**base, **changes})


def test_dataset_decodes_crops_in_order_with_labels(toy: tuple[Path, pd.DataFrame]) -> None:
    import cv2

    from fer_utils.training import make_dataset, usable_frames

    root, manifest = toy
    frames = usable_frames(manifest)
    assert len(frames) == len(manifest) - 1 == 288
    ds = make_dataset(frames.head(10), root, list(TOY_CLASSES), batch_size=4, image_size=(64, 64))
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    images, labels = np.concatenate(images), np.concatenate(labels)
    assert images.shape == (10, 64, 64, 1) and images.dtype == np.float32
    first = cv2.imread(str(root / frames.image[0]), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(images[0, :, :, 0], first.astype(np.float32))
    assert [TOY_CLASSES[i] for i in labels] == list(frames.emotion[:10])


def test_dataset_rejects_unknown_emotion_and_missing_folder(toy: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    from fer_utils.errors import DatasetError
    from fer_utils.training import make_dataset, usable_frames

    root, manifest = toy
    frames = usable_frames(manifest)
    with pytest.raises(DatasetError, match="not among the model's classes"):
        make_dataset(frames, root, ["neutral", "happy"])
    with pytest.raises(DatasetError, match="does not exist"):
        make_dataset(frames, tmp_path, list(TOY_CLASSES))


@pytest.mark.slow
def test_short_run_learns_and_is_reproducible(toy: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    from fer_utils.models import load_classes, load_model
    from fer_utils.training import train_run

    root, manifest = toy
    first = train_run(small_config(), manifest, root, tmp_path / "a", verbose=0)
    for name in ("model.keras", "classes.json", "history.csv", "config.json", "metrics.json"):
        assert (tmp_path / "a" / name).is_file(), name
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["test"]["frame"]["accuracy"] > 0.8  # chance is 1/3
    assert metrics["test"]["clip"]["n"] < metrics["test"]["frame"]["n"]
    assert load_classes(tmp_path / "a" / "model.keras") == ["neutral", "happy", "sad"]
    assert len(pd.read_csv(tmp_path / "a" / "history.csv")) == metrics["epochs_run"]
    assert load_model(tmp_path / "a" / "model.keras").count_params() == first.model.count_params()

    second = train_run(small_config(), manifest, root, tmp_path / "b", verbose=0)
    assert second.metrics["test"] == first.metrics["test"]
    np.testing.assert_allclose(second.history["loss"], first.history["loss"], rtol=1e-6)


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import pandas as pd
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, sys.argv[3])
    from test_training import small_config
    from fer_utils.training import train_run
    root, out = Path(sys.argv[1]), Path(sys.argv[2])
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    train_run(small_config(batch_size=16), pd.read_csv(root / "manifest.csv", keep_default_na=False), root, out,
              strategy=strategy, verbose=0)
    """
)


@pytest.mark.slow
def test_mirrored_strategy_run_matches_single_device(toy: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    from fer_utils.training import train_run

    root, manifest = toy
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, str(root), str(tmp_path / "mirrored"),
                           str(Path(__file__).parent)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    mirrored = json.loads((tmp_path / "mirrored" / "metrics.json").read_text())
    config = json.loads((tmp_path / "mirrored" / "config.json").read_text())
    assert config["strategy"] == "MirroredStrategy" and config["replicas"] == 2

    single = train_run(small_config(batch_size=16), manifest, root, tmp_path / "single", verbose=0).metrics
    assert mirrored.keys() == single.keys()
    assert mirrored["test"].keys() == single["test"].keys()
    assert mirrored["test"]["frame"]["n"] == single["test"]["frame"]["n"]
    # Same data and seed, but dropout masks and float reduction order differ per replica, so the
    # trajectories differ (observed: 0.83 single vs 0.91 mirrored frame accuracy); both must learn.
    assert mirrored["test"]["frame"]["accuracy"] > 0.6 and single["test"]["frame"]["accuracy"] > 0.6
