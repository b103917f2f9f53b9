"""Train/serve skew of the crop: one run scored on real faces through each path a face takes to the model.

    PYTHONPATH=$PWD FER_CACHE=$PWD/_cache TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/crop_skew.py \
        --label after [--run reference|generated] [--run-dir RUN] [--out benchmarks/results/crop_skew.jsonl]

(The "before" records were measured on the code before the crop spec, commit d9f536f, with this script as it
was then: `git show 610b6a1:benchmarks/crop_skew.py`.)

The run is the book's reference run (`artifacts.train` with `TrainConfig.preset("reference")`: the paper's
CNN at 32×32 on the sample's 180×180 crops, seed 0), chapter 10's paper CNN on the generated faces (`--run generated`), or any run folder
(`--run-dir`, e.g. one trained before the crop spec, served through `RunFolder.load`). The faces are the
real sets of `fer_utils.book.realfaces` (the London faces, the
CREMA-D clips, the RAVDESS clip; 6 frames a clip), cropped by `artifacts.Dataset.crops` (dlib HOG). Every
path starts from the same decoded frame and the same face box (the one preprocessing found, from the
crops' manifest), so what differs is only how the frame becomes the model's input:

- **train**: the 180×180 crop PNG preprocessing wrote, through the training pipeline (`pipeline.make_dataset`);
  this is what the chapters' real-face scores and `evaluate --test-crops` (the CLI) measure;
- **python**: the frame cropped as `inference.Recognizer` crops it from the run's crop spec (what `predict`,
  the CLI, serves);
- **page**: the frame (written as a lossless PNG, so that the browser decodes the very same pixels) cropped
  by the demo page's own crop code (`book/_demo/crop.js`, `frameCrop`) in headless chromium, from the spec.

For each set and path: accuracy and macro F1 (over the emotions present that the model knows), the share of
frames whose predicted class equals the train path's, and the mean and largest absolute difference (gray
levels) from the train path of what the network sees: its input after the model's own resizer
(`net_input_*`, the figure the "before" records call `input_*`, where the model took 32×32 directly) and the
crop fed to the model (`crop_*`). The CLI is also run as a command:
`evaluate --model --test-crops` on each set (its accuracy must be the train path's) and `predict` on the first
London face. One JSON line per call in results/crop_skew.jsonl, with `calibrate.py`'s figure of the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the browser helpers the page's tests use

RESULTS = Path(__file__).parent / "results" / "crop_skew.jsonl"
SETS = ("London faces", "CREMA-D clips", "RAVDESS clip")
PATHS = ("train", "python", "page")


def real_frames(real: object) -> list[np.ndarray]:
    """The decoded frame of every row of a real set (BGR), as preprocessing read it."""
    from fer_utils.book.realfaces import FRAMES_PER_CLIP
    from fer_utils.data.media import try_sample_frames

    decoded: dict[str, dict[int, np.ndarray]] = {}
    frames = []
    for source, index in zip(real.frames["source"], real.frames["frame_index"]):
        if source not in decoded:
            decoded[source] = dict(try_sample_frames(Path(source), FRAMES_PER_CLIP))
        frames.append(decoded[source][int(index)])
    return frames


def boxes_of(frames: pd.DataFrame) -> list[dict]:
    """The face box preprocessing found for each row."""
    return [{"x": int(r.x), "y": int(r.y), "w": int(r.w), "h": int(r.h)} for r in frames.itertuples()]


def page_inputs(frames: list[np.ndarray], boxes: list[dict], spec: object) -> np.ndarray:
    """The page's crops (N, side, side) of `frames` at `boxes`, made by its own code in headless chromium."""
    import shutil

    import cv2
    from browser import CROP_PAGE, chromium, serve, wait_for

    with tempfile.TemporaryDirectory() as folder:
        site = Path(folder)
        names = []
        for i, frame in enumerate(frames):
            cv2.imwrite(str(site / f"{i:04d}.png"), frame)
            names.append(f"{i:04d}.png")
        shutil.copy2(ROOT / "book" / "_demo" / "crop.js", site / "crop.js")
        (site / "index.html").write_text(CROP_PAGE)
        crops = []
        with serve(site) as url, chromium() as driver:
            driver.set_script_timeout(600)
            driver.get(f"{url}/index.html")
            wait_for(driver, "window.ready", timeout=30)
            for start in range(0, len(names), 32):
                items = [[n, b] for n, b in zip(names[start : start + 32], boxes[start : start + 32])]
                crops += driver.execute_async_script(
                    "const done = arguments[arguments.length - 1];"
                    "window.cropFrames(arguments[0], arguments[1]).then(done);",
                    items,
                    spec.to_dict(),
                )
    return np.asarray(crops, dtype=np.uint8).reshape(len(frames), spec.side, spec.side)


