"""`python -m fer_utils train` (a crops folder → a run folder)."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fer_utils.cli.arg_types import (
    add_tta_argument,
    fraction,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    side,
)
from fer_utils.errors import InputError
from fer_utils.interrupts import raise_on_signals
from fer_utils.registry import (
    CLASS_WEIGHTS,
    GIVEN_PROTOCOL,
    INITS,
    MIXES,
    MODEL_NAMES,
    MODEL_OPTIONS,
    PAPER_MODEL,
    PAPER_PROTOCOL,
    PROTOCOLS,
    SEQUENCE_MODELS,
    SEQUENCE_PROTOCOLS,
)
from fer_utils.train.config import PRESETS, TrainConfig
from fer_utils.train.distribute import PEER_TIMEOUT_S, STRATEGY_NAMES, Cluster

if TYPE_CHECKING:
    from fer_utils.train.runs import RunFolder


def _rates(text: str) -> tuple[float, float, float]:
    """argparse type: three comma-separated dropout rates, e.g. 0.3,0.5,0.5."""
    values = tuple(float(v) for v in text.split(","))
    if len(values) != 3 or not all(0 <= v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"need three rates in [0, 1) like 0.3,0.5,0.5, got {text!r}")
    return values  # type: ignore[return-value]


@raise_on_signals()
def _train(args: argparse.Namespace) -> int:
    """Check everything, train one model on a crops folder and write the run folder; warn loudly on collapse.
    Ctrl-C (exit 130) or SIGTERM (exit 143) stop it anywhere, and the half-written run aside is removed."""
    from fer_utils.train.distribute import cluster_for, lost_cluster, make_strategy, run_destination, wait_for_peers

    # a missing or bad TF_CONFIG fails first, before anything is written, as one that another strategy would ignore
    cluster = cluster_for(args.strategy)
    if cluster is None and args.peer_timeout is not None:
        raise InputError("--peer-timeout is how long --strategy multiworker waits for the other tasks: give both")
    if cluster is not None:  # every other task answers, or a one-line error after --peer-timeout
        wait_for_peers(cluster, PEER_TIMEOUT_S if args.peer_timeout is None else args.peer_timeout)
    # then the strategy, before TensorFlow runs any op (check_config builds a model): the multi-worker one
    # configures this process's collective ops, which only a fresh TensorFlow allows
    strategy = make_strategy(args.strategy) if args.strategy else None
    # the modules that import TensorFlow after the wait, which then starts at once
    from fer_utils.faces.preprocess import folder_crop_spec
    from fer_utils.storage.outputs import check_outputs
    from fer_utils.train.config import check_config, check_run_dir
    from fer_utils.train.fit import collapse_message

    paper_only = [f"--{name}" for name in MODEL_OPTIONS if getattr(args, name) is not None]
    if args.model not in (None, PAPER_MODEL) and paper_only:
        raise InputError(
            f"{', '.join(paper_only)} apply to {PAPER_MODEL} only; {args.model} has no such layers, so they would "
            "be recorded but never applied: leave them out, or train --model paper-cnn"
        )
    # every option named as a TrainConfig field; one left out keeps the recipe's value, or TrainConfig's default
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name, None) is not None}
    spec = folder_crop_spec(args.crops)  # as `preprocess` recorded it
    crops_side = spec.side if spec else None
    if args.side is not None and crops_side is not None and args.side > crops_side:
        raise InputError(
            f"--side {args.side} is larger than the crops in {args.crops} ({crops_side}×{crops_side} px, "
            f"preprocess --side {crops_side}): training would upsample them. Leave --side out to train at "
            f"{crops_side}, or preprocess again with --side {args.side}"
        )
    config = TrainConfig.preset(args.recipe, **given) if args.recipe else replace(TrainConfig(), **given)
    preset_side = PRESETS.get(args.recipe, {}).get("image_size", (None,))[0]
    if args.side is not None:
        config = replace(config, image_size=(args.side, args.side))
    elif preset_side is not None and crops_side is not None and preset_side > crops_side:
        print(
            f"note: --recipe {args.recipe} trains at {preset_side} px; the crops are {crops_side} px, so at {crops_side}"
        )
        config = replace(config, image_size=(crops_side, crops_side))
    elif preset_side is None and crops_side is not None:
        config = replace(config, image_size=(crops_side, crops_side))
    check_recipe_schedule(args, config)
    check_config(config)  # before reading the manifest: a bad number fails at once, nothing written
    check_outputs({"--out": args.out}, read_folders=[args.crops], folders={"--out"})
    check_run_dir(args.out)
    with run_destination(args.out, cluster) as out:  # a worker other than the chief: a temporary folder
        try:
            run = _train_run(args, config, strategy, cluster, out)
        except Exception as exc:  # another task of the cluster gone: one line, not TensorFlow's traceback
            lost = lost_cluster(exc, cluster)
            if lost is None:
                raise
            raise lost from None
        metrics = run.metrics()
        print(json.dumps(metrics["test"], indent=2))
        recorded = run.config()
        print(recorded["duplicates"]["line"] + _clean_test_note(recorded["duplicates"]))
        if warning := collapse_message(metrics):
            print(warning)  # once: with the metrics it qualifies
    if cluster is not None and not cluster.chief:
        print(
            f"{cluster.task_type} {cluster.index} trained in step with the chief; its copy was not kept, the chief "
            f"writes {args.out}"
        )
    else:
        print(f"run written to {args.out}")
    return 0


def _train_run(
    args: argparse.Namespace, config: TrainConfig, strategy: Any, cluster: Cluster | None, out: Path
) -> RunFolder:
    """Train `config` on `args.crops` into `out`, on `strategy`'s replicas (config scaled) or, None, one device."""
    from fer_utils.train.distribute import distribution_record, scale_config
    from fer_utils.train.fit import train_run
    from fer_utils.train.pipeline import FaceData
    from fer_utils.train.sequences import ClipData

    distribution = None
    if strategy is not None:
        distribution = distribution_record(args.strategy, strategy, config, cluster)
        config = scale_config(config, strategy.num_replicas_in_sync)
    # without --protocol: splits.resolve_protocol; the given split is said (and what its test side lacks) there
    data = (ClipData if config.model in SEQUENCE_MODELS else FaceData)(args.crops)  # a clip model: one row per clip
    return train_run(None, data, config, out, strategy=strategy, verbose=2, distribution=distribution)


