"""TFLite round trips, pruning, Grad-CAM and `predict` on a real still and a real video, with a model
trained on real crops."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from toy_data import TOY_CLASSES, make_toy_crops, small_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    """A paper CNN (64×64 input) trained briefly on the toy crops, with test images and labels."""
    from fer_utils.train.fit import train_run
    from fer_utils.train.pipeline import FaceData, class_indices, load_images

    root = tmp_path_factory.mktemp("crops")
    manifest = make_toy_crops(root)
    # the recipe these tests were measured with (pruning: 0.12 of the weights stay zero without the mask); at Adam
    # 1e-3 more dense units die in training, and a dead unit's pruned weights get no gradient to revive them
    config = small_config(seed=3, learning_rate=3e-4)
    run = train_run(None, FaceData(root, manifest), config, tmp_path_factory.mktemp("run"), verbose=0)
    result = SimpleNamespace(model=run.load(), run_dir=run.path)  # the trained model and its run folder
    frames = manifest[manifest.status == "ok"].reset_index(drop=True)
    images = load_images(frames, root, (64, 64))
    return result, images, class_indices(frames, list(TOY_CLASSES))


@pytest.mark.slow
def test_tflite_round_trips_agree_with_keras(trained) -> None:
    from fer_utils.deploy.tflite import tflite_predict, to_tflite

    result, images, labels = trained
    keras_probabilities = result.model.predict(images, verbose=0)
    for mode, tolerance in (("float32", 1e-4), ("float16", 1e-2)):
        probabilities = tflite_predict(to_tflite(result.model, mode), images)
        np.testing.assert_allclose(probabilities, keras_probabilities, atol=tolerance, err_msg=mode)
    int8 = to_tflite(result.model, "int8", representative=images[::4])
    probabilities = tflite_predict(int8, images)
    agreement = np.mean(probabilities.argmax(1) == keras_probabilities.argmax(1))
    assert agreement >= 0.95
    assert abs(np.mean(probabilities.argmax(1) == labels) - np.mean(keras_probabilities.argmax(1) == labels)) <= 0.03
    assert len(int8) < len(to_tflite(result.model, "float32")) / 3
    with pytest.raises(ValueError, match="representative"):
        to_tflite(result.model, "int8")


def test_tflite_runs_in_litert_with_the_results_of_tensorflows_own_interpreter(trained) -> None:
    """The flatbuffers run in LiteRT's interpreter (ai-edge-litert), which replaces TensorFlow's
    deprecated tf.lite.Interpreter, and give what that one gave on the same model and crops."""
    import warnings

    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from fer_utils.deploy.tflite import tflite_interpreter, tflite_predict, to_tflite

    result, images, _ = trained
    for mode in ("float32", "int8"):
        blob = to_tflite(result.model, mode, representative=images[::4])
        assert isinstance(tflite_interpreter(blob), Interpreter)
        with warnings.catch_warnings():  # tf.lite's notice about LiteRT
            warnings.simplefilter("ignore")
            before = tf.lite.Interpreter(model_content=blob)
        before.allocate_tensors()
        np.testing.assert_allclose(
            tflite_predict(blob, images), tflite_predict(before, images), atol=1e-6, err_msg=mode
        )


def test_xla_compiled_inference_agrees_with_eager_keras() -> None:
    """The forward pass compiled by XLA (`compiled_predictor`, tf.function(jit_compile=True)) and
    the plain tf.function give eager Keras's probabilities on the same inputs, at two batch sizes."""
    import keras

    from fer_utils.deploy.tflite import compiled_predictor
    from fer_utils.models.networks import build_model

    rng = np.random.default_rng(0)
    for name, side in (("paper-cnn", 32), ("mini-xception", 48)):
        keras.utils.set_random_seed(0)
        model = build_model(name, 7, (side, side, 1))
        predictors = {"xla": compiled_predictor(model), "tf.function": compiled_predictor(model, xla=False)}
        for batch in (1, 5):
            images = rng.integers(0, 256, (batch, side, side, 1)).astype("float32")
            eager = model(images, training=False).numpy()
            for path, predict in predictors.items():
                np.testing.assert_allclose(predict(images), eager, atol=1e-5, err_msg=f"{name} {path} batch {batch}")


