"""What a chapter says about its data, the checks it runs before it starts (a default adapted to any dataset
with a note, or an `InputError` naming the parameter to change), and its experiments over seeds."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fer_utils.book.artifacts import train
from fer_utils.errors import InputError
from fer_utils.registry import GIVEN_PROTOCOL, PAPER_PROTOCOL
from fer_utils.train.config import TrainConfig

if TYPE_CHECKING:
    from fer_utils.train.pipeline import FaceData
    from fer_utils.train.runs import RunFolder

# The fewest groups (subjects or clips) a split with a validation side needs: train, validation, test.
MIN_GROUPS_WITH_VAL = 3
# The chapters' parameters that set a field of their runs' TrainConfig (a side sets both of image_size's), checked by
# `fer_book execute --param` before anything is staged (`check_run_parameters`).
RUN_PARAMETERS: dict[str, str] = {
    **dict.fromkeys(("EPOCHS", "SHORT_EPOCHS", "EXPERIMENT_EPOCHS", "PUBLISHED_EPOCHS", "LONDON_EPOCHS"), "epochs"),
    **dict.fromkeys(("IMAGE_SIZE", "EXPERIMENT_SIZE", "PUBLISHED_SIZE", "LONDON_SIZE"), "image_size"),
    **dict.fromkeys(("LEARNING_RATE", "LONDON_LEARNING_RATE"), "learning_rate"),
    **dict.fromkeys(("PATIENCE", "PUBLISHED_PATIENCE"), "patience"),
    "BATCH_SIZE": "batch_size",
}


def describe_frames(frames: pd.DataFrame) -> str:
    """One line: how many frames, clips, subjects and emotions a frame table holds."""
    return (
        f"{len(frames)} frames, {frames['clip_id'].nunique()} clips, {frames['subject'].nunique()} subjects, "
        f"{frames['emotion'].nunique()} emotions ({', '.join(sorted(frames['emotion'].unique()))})"
    )


def index_table(indexes: Mapping[str, object]) -> pd.DataFrame:
    """One row per named clip index (`data.corpora.DatasetIndex`): its files, subjects, emotions and rejected files."""
    return pd.DataFrame(
        {
            "set": name,
            "files": len(index.clips),
            "subjects": index.clips["subject"].nunique(),
            "emotions": ", ".join(sorted(index.clips["emotion"].unique())),
            "rejected": len(index.rejected),
        }
        for name, index in indexes.items()
    )


def check_run_parameters(parameters: Mapping[str, object]) -> None:
    """InputError naming the first of a chapter's `parameters` (RUN_PARAMETERS) that no run can train with, found as
    `check_config` finds it, but before the chapter makes crops or trains anything."""
    from fer_utils.train.config import check_config

    for name, value in parameters.items():
        field = RUN_PARAMETERS.get(name)
        if field is None:
            continue
        kinds = (int, float) if field == "learning_rate" else (int,)
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise InputError(
                f"{name} = {value!r} cannot be used: it must be a {'number' if float in kinds else 'whole number'}"
            )
        setting = (value, value) if field == "image_size" else value
        try:
            check_config(replace(TrainConfig.preset("reference"), **{field: setting}))
        except InputError as problem:
            raise InputError(f"{name} = {value!r} cannot be used: {problem}") from None


def check_frames(
    frames: pd.DataFrame, protocols: Sequence[str | None] = ("random",), *, what: str = "this chapter"
) -> None:
    """Stop with an InputError, before any training, when `frames` lacks 2 emotions or the groups `protocols` split."""
    if frames.empty:
        raise InputError(
            f"{what} found no usable face crops: check DATASET and DATA_DIR, and the "
            "preprocessing statuses in the crops folder's manifest.csv"
        )
    emotions = frames["emotion"].nunique()
    if emotions < 2:
        raise InputError(
            f"{what} needs at least 2 emotions; the data has {emotions} "
            f"({', '.join(frames['emotion'].unique())}): point DATA_DIR at a dataset with more"
        )
    for protocol in protocols:
        if protocol in (None, PAPER_PROTOCOL, GIVEN_PROTOCOL):  # no groups to count
            continue
        column, noun = ("subject", "subjects") if protocol == "subject" else ("clip_id", "clips")
        groups = frames[column].nunique()
        if groups < MIN_GROUPS_WITH_VAL:
            others = [p for p in protocols if p != protocol]
            raise InputError(
                f"the {protocol} split needs at least {MIN_GROUPS_WITH_VAL} {noun} (train, validation, test); "
                f"the data has {groups}: use a dataset with more {noun}"
                + (f", or set PROTOCOLS = {others}" if others else "")
            )


def clamp_subjects(frames: pd.DataFrame, wanted: int | None) -> list[str] | None:
    """The first `wanted` subjects (sorted), or None for all; more than the data has takes all, with a note."""
    available = sorted(frames["subject"].unique())
    if wanted is None:
        return None
    if wanted > len(available):
        print(
            f"note: SUBJECTS = {wanted}, but the data has {len(available)} subjects; using all of them "
            "(set SUBJECTS = None to silence this)"
        )
        return available
    return available[:wanted]


def clamp_count(wanted: int, available: int, name: str) -> int:
    """`wanted` items, or all `available` ones (with a printed note) when the data has fewer."""
    if wanted > available:
        print(f"note: {name} = {wanted}, but only {available} are available; using {available}")
        return available
    return wanted


def train_variants(
    build: Callable | None,
    data: FaceData,
    config: TrainConfig,
    variants: Mapping[str, Mapping[str, object]],
    seeds: Sequence[int],
) -> pd.DataFrame:
    """A controlled experiment as a table: one row per variant and seed, with its run
    folder (`run`), the settings the variant changes and the run's scores
    (`RunFolder.scores`).

    Each run changes `config` only by its variant (e.g. `{"dropout": (0.0, 0.5, 0.5)}`)
    and its seed (another split, other initial weights). Every variant must name the
    same settings, and none the seed, so that two things never vary at once. Runs are
    cached (`artifacts.train`).
    """
    changed = {name: sorted(changes) for name, changes in variants.items()}
    if any("seed" in names for names in changed.values()):
        problem = "a variant sets the seed, which the experiment draws from"
        raise InputError(f"{problem} {list(seeds)}: {changed}")
    if len({tuple(names) for names in changed.values()}) > 1:
        problem = "the variants change different settings, so they would vary"
        raise InputError(f"{problem} two things at once: {changed}")
    rows = []
    for name, changes in variants.items():
        for seed in seeds:
            run = train(build, data, replace(config, **changes, seed=seed))
            rows.append(
                {"variant": name, "seed": seed, "run": run, **changes, **run.scores()},
            )
    return pd.DataFrame(rows)


def histories(runs: pd.DataFrame, seed: int, by: str = "variant") -> dict[str, pd.DataFrame]:
    """Each group's training history for `seed` in a `train_variants` table, keyed by its `by` value."""
    chosen = runs[runs["seed"] == seed]
    return {name: run.history() for name, run in zip(chosen[by], chosen["run"])}


