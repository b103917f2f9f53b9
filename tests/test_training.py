"""Training on real crops: the tf.data pipeline, a short run that learns, determinism, MirroredStrategy,
and mini-Xception training on TensorFlow's CPU (oneDNN) kernels.

The crops are the toy crops of `toy_data`: real faces from the 24 RAVDESS stills with a learnable
mark per class.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
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

    from fer_utils.data.manifest import usable_frames
    from fer_utils.train.config import Feed
    from fer_utils.train.pipeline import make_dataset

    root, manifest = toy
    frames = usable_frames(manifest)
    assert len(frames) == len(manifest) - 1 == 288
    ds = make_dataset(frames.head(10), root, list(TOY_CLASSES), Feed(batch_size=4, image_size=(64, 64)))
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    images, labels = np.concatenate(images), np.concatenate(labels)
    assert images.shape == (10, 64, 64, 1) and images.dtype == np.float32
    first = cv2.imread(str(root / frames.image[0]), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(images[0, :, :, 0], first.astype(np.float32))
    assert [TOY_CLASSES[i] for i in labels] == list(frames.emotion[:10])


def test_dataset_rejects_unknown_emotion_and_missing_folder(toy: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    from fer_utils.data.manifest import usable_frames
    from fer_utils.errors import InputError
    from fer_utils.train.pipeline import make_dataset

    root, manifest = toy
    frames = usable_frames(manifest)
    with pytest.raises(InputError, match="not among the model's classes"):
        make_dataset(frames, root, ["neutral", "happy"])
    with pytest.raises(InputError, match="does not exist"):
        make_dataset(frames, tmp_path, list(TOY_CLASSES))


@pytest.mark.slow
def test_short_run_learns_and_is_reproducible(toy: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    from fer_utils.models.networks import load_classes, load_model
    from fer_utils.train.fit import train_run
    from fer_utils.train.pipeline import FaceData

    root, manifest = toy
    first = train_run(None, FaceData(root, manifest), small_config(), tmp_path / "a", verbose=0)
    for name in ("model.keras", "classes.json", "history.csv", "config.json", "metrics.json"):
        assert (tmp_path / "a" / name).is_file(), name
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["test"]["frame"]["accuracy"] > 0.8  # chance is 1/3
    assert metrics["test"]["clip"]["n"] < metrics["test"]["frame"]["n"]
    assert load_classes(tmp_path / "a" / "model.keras") == ["neutral", "happy", "sad"]
    assert len(pd.read_csv(tmp_path / "a" / "history.csv")) == metrics["epochs_run"]
    assert load_model(tmp_path / "a" / "model.keras").count_params() == first.load().count_params()

    # same seed, same numbers on one machine, to the last bit; another seed trains another run
    second = train_run(None, FaceData(root, manifest), small_config(), tmp_path / "b", verbose=0)
    assert second.metrics()["test"] == first.metrics()["test"]
    pd.testing.assert_frame_equal(second.history(), first.history(), check_exact=True)
    other = train_run(None, FaceData(root, manifest), small_config(seed=1), tmp_path / "c", verbose=0)
    assert not other.history()["loss"].equals(first.history()["loss"])


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
    from fer_utils.train.pipeline import FaceData
    from fer_utils.train.fit import train_run
    root, out = Path(sys.argv[1]), Path(sys.argv[2])
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    train_run(None, FaceData(root, pd.read_csv(root / "manifest.csv", keep_default_na=False)), small_config(batch_size=16), out, strategy=strategy, verbose=0)
    """
)