@pytest.mark.slow
def test_every_inference_path_gives_the_trained_models_probabilities_and_is_timed(trained) -> None:
    """Chapter 8's race: eager Keras, the tf.function, XLA and LiteRT per TFLite file all answer on
    the same crops of a trained model, at batch 1 and a batch larger than the crops given; the table has a row
    per path and batch, times > 0, and XLA's and the graph's differences from eager within float tolerance."""
    from fer_utils.deploy.tflite import inference_paths, latency_table, to_tflite

    result, images, _ = trained
    blobs = {mode: to_tflite(result.model, mode, representative=images[::4]) for mode in ("float32", "int8")}
    paths = inference_paths(result.model, blobs, threads=2)
    assert list(paths) == ["eager", "tf.function", "xla", "tflite float32", "tflite int8"]
    table = latency_table(paths, images[:3], batches=(1, 5), repeats=3)
    assert len(table) == 10 and set(table["batch"]) == {1, 5}
    assert (table["ms per frame"] > 0).all() and (table["first call s"] > 0).all()
    diff = table.groupby("path")["max diff"].max()
    assert diff["eager"] == 0 and diff["tf.function"] <= 1e-5 and diff["xla"] <= 1e-5 and diff["tflite float32"] <= 1e-4
    assert diff["tflite int8"] <= 0.2  # rounded activations: close, not equal
    eager = result.model(np.resize(images[:3], (5, *images.shape[1:])), training=False).numpy()
    np.testing.assert_allclose(paths["xla"](np.resize(images[:3], (5, *images.shape[1:]))), eager, atol=1e-5)


def test_latency_table_refuses_no_images() -> None:
    from fer_utils.deploy.tflite import latency_table
    from fer_utils.errors import InputError

    with pytest.raises(InputError, match="at least one image"):
        latency_table({"none": lambda x: x}, np.zeros((0, 8, 8, 1)))


def test_magnitude_pruning_zeroes_the_smallest_weights(trained) -> None:
    from fer_utils.deploy.tflite import prune_magnitude, sparsity_of

    result, images, _ = trained
    pruned = prune_magnitude(result.model, 0.5)
    assert sparsity_of(pruned) == pytest.approx(0.5, abs=0.01)
    assert sparsity_of(result.model) < 0.01  # the original is untouched
    kept = np.abs(pruned.get_layer("fc").kernel.numpy())
    original = np.abs(result.model.get_layer("fc").kernel.numpy())
    assert kept[kept > 0].min() >= original[kept == 0].max()


def test_magnitude_pruning_prunes_the_fraction_asked_when_weights_tie() -> None:
    """Weights of equal magnitude (a kernel initialised to a constant, or coarsely quantized) must not all fall
    at the quantile threshold: 0.5 of a kernel of ones is half of it, not all of it."""
    import keras

    from fer_utils.deploy.tflite import prune_magnitude, sparsity_of

    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(4, kernel_initializer="ones", name="fc")(inputs))
    for sparsity in (0.25, 0.5):
        assert sparsity_of(prune_magnitude(model, sparsity)) == sparsity


def test_pruning_mask_keeps_the_pruned_weights_at_zero_while_fine_tuning(trained) -> None:
    """Chapter 8 names `PruningMask` for fine-tuning a pruned network: one epoch of training with it keeps
    every pruned weight at zero while the others learn; without it the same epoch revives most of them."""
    from fer_utils.deploy.tflite import PruningMask, prune_magnitude, sparsity_of

    result, images, labels = trained

    def fine_tune(callbacks: list) -> object:
        pruned = prune_magnitude(result.model, 0.5)
        pruned.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        pruned.fit(images, np.asarray(labels), epochs=1, batch_size=32, verbose=0, callbacks=callbacks)
        return pruned

    before = prune_magnitude(result.model, 0.5).get_layer("fc").kernel.numpy()
    masked = fine_tune([PruningMask()])
    after = masked.get_layer("fc").kernel.numpy()
    assert np.all(after[before == 0] == 0) and not np.allclose(after[before != 0], before[before != 0])
    assert sparsity_of(masked) == pytest.approx(0.5, abs=0.01)
    assert sparsity_of(fine_tune([])) < 0.3  # most pruned weights come back (0.12 measured)


def test_grad_cam_is_a_normalised_map_at_input_size(trained) -> None:
    from fer_utils.evaluate.explain import grad_cam, overlay

    result, images, _ = trained
    heatmap = grad_cam(result.model, images[5])
    assert heatmap.shape == (64, 64) and heatmap.min() >= 0 and heatmap.max() == pytest.approx(1.0)
    assert not np.allclose(heatmap, grad_cam(result.model, images[5], class_index=0))
    classic = grad_cam(result.model, images[5], method="gradcam")
    assert classic.shape == (64, 64) and classic.min() >= 0 and classic.max() <= 1
    picture = overlay(images[5], heatmap)
    assert picture.shape == (64, 64, 3) and picture.dtype == np.uint8


