"""What one training epoch costs on a CPU at FER-2013's size (28,709 training crops, 48×48 gray): is a GPU worth it?

Makes a folder of 28,709 48×48 gray PNG crops from the 1,289 generated faces the package ships
(fer_utils/assets/diffusionfer), each repeated with a small shift (up to ±2 px) and every other copy
flipped, in the artefact cache (`$FER_CACHE` or ~/.cache/fer_utils/fer2013_sized; never committed). Then,
for each model and augmentation setting, trains through the package's own input pipeline and model
(`training.make_dataset`, `train.fit.compile_model`: decode, cache, shuffle, batch 32, Adam) for
`--epochs` epochs and records the seconds of each epoch (the first one also decodes the PNGs and
traces the graph; later ones read the in-memory cache) and images/s, beside `fer_book/calibrate.py`'s
figure measured in the same process. One JSON line per setting in results/epoch_cost.jsonl.

    PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/epoch_cost.py [--epochs 2] \
        [--models paper-cnn,mini-xception] [--augment none,wild]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

RESULTS = Path(__file__).parent / "results" / "epoch_cost.jsonl"
FER2013_TRAIN = 28_709  # FER-2013's training side (Goodfellow et al. 2013)
SIDE = 48
SHIFT = 2  # largest shift of a copy, in pixels


def shipped_faces() -> list[tuple[str, Path]]:
    """(emotion, path) of every generated face shipped with the package, in a fixed order."""
    from fer_utils.assets import diffusionfer_dir

    folder = diffusionfer_dir()
    return [(path.parent.name, path) for path in sorted(folder.glob("*/*.png"))]


def copy_of(face: np.ndarray, copy: int, rng: np.random.Generator) -> np.ndarray:
    """Copy number `copy` of a 48×48 face: shifted by up to SHIFT px (edges replicated), flipped if odd."""
    import cv2

    if copy == 0:
        return face
    dx, dy = (int(v) for v in rng.integers(-SHIFT, SHIFT + 1, size=2))
    moved = cv2.warpAffine(
        face, np.float32([[1, 0, dx], [0, 1, dy]]), face.shape[::-1], borderMode=cv2.BORDER_REPLICATE
    )
    return moved[:, ::-1] if copy % 2 else moved


def fer2013_sized_folder(out: Path, n: int = FER2013_TRAIN) -> pd.DataFrame:
    """`n` 48×48 gray crops under `out` (made once: a complete folder has its frames.csv) and their table."""
    import cv2

    table = out / "frames.csv"
    if table.is_file():
        return pd.read_csv(table)
    faces = shipped_faces()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        emotion, path = faces[i % len(faces)]
        face = cv2.resize(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), (SIDE, SIDE), interpolation=cv2.INTER_AREA)
        image = Path(emotion) / f"{i:05d}.png"
        (out / emotion).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out / image), np.ascontiguousarray(copy_of(face, i // len(faces), rng)))
        rows.append({"image": image.as_posix(), "emotion": emotion})
    frames = pd.DataFrame(rows)
    frames.to_csv(table, index=False)  # last: the folder is complete when it exists
    return frames


def epoch_seconds(frames: pd.DataFrame, root: Path, model_name: str, augment: str, epochs: int) -> list[float]:
    """Seconds of each of `epochs` training epochs of `model_name` at 48 px through the package's pipeline."""
    import keras

    from fer_utils.train.config import Feed, TrainConfig
    from fer_utils.train.fit import compile_model, seed_everything
    from fer_utils.train.pipeline import make_dataset

    strength = TrainConfig.preset("arriaga").augmentation()  # the wild recipe of the time these records were made
    classes = sorted(frames["emotion"].unique())
    config = TrainConfig(model=model_name, image_size=(SIDE, SIDE), learning_rate=1e-3)
    seed_everything(0)
    feed = Feed(shuffle=True, seed=0, augment=strength if augment == "wild" else None, image_size=(SIDE, SIDE))
    dataset = make_dataset(frames, root, classes, feed)
    model = compile_model(config, len(classes))
    stamps: list[float] = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: stamps.append(time.perf_counter()),
        on_epoch_end=lambda epoch, logs: stamps.append(time.perf_counter()),
    )
    model.fit(dataset, epochs=epochs, callbacks=[timer], verbose=0)
    return [round(stamps[i + 1] - stamps[i], 1) for i in range(0, len(stamps), 2)]


def main(argv: list[str] | None = None) -> int:
    """Make the folder, calibrate, time every setting, print and append the records."""
    from fer_book.calibrate import throughput
    from fer_utils.book.artifacts import default_cache

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--models", default="paper-cnn,mini-xception")
    parser.add_argument("--augment", default="none,wild", help="comma-separated: none, wild (the recipe's strength)")
    parser.add_argument("--folder", type=Path, default=None, help="default: the artefact cache's fer2013_sized")
    args = parser.parse_args(argv)
    root = args.folder or default_cache() / "fer2013_sized"
    start = time.perf_counter()
    frames = fer2013_sized_folder(root)
    print(f"{len(frames)} crops of {SIDE}x{SIDE} in {root} ({time.perf_counter() - start:.0f} s)")
    calibration = throughput()["images_per_s"]
    print(f"calibration: {calibration} images/s (fer_book/calibrate.py)")
    for model_name in args.models.split(","):
        for augment in args.augment.split(","):
            load = list(os.getloadavg())
            seconds = epoch_seconds(frames, root, model_name, augment, args.epochs)
            record = {
                "model": model_name,
                "side": SIDE,
                "augment": augment,
                "images": len(frames),
                "batch": 32,
                "epoch_seconds": seconds,
                "images_per_s": [round(len(frames) / s, 1) for s in seconds],
                "calibration_images_per_s": calibration,
                "load_before": load,
                "load_after": list(os.getloadavg()),
                "cpus": os.cpu_count(),
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            print(json.dumps(record))
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            with RESULTS.open("a") as out:
                out.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
