"""Benchmark of the preprocessing pipeline on the embedded sample at RAVDESS resolution (1280×720).

For each detector: clips/s and faces/s of `preprocess_dataset` (6 sampled frames, detection on a copy
at most 400 px long) with 1 worker and with every core, and its detection rate; and the same for a
naive baseline (decode every frame, detect at full resolution, one process). A sweep over the
detection size shows what the downscaling costs in detection rate. Results go to JSON and a table.

    .venv/bin/python benchmarks/bench_preprocess.py [--sample DIR] [--out benchmarks/results/preprocess.json]
    .venv/bin/python benchmarks/bench_preprocess.py --real [--copies 48] [--repeats 5] [--calibrate-cnn]

The dlib CNN is ~50× slower than HOG on a CPU, so it (and every naive baseline) runs on an evenly
spread subset of clips; the JSON says how many clips each number comes from.

`--real`: the real-format mode (`preprocess_stages.py`): the real RAVDESS clip shipped in the package
(H.264, 720×720, 122 frames) copied under `--copies` RAVDESS names, beside as many of the sample's
15-frame clips: where one clip's time goes per stage (open, decode, detect, crop, encode, write,
record; worker start-up), in wall and CPU time with the load average, the options measured for each,
and clips/s of the whole pipeline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SAMPLE = REPO / "data" / "sample"
FALLBACK_SAMPLE = REPO / "_cache" / "bench_sample"
TARGETS = {"clips_per_s": 10.0, "speedup_vs_naive": 5.0, "detection_rate": 0.99}


def spread(clips: pd.DataFrame, n: int | None) -> pd.DataFrame:
    """`n` clips evenly spread over the index (all when n is None or larger than the index)."""
    if n is None or n >= len(clips):
        return clips
    step = len(clips) / n
    return clips.iloc[[int(i * step) for i in range(n)]].reset_index(drop=True)


def ensure_sample(path: Path | None) -> Path:
    """The sample to benchmark on: `path`, data/sample if `make sample` made it, else generated once."""
    from fer_utils.faces.sample import generate_sample

    if path is not None:
        return path
    if (DEFAULT_SAMPLE / ".complete").exists():
        return DEFAULT_SAMPLE
    if not (FALLBACK_SAMPLE / "clips.csv").exists():
        print(f"generating the 384-clip sample in {FALLBACK_SAMPLE} (once) ...", flush=True)
        generate_sample(FALLBACK_SAMPLE)
    return FALLBACK_SAMPLE


def time_pipeline(clips: pd.DataFrame, detector: str, workers: int) -> dict:
    """Run preprocess_dataset end to end (process start-up and model loading included) into a fresh folder."""
    from fer_utils.faces.crops import CropSpec
    from fer_utils.faces.preprocess import preprocess_dataset

    with tempfile.TemporaryDirectory(prefix="bench-pre-") as out:
        start = time.perf_counter()
        manifest = preprocess_dataset(clips, Path(out), CropSpec(detector=detector), workers=workers, progress=False)
        seconds = time.perf_counter() - start
    faces = int((manifest["status"] == "ok").sum())
    return {
        "detector": detector,
        "mode": "pipeline",
        "workers": workers,
        "clips": len(clips),
        "frames": len(manifest),
        "faces": faces,
        "seconds": round(seconds, 2),
        "clips_per_s": round(len(clips) / seconds, 2),
        "faces_per_s": round(faces / seconds, 2),
        "detection_rate": round(faces / max(1, len(manifest)), 4),
    }


def time_naive(clips: pd.DataFrame, detector: str) -> dict:
    """The naive baseline: decode every frame, detect at full resolution, crop the largest face, one process."""
    import cv2

    from fer_utils.faces.crops import crop_face, make_detector
    from fer_utils.faces.preprocess import encode_png

    start = time.perf_counter()
    model = make_detector(detector, max_side=None)
    frames = faces = 0
    for path in clips["path"]:
        cap = cv2.VideoCapture(str(path))
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames += 1
            boxes = model.detect(frame)
            if boxes:
                faces += 1
                encode_png(crop_face(frame, boxes[0]))
        cap.release()
    seconds = time.perf_counter() - start
    return {
        "detector": detector,
        "mode": "naive",
        "workers": 1,
        "clips": len(clips),
        "frames": frames,
        "faces": faces,
        "seconds": round(seconds, 2),
        "clips_per_s": round(len(clips) / seconds, 3),
        "faces_per_s": round(faces / seconds, 2),
        "detection_rate": round(faces / max(1, frames), 4),
    }


def sweep_max_side(clips: pd.DataFrame, detector: str, sides: list[int | None]) -> list[dict]:
    """Detection rate and per-frame detection time of `detector` at several detection sizes (6 frames per clip)."""
    from fer_utils.data.media import sample_frames
    from fer_utils.faces.crops import make_detector

    frames = [f for path in clips["path"] for _, f in sample_frames(Path(path), 6)]
    rows = []
    for side in sides:
        model = make_detector(detector, max_side=side)
        start = time.perf_counter()
        found = sum(bool(model.detect(f)) for f in frames)
        seconds = time.perf_counter() - start
        rows.append(
            {
                "detector": detector,
                "max_side": side or "full",
                "frames": len(frames),
                "detection_rate": round(found / len(frames), 4),
                "ms_per_frame": round(1000 * seconds / len(frames), 1),
            }
        )
    return rows


def real_mode(args: argparse.Namespace) -> int:
    """The real-format benchmark (`preprocess_stages`): per-stage and pipeline times, real clip beside the sample."""
    from preprocess_stages import real_mode as run_real

    from fer_utils.data.indexing import index_dataset

    args.target = TARGETS["clips_per_s"]
    return run_real(args, index_dataset("ravdess", ensure_sample(args.sample)).clips, spread)


def table(rows: list[dict], columns: list[str]) -> str:
    """A plain-text table of `rows`."""
    return pd.DataFrame(rows)[columns].to_string(index=False)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, write JSON and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sample", type=Path, default=None, help="a RAVDESS-style sample (default: data/sample or generated)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "preprocess.json")
    parser.add_argument("--detectors", nargs="+", default=["dlib-hog", "opencv-haar", "dlib-cnn"])
    parser.add_argument("--clips", type=int, default=None, help="pipeline clips for HOG and Haar (default: all)")
    parser.add_argument("--cnn-clips", type=int, default=12, help="pipeline clips for the dlib CNN (default 12)")
    parser.add_argument("--baseline-clips", type=int, default=12, help="clips for the naive HOG/Haar baseline")
    parser.add_argument("--cnn-baseline-clips", type=int, default=1, help="clips for the naive CNN baseline")
    parser.add_argument("--sweep-clips", type=int, default=24, help="clips for the detection-size sweep (0: skip)")
    parser.add_argument("--workers", type=int, default=None, help="'all cores' (default: every CPU)")
    parser.add_argument("--real", action="store_true", help="the real-format mode (see the module docstring)")
    parser.add_argument("--copies", type=int, default=48, help="--real: copies of the real clip (and sample clips)")
    parser.add_argument("--repeats", type=int, default=5, help="--real: repeats per stage timing (fastest and median)")
    parser.add_argument(
        "--calibrate-cnn", action="store_true", help="--real: also record fer_book/calibrate.py's figure"
    )
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.real:
        if args.out == parser.get_default("out"):
            args.out = REPO / "benchmarks" / "results" / "preprocess_real.json"
        return real_mode(args)
    from fer_utils.data.indexing import index_dataset
    from fer_utils.faces.preprocess import default_workers

    sample = ensure_sample(args.sample)
    clips = index_dataset("ravdess", sample).clips
    cores = args.workers or default_workers()
    load_before = os.getloadavg()
    results = []
    for detector in args.detectors:
        subset = spread(clips, args.cnn_clips if detector == "dlib-cnn" else args.clips)
        for workers in sorted({1, cores}):
            print(f"{detector}: pipeline, {len(subset)} clips, {workers} worker(s) ...", flush=True)
            results.append(time_pipeline(subset, detector, workers))
        baseline = spread(clips, args.cnn_baseline_clips if detector == "dlib-cnn" else args.baseline_clips)
        print(f"{detector}: naive baseline, {len(baseline)} clips ...", flush=True)
        results.append(time_naive(baseline, detector))
    sweep = []
    if args.sweep_clips:
        for detector, sides, n in (
            ("dlib-hog", [160, 240, 320, 400, 640, None], args.sweep_clips),
            ("opencv-haar", [160, 240, 320, 400, 640, None], args.sweep_clips),
            ("dlib-cnn", [200, 240, 320, 400], max(1, args.sweep_clips // 6)),
        ):
            if detector in args.detectors:
                print(f"{detector}: detection-size sweep ...", flush=True)
                sweep += sweep_max_side(spread(clips, n), detector, sides)

    summary = {}
    for detector in args.detectors:
        mine = [r for r in results if r["detector"] == detector]
        best = max((r for r in mine if r["mode"] == "pipeline"), key=lambda r: r["workers"])
        naive = next(r for r in mine if r["mode"] == "naive")
        summary[detector] = {
            "clips_per_s_all_cores": best["clips_per_s"],
            "speedup_vs_naive": round(best["clips_per_s"] / naive["clips_per_s"], 1),
            "detection_rate": best["detection_rate"],
            "full_ravdess_2880_clips_minutes": round(2880 / best["clips_per_s"] / 60, 1),
        }
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "workers_all_cores": cores,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_avg_before": load_before,
            "load_avg_after": os.getloadavg(),
        },
        "sample": {"path": str(sample), "clips": len(clips)},
        "targets_default_pipeline": TARGETS,
        "results": results,
        "summary": summary,
        "max_side_sweep": sweep,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")

    print()
    print(
        table(
            results,
            [
                "detector",
                "mode",
                "workers",
                "clips",
                "frames",
                "faces",
                "seconds",
                "clips_per_s",
                "faces_per_s",
                "detection_rate",
            ],
        )
    )
    if sweep:
        print()
        print(table(sweep, ["detector", "max_side", "frames", "detection_rate", "ms_per_frame"]))
    print()
    for detector, s in summary.items():
        print(
            f"{detector}: {s['clips_per_s_all_cores']} clips/s on {cores} cores, {s['speedup_vs_naive']}x naive, "
            f"detection rate {s['detection_rate']:.2%}, full RAVDESS ~{s['full_ravdess_2880_clips_minutes']} min"
        )
    print(f"load average before/after: {load_before} / {report['machine']['load_avg_after']} on {os.cpu_count()} CPUs")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
