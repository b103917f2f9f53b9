"""The chapter explorers: their static views and live parameter counts, on real stills and clips."""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from fer_utils.book import widgets
from fer_utils.data.corpora import index_ravdess
from fer_utils.deploy.inference import Recognizer
from fer_utils.evaluate.metrics import confusion
from fer_utils.faces.sample import generate_sample


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The clip index of a tiny generated sample (2 actors x 2 emotions)."""
    out = tmp_path_factory.mktemp("sample")
    generate_sample(out, actors=[1, 2], emotions=[3, 4], intensities=[1], n_frames=5, workers=0, progress=False)
    return index_ravdess(out).clips


def test_the_explorers_parts_are_the_built_networks_and_only_fc_grows_with_the_input() -> None:
    """The explorer counts the network `build_paper_cnn` builds (one builder): the paper's 542,136 at 180 px with 8
    classes, fc = (22 × 22 × 64 + 1) × 16; a larger input changes fc alone, more units fc and the softmax."""
    paper = widgets.parameter_parts(180)
    assert sum(paper.values()) == 542_136 and paper["fc"] == (22 * 22 * 64 + 1) * 16
    larger = widgets.parameter_parts(224)
    assert larger["convolutions"] == paper["convolutions"] and larger["fc"] == (28 * 28 * 64 + 1) * 16
    wider = widgets.parameter_parts(180, units=32, classes=7)
    assert wider["fc"] == (22 * 22 * 64 + 1) * 32 and wider["softmax"] == (32 + 1) * 7


def test_architecture_explorer_updates_its_count() -> None:
    view = widgets.architecture_explorer(show=False)
    assert "542,136 parameters" in view.status.value
    view.controls["input_size"].value = 96
    assert f"{sum(widgets.parameter_parts(96).values()):,} parameters" in view.status.value
    view.controls["dense"].value = 32
    assert f"{sum(widgets.parameter_parts(96, units=32).values()):,}" in view.status.value
    fig = view.figure()
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()][0] == "convolutions"


def test_clip_browser_shows_the_chosen_frame(clips: pd.DataFrame) -> None:
    view = widgets.clip_browser(clips, show=False)
    assert view.values()["subject"] == "Actor_01"
    image, caption = widgets.clip_frame(clips, "Actor_02", "sad", 99)
    assert image.shape == (720, 1280, 3) and "frame 4 of 5" in caption and "-04-" in caption
    blank, why = widgets.clip_frame(clips, "Actor_02", "angry", 0)
    assert "no angry clip" in why
    assert view.figure().axes[0].get_title().endswith("happy)")


def test_the_papers_count_in_the_architecture_explorer_is_the_registrys() -> None:
    """The explorer states `registry.PAPER_PARAMS`, which the model tests check against Keras."""
    from fer_utils.registry import PAPER_PARAMS

    assert f"(paper: {PAPER_PARAMS:,} at " in widgets.architecture_explorer(show=False).status.value


def test_detector_explorer_draws_each_detector(stills: list[Path]) -> None:
    image = cv2.imread(str(stills[0]))
    view = widgets.detector_explorer(image, show=False)
    for name in ("dlib-hog", "opencv-haar"):
        view.controls["detector"].value = name
        view.controls["margin"].value = 0.2
        fig = view.figure()
        assert name in fig.axes[0].get_title() and len(fig.axes) == 2
        assert fig.axes[1].images[0].get_array().shape == (180, 180)


def test_detector_explorer_opens_on_the_books_default_margin(stills: list[Path]) -> None:
    """Chapter 2's saved default view shows the crop its text describes (it showed margin 0.00)."""
    from fer_utils.faces.crops import crop_face, make_detector
    from fer_utils.registry import DEFAULT_DETECTOR, DEFAULT_MARGIN

    image = cv2.imread(str(stills[0]))
    view = widgets.detector_explorer(image, show=False)
    assert view.values()["margin"] == DEFAULT_MARGIN and view.values()["detector"] == DEFAULT_DETECTOR
    fig = view.figure()
    assert f"margin {DEFAULT_MARGIN:.2f}" in fig.axes[0].get_title()
    box = make_detector(DEFAULT_DETECTOR).detect(image)[0]
    np.testing.assert_array_equal(fig.axes[1].images[0].get_array(), crop_face(image, box, margin=DEFAULT_MARGIN))


def test_regularization_explorer_reads_the_chosen_run() -> None:
    runs = {
        f"dropout {d}": pd.DataFrame(
            {
                "epoch": [0, 1],
                "loss": [1, 0.5],
                "val_loss": [1, 0.9],
                "accuracy": [0.5, 0.9],
                "val_accuracy": [0.5, 0.9 - d],
            }
        )
        for d in (0.3, 0.5)
    }
    view = widgets.regularization_explorer(runs, data="ravdess (real)", show=False)
    assert "gap +0.30" in view.status.value
    assert "(ravdess (real))" in view.status.value and "synthetic" not in view.status.value
    view.controls["setting"].value = "dropout 0.5"
    assert "gap +0.50" in view.status.value


