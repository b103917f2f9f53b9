"""The book's network, two block orders (issue 44): conv → BN → ReLU → pool (the design measured on real
FER-2013, ../shared/measurements) against conv → pool → BN → ReLU (`models.networks.build_wild_cnn`: normalisation and
ReLU on a quarter of the values). Each trains with `--recipe wild`'s settings (batch 32 on these 1,289 faces:
128 would leave 7 steps per epoch) on the generated faces (random split, seeds 0-2) and is scored on their test
side and on the real faces at hand (`fer_utils.book.realfaces`, pooled). One JSON line per run in
results/wild_variants.jsonl.

    FER_CACHE=$PWD/_cache PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/wild_variants.py

The recorded runs were made before issue 45 gave the generated faces' crops no margin (they had 0.1).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import keras
from keras import layers

from fer_utils.book import artifacts, realfaces
from fer_utils.models.networks import _inputs, build_wild_cnn
from fer_utils.registry import WILD_WIDTHS
from fer_utils.train.config import TrainConfig
from fer_utils.train.fit import train_run
from fer_utils.train.pipeline import FaceData

RESULTS = Path(__file__).parent / "results" / "wild_variants.jsonl"


def normalise_first(num_classes=7, input_shape=(48, 48, 1), widths=WILD_WIDTHS, head_dropout=0.3) -> keras.Model:
    """The measured design: conv → BN → ReLU → pool in every block."""
    inputs, x = _inputs(input_shape)
    for block, filters in enumerate(widths, start=1):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{block}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"bn{block}")(x)
        x = layers.Activation("relu", name=f"relu{block}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{block}")(x)
    x = layers.Dropout(head_dropout, name="dropout")(layers.GlobalAveragePooling2D(name="gap")(x))
    return keras.Model(inputs, layers.Dense(num_classes, activation="softmax", name="emotion")(x), name="wild_cnn")


def main() -> None:
    crops = artifacts.Dataset(artifacts.GENERATED_DATASET).crops()
    sets = realfaces.real_sets()
    out = Path(tempfile.mkdtemp())
    for seed in (0, 1, 2):
        for name, build in (("normalise-first", normalise_first), ("pool-first", build_wild_cnn)):
            start = time.time()
            config = TrainConfig.preset("wild", protocol="random", seed=seed, image_size=(48, 48), batch_size=32)
            run = train_run(build, FaceData(crops), config, out / f"{name}{seed}", verbose=0)
            table = realfaces.score_real(realfaces.predict_real(run.load(), run.classes(), sets), run.classes())
            pooled = table[table["set"] == realfaces.POOLED].iloc[0]
            record = {
                "variant": name,
                "seed": seed,
                "generated_test": run.metrics()["test"]["frame"]["accuracy"],
                "real_acc": float(pooled["accuracy"]),
                "real_f1": float(pooled["macro F1"]),
                "s": round(time.time() - start, 1),
            }
            print(json.dumps(record), flush=True)
            with RESULTS.open("a") as results:
                results.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
