"""What the duplicate audit costs at FER-2013's size (35,887 faces of 48×48 gray), as a crops folder and as the CSV.

Makes, in the artefact cache (`$FER_CACHE` or ~/.cache/fer_utils/duplicates_bench; never committed), 35,887
48×48 gray faces from the 1,289 generated faces the package ships: each face 27 or 28 times, every copy
changed enough to be a different picture (rotation ±15°, scale 0.85-1.15, shift ±4 px, brightness ±20,
every other copy flipped), then PLANTED_EXACT of them replaced by a byte copy of another face (as FER-2013
holds 1,516 groups of identical images) and PLANTED_NEAR by a re-encoded JPEG copy (read back, written as
PNG). It writes them as a crops folder (PNG files, a manifest with FER-2013's sides) and as FER-2013's CSV,
then times:

- `audit_duplicates` of the crops folder (what `preprocess` adds at its end), split into hashing (read,
  md5, perceptual hash) and grouping (exact groups, the band search for near pairs, components);
- `index_fer2013_csv` of the CSV, and the audit of its row paths (what `index --dataset fer2013` adds);
- `near_pairs` alone on the perceptual hashes, and what comparing every pair would take (measured on a
  sample of rows, scaled to n(n-1)/2);

beside `fer_book/calibrate.py`'s figure measured in the same process. One JSON line per run in
results/duplicates.jsonl.

    PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/bench_duplicates.py [--faces 35887]
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

RESULTS = Path(__file__).parent / "results" / "duplicates.jsonl"
FER2013_FACES = 35_887
SIDE = 48
PLANTED_EXACT = 1_500
PLANTED_NEAR = 300
USAGES = (("Training", "train", 28_709), ("PublicTest", "val", 3_589), ("PrivateTest", "test", 3_589))
CODES = {"angry": 0, "disgust": 1, "fearful": 2, "happy": 3, "sad": 4, "surprised": 5, "neutral": 6}


def variant(face: np.ndarray, copy: int, rng: np.random.Generator) -> np.ndarray:
    """Copy number `copy` of a 48×48 face, changed enough to be another picture (copy 0: the face itself)."""
    import cv2

    if copy == 0:
        return face
    angle, scale = rng.uniform(-15, 15), rng.uniform(0.85, 1.15)
    matrix = cv2.getRotationMatrix2D((SIDE / 2, SIDE / 2), angle, scale)
    matrix[:, 2] += rng.uniform(-4, 4, 2)
    moved = cv2.warpAffine(face, matrix, (SIDE, SIDE), borderMode=cv2.BORDER_REPLICATE)
    moved = np.clip(moved.astype(np.int16) + int(rng.integers(-20, 21)), 0, 255).astype(np.uint8)
    return moved[:, ::-1].copy() if copy % 2 else moved


def make_faces(count: int, seed: int = 0) -> tuple[list[np.ndarray], list[str], list[str]]:
    """(faces, emotion of each, side of each): `count` 48×48 faces with the planted exact and near copies."""
    import cv2

    from fer_utils.assets import diffusionfer_dir
    from fer_utils.data.folders import folder_emotion

    rng = np.random.default_rng(seed)
    shipped = sorted(diffusionfer_dir().glob("*/*.png"))
    faces, emotions = [], []
    for k in range(count):
        path = shipped[k % len(shipped)]
        face = cv2.resize(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), (SIDE, SIDE), interpolation=cv2.INTER_AREA)
        faces.append(variant(face, k // len(shipped), rng))
        emotions.append(folder_emotion(path.parent.name))
    targets = rng.choice(count, PLANTED_EXACT + PLANTED_NEAR, replace=False)
    for n, target in enumerate(targets):
        source = int(rng.integers(count))
        if n < PLANTED_EXACT:
            faces[target] = faces[source].copy()
        else:
            encoded = cv2.imencode(".jpg", faces[source], [cv2.IMWRITE_JPEG_QUALITY, 75])[1]
            faces[target] = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)
    sides = [side for _, side, n in USAGES for _ in range(n)][:count]
    sides += ["train"] * (count - len(sides))
    return faces, emotions, sides


def write_folder(folder: Path, faces: list[np.ndarray], emotions: list[str], sides: list[str]) -> pd.DataFrame:
    """The faces as a crops folder (`<emotion>/f<k>.png` and a manifest), made once; returns its usable frames."""
    import cv2

    from fer_utils.data.manifest import MANIFEST_NAME, load_manifest, usable_frames

    if not (folder / MANIFEST_NAME).is_file():
        rows = []
        for k, (face, emotion, side) in enumerate(zip(faces, emotions, sides)):
            image = f"{emotion}/f{k:05d}.png"
            (folder / emotion).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / image), face)
            rows.append(
                {
                    "dataset": "bench",
                    "clip_id": f"f{k:05d}",
                    "subject": f"f{k:05d}",
                    "emotion": emotion,
                    "source": image,
                    "frame_index": 0,
                    "detector": "none",
                    "x": 0,
                    "y": 0,
                    "w": SIDE,
                    "h": SIDE,
                    "n_faces": 1,
                    "status": "ok",
                    "reason": "",
                    "image": image,
                    "split": side,
                }
            )
        pd.DataFrame(rows).to_csv(folder / MANIFEST_NAME, index=False)
    return usable_frames(load_manifest(folder))


def write_csv(path: Path, faces: list[np.ndarray], emotions: list[str]) -> None:
    """The faces as FER-2013's CSV (emotion,pixels,Usage), made once."""
    if path.is_file():
        return
    usages = [usage for usage, _, n in USAGES for _ in range(n)]
    usages += ["Training"] * (len(faces) - len(usages))
    with path.open("w") as fh:
        fh.write("emotion,pixels,Usage\n")
        for face, emotion, usage in zip(faces, emotions, usages):
            fh.write(f"{CODES[emotion]},{' '.join(map(str, face.ravel().tolist()))},{usage}\n")


