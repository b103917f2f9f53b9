"""Data subcommands: `sample` (the synthetic sample), `download` (RAVDESS, CREMA-D), `index` (any dataset)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from fer_utils.cli import exit_code_of
from fer_utils.cli.arg_types import add_overwrite_argument, non_negative_int, positive_int
from fer_utils.data.corpora import RAVDESS_ACTORS
from fer_utils.data.folders import RAFDB_CLASSES
from fer_utils.data.indexing import INDEXERS
from fer_utils.registry import DOWNLOADABLE_DATASETS

MAX_REJECTED_SHOWN = 20  # rejected files printed by `index`; --rejected-out writes them all


def code_list(text: str) -> list[str]:
    """Parse `01,02` into ["01", "02"] (RAVDESS modality codes; CREMA-D emotion or sentence codes)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def add_index_options(parser: argparse.ArgumentParser) -> None:
    """The arguments that say how to index a dataset folder (shared by `index` and `preprocess`)."""
    parser.add_argument("--dataset", required=True, choices=tuple(INDEXERS), help="how to read the folder's names")
    parser.add_argument(
        "--subject-pattern",
        metavar="REGEX",
        help="folder datasets: regular expression with one group that captures the subject "
        "from each file name, e.g. '^(S\\d+)_' or '^(\\d+)_'",
    )
    parser.add_argument(
        "--classes",
        metavar="FOLDER=EMOTION,...",
        help="folder datasets: what class folders named by number (or otherwise) hold, e.g. RAF-DB's basic set: "
        f"--classes {RAFDB_CLASSES} (emotions in any of the accepted names: 2=fear works too)",
    )
    parser.add_argument(
        "--modalities",
        type=code_list,
        metavar="CODES",
        help="ravdess: modality codes to index, e.g. 01,02 (default 02, video-only); a take in both is indexed once",
    )


def index_options(args: argparse.Namespace) -> dict:
    """The indexer options given on the command line (None: the indexer's default)."""
    return {"subject_pattern": args.subject_pattern, "modalities": args.modalities, "classes": args.classes}


def subjects_line(clips) -> str:
    """'N subject(s)' and, for folder datasets, where the subjects came from."""
    line = f"{clips['subject'].nunique()} subject(s)"
    if "subject_source" not in clips.columns:
        return line
    sources = clips["subject_source"].value_counts()
    line += " (from " + ", ".join(f"{src}: {n}" for src, n in sources.items()) + ")"
    if set(sources.index) == {"image"}:
        line += "; each image is its own subject: pass --subject-pattern so a subject split keeps people apart"
    return line


def print_split(clips) -> None:
    """Print a dataset's own split (files per class and side) and a stderr WARNING per class a side lacks."""
    from fer_utils.data.corpora import split_counts, split_warnings

    table = split_counts(clips)
    if table.empty:
        return
    print("the dataset's own split (files per class and side; train --protocol given uses it):")
    print("\n".join(f"  {line}" for line in table.to_string().splitlines()))
    for line in split_warnings(clips):
        print(f"WARNING: {line}", file=sys.stderr)


def actor_list(text: str) -> list[int]:
    """Parse `1,2,5-8` into [1, 2, 5, 6, 7, 8] (argparse type: anything else said in words)."""
    actors: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part:
                lo, hi = part.split("-", 1)
                actors.extend(range(int(lo), int(hi) + 1))
            elif part.strip():
                actors.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected actor numbers such as 1-24 or 1,2,5, got {text!r}") from None
    return actors


def run_sample(args: argparse.Namespace) -> int:
    """Generate the synthetic sample and print where it is, how many clips and its size."""
    from fer_utils.faces.sample import generate_sample, sample_size_bytes

    start = time.perf_counter()
    table = generate_sample(
        args.out,
        actors=args.actors,
        seed=args.seed,
        workers=args.workers,
        n_frames=args.frames,
        fps=args.fps,
        progress=not args.quiet,
    )
    seconds = time.perf_counter() - start
    megabytes = sample_size_bytes(args.out) / 1e6
    print(f"wrote {len(table)} synthetic clips to {args.out} ({megabytes:.1f} MB) in {seconds:.1f} s")
    return 0


