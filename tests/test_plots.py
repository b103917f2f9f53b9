"""The book's figures say what the run shows, without magnifying it (issue 34): chapter 6's chance line,
chapter 7's parameter axis."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd

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
    """Issue 46: pandas cut long cells to "..." (a claim's sentence, "0.526 ± 0.013 (one run: no spread)") and
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
