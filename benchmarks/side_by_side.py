"""Two chapter-like trainings side by side, as `make book` executes two chapters (`--jobs 2`): TensorFlow's
own thread pools (every core each) against one thread each.

Each process trains the paper CNN, mini-Xception and the book's network for 4 epochs on 1,600 random 32-px
images (batch 32, chapter 7's size) and prints its seconds per epoch; the pair's wall time is printed per mode.
Not applied to `make book`: thread counts change float rounding, so the built book would state other numbers
than a chapter executed alone (tests/test_same_numbers.py failed with it).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/side_by_side.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

MODELS = ("paper-cnn", "mini-xception", "wild-cnn")
TF_THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def train_once() -> None:
    """One process's share: each model's seconds per epoch (after a first epoch that traces)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from fer_utils.models.networks import MODEL_BUILDERS

    for name in MODELS:
        keras.utils.set_random_seed(0)
        x = np.random.default_rng(0).uniform(0, 1, (1600, 32, 32, 1)).astype("float32")
        y = np.random.default_rng(1).integers(0, 8, 1600)
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(32).prefetch(2)
        model = MODEL_BUILDERS[name](num_classes=8, input_shape=(32, 32, 1))
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(data, epochs=1, verbose=0)
        start = time.perf_counter()
        model.fit(data, epochs=4, verbose=0)
        print(f"{name} {(time.perf_counter() - start) / 4:.3f} s/epoch", flush=True)


def pair(threads: int | None) -> float:
    """Wall seconds of two `train_once` processes side by side, with `threads` TensorFlow threads each."""
    env = {k: v for k, v in os.environ.items() if k not in TF_THREAD_VARIABLES} | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    if threads is not None:
        env |= {name: str(threads) for name in TF_THREAD_VARIABLES}
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, "--one"], env=env) for _ in range(2)]
    for proc in procs:
        proc.wait()
    return time.perf_counter() - start


if __name__ == "__main__":
    if "--one" in sys.argv:
        train_once()
    else:
        for threads in (None, 1):
            print(f"threads per process {threads or 'all'}: pair wall {pair(threads):.1f} s", flush=True)
