"""Seaborn/matplotlib figures used by the chapters; each function returns the Figure it drew.

They take tables and arrays, never paths, so they are cheap to test and reuse in widgets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from fer_utils.data.corpora import EMOTIONS
from fer_utils.evaluate.metrics import present_classes
from fer_utils.storage.run_files import TRAIN_EVAL_PREFIX

# The book's column: 720 px at matplotlib's 100 dpi; a figure no wider is shown unshrunk (MIN_FONT_PT reads as is).
BOOK_WIDTH_IN = 7.2
MIN_FONT_PT = 9  # the smallest text a figure of the book holds (tick labels, annotations, legends, captions)

# The paper's reported results (accuracy %, macro F1 %), shown beside every number we measure.
PAPER_RESULTS = pd.DataFrame(
    {"dataset": ["RAVDESS", "SAVEE", "MEAD"], "accuracy": [92.0, 94.0, 97.0], "f1": [92.0, 92.0, 97.0]}
)


def book_style() -> None:
    """The book's look: tables shown whole (nothing cut to "...") and figure text readable at the page's width."""
    pd.set_option("display.max_colwidth", None, "display.max_columns", None)
    text = {"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.title_fontsize": 10}
    plt.rcParams.update({**text, "legend.fontsize": 10, "xtick.labelsize": 10, "ytick.labelsize": 10})


def legend_outside(ax: plt.Axes, title: str | None = None) -> None:
    """The axes' legend to the right of its data area, off every bar, line and point (none if nothing is labelled)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, title=title, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)


def laid_out(fig: Figure) -> Figure:
    """`fig` after `tight_layout` (nothing cut or overlapping), to return."""
    fig.tight_layout()
    return fig


def fit_tick_labels(ax: plt.Axes) -> None:
    """Slant the x tick labels at 45°, right-aligned under their tick, only when they would overlap."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    boxes = [label.get_window_extent(renderer) for label in ax.get_xticklabels() if label.get_text()]
    if any(a.x1 > b.x0 for a, b in zip(boxes, boxes[1:])):
        plt.setp(ax.get_xticklabels(), rotation=45, ha="right", rotation_mode="anchor")


def message_figure(text: str, ax: plt.Axes | None = None) -> Figure:
    """`text` alone on `ax` (else in a small figure of its own): why there is nothing to show."""
    ax = ax or plt.subplots(figsize=(6, 1.2))[1]
    ax.text(0.5, 0.5, text, ha="center", va="center")
    ax.axis("off")
    return ax.figure


def class_balance(clips: pd.DataFrame, title: str = "Clips per emotion") -> Figure:
    """Bar chart of the number of rows per emotion (clips or frames), in vocabulary order."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    order = present_classes(clips["emotion"], EMOTIONS)
    sns.countplot(data=clips, x="emotion", order=order, hue="emotion", legend=False, palette="viridis", ax=ax)
    ax.set(title=title, xlabel="", ylabel="count")
    fit_tick_labels(ax)
    return laid_out(fig)


def subject_counts(clips: pd.DataFrame, title: str = "Clips per subject and emotion") -> Figure:
    """Heat map of clip counts per subject (rows) and emotion (columns)."""
    table = pd.crosstab(clips["subject"], clips["emotion"]).reindex(columns=present_classes(clips["emotion"], EMOTIONS))
    fig, ax = plt.subplots(figsize=(7, max(3, 0.22 * len(table) + 1)))
    sns.heatmap(table, annot=len(table) <= 30, fmt="d", cmap="Blues", cbar=False, ax=ax)
    ax.set(title=title, xlabel="", ylabel="")
    return laid_out(fig)


def image_grid(images: Sequence[np.ndarray], titles: Sequence[str], ncols: int = 4, size: float = 2.2) -> Figure:
    """Images in a grid with a title each (RGB or grayscale arrays)."""
    nrows = max(1, int(np.ceil(len(images) / ncols)))
    size = min(size, BOOK_WIDTH_IN / ncols)  # the whole grid within the book's width
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles):
        gray = image.ndim == 2 or image.shape[-1] == 1
        ax.imshow(image.squeeze(), cmap="gray" if gray else None)
        ax.set_title(title, fontsize=MIN_FONT_PT)
    return laid_out(fig)


