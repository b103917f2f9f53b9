"""Where a real RAVDESS clip's preprocessing time goes, per stage and option (`bench_preprocess.py --real`).

The real RAVDESS clip shipped in the package (H.264, 720×720, 122 frames, a keyframe every 12) is
copied under `--copies` RAVDESS names, beside as many of the sample's 15-frame 1280×720 clips. For
each set:

- **stages**, one clip in this process (`preprocess_clip_stages.py`; OpenCV on one thread): open +
  frame count; decode (seeking over every gap longer than 12 frames as the reference did, or `media.read_frames`, which decodes
  forward with grab-without-retrieve over gaps up to `SEEK_GAP`; one FFmpeg decoder thread or OpenCV's
  default of one per CPU; or `cap.read` of every frame); detect (the full search of all 6 frames, the `scale_to_face` search,
  fixed smaller sizes, with the faces found and the worst box IoU against the full search); crop;
  PNG encoding at several compression levels; atomic write; the completion record; and the whole
  per-clip work of a worker (`process_clip` + record) with the reference and the adopted settings.
  Each is timed `--repeats` times in **wall and CPU time** (fastest and median), with the 1-minute
  load average when it ran: on a loaded machine the CPU time is the better measure of the work;
- **start-up**, once per run: a worker's imports (spawn, or fork from a parent that has imported
  them) and building the dlib HOG detector vs unpickling the one the parent made;
- **pipeline**: `preprocess_dataset` end to end, wall and CPU time of this process and its workers
  (`resource.getrusage`), 1 and 2 workers, reference vs adopted settings;
- **idle estimate**: clips/s on 2 idle cores from the per-clip CPU time of a worker plus its start-up.

Calibration beside it: a fixed single-thread OpenCV workload (ms) before and after, and with
`--calibrate-cnn` the paper-CNN figure of `fer_book/calibrate.py` (images/s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pandas as pd
from preprocess_clip_stages import REFERENCE, load, stage_rows, timed

REPO = Path(__file__).resolve().parents[1]
REAL_SET = "real RAVDESS 720x720 H.264, 122 frames"
SAMPLE_SET = "sample 1280x720, 15 frames"


def real_batch(folder: Path, copies: int) -> Path:
    """`folder/Actor_XX/02-01-08-02-SS-RR-XX.mp4`: the package's real RAVDESS clip (audio-video, named as
    video-only so the default index takes it) under `copies` names."""
    from fer_utils.assets import ravdess_clip_path

    for i in range(copies):
        actor, k = i % 24 + 1, i // 24
        target = folder / f"Actor_{actor:02d}" / f"02-01-08-02-{1 + k % 2:02d}-{1 + k // 2:02d}-{actor:02d}.mp4"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ravdess_clip_path(), target)
    return folder


def worker_imports() -> float:
    """A worker's start: import its modules (`preprocess.import_worker_modules`); returns its CPU seconds so far."""
    from fer_utils.faces.preprocess import import_worker_modules

    import_worker_modules()
    return time.process_time()


def make_hog() -> float:
    """CPU seconds to build dlib's HOG detector in this process."""
    from fer_utils.faces.crops import make_detector

    start = time.process_time()
    make_detector("dlib-hog")
    return time.process_time() - start


