"""Training on real crops: the tf.data pipeline, a short run that learns, determinism, MirroredStrategy,
and mini-Xception training on TensorFlow's CPU (oneDNN) kernels.

The crops are the toy crops of `toy_data`: real faces from the 24 RAVDESS stills with a learnable
mark per class.
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

from toy_data import TOY_CLASSES, make_toy_crops, small_config

TESTS_DIR = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A crops folder of 288 real-face 64×64 crops in 3 classes, with its manifest."""
    out = tmp_path_factory.mktemp("crops")
    return out, make_toy_crops(out)


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
    from toy_data import small_config
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
                           str(TESTS_DIR)], env=env, capture_output=True, text=True, timeout=600)
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


MINI_XCEPTION_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    from toy_data import make_toy_crops, small_config
    from fer_utils.training import train_run
    root, out = Path(sys.argv[1]), Path(sys.argv[2])
    manifest = make_toy_crops(root, size=64, frames_per_clip=1)
    config = small_config(model="mini-xception", epochs=1, batch_size=16, deterministic=True)
    train_run(config, manifest, root, out, verbose=0)
    """
)


@pytest.mark.slow
def test_mini_xception_trains_an_epoch_on_cpu(tmp_path: Path) -> None:
    """Regression: its 1×1 stride-2 shortcuts used to hit a oneDNN weight-gradient kernel that corrupts
    the heap (segfault or glibc abort at epoch 1, at 64×64 and 96×96); run in a subprocess so that a
    crash fails this test instead of killing pytest."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", MINI_XCEPTION_SCRIPT, str(tmp_path / "crops"), str(tmp_path / "run"),
                           str(TESTS_DIR)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-3000:]}"
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert len(history) == 1 and np.isfinite(history["loss"]).all()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"]["frame"]["n"] > 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"] == "mini-xception" and config["params"] == 53_811  # 3 classes (any input size: global pooling)
