"""Detection rate on small real face crops, by the size detection is upsampled to (MIN_DETECTION_SIDE).

Face-crop datasets (FER-style) ship 48×48 gray faces; dlib's HOG window is 80 px, so it finds none of
them as they are. This measures, for each detector, the share of real faces found in tight 48×48 gray
crops (margin 0.1; the 204 London faces and the 24 RAVDESS stills, cropped around the face dlib HOG
finds at full resolution) when detection runs on a copy upsampled to each `min_side`, and the time per
image. Results go to JSON and a table.

    .venv/bin/python benchmarks/bench_small_faces.py [--detectors dlib-hog opencv-haar] [--out benchmarks/results/small_faces.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from fer_utils.assets import london_faces_dir, still_paths
from fer_utils.faces.crops import MIN_DETECTION_SIDE, crop_face, make_detector

REPO = Path(__file__).resolve().parents[1]
SIDES = (48, 64, 80, 96, 128, MIN_DETECTION_SIDE, 200)
CROP_SIDE = 48
TARGETS = {"detection_rate_at_default": 0.99}


def small_crops(side: int = CROP_SIDE) -> list[np.ndarray]:
    """side×side gray crops (margin 0.1) of every real face shipped with the package."""
    finder = make_detector("dlib-hog", max_side=None)
    crops = []
    for path in sorted(london_faces_dir().glob("*/*.jpg")) + still_paths():
        image = cv2.imread(str(path))
        boxes = finder.detect(image)
        if boxes:
            crops.append(crop_face(image, boxes[0], side=side, margin=0.1))
    return crops


def measure(crops: list[np.ndarray], name: str, min_side: int) -> dict:
    """Detection rate and ms per image of detector `name` upsampling to `min_side`."""
    detector = make_detector(name)
    detector.min_side = min_side
    detector.detect(crops[0])
    start = time.perf_counter()
    found = sum(len(detector.detect(crop)) > 0 for crop in crops)
    seconds = time.perf_counter() - start
    return {
        "detector": name,
        "min_side": min_side,
        "detection_rate": found / len(crops),
        "ms_per_image": 1000 * seconds / len(crops),
        "images": len(crops),
    }


def main() -> None:
    """Run the sweep, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--detectors", nargs="+", default=["dlib-hog", "opencv-haar"])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "small_faces.json")
    args = parser.parse_args()
    crops = small_crops()
    table = pd.DataFrame([measure(crops, name, side) for name in args.detectors for side in SIDES])
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    hog = table[(table["detector"] == "dlib-hog") & (table["min_side"] == MIN_DETECTION_SIDE)]
    result = {
        "machine": platform.platform(),
        "crop_side": CROP_SIDE,
        "default_min_side": MIN_DETECTION_SIDE,
        "targets": TARGETS,
        "rows": table.to_dict("records"),
        "meets_targets": bool(len(hog) and hog["detection_rate"].iloc[0] >= TARGETS["detection_rate_at_default"]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}; meets targets: {result['meets_targets']}")


if __name__ == "__main__":
    main()