@pytest.mark.slow
def test_predict_command_on_a_real_still(trained, stills: list[Path], tmp_path: Path) -> None:
    import cv2

    from fer_utils.cli import main

    result, _, _ = trained
    model = result.run_dir / "model.keras"
    out_json, out_image = tmp_path / "faces.json", tmp_path / "annotated.png"
    code = main(
        [
            "predict",
            "--model",
            str(model),
            str(stills[0]),
            "--json",
            str(out_json),
            "--csv",
            str(tmp_path / "faces.csv"),
            "--out",
            str(out_image),
            "--detector",
            "opencv-haar",
        ]
    )
    assert code == 0
    faces = json.loads(out_json.read_text())
    assert len(faces) == 1  # every still holds exactly one face
    face = faces[0]
    assert face["emotion"] in TOY_CLASSES
    assert sum(face[f"p_{c}"] for c in TOY_CLASSES) == pytest.approx(1.0, abs=1e-4)
    assert 0 < face["w"] < 398 and 0 < face["h"] < 224
    assert pd.read_csv(tmp_path / "faces.csv").shape[0] == 1
    annotated = cv2.imread(str(out_image))
    assert annotated.shape == (224, 398, 3)
    assert not np.array_equal(annotated, cv2.imread(str(stills[0])))


def _decode(path: Path) -> tuple[list[np.ndarray], float]:
    """Every frame of a video, read with OpenCV until decoding stops, and the container's frame rate."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    frames, fps = [], capture.get(cv2.CAP_PROP_FPS)
    ok, frame = capture.read()
    while ok:
        frames.append(frame)
        ok, frame = capture.read()
    capture.release()
    return frames, fps


def _box_edge_greenness(frame: np.ndarray, face: dict) -> float:
    """Mean of G - (R + B)/2 along the top edge of a face box (the annotation draws it pure green)."""
    row = frame[face["y"], face["x"] : face["x"] + face["w"]].astype(np.float32)
    return float(np.mean(row[:, 1] - (row[:, 0] + row[:, 2]) / 2))


@pytest.mark.slow
def test_predict_command_on_a_real_video(trained, tmp_path: Path) -> None:
    from fer_utils.faces.sample import generate_sample

    result, _, _ = trained
    clips = generate_sample(
        tmp_path / "sample",
        actors=[1],
        emotions=[3],
        intensities=(1,),
        n_frames=9,
        frame_size=(640, 360),
        workers=1,
        progress=False,
    )  # one happy clip, 15 fps
    video = Path(clips.path[0])
    out_video, out_json, out_csv = tmp_path / "annotated.mp4", tmp_path / "faces.json", tmp_path / "faces.csv"
    command = [
        sys.executable,
        "-m",
        "fer_utils",
        "predict",
        "--model",
        str(result.run_dir / "model.keras"),
        str(video),
        "--every",
        "2",
        "--detector",
        "opencv-haar",
        "--out",
        str(out_video),
        "--json",
        str(out_json),
        "--csv",
        str(out_csv),
    ]
    done = subprocess.run(
        command, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]

    source, source_fps = _decode(video)
    sampled = list(range(0, len(source), 2))
    annotated, annotated_fps = _decode(out_video)
    assert len(source) == 9 and len(annotated) == len(sampled) == 5  # one annotated frame per sampled frame
    assert all(frame.shape == (360, 640, 3) for frame in annotated)
    assert annotated_fps == pytest.approx(source_fps / 2, abs=0.01)  # same duration as the clip

    faces = json.loads(out_json.read_text())
    assert [face["frame_index"] for face in faces] == sampled  # the clip shows one face in every frame
    for face, frame in zip(faces, annotated):
        assert face["emotion"] in TOY_CLASSES
        assert sum(face[f"p_{c}"] for c in TOY_CLASSES) == pytest.approx(1.0, abs=1e-4)
        assert 0 <= face["x"] < face["x"] + face["w"] <= 640 and 0 <= face["y"] < face["y"] + face["h"] <= 360
        # the box is drawn on the frame it belongs to (observed ≈ 250 annotated vs ≈ -14 in the clip)
        assert _box_edge_greenness(frame, face) > 100
        assert _box_edge_greenness(source[face["frame_index"]], face) < 30
    table = pd.read_csv(out_csv)
    assert table["frame_index"].tolist() == sampled
    np.testing.assert_allclose(table[[f"p_{c}" for c in TOY_CLASSES]].sum(axis=1), 1.0, atol=1e-4)
    assert table["emotion"].tolist() == [face["emotion"] for face in faces]


def test_cli_reports_a_file_that_is_not_a_model(stills: list[Path], tmp_path: Path, capsys) -> None:
    from fer_utils.cli import main

    fake = tmp_path / "model.keras"
    fake.write_text("hello")
    assert main(["predict", "--model", str(fake), str(stills[0])]) == 2
    assert "error:" in capsys.readouterr().err


# --- one inference path, streamed; predict never overwrites its input nor mislabels ----------------------


def _untrained_model(folder: Path, classes: list[str], size: int = 48) -> Path:
    """A saved (untrained, seeded) paper CNN with `classes.json` beside it: the real model file format."""
    import keras

    from fer_utils.models.networks import build_paper_cnn, save_model

    keras.utils.set_random_seed(0)
    return save_model(build_paper_cnn(len(classes), (size, size, 1)), folder / "model.keras", classes)


def write_clip(path: Path, still: Path, frames: int) -> Path:
    """An mp4v clip of `frames` frames made from a real still, shifted a pixel per frame (15 fps)."""
    import cv2

    image = cv2.imread(str(still))
    height, width = image.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, (width, height))
    for i in range(frames):
        writer.write(np.roll(image, i % 7, axis=1))
    writer.release()
    return path


def test_predict_refuses_to_overwrite_its_input(stills: list[Path], tmp_path: Path, capsys) -> None:
    """Regression: `predict --out` equal to the input overwrote the user's original image."""
    import shutil

    from fer_utils.cli import main
    from fer_utils.deploy.inference import Recognizer
    from fer_utils.errors import OutputError
    from fer_utils.train.runs import RunFolder

    model = _untrained_model(tmp_path / "run", ["neutral", "happy", "sad"])
    image = Path(shutil.copy(stills[0], tmp_path / "me.png"))
    original = image.read_bytes()
    for out in (image, tmp_path / "." / "me.png"):
        assert main(["predict", "--model", str(model), str(image), "--out", str(out), "--detector", "opencv-haar"]) == 2
        assert "would overwrite the input" in capsys.readouterr().err
    assert main(["predict", "--model", str(model), str(image), "--csv", str(image)]) == 2
    with pytest.raises(OutputError, match="would overwrite the input"):  # the recognizer's own check, in Python
        Recognizer.of_run(RunFolder(model.parent), "opencv-haar").predict_media(image, out=tmp_path / "." / "me.png")
    assert image.read_bytes() == original