@pytest.mark.slow
def test_mirrored_strategy_run_matches_single_device(toy: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    from fer_utils.train.fit import train_run
    from fer_utils.train.pipeline import FaceData

    root, manifest = toy
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(root), str(tmp_path / "mirrored"), str(TESTS_DIR)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    mirrored = json.loads((tmp_path / "mirrored" / "metrics.json").read_text())
    config = json.loads((tmp_path / "mirrored" / "config.json").read_text())
    assert config["strategy"] == "MirroredStrategy" and config["replicas"] == 2

    single = train_run(
        None, FaceData(root, manifest), small_config(batch_size=16), tmp_path / "single", verbose=0
    ).metrics()
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
    from fer_utils.train.pipeline import FaceData
    from fer_utils.train.fit import train_run
    root, out = Path(sys.argv[1]), Path(sys.argv[2])
    manifest = make_toy_crops(root, size=64, frames_per_clip=1)
    config = small_config(model="mini-xception", epochs=1, batch_size=16, deterministic=True)
    train_run(None, FaceData(root, manifest), config, out, verbose=0)
    """
)


@pytest.mark.slow
def test_mini_xception_trains_an_epoch_on_cpu(tmp_path: Path) -> None:
    """Regression: its 1×1 stride-2 shortcuts used to hit a oneDNN weight-gradient kernel that corrupts
    the heap (segfault or glibc abort at epoch 1, at 64×64 and 96×96); run in a subprocess so that a
    crash fails this test instead of killing pytest."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-c", MINI_XCEPTION_SCRIPT, str(tmp_path / "crops"), str(tmp_path / "run"), str(TESTS_DIR)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-3000:]}"
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert len(history) == 1 and np.isfinite(history["loss"]).all()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"]["frame"]["n"] > 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (
        config["model"] == "mini-xception" and config["params"] == 53_811
    )  # 3 classes (any input size: global pooling)


# --- train checks everything before building anything, and never leaves half a run ----------


def _train_cli(*args: str) -> int:
    """`python -m fer_utils train …` in this process (its exit code)."""
    from fer_utils.cli import main

    return main(["train", *args])


def _no_run_written(run_dir: Path) -> bool:
    """Neither the run folder nor a temporary sibling of it exists."""
    return not run_dir.exists() and not list(run_dir.parent.glob(f".{run_dir.name}.tmp-*"))


def test_train_refuses_a_single_class(toy: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    """Regression: one class trained a 1-output model and reported accuracy and F1 of 1.0."""
    from fer_utils.errors import InputError
    from fer_utils.train.fit import train_run
    from fer_utils.train.pipeline import FaceData

    root, manifest = toy
    happy = manifest[manifest["emotion"] == "happy"]
    with pytest.raises(InputError, match="at least 2 classes"):
        train_run(None, FaceData(root, happy), small_config(epochs=1), tmp_path / "run", verbose=0)
    assert _no_run_written(tmp_path / "run")


def test_train_checks_every_crop_before_building(toy: tuple[Path, pd.DataFrame], tmp_path: Path, capsys) -> None:
    """Regression: only the first row was checked; a later missing crop died in TensorFlow with
    NotFoundError and left a partial run folder."""
    import shutil

    root, manifest = toy
    crops = tmp_path / "crops"
    shutil.copytree(root, crops)
    usable = manifest[manifest["status"] == "ok"]
    (crops / usable["image"].iloc[-1]).unlink()  # the last crop: the first row is fine
    assert _train_cli("--crops", str(crops), "--out", str(tmp_path / "run"), "--side", "32", "--epochs", "1") == 2
    err = capsys.readouterr().err
    assert "1 of 288 crops" in err and usable["image"].iloc[-1] in err
    assert _no_run_written(tmp_path / "run")


def test_train_refuses_a_crop_of_another_side_than_its_spec_by_name(
    toy: tuple[Path, pd.DataFrame], tmp_path: Path, capsys
) -> None:
    """One 96×96 PNG among 64 px crops (crop_spec.json: 64) passed the checks, being a whole PNG, and training
    ended mid-epoch in InvalidArgumentError: Cannot batch tensors with different shapes. Now train refuses it
    before building anything, as it refuses a damaged crop, naming the file, its size and the spec's."""
    import shutil

    import cv2
    import numpy as np

    root, manifest = toy
    crops = tmp_path / "crops"
    shutil.copytree(root, crops)
    odd = manifest[manifest["status"] == "ok"]["image"].iloc[-1]
    cv2.imwrite(str(crops / odd), np.full((96, 96), 128, np.uint8))
    assert _train_cli("--crops", str(crops), "--out", str(tmp_path / "run"), "--side", "32", "--epochs", "1") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: 1 of 288 crops under {crops} are not 64×64 px as its crop spec (crop_spec.json) ")
    assert f"{crops / odd} (96×96 px)" in err and len(err.splitlines()) == 1, err
    assert _no_run_written(tmp_path / "run")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--l1", "-5", "argument --l1: must be a finite number of 0 or more"),
        ("--side", "0", "argument --side: must be between 1 and 1024"),
        ("--batch-size", "0", "argument --batch-size: must be at least 1"),
        ("--epochs", "0", "argument --epochs: must be at least 1"),
        ("--learning-rate", "0", "argument --learning-rate: must be a finite number above 0"),
    ],
)
def test_train_rejects_bad_numbers_with_a_clear_error(
    toy: tuple[Path, pd.DataFrame], tmp_path: Path, capsys, option: str, value: str, message: str
) -> None:
    """Regression: --l1 -5 was recorded and silently not applied; --side 0 and --batch-size 0 ended in
    tracebacks; --epochs 0 wrote a run without training. The parser refuses them (fer_utils.cli.arg_types)."""
    root, _ = toy
    with pytest.raises(SystemExit) as exit_:
        _train_cli("--crops", str(root), "--out", str(tmp_path / "run"), option, value)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert _no_run_written(tmp_path / "run")


