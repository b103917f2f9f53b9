"""The checkers of chapter 6, evaluation protocols: each computes the expected answer from the real data it is given."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from fer_utils.book.exercises.feedback import Feedback, as_number, check_number, coding_exercise, run_student


def check_sibling_share(answer: object, train: pd.DataFrame, test: pd.DataFrame) -> Feedback:
    """The fraction of test frames that have a sibling in training (another frame of their clip there)."""
    expected = float(test["clip_id"].isin(set(train["clip_id"])).mean())
    feedback = check_number(answer, expected, "the share of test frames with a sibling in training", 1e-3, 1e-3)
    shared = len(set(train["clip_id"]) & set(test["clip_id"]))
    if not feedback.ok and as_number(answer) == shared != expected:
        return Feedback(
            False,
            f"{shared} is the number of clips on both sides; the question asks for the fraction of "
            "test frames whose clip also has frames in training.",
        )
    return feedback


def _two_sides(result: object) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) of a student's split: a `splits.Split` or a (train, test) pair of tables."""
    train, test = (result.train, result.test) if hasattr(result, "train") and hasattr(result, "test") else result
    if type(train) is not pd.DataFrame or type(test) is not pd.DataFrame:
        raise TypeError(
            f"a split is two pandas DataFrames (train, test); got {type(train).__name__}, {type(test).__name__}"
        )
    return train, test


@coding_exercise
def check_subject_split(
    split: Callable[..., object], frames: pd.DataFrame, n_test: int = 2, seeds: Sequence[int] = (0, 1, 2, 3, 4)
) -> Feedback:
    """`split(frames, n_test, seed)` must hold out exactly `n_test` actors, drawn from `seed`, with all their
    frames and nothing else on the test side, and pass `splits.check_leakage`; checked on `frames`."""
    from fer_utils.data.splits import Split, check_leakage

    held = {}
    for seed in seeds:
        train, test = _two_sides(run_student(split, frames, n_test, seed))
        both = train.index.intersection(test.index)
        if len(both):
            return Feedback(
                False,
                f"frame {frames.loc[both[0], 'image'] if 'image' in frames else both[0]} "
                f"(row {both[0]}) is on both sides: every frame goes to exactly one side.",
            )
        lost = frames.index.difference(train.index.union(test.index))
        if len(lost):
            return Feedback(
                False,
                f"{len(lost)} of {len(frames)} frames are on neither side (e.g. one of clip "
                f"{frames.loc[lost[0], 'clip_id']}): keep the index of `frames` and every row.",
            )
        report = check_leakage(Split(train=train, test=test))
        if report.shared_clips:
            clip = report.shared_clips[0]
            actor = frames.loc[frames["clip_id"].astype(str) == clip, "subject"].iloc[0]
            return Feedback(
                False,
                f"your split (seed {seed}) puts clip {clip} on both sides (some of its frames in "
                f"training, others in the test set), and with it actor {actor}. Hold out whole actors.",
            )
        if report.shared_subjects:
            actor = report.shared_subjects[0]
            in_train = train.loc[train["subject"].astype(str) == actor, "clip_id"].iloc[0]
            in_test = test.loc[test["subject"].astype(str) == actor, "clip_id"].iloc[0]
            return Feedback(
                False,
                f"your split (seed {seed}) puts actor {actor} on both sides: clip {in_train} is in "
                f"training and clip {in_test} in the test set. Hold out whole actors.",
            )
        actors = sorted(map(str, test["subject"].unique()))
        if len(actors) != n_test:
            return Feedback(
                False,
                f"with seed {seed} your test side holds {len(actors)} actor(s) ({', '.join(actors)}), not {n_test}.",
            )
        again = sorted(map(str, _two_sides(run_student(split, frames, n_test, seed))[1]["subject"].unique()))
        if again != actors:
            return Feedback(
                False,
                f"seed {seed} held out {actors} once and {again} the next time: draw the actors "
                "with a generator seeded by `seed` (e.g. np.random.default_rng(seed)).",
            )
        held[seed] = actors
    if len({tuple(a) for a in held.values()}) == 1:
        return Feedback(
            False,
            f"every seed holds out the same actors {next(iter(held.values()))}: draw them at random "
            "from `seed`, so that each seed tests on other people.",
        )
    shown = "; ".join(f"seed {seed}: {', '.join(a)}" for seed, a in list(held.items())[:3])
    return Feedback(
        True,
        f"no clip and no actor is on both sides for any of the seeds {list(seeds)}, and each holds out "
        f"{n_test} whole actors ({shown}, ...).",
    )
