"""Each chapter's lesson as checkable claims about its own executed run (issue 16).

A chapter that teaches with a run (overfitting, leakage, a result on real faces) states what that run
must show as claims over numbers it measured, e.g. "mean test accuracy over seeds ≥ 0.80". The
thresholds are defined here, once: the chapter calls `show_lesson`, which prints each claim beside the
measured value and whether it holds, and records the numbers in the output's metadata
(`LESSON_KEY`: the book's HTML build renders the table and ignores the metadata) so that `tests/test_lessons.py` can check the executed book with `check_lesson`. A run
that does not show its lesson is then a failing test, not a page whose prose says the opposite of its
numbers.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass

# The output metadata key that carries a lesson's numbers in an executed notebook (beside its table).
LESSON_KEY = "fer_lesson"

COMPARISONS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}


@dataclass(frozen=True)
class Claim:
    """One checkable statement: `measured[name] <op> threshold`, said in words by `text`."""

    name: str
    op: str
    threshold: float
    text: str

    def holds(self, value: float) -> bool:
        """Whether `value` satisfies the claim (a missing or NaN value never does)."""
        return value == value and bool(COMPARISONS[self.op](value, self.threshold))


LESSONS: dict[str, tuple[Claim, ...]] = {
    "04_training": (
        Claim(
            "short_loss_over_chance", "<=", 0.7, "short run: last training loss as a share of a uniform guess's ln C"
        ),
        Claim(
            "epochs_after_best",
            ">=",
            1,
            "reference run: epochs trained after the best one (it converged), fewest over seeds",
        ),
        Claim("seeds", ">=", 3, "the reference run is repeated over at least 3 seeds"),
        Claim("collapsed_runs", "==", 0, "reference runs that collapsed (learnt nothing)"),
    ),
    "05_regularization": (
        Claim("seeds", ">=", 3, "every setting is repeated over at least 3 seeds"),
        Claim("baseline_train_accuracy", ">=", 0.9, "without regularization: mean final training accuracy"),
        Claim("baseline_gap", ">=", 0.15, "without regularization: mean train - validation gap (overfitting)"),
        Claim(
            "gap_shrink_over_spread",
            ">",
            0.0,
            "the paper's remedy shrinks the mean gap by more than the spread over seeds (shrink - largest std)",
        ),
    ),
    "06_evaluation_protocols": (
        Claim("seeds", ">=", 3, "every protocol is repeated over at least 3 seeds"),
        Claim("min_train_accuracy", ">=", 0.8, "every run fits its training frames: lowest final training accuracy"),
        Claim(
            "random_minus_subject_over_spread",
            ">",
            0.0,
            "random minus subject split accuracy, beyond the spread over seeds (difference - largest std)",
        ),
    ),
    "07_comparison": (
        Claim("models", ">=", 3, "models trained on the same split"),
        Claim("seeds", ">=", 3, "seeds per model (the fewest)"),
        Claim(
            "min_margin_over_chance",
            ">",
            0.0,
            "every model above chance beyond its spread: lowest (mean - chance - std)",
        ),
        Claim("models_in_picker", ">=", 3, "models the plot's picker offers"),
    ),
    "09_real_faces": (
        Claim("seeds", ">=", 5, "the subject split is repeated over at least 5 seeds"),
        Claim("mean_accuracy", ">=", 0.80, "mean test accuracy on people never seen in training"),
        Claim("collapsed_runs", "==", 0, "runs that collapsed (learnt nothing)"),
        Claim(
            "random_collapsed_runs", "==", 0, "random-split runs that collapsed (the contrast uses runs that learned)"
        ),
    ),
    "10_seven_expressions": (
        Claim("seeds", ">=", 3, "the model trained on generated faces is repeated over at least 3 seeds"),
        Claim("real_frames", ">=", 250, "real frames scored, the same for every model (fewest over runs)"),
        Claim("collapsed_runs", "==", 0, "runs that collapsed (learnt nothing)"),
        Claim(
            "test_side_lead_over_peer",
            ">",
            0.0,
            "on the training data's own test side the first model leads the peer: its mean - std - the peer's mean",
        ),
        Claim(
            "peer_f1_lead_over_spread",
            ">",
            0.0,
            "the peer (real photographs) leads on real macro F1 beyond the spread: lead - std over seeds",
        ),
        Claim(
            "peer_lead_over_its_network_on_generated_faces",
            ">",
            0.0,
            "the same network (mini-Xception) trained on the generated faces: the peer's lead on real macro F1 - std",
        ),
        Claim(
            "book_accuracy_over_majority_beyond_spread",
            "<=",
            0.0,
            "the book's best model is not above always answering the commonest expression on real faces: mean - std - baseline",
        ),
    ),
}


def check_lesson(chapter: str, measured: Mapping[str, float], lessons: Mapping[str, tuple[Claim, ...]] = LESSONS):
    """[(claim, measured value, holds)] for every claim of `chapter`'s lesson."""
    return [
        (
            claim,
            float(measured.get(claim.name, float("nan"))),
            claim.holds(float(measured.get(claim.name, float("nan")))),
        )
        for claim in lessons[chapter]
    ]


def lesson_markdown(chapter: str, measured: Mapping[str, float]) -> str:
    """The lesson as a Markdown table: claim, measured, required, holds."""
    rows = [
        f"| {claim.text} | {value:.3g} | {claim.op} {claim.threshold:g} | {'✅ yes' if ok else '❌ no'} |"
        for claim, value, ok in check_lesson(chapter, measured)
    ]
    return "\n".join(["| what this run must show | measured | required | holds |", "|---|---|---|---|", *rows])


def lesson_table(chapter: str, measured: Mapping[str, float]):
    """The lesson as a table (pandas): claim, measured, required, holds."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "what this run must show": claim.text,
                "measured": f"{value:.3g}",
                "required": f"{claim.op} {claim.threshold:g}",
                "holds": "✅ yes" if ok else "❌ no",
            }
            for claim, value, ok in check_lesson(chapter, measured)
        ]
    )


def show_lesson(chapter: str, measured: Mapping[str, float]) -> None:
    """Display the lesson's table, with the measured numbers recorded for the book's lesson test."""
    from IPython.display import display

    numbers = {key: float(value) for key, value in measured.items()}
    table = lesson_table(chapter, numbers)
    display(
        {"text/plain": table.to_string(index=False), "text/html": table.to_html(index=False)},
        metadata={LESSON_KEY: {"chapter": chapter, "measured": numbers}},
        raw=True,
    )
