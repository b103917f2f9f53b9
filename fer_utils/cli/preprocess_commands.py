"""`python -m fer_utils preprocess …` (clips → face crops + manifest) and `detect` (boxes in one image)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fer_utils.cli import exit_code_of
from fer_utils.cli.arg_types import positive_int, side
from fer_utils.cli.data_commands import add_index_options, index_options
from fer_utils.errors import InputError, MediaError
from fer_utils.faces.crops import AUTO, DEFAULT_MAX_SIDES, MIN_MAX_SIDE
from fer_utils.interrupts import raise_on_signals
from fer_utils.registry import DEFAULT_DETECTOR, DEFAULT_MARGIN, DETECTORS, NO_DETECTOR, PAPER_FRAMES, PAPER_SIDE

_AUTO_SIDES = ", ".join(f"{k} {v}" for k, v in DEFAULT_MAX_SIDES.items())
MAX_SIDE_HELP = f"detect on a copy at most this many pixels long: 'auto' (default: {_AUTO_SIDES}), 'full' or a number"


def parse_max_side(text: str) -> int | str | None:
    """argparse type: 'auto', 'full' (None) or a number of pixels ≥ MIN_MAX_SIDE."""
    if text in (AUTO, "full"):
        return None if text == "full" else AUTO
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto', 'full' or a number of pixels, got {text!r}") from None
    if value < MIN_MAX_SIDE:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_MAX_SIDE} pixels, 'auto' or 'full', got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `preprocess` and `detect` commands."""
    pre = subparsers.add_parser("preprocess", help="detect, crop and resize faces of a dataset's clips")
    add_index_options(pre)
    add = pre.add_argument
    add("--src", type=Path, required=True, help="the dataset's root folder (fer2013: its CSV or the folder holding it)")
    add("--out", type=Path, required=True, help="output folder for crops and manifest.csv")
    add(
        "--frames",
        type=positive_int,
        help=f"evenly spaced frames per clip (default {PAPER_FRAMES}; with --every: the first N of every K-th)",
    )
    add("--all-frames", action="store_true", help="use every frame (or every K-th with --every)")
    add("--every", type=positive_int, metavar="K", help="sample every K-th frame instead")
    add(
        "--detector",
        choices=DETECTORS,
        default=DEFAULT_DETECTOR,
        help=f"face detector (default {DEFAULT_DETECTOR}); '{NO_DETECTOR}': images already face crops, used whole",
    )
    add("--side", type=side, help=f"crop side in pixels (default: the crop spec's, {PAPER_SIDE})")
    add(
        "--margin",
        type=float,
        metavar="M",
        help=f"face box margin, a fraction of its side (default {DEFAULT_MARGIN}; 0 with --detector {NO_DETECTOR})",
    )
    add("--max-side", type=parse_max_side, default=AUTO, help=MAX_SIDE_HELP)
    add("--align", action="store_true", help="rotate so the eyes are level before cropping")
    add("--workers", type=positive_int, help="processes (default: one per CPU)")
    add("--quiet", action="store_true", help="no progress bar")
    add("--force", action="store_true", help="--out holds crops of another source or settings: delete them, start over")
    pre.set_defaults(handler=run_preprocess)

    detect = subparsers.add_parser("detect", help="print the face boxes a detector finds in images")
    detect.add_argument("images", type=Path, nargs="+", help="image files")
    detect.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR)
    detect.add_argument("--max-side", type=parse_max_side, default=AUTO, help=MAX_SIDE_HELP)
    detect.set_defaults(handler=run_detect)


def run_preprocess(args: argparse.Namespace) -> int:
    """Preprocess --src into --out, print a count per status; InputError when no crop is usable, a warning if most."""
    from fer_utils.data.indexing import index_dataset
    from fer_utils.data.manifest import MANIFEST_NAME, PARTIAL_MANIFEST_NAME, check_yield, yield_report
    from fer_utils.data.splits import audit_paths, read_audit
    from fer_utils.faces.crops import spec_with
    from fer_utils.faces.preprocess import preprocess_dataset, printable, upsampled_note
    from fer_utils.storage.outputs import check_outputs

    if args.all_frames and args.frames is not None:
        raise InputError(
            f"--all-frames (every frame) and --frames {args.frames} (that many per clip) conflict: give one of them"
        )
    check_outputs({"--out": args.out}, folders={"--out"})  # --out against --src: preprocess_dataset
    index = index_dataset(args.dataset, args.src, **index_options(args))
    if len(index.rejected):
        first = index.rejected.iloc[0]
        print(
            f"{len(index.rejected)} file(s) under {args.src} skipped as not {args.dataset} data "
            f"(e.g. {printable(first['path'])}: {printable(first['reason'])})"
        )
    frames = args.frames if args.frames or args.all_frames or args.every else PAPER_FRAMES
    spec = spec_with(detector=args.detector, margin=args.margin, side=args.side, align=args.align)  # None: default
    try:  # SIGTERM stops like Ctrl-C (interrupts.Stopped): workers ended, records kept
        with raise_on_signals():
            manifest = preprocess_dataset(
                index.clips,
                args.out,
                spec,
                frames=frames,
                every=args.every,
                max_side=args.max_side,
                workers=args.workers,
                progress=not args.quiet,
                source=args.src,
                force=args.force,
            )
    except KeyboardInterrupt as exc:
        print(
            f"interrupted: {Path(args.out) / PARTIAL_MANIFEST_NAME} lists the clips finished so far (of "
            f"{len(index.clips)}); rerun the same command to resume",
            file=sys.stderr,
        )
        return exit_code_of(exc)
    print(f"{len(index.clips)} clips, {manifest['subject'].nunique()} subject(s); {yield_report(manifest)}")
    print(f"manifest: {Path(args.out) / MANIFEST_NAME}")
    audit_csv, audit_json = audit_paths(args.out)
    print("\n".join(read_audit(audit_csv).lines()))
    print(f"duplicates: {audit_csv} (one row per crop), {audit_json}")
    # the louder warning first: most frames unusable, then usable crops upsampled beyond their detail
    for warning in (check_yield(manifest), upsampled_note(manifest, spec)):
        if warning:
            print(f"WARNING: {warning}", file=sys.stderr)
    return 0


def run_detect(args: argparse.Namespace) -> int:
    """Print `path: x y w h` for every face (largest first) in each image; exit 1 if any has none."""
    from fer_utils.data.media import read_image
    from fer_utils.faces.crops import make_detector

    detector = make_detector(args.detector, max_side=args.max_side)
    missing = 0
    for path in args.images:
        try:
            boxes = detector.detect(read_image(path))
        except MediaError as exc:
            print(f"{path}: {exc.status}: {exc}")
            missing += 1
            continue
        print(f"{path}: {len(boxes)} face(s)" + "".join(f"\n  {b.x} {b.y} {b.w} {b.h}" for b in boxes))
        missing += not boxes
    return 1 if missing else 0