def test_train_offers_only_the_known_initialisers(toy: tuple[Path, pd.DataFrame], tmp_path: Path, capsys) -> None:
    root, _ = toy
    with pytest.raises(SystemExit) as exit_:
        _train_cli("--crops", str(root), "--out", str(tmp_path / "run"), "--init", "zeros")
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'zeros'" in err and all(
        name in err for name in ("glorot_uniform", "he_uniform", "he_normal")
    )
    assert _no_run_written(tmp_path / "run")


@pytest.mark.slow
def test_a_run_folder_is_written_whole_and_never_over_another(
    toy: tuple[Path, pd.DataFrame], tmp_path: Path, capsys
) -> None:
    """Regression: --epochs 0 into an existing run folder rewrote classes.json beside the old model. A
    complete run is never overwritten; a run that fails while training leaves nothing behind."""
    import shutil

    from fer_utils.errors import InputError, OutputError
    from fer_utils.faces.crops import CROP_SPEC_FILE
    from fer_utils.storage.run_files import WRITTEN_FILES
    from fer_utils.train.fit import train_run
    from fer_utils.train.pipeline import FaceData
    from fer_utils.train.runs import RunFolder

    root, manifest = toy
    run = tmp_path / "run"
    result = train_run(None, FaceData(root, manifest), small_config(epochs=1), run, verbose=0)
    assert sorted(p.name for p in run.iterdir()) == sorted([*WRITTEN_FILES, CROP_SPEC_FILE])  # the crops' spec too
    assert not list(tmp_path.glob(".run.tmp-*"))
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.iterdir()}

    three = manifest[manifest["emotion"] != "sad"]  # other classes: would rewrite classes.json
    with pytest.raises(OutputError, match="already holds a complete run"):
        train_run(None, FaceData(root, three), small_config(epochs=1), run, verbose=0)
    with pytest.raises(SystemExit):
        _train_cli("--crops", str(root), "--out", str(run), "--epochs", "0")
    assert _train_cli("--crops", str(root), "--out", str(run), "--epochs", "1", "--side", "64") == 2
    assert "already holds" in capsys.readouterr().err
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.iterdir()} == before

    # the saved test predictions are the run's own: same frames, same metrics, no re-split
    frames, probabilities, classes = RunFolder(run).test_predictions()
    assert classes == result.classes() and len(frames) == result.metrics()["test"]["frame"]["n"]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    accuracy = np.mean(np.asarray(classes)[probabilities.argmax(1)] == frames["emotion"].to_numpy())
    assert accuracy == pytest.approx(result.metrics()["test"]["frame"]["accuracy"])
    assert set(frames["image"]) <= set(manifest["image"])

    # a crop that exists but does not decode is named before training: no run folder
    crops = tmp_path / "crops"
    shutil.copytree(root, crops)
    (crops / manifest["image"].iloc[5]).write_bytes(b"not a png")
    with pytest.raises(InputError, match=manifest["image"].iloc[5]):
        train_run(None, FaceData(crops, manifest), small_config(epochs=1), tmp_path / "broken", verbose=0)
    assert _no_run_written(tmp_path / "broken")


