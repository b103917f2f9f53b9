"""The book's network for faces in the wild and its recipe: `train --recipe wild` alone trains the
book's network on a schedule of known length with label smoothing and cheap seeded augmentation, keeps its
last epoch's weights (the best's scored beside them), and `--time-budget` ends training within its budget.
Small runs: real-face toy crops at 48 px."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_runner import train_cli
from toy_data import make_toy_crops


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A crops folder of 288 real-face 48×48 crops in 3 classes, with its manifest."""
    out = tmp_path_factory.mktemp("crops")
    return out, make_toy_crops(out, size=48)


def test_the_wild_network_is_registered_small_and_plain() -> None:
    """At most 600,000 parameters (220,735 at 7 classes, 48 px): four 3×3 convolutions without bias, batch
    norm, global pooling; every registered name builds it."""
    import keras

    from fer_utils.models.networks import MODEL_BUILDERS, build_model, count_params
    from fer_utils.registry import MODEL_NAMES, WILD_INPUT_SHAPE, WILD_MODEL

    assert WILD_MODEL in MODEL_NAMES and WILD_MODEL in MODEL_BUILDERS
    model = build_model(WILD_MODEL, 7, WILD_INPUT_SHAPE)
    assert count_params(model) == 220_735 <= 600_000
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [24, 48, 96, 192] and not any(c.use_bias for c in convs)
    assert model.predict(np.zeros((2, 48, 48, 1), "float32"), verbose=0).shape == (2, 7)


def test_the_warmup_cosine_schedule_rises_then_falls_to_its_floor_and_can_be_shortened() -> None:
    from fer_utils.train.fit import SCHEDULE_FLOOR, WarmupCosine

    schedule = WarmupCosine(3e-3, warmup_steps=10, total_steps=100)
    rate = lambda step: float(schedule(step))  # noqa: E731
    assert rate(0) == pytest.approx(3e-4) and rate(9) == pytest.approx(3e-3)
    assert rate(10) == pytest.approx(3e-3) and rate(55) == pytest.approx(3e-3 * (SCHEDULE_FLOOR + 0.99 / 2))
    assert rate(100) == pytest.approx(3e-3 * SCHEDULE_FLOOR) and rate(500) == pytest.approx(3e-3 * SCHEDULE_FLOOR)
    schedule.set_total_steps(55)
    assert rate(55) == pytest.approx(3e-3 * SCHEDULE_FLOOR) and schedule.get_config()["total_steps"] == 55


def test_the_smoothed_loss_is_keras_categorical_crossentropy_with_smoothing_on_class_indices() -> None:
    import keras

    from fer_utils.train.fit import SmoothedCrossentropy, loss

    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], "float32")
    labels = np.array([0, 2])
    expected = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(np.eye(3)[labels], probabilities)
    assert float(SmoothedCrossentropy(0.1)(labels, probabilities)) == pytest.approx(float(expected), rel=1e-6)
    assert loss(0.0) == "sparse_categorical_crossentropy"  # a run without smoothing trains as it always did


def test_flips_and_shifts_are_seeded_differ_every_epoch_and_keep_the_face(toy: tuple[Path, pd.DataFrame]) -> None:
    """`flip_and_shift`: the same seed draws the same transforms (a fresh pipeline gives the same batches), the
    next epoch draws others, and with no shift every image is itself or its mirror image."""
    from fer_utils.train.config import Augmentation, Feed
    from fer_utils.train.pipeline import make_dataset

    root, manifest = toy
    frames = manifest.head(64)
    classes = sorted(manifest["emotion"].unique())

    def epochs(seed: int, shift: float, n: int = 2) -> list[np.ndarray]:
        ds = make_dataset(frames, root, classes, Feed(64, seed=seed, augment=Augmentation(shift=shift, zoom=0.0)))
        return [next(iter(ds))[0].numpy() for _ in range(n)]

    plain = next(iter(make_dataset(frames, root, classes, Feed(64))))[0].numpy()
    first, second = epochs(0, 0.1)
    np.testing.assert_array_equal(first, epochs(0, 0.1)[0])
    assert not np.array_equal(first, second) and not np.array_equal(first, epochs(1, 0.1)[0])
    assert not np.array_equal(first, plain)
    flipped = epochs(0, 0.0, 1)[0]
    same = (flipped == plain).all(axis=(1, 2, 3))
    mirrored = (flipped == plain[:, :, ::-1]).all(axis=(1, 2, 3))
    assert (same | mirrored).all() and 0 < mirrored.sum() < len(plain)