def summarize(
    runs: pd.DataFrame,
    by: str | Sequence[str],
    metrics: Sequence[str],
    *,
    compare: Mapping[str, str] | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    ci: bool = False,
) -> tuple[pd.DataFrame, list[str]]:
    """Per group of `by`, `metrics` as `mean_std` (`ci`: 95 % CI), and a `difference_note` per metric and pair."""
    keys = [by] if isinstance(by, str) else list(by)
    rows = []
    for values, group in runs.groupby(keys, sort=False):
        row = dict(zip(keys, values))  # pandas >= 2: a tuple, even for one key
        for metric in metrics:
            row[metric] = mean_std(group[metric], alone="")  # the row's `seeds` says how many
            if ci:
                row[f"{metric}, 95 % CI"] = mean_ci(group[metric])
        row["seeds"] = len(group)
        if "collapsed" in group:
            row["collapsed runs"] = int(group["collapsed"].sum())
        rows.append(row)
    labels = list(dict.fromkeys(runs[keys[0]]))
    pairs = [(label, labels[0]) for label in labels[1:]] if pairs is None else pairs
    unknown = sorted({label for pair in pairs for label in pair} - set(labels))
    if unknown:
        raise InputError(f"no runs of {unknown} in the {keys[0]!r} column (it holds {labels})")
    notes = [
        difference_note(*(runs.loc[runs[keys[0]] == label, metric] for label in (a, b)), a, b, words)
        for metric, words in (compare or {}).items()
        for a, b in pairs
    ]
    return pd.DataFrame(rows), notes


def runs_stopped_by_the_cap(runs: pd.DataFrame, patience: int) -> int:
    """How many runs the epoch cap stopped, not early stopping (fewer than `patience` epochs after their best)."""
    return int((runs["epochs"] - runs["best epoch"] < patience).sum())


NO_SPREAD = "(one run: no spread)"