@pytest.mark.slow
def test_ctrl_c_during_train_exits_130_with_a_message_and_no_half_run(tmp_path: Path) -> None:
    """Ctrl-C ended `train` in a KeyboardInterrupt traceback; now exit 130, one line, and no run folder (the
    run is written aside and renamed only when complete)."""
    from fer_utils.book import artifacts

    crops, out = artifacts.Dataset().crops(), tmp_path / "run"
    argv = [sys.executable, "-u", "-m", "fer_utils", "train", "--crops", str(crops), "--out", str(out)]
    argv += ["--side", "32", "--epochs", "200", "--protocol", "clip"]
    log = tmp_path / "log.txt"
    with log.open("w") as fh:
        process = subprocess.Popen(
            argv, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        deadline = time.monotonic() + 240
        while "Epoch 1/" not in log.read_text() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.5)
        assert "Epoch 1/" in log.read_text(), log.read_text()[-2000:]
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=120)
    text = log.read_text()
    assert code == 130, text[-2000:]
    assert "Traceback" not in text and "error: interrupted (Ctrl-C)" in text
    assert not out.exists(), "no half run in place"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run")], "its temporary folder is removed"


# --- collapse detection ------------------------------------------------------------------------


@pytest.mark.slow
def test_a_collapsed_run_is_flagged_and_a_healthy_one_is_not(
    toy: tuple[Path, pd.DataFrame], tmp_path: Path, capsys
) -> None:
    """A huge learning rate kills every Dense(16) unit: metrics.json says so and the CLI warns loudly;
    the recipe of the learning test is not flagged."""
    root, _ = toy
    assert (
        _train_cli(
            "--crops",
            str(root),
            "--out",
            str(tmp_path / "dead"),
            "--side",
            "48",
            "--epochs",
            "2",
            "--learning-rate",
            "10",
            "--seed",
            "1",
        )
        == 0
    )
    captured = capsys.readouterr()
    out = captured.out
    assert (captured.out + captured.err).count("COLLAPSED RUN") == 1  # printed once
    metrics = json.loads((tmp_path / "dead" / "metrics.json").read_text())
    assert metrics["collapsed"] is True
    assert metrics["collapse"]["alive_units"] == 0 or metrics["collapse"]["predicted_classes"] == 1
    assert metrics["collapse"]["advice"] and "COLLAPSED RUN" in out and "learning rate" in out

    from fer_utils.train.fit import train_run
    from fer_utils.train.pipeline import FaceData

    healthy = train_run(None, FaceData(root, toy[1]), small_config(), tmp_path / "healthy", verbose=0).metrics()
    assert healthy["collapsed"] is False
    assert healthy["collapse"]["alive_units"] > 0 and healthy["collapse"]["predicted_classes"] == 3
    assert healthy["collapse"]["train_loss_vs_chance"] < 0.9 and healthy["collapse"]["advice"] == ""


