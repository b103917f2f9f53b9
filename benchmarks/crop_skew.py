"""Train/serve skew of the crop: one run scored on real faces through each path a face takes to the model.

    PYTHONPATH=$PWD FER_CACHE=$PWD/_cache TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/crop_skew.py \
        --label before [--out benchmarks/results/crop_skew.jsonl]

The run is the book's reference run (`artifacts.reference_run()`: the paper's CNN at 32×32 on the sample's
180×180 crops, seed 0). The faces are the real sets of `fer_utils.book.realfaces` (the London faces, the
CREMA-D clips, the RAVDESS clip; 6 frames a clip), cropped by `artifacts.ensure_crops` (dlib HOG). Every
path starts from the same decoded frame and the same face box (the one preprocessing found, from the
crops' manifest), so what differs is only how the frame becomes the model's input:

- **train**: the 180×180 crop PNG preprocessing wrote, through the training pipeline (`training.make_dataset`);
  this is what the chapters' real-face scores and `evaluate --test-crops` (the CLI) measure;
- **python**: the frame cropped by `inference.Recognizer`'s crop (what `predict`, the CLI, serves);
- **page**: the frame (written as a lossless PNG, so that the browser decodes the very same pixels) cropped
  by the demo page's own crop code (`book/_demo`) in headless chromium.

For each set and path: accuracy and macro F1 (over the emotions present that the model knows), the share of
frames whose predicted class equals the train path's, and the mean and largest absolute difference (gray
levels) between the model's input on that path and on the train path. The CLI is also run as a command:
`evaluate --model --test-crops` on each set (its accuracy must be the train path's) and `predict` on the first
London face. One JSON line per call in results/crop_skew.jsonl, with `calibrate.py`'s figure of the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
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
    from fer_utils.video import try_sample_frames

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


HARNESS = """<!doctype html><html><body><script>
const state = {};
%s
window.cropAll = async (items, height, width) => {
  const out = [];
  for (const [name, box] of items) {
    const image = new Image();
    image.src = name;
    await image.decode();
    out.push(Array.from(grayCrop(image, box, height, width)));
  }
  return out;
};
window.ready = true;
</script></body></html>"""


def page_crop_code() -> str:
    """The page's crop as book/_demo/demo.js writes it: its MARGIN and its grayCrop function."""
    text = (ROOT / "book" / "_demo" / "demo.js").read_text()
    margin = re.search(r"^const MARGIN = .*$", text, re.M).group(0)
    start = text.index("function grayCrop(")
    end = text.index("\n}\n", start) + 3
    return margin + "\n" + text[start:end]


def page_inputs(frames: list[np.ndarray], boxes: list[dict], side: int) -> np.ndarray:
    """The page's crops (N, side, side) of `frames` at `boxes`, made by its own code in headless chromium."""
    import cv2
    from browser import chromium, serve, wait_for

    with tempfile.TemporaryDirectory() as folder:
        site = Path(folder)
        names = []
        for i, frame in enumerate(frames):
            cv2.imwrite(str(site / f"{i:04d}.png"), frame)
            names.append(f"{i:04d}.png")
        (site / "index.html").write_text(HARNESS % page_crop_code())
        crops = []
        with serve(site) as url, chromium() as driver:
            driver.set_script_timeout(600)
            driver.get(f"{url}/index.html")
            wait_for(driver, "window.ready", timeout=30)
            for start in range(0, len(names), 32):
                items = [[n, b] for n, b in zip(names[start : start + 32], boxes[start : start + 32])]
                crops += driver.execute_async_script(
                    "const done = arguments[arguments.length - 1];"
                    "window.cropAll(arguments[0], arguments[1], arguments[2]).then(done);",
                    items,
                    side,
                    side,
                )
    return np.asarray(crops, dtype=np.uint8).reshape(len(frames), side, side)


def python_inputs(frames: list[np.ndarray], boxes: list[dict], side: int, margin: float) -> np.ndarray:
    """`inference.Recognizer`'s crops of `frames` at `boxes` (its `crop_face` call, at the model's side)."""
    from fer_utils.crops import crop_face
    from fer_utils.faces import Box

    return np.stack([crop_face(f, Box(**b), size=side, margin=margin) for f, b in zip(frames, boxes)])


def train_inputs(real: object, classes: list[str], side: int) -> np.ndarray:
    """The model's input on the training pipeline: the crop PNGs through `training.load_images`."""
    from fer_utils.training import load_images

    return load_images(real.frames, real.crops, (side, side))[..., 0]


def scores(truth: pd.Series, predicted: np.ndarray, reference: np.ndarray) -> dict:
    """Accuracy, macro F1 over the emotions present, and agreement with the train path's classes."""
    from fer_utils.evaluation import classification_metrics

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


