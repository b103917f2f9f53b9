"""ipywidgets explorers for the chapters (`live_view`): controls above their default view, an ordinary figure
output saved with the executed notebook (the book shows it without a kernel), redrawn in place as a control moves."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fer_utils.book import plots
from fer_utils.data.corpora import EMOTIONS
from fer_utils.evaluate.metrics import (
    LEVELS,
    classification_metrics,
    confusion,
    level_predictions,
    misclassified,
    present_classes,
)
from fer_utils.registry import PAPER_CLASSES, PAPER_FILTERS, PAPER_PARAMS, PAPER_SIDE, PAPER_UNITS
from fer_utils.storage.run_files import TRAIN_EVAL_PREFIX, probability_columns

if TYPE_CHECKING:
    from fer_utils.deploy.inference import Recognizer

Draw = Callable[..., Figure]
Describe = Callable[..., str]


@dataclass
class LiveView:
    """An explorer: its controls box, the status line under them, and the function drawing a view."""

    box: widgets.VBox
    controls: Mapping[str, widgets.ValueWidget]
    status: widgets.HTML
    draw: Draw

    def values(self) -> dict[str, object]:
        """The controls' current values, by name."""
        return {name: control.value for name, control in self.controls.items()}

    def figure(self) -> Figure:
        """The view for the current values (a new Figure; the caller closes it)."""
        return self.draw(**self.values())


def live_view(
    draw: Draw, controls: Mapping[str, widgets.ValueWidget], describe: Describe | None = None, show: bool = True
) -> LiveView:
    """Show the controls and the default figure; redraw the figure (and status line) when a control moves."""
    from IPython.display import DisplayHandle, display

    status = widgets.HTML()
    view = LiveView(widgets.VBox([*controls.values(), status]), controls, status, draw)
    handle = DisplayHandle()

    def redraw(change: dict | None = None) -> None:
        if describe:
            status.value = describe(**view.values())
        if show:
            fig = view.figure()
            (handle.update if change else handle.display)(fig)
            plt.close(fig)

    if show:
        display(view.box)
    redraw()
    for control in controls.values():
        control.observe(redraw, names="value")
    return view


# Chapter 1: a clip and frame browser.
def clip_frame(clips: pd.DataFrame, subject: str, emotion: str, frame: int) -> tuple[np.ndarray, str]:
    """The RGB frame `frame` (clamped) of the first clip of `subject` showing `emotion`, with a caption."""
    import cv2

    from fer_utils.data.media import sample_frames

    rows = clips[(clips["subject"] == subject) & (clips["emotion"] == emotion)]
    if rows.empty:
        return np.zeros((90, 160, 3), np.uint8), f"no {emotion} clip of {subject}"
    path = Path(rows.iloc[0]["path"])
    frames = sample_frames(path, n=None)
    index, bgr = frames[min(frame, len(frames) - 1)]
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), f"{path.name}  (frame {index} of {len(frames)}, {emotion})"


def clip_browser(clips: pd.DataFrame, show: bool = True) -> LiveView:
    """Pick an actor, an emotion and a frame; see that frame of the clip."""
    subjects = sorted(clips["subject"].unique())
    emotions = present_classes(clips["emotion"], EMOTIONS)
    controls = {
        "subject": widgets.Dropdown(options=subjects, value=subjects[0], description="actor"),
        "emotion": widgets.Dropdown(
            options=emotions, value="happy" if "happy" in emotions else emotions[0], description="emotion"
        ),
        "frame": widgets.IntSlider(value=9, min=0, max=30, description="frame"),
    }

    def draw(subject: str, emotion: str, frame: int) -> Figure:
        image, caption = clip_frame(clips, subject, emotion, frame)
        return plots.image_grid([image], [caption], ncols=1, size=5.5)

    return live_view(draw, controls, show=show)