def startup_rows() -> list[dict]:
    """Once-per-run costs: a worker's imports (spawn vs fork) and the detector (built vs unpickled)."""
    import pickle

    from fer_utils.faces.crops import make_detector

    worker_imports()  # the parent has the modules, as `fork` would share them
    rows = []
    for method in ("spawn", "fork"):
        start = time.perf_counter()
        with ProcessPoolExecutor(1, mp_context=get_context(method)) as pool:
            cpu = pool.submit(worker_imports).result()
        rows.append(
            {
                "stage": "start-up",
                "option": f"worker process + imports ({method}{', adopted' if method == 'spawn' else ''})",
                "wall_ms": round(1000 * (time.perf_counter() - start), 1),
                "cpu_ms": round(1000 * cpu, 1),
                "load": load(),
            }
        )
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        cpu = pool.submit(make_hog).result()
    rows.append(
        {
            "stage": "start-up",
            "option": "build the dlib HOG detector in each worker (reference)",
            "cpu_ms": round(1000 * cpu, 1),
            "load": load(),
        }
    )
    data = pickle.dumps(make_detector("dlib-hog"))
    rows.append(
        {
            "stage": "start-up",
            "option": f"unpickle the parent's detector ({len(data) // 1000} kB; adopted)",
            **timed(lambda: pickle.loads(data), 5),
        }
    )
    return rows


def rusage_cpu() -> float:
    """CPU seconds of this process and of its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def pipeline_row(clips: pd.DataFrame, workers: int, scale_to_face: bool) -> dict:
    """`preprocess_dataset` end to end into a fresh folder: wall and CPU seconds (workers included)."""
    from fer_utils.faces.preprocess import preprocess_dataset

    before = load()
    with tempfile.TemporaryDirectory(prefix="bench-pre-") as out:
        start, start_cpu = time.perf_counter(), rusage_cpu()
        manifest = preprocess_dataset(clips, Path(out), workers=workers, scale_to_face=scale_to_face, progress=False)
        seconds, cpu = time.perf_counter() - start, rusage_cpu() - start_cpu
    faces = int((manifest["status"] == "ok").sum())
    return {
        "workers": workers,
        "scale_to_face": scale_to_face,
        "clips": len(clips),
        "frames": len(manifest),
        "wall_s": round(seconds, 2),
        "cpu_s": round(cpu, 2),
        "clips_per_s": round(len(clips) / seconds, 2),
        "cpu_ms_per_clip": round(1000 * cpu / len(clips), 1),
        "detection_rate": round(faces / max(1, len(manifest)), 4),
        "load_before": before,
        "load_after": load(),
    }


def calibrate() -> dict:
    """A fixed single-thread OpenCV workload (ms, fastest and median of 7), to compare loaded runs."""
    import cv2
    import numpy as np

    cv2.setNumThreads(1)
    image = np.random.default_rng(0).integers(0, 255, (720, 720), dtype=np.uint8)
    times = timed(lambda: [cv2.GaussianBlur(image, (15, 15), 3) for _ in range(20)], 7)
    return {
        "workload": "20x cv2.GaussianBlur 15x15 on 720x720 uint8, one thread, 7 repeats",
        "ms": times["wall_ms"],
        "median_ms": times["wall_median_ms"],
        "cpu_ms": times["cpu_ms"],
        "load": times["load"],
    }


def calibrate_cnn() -> dict:
    """`fer_book/calibrate.py`'s figure (paper CNN training images/s), run in a subprocess."""
    with tempfile.TemporaryDirectory(prefix="bench-cal-") as tmp:
        out = Path(tmp) / "calibration.json"
        subprocess.run(
            [sys.executable, str(REPO / "fer_book" / "calibrate.py"), "--out", str(out)],
            check=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
            capture_output=True,
        )
        return json.loads(out.read_text())


def idle_estimate(stages: list[dict], startup: list[dict], clips_per_worker: int, cores: int = 2) -> dict:
    """clips/s on `cores` idle cores from a worker's per-clip CPU time (fastest) and its start-up."""
    per_clip = {r["option"].split(":")[0]: r["cpu_ms"] for r in stages if r["stage"] == "clip (worker)"}
    spawn = next(r["cpu_ms"] for r in startup if r["option"].startswith("worker process + imports (spawn"))
    build = next(r["cpu_ms"] for r in startup if r["option"].startswith("build"))
    out = {}
    for name, ms in per_clip.items():
        start = spawn + (build if name == "reference" else 0)
        out[name] = {
            "cpu_ms_per_clip": ms,
            "startup_cpu_ms_per_worker": start,
            "clips_per_s_long_run": round(cores * 1000 / ms, 1),
            f"clips_per_s_{clips_per_worker * cores}_clips": round(
                cores * clips_per_worker * 1000 / (start + clips_per_worker * ms), 1
            ),
        }
    return out