def cli_checks(run: object, sets: dict, model_side: int, margin: float) -> dict:
    """The CLI's `evaluate --test-crops` accuracy per set, and `predict`'s probabilities on the first London face
    beside the python path's on the same box."""
    import keras

    from fer_utils.crops import crop_face
    from fer_utils.faces import make_detector
    from fer_utils.video import read_image

    out = {}
    for name in SETS:
        with tempfile.NamedTemporaryFile(suffix=".json") as report:
            cli("evaluate", "--model", str(run.model), "--test-crops", str(sets[name].crops), "--json", report.name)
            out[f"evaluate {name}"] = round(json.loads(Path(report.name).read_text())["accuracy"], 4)
    london = sets["London faces"]
    face = Path(london.frames["source"].iloc[0])
    with tempfile.NamedTemporaryFile(suffix=".json") as table:
        cli("predict", "--model", str(run.model), str(face), "--json", table.name)
        printed = json.loads(Path(table.name).read_text())
    image = read_image(face)
    box = make_detector("dlib-hog").detect(image)[0]
    model = keras.saving.load_model(run.model, compile=False)
    crop = crop_face(image, box, size=model_side, margin=margin)[None, ..., None].astype("float32")
    mine = model.predict_on_batch(crop)[0]
    columns = [k for k in printed[0] if k.startswith("p_")]
    out["predict equals python path"] = bool(np.allclose([printed[0][c] for c in columns], mine, atol=1e-5))
    return out


def run_of(name: str) -> object:
    """The run measured: the book's reference run (the sample, 32 px), or chapter 10's paper CNN (seed 0) trained
    on the generated faces (96 px crops of whole images, 32 px, as the demo page's default model is trained)."""
    from fer_utils.book import artifacts
    from fer_utils.manifest import load_manifest, usable_frames
    from fer_utils.splits import default_protocol

    if name == "reference":
        return artifacts.reference_run()
    crops = artifacts.ensure_crops(artifacts.GENERATED_DATASET)
    protocol = default_protocol(usable_frames(load_manifest(crops)))
    return artifacts.ensure_run(
        crops, seed=0, protocol=protocol, image_size=(32, 32), epochs=40, patience=8, learning_rate=1e-3
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="what this measurement is, e.g. before or after")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--run", choices=("reference", "generated"), default="reference", help="which run (see run_of)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import keras
    from calibrate import throughput

    from fer_utils.book.realfaces import real_sets

    calibration = throughput()
    run = run_of(args.run)
    model = keras.saving.load_model(run.model, compile=False)
    classes = run.classes()
    side = int(model.input_shape[1])
    margin = run.crop_margin()
    sets = real_sets()
    rows, pooled = [], {path: [] for path in (*PATHS, "truth")}
    differences = {path: [] for path in PATHS}
    for name in SETS:
        real = sets[name]
        real = type(real)(
            real.name, real.crops, real.frames[real.frames["emotion"].isin(classes)].reset_index(drop=True)
        )
        frames, boxes = real_frames(real), boxes_of(real.frames)
        inputs = {
            "train": train_inputs(real, classes, side),
            "python": python_inputs(frames, boxes, side, margin),
            "page": page_inputs(frames, boxes, side),
        }
        batch = model.input_shape[1:]
        predicted = {
            path: np.asarray(classes)[model.predict(x.reshape(-1, *batch).astype("float32"), verbose=0).argmax(1)]
            for path, x in inputs.items()
        }
        for path in PATHS:
            gap = np.abs(inputs[path].astype(float) - inputs["train"].astype(float)).reshape(len(frames), -1)
            differences[path].append(gap)
            rows.append(
                {
                    "set": name,
                    "path": path,
                    "frames": len(frames),
                    **scores(real.frames["emotion"], predicted[path], predicted["train"]),
                    "input_mean_abs_diff": round(float(gap.mean()), 3),
                    "input_max_abs_diff": round(float(gap.max()), 1),
                }
            )
            pooled[path].append(predicted[path])
        pooled["truth"].append(real.frames["emotion"].to_numpy())
    truth = pd.Series(np.concatenate(pooled["truth"]))
    for path in PATHS:
        gap = np.concatenate(differences[path])
        rows.append(
            {
                "set": "all three pooled",
                "path": path,
                "frames": len(truth),
                **scores(truth, np.concatenate(pooled[path]), np.concatenate(pooled["train"])),
                "input_mean_abs_diff": round(float(gap.mean()), 3),
                "input_max_abs_diff": round(float(gap.max()), 1),
            }
        )
    table = pd.DataFrame(rows)
    record = {
        "label": args.label,
        "run_name": args.run,
        "time": time.strftime("%Y-%m-%d %H:%M"),
        "run": str(run),
        "model_input": list(model.input_shape[1:]),
        "classes": classes,
        "calibration_images_per_s": calibration["images_per_s"],
        "load_average": list(os.getloadavg()),
        "cli": cli_checks(run, sets, side, margin),
        "rows": rows,
    }
    with pd.option_context("display.width", 160):
        print(table.to_string(index=False))
    print(json.dumps({k: v for k, v in record.items() if k != "rows"}, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as fh:
        fh.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