def mean_std(values: Sequence[float], *, alone: str = NO_SPREAD) -> str:
    """`mean ± std` (ddof=1), missing values counted, a lone value followed by `alone`; counts show one decimal."""
    array = np.asarray(values, dtype=float)
    missing = int(np.isnan(array).sum())
    array = array[~np.isnan(array)]
    note = f" ({missing} missing)" if missing else ""
    if len(array) == 0:
        return f"no value{note}"
    counts = bool(np.all(array == np.round(array)))
    if len(array) == 1:
        return f"{array[0]:{'.0f' if counts else '.3f'}}{' ' + alone if alone else ''}{note}"
    spec = ".1f" if counts else ".3f"
    return f"{array.mean():{spec}} ± {array.std(ddof=1):{spec}}{note}"


def difference_note(a: Sequence[float], b: Sequence[float], name_a: str, name_b: str, metric: str) -> str:
    """A sentence comparing two settings measured over seeds: a difference within the spread is called that."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = a.mean() - b.mean()
    if min(len(a), len(b)) < 2:
        return (
            f"{name_a} minus {name_b}: {diff:+.3f} {metric} (one run each: no spread measured, so no "
            "verdict; compare it with the spread of runs of the same size, or train more seeds)"
        )
    spread = seed_spread(a, b)
    verdict = (  # |diff| > spread: beyond_spread(a, b) or beyond_spread(b, a) is positive
        "larger than the spread over seeds"
        if abs(diff) > spread
        else "within the spread over seeds: not a difference these runs can show"
    )
    return f"{name_a} minus {name_b}: {diff:+.3f} {metric} ({len(a)} and {len(b)} seeds; std up to {spread:.3f}), {verdict}"


def seed_spread(*groups: Sequence[float]) -> float:
    """The largest sample std (ddof=1) of `groups`: the spread a difference must exceed; a lone value has none."""
    return max((float(np.std(np.asarray(g, dtype=float), ddof=1)) for g in groups if len(g) > 1), default=0.0)


def beyond_spread(a: Sequence[float], b: Sequence[float]) -> float:
    """How far mean(a) exceeds mean(b) beyond `seed_spread` (`difference_note`'s verdict); `b` may be one value."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(a.mean() - b.mean() - seed_spread(a, b))


def confidence_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """The `level` confidence interval of the mean of `values` (Student's t, sample std; NaN for one value)."""
    from scipy import stats

    array = np.asarray(values, dtype=float)
    if len(array) < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.5 + level / 2, len(array) - 1) * array.std(ddof=1) / np.sqrt(len(array))
    return float(array.mean() - half), float(array.mean() + half)


def mean_ci(values: Sequence[float], level: float = 0.95) -> str:
    """`[low, high]` of `confidence_interval`, for tables ("needs 2 runs or more" for a single run)."""
    low, high = confidence_interval(values, level)
    return "needs 2 runs or more" if np.isnan(low) else f"[{low:.3f}, {high:.3f}]"


def guessing_ceiling(chance: float, frames: int, level: float = 0.95) -> float:
    """Top of the `level` range of accuracies that guessing at `chance` reaches on `frames` faces (binomial, normal)."""
    from scipy import stats

    return float(chance + stats.norm.ppf(0.5 + level / 2) * np.sqrt(chance * (1 - chance) / frames))


def faces_scored(run: RunFolder, group: str = "subject") -> pd.DataFrame:
    """One row per test face of `run`: its `group` (the person, by default) and whether the run got it `correct`."""
    table, probabilities, classes = run.test_predictions()
    right = np.asarray(classes)[probabilities.argmax(axis=1)] == table["emotion"].to_numpy()
    return pd.DataFrame({"group": table[group].astype(str).to_numpy(), "correct": right})


def bootstrap_interval(
    runs: Sequence[pd.DataFrame], level: float = 0.95, draws: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """The `level` interval of the mean test accuracy over runs, resampling runs and their test groups (people)."""
    if not runs:
        raise ValueError("bootstrap_interval needs at least one run's test faces")
    rng = np.random.default_rng(seed)
    groups = [t.groupby("group")["correct"].agg(["sum", "count"]).to_numpy(dtype=float) for t in runs]
    means = np.empty(draws)
    for d in range(draws):
        accuracies = []
        for k in rng.integers(len(groups), size=len(groups)):
            right, faces = groups[k][rng.integers(len(groups[k]), size=len(groups[k]))].sum(axis=0)
            accuracies.append(right / faces)
        means[d] = np.mean(accuracies)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)