def test_train_recipe_wild_alone_trains_the_wild_network_and_keeps_its_last_epoch(
    toy: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    """`train --recipe wild` with no other option: the book's network, batch 128, one-cycle schedule, label
    smoothing, no early stop; the model holds the last epoch's weights, the best's are scored beside them."""
    import keras

    from fer_utils.models.networks import load_model
    from fer_utils.train.config import PRESETS, WILD_EPOCHS
    from fer_utils.train.runs import RunFolder

    root, _ = toy
    assert train_cli("--crops", str(root), "--out", str(tmp_path / "run"), "--recipe", "wild") == 0
    run = RunFolder(tmp_path / "run")
    config, metrics = run.config(), run.metrics()
    assert {k: config[k] for k in PRESETS["wild"]} == {
        k: list(v) if isinstance(v, tuple) else v for k, v in PRESETS["wild"].items()
    }
    assert (config["model"], config["schedule"], config["keep"], config["batch_size"]) == (
        "wild-cnn",
        "one-cycle",
        "last",
        128,
    )
    assert metrics["epochs_run"] == WILD_EPOCHS == len(run.history())  # the schedule's length is the run's
    assert metrics["kept"] == "last" and metrics["test"] == metrics["test_last_epoch"]
    assert "test_best_epoch" in metrics
    model, last = load_model(run.model_file), load_model(run.model_file)
    last.load_weights(run.last_weights_file)
    for kept, written in zip(model.get_weights(), last.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, written)
    history = pd.read_csv(run.path / "history.csv")
    rates = history["learning_rate"].to_numpy() if "learning_rate" in history else None
    assert rates is None or rates[-1] < rates[1]
    keras.backend.clear_session()


def test_a_time_budget_ends_training_within_it_plus_one_epoch_and_is_recorded(
    toy: tuple[Path, pd.DataFrame], tmp_path: Path, capsys
) -> None:
    """`--time-budget` on the sample: 200 epochs asked, 6 seconds allowed: training ends within the budget plus
    one epoch, the schedule ends with it, and time_budget.json keeps the budget, the plan and every epoch's
    seconds; the progress line gives an ETA."""
    from fer_utils.train.runs import RunFolder

    root, _ = toy
    budget_min = 0.1
    args = ("--crops", str(root), "--out", str(tmp_path / "run"), "--recipe", "wild", "--epochs", "200")
    assert train_cli(*args, "--time-budget", str(budget_min)) == 0
    run = RunFolder(tmp_path / "run")
    record = json.loads(run.time_budget_file.read_text())
    seconds = record["epoch_seconds"]
    assert record["time_budget_minutes"] == budget_min and record["epochs_run"] == len(seconds) < 200
    assert record["epochs_planned"] == len(seconds) == len(run.history())
    assert sum(seconds) <= budget_min * 60 + max(seconds)
    assert run.config()["time_budget"] == budget_min
    assert "ETA" in capsys.readouterr().out


def test_a_time_budget_records_in_the_config_the_epochs_it_planned(
    toy: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    """Issue 74: `--time-budget 0.01 --epochs 20` left config.json saying 20 epochs after 1 ran. config.json now says
    the epochs the budget planned (those the schedule ended at), time_budget.json the most that were asked."""
    from fer_utils.train.runs import RunFolder

    root, _ = toy
    args = ("--crops", str(root), "--out", str(tmp_path / "run"), "--recipe", "wild", "--epochs", "20")
    assert train_cli(*args, "--time-budget", "0.0001") == 0
    run = RunFolder(tmp_path / "run")
    record = json.loads(run.time_budget_file.read_text())
    assert run.config()["epochs"] == record["epochs_planned"] == len(run.history()) == 1
    assert record["epochs_asked"] == 20 and run.config()["time_budget"] == 0.0001


def test_a_full_disk_during_training_is_one_line_and_exit_2_with_nothing_left(
    toy: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    """Issue 74: `train --out FULL/R` with FULL a 2 MB tmpfs printed the one-line error, then h5py's "Exception
    ignored ... RuntimeError" tracebacks, and died of a segmentation fault (exit 139) when its objects of the
    half-written weights file were freed. Now one line, exit 2, and nothing left in FULL. The tmpfs is mounted in a
    mount namespace of the command's own (`unshare`), gone when it ends."""
    import shutil
    import subprocess
    import sys

    if shutil.which("unshare") is None:
        pytest.skip("needs util-linux's unshare to mount a small tmpfs")
    full = tmp_path / "full"
    full.mkdir()
    mount = 'mount -t tmpfs -o size=2m tmpfs "$1" || exit 99'
    train = '"$2" -m fer_utils train --crops "$3" --out "$1/R" --recipe wild --epochs 1; code=$?'
    script = f'{mount}; {train}; echo "left in full: [$(ls -A "$1")]"; exit $code'
    argv = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", str(full), sys.executable]
    done = subprocess.run([*argv, str(toy[0])], capture_output=True, text=True, timeout=600)
    if done.returncode == 99:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    assert done.returncode == 2, done.stderr[-3000:]
    ours = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(ours) == 1 and "No space left on device" in ours[0], done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    assert "left in full: []" in done.stdout


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"schedule": "step"}, "schedule 'step' is not one of ('constant', 'one-cycle')"),
        ({"schedule": "one-cycle", "plateau": 2, "patience": 5}, "leave the plateau at 0"),
        ({"label_smoothing": 1.0}, "label smoothing must be in [0, 1), got 1.0"),
        ({"keep": "middle"}, "keep 'middle' is not one of ('best', 'last')"),
        ({"time_budget": 0.0}, "the time budget must be a positive number of minutes, got 0.0"),
        ({"bn_momentum": 1.0}, "batch-norm momentum must be in [0, 1), got 1.0"),
        ({"width": 0.0}, "the width multiplier must be a number above 0, got 0.0"),
        ({"mix": "blend"}, "mix 'blend' is not one of ('none', 'mixup', 'cutmix')"),
        ({"random_erasing": 1.5}, "random erasing is a probability in [0, 1], got 1.5"),
        ({"intensity": 2.0}, "the intensity strength must be in [0, 1] (0: off), got 2.0"),
    ],
)
def test_bad_recipe_settings_are_refused(changes: dict, message: str) -> None:
    from fer_utils.errors import InputError
    from fer_utils.train.config import TrainConfig, check_config

    with pytest.raises(InputError) as error:
        check_config(TrainConfig(**changes))
    assert message in str(error.value)