def detection_figure(
    image_rgb: np.ndarray, boxes: Mapping[str, Sequence[object]], landmarks: np.ndarray | None = None, title: str = ""
) -> Figure:
    """One frame with each detector's boxes in its own colour and, optionally, the 68 landmarks."""
    colors = dict(zip(boxes, ["lime", "orange", "deepskyblue", "magenta"]))
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.imshow(image_rgb)
    for name, found in boxes.items():
        for box in found:
            ax.add_patch(plt.Rectangle((box.x, box.y), box.w, box.h, fill=False, color=colors[name], lw=2))
        if found:
            ax.text(found[0].x, found[0].y - 4, name, color=colors[name], fontsize=MIN_FONT_PT)
    if landmarks is not None:
        ax.scatter(landmarks[:, 0], landmarks[:, 1], s=4, c="red")
    ax.set_title(title or "detections", fontsize=10)
    ax.axis("off")
    return laid_out(fig)


def bar_table(
    table: pd.DataFrame,
    x: str,
    y: str,
    hue: str | None = None,
    title: str = "",
    ylabel: str | None = None,
    log: bool = False,
    chance: float | None = None,
) -> Figure:
    """Bars of `y` per `x` (by `hue`), labelled: the mean ± std of several rows per bar; `chance` as a dashed line."""
    fig, ax = plt.subplots(figsize=(BOOK_WIDTH_IN, 3.4))
    sns.barplot(data=table, x=x, y=y, hue=hue or x, legend=bool(hue), palette="viridis", errorbar="sd", ax=ax)
    for container in ax.containers:
        ax.bar_label(container, fmt="%.3g", fontsize=MIN_FONT_PT)
    ax.set(xlabel="", ylabel=ylabel or y)
    ax.set_title(title, wrap=True)  # a long title breaks into lines within the figure
    if chance is not None:
        ax.axhline(chance, color="0.3", linestyle="--", linewidth=1, label=f"chance ({chance:.3f})")
    legend_outside(ax, title=hue)
    if log:
        ax.set_yscale("log")
    fig.tight_layout()
    fit_tick_labels(ax)
    return laid_out(fig)


def feature_maps(maps: Mapping[str, np.ndarray], channels: int = 6) -> Figure:
    """The first `channels` feature maps of each named layer output (H, W, C), one row per layer."""
    side = min(1.6, BOOK_WIDTH_IN / channels)
    fig, axes = plt.subplots(len(maps), channels, figsize=(side * channels, (side + 0.2) * len(maps)), squeeze=False)
    for row, (name, fmap) in zip(axes, maps.items()):
        for c, ax in enumerate(row):
            ax.axis("off")
            if c < fmap.shape[-1]:
                ax.imshow(fmap[..., c], cmap="magma")
        row[0].set_title(f"{name} {fmap.shape[0]}×{fmap.shape[1]}×{fmap.shape[-1]}", fontsize=MIN_FONT_PT, loc="left")
    return laid_out(fig)