# Chapter 2: a detector, margin and alignment explorer.
def detector_explorer(image_bgr: np.ndarray, show: bool = True) -> LiveView:
    """Pick a detector, a crop margin and alignment; see the box, landmarks and the resulting crop."""
    import cv2

    from fer_utils.faces.crops import align_face, crop_face, make_detector, make_landmarker
    from fer_utils.registry import DEFAULT_MARGIN, DETECTORS

    landmarker = make_landmarker()
    controls = {
        "detector": widgets.Dropdown(options=list(DETECTORS), value=DETECTORS[0], description="detector"),
        # the book's default margin: the saved default view shows the crop the chapter's text describes
        "margin": widgets.FloatSlider(value=DEFAULT_MARGIN, min=0.0, max=0.5, step=0.05, description="margin"),
        "align": widgets.Checkbox(value=False, description="align eyes"),
    }

    def draw(detector: str, margin: float, align: bool) -> Figure:
        image, finder = image_bgr, make_detector(detector)
        boxes = finder.detect(image)
        if not boxes:
            return plots.image_grid([cv2.cvtColor(image, cv2.COLOR_BGR2RGB)], [f"{detector}: no face"], ncols=1, size=4)
        points = landmarker.landmarks(image, boxes[0])
        if align:
            image, points = align_face(image, points)
            boxes = finder.detect(image) or boxes
        crop = crop_face(image, boxes[0], margin=margin)
        title = f"{detector}, margin {margin:.2f}{', aligned' if align else ''}"
        fig = plots.detection_figure(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), {detector: boxes[:1]}, points, title)
        inset = fig.add_axes((0.72, 0.12, 0.26, 0.76))
        inset.imshow(crop, cmap="gray")
        inset.set_title(f"crop {crop.shape[1]}×{crop.shape[0]}", fontsize=plots.MIN_FONT_PT)
        inset.axis("off")
        return fig

    return live_view(draw, controls, show=show)


# Chapter 3: the architecture's size.
@cache
def parameter_parts(
    input_size: int,
    filters: tuple[int, int, int] = PAPER_FILTERS,
    units: int = PAPER_UNITS,
    classes: int = PAPER_CLASSES,
) -> dict[str, int]:
    """Keras's parameter count of the network `build_paper_cnn` builds at this shape, by part: its convolutions,
    its dense layer fc (which reads the flattened map) and its softmax layer."""
    from fer_utils.models.networks import build_paper_cnn

    model = build_paper_cnn(classes, (input_size, input_size, 1), filters=filters, units=units)
    convs = sum(model.get_layer(f"conv{stage}").count_params() for stage in (1, 2, 3))
    return {
        "convolutions": convs,
        "fc": model.get_layer("fc").count_params(),
        "softmax": model.get_layer("emotion").count_params(),
    }


def architecture_explorer(classes: int = PAPER_CLASSES, show: bool = True) -> LiveView:
    """Sliders for the filters, dense units and input size, with the live parameter count per part."""
    slider = partial(widgets.IntSlider, continuous_update=False)  # each new shape builds a network: on release
    controls = {
        "input_size": slider(value=PAPER_SIDE, min=48, max=224, step=4, description="input px"),
        "first_filters": slider(value=16, min=4, max=64, step=4, description="conv1 filters"),
        "later_filters": slider(value=64, min=8, max=128, step=8, description="conv2/3 filters"),
        "dense": slider(value=16, min=4, max=256, step=4, description="dense units"),
    }

    def parts(input_size: int, first_filters: int, later_filters: int, dense: int) -> pd.DataFrame:
        counts = parameter_parts(input_size, (first_filters, later_filters, later_filters), dense, classes)
        return pd.DataFrame({"part": list(counts), "params": list(counts.values())})

    def describe(**values: int) -> str:
        return (
            f"<b>{int(parts(**values)['params'].sum()):,} parameters</b> "
            f"(paper: {PAPER_PARAMS:,} at {PAPER_SIDE} px, 16/64/64 filters, 16 units, {PAPER_CLASSES} classes)"
        )

    def draw(**values: int) -> Figure:
        return plots.bar_table(
            parts(**values), "part", "params", title="Where the parameters are", ylabel="parameters (log)", log=True
        )

    return live_view(draw, controls, describe, show=show)


# Chapters 4 and 6: predictions at frame or clip level (tables from fer_utils.evaluate.metrics).
def prediction_browser(
    frames: pd.DataFrame,
    probabilities: np.ndarray,
    classes: Sequence[str],
    crops: Path,
    data: str = "sample",
    show: bool = True,
) -> LiveView:
    """Frame or clip level, counts or rates, and a true emotion: the confusion matrix beside the worst mistakes."""
    from fer_utils.data.media import read_image, to_gray

    tables = {level: level_predictions(frames, probabilities, classes, level) for level in LEVELS}
    controls = {
        "level": widgets.ToggleButtons(options=list(LEVELS), value="frame", description="level"),
        "normalize": widgets.Checkbox(value=False, description="normalise rows (recall)"),
        "emotion": widgets.Dropdown(options=["all", *classes], value="all", description="true class"),
    }

    def describe(level: str, normalize: bool, emotion: str) -> str:
        table = tables[level]
        wrong = int((table["emotion"] != table["predicted"]).sum())
        return (
            f"{level} level: {len(table)} test {level}s, {wrong} misclassified "
            f"(accuracy {1 - wrong / max(len(table), 1):.3f}; {data})"
        )

    def draw(level: str, normalize: bool, emotion: str) -> Figure:
        table = tables[level]
        shown = misclassified(table, emotion)
        images = [to_gray(read_image(Path(crops) / image)) for image in shown["image"]]
        captions = [
            f"{t} → {p} ({c:.2f})" + (f"\nframe {f}" if f >= 0 else "")
            for t, p, c, f in zip(shown["emotion"], shown["predicted"], shown["confidence"], shown["frame_index"])
        ]
        title = f"Test {level}s ({data}){', row-normalised' if normalize else ''}"
        matrix = confusion(table["emotion"], table["predicted"], classes, normalize="true" if normalize else None)
        return plots.confusion_with_examples(matrix, images, captions, title)

    return live_view(draw, controls, describe, show=show)