def test_the_l1_penalty_in_the_logged_loss_does_not_make_a_learning_run_collapsed() -> None:
    """Regression (a fresh clone's CI): chapter 5's published network with the paper's L1 learnt
    (test accuracy 0.12 above the commonest class) but was flagged collapsed: its lowest logged training
    loss, 0.974 × ln 7, held an L1 penalty of 0.16. The penalty is taken out before comparing with chance."""
    import keras

    from fer_utils.train.fit import CHANCE_LOSS_FRACTION, collapse_check, penalty

    classes = ["angry", "happy", "sad"]
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="softmax", kernel_regularizer=keras.regularizers.L1(0.1))]
    )
    model.layers[0].kernel.assign(np.ones((4, 3), dtype="float32"))  # L1 penalty 0.1 × 12 weights = 1.2
    assert penalty(model) == pytest.approx(1.2, rel=1e-5)
    frames = pd.DataFrame({"emotion": classes})
    probabilities = np.eye(3, dtype="float32")  # three classes predicted: only the loss can flag it
    logged = CHANCE_LOSS_FRACTION * np.log(3) + 0.5  # above chance with the penalty, 0.7 below it without
    report = collapse_check(model, np.ones((3, 4), "float32"), probabilities, classes, frames, logged, 0.6)
    assert report["collapsed"] is False and report["regularization_penalty"] == pytest.approx(1.2, rel=1e-4)
    assert report["train_loss_vs_chance"] < CHANCE_LOSS_FRACTION
    stuck = collapse_check(model, np.ones((3, 4), "float32"), probabilities, classes, frames, logged + 1.2, 0.4)
    assert stuck["collapsed"] is True  # at chance once the penalty is out: still flagged


def test_a_collapsed_run_of_a_wider_fc_counts_its_own_units() -> None:
    """The collapse warning said "of 16 Dense units" whatever the fc layer's width."""
    from fer_utils.models.networks import build_paper_cnn
    from fer_utils.train.fit import collapse_check, collapse_message

    classes = ["angry", "happy"]
    model = build_paper_cnn(2, (32, 32, 1), units=24)
    fc = model.get_layer("fc")
    fc.kernel.assign(np.zeros(fc.kernel.shape, "float32"))
    fc.bias.assign(-np.ones(fc.bias.shape, "float32"))  # every unit dead
    frames = pd.DataFrame({"emotion": classes})
    probabilities = np.array([[1.0, 0.0], [1.0, 0.0]], "float32")
    report = collapse_check(model, np.ones((2, 32, 32, 1), "float32"), probabilities, classes, frames)
    assert report["alive_units"] == 0 and report["fc_units"] == 24
    assert "0 of 24 Dense units alive" in collapse_message({"collapsed": True, "collapse": report})


