"""`python -m fer_utils train` (a crops folder → a run folder).

Arguments only: the handler imports TensorFlow and the fer_utils training modules when it runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fer_utils.cli.types import non_negative_float, non_negative_int, positive_float, positive_int, side
from fer_utils.registry import (
    CLASS_WEIGHTS,
    GIVEN_PROTOCOL,
    INITS,
    MODEL_NAMES,
    PAPER_MODEL,
    PAPER_PROTOCOL,
    PROTOCOLS,
    TRAINING_RECIPES,
)


def _rates(text: str) -> tuple[float, float, float]:
    """argparse type: three comma-separated dropout rates, e.g. 0.3,0.5,0.5."""
    values = tuple(float(v) for v in text.split(","))
    if len(values) != 3 or not all(0 <= v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"need three rates in [0, 1) like 0.3,0.5,0.5, got {text!r}")
    return values  # type: ignore[return-value]


# `train` options that only the paper CNN's builder takes (dropout stages, L1 on Dense(16), initialiser).
PAPER_CNN_OPTIONS = ("dropout", "l1", "init")

# TrainConfig field for each `train` option; an option left out keeps TrainConfig's default.
TRAIN_FIELDS = (
    "model",
    "epochs",
    "batch_size",
    "learning_rate",
    "dropout",
    "l1",
    "seed",
    "protocol",
    "patience",
    "init",
    "augment",
    "class_weights",
    "plateau",
)


def _train(args: argparse.Namespace) -> int:
    """Check everything, train one model on a crops folder and write the run folder; warn loudly on collapse."""
    from dataclasses import replace

    from fer_utils.diagnosis import collapse_message
    from fer_utils.errors import TrainingError
    from fer_utils.manifest import load_manifest, usable_frames
    from fer_utils.outputs import check_outputs
    from fer_utils.preprocess_folder import crop_side
    from fer_utils.splits import default_protocol, split_note
    from fer_utils.train_checks import check_config, check_run_dir
    from fer_utils.train_config import TrainConfig
    from fer_utils.training import train_run

    paper_only = [f"--{name}" for name in PAPER_CNN_OPTIONS if getattr(args, name) is not None]
    if args.model not in (None, PAPER_MODEL) and paper_only:
        raise TrainingError(
            f"{', '.join(paper_only)} apply to {PAPER_MODEL} only; {args.model} has no such layers, so they would "
            "be recorded but never applied: leave them out, or train --model paper-cnn"
        )
    given = {**TRAINING_RECIPES.get(args.recipe, {})}  # the recipe first: explicit options override it
    given.update({field: getattr(args, field) for field in TRAIN_FIELDS if getattr(args, field) is not None})
    crops_side = crop_side(args.crops)  # as `preprocess --size` recorded it
    if args.size is not None and crops_side is not None and args.size > crops_side:
        raise TrainingError(
            f"--size {args.size} is larger than the crops in {args.crops} ({crops_side}×{crops_side} px, "
            f"preprocess --size {crops_side}): training would upsample them. Leave --size out to train at "
            f"{crops_side}, or preprocess again with --size {args.size}"
        )
    if args.size is not None or crops_side is not None:
        given["image_size"] = (args.size or crops_side,) * 2
    config = replace(TrainConfig(), **given)
    check_config(config)  # before reading the manifest: a bad number fails at once, nothing written
    check_outputs({"--out": args.out}, read_folders=[args.crops], folders={"--out"})
    check_run_dir(args.out)
    manifest = load_manifest(args.crops)
    if args.protocol is None:  # the dataset's own split when the manifest keeps one, else the paper's
        config = replace(config, protocol=default_protocol(manifest))
        if config.protocol == GIVEN_PROTOCOL:
            print(split_note(usable_frames(manifest)))
    result = train_run(config, manifest, args.crops, args.out, verbose=2)
    print(json.dumps(result.metrics["test"], indent=2))
    warning = collapse_message(result.metrics)
    if warning:
        print(warning)  # once: with the metrics it qualifies
    print(f"run written to {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train` command."""
    train = subparsers.add_parser("train", help="train a model on a crops folder (manifest) into a run folder")
    train.add_argument("--crops", type=Path, required=True, help="crops folder with manifest.csv")
    train.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        help=f"split protocol (default: {GIVEN_PROTOCOL}, the dataset's own split, when the crops' manifest keeps "
        f"one, e.g. FER-2013's or train/ and test/ folders; else the paper's, {PAPER_PROTOCOL})",
    )
    train.add_argument("--epochs", type=positive_int, help="most epochs (default: TrainConfig's)")
    train.add_argument("--batch-size", type=positive_int, help="default: TrainConfig's")
    train.add_argument("--learning-rate", type=positive_float, help="Adam's learning rate (default: TrainConfig's)")
    train.add_argument("--model", choices=MODEL_NAMES, help=f"default: {PAPER_MODEL}")
    train.add_argument(
        "--dropout",
        type=_rates,
        help="paper-cnn dropout after each pooling stage, e.g. SAVEE's 0.3,0.5,0.5 (default: TrainConfig's)",
    )
    train.add_argument("--l1", type=non_negative_float, help="L1 penalty on the Dense(16) kernel (default: off)")
    train.add_argument(
        "--init", choices=INITS, help=f"{PAPER_MODEL} kernel initialiser of the ReLU layers (default: TrainConfig's)"
    )
    train.add_argument(
        "--size",
        type=side,
        help="input side in pixels (default: the crops' side, as preprocess --size wrote them; smaller "
        "downscales them, larger is refused)",
    )
    train.add_argument(
        "--patience", type=non_negative_int, help="early-stopping patience in epochs (default: TrainConfig's)"
    )
    train.add_argument("--seed", type=non_negative_int, help="default: TrainConfig's")
    train.add_argument(
        "--recipe",
        choices=sorted(TRAINING_RECIPES),
        help="a named recipe; explicit options override it. wild: flips, ±10° rotation, shift and zoom 0.1, "
        "balanced class weights, learning rate halved after 3 epochs without progress (Arriaga et al. 2017)",
    )
    train.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="augment the training images: flips, ±5%% shift and zoom (with --recipe wild: ±10°, 0.1, 0.1); "
        "--no-augment turns a recipe's off (default: off)",
    )
    train.add_argument(
        "--class-weights",
        choices=CLASS_WEIGHTS,
        help="balanced: weigh each class's loss by n / (classes × its count) on the training side (default: none)",
    )
    train.add_argument(
        "--plateau",
        type=non_negative_int,
        help="halve the learning rate after N epochs without progress, N below --patience (default: 0, off)",
    )
    train.add_argument("--out", type=Path, required=True, help="new run folder to write (never overwritten)")
    train.set_defaults(handler=_train)