def run_download(args: argparse.Namespace) -> int:
    """Download RAVDESS archives or CREMA-D clips (SAVEE/MEAD: where to get them); Ctrl-C exits 130, parts kept."""
    from fer_utils.data.download import ZENODO_URL, download_dataset

    dest = args.dest or Path("data/raw") / args.dataset
    if args.dataset == "cremad":
        return run_download_cremad(args, dest)
    kwargs = {}
    if args.dataset == "ravdess":
        kwargs = {
            "actors": args.actors or list(RAVDESS_ACTORS),
            "base_url": args.base_url or ZENODO_URL,
            "progress": not args.quiet,
            "extract": not args.no_extract,
            "missing_checksum": "error" if args.require_checksum else "warn",
            "record_api": args.record_api,
        }
    try:
        archives = download_dataset(args.dataset, dest, **kwargs)
    except KeyboardInterrupt as exc:
        print(
            f"interrupted: the archive being downloaded keeps its .part in {dest / 'archives'}; "
            "rerun the same command to resume",
            file=sys.stderr,
        )
        return exit_code_of(exc)
    print(f"{len(archives)} archive(s) in {dest / 'archives'}")
    return 0


def run_download_cremad(args: argparse.Namespace, dest: Path) -> int:
    """Download the chosen CREMA-D clips, print the summary; exit 1 when one failed, 130 on Ctrl-C (parts kept)."""
    import pandas as pd

    from fer_utils.data.download import DEFAULT_WORKERS, REPORT_FILE, download_cremad, report_summary

    try:
        report = download_cremad(
            dest,
            actors=args.actors,
            emotions=args.emotions,
            sentences=args.sentences,
            base_url=args.base_url,
            workers=args.workers or DEFAULT_WORKERS,
            progress=not args.quiet,
        )
    except KeyboardInterrupt as exc:
        if (dest / REPORT_FILE).is_file():
            print(report_summary(pd.read_csv(dest / REPORT_FILE, keep_default_na=False), dest))
        print("interrupted: the clips in flight keep their .part; rerun the same command to resume", file=sys.stderr)
        return exit_code_of(exc)
    print(report_summary(report, dest))
    return 1 if (report["status"] == "failed").any() else 0


def set_aside_bad_names(index):
    """`index` (a `corpora.DatasetIndex`) with the files whose names are not valid UTF-8 (a CSV cannot hold
    them) moved to its rejected files, and every rejected path and reason made printable (`\\xNN`)."""
    import pandas as pd

    from fer_utils.data.corpora import DatasetIndex
    from fer_utils.faces.preprocess import is_utf8, printable

    clips = index.clips
    text = clips.select_dtypes(include="object").astype(str)
    bad = ~text.map(is_utf8).all(axis=1) if len(clips) else pd.Series(False, index=clips.index)
    reason = "bad_name: not valid UTF-8; rename it to index it"
    named = pd.DataFrame({"path": clips.loc[bad, "path"].astype(str), "reason": reason}, columns=index.rejected.columns)
    rejected = pd.concat([index.rejected, named], ignore_index=True)
    rejected = rejected.assign(**{column: rejected[column].astype(str).map(printable) for column in ("path", "reason")})
    return DatasetIndex(clips=clips[~bad].reset_index(drop=True), rejected=rejected)