def test_predicting_with_many_fresh_models_logs_no_retracing_warning() -> None:
    """Regression: `train_run` (`train.fit.train_run`) predicted the test set with `model.predict`, so a chapter that
    trains many runs in one kernel printed TensorFlow's retracing warnings into its page.
    `predict_batches` gives the same probabilities and logs nothing."""
    import logging

    import keras
    import numpy as np
    import tensorflow as tf

    from fer_utils.models.networks import build_paper_cnn
    from fer_utils.train.fit import predict_batches

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("tensorflow")
    logger.addHandler(handler)
    images = np.random.default_rng(0).uniform(0, 255, (10, 16, 16, 1)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((images, np.zeros(10, "int64"))).batch(4)
    try:
        for seed in range(7):
            keras.utils.set_random_seed(seed)
            model = build_paper_cnn(num_classes=3, input_shape=(16, 16, 1))
            probabilities = predict_batches(model, dataset)
            assert probabilities.shape == (10, 3)
            assert np.allclose(probabilities, np.asarray(model(images, training=False)), atol=1e-6)
    finally:
        logger.removeHandler(handler)
    assert not [r.getMessage() for r in records if "retracing" in r.getMessage()]


def test_the_run_model_is_the_best_epochs_not_the_last(toy: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    """`fit_model` saves the epoch of the lowest validation loss (early stopping puts its weights back),
    not the last epoch: validated on wrong labels, the loss rises as the network learns the true ones."""
    from fer_utils.data.manifest import usable_frames
    from fer_utils.models.networks import load_model
    from fer_utils.train.config import Feed
    from fer_utils.train.fit import fit_model, predict_batches
    from fer_utils.train.pipeline import make_dataset
    from fer_utils.train.runs import RunFolder

    root, manifest = toy
    frames = usable_frames(manifest)
    classes = list(TOY_CLASSES)
    shifted = dict(zip(classes, classes[1:] + classes[:1]))
    wrong = frames.head(64).assign(emotion=lambda f: f["emotion"].map(shifted))
    config = small_config(epochs=4, patience=4)
    train = make_dataset(frames, root, classes, Feed(shuffle=True, seed=3, image_size=config.image_size))
    val = make_dataset(wrong, root, classes, Feed(image_size=config.image_size))
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    _, history = fit_model(config, train, val, len(classes), run, verbose=0)
    best = int(history["val_loss"].idxmin())
    assert best < len(history) - 1, history
    probabilities = predict_batches(load_model(run.model_file), val)
    labels = wrong["emotion"].map(classes.index).to_numpy()
    loss = float(-np.mean(np.log(probabilities[np.arange(len(labels)), labels])))
    assert loss == pytest.approx(history["val_loss"][best], rel=1e-3)
    assert loss != pytest.approx(history["val_loss"].iloc[-1], rel=1e-3)


def test_ctrl_c_inside_the_input_pipeline_stops_training_between_batches(
    toy: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    """Ctrl-C while TensorFlow read a batch raised KeyboardInterrupt inside Keras's conversion of it, which
    failed as a TypeError (a CI run of `train`, exit 1 instead of 130); now the signal is held until the batch
    ends and raised there, and the previous handler is back afterwards."""
    import signal
    import threading

    import tensorflow as tf

    from fer_utils.data.manifest import usable_frames
    from fer_utils.train.config import Feed
    from fer_utils.train.fit import fit_run
    from fer_utils.train.pipeline import make_dataset
    from fer_utils.train.runs import RunFolder

    assert threading.current_thread() is threading.main_thread(), "signals reach only the main thread"
    root, manifest = toy
    classes = list(TOY_CLASSES)
    config = small_config(epochs=3, patience=3, batch_size=8)
    frames = usable_frames(manifest).head(64)
    sent = []

    def interrupt_once(images: tf.Tensor) -> tf.Tensor:
        if len(sent) == 2:  # the third batch TensorFlow reads
            os.kill(os.getpid(), signal.SIGINT)
        sent.append(1)
        return images

    train = make_dataset(frames, root, classes, Feed(image_size=config.image_size)).map(
        lambda x, y: (tf.py_function(interrupt_once, [x], tf.float32), y)
    )
    train = train.map(lambda x, y: (tf.ensure_shape(x, [None, *config.image_size, 1]), y))
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt, match="stopped between batches"):
        fit_run(config, train, None, len(classes), run, verbose=0)
    assert signal.getsignal(signal.SIGINT) is before, "Python's handler is back"
    assert len(sent) < 8, "training stopped in its first epoch"


def test_tensorflows_retracing_warning_is_dropped_during_training_and_other_warnings_pass(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Chapter 7's page showed TensorFlow's "triggered tf.function retracing" warning (Keras's step of several
    batches, traced again in a kernel that had trained many models). A model that logs it, and another warning,
    while its step is traced: training prints the other one only."""
    import keras
    import tensorflow as tf

    from fer_utils.train.fit import training_seconds_per_image

    def logs(x: tf.Tensor) -> tf.Tensor:
        tf.get_logger().warning("5 out of the last 5 calls to <function f> triggered tf.function retracing.")
        tf.get_logger().warning("another warning")
        return x

    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(logs), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    caplog.clear()  # what building the model logged
    with caplog.at_level("WARNING"):
        training_seconds_per_image({"m": model}, np.zeros((8, 4), "float32"), np.zeros(8, "int64"), 4, repeats=1)
    logged = caplog.text
    assert "another warning" in logged and "retracing" not in logged, logged[-2000:]