def test_model_picker_highlights_the_choice() -> None:
    table = pd.DataFrame({"model": ["paper-cnn", "mobilenet-v2"], "params": [542136, 2257984], "accuracy": [0.9, 0.8]})
    view = widgets.model_picker(table, show=False)
    view.controls["model"].value = "mobilenet-v2"
    assert "2.258e+06" in view.status.value or "2,257,984" in view.status.value
    texts = [t.get_text() for t in view.figure().axes[0].texts]
    assert texts == ["paper-cnn", "mobilenet-v2"]


def test_an_image_is_explained(tmp_path: Path, stills: list[Path]) -> None:
    from fer_utils.deploy.inference import Recognizer
    from fer_utils.models.networks import build_paper_cnn

    model = build_paper_cnn(8, (48, 48, 1))
    classes = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    recognizer = Recognizer(model, classes)
    fig = widgets.media_figure(recognizer, stills[3])
    assert len(fig.axes) == 3 and "Grad-CAM" in fig.axes[1].get_title()
    cv2.imwrite(str(tmp_path / "blank.png"), np.zeros((200, 200, 3), np.uint8))
    blank = widgets.media_figure(recognizer, tmp_path / "blank.png")
    assert "no face" in blank.axes[0].texts[0].get_text()


def test_the_upload_widget_crops_faces_with_the_margin_the_run_recorded(tmp_path: Path, stills: list[Path]) -> None:
    """Regression: the chapter 8 widgets took (model, classes) and built a recognizer with the
    default margin, so a run trained on crops cut with another margin was shown (and classified) other
    crops than it learned from. They now take the run's recognizer, whose crop spec the run recorded."""
    from fer_utils.faces.crops import CropSpec, crop_face, write_crop_spec
    from fer_utils.models.networks import build_paper_cnn, save_model
    from fer_utils.registry import DEFAULT_MARGIN
    from fer_utils.train.runs import RunFolder

    classes, margin = ["neutral", "happy", "sad"], 0.3
    assert margin != DEFAULT_MARGIN
    save_model(build_paper_cnn(len(classes), (32, 32, 1)), tmp_path / "model.keras", classes)
    write_crop_spec(tmp_path, CropSpec(margin=margin, side=48))
    recognizer = Recognizer.of_run(RunFolder(tmp_path))
    image = cv2.imread(str(stills[3]))
    box = max(recognizer.detector.detect(image), key=lambda b: b.w * b.h)
    expected = crop_face(image, box, side=48, margin=margin)
    assert not np.array_equal(expected, crop_face(image, box, side=48, margin=DEFAULT_MARGIN))

    found = widgets.media_predictions(recognizer, stills[3])
    assert len(found.table) == 1 and np.array_equal(found.best_crops[found.table["emotion"].iloc[0]][1], expected)
    shown = widgets.emotion_upload(recognizer, stills[3], show=False).figure().axes[0].images[0]
    assert np.array_equal(np.asarray(shown.get_array()), expected), "the default view shows the run's crop"


@pytest.fixture(scope="module")
def toy_predictions(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, np.ndarray, list[str], Path]:
    """Real face crops (tests/toy_data) with probabilities that get every 'sad' frame of two actors wrong."""
    from toy_data import TOY_CLASSES, make_toy_crops

    from fer_utils.data.manifest import usable_frames

    out = tmp_path_factory.mktemp("crops")
    frames = usable_frames(make_toy_crops(out, size=48, frames_per_clip=3))
    classes = list(TOY_CLASSES)
    probabilities = np.full((len(frames), len(classes)), 0.1)
    truth = frames["emotion"].map(classes.index).to_numpy()
    probabilities[np.arange(len(frames)), truth] = 0.8
    wrong = (frames["emotion"] == "sad") & frames["subject"].isin(sorted(frames["subject"].unique())[:2])
    probabilities[wrong.to_numpy()] = [0.1, 0.7, 0.2]  # predicted happy, with confidence 0.7
    return frames, probabilities, classes, out


def test_level_predictions_vote_per_clip(toy_predictions: tuple) -> None:
    frames, probabilities, classes, _ = toy_predictions
    frame_level = widgets.level_predictions(frames, probabilities, classes, "frame")
    clip_level = widgets.level_predictions(frames, probabilities, classes, "clip")
    assert len(frame_level) == len(frames) and len(clip_level) == frames["clip_id"].nunique() == 72
    assert (frame_level["emotion"] != frame_level["predicted"]).sum() == 6
    assert (clip_level["emotion"] != clip_level["predicted"]).sum() == 2
    assert clip_level["image"].str.endswith("_f0001.png").all(), "a clip is shown by its middle frame"
    assert (clip_level["frame_index"] == 1).all() and set(frame_level["frame_index"]) == {0, 1, 2}
    counts = confusion(clip_level["emotion"], clip_level["predicted"], classes)
    assert counts.loc["sad", "happy"] == 2 and counts.to_numpy().sum() == 72
    rates = confusion(clip_level["emotion"], clip_level["predicted"], classes, normalize="true")
    assert rates.loc["sad", "happy"] == pytest.approx(2 / 24)
    with pytest.raises(ValueError):
        widgets.level_predictions(frames, probabilities, classes, "actor")