def run_index(args: argparse.Namespace) -> int:
    """Index a dataset folder, print its counts, own split, duplicate audit and rejected files; --out saves them."""
    from fer_utils.data.corpora import classes_in
    from fer_utils.data.indexing import index_dataset
    from fer_utils.data.splits import audit_duplicates, audit_paths
    from fer_utils.storage.outputs import check_outputs, write_atomic

    audit_outputs = (
        dict(zip(("audit beside --out", "audit summary beside --out"), audit_paths(args.out))) if args.out else {}
    )
    outputs = {"--out": args.out, "--rejected-out": args.rejected_out, **audit_outputs}
    check_outputs(outputs, read_folders=[args.root], overwrite=args.overwrite)
    index = set_aside_bad_names(index_dataset(args.dataset, args.root, **index_options(args)))
    clips = index.clips
    print(f"{len(clips)} {args.dataset} file(s), {subjects_line(clips)}")
    if "class_folder" in clips.columns:
        renamed = clips.loc[clips["class_folder"] != clips["emotion"], ["class_folder", "emotion"]].drop_duplicates()
        for row in renamed.itertuples():
            print(f"  class folder {row.class_folder!r} read as {row.emotion!r}")
    counts = clips["emotion"].value_counts()
    for emotion in classes_in(clips):
        print(f"  {emotion:<10} {counts[emotion]}")
    print_split(clips)
    rejected = index.rejected
    if len(rejected):
        print(f"{len(rejected)} rejected file(s):")
        for row in rejected.head(MAX_REJECTED_SHOWN).itertuples():
            print(f"  {row.path}: {row.reason}")
        if len(rejected) > MAX_REJECTED_SHOWN:
            print(f"  ... and {len(rejected) - MAX_REJECTED_SHOWN} more (see --rejected-out)")
    audit = audit_duplicates(clips)
    print("\n".join(audit.lines()))
    if args.out:
        write_atomic(args.out, clips.to_csv(index=False), "--out")
        audit.write(*audit_paths(args.out))
        print(f"table written to {args.out}, its duplicate audit to {', '.join(map(str, audit_paths(args.out)))}")
    if args.rejected_out:
        write_atomic(args.rejected_out, rejected.to_csv(index=False), "--rejected-out")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `sample`, `download` and `index`."""
    sample = subparsers.add_parser("sample", help="generate the synthetic RAVDESS-style sample (from the 24 stills)")
    add = sample.add_argument
    add("--out", type=Path, required=True, help="output folder (Actor_XX/*.mp4)")
    add("--actors", type=actor_list, default=list(RAVDESS_ACTORS), help="e.g. 1-24 or 1,2,5 (default all)")
    add("--seed", type=non_negative_int, default=0)
    add("--workers", type=int, help="processes (default: one per CPU; 1 = none)")
    add("--frames", type=int, default=15, help="frames per clip (default 15)")
    add("--fps", type=int, default=15, help="frame rate (default 15)")
    add("--quiet", action="store_true", help="no progress bar")
    sample.set_defaults(handler=run_sample)

    download = subparsers.add_parser(
        "download", help="download RAVDESS (video speech) or CREMA-D (video clips); SAVEE/MEAD: instructions"
    )
    add = download.add_argument
    add(
        "dataset",
        nargs="?",
        default=DOWNLOADABLE_DATASETS[0],
        choices=DOWNLOADABLE_DATASETS,
        help=f"default {DOWNLOADABLE_DATASETS[0]}",
    )
    add("--dest", type=Path, help="target folder (default data/raw/<dataset>)")
    add("--actors", type=actor_list, help="e.g. 1-24 or 1,2,5 (RAVDESS), 1001-1010 or 1001,1002 (CREMA-D); default all")
    add("--emotions", type=code_list, help="cremad: emotion codes, e.g. ANG,HAP (default all six)")
    add("--sentences", type=code_list, help="cremad: sentence codes, e.g. DFA,IEO (default all twelve)")
    add("--workers", type=positive_int, help="cremad: files downloaded at a time (default 8)")
    add(
        "--base-url",
        help="a mirror: where Video_Speech_Actor_XX.zip live (default Zenodo record 1188976), or for cremad the folder "
        "holding VideoFlash/<clip>.flv (default: CREMA-D's Git LFS media, else the maintainers' GitLab mirror)",
    )
    add(
        "--record-api", help="Zenodo-style record API publishing the archives' md5 (default: Zenodo's, for Zenodo URLs)"
    )
    add("--no-extract", action="store_true", help="keep the zip archives only")
    add("--require-checksum", action="store_true", help="fail when no md5 is known for an archive (default: warn)")
    add("--quiet", action="store_true", help="no progress bars")
    download.set_defaults(handler=run_download)

    index = subparsers.add_parser("index", help="index a dataset folder into a clip table")
    add_index_options(index)
    add = index.add_argument
    add("--root", type=Path, required=True, help="the dataset's folder (fer2013: its CSV, or the folder holding it)")
    add("--out", type=Path, help="write the table as CSV (its duplicate audit beside it: NAME.duplicates.csv)")
    add("--rejected-out", type=Path, help="write the rejected files as CSV")
    add_overwrite_argument(index)
    index.set_defaults(handler=run_index)