@pytest.mark.parametrize("names", [["neutral", "happy"], ["neutral", "happy", "sad", "angry"]])
def test_predict_checks_classes_against_the_model(stills: list[Path], tmp_path: Path, capsys, names: list[str]) -> None:
    """Regression: a classes.json shorter than the outputs crashed with IndexError; a longer one silently
    mislabelled whenever the top index fitted."""
    from fer_utils.cli import main

    model = _untrained_model(tmp_path / "run", ["neutral", "happy", "sad"])
    (tmp_path / "run" / "classes.json").write_text(json.dumps(names))
    assert main(["predict", "--model", str(model), str(stills[0]), "--detector", "opencv-haar"]) == 2
    assert f"3 outputs but {len(names)} class names" in capsys.readouterr().err


@pytest.mark.slow
def test_a_long_video_is_streamed_not_held(stills: list[Path], tmp_path: Path) -> None:
    """Regression: every frame of a video was held in memory (a 450-frame 720p clip peaked at 1.9 GB).
    A 300-frame clip is now decoded and annotated one frame at a time: Python's traced peak stays below
    a few frames, where holding the frames takes the whole clip (checked on the same clip)."""
    import tracemalloc

    from fer_utils.data.media import sample_frames
    from fer_utils.deploy.inference import Recognizer
    from fer_utils.models.networks import load_model

    classes = ["neutral", "happy", "sad"]
    model = load_model(_untrained_model(tmp_path / "run", classes))
    video = write_clip(tmp_path / "long.mp4", stills[0], 300)
    frame_bytes = 224 * 398 * 3
    recognizer = Recognizer(model, classes, detector="opencv-haar")

    tracemalloc.start()
    table = recognizer.predict_media(video, out=tmp_path / "annotated.mp4")
    _, streamed_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert table["frame_index"].nunique() == 300  # one face in every frame
    assert streamed_peak < 10 * frame_bytes, f"peak {streamed_peak / 1e6:.1f} MB"

    tracemalloc.start()
    held = sample_frames(video, n=None)
    _, held_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(held) == 300 and held_peak > 250 * frame_bytes  # the measure sees frames that are held


