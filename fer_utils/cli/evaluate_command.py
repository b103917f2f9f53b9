"""`python -m fer_utils evaluate`: a run's test metrics, a model file on its own test side, or a model scored
on another corpus's crops (cross-dataset)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from fer_utils.cli.arg_types import (
    add_model_argument,
    add_overwrite_argument,
    add_tta_argument,
    fraction,
    non_negative_int,
    run_folder,
)
from fer_utils.errors import InputError
from fer_utils.registry import DEFAULT_VAL_SIZE, GIVEN_PROTOCOL, PAPER_TEST_SIZE, PROTOCOLS
from fer_utils.storage.outputs import check_outputs, write_atomic

# `evaluate --model` options, which say how to split a manifest; `evaluate --run` takes the run's own split.
SPLIT_OPTIONS = ("crops", "protocol", "val_size", "seed")


def recorded_split(args: argparse.Namespace) -> dict:
    """The split `evaluate --model`'s model was trained on (its config.json), which given options must agree with;
    without a config.json, --protocol and --seed are needed (InputError otherwise)."""
    from fer_utils.storage.run_files import CONFIG_FILE
    from fer_utils.train.runs import RunFolder

    folder = RunFolder(args.model.parent)
    given = {"protocol": args.protocol, "val_size": args.val_size, "seed": args.seed}
    if not folder.config_file.is_file():
        if args.protocol is None or args.seed is None:
            raise InputError(
                f"{args.model}: no {CONFIG_FILE} beside it records the split it was trained on, so its test rows "
                "cannot be known: use evaluate --run RUN, or give --protocol and --seed (and --val-size) of its run"
            )
        val_size = DEFAULT_VAL_SIZE if args.val_size is None else args.val_size
        return {**given, "test_size": PAPER_TEST_SIZE, "val_size": val_size, "clean_test": False}
    config = folder.config()
    recorded = {name: config.get(name) for name in ("protocol", "test_size", "val_size", "seed")}
    if any(value is None for value in recorded.values()):
        raise InputError(f"{folder.config_file} does not record the split (protocol, test_size, val_size, seed)")
    differ = [
        f"--{k.replace('_', '-')} {v} (recorded {recorded[k]})"
        for k, v in given.items()
        if v not in (None, recorded[k])
    ]
    if differ:
        raise InputError(
            f"{args.model} was trained on another split than {', '.join(differ)}: testing on that split would "
            f"mix its training rows into the test; leave the options out to use the recorded split"
        )
    return {**recorded, "clean_test": bool(config.get("clean_test", False))}


def check_crop_classes(frames, classes: list[str], args: argparse.Namespace) -> None:
    """InputError when `--crops` holds classes the model does not predict: not the crops it was trained on."""
    held = sorted(map(str, frames["emotion"].unique()))
    if unknown := [name for name in held if name not in classes]:
        raise InputError(
            f"{args.model} predicts {', '.join(classes)}; {args.crops} holds {', '.join(held)} ({', '.join(unknown)} "
            f"unknown to it): not the crops it was trained on. To score it on the classes they share, use "
            f"--test-crops {args.crops} instead of --crops"
        )


def _model_test_predictions(args: argparse.Namespace):
    """(test frames, probabilities, classes, crop check) of a model file on `--crops`' test side, split as its run's."""
    from fer_utils.data.corpora import has_split
    from fer_utils.data.manifest import load_manifest, usable_frames
    from fer_utils.data.splits import audited_split
    from fer_utils.deploy.crossdata import check_scored_crops, training_overlap
    from fer_utils.models.networks import input_side, network_side
    from fer_utils.train.config import Feed
    from fer_utils.train.fit import predict_batches
    from fer_utils.train.pipeline import make_dataset
    from fer_utils.train.runs import RunFolder
    from fer_utils.train.sequences import clip_shape, clip_table, make_clip_dataset

    if args.crops is None:
        raise InputError("evaluate --model needs --crops DIR, the crops folder whose test split it predicts")
    split = recorded_split(args)
    folder = RunFolder(args.model.parent)
    run = folder.open(args.model)  # the model, its classes and crop spec, read once
    model, classes = run.model, run.classes
    frames = usable_frames(load_manifest(args.crops))
    check_crop_classes(frames, classes, args)
    if split["protocol"] == GIVEN_PROTOCOL and not has_split(frames):  # its test side is its dataset's own
        raise InputError(
            f"{args.model} was tested on its dataset's own split (--protocol {GIVEN_PROTOCOL}), which {args.crops} "
            f"does not have: not the crops it was trained on. To score it on them, use --test-crops {args.crops} "
            "instead of --crops"
        )
    test = audited_split(frames, args.crops, **split).test
    subjects = folder.config().get("subjects", {}) if folder.config_file.is_file() else {}
    if "test" in subjects and sorted(map(str, test["subject"].unique())) != subjects["test"]:
        raise InputError(
            f"the test side of {args.crops} split as recorded holds other subjects than the run's test side "
            f"({subjects['test']}): is {args.crops} the crops folder the model was trained on? To score the model "
            f"on another folder, use --test-crops {args.crops} instead of --crops"
        )
    # test crops that copy a training crop by content (train_hashes.csv); without it, the split's `copy_of_train`
    copies, _ = training_overlap(test, args.crops, folder.path)
    if copies is not None:
        test = test.assign(copy_of_train=test["copy_of_train"].to_numpy() | copies)
    side = input_side(model)  # None: the model resizes the crops itself
    size = None if side is None else (side, side)
    check = check_scored_crops(test, args.crops, network_side(model))
    if check.frames.empty:
        raise InputError(f"no crop of the test side of {args.crops} can be scored: {_skipped_text(check.skipped)}")
    if clip_shape(model):  # a sequence model is tested on the test side's clips, one row each
        if args.tta != "none":
            raise InputError(f"{args.model} reads whole clips: --tta applies to frame models only")
        clips = clip_table(check.frames)
        dataset = make_clip_dataset(clips, args.crops, classes, Feed(cache=False))
        return clips, predict_batches(model, dataset), classes, check
    dataset = make_dataset(check.frames, args.crops, classes, Feed(cache=False, image_size=size))
    return check.frames, predict_batches(model, dataset, args.tta), classes, check


def _skipped_text(skipped: dict[str, list[str]]) -> str:
    """'3 missing (a.png, b.png, ...); 1 damaged (...)'."""
    return "; ".join(
        f"{len(images)} {reason} ({', '.join(images[:3])}{', ...' if len(images) > 3 else ''})"
        for reason, images in skipped.items()
    )


def _option_names(args: argparse.Namespace, names: tuple[str, ...]) -> list[str]:
    """The given options among `names` (argparse dests), as written on the command line."""
    return [f"--{name.replace('_', '-')}" for name in names if getattr(args, name, None) is not None]


def _cross_evaluate(args: argparse.Namespace) -> int:
    """`evaluate --model M --test-crops C`: the model scored on another crops folder, printed (and --json)."""
    import pandas as pd

    from fer_utils.deploy.crossdata import evaluate_model_file

    if args.run is not None:
        raise InputError("--test-crops scores a model file on another folder: give --model M, not --run")
    if mixed := _option_names(args, SPLIT_OPTIONS):
        raise InputError(
            f"--test-crops scores every frame of another folder, while {', '.join(mixed)} split the model's own "
            "crops into its test side: give one or the other (--split SIDE picks a side of --test-crops)"
        )
    check_outputs(
        {"--json": args.json},
        reads=[args.model],
        read_folders=[args.model.parent, args.test_crops],
        overwrite=args.overwrite,
    )
    report = evaluate_model_file(args.model, args.test_crops, args.split, args.tta)
    print(report.summary())
    with pd.option_context("display.width", 120):
        print(report.per_class().round(3))
        print(report.confusion_frame())
    if args.json:
        write_atomic(args.json, json.dumps(report.to_dict(), indent=2), "--json")
    return 0


def clean_part(frames, probabilities, classes) -> tuple[dict | None, str | None]:
    """(metrics of the test frames that copy no training crop, a line saying how many do); (None, None) for old runs."""
    from fer_utils.evaluate.metrics import evaluate_predictions

    if "copy_of_train" not in frames.columns:
        return None, None
    copied = frames["copy_of_train"].astype(str).str.lower().isin(("true", "1")).to_numpy()
    if not copied.any():
        return None, f"no test frame copies a training crop ({len(frames)} frames, by md5 or perceptual hash)"
    line = f"{int(copied.sum())} of the {len(frames)} test frames copy a training crop (by md5 or perceptual hash)"
    if copied.all():
        return None, line + ": no clean part is left"
    clean = frames[~copied].reset_index(drop=True)
    metrics = evaluate_predictions(clean, np.asarray(probabilities)[~copied], classes)
    return metrics, line + f"; the clean part, without them: accuracy {metrics['frame']['accuracy']:.3f}, macro F1 " + (
        f"{metrics['frame']['f1_macro']:.3f} on {len(clean)} frames"
    )


def _evaluate(args: argparse.Namespace) -> int:
    """Test metrics of a run or of a model file, whole and on the clean part; printed, and as JSON with --json."""
    import pandas as pd

    from fer_utils.evaluate.metrics import evaluate_predictions, per_class_report, predicted_labels
    from fer_utils.train.runs import RunFolder

    if args.run is None and args.model is None:
        if args.test_crops is None:
            raise InputError("give --run RUN, --model M, or --test-crops C to score the package's pretrained model")
        from fer_utils.deploy.pretrained import pretrained_model_file

        args.model = pretrained_model_file()
    if args.tta is None:  # the model's own: the TTA its recipe ships with (config.json), else none
        args.tta = RunFolder(args.model.parent).served_tta() if args.model is not None else "none"
    if args.test_crops is not None:
        return _cross_evaluate(args)
    if args.split is not None:
        raise InputError("--split picks a side of --test-crops: give --test-crops DIR with it")
    model_dir = args.model.parent if args.model is not None else None
    check_outputs(
        {"--json": args.json},
        reads=[args.model],
        read_folders=[args.run, model_dir, args.crops],
        overwrite=args.overwrite,
    )
    check = None
    if args.run is not None:
        if given := _option_names(args, SPLIT_OPTIONS):
            raise InputError(
                f"evaluate --run reads the run's saved test predictions; {', '.join(given)} apply to --model only"
            )
        if args.tta != "none":
            raise InputError(
                f"evaluate --run reads the run's saved test predictions, made with one view: for --tta {args.tta} "
                f"give --model {RunFolder(args.run).model_file} --crops CROPS (its crops folder), which predicts them again"
            )
        frames, probabilities, classes = RunFolder(args.run).test_predictions()
    else:
        frames, probabilities, classes, check = _model_test_predictions(args)
    metrics = {**evaluate_predictions(frames, probabilities, classes), "tta": args.tta}
    clean, line = clean_part(frames, probabilities, classes)
    if clean is not None:
        metrics["clean"] = clean
    print(json.dumps(metrics, indent=2))
    if check is not None and check.skipped:
        print(f"WARNING: left out of the test side: {_skipped_text(check.skipped)}", file=sys.stderr)
    if metrics["absent"]:
        print(f"the test side has no frame of {', '.join(metrics['absent'])}: the macro F1 averages the others")
    if line:
        print(line)
    if args.json:
        write_atomic(args.json, json.dumps(metrics, indent=2), "--json")
    with pd.option_context("display.width", 120):
        print(per_class_report(frames["emotion"], predicted_labels(probabilities, classes), classes).round(3))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `evaluate` command."""
    evaluate = subparsers.add_parser("evaluate", help="test metrics of a run, or of a model file on a manifest split")
    add = evaluate.add_argument
    source = evaluate.add_mutually_exclusive_group()
    source.add_argument("--run", type=run_folder, help="a finished run folder (reads its saved test predictions)")
    add_model_argument(source, required=False, default=" (default with --test-crops: the package's pretrained model)")
    add("--crops", type=Path, help="with --model: crops folder with manifest.csv")
    recorded = "(default: the one recorded beside the model)"
    add("--protocol", choices=PROTOCOLS, help=f"with --model: split protocol {recorded}")
    add("--val-size", type=fraction, help=f"with --model: validation share {recorded}")
    add("--seed", type=non_negative_int, help=f"with --model: split seed {recorded}")
    add(
        "--test-crops",
        type=Path,
        help="with --model: score every usable frame of this other crops folder (cross-dataset; classes matched by "
        "name, the others reported); not with --crops/--protocol/--seed/--val-size",
    )
    add("--split", help="with --test-crops: only the rows of this side of its manifest's split column (e.g. test)")
    add_tta_argument(evaluate, " (with --model; recorded in the metrics)")
    add("--json", type=Path, help="also write the metrics as JSON")
    add_overwrite_argument(evaluate)
    evaluate.set_defaults(handler=_evaluate)