def test_an_unknown_preset_is_a_training_error_naming_the_presets() -> None:
    from fer_utils.errors import InputError
    from fer_utils.train.config import TrainConfig

    with pytest.raises(InputError, match="no training preset 'wilder'; choose one of: arriaga, paper, reference, wild"):
        TrainConfig.preset("wilder")


def test_export_writes_the_page_model_of_a_run_in_one_command_and_never_overwrites(
    toy: tuple[Path, pd.DataFrame], tmp_path: Path, capsys
) -> None:
    """`export --run RUN`: RUN/page/model.tflite (one crop of the run's side, batch 1) and model.json (classes,
    crop spec, quantization) whose int8 model agrees with the Keras model's class on the run's own crops;
    another run's export into that folder is refused and leaves it intact (`fer_utils.deploy.tflite`)."""
    from fer_utils.cli import main
    from fer_utils.deploy.tflite import PAGE_MODEL_FILE, PAGE_MODEL_INFO, tflite_interpreter, tflite_predict
    from fer_utils.faces.crops import served_spec
    from fer_utils.train.pipeline import load_images
    from fer_utils.train.runs import RunFolder

    root, manifest = toy
    assert train_cli("--crops", str(root), "--out", str(tmp_path / "run"), "--recipe", "wild", "--epochs", "2") == 0
    assert main(["export", "--run", str(tmp_path / "run"), "--mode", "int8"]) == 0
    page = tmp_path / "run" / "page"
    info, blob = json.loads((page / PAGE_MODEL_INFO).read_text()), (page / PAGE_MODEL_FILE).read_bytes()
    run = RunFolder(tmp_path / "run")
    assert info["classes"] == run.classes() and info["crop"] == served_spec(run.crop_spec()).to_dict()
    assert info["tflite"] == "int8" and info["input_quantization"] and info["output_quantization"]
    assert list(tflite_interpreter(blob).get_input_details()[0]["shape"]) == [1, 48, 48, 1]
    images = load_images(manifest.head(32), root)
    keras_classes = run.load().predict(images, verbose=0).argmax(axis=1)
    tflite_classes = np.concatenate([tflite_predict(blob, image[None]) for image in images]).argmax(axis=1)
    assert (keras_classes == tflite_classes).mean() >= 0.9
    other = tmp_path / "other"  # another run's export into this run's page folder is refused, the page kept
    assert train_cli("--crops", str(root), "--out", str(other), "--recipe", "wild", "--epochs", "1", "--seed", "1") == 0
    capsys.readouterr()
    assert main(["export", "--run", str(other), "--out", str(page)]) == 2
    assert "another run" in capsys.readouterr().err
    assert (page / PAGE_MODEL_FILE).read_bytes() == blob
    assert main(["export", "--run", str(tmp_path / "run"), "--mode", "int8"]) == 0  # its own export: replaced