def table(rows: list[dict], columns: list[str]) -> str:
    """A plain-text table of `rows` (missing cells blank)."""
    return pd.DataFrame(rows).reindex(columns=columns).fillna("").to_string(index=False)


def real_mode(args: argparse.Namespace, sample_clips: pd.DataFrame, spread: Callable) -> int:
    """Run everything, write the JSON, print the tables."""
    from fer_utils.data.indexing import index_dataset

    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_avg_before": os.getloadavg(),
        },
        "calibration_before": calibrate(),
        "target_clips_per_s_2_cores": args.target,
        "copies": args.copies,
        "reference": REFERENCE,
    }
    stages, pipeline = [], []
    startup = startup_rows()
    with tempfile.TemporaryDirectory(prefix="bench-real-") as tmp:
        real = index_dataset("ravdess", real_batch(Path(tmp), args.copies)).clips
        sets = {REAL_SET: real, SAMPLE_SET: spread(sample_clips, args.copies)}
        for label, clips in sets.items():
            print(f"{label}: stages ...", flush=True)
            stages += [{"clips": label, **row} for row in stage_rows(Path(clips["path"].iloc[0]), args.repeats)]
        runs = [(REAL_SET, 2, True), (REAL_SET, 2, False), (REAL_SET, 1, True), (SAMPLE_SET, 2, True)]
        for label, workers, scale in runs:
            print(f"{label}: pipeline, {args.copies} clips, {workers} worker(s), scale_to_face={scale} ...", flush=True)
            pipeline.append({"clips_set": label, **pipeline_row(sets[label], workers, scale)})
    estimate = idle_estimate([r for r in stages if r["clips"] == REAL_SET], startup, args.copies // 2)
    report.update(
        {
            "startup": startup,
            "stages": stages,
            "pipeline": pipeline,
            "idle_estimate_real": estimate,
            "calibration_after": calibrate(),
        }
    )
    if args.calibrate_cnn:
        report["calibration_cnn"] = calibrate_cnn()
    report["machine"]["load_avg_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    print(f"wrote {args.out}")
    return 0


def print_report(report: dict) -> None:
    """The tables of a report."""
    print()
    print(table(report["startup"], ["stage", "option", "wall_ms", "cpu_ms", "load"]))
    print()
    print(
        table(
            report["stages"],
            [
                "clips",
                "stage",
                "option",
                "cpu_ms",
                "cpu_median_ms",
                "wall_ms",
                "wall_median_ms",
                "found",
                "min_iou_vs_reference",
                "bytes_per_clip",
                "load",
            ],
        )
    )
    print()
    print(
        table(
            report["pipeline"],
            [
                "clips_set",
                "workers",
                "scale_to_face",
                "clips",
                "wall_s",
                "cpu_s",
                "clips_per_s",
                "cpu_ms_per_clip",
                "detection_rate",
                "load_before",
                "load_after",
            ],
        )
    )
    print()
    for name, values in report["idle_estimate_real"].items():
        print(f"idle estimate, real clips, {name}: {values}")
    before, after = report["calibration_before"], report["calibration_after"]
    print(
        f"calibration (OpenCV ms fastest/median, lower is faster): {before['ms']}/{before['median_ms']} before, "
        f"{after['ms']}/{after['median_ms']} after"
    )
    if "calibration_cnn" in report:
        print(f"calibration (fer_book/calibrate.py): {report['calibration_cnn']['images_per_s']} images/s")
    print(f"load average before/after: {report['machine']['load_avg_before']} / {report['machine']['load_avg_after']}")