@pytest.mark.slow
def test_cli_and_widgets_give_the_same_table(stills: list[Path], tmp_path: Path) -> None:
    """The CLI `predict`, the upload widget's figure path (image and video) and the video widget all go
    through inference.Recognizer: the same media and model give the same table."""

    from fer_utils.book import widgets
    from fer_utils.cli import main
    from fer_utils.deploy.inference import Recognizer
    from fer_utils.faces.crops import CropSpec
    from fer_utils.models.networks import load_model

    classes = ["neutral", "happy", "sad"]
    path = _untrained_model(tmp_path / "run", classes)
    recognizer = Recognizer(load_model(path), classes)
    video = write_clip(tmp_path / "clip.mp4", stills[3], 12)
    for media, every in ((stills[3], None), (video, 3)):
        csv = tmp_path / f"{media.stem}.csv"
        args = ["predict", "--model", str(path), str(media), "--csv", str(csv)]
        assert main(args + (["--every", str(every)] if every else [])) == 0
        cli = pd.read_csv(csv)
        shown = widgets.media_predictions(recognizer, media, every).table  # what media_figure draws
        pd.testing.assert_frame_equal(cli, shown.astype(cli.dtypes.to_dict()), check_exact=False, atol=1e-6)
    crops = widgets.media_predictions(recognizer, stills[3]).best_crops.values()
    assert all(crop.shape == (CropSpec().side,) * 2 for _, crop in crops)  # a bare model: the default spec's crop


def test_the_label_on_an_annotated_frame_stays_readable_when_the_frame_is_shown_small() -> None:
    """Regression: on a 720×720 video frame the label was drawn 0.5 scale, 1 px thick, green
    on whatever lay behind it: about 10 px high, unreadable once chapter 8 shows the frame a third of
    its size. The label now scales with the frame and sits on a black band."""
    from fer_utils.deploy.inference import FacePrediction, annotate

    frame = np.full((720, 720, 3), 0, np.uint8)
    frame[:, :, 1] = 255  # a green background: green text alone would vanish on it
    face = FacePrediction(0, 0, x=200, y=300, w=250, h=250, emotion="happy", probabilities={"happy": 0.9})
    drawn = annotate(frame, [face])
    above = drawn[: face.y, face.x : face.x + 400]
    band = np.all(above == 0, axis=-1)  # the black band behind the label
    rows = np.flatnonzero(band.any(axis=1))
    assert len(rows) >= 24, f"label band {len(rows)} px high on a 720 px frame"
    text = np.all(above == (0, 255, 0), axis=-1) & ~band
    inside = text[rows.min() : rows.max() + 1]
    assert np.flatnonzero(inside.any(axis=1)).size >= 14, "the label's letters are too small to read"


def test_a_runs_recognizer_crops_faces_as_the_run_was_trained(stills: list[Path], tmp_path: Path) -> None:
    """`Recognizer.of_run` reads the model, its classes and the crop spec of the crops the run was trained
    on (crop_spec.json): its crops equal a recognizer's made with that spec, and differ from the default
    margin's. Crops of whole images (detector none) are served with the default margin, a model folder without
    records gets the default spec; a run trained on eye-aligned crops is refused (the recognizer does not align)."""
    import cv2

    from fer_utils.deploy.inference import Recognizer
    from fer_utils.errors import InputError
    from fer_utils.faces.crops import CROP_SPEC_FILE, CropSpec, write_crop_spec
    from fer_utils.models.networks import load_model
    from fer_utils.registry import DEFAULT_MARGIN
    from fer_utils.train.runs import RunFolder

    classes = ["neutral", "happy", "sad"]
    run = tmp_path / "run"
    model = load_model(_untrained_model(run, classes))
    image = cv2.imread(str(stills[3]))
    (run / "config.json").write_text(json.dumps({"classes": classes}))

    def with_crops(spec: CropSpec | None) -> Recognizer:
        (run / CROP_SPEC_FILE).unlink(missing_ok=True)
        if spec is not None:
            write_crop_spec(run, spec)
        return Recognizer.of_run(RunFolder(run), detector="opencv-haar")

    wide = with_crops(CropSpec(detector="dlib-hog", side=180, margin=0.4))
    assert wide.classes == classes and wide.margin == 0.4 and wide.spec.side == 180
    expected = Recognizer(model, classes, "opencv-haar", spec=CropSpec(margin=0.4)).frame(image)
    default = Recognizer(model, classes, "opencv-haar").frame(image)
    got = wide.frame(image)
    assert len(got.crops) == 1 and np.array_equal(got.crops[0], expected.crops[0])
    assert not np.array_equal(got.crops[0], default.crops[0])
    assert with_crops(CropSpec(detector="none", side=96, margin=0.0)).margin == DEFAULT_MARGIN
    assert with_crops(None).spec == CropSpec(detector="opencv-haar")
    with pytest.raises(InputError, match="eye-aligned"):
        with_crops(CropSpec(detector="dlib-hog", side=180, margin=0.1, align=True))