def recipe_text(name: str) -> str:
    """A recipe's settings in a few words, from PRESETS."""
    return ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in PRESETS[name].items())


def _clean_test_note(duplicates: dict) -> str:
    """What the run did with the test images that copy a training image (`splits.audited_split`)."""
    copies = duplicates["test copies of train"]
    if duplicates["clean_test"]:
        return f"; --clean-test left out the {duplicates['removed from test']} test image(s) that copy a training image"
    if copies:
        return f"; {copies} test image(s) copy a training image (evaluate --run scores without them; --clean-test leaves them out)"
    return ""


def check_recipe_schedule(args: argparse.Namespace, config) -> None:
    """InputError when the given patience is not above a recipe's plateau (naming the recipe, not an ungiven option)."""
    if args.recipe is None or args.plateau is not None or not config.plateau or config.plateau < config.patience:
        return
    raise InputError(
        f"--patience {config.patience} is not longer than the plateau of --recipe {args.recipe} ({config.plateau} "
        "epochs without progress halve the learning rate): early stopping would end the run before the rate is "
        f"ever lowered; give --patience above {config.plateau} (the recipe's own is "
        f"{PRESETS[args.recipe].get('patience', 'TrainConfig’s')}), or --plateau below {config.patience} "
        "(0: no schedule)"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train` command."""
    train = subparsers.add_parser("train", help="train a model on a crops folder (manifest) into a run folder")
    add = train.add_argument
    add("--crops", type=Path, required=True, help="crops folder with manifest.csv")
    add(
        "--protocol",
        choices=PROTOCOLS,
        help=f"split protocol (default: {GIVEN_PROTOCOL}, the dataset's own split, when the crops' manifest keeps one, "
        f"e.g. FER-2013's; else the paper's, {PAPER_PROTOCOL}; for a clip model ({', '.join(SEQUENCE_MODELS)}), "
        f"{SEQUENCE_PROTOCOLS[0]})",
    )
    add("--epochs", type=positive_int, help="most epochs (default: TrainConfig's)")
    add("--batch-size", type=positive_int, help="per replica with --strategy (default: TrainConfig's)")
    add("--learning-rate", type=positive_float, help="Adam's learning rate (default: TrainConfig's)")
    add("--model", choices=MODEL_NAMES, help=f"default: {PAPER_MODEL}")
    add(
        "--dropout",
        type=_rates,
        help="paper-cnn dropout after each pooling stage, e.g. SAVEE's 0.3,0.5,0.5 (default: TrainConfig's)",
    )
    add("--l1", type=non_negative_float, help="L1 penalty on the Dense(16) kernel (default: off)")
    add("--init", choices=INITS, help=f"{PAPER_MODEL} kernel initialiser of the ReLU layers (default: TrainConfig's)")
    add("--side", type=side, help="input side in px (default: the crops' side; smaller downscales, larger is refused)")
    add("--patience", type=non_negative_int, help="early-stopping patience in epochs (default: TrainConfig's)")
    add("--seed", type=non_negative_int, help="default: TrainConfig's")
    add(
        "--recipe",
        choices=sorted(PRESETS),
        help="a named recipe (fer_utils.train.config.PRESETS); explicit options override it. "
        + "; ".join(f"{name}: {recipe_text(name)}" for name in sorted(PRESETS))
        + " (wild: for FER-2013-like 48-px faces, about 10 minutes on 2 CPU cores; measured in benchmarks/README.md)",
    )
    add(
        "--augment",
        action=argparse.BooleanOptionalAction,
        help="augment the training images: flips, ±5%% shift and zoom (a recipe sets its own strength); "
        "--no-augment turns a recipe's off (default: off)",
    )
    add(
        "--class-weights",
        choices=CLASS_WEIGHTS,
        help="balanced: weigh each class's loss by n / (classes × its count) on the training side, which raises the "
        "recall of rare classes and costs accuracy (FER-2013: test accuracy 0.489 against 0.560; default: none)",
    )
    add(
        "--plateau",
        type=non_negative_int,
        help="halve the learning rate after N epochs without progress, N below --patience (default: 0, off)",
    )
    add(
        "--clean-test",
        action=argparse.BooleanOptionalAction,
        help="leave out the test images that copy a training image, exactly or re-encoded or resized (the "
        "crops' duplicate audit; recorded in config.json). Default: keep them, and say how many there are",
    )
    add(
        "--time-budget",
        type=positive_float,
        metavar="MINUTES",
        help="end training within MINUTES: the first epochs are timed, then the run (and its schedule) is set to the "
        "epochs that fit, at most --epochs (time_budget.json); the same seed then gives the same weights only on a "
        "machine as fast (default: no budget, the recipe's epochs)",
    )
    # options for generalisation (TrainConfig's, off by default; benchmarks/wild_options.py measures them)
    add(
        "--ema",
        dest="use_ema",
        action=argparse.BooleanOptionalAction,
        help="keep an exponential moving average of the weights (Keras's optimizer EMA), scored every epoch and "
        "held by the model at the end (default: off)",
    )
    add("--bn-momentum", type=fraction, help="wild-cnn's batch-normalisation momentum (default: TrainConfig's, 0.9)")
    add("--width", type=positive_float, help="wild-cnn's width multiplier of its blocks' widths (default: 1)")
    add("--mix", choices=MIXES, help="mix each training image with another of its batch, labels too (default: none)")
    add(
        "--random-erasing",
        type=non_negative_float,
        metavar="P",
        help="erase a random rectangle of each training image with probability P (default: 0, off)",
    )
    add(
        "--intensity",
        type=non_negative_float,
        metavar="S",
        help="jitter the training images' brightness, contrast and gamma and blur some, at strength S in [0, 1] "
        "(default: 0, off)",
    )
    add_tta_argument(train, " its model is served with, recorded in config.json for predict, evaluate and export")
    add(
        "--strategy",
        choices=STRATEGY_NAMES,
        help="train on several devices: mirrored, this machine's GPUs (e.g. Colab's; without GPUs its CPU); "
        'multiworker, several machines, each run with the same command and its own TF_CONFIG (book/command_line.md, "Training on a '
        'cluster"), the chief (worker 0) writing --out. Linear scaling rule: --batch-size is then per replica, the '
        "global batch and the learning rate × the replicas; config.json records both (default: one device)",
    )
    add(
        "--peer-timeout",
        type=positive_float,
        metavar="SECONDS",
        help="with --strategy multiworker: how long to wait for every other task of TF_CONFIG's cluster to answer "
        f"on its port before giving up with an error naming those that did not (default: {PEER_TIMEOUT_S:g})",
    )
    add("--out", type=Path, required=True, help="new run folder to write (never overwritten)")
    train.set_defaults(handler=_train)