def training_curves(histories: Mapping[str, pd.DataFrame], title: str = "") -> Figure:
    """Loss and accuracy per epoch of runs: train solid, validation dashed, train in inference mode dotted."""
    fig, axes = plt.subplots(1, 2, figsize=(BOOK_WIDTH_IN, 3.1))
    for color, (label, hist) in zip(sns.color_palette("tab10", len(histories)), histories.items()):
        _curves(axes, hist, color, f"{label} train", f"{label} val", f"{label} train, inference mode")
    if title:
        fig.suptitle(title, fontsize=10, wrap=True)
    fig.tight_layout()
    handles, labels = axes[1].get_legend_handles_labels()
    if handles:  # one legend under both plots, after the layout (off the curves), in the columns the width fits
        widest = max(len(label) for label in labels) * 0.6 * MIN_FONT_PT / 72 + 0.6  # inches: text and its marker
        columns = max(1, min(len(labels), int(BOOK_WIDTH_IN // widest)))
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0), ncols=columns, frameon=False)
    return fig


def _curves(
    axes: Sequence[plt.Axes], hist: pd.DataFrame, color: object, train: str, val: str, scored: str = ""
) -> None:
    """Loss and accuracy per epoch on two axes: train solid, `scored` (inference mode, if logged) dotted, val dashed."""
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(hist["epoch"], hist[metric], color=color, label=train)
        for column, ls, label in ((f"{TRAIN_EVAL_PREFIX}{metric}", ":", scored), (f"val_{metric}", "--", val)):
            if label and column in hist:
                ax.plot(hist["epoch"], hist[column], color=color, ls=ls, label=label)
        ax.set(title=metric, xlabel="epoch")
    axes[1].set_ylim(0, 1.02)


def confusion_heatmap(confusion: pd.DataFrame, title: str = "Confusion matrix", ax: plt.Axes | None = None) -> Figure:
    """A confusion matrix (rows: true, columns: predicted) as an annotated heat map (on `ax` if given)."""
    ax = ax or plt.subplots(figsize=(5.5, 4.6))[1]
    fig = ax.figure
    fmt = "d" if np.issubdtype(confusion.to_numpy().dtype, np.integer) else ".2f"
    sns.heatmap(confusion, annot=True, fmt=fmt, cmap="Blues", cbar=False, ax=ax, annot_kws={"fontsize": MIN_FONT_PT})
    ax.set(title=title, xlabel="predicted", ylabel="true")
    fig.tight_layout()
    fit_tick_labels(ax)
    return laid_out(fig)


def confusion_with_examples(
    confusion: pd.DataFrame, images: Sequence[np.ndarray], captions: Sequence[str], title: str = "Confusion matrix"
) -> Figure:
    """A confusion matrix beside a grid of example images (e.g. misclassified frames) with captions, three a row."""
    ncols = 3
    rows = max(1, int(np.ceil(len(images) / ncols)))
    side = min(1.8, BOOK_WIDTH_IN / ncols * 0.8)  # the examples in rows under the matrix, within the book's width
    fig = plt.figure(figsize=(BOOK_WIDTH_IN, 4.8 + (side + 0.4) * rows))
    grid = fig.add_gridspec(rows + 1, ncols, height_ratios=[4.8] + [side + 0.4] * rows)
    confusion_heatmap(confusion, title, ax=fig.add_subplot(grid[0, :]))
    if not len(images):
        message_figure("no misclassified examples", fig.add_subplot(grid[1:, :]))
    for i, (image, caption) in enumerate(zip(images, captions)):
        ax = fig.add_subplot(grid[1 + i // ncols, i % ncols])
        ax.imshow(image.squeeze(), cmap="gray")
        ax.set_title(caption, fontsize=MIN_FONT_PT)
        ax.axis("off")
    return laid_out(fig)


def curves_and_confusion(history: pd.DataFrame, confusion: pd.DataFrame, title: str = "") -> Figure:
    """One run's loss and accuracy curves (train solid, validation dashed) beside a confusion matrix."""
    fig = plt.figure(figsize=(BOOK_WIDTH_IN, 7.4))
    grid = fig.add_gridspec(2, 2, height_ratios=(1, 1.5))
    axes = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    _curves(axes, history, "C0", "train", "validation")
    legend_outside(axes[1])
    confusion_heatmap(confusion, "test confusion (row-normalised)", ax=fig.add_subplot(grid[1, :]))
    if title:
        fig.suptitle(title, fontsize=10)
    return laid_out(fig)


def video_emotions(
    table: pd.DataFrame, classes: Sequence[str], face: np.ndarray, heatmap: np.ndarray, title: str = ""
) -> Figure:
    """A video's per-frame class probabilities (lines), their mean (the clip's vote, bars) and one frame's Grad-CAM."""
    fig = plt.figure(figsize=(BOOK_WIDTH_IN, 5.6))
    grid = fig.add_gridspec(2, 2, width_ratios=(1.4, 1))
    line_ax, bar_ax, cam_ax = fig.add_subplot(grid[0, :]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    palette = sns.color_palette("tab10", len(classes))
    for color, name in zip(palette, classes):
        line_ax.plot(table["frame_index"], table[f"p_{name}"], color=color, marker=".", label=name)
    line_ax.set(title="per sampled frame", xlabel="frame", ylabel="probability", ylim=(0, 1.02))
    legend_outside(line_ax)
    mean = table[[f"p_{c}" for c in classes]].mean().to_numpy()
    bar_ax.barh(list(classes), mean, color=palette)
    bar_ax.invert_yaxis()
    bar_ax.set(xlim=(0, 1), title=f"clip: {classes[int(mean.argmax())]}\n(mean of {len(table)} frames)")
    heat_over(cam_ax, face, heatmap)
    cam_ax.set_title(title or "Grad-CAM", fontsize=MIN_FONT_PT)
    cam_ax.axis("off")
    for ax in (line_ax, bar_ax):
        ax.title.set_fontsize(MIN_FONT_PT + 1)
    return laid_out(fig)


def accuracy_vs_params(
    table: pd.DataFrame, highlight: str | None = None, title: str = "Accuracy versus parameters"
) -> Figure:
    """Accuracy against parameters, one point per model; log x only for a 10× span (else near sizes look far)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    chosen = table["model"] == highlight
    x, y = table["params"], table["accuracy"]
    ax.errorbar(x, y, yerr=table.get("accuracy_std"), fmt="none", ecolor="grey", capsize=4, zorder=2)
    ax.scatter(x, y, s=np.where(chosen, 120, 50), color=np.where(chosen, "crimson", "steelblue"), zorder=3)
    for name, xy, bold in zip(table["model"], zip(x, y), chosen):
        weight = "bold" if bold else "normal"
        ax.annotate(name, xy, textcoords="offset points", xytext=(6, 4), fontsize=MIN_FONT_PT, fontweight=weight)
    log = float(x.max()) >= 10 * float(x.min())  # a span this wide reads on a log axis
    if log:
        ax.set_xscale("log")
    else:
        ax.set_xlim(0, 1.25 * float(x.max()))
    ax.set(title=title, xlabel="parameters (log scale)" if log else "parameters", ylabel="test accuracy")
    ax.grid(alpha=0.3)
    return laid_out(fig)


def heat_over(ax: plt.Axes, image: np.ndarray, heatmap: np.ndarray) -> None:
    """The gray `image` on `ax` with a heat map (values 0..1, any size) stretched over it."""
    import cv2

    face = image.squeeze()
    ax.imshow(face, cmap="gray")
    ax.imshow(cv2.resize(heatmap.astype("float32"), (face.shape[1], face.shape[0])), cmap="jet", alpha=0.45)


def heatmap_overlay(image: np.ndarray, heatmap: np.ndarray, title: str = "Grad-CAM") -> Figure:
    """An image beside the same image with a heat map (values 0..1, any size) over it."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(5.5, 2.9))
    left.imshow(image.squeeze(), cmap="gray")
    heat_over(right, image, heatmap)
    for ax, name in ((left, "input"), (right, title)):
        ax.set_title(name, fontsize=MIN_FONT_PT)
        ax.axis("off")
    return laid_out(fig)


def paper_comparison(metrics: Mapping[str, float], data: str) -> pd.DataFrame:
    """Our accuracy and macro F1 (0..1) on `data` beside the paper's (percent); other data marked not comparable."""
    dataset = data.split(" (")[0].strip().lower()  # Dataset.label's "ravdess (folder)" → "ravdess"
    same = dataset in {name.lower() for name in PAPER_RESULTS["dataset"]}
    f1 = metrics.get("f1_macro", metrics.get("f1", float("nan")))
    source = "this run" if same else "this run; other data: not comparable"
    ours = pd.DataFrame([{"dataset": data, "source": source, "accuracy": 100 * metrics["accuracy"], "f1": 100 * f1}])
    paper = PAPER_RESULTS.assign(source="the paper, reported")[["dataset", "source", "accuracy", "f1"]]
    return pd.concat([ours, paper], ignore_index=True).rename(columns={"accuracy": "accuracy %", "f1": "F1 %"}).round(1)
