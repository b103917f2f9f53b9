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
        Claim("collapsed_runs", "==", 0, "reference runs that collapsed (learnt nothing)"),
    ),
    "05_regularization": (
        Claim("baseline_train_accuracy", ">=", 0.9, "without regularization: mean final training accuracy"),
        Claim("baseline_gap", ">=", 0.15, "without regularization: mean train - validation gap (overfitting)"),
        Claim(
            "gap_shrink_over_spread",
            ">",
            0.0,
            "the paper's remedy shrinks the mean gap by more than the spread over seeds (shrink - largest std)",
        ),
        Claim(
            "remedy_test_change_beyond_spread",
            "<=",
            0.0,
            "the remedy does not move the test accuracy beyond the spread: |with - without| - largest std",
        ),
        Claim(
            "live_units_gain_over_spread",
            ">",
            0.0,
            "the remedy keeps more dense units alive: live units with - without - largest std",
        ),
        Claim("collapsed_runs", "==", 0, "runs that collapsed (learnt nothing), the published network's included"),
        Claim(
            "published_over_majority",
            ">=",
            0.05,
            "the published network (180x180) learns: its test accuracy - always answering the commonest expression",
        ),
        Claim(
            "published_behind_light_beyond_spread",
            "<",
            0.0,
            "within its budget it stays below the light variant: its accuracy and macro F1 - the light mean + std (larger)",
        ),
        Claim(
            "published_epochs_after_best",
            "==",
            0,
            "the published network was still improving when its epochs ran out: epochs after its best one",
        ),
        Claim(
            "published_epoch_cost_ratio",
            ">=",
            6.0,
            "an epoch of the published network costs over 6 light ones (its 8 outlast the light 45): s per epoch ratio",
        ),
    ),
    "06_evaluation_protocols": (
        Claim("min_train_accuracy", ">=", 0.8, "every run fits its training frames: lowest final training accuracy"),
        Claim(
            "random_minus_subject_over_spread",
            ">",
            0.0,
            "random minus subject split accuracy, beyond the spread over seeds (difference - largest std)",
        ),
        Claim(
            "random_minus_clip_over_spread",
            ">",
            0.0,
            "random minus clip split accuracy, beyond the spread over seeds (difference - largest std)",
        ),
        Claim(
            "random_vote_gain_over_spread",
            ">",
            0.0,
            "random split: clip vote minus single-frame accuracy, beyond the spread over seeds",
        ),
        Claim(
            "subject_vote_gain_over_spread",
            "<=",
            0.0,
            "subject split: the clip vote's gain over single frames is within the spread over seeds",
        ),
    ),
    "07_comparison": (
        Claim(
            "runs_stopped_by_the_cap",
            "==",
            0,
            "runs still improving when the EPOCHS cap ended them (under PATIENCE epochs after their best epoch)",
        ),
        Claim(
            "min_margin_over_chance",
            ">",
            0.0,
            "every model above chance beyond its spread: lowest (mean - chance - std)",
        ),
        Claim(
            "paper_cnn_lead_over_spread",
            ">",
            0.0,
            "trained until it stopped improving, the paper's CNN beats mini-Xception: mean difference - larger std",
        ),
        Claim(
            "mini_xception_lead_after_fixed_budget",
            ">",
            0.0,
            "a FIXED_BUDGET-epoch race ranks them the other way: mini-Xception's - the paper CNN's validation accuracy",
        ),
        Claim(
            "paper_cnn_validation_over_training_after_fixed_budget",
            ">",
            0.0,
            "paper CNN still learning after FIXED_BUDGET epochs: validation - training accuracy (epoch mean, dropout on)",
        ),
        Claim(
            "paper_cnn_training_over_test_at_best",
            ">",
            0.0,
            "paper CNN at its best epoch: training accuracy - test accuracy (the usual order once it has converged)",
        ),
    ),
    "08_deployment": (
        Claim(
            "int8_accuracy_change",
            ">=",
            -0.02,
            "int8 TFLite: test accuracy minus the float32 TFLite model's (within 2 points)",
        ),
        Claim("int8_size_share", "<=", 0.35, "int8 TFLite: its bytes as a share of the float32 TFLite model's"),
        Claim(
            "real_clip_vote_right",
            "==",
            0,
            "the real surprised RAVDESS clip: the sample-trained model's clip vote is right (1) or wrong (0)",
        ),
        Claim("real_clip_vote_neutral", "==", 1, "the real surprised RAVDESS clip: the clip vote is neutral (1)"),
    ),
    "09_real_faces": (
        Claim(
            "transfer_over_chance_range",
            "<=",
            0.0,
            "the sample's model does not transfer: London accuracy over its classes - top of guessing's 95 % range",
        ),
        Claim(
            "transfer_two_way_over_chance_range",
            "<=",
            0.0,
            "nor between neutral and happy: its accuracy among the two - top of guessing's 95 % range",
        ),
        Claim("clip_votes_right", "<=", 2, "real clips whose vote is right (of 7; guessing gets 0.9 on average)"),
        Claim(
            "mean_accuracy", ">=", 0.80, "trained on real faces: mean test accuracy on people never seen in training"
        ),
        Claim(
            "random_minus_subject_beyond_spread",
            "<",
            0.0,
            "the random split scores below the subject split beyond the spread: difference + largest std",
        ),
        Claim("collapsed_runs", "==", 0, "runs that collapsed (learnt nothing)"),
        Claim(
            "random_collapsed_runs", "==", 0, "random-split runs that collapsed (the contrast uses runs that learned)"
        ),
    ),
    "10_seven_expressions": (
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


NOT_SHOWN_ADVICE = (
    "On a reader's own data this usually means the runs had too little to learn from: give the chapter "
    "more frames (more clips, or more frames per clip), a larger IMAGE_SIZE or more EPOCHS in its parameters "
    "cell, and read the paragraphs below as what the default run showed, not what this one did."
)


def lesson_verdict(chapter: str, measured: Mapping[str, float]) -> str | None:
    """None when every claim holds; otherwise a sentence, shown above the table, that names each claim
    this run did not show and says what to change, so that a failed lesson is said in words."""
    missed = [
        f"{claim.text} (measured {value:.3g}, required {claim.op} {claim.threshold:g})"
        for claim, value, ok in check_lesson(chapter, measured)
        if not ok
    ]
    if not missed:
        return None
    return f"⚠️ This run did not show the chapter's lesson: {'; '.join(missed)}. {NOT_SHOWN_ADVICE}"


def show_lesson(chapter: str, measured: Mapping[str, float]) -> None:
    """Display the lesson's table, with the measured numbers recorded for the book's lesson test; a
    claim that does not hold is first said in words (`lesson_verdict`)."""
    from IPython.display import display

    numbers = {key: float(value) for key, value in measured.items()}
    verdict = lesson_verdict(chapter, numbers)
    if verdict is not None:
        print(verdict)
    table = lesson_table(chapter, numbers)
    display(
        {"text/plain": table.to_string(index=False), "text/html": table.to_html(index=False)},
        metadata={LESSON_KEY: {"chapter": chapter, "measured": numbers}},
        raw=True,
    )