def python_inputs(frames: list[np.ndarray], boxes: list[dict], spec: object) -> np.ndarray:
    """`inference.Recognizer`'s crops of `frames` at `boxes` (`crops.spec_crop` with the run's spec)."""
    from fer_utils.faces.crops import Box, spec_crop

    return np.stack([spec_crop(f, Box(**b), spec) for f, b in zip(frames, boxes)])


def train_inputs(real: object) -> np.ndarray:
    """The model's input on the training pipeline: the crop PNGs through `pipeline.load_images`."""
    from fer_utils.train.pipeline import load_images

    return load_images(real.frames, real.crops)[..., 0]


def scores(truth: pd.Series, predicted: np.ndarray, reference: np.ndarray) -> dict:
    """Accuracy, macro F1 over the emotions present, and agreement with the train path's classes."""
    from fer_utils.evaluate.metrics import classification_metrics

    present = sorted(set(truth))
    metrics = classification_metrics(truth, predicted, present)
    return {
        "accuracy": round(metrics["accuracy"], 4),
        "macro_f1": round(metrics["f1_macro"], 4),
        "agrees_with_train": round(float(np.mean(predicted == reference)), 4),
    }


def cli(*args: str) -> str:
    """Run `python -m fer_utils ARGS` and return its standard output."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "fer_utils", *args], capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(done.stderr)
    return done.stdout


def cli_checks(run: object, sets: dict, model: object, spec: object) -> dict:
    """The CLI's `evaluate --test-crops` accuracy per set, and whether `predict`'s probabilities on the first
    London face are the python path's on the same box."""
    from fer_utils.data.media import read_image
    from fer_utils.faces.crops import make_detector, spec_crop

    out = {}
    for name in SETS:
        with tempfile.NamedTemporaryFile(suffix=".json") as report:
            cli(
                "evaluate",
                "--model",
                str(run.model_file),
                "--test-crops",
                str(sets[name].crops),
                "--json",
                report.name,
                "--overwrite",
            )
            out[f"evaluate {name}"] = round(json.loads(Path(report.name).read_text())["accuracy"], 4)
    face = Path(sets["London faces"].frames["source"].iloc[0])
    with tempfile.NamedTemporaryFile(suffix=".json") as table:
        cli("predict", "--model", str(run.model_file), str(face), "--json", table.name, "--overwrite")
        printed = json.loads(Path(table.name).read_text())
    image = read_image(face)
    box = make_detector(spec.detector).detect(image)[0]
    mine = model.predict_on_batch(spec_crop(image, box, spec)[None, ..., None].astype("float32"))[0]
    columns = [k for k in printed[0] if k.startswith("p_")]
    out["predict equals python path"] = bool(np.allclose([printed[0][c] for c in columns], mine, atol=1e-5))
    return out


def run_of(name: str) -> object:
    """The run measured: the book's reference run (the sample, `TrainConfig.preset("reference")`: 32 px, as
    chapters 3, 8 and 9 find it), or chapter 10's paper CNN (seed 0) trained on the generated faces (96 px crops
    of whole images, 32 px, as the demo page's default model is trained)."""
    from fer_utils.book import artifacts
    from fer_utils.train.config import TrainConfig
    from fer_utils.train.pipeline import FaceData

    if name == "reference":
        return artifacts.train(None, FaceData(artifacts.Dataset().crops()), TrainConfig.preset("reference"))
    crops = artifacts.Dataset(artifacts.GENERATED_DATASET).crops()
    config = TrainConfig(seed=0, image_size=(32, 32), epochs=40, patience=8, learning_rate=1e-3)
    return artifacts.train(None, FaceData(crops), config)  # the protocol: the dataset's own split, if it keeps one