def test_a_time_budget_shorter_than_one_epoch_says_it_was_overrun_and_records_by_how_much() -> None:
    """`--time-budget 0.0005` (0.03 s) ran its one epoch, the minimum, without a word of the overrun; now the
    budget's record holds the seconds over it and a WARNING says so."""
    import time

    import keras

    from fer_utils.train.fit import TimeBudget

    class Slow(keras.callbacks.Callback):
        """At least 0.1 s an epoch on any machine: a wait after each of its 4 batches."""

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            time.sleep(0.025)

    said: list[str] = []
    budget = TimeBudget(0.0005, most=5, steps_per_epoch=4, say=said.append)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    images, labels = rng.normal(size=(32, 8)).astype("float32"), rng.integers(0, 2, 32)
    model.fit(images, labels, batch_size=8, epochs=5, verbose=0, callbacks=[budget, Slow()])
    record = budget.record
    assert record["epochs_run"] == 1 and record["over_budget_seconds"] == pytest.approx(
        record["seconds"] - 0.03, abs=0.01
    )
    assert record["over_budget_seconds"] > 0
    assert said[-1].startswith("WARNING: time budget 0.0005 min (0.03 s) overrun by ")
    assert "1 epoch(s) took" in said[-1] and "recorded in time_budget.json" in said[-1]