def timed(work):
    """(result, seconds) of `work()`."""
    start = time.perf_counter()
    result = work()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=FER2013_FACES)
    parser.add_argument("--pair-sample", type=int, default=2_000, help="rows compared pairwise to estimate brute force")
    args = parser.parse_args()

    from fer_book.calibrate import throughput
    from fer_utils.data.fer2013 import index_fer2013_csv
    from fer_utils.data.splits import audit_duplicates, group_hashes, hash_table, near_pairs

    cache = Path(os.environ.get("FER_CACHE", Path.home() / ".cache" / "fer_utils")) / "duplicates_bench"
    cache.mkdir(parents=True, exist_ok=True)
    faces, emotions, sides = make_faces(args.faces)
    frames = write_folder(cache / f"crops_{args.faces}", faces, emotions, sides)
    write_csv(cache / f"fer2013_{args.faces}.csv", faces, emotions)
    del faces

    audit, audit_s = timed(lambda: audit_duplicates(frames, cache / f"crops_{args.faces}", column="image"))
    hashes, hash_s = timed(lambda: hash_table([cache / f"crops_{args.faces}" / i for i in frames["image"]]))
    table = frames[["clip_id"]].assign(**hashes)
    _, group_s = timed(lambda: group_hashes(table))
    values = np.unique(np.array([int(h, 16) for h in hashes["phash"]], dtype=np.uint64))
    pairs, pairs_s = timed(lambda: near_pairs(values))
    sample = values[: args.pair_sample]
    _, sample_s = timed(lambda: (np.bitwise_count(sample[:, None] ^ sample[None, :]) <= 2).sum())
    brute_s = sample_s * (len(values) * (len(values) - 1)) / (len(sample) * (len(sample) - 1))
    index, index_s = timed(lambda: index_fer2013_csv(cache / f"fer2013_{args.faces}.csv"))
    csv_audit, csv_audit_s = timed(lambda: audit_duplicates(index.clips))
    calibration = throughput()
    record = {
        "faces": args.faces,
        "planted_exact": PLANTED_EXACT,
        "planted_near": PLANTED_NEAR,
        "counts_crops": audit.counts(),
        "counts_csv": csv_audit.counts(),
        "audit_crops_s": round(audit_s, 1),
        "hash_crops_s": round(hash_s, 1),
        "group_s": round(group_s, 2),
        "distinct_phash": int(len(values)),
        "near_pairs": int(len(pairs)),
        "near_pairs_s": round(pairs_s, 2),
        "all_pairs_estimate_s": round(brute_s, 1),
        "index_csv_s": round(index_s, 1),
        "audit_csv_s": round(csv_audit_s, 1),
        "calibration_images_per_s": calibration["images_per_s"],
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(record, indent=1))
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("a") as out:
        out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
