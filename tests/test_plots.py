"""The book's figures say what the run shows, without magnifying it: chapter 6's chance line,
chapter 7's parameter axis; and they read at the book's width: no text under 9 pt as shown, no legend
over the data, no tick labels over each other."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from collections.abc import Callable

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.figure import Figure

from fer_utils.book import plots


def test_a_bar_chart_draws_the_chance_line_it_is_given() -> None:
    table = pd.DataFrame({"protocol": ["random", "subject"] * 2, "accuracy": [0.9, 0.5, 0.92, 0.55]})
    dashed = [line for line in plots.bar_table(table, "protocol", "accuracy", chance=0.125).axes[0].lines]
    assert [line.get_ydata()[0] for line in dashed if line.get_linestyle() == "--"] == [0.125]
    assert not [
        line for line in plots.bar_table(table, "protocol", "accuracy").axes[0].lines if line.get_linestyle() == "--"
    ]


def test_two_models_of_about_the_same_size_are_not_drawn_far_apart() -> None:
    """59.5k and 63k parameters: a log axis zoomed on them spread them across the figure."""
    close = pd.DataFrame({"model": ["mini-xception", "paper-cnn"], "params": [59_527, 62_887], "accuracy": [0.83, 0.9]})
    ax = plots.accuracy_vs_params(close).axes[0]
    assert ax.get_xscale() == "linear"
    assert ax.get_xlim()[0] == 0
    wide = close.assign(params=[59_527, 23_600_000])
    assert plots.accuracy_vs_params(wide).axes[0].get_xscale() == "log"


def test_the_books_style_shows_every_cell_and_column_whole() -> None:
    """Pandas cut long cells to "..." (a claim's sentence, "0.526 ± 0.013 (one run: no spread)") and
    hid columns of wide tables; with the kit's style a table is shown whole, and figure text is larger."""
    import matplotlib.pyplot as plt

    from fer_utils.book.plots import book_style

    wide = pd.DataFrame(
        [{f"column {i}": "a sentence of a table's cell, longer than fifty characters " * 2 for i in range(30)}]
    )
    with pd.option_context("display.max_colwidth", 50, "display.max_columns", 20):
        assert "..." in wide._repr_html_()
    with pd.option_context("display.max_colwidth", 50, "display.max_columns", 20), plt.rc_context():
        book_style()
        html = wide._repr_html_()
        assert "..." not in html and html.count("column 29") == 1
        assert plt.rcParams["legend.fontsize"] == 10 and plt.rcParams["font.size"] == 11


def book_figures() -> dict[str, Callable[[], Figure]]:
    """Every figure helper of the book, on small tables like the chapters' (the longest labels they draw)."""
    import numpy as np

    rng = np.random.default_rng(0)
    emotions = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    matrix = pd.DataFrame(rng.integers(0, 20, (8, 8)), index=emotions, columns=emotions)
    # chapter 7's catalogue in its order (by parameters): the longest names, next to each other under the bars
    models = ["mini-xception", "mobilenet-inception", "wild-cnn", "paper-cnn", "cnn-lstm", "mobilenet-v2"]
    models += ["xception", "resnet50", "alexnet"]

    def history(inference_mode: bool = True) -> pd.DataFrame:
        epochs = np.arange(1, 13)
        table = pd.DataFrame(
            {"epoch": epochs, "loss": 2 / epochs, "val_loss": 2.2 / epochs**0.5, "accuracy": 1 - 0.8 / epochs}
        )
        table["val_accuracy"] = 0.8 - 0.5 / epochs
        if inference_mode:
            table["train_eval_loss"], table["train_eval_accuracy"] = 1.8 / epochs, 1 - 0.7 / epochs
        return table

    protocols = pd.DataFrame(
        {"protocol": ["random", "clip", "subject"] * 4, "level": ["frame"] * 6 + ["clip"] * 6}
    ).assign(accuracy=rng.uniform(0.3, 0.95, 12))
    video = pd.DataFrame({"frame_index": np.arange(0, 60, 5)})
    video[[f"p_{c}" for c in emotions]] = rng.dirichlet(np.ones(8), 12)
    faces = [rng.uniform(0, 1, (32, 32)) for _ in range(6)]
    return {
        "class_balance": lambda: plots.class_balance(pd.DataFrame({"emotion": rng.choice(emotions, 200)})),
        "bar_table with hue and chance (chapter 6)": lambda: plots.bar_table(
            protocols, "protocol", "accuracy", hue="level", chance=0.125, title="Test accuracy by protocol, " * 3
        ),
        "bar_table of chapter 7's models": lambda: plots.bar_table(
            pd.DataFrame({"model": models, "params": np.geomspace(58_000, 62_000_000, 9)}), "model", "params", log=True
        ),
        "training_curves of three models (chapter 7)": lambda: plots.training_curves(
            {m: history() for m in ["paper-cnn", "mini-xception", "wild-cnn"]}, title="Training curves, seed 0"
        ),
        "training_curves before and after (chapter 5)": lambda: plots.training_curves(
            {"before": history(), "after": history()}
        ),
        "confusion_heatmap": lambda: plots.confusion_heatmap(matrix / 20),
        "confusion_with_examples": lambda: plots.confusion_with_examples(
            matrix, faces, ["happy → surprised (0.90)"] * 6
        ),
        "curves_and_confusion (chapter 6)": lambda: plots.curves_and_confusion(history(False), matrix / 20, "subject"),
        "video_emotions (chapter 8)": lambda: plots.video_emotions(
            video, emotions, rng.uniform(0, 255, (48, 48)), rng.uniform(0, 1, (12, 12)), "Grad-CAM: happy"
        ),
        "accuracy_vs_params": lambda: plots.accuracy_vs_params(
            pd.DataFrame(
                {"model": ["paper-cnn", "mini-xception", "wild-cnn"], "params": [62_887, 59_527, 220_000]}
            ).assign(accuracy=[0.67, 0.47, 0.8])
        ),
        "image_grid of four wide cells (chapter 8)": lambda: plots.image_grid(
            faces[:4], ["clip frame 12"] * 4, size=2.6
        ),
        "feature_maps": lambda: plots.feature_maps({"conv1": rng.uniform(0, 1, (30, 30, 16))}),
        "heatmap_overlay": lambda: plots.heatmap_overlay(faces[0], rng.uniform(0, 1, (8, 8))),
        "subject_counts": lambda: plots.subject_counts(
            pd.DataFrame({"subject": rng.choice(list("abcdefgh"), 200), "emotion": rng.choice(emotions, 200)})
        ),
    }


def smallest_shown_font(fig: Figure) -> float:
    """The smallest text of `fig` in points as the book shows it: inline (bbox tight) and shrunk to the column's
    width when wider."""
    from matplotlib.text import Text

    fig.canvas.draw()
    width = fig.get_tightbbox(fig.canvas.get_renderer()).width  # inches
    shrink = min(1.0, plots.BOOK_WIDTH_IN / width)
    texts = [text for text in fig.findobj(Text) if text.get_visible() and text.get_text().strip()]
    return min(text.get_fontsize() for text in texts) * shrink


def legends_over_axes(fig: Figure) -> list[str]:
    """Each legend of `fig` that covers an axes' data area or its tick labels."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    found = []
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            areas = [ax.get_window_extent(renderer), ax.xaxis.get_tightbbox(renderer), ax.yaxis.get_tightbbox(renderer)]
            if any(area is not None and box.overlaps(area) for area in areas):
                found.append(f"legend {[t.get_text() for t in legend.get_texts()]} over axes {ax.get_title()!r}")
    return found


def tick_labels_overlap(ax: plt.Axes) -> bool:
    """Whether two neighbouring x tick labels of `ax` overlap, as the rotated rectangles they are drawn in."""
    import numpy as np

    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    labels = [label for label in ax.get_xticklabels() if label.get_text()]
    shapes = []
    for label in labels:
        angle = np.deg2rad(label.get_rotation())
        corners = label.get_window_extent(renderer).corners()
        label.set_rotation(0)
        level = label.get_window_extent(renderer)
        label.set_rotation(np.rad2deg(angle))
        along, across = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
        shapes.append((corners.mean(axis=0), level.width, level.height, along, across))
    for (a, width_a, height_a, along, across), (b, width_b, height_b, _, _) in zip(shapes, shapes[1:]):
        apart = b - a
        if abs(apart @ along) < (width_a + width_b) / 2 and abs(apart @ across) < (height_a + height_b) / 2:
            return True
    return False


@pytest.mark.parametrize("name", sorted(book_figures()))
def test_every_text_of_a_figure_reads_at_nine_points_or_more_at_the_books_width(name: str) -> None:
    """Fonts near 7 pt (legends at 6-7 pt, captions at 7, annotations at 8) and figures 9 to 12 inches
    wide, shrunk to the column's 7.2."""
    with plt.rc_context():
        plots.book_style()
        fig = book_figures()[name]()
        try:
            assert smallest_shown_font(fig) >= plots.MIN_FONT_PT
        finally:
            plt.close(fig)


@pytest.mark.parametrize("name", sorted(book_figures()))
def test_no_legend_lies_over_the_data_or_the_tick_labels(name: str) -> None:
    """Chapters 5, 6 and 8 drew their legends inside the axes, over the curves and bars."""
    with plt.rc_context():
        plots.book_style()
        fig = book_figures()[name]()
        try:
            assert legends_over_axes(fig) == []
        finally:
            plt.close(fig)


def test_chapter_7s_model_names_do_not_overlap_under_their_bars() -> None:
    """Slanted by 20° in a 7-inch figure, "mobilenet-inception" ran into "wild-cnn"."""
    with plt.rc_context():
        plots.book_style()
        fig = book_figures()["bar_table of chapter 7's models"]()
        ax = fig.axes[0]
        assert not tick_labels_overlap(ax)
        plt.setp(ax.get_xticklabels(), rotation=20, ha="center", rotation_mode="default")  # as they were drawn
        fig.set_size_inches(7, 3.4)
        fig.tight_layout()
        assert tick_labels_overlap(ax)
        plt.close(fig)