# --- options for generalisation: each a TrainConfig field and a train flag, recorded in the run -------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """72 real-face 32×32 crops in 3 classes, with their manifest."""
    out = tmp_path_factory.mktemp("tiny")
    return out, make_toy_crops(out, size=32, frames_per_clip=1)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flags", "recorded"),
    [
        (["--ema"], {"use_ema": True}),
        (["--bn-momentum", "0.99"], {"bn_momentum": 0.99}),
        (["--width", "0.5"], {"width": 0.5}),
        (["--mix", "mixup"], {"mix": "mixup"}),
        (["--mix", "cutmix"], {"mix": "cutmix"}),
        (["--random-erasing", "0.5"], {"random_erasing": 0.5}),
        (["--intensity", "0.5"], {"intensity": 0.5}),
    ],
)
def test_each_option_for_generalisation_reaches_the_runs_config(
    tiny: tuple[Path, pd.DataFrame], tmp_path: Path, flags: list[str], recorded: dict
) -> None:
    """`train --recipe wild --epochs 1` with one option: config.json records it (the others at their
    defaults), and the network or optimizer the run saved has it."""
    import zipfile

    from fer_utils.train.config import TrainConfig
    from fer_utils.train.runs import RunFolder

    root, _ = tiny
    args = ("--crops", str(root), "--out", str(tmp_path / "run"), "--recipe", "wild", "--epochs", "1")
    assert train_cli(*args, "--protocol", "random", *flags) == 0
    run = RunFolder(tmp_path / "run")
    config = run.config()
    default = TrainConfig()
    for name in ("use_ema", "bn_momentum", "width", "mix", "random_erasing", "intensity"):
        assert config[name] == recorded.get(name, getattr(default, name)), name
    with zipfile.ZipFile(run.model_file) as archive:
        saved = json.loads(archive.read("config.json"))
    layers = {layer["config"]["name"]: layer["config"] for layer in saved["config"]["layers"]}
    assert layers["bn1"]["momentum"] == config["bn_momentum"]
    assert layers["conv1"]["filters"] == round(24 * config["width"])
    assert saved["compile_config"]["optimizer"]["config"]["use_ema"] == config["use_ema"]
    assert len(run.history()) == 1 and 0 <= run.metrics()["test"]["frame"]["accuracy"] <= 1


@pytest.mark.parametrize(
    "changes",
    [{"intensity": 0.5}, {"random_erasing": 1.0}, {"mix": "mixup"}, {"mix": "cutmix"}],
    ids=["intensity", "erasing", "mixup", "cutmix"],
)
def test_each_batch_augmentation_changes_training_batches_and_never_inference(
    tiny: tuple[Path, pd.DataFrame], changes: dict
) -> None:
    """The training feed of a config with one augmentation changes the crops (mixing: the labels become class
    distributions), seeded; the feed of every other side, which inference and scoring read, is the crops."""
    from dataclasses import replace

    import cv2

    from fer_utils.train.config import TrainConfig
    from fer_utils.train.pipeline import make_dataset

    root, manifest = tiny
    frames, classes = manifest.head(32), ["neutral", "happy", "sad"]
    config = TrainConfig(batch_size=32, **changes)
    (plain, indices), *_ = list(make_dataset(frames, root, classes, config.feed(False)))
    training = replace(config.feed(True), shuffle=False)  # the same crops in the same order
    (images, labels), *_ = list(make_dataset(frames, root, classes, training))
    (again, _), *_ = list(make_dataset(frames, root, classes, training))
    crops = np.stack([cv2.imread(str(root / path), cv2.IMREAD_GRAYSCALE) for path in frames["image"]])
    np.testing.assert_array_equal(plain.numpy()[..., 0], crops)  # inference: the crops as they are
    assert plain.shape == images.shape and not np.allclose(images.numpy(), plain.numpy())
    np.testing.assert_array_equal(again.numpy(), images.numpy())  # the seed draws the same changes
    assert images.numpy().min() >= 0 and images.numpy().max() <= 255
    if "mix" in changes:
        assert labels.shape == (32, 3) and np.allclose(labels.numpy().sum(axis=1), 1)
        assert not np.allclose(labels.numpy(), np.eye(3)[indices.numpy()])
    else:
        np.testing.assert_array_equal(labels.numpy(), indices.numpy())


