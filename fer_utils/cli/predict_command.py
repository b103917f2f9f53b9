"""`python -m fer_utils predict`: the emotion of each face in an image or a video."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fer_utils.cli.arg_types import add_model_argument, add_overwrite_argument, add_tta_argument, positive_int
from fer_utils.cli.preprocess_commands import MAX_SIDE_HELP, parse_max_side
from fer_utils.errors import InputError
from fer_utils.faces.crops import AUTO
from fer_utils.registry import DEFAULT_DETECTOR, DETECTORS, NO_DETECTOR
from fer_utils.storage.outputs import check_outputs, write_atomic


def _predict(args: argparse.Namespace) -> int:
    """Emotions of the faces in an image or video as JSON/CSV (and an annotated copy), cropped as the model's were."""
    from fer_utils.data.media import check_media

    check_media(args.media)  # a missing or unreadable file said at once, before TensorFlow loads
    from fer_utils.deploy.inference import Recognizer, check_annotated_out
    from fer_utils.faces.crops import make_detector, no_face_reason, served_spec
    from fer_utils.train.runs import RunFolder
    from fer_utils.train.sequences import clip_shape, predict_clip

    if args.model is None:
        from fer_utils.deploy.pretrained import pretrained_model_file

        args.model = pretrained_model_file()
    outputs = {"--out": args.out, "--json": args.json, "--csv": args.csv}
    check_outputs(outputs, reads=[args.media, args.model], read_folders=[args.model.parent], overwrite=args.overwrite)
    check_annotated_out(args.out, args.media)
    run = RunFolder(args.model.parent).open(args.model)
    detector = make_detector(args.detector or served_spec(run.spec).detector, max_side=args.max_side)
    if clip_shape(run.model) is not None:  # a sequence model: one answer for the clip, from N sampled frames
        if args.out is not None or args.every is not None or args.tta not in (None, "none"):
            raise InputError(f"{args.model} reads whole clips: --out, --every and --tta apply to frame models only")
        table = predict_clip(run.model, run.classes, args.media, run.spec, detector)
        return _write_predictions(args, table, f"{args.media.name}: one clip, {int(table['faces'][0])} face(s)")
    recognizer = Recognizer.of_run(run, detector, args.tta)
    table = recognizer.predict_media(args.media, every=args.every, out=args.out)
    read = f"{table.attrs['frames_read']} frame(s) read"
    if table.empty:  # what the detector searched, and what to try
        return _write_predictions(args, table, f"{read}, {no_face_reason(detector, table.attrs['frame_shape'])}")
    return _write_predictions(args, table, f"{len(table)} face(s) in {table['frame_index'].nunique()} of {read}")


def _write_predictions(args: argparse.Namespace, table, summary: str) -> int:
    """`predict`'s table written as --csv / --json (printed as JSON when neither is given), then `summary`."""
    if args.csv:
        write_atomic(args.csv, table.to_csv(index=False), "--csv")
    records = table.to_dict(orient="records")
    if args.json:
        write_atomic(args.json, json.dumps(records, indent=2), "--json")
    if not args.csv and not args.json:
        print(json.dumps(records, indent=2))
    print(summary)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `predict` command."""
    predict = subparsers.add_parser("predict", help="emotion of each face in an image or video")
    add_model_argument(predict, required=False, default=" (default: the package's pretrained model)")
    predict.add_argument("media", type=Path, metavar="IMAGE_OR_VIDEO")
    predict.add_argument("--out", type=Path, help="write an annotated copy (image, or .mp4 for a video)")
    predict.add_argument("--json", type=Path, help="write the predictions as JSON")
    predict.add_argument("--csv", type=Path, help="write the predictions as CSV")
    predict.add_argument(
        "--detector",
        choices=DETECTORS,
        help=f"face detector (default: the one the model's crops were cut with, else {DEFAULT_DETECTOR}); "
        f"'{NO_DETECTOR}': the image is a face crop already, read whole",
    )
    predict.add_argument("--every", type=positive_int, help="only every K-th video frame")
    predict.add_argument("--max-side", type=parse_max_side, default=AUTO, help=MAX_SIDE_HELP)
    add_tta_argument(predict, "")
    add_overwrite_argument(predict)
    predict.set_defaults(handler=_predict)