def test_prediction_browser_shows_mistakes_at_each_level(toy_predictions: tuple) -> None:
    frames, probabilities, classes, crops = toy_predictions
    view = widgets.prediction_browser(frames, probabilities, classes, crops, data="toy", show=False)
    assert "216 test frames, 6 misclassified" in view.status.value
    fig = view.figure()
    heatmap, *examples = fig.axes
    assert heatmap.get_title() == "Test frames (toy)" and len(examples) == 6
    assert all(ax.get_title().startswith("sad → happy (0.70)\nframe ") for ax in examples)
    assert examples[0].images[0].get_array().shape == (48, 48)
    view.controls["level"].value = "clip"
    view.controls["normalize"].value = True
    assert "72 test clips, 2 misclassified" in view.status.value
    assert len(view.figure().axes) == 1 + 2
    view.controls["emotion"].value = "happy"
    assert "no misclassified" in view.figure().axes[1].texts[0].get_text()


def test_protocol_explorer_switches_runs(toy_predictions: tuple) -> None:
    frames, probabilities, classes, _ = toy_predictions
    history = pd.DataFrame(
        {
            "epoch": [0, 1],
            "loss": [1.0, 0.5],
            "val_loss": [1.1, 0.9],
            "accuracy": [0.4, 0.8],
            "val_accuracy": [0.3, 0.6],
        }
    )
    perfect = np.eye(len(classes))[frames["emotion"].map(classes.index)]
    view = widgets.protocol_explorer(
        {"random": history, "subject": history.assign(val_accuracy=[0.2, 0.3])},
        {"random": (frames, perfect, classes), "subject": (frames, probabilities, classes)},
        data="toy",
        show=False,
    )
    assert "random split, frame level: test accuracy 1.000" in view.status.value
    view.controls["protocol"].value = "subject"
    view.controls["level"].value = "clip"
    assert f"test accuracy {70 / 72:.3f}" in view.status.value and "72 clips" in view.status.value
    loss_ax, acc_ax, matrix_ax = view.figure().axes
    assert list(acc_ax.lines[1].get_ydata()) == [0.2, 0.3]
    assert "subject split" in view.figure()._suptitle.get_text()


def test_save_upload_keeps_the_bytes_and_only_the_base_name(tmp_path: Path, stills: list[Path]) -> None:
    data = stills[0].read_bytes()
    path = widgets.save_upload(({"name": "../../evil/x.png", "content": memoryview(data)},), tmp_path)
    assert path == tmp_path / "x.png" and path.read_bytes() == data
    assert widgets.save_upload((), tmp_path) is None


def test_upload_accepts_a_video_and_votes_per_clip(clips: pd.DataFrame) -> None:
    import datetime

    from fer_utils.deploy.inference import Recognizer
    from fer_utils.models.networks import build_paper_cnn

    model = build_paper_cnn(8, (48, 48, 1))
    classes = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    video = Path(clips.iloc[0]["path"])
    recognizer = Recognizer(model, classes)
    table = widgets.media_predictions(recognizer, video, every=2).table
    assert list(table["frame_index"]) == [0, 2, 4], "one row (the largest face) per sampled frame"
    assert widgets.clip_emotion(table, classes) in classes

    view = widgets.emotion_upload(recognizer, video, show=False, every=2)
    assert view.controls["upload"].accept == "image/*,video/*"
    lines, bars, cam = view.figure().axes
    assert len(lines.lines) == 8 and "mean of 3 frames" in bars.get_title() and "default" in cam.get_title()
    upload = {
        "name": "clip.mp4",
        "type": "video/mp4",
        "size": video.stat().st_size,
        "last_modified": datetime.datetime.now(datetime.UTC),
        "content": memoryview(video.read_bytes()),
    }
    view.controls["upload"].value = (upload,)
    assert "your upload" in view.figure().axes[2].get_title()


def test_media_figure_reads_images_and_refuses_other_files(tmp_path: Path, stills: list[Path]) -> None:
    from fer_utils.deploy.inference import Recognizer
    from fer_utils.models.networks import build_paper_cnn

    recognizer = Recognizer(build_paper_cnn(3, (48, 48, 1)), ["neutral", "happy", "sad"])
    assert len(widgets.media_figure(recognizer, stills[0]).axes) == 3
    text = tmp_path / "notes.txt"
    text.write_text("not a face")
    fig = widgets.media_figure(recognizer, text)
    assert "cannot read notes.txt" in fig.axes[0].texts[0].get_text()
