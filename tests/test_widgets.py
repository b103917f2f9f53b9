"""The chapter explorers: their static views and live parameter counts, on real stills and clips."""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from fer_utils import widgets  # noqa: E402
from fer_utils.data import index_ravdess  # noqa: E402
from fer_utils.sample import generate_sample  # noqa: E402


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The clip index of a tiny generated sample (2 actors x 2 emotions)."""
    out = tmp_path_factory.mktemp("sample")
    generate_sample(out, actors=[1, 2], emotions=[3, 4], intensities=[1], n_frames=5, workers=0, progress=False)
    return index_ravdess(out).clips


@pytest.mark.parametrize("size", [48, 96, 180])
@pytest.mark.parametrize("classes", [7, 8])
def test_closed_form_parameter_count_matches_keras(size: int, classes: int) -> None:
    from fer_utils.models import build_paper_cnn, count_params

    assert widgets.cnn_param_count(size, classes=classes) == count_params(build_paper_cnn(classes, (size, size, 1)))


def test_architecture_explorer_updates_its_count() -> None:
    view = widgets.architecture_explorer(show=False)
    assert "542,136 parameters" in view.status.value
    view.controls["input_size"].value = 96
    assert f"{widgets.cnn_param_count(96):,} parameters" in view.status.value
    view.controls["dense"].value = 32
    assert f"{widgets.cnn_param_count(96, dense=32):,}" in view.status.value
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


def test_detector_explorer_draws_each_detector(stills: list[Path]) -> None:
    image = cv2.imread(str(stills[0]))
    view = widgets.detector_explorer(image, show=False)
    for name in ("dlib-hog", "opencv-haar"):
        view.controls["detector"].value = name
        view.controls["margin"].value = 0.2
        fig = view.figure()
        assert name in fig.axes[0].get_title() and len(fig.axes) == 2
        assert fig.axes[1].images[0].get_array().shape == (180, 180)


def test_regularization_explorer_reads_the_chosen_run() -> None:
    runs = {(d, l1): pd.DataFrame({"epoch": [0, 1], "loss": [1, 0.5], "val_loss": [1, 0.9], "accuracy": [0.5, 0.9],
                                   "val_accuracy": [0.5, 0.9 - d]}) for d in (0.3, 0.5) for l1 in (0.0, 0.001)}
    view = widgets.regularization_explorer(runs, show=False)
    assert "gap +0.30" in view.status.value
    view.controls["dropout"].value = 0.5
    assert "gap +0.50" in view.status.value


def test_model_picker_highlights_the_choice() -> None:
    table = pd.DataFrame({"model": ["paper-cnn", "mobilenet-v2"], "params": [542136, 2257984], "accuracy": [0.9, 0.8]})
    view = widgets.model_picker(table, show=False)
    view.controls["model"].value = "mobilenet-v2"
    assert "2.258e+06" in view.status.value or "2,257,984" in view.status.value
    texts = [t.get_text() for t in view.figure().axes[0].texts]
    assert texts == ["paper-cnn", "mobilenet-v2"]


def test_upload_is_decoded_and_explained(stills: list[Path]) -> None:
    from fer_utils.models import build_paper_cnn

    data = stills[3].read_bytes()
    image = widgets.decode_upload(({"name": "x.png", "content": memoryview(data)},))
    assert image.shape == cv2.imread(str(stills[3])).shape
    assert widgets.decode_upload(()) is None
    model = build_paper_cnn(8, (48, 48, 1))
    classes = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    fig = widgets.emotion_figure(model, classes, image)
    assert len(fig.axes) == 3 and "Grad-CAM" in fig.axes[1].get_title()
    blank = widgets.emotion_figure(model, classes, np.zeros((200, 200, 3), np.uint8))
    assert "no face" in blank.axes[0].texts[0].get_text()