# Chapter 5: dropout and L1 curves from precomputed runs.
def regularization_explorer(histories: Mapping[str, pd.DataFrame], data: str, show: bool = True) -> LiveView:
    """Pick a regularization setting (by its label); see the curves of that precomputed run on `data`."""
    names = list(histories)
    controls = {"setting": widgets.Dropdown(options=names, value=names[0], description="setting")}

    def describe(setting: str) -> str:
        last = histories[setting].iloc[-1]
        scored = f"{TRAIN_EVAL_PREFIX}accuracy"  # the training side in inference mode, as validation is scored
        train, how = (last[scored], "") if scored in last else (last["accuracy"], " (logged, dropout on)")
        return (
            f"last epoch: train accuracy{how} {train:.2f}, validation {last['val_accuracy']:.2f}, "
            f"gap {train - last['val_accuracy']:+.2f} ({data})"
        )

    return live_view(
        lambda setting: plots.training_curves({setting: histories[setting]}), controls, describe, show=show
    )


# Chapter 6: a protocol picker.
def protocol_explorer(
    histories: Mapping[str, pd.DataFrame],
    predictions: Mapping[str, tuple[pd.DataFrame, np.ndarray, Sequence[str]]],
    data: str = "sample",
    show: bool = True,
) -> LiveView:
    """Pick a split protocol and a level; see that run's curves and its test confusion matrix."""
    protocols = list(histories)
    tables = {(p, level): level_predictions(*predictions[p], level=level) for p in protocols for level in LEVELS}
    controls = {
        "protocol": widgets.ToggleButtons(options=protocols, value=protocols[0], description="protocol"),
        "level": widgets.ToggleButtons(options=list(LEVELS), value="frame", description="level"),
    }

    def describe(protocol: str, level: str) -> str:
        table, classes = tables[(protocol, level)], predictions[protocol][2]
        scores = classification_metrics(table["emotion"], table["predicted"], classes)
        return (
            f"{protocol} split, {level} level: test accuracy {scores['accuracy']:.3f}, macro F1 "
            f"{scores['f1_macro']:.3f} on {len(table)} {level}s ({data})"
        )

    def draw(protocol: str, level: str) -> Figure:
        table, classes = tables[(protocol, level)], predictions[protocol][2]
        matrix = confusion(table["emotion"], table["predicted"], classes, normalize="true")
        return plots.curves_and_confusion(histories[protocol], matrix, f"{protocol} split ({data}), test {level}s")

    return live_view(draw, controls, describe, show=show)


# Chapter 7: a model picker on the comparison plot.
def model_picker(table: pd.DataFrame, show: bool = True) -> LiveView:
    """Pick a model; it is highlighted on the accuracy-versus-parameters plot and its row is shown."""
    names = list(table["model"])
    controls = {"model": widgets.Dropdown(options=names, value=names[0], description="model")}

    def describe(model: str) -> str:
        row = table.set_index("model").loc[model]
        return " · ".join(
            f"{k}: {v:,.4g}" if isinstance(v, (int, float, np.number)) else f"{k}: {v}" for k, v in row.items()
        )

    return live_view(lambda model: plots.accuracy_vs_params(table, highlight=model), controls, describe, show=show)


