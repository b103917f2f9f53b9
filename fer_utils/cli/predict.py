"""`python -m fer_utils predict`: the emotion of each face in an image or a video.

Arguments only: the handler imports TensorFlow, dlib and OpenCV when it runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fer_utils.cli.types import positive_int
from fer_utils.registry import DEFAULT_DETECTOR, FACE_DETECTORS


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
    check_annotated_out(args.out, args.media)
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


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `predict` command."""
    predict = subparsers.add_parser("predict", help="emotion of each face in an image or video")
    predict.add_argument("--model", type=Path, required=True, help="a .keras model file (classes.json beside it)")
    predict.add_argument("media", type=Path, metavar="IMAGE_OR_VIDEO")
    predict.add_argument("--out", type=Path, help="write an annotated copy (image, or .mp4 for a video)")
    predict.add_argument("--json", type=Path, help="write the predictions as JSON")
    predict.add_argument("--csv", type=Path, help="write the predictions as CSV")
    predict.add_argument("--detector", default=DEFAULT_DETECTOR, choices=FACE_DETECTORS)
    predict.add_argument("--every", type=positive_int, default=None, help="only every K-th video frame")
    predict.set_defaults(handler=_predict)