@pytest.mark.slow
def test_wild_options_benchmark_runs_end_to_end_on_a_small_folder(
    tiny: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    """benchmarks/wild_options.py on 72 toy crops, scored across on another 72 (another draw of the marks): one
    JSON line per run, the recipe then the option asked, each scored with and without test-time augmentation
    on both folders, with its seconds and the machine's calibration."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import wild_options

    from fer_utils.registry import TTA_MODES

    root, _ = tiny
    other = tmp_path / "other"
    make_toy_crops(other, size=32, frames_per_clip=1, seed=1)
    results = tmp_path / "lines.jsonl"
    argv = ["--crops", str(root), "--cross", str(other), "--epochs", "1", "--seeds", "0", "--options", "mixup"]
    assert wild_options.main([*argv, "--results", str(results), "--calibration-epochs", "1"]) == 0
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(line["option"], line["seed"]) for line in lines] == [("recipe", 0), ("mixup", 0)]
    assert [line["changes"] for line in lines] == [{}, {"mix": "mixup"}]
    for line in lines:
        assert set(line["tta"]) == set(line["cross"]) == set(TTA_MODES)
        assert line["tta"]["none"] == {"accuracy": line["accuracy"], "macro_f1": line["macro_f1"]}
        assert line["cross"]["none"]["frames"] == 72 and 0 <= line["cross"]["flip"]["accuracy"] <= 1
        assert line["epochs"] == 1 and line["seconds"] >= line["train_seconds"] > 0
        assert line["calibration"]["images_per_s"] > 0
    with pytest.raises(SystemExit):
        wild_options.main(["--crops", str(tmp_path)])  # no manifest: refused before any training


def test_weight_averaging_holds_when_a_time_budget_stops_the_run_early(tmp_path: Path) -> None:
    """With --ema, every epoch is scored with the averaged weights and the run keeps them, also when it stops
    before its last epoch (a time budget; early stopping alike): the kept model's validation loss is the last
    one logged. Keras alone prepares the average only at the last of `epochs` and would end on the raw weights."""
    import keras
    import tensorflow as tf

    from fer_utils.train.config import TrainConfig
    from fer_utils.train.fit import fit_run
    from fer_utils.train.runs import RunFolder

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (96, 32, 32, 1)).astype("float32")
    labels = rng.integers(0, 3, 96)
    train = tf.data.Dataset.from_tensor_slices((images[:64], labels[:64])).batch(16)
    val = tf.data.Dataset.from_tensor_slices((images[64:], labels[64:])).batch(16)
    keras.utils.set_random_seed(0)
    config = TrainConfig.preset(
        "wild", image_size=(32, 32), epochs=6, use_ema=True, time_budget=1e-4, learning_rate=1e-2
    )
    model, history = fit_run(config, train, val, 3, RunFolder(tmp_path), verbose=0)
    assert len(history) < config.epochs  # the budget stopped it early
    kept = model.evaluate(val, verbose=0, return_dict=True)["loss"]
    assert kept == pytest.approx(history["val_loss"].iloc[-1], rel=1e-5)


@pytest.mark.parametrize("option", [{"use_ema": True}, {"time_budget": 1.0}, {"keep": "last"}])
def test_the_plain_fit_refuses_a_long_run_option_it_would_leave_out(tmp_path: Path, option: dict) -> None:
    """`fit_model`, the loop chapter 4 shows, has no weight averaging, time budget or last-epoch keeping: given
    one it says which and names `fit_run` (what `train` uses) before building anything, not a run without it."""
    import tensorflow as tf

    from fer_utils.errors import InputError
    from fer_utils.train.config import TrainConfig
    from fer_utils.train.fit import fit_model
    from fer_utils.train.runs import RunFolder

    images = np.zeros((8, 32, 32, 1), "float32")
    train = tf.data.Dataset.from_tensor_slices((images, np.zeros(8, "int64"))).batch(4)
    config = TrainConfig(image_size=(32, 32), epochs=1, **option)
    with pytest.raises(InputError, match=f"{next(iter(option))} need fit_run"):
        fit_model(config, train, None, 3, RunFolder(tmp_path), verbose=0)
    assert not any(tmp_path.iterdir())


def test_a_wild_network_option_for_another_network_is_refused_before_anything_is_written(
    tiny: tuple[Path, pd.DataFrame], tmp_path: Path, capsys
) -> None:
    """`--width` and `--bn-momentum` are wild-cnn's: for the paper's CNN they would be recorded and never
    applied, so train says so (exit 2) and writes no run."""
    root, _ = tiny
    args = ("--crops", str(root), "--out", str(tmp_path / "run"), "--model", "paper-cnn", "--width", "2")
    assert train_cli(*args) == 2
    assert "paper-cnn's builder takes no width: they would be recorded but never applied" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