# Chapter 8: upload a face, get the emotion an `inference.Recognizer` predicts and its Grad-CAM.
def _face_figure(recognizer: Recognizer, table: pd.DataFrame, crop: np.ndarray, title: str) -> Figure:
    """A face crop, its Grad-CAM for the predicted class, and the class probabilities (first row of `table`)."""
    from fer_utils.evaluate.explain import grad_cam, overlay

    probabilities = table[probability_columns(recognizer.classes)].to_numpy(dtype=float)[0]
    best = int(probabilities.argmax())
    fig, (face_ax, cam_ax, bar_ax) = plt.subplots(1, 3, figsize=(plots.BOOK_WIDTH_IN, 2.8), width_ratios=(1, 1, 1.4))
    face_ax.imshow(crop, cmap="gray")
    cam_ax.imshow(overlay(crop, grad_cam(recognizer.model, crop, class_index=best)))
    bar_ax.barh(list(recognizer.classes), probabilities, color="steelblue")
    bar_ax.invert_yaxis()
    bar_ax.set_xlim(0, 1)
    titles = (title or "face", f"Grad-CAM for '{recognizer.classes[best]}'", "predicted probabilities")
    for ax, name in zip((face_ax, cam_ax, bar_ax), titles):
        ax.set_title(name, fontsize=plots.MIN_FONT_PT)
    face_ax.axis("off")
    cam_ax.axis("off")
    return plots.laid_out(fig)


def save_upload(value: object, folder: Path) -> Path | None:
    """Write the last uploaded file of a FileUpload value into `folder` (its base name kept); None if nothing."""
    if not value:
        return None
    upload = list(value)[-1]
    path = Path(folder) / (Path(str(upload.get("name") or "upload")).name or "upload")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(upload["content"]))
    return path


@dataclass
class MediaPredictions:
    """The largest face per sampled frame (a `predict`-style table), and per class its most probable crop."""

    table: pd.DataFrame
    best_crops: dict[str, tuple[int, np.ndarray]]


def media_predictions(recognizer: Recognizer, path: Path, every: int | None = 3) -> MediaPredictions:
    """`MediaPredictions` of an image or video, streamed through `recognizer` once (no frame kept)."""
    faces, best = [], {}
    for result in recognizer.stream(Path(path), every):
        if not result.faces:
            continue
        face = max(range(len(result.faces)), key=lambda i: result.faces[i].w * result.faces[i].h)  # the first of ties
        prediction = result.faces[face]
        faces.append(prediction)
        for name, value in prediction.probabilities.items():
            if name not in best or value > best[name][0]:
                best[name] = (value, result.frame_index, result.crops[face])
    return MediaPredictions(recognizer.table(faces), {name: (index, crop) for name, (_, index, crop) in best.items()})


def clip_emotion(table: pd.DataFrame, classes: Sequence[str]) -> str:
    """The clip-level emotion of per-frame predictions: the class with the highest mean probability."""
    return classes[int(table[probability_columns(classes)].mean().to_numpy().argmax())]


def media_figure(recognizer: Recognizer, media: Path, title: str = "", every: int = 3) -> Figure:
    """The emotion figure of an image or video file: the largest face's crop, Grad-CAM and class probabilities."""
    from fer_utils.data.media import check_media
    from fer_utils.errors import FerError
    from fer_utils.evaluate.explain import grad_cam

    try:
        kind = check_media(Path(media))
        found = media_predictions(recognizer, Path(media), every)
    except FerError as exc:
        return plots.message_figure(f"cannot read {Path(media).name}: {exc}")
    if found.table.empty:
        where = f"the sampled frames of {Path(media).name}" if kind == "video" else "this image"
        return plots.message_figure(f"no face found in {where}")
    if kind == "video":  # per-frame probabilities, the clip's emotion and the Grad-CAM of its most confident frame
        emotion = clip_emotion(found.table, recognizer.classes)
        index, crop = found.best_crops[emotion]
        heatmap = grad_cam(recognizer.model, crop, class_index=list(recognizer.classes).index(emotion))
        label = f"{title + ': ' if title else ''}Grad-CAM, frame {index} ({emotion})"
        return plots.video_emotions(found.table, recognizer.classes, crop, heatmap, label)
    emotion = found.table["emotion"].iloc[0]
    return _face_figure(recognizer, found.table, found.best_crops[emotion][1], title)


def emotion_upload(recognizer: Recognizer, default: Path, show: bool = True, every: int = 3) -> LiveView:
    """Upload an image or a video: the emotion `recognizer` predicts and a Grad-CAM (default view: `default`)."""
    import tempfile

    controls = {"upload": widgets.FileUpload(accept="image/*,video/*", multiple=False, description="image or video")}

    def draw(upload: object) -> Figure:
        with tempfile.TemporaryDirectory(prefix="fer-upload-") as folder:
            path = save_upload(upload, Path(folder))
            return media_figure(recognizer, path or default, "your upload" if path else "default", every)

    return live_view(draw, controls, show=show)