def difference(seen: np.ndarray, reference: np.ndarray, prefix: str) -> dict:
    """Mean and largest absolute difference (gray levels) of `seen` from `reference` (None for crops of another
    side: a run trained on crops of another side than the real sets' is served at its own)."""
    if np.shape(seen) != np.shape(reference):
        return {f"{prefix}_mean_abs_diff": None, f"{prefix}_max_abs_diff": None}
    gap = np.abs(np.asarray(seen, float) - np.asarray(reference, float))
    return {
        f"{prefix}_mean_abs_diff": round(float(gap.mean()), 3),
        f"{prefix}_max_abs_diff": round(float(gap.max()), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="what this measurement is, e.g. before or after")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--run", choices=("reference", "generated"), default="reference", help="which run (see run_of)")
    parser.add_argument("--run-dir", type=Path, help="measure this run folder instead (e.g. one made before the spec)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import keras

    from fer_book.calibrate import append_record, throughput
    from fer_utils.book.realfaces import real_sets
    from fer_utils.deploy.inference import Recognizer
    from fer_utils.train.runs import RunFolder

    calibration = throughput()
    run = RunFolder(args.run_dir) if args.run_dir else run_of(args.run)
    model, classes = run.load(), run.classes()
    spec = Recognizer.of_run(run).spec  # the run's crop spec as served (a run on whole images: with the default margin)
    network = keras.Model(model.input, model.get_layer("resize").output)  # what the network itself sees
    sets = real_sets()
    rows, pooled = [], {path: [] for path in (*PATHS, "truth")}
    seen_all = {path: [] for path in PATHS}
    for name in SETS:
        real = sets[name]
        known = real.frames[real.frames["emotion"].isin(classes)].reset_index(drop=True)
        real = type(real)(real.name, real.crops, known)
        frames, boxes = real_frames(real), boxes_of(real.frames)
        crops = {
            "train": train_inputs(real),
            "python": python_inputs(frames, boxes, spec),
            "page": page_inputs(frames, boxes, spec),
        }
        batches = {path: x[..., None].astype("float32") for path, x in crops.items()}
        seen = {path: network.predict(x, verbose=0) for path, x in batches.items()}
        predicted = {path: np.asarray(classes)[model.predict(x, verbose=0).argmax(1)] for path, x in batches.items()}
        for path in PATHS:
            rows.append(
                {
                    "set": name,
                    "path": path,
                    "frames": len(frames),
                    **scores(real.frames["emotion"], predicted[path], predicted["train"]),
                    **difference(seen[path], seen["train"], "net_input"),
                    **difference(crops[path], crops["train"], "crop"),
                }
            )
            pooled[path].append(predicted[path])
            seen_all[path].append(seen[path].reshape(len(frames), -1))
        pooled["truth"].append(real.frames["emotion"].to_numpy())
    truth = pd.Series(np.concatenate(pooled["truth"]))
    for path in PATHS:
        rows.append(
            {
                "set": "all three pooled",
                "path": path,
                "frames": len(truth),
                **scores(truth, np.concatenate(pooled[path]), np.concatenate(pooled["train"])),
                **difference(np.concatenate(seen_all[path]), np.concatenate(seen_all["train"]), "net_input"),
            }
        )
    table = pd.DataFrame(rows)
    record = {
        "label": args.label,
        "run_name": str(args.run_dir) if args.run_dir else args.run,
        "time": time.strftime("%Y-%m-%d %H:%M"),
        "run": str(run),
        "model_input": list(model.input_shape[1:]),
        "network_input": list(network.output_shape[1:]),
        "crop_spec": spec.to_dict(),
        "classes": classes,
        "calibration_images_per_s": calibration["images_per_s"],
        "load_average": list(os.getloadavg()),
        "cli": cli_checks(run, sets, model, spec),
        "rows": rows,
    }
    with pd.option_context("display.width", 180):
        print(table.to_string(index=False))
    print(json.dumps({k: v for k, v in record.items() if k != "rows"}, indent=1))
    append_record(args.out, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
