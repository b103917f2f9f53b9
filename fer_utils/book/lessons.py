"""The claims a chapter's text makes about its run, checked on that run (issues 16 and 34).

A chapter that teaches with a run (overfitting, leakage, a result on real faces) says what the run shows
in a paragraph written from its numbers (`fer_utils.book.prose`); each sentence that makes a claim is
checked here over a number the run measured, e.g. "trained on real faces it recognises most expressions:
mean test accuracy over seeds, checked as ≥ 0.80". The claims and their thresholds are defined here,
once. The chapter calls `show_lesson`, which shows the claims beside this run's numbers in a table folded
away in the HTML (a `<details>` toggle, open when a claim does not hold, with a sentence above it that
says so in words), each claim linked to its sentence (the anchor `{#name}` of the paragraph), and
records the numbers in the output's metadata (`LESSON_KEY`) so that `tests/test_lessons.py` can check the
executed book with `check_lesson`. A run that does not bear out its chapter's text is then a failing test,
not a page whose prose says the opposite of its numbers.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass

# The output metadata key that carries a lesson's numbers in an executed notebook (beside its table).
LESSON_KEY = "fer_lesson"

COMPARISONS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}
# A strict claim ("a beats b": "> 0") must clear its threshold by more than the rounding of float32 scores: two
# equal accuracies can differ by about 1e-8 once subtracted, and that tie is not the claimed difference.
STRICT_MARGIN = {">": 1e-6, "<": -1e-6}


@dataclass(frozen=True)
class Claim:
    """One checkable statement: `measured[name] <op> threshold`, said in words by `text`."""

    name: str
    op: str
    threshold: float
    text: str

    def holds(self, value: float) -> bool:
        """Whether `value` satisfies the claim (a missing or NaN value never does, nor a tie with a strict
        claim's threshold within float32 rounding: `STRICT_MARGIN`)."""
        return value == value and bool(COMPARISONS[self.op](value, self.threshold + STRICT_MARGIN.get(self.op, 0.0)))


LESSONS: dict[str, tuple[Claim, ...]] = {
    "04_training": (
        Claim(
            "short_loss_over_chance",
            "<=",
            0.7,
            "the short run learns: its last training loss as a share of a uniform guess's (ln C)",
        ),
        Claim(
            "epochs_after_best",
            ">=",
            1,
            "every reference run trained past its best epoch (it converged): fewest epochs after the best, over seeds",
        ),
        Claim("collapsed_runs", "==", 0, "no reference run collapsed (learnt nothing): runs that collapsed"),
    ),
    "05_regularization": (
        Claim(
            "baseline_train_accuracy",
            ">=",
            0.9,
            "without regularization the network fits its training faces: mean final training accuracy",
        ),
        Claim(
            "baseline_gap",
            ">=",
            0.15,
            "without regularization it overfits: mean train - validation accuracy gap at the last epoch",
        ),
        Claim(
            "gap_shrink_over_spread",
            ">",
            0.0,
            "the paper's remedy shrinks that gap by more than the spread over seeds: shrink - largest std",
        ),
        Claim(  # issue 46: the gap is read from both sides scored in inference mode, not from Keras's training log
            "remedy_logged_gap_understates",
            ">",
            0.0,
            "with dropout, the training accuracy Keras logs understates the remedy's gap: gap in inference mode - logged gap",
        ),
        Claim(
            "remedy_test_change_beyond_spread",
            "<=",
            0.0,
            "the remedy leaves the final weights' test accuracy where it was, within the spread: |with - without| - largest std",
        ),
        Claim(
            "live_units_gain_over_spread",
            ">",
            0.0,
            "the remedy keeps more dense units alive: live units with - without - largest std",
        ),
        Claim(
            "collapsed_runs",
            "==",
            0,
            "no run collapsed (learnt nothing), the published network's included: runs that collapsed",
        ),
        Claim(
            "published_over_majority",
            ">=",
            0.05,
            "the published network (180x180) learns: its test accuracy - always answering the commonest expression",
        ),
        Claim(
            "published_stopped_by_the_cap",
            "==",
            0,
            "the published network is trained to convergence: it stopped PUBLISHED_PATIENCE epochs after its best "
            "one, before the PUBLISHED_EPOCHS cap (1: stopped by the cap)",
        ),
        Claim(
            "published_epoch_cost_ratio",
            ">=",
            6.0,
            "an epoch of the published network costs more than 6 light ones: ratio of seconds per epoch",
        ),
    ),
    "06_evaluation_protocols": (
        Claim(
            "min_train_accuracy",
            ">=",
            0.8,
            "every run fits most of its training frames (else it says nothing about a split): lowest final training accuracy",
        ),
        Claim(
            "random_minus_subject_over_spread",
            ">",
            0.0,
            "the random split scores above the subject split, beyond the spread: difference - largest std",
        ),
    ),
    "07_comparison": (
        Claim(
            "runs_stopped_by_the_cap",
            "==",
            0,
            "every run stopped on its own, not at the EPOCHS cap: runs under PATIENCE epochs past their best one",
        ),
        Claim(
            "min_margin_over_chance",
            ">",
            0.0,
            "every model scores above chance beyond its spread: lowest (mean - chance - std)",
        ),
        Claim(
            "paper_cnn_training_over_test_at_best",
            ">",
            0.0,
            "at its best epoch the usual order returns: the paper CNN's training accuracy - its test accuracy",
        ),
        Claim(
            "wild_cnn_flops_over_mini_xception",
            ">",
            1.0,
            "the book's network needs more FLOPs per face than mini-Xception: the ratio of their MFLOPs at 48 px",
        ),
        Claim(
            "wild_cnn_flop_rate_over_mini_xception",
            ">",
            2.0,
            "yet on the CPU it computes more than twice mini-Xception's FLOPs per second: the ratio of their "
            "training GFLOP/s (a time ratio alone moves with the machine and its load)",
        ),
        Claim(
            "cnn_lstm_margin_over_chance",
            ">",
            0,
            "the CNN-LSTM learns the clips: its mean clip accuracy minus chance minus its std over seeds",
        ),
        Claim(
            "clip_race_runs_stopped_by_the_cap",
            "==",
            0,
            "every run of the clip race stopped on its own before the cap: runs stopped by the cap",
        ),
    ),
    "08_deployment": (
        Claim(
            "int8_accuracy_change",
            ">=",
            -0.02,
            "int8 keeps the accuracy within 2 points: its test accuracy - the float32 TFLite model's",
        ),
        Claim(
            "int8_size_share",
            "<=",
            0.35,
            "int8 makes the model about four times smaller: its bytes as a share of the float32 TFLite model's",
        ),
        Claim(
            "real_clip_vote_right",
            "==",
            0,
            "on the real surprised RAVDESS clip the sample-trained model's vote is wrong: right votes (of 1)",
        ),
        Claim(
            "real_clip_vote_neutral",
            "==",
            1,
            "it calls that clip neutral: neutral votes (of 1)",
        ),
        Claim(
            "xla_max_diff_vs_eager",
            "<=",
            1e-4,
            "XLA's compiled forward pass gives eager Keras's probabilities: largest absolute difference",
        ),
        Claim(
            "tflite_over_function_at_batch_1",
            ">=",
            2,
            "TFLite's float32 model runs a frame faster than the plain tf.function: the smaller of the two "
            "models' speed ratios at batch 1",
        ),
    ),
    "09_real_faces": (
        Claim(
            "transfer_over_chance_range",
            "<=",
            0.0,
            "the sample's model does not transfer to the London faces: its accuracy - top of guessing's 95 % range",
        ),
        Claim(
            "transfer_two_way_over_chance_range",
            "<=",
            0.0,
            "nor between neutral and happy alone: its accuracy among the two - top of guessing's 95 % range",
        ),
        Claim(
            "mean_accuracy",
            ">=",
            0.65,
            "trained on real faces, it recognises the expressions of people it never saw well above chance (0.5): "
            "mean test accuracy over seeds",
        ),
    ),
    "10_seven_expressions": (
        Claim(
            "real_frames",
            ">=",
            250,
            "every model is scored on the same real frames, enough of them: frames scored (fewest over runs)",
        ),
        Claim("collapsed_runs", "==", 0, "no run collapsed (learnt nothing): runs that collapsed"),
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
            "on real faces the peer (trained on real photographs) leads on macro F1 beyond the spread: lead - std",
        ),
        Claim(
            "peer_lead_over_its_network_on_generated_faces",
            ">",
            0.0,
            "the peer also leads its own network trained on this chapter's training data: real macro F1 lead - std",
        ),
        Claim(
            "book_accuracy_lost_on_real_faces",
            ">",
            0.0,
            "the book's best model's accuracy on its own data's held-out faces does not carry over to real faces: "
            "its own test side's mean - the real frames' mean - std",
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


def claims_hold(chapter: str, measured: Mapping[str, float]) -> dict[str, bool]:
    """Whether each claim of `chapter` holds on `measured`, by name: what `prose.paragraph(..., lesson=)`
    needs to mark a sentence this run does not bear out (the paragraph comes before its claims table)."""
    return {claim.name: ok for claim, _, ok in check_lesson(chapter, measured)}


# The table's heading, and how a claim's threshold is written in it.
CLAIMS_TITLE = "Claims in the text, checked on this run"
SYMBOLS = {">=": "≥", "<=": "≤", ">": ">", "<": "<", "==": "="}


def checked_as(claim: Claim) -> str:
    """How the claim is checked, e.g. "≥ 0.9"."""
    return f"{SYMBOLS[claim.op]} {claim.threshold:g}"


def lesson_table(chapter: str, measured: Mapping[str, float]):
    """The claims as a table (pandas): the claim in the text, this run's number, how it is checked, whether
    it holds."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "claim in the text": claim.text,
                "this run": f"{value:.3g}",
                "checked as": checked_as(claim),
                "holds": "✅ yes" if ok else "❌ no",
            }
            for claim, value, ok in check_lesson(chapter, measured)
        ]
    )


def lesson_html(chapter: str, measured: Mapping[str, float]) -> str:
    """The claims table as HTML, folded in a `<details>` toggle (open when a claim does not hold), each
    claim linked to the sentence of the text that it checks (`prose.ANCHOR_PREFIX` + its name)."""
    from html import escape

    from fer_utils.book.prose import ANCHOR_PREFIX

    checks = check_lesson(chapter, measured)
    failed = sum(not ok for _, _, ok in checks)
    rows = "".join(
        f'<tr><td><a href="#{ANCHOR_PREFIX}{claim.name}">{escape(claim.text)}</a></td><td>{value:.3g}</td>'
        f"<td>{escape(checked_as(claim))}</td><td>{'✅ yes' if ok else '❌ no'}</td></tr>"
        for claim, value, ok in checks
    )
    state = f"{failed} of {len(checks)} do not hold" if failed else f"all {len(checks)} hold"
    return (
        f'<details class="fer-claims"{" open" if failed else ""}><summary>{CLAIMS_TITLE}: {state}</summary>'
        '<table class="dataframe"><thead><tr><th>claim in the text (a link to its sentence)</th><th>this run</th>'
        f"<th>checked as</th><th>holds</th></tr></thead><tbody>{rows}</tbody></table></details>"
    )


NOT_SHOWN_ADVICE = (
    "On a reader's own data this usually means the runs had too little to learn from: give the chapter "
    "more frames (more clips, or more frames per clip), a larger IMAGE_SIZE or more EPOCHS in its parameters "
    "cell. The sentences of the text that this run does not bear out are marked as not shown."
)


def lesson_verdict(chapter: str, measured: Mapping[str, float]) -> str | None:
    """None when every claim holds; otherwise a sentence, shown above the table, that names each claim
    this run did not bear out and says what to change, so that a failed claim is said in words."""
    missed = [
        f"{claim.text} (this run {value:.3g}, checked as {checked_as(claim)})"
        for claim, value, ok in check_lesson(chapter, measured)
        if not ok
    ]
    if not missed:
        return None
    return f"⚠️ This run does not bear out what the chapter's text claims: {'; '.join(missed)}. {NOT_SHOWN_ADVICE}"


def show_lesson(chapter: str, measured: Mapping[str, float]) -> None:
    """Display the claims table (`lesson_html`), with the measured numbers recorded for the book's lesson
    test; a claim that does not hold is first said in words (`lesson_verdict`)."""
    from IPython.display import display

    numbers = {key: float(value) for key, value in measured.items()}
    verdict = lesson_verdict(chapter, numbers)
    if verdict is not None:
        print(verdict)
    table = lesson_table(chapter, numbers)
    display(
        {"text/plain": table.to_string(index=False), "text/html": lesson_html(chapter, numbers)},
        metadata={LESSON_KEY: {"chapter": chapter, "measured": numbers}},
        raw=True,
    )