def test_runtime_logs_are_held_back_and_written_back_when_the_block_fails(capfd: pytest.CaptureFixture) -> None:
    from fer_utils.deploy.tflite import runtime_logs_held

    with runtime_logs_held():
        os.write(2, b"W0000 00:00:1 some_helper.cc:364] a C++ log line\n")
    assert "a C++ log line" not in capfd.readouterr().err
    with pytest.raises(RuntimeError), runtime_logs_held():
        os.write(2, b"E0000 the diagnosis of a failed conversion\n")
        raise RuntimeError("conversion failed")
    assert "the diagnosis of a failed conversion" in capfd.readouterr().err


# The lines TensorFlow's converter and TFLite's runtime print (they stayed in the executed
# notebooks of chapters 8 and 10, which readers download, although the pages hid them).
RUNTIME_LOG = re.compile(r"XNNPACK|absl::InitializeLog|INFO:tensorflow|\b[EWIF]\d{4} \d\d:\d\d:\d+\.\d+|fully_quantize")


@pytest.mark.slow
def test_a_notebook_converting_and_running_tflite_keeps_no_runtime_log(tmp_path: Path) -> None:
    """Regression: int8 conversion and a TFLite prediction in a real kernel leave no log line in
    the notebook's outputs, also outside %%capture (whose capture the C++ logs bypass)."""
    import nbformat
    from nbclient import NotebookClient

    cells = [
        "import numpy as np\nfrom fer_utils.deploy.tflite import tflite_predict, to_tflite\nfrom fer_utils.models.networks import build_model",
        "model = build_model('paper-cnn', 3, (32, 32, 1))\n"
        "faces = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 1)).astype('float32')\n"
        "blob = to_tflite(model, 'int8', faces)\nprint(tflite_predict(blob, faces).shape)",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    texts = [
        output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        for output in cell.outputs
    ]
    assert "(8, 3)" in "".join(texts)
    assert not [t for t in texts if RUNTIME_LOG.search(t)], texts


# --- test-time augmentation: one set of views, averaged alike by every inference path -------------------------


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The README's path in small: real-face toy images at 32 px cut whole (`preprocess --detector none`),
    `train --recipe wild` for one epoch on them; the run, its crops and its test frames."""
    from fer_utils.cli import main
    from fer_utils.data.manifest import load_manifest, usable_frames
    from fer_utils.train.runs import RunFolder

    root = tmp_path_factory.mktemp("whole")
    make_toy_crops(root / "src", size=32, frames_per_clip=1)
    crops, run = root / "crops", root / "run"
    common = ["--detector", "none", "--side", "32", "--workers", "1"]
    assert main(["preprocess", "--dataset", "folder", "--src", str(root / "src"), "--out", str(crops), *common]) == 0
    train = ["train", "--crops", str(crops), "--out", str(run), "--recipe", "wild", "--epochs", "1"]
    assert main([*train, "--protocol", "random"]) == 0
    frames = usable_frames(load_manifest(crops))
    return SimpleNamespace(root=root, crops=crops, run=RunFolder(run), frames=frames)


def _gray(path: Path) -> np.ndarray:
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)


def test_flip_averaging_is_the_mean_of_the_crop_and_its_mirror(whole_run: SimpleNamespace) -> None:
    """A trained model's probabilities with `tta="flip"` are the mean of its probabilities for the crop and
    for the crop mirrored, computed here by hand; "flip-shift" adds four 2-px shifts of the crop."""
    from fer_utils.deploy.inference import Recognizer
    from fer_utils.evaluate.metrics import tta_views

    run = whole_run.run
    model = run.load()
    crops = np.stack([_gray(whole_run.crops / image) for image in whole_run.frames["image"].head(6)])
    images = crops[..., None].astype(np.float32)
    by_hand = (model(images, training=False).numpy() + model(images[:, :, ::-1], training=False).numpy()) / 2
    flip = Recognizer.of_run(run, detector="none", tta="flip")
    np.testing.assert_allclose(flip.probabilities(crops), by_hand, atol=1e-6)
    got = flip.frame(crops[0])
    assert np.array_equal(got.crops[0], crops[0])  # a whole image is its own crop
    np.testing.assert_allclose(list(got.faces[0].probabilities.values()), by_hand[0], atol=1e-6)
    one = Recognizer.of_run(run, detector="none", tta="none").probabilities(crops)
    np.testing.assert_allclose(one, model(images, training=False).numpy(), atol=1e-6)
    assert not np.allclose(one, by_hand, atol=1e-6)  # the mirror's view counts
    views = tta_views(images, "flip-shift")
    assert len(views) == 6 and all(view.shape == images.shape for view in views)
    np.testing.assert_array_equal(views[2][:, 2:], images[:, :-2])  # down by 2 px
    np.testing.assert_array_equal(views[5][:, :, :-2], images[:, :, 2:])  # left by 2 px


def test_evaluate_predict_recognizer_and_the_export_average_the_same_views(
    whole_run: SimpleNamespace, stills: list[Path], tmp_path: Path, capsys
) -> None:
    """With --tta flip-shift, `evaluate --model` (its test side), `evaluate --test-crops`, `predict` on a
    real still and `Recognizer` give the same probabilities within float tolerance; evaluate records the mode
    in its metrics, `export --tta` in model.json, whose TFLite model averages the same views."""
    from fer_utils.cli import main
    from fer_utils.data.media import read_image
    from fer_utils.data.splits import audited_split
    from fer_utils.deploy.inference import Recognizer
    from fer_utils.deploy.tflite import PAGE_MODEL_FILE, PAGE_MODEL_INFO, tflite_predict
    from fer_utils.evaluate.metrics import evaluate_predictions, tta_probabilities
    from fer_utils.train.config import Feed
    from fer_utils.train.fit import predict_batches
    from fer_utils.train.pipeline import make_dataset

    run, crops, mode = whole_run.run, whole_run.crops, "flip-shift"
    config, classes, model = run.config(), run.classes(), run.load()
    sizes = (config["test_size"], config["val_size"], config["seed"])
    test = audited_split(whole_run.frames, crops, config["protocol"], *sizes, False).test
    recognizer = Recognizer.of_run(run, detector="none", tta=mode)
    expected = recognizer.probabilities(np.stack([_gray(crops / image) for image in test["image"]]))
    evaluated = predict_batches(model, make_dataset(test, crops, classes, Feed(cache=False)), mode)
    np.testing.assert_allclose(evaluated, expected, atol=1e-5)
    model_file = str(run.model_file)
    evaluate = ["evaluate", "--model", model_file, "--crops", str(crops), "--tta", mode]
    assert main([*evaluate, "--json", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["tta"] == mode
    assert metrics["frame"] == evaluate_predictions(test, expected, classes)["frame"]
    cross = ["evaluate", "--model", model_file, "--test-crops", str(crops), "--tta", mode]
    assert main([*cross, "--json", str(tmp_path / "cross.json")]) == 0
    report = json.loads((tmp_path / "cross.json").read_text())
    every = recognizer.probabilities(np.stack([_gray(crops / image) for image in whole_run.frames["image"]]))
    assert report["tta"] == mode and report["frames"] == len(every)
    assert report["accuracy"] == pytest.approx(
        (np.asarray(classes)[every.argmax(axis=1)] == whole_run.frames["emotion"].to_numpy()).mean()
    )
    still = stills[0]  # predict finds the face in a real still; the recognizer of its run crops it alike
    faces = Recognizer.of_run(run, detector="opencv-haar", tta=mode).frame(read_image(still)).faces
    out = tmp_path / "faces.json"
    predict = ["predict", "--model", model_file, str(still), "--detector", "opencv-haar", "--tta", mode]
    assert main([*predict, "--json", str(out)]) == 0
    (face,) = json.loads(out.read_text())
    assert len(faces) == 1 and face["emotion"] == faces[0].emotion
    np.testing.assert_allclose([face[f"p_{c}"] for c in classes], list(faces[0].probabilities.values()), atol=1e-5)
    capsys.readouterr()
    assert main(["export", "--run", str(run.path), "--out", str(tmp_path / "page"), "--tta", "flip"]) == 0
    info = json.loads((tmp_path / "page" / PAGE_MODEL_INFO).read_text())
    assert info["tta"] == "flip"
    blob = (tmp_path / "page" / PAGE_MODEL_FILE).read_bytes()
    images = np.stack([_gray(crops / image) for image in test["image"].head(4)])[..., None].astype(np.float32)
    page = tta_probabilities(lambda x: tflite_predict(blob, x), images, info["tta"])
    np.testing.assert_allclose(
        page, Recognizer.of_run(run, detector="none", tta="flip").probabilities(images[..., 0]), atol=1e-4
    )


def test_test_time_augmentation_that_cannot_apply_is_refused(whole_run: SimpleNamespace, capsys) -> None:
    """An unknown mode is an InputError naming the modes; `evaluate --run` (the run's saved one-view
    predictions) with --tta says how to predict them again; argparse refuses a mode it does not know."""
    from fer_utils.cli import main
    from fer_utils.deploy.inference import Recognizer
    from fer_utils.errors import InputError

    with pytest.raises(InputError, match="unknown test-time augmentation 'mirror'; choose one of none, flip"):
        Recognizer.of_run(whole_run.run, detector="none", tta="mirror")
    capsys.readouterr()
    assert main(["evaluate", "--run", str(whole_run.run.path), "--tta", "flip"]) == 2
    error = capsys.readouterr().err
    assert f"give --model {whole_run.run.model_file} --crops CROPS" in error and "Traceback" not in error
    with pytest.raises(SystemExit):
        main(["predict", "--model", str(whole_run.run.model_file), "x.png", "--tta", "mirror"])


NODE_TTA = """import {readFileSync, writeFileSync} from 'node:fs';
import {meanProbabilities, ttaViews} from './tta.mjs';
const {crop, side, perView} = JSON.parse(readFileSync('in.json', 'utf8'));
const views = Object.fromEntries(['none', 'flip', 'flip-shift'].map(
  (mode) => [mode, ttaViews(Uint8Array.from(crop), side, side, mode).map((view) => Array.from(view))]));
let unknown = '';
try { ttaViews(Uint8Array.from(crop), side, side, 'mirror'); } catch (error) { unknown = error.message; }
writeFileSync('out.json', JSON.stringify({views, mean: meanProbabilities(perView), unknown}));
"""


def test_the_pages_views_and_mean_are_pythons(whole_run: SimpleNamespace, tmp_path: Path) -> None:
    """The page's test-time augmentation (book/_demo/tta.js, which demo.js runs on every crop with the mode
    model.json names; run by node here, where chromium may be missing) makes the views `evaluate.metrics` makes of
    a real crop, pixel for pixel, and averages the exported TFLite model's probabilities of them as Python does."""
    import shutil

    from fer_utils.deploy.tflite import page_export, tflite_predict
    from fer_utils.evaluate.metrics import tta_probabilities, tta_views

    crop = _gray(whole_run.crops / whole_run.frames["image"].iloc[0])
    side = crop.shape[0]
    run = whole_run.run.open()
    assert run.spec.side == side
    blob, _ = page_export(run, "float32", {})
    views = tta_views(crop[None, ..., None].astype(np.float32), "flip-shift")
    per_view = [tflite_predict(blob, view)[0].tolist() for view in views]
    shutil.copy2(Path(__file__).resolve().parents[1] / "book" / "_demo" / "tta.js", tmp_path / "tta.mjs")
    (tmp_path / "run.mjs").write_text(NODE_TTA)
    (tmp_path / "in.json").write_text(json.dumps({"crop": crop.ravel().tolist(), "side": side, "perView": per_view}))
    done = subprocess.run(["node", "run.mjs"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out = json.loads((tmp_path / "out.json").read_text())
    for mode, page_views in out["views"].items():
        python = tta_views(crop[None, ..., None], mode)
        assert len(page_views) == len(python), mode
        for page_view, view in zip(page_views, python):
            np.testing.assert_array_equal(np.asarray(page_view).reshape(side, side), view[0, ..., 0])
    expected = tta_probabilities(
        lambda x: tflite_predict(blob, x), crop[None, ..., None].astype(np.float32), "flip-shift"
    )
    np.testing.assert_allclose(out["mean"], expected[0], atol=1e-6)
    assert out["unknown"] == 'unknown test-time augmentation "mirror"; choose one of none, flip, flip-shift'
