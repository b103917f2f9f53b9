"""Where a FER-2013-sized training epoch goes on 2 CPU cores, and what XLA and op determinism change
(issue 36, items 2 and 3), before and after the changes of item 3.

    PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/train_speed.py [--parts floor,profile,repro]
    PYTHONPATH=$PWD .venv/bin/python benchmarks/train_speed.py --summary    # the recorded tables

- **floor**: the FLOP rate of these cores: the median GFLOP/s of a 4096×4096 float32 matmul in TensorFlow
  (and in bfloat16, which runs at full speed only where the CPU has bfloat16 instructions).
- **profile**: for the paper's CNN and mini-Xception at 48 px on the 28,709-crop folder that
  `epoch_cost.py` builds (made once in the artefact cache), in one process per setting (op determinism
  is process-wide and cannot be switched off again): the PNG decode of every crop (`pipeline.load_images`),
  one pass of the package's own input pipeline without a model (`pipeline.make_dataset`: cache, shuffle,
  batch 32; with and without the wild recipe's augmentation), the model step alone (`fit` on the decoded
  in-memory array), and whole epochs through
  `make_dataset` + `fit` as the book trains (epoch 1 also decodes and traces; epoch 2 reads the cache).
  Settings: op determinism on (TrainConfig's default, which also makes Keras refuse XLA) or off, XLA
  (`model.compile(jit_compile=True)`) off or on, and Keras's `steps_per_execution` (train steps per graph
  call; `--steps`, default the package's, 1), and the wild recipe's augmentation run ahead on a worker
  thread (`augment_ahead`, an option measured here: faster under op determinism, but not the same numbers).
- **resizer**: the in-model resizer's share: whole epochs through `make_dataset` + `fit` as the book feeds
  the crops (batches of unknown side: the resizer runs), with the 48-px side made static, and with a network
  built without the resizer (`resizer`).
- **repro**: whether the same seed gives the same numbers run to run: each setting trained twice, each time
  in a fresh process, on 4,096 of the crops for 2 epochs with augmentation and dropout (shuffle, the
  random layers and dropout all draw from the seed), then the SHA-256 of the final weights and the last
  loss compared. XLA with op determinism is tried too (forced past Keras's refusal): TensorFlow has no
  deterministic XLA kernel for every gradient (MaxPool's), so it fails, and the record says how.

`fer_book.calibrate`'s figure is measured in the same run (before and after), with the load average.
One JSON line per record in results/train_speed.jsonl, each with its `label` ("before": the code before
item 3, measured by the earlier version of this script; "main": the package as on main, no default changed
(item 3 found no change that keeps the seeded numbers and pays); `--label` names a run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

RESULTS = Path(__file__).parent / "results" / "train_speed.jsonl"
SIDE = 48
MODELS = ("paper-cnn", "mini-xception")
# (op determinism, XLA): the default, determinism off, and XLA (which needs determinism off in Keras)
SETTINGS = ((True, False), (False, False), (False, True))
REPRO_SETTINGS = (*SETTINGS, (True, True))
REPRO_CROPS = 4096
REPRO_EPOCHS = 2


def flop_floor(n: int = 4096, repeats: int = 10) -> dict:
    """Median GFLOP/s of an n×n by n×n matmul (2n³ FLOPs) in float32 and bfloat16 with TensorFlow."""
    import tensorflow as tf

    from fer_utils.deploy.tflite import median_seconds

    rates = {}
    for dtype in (tf.float32, tf.bfloat16):
        a = tf.random.stateless_uniform((n, n), seed=(0, 1), dtype=tf.float32)
        a = tf.cast(a, dtype)
        seconds = median_seconds(lambda a=a: tf.linalg.matmul(a, a).numpy(), repeats=repeats, warmup=2)
        rates[f"{dtype.name}_gflop_per_s"] = round(2 * n**3 / seconds / 1e9, 1)
    return {"part": "floor", "n": n, **rates}


def wild_strength():
    """The wild recipe's augmentation strength (of the time these records were made: now `--recipe arriaga`)."""
    from fer_utils.train.config import TrainConfig

    return TrainConfig.preset("arriaga").augmentation()


def compiled(model_name: str, classes: int, xla: bool, steps: int | None = None):
    """The model as `train.fit.compile_model` builds and compiles it, compiled again with `jit_compile=xla` and
    `steps` train steps per graph call where they differ from the package's (None: the package's)."""
    import keras

    from fer_utils.train.config import TrainConfig
    from fer_utils.train.fit import compile_model

    config = TrainConfig(model=model_name, image_size=(SIDE, SIDE))
    model = compile_model(config, classes)
    if xla or (steps is not None and steps != model.steps_per_execution):
        model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=xla,
            steps_per_execution=steps or model.steps_per_execution,
        )
    if xla and not model.jit_compile:  # Keras refuses XLA under op determinism: force it to see what happens
        model._jit_compile = True
    return model


def augment_ahead(batches, transform, depth: int = 2):
    """`batches` with their images through `transform`, batch after batch in order on one worker thread, up to
    `depth` batches ahead of the model (an option measured here, not the package's pipeline): under op
    determinism tf.data runs a map with stateful ops (Keras's random layers keep their seed in a variable)
    serially and stops prefetching, so augmentation and training step wait for each other."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    import tensorflow as tf

    def generate():
        with ThreadPoolExecutor(max_workers=1) as worker:
            pending: deque = deque()
            for images, labels in batches:
                pending.append((worker.submit(transform, images), labels))
                if len(pending) > depth:
                    images, labels = pending.popleft()
                    yield images.result(), labels
            while pending:
                images, labels = pending.popleft()
                yield images.result(), labels

    ahead = tf.data.Dataset.from_generator(generate, output_signature=batches.element_spec)
    return ahead.apply(tf.data.experimental.assert_cardinality(batches.cardinality()))


def augmented_ahead(frames, root: Path, classes: list[str]):
    """The wild recipe's augmented batches of `make_dataset`, the augmenter run by `augment_ahead`."""
    import tensorflow as tf

    from fer_utils.train.config import Feed
    from fer_utils.train.pipeline import _augmenter, make_dataset

    augmenter = _augmenter(0, wild_strength())
    plain = make_dataset(frames, root, classes, Feed(shuffle=True, seed=0))
    return augment_ahead(plain, tf.function(lambda x: augmenter(x, training=True)))


def epoch_times(model, dataset, epochs: int) -> list[float]:
    """Seconds of each of `epochs` epochs of `model.fit(dataset)`."""
    import keras

    stamps: list[float] = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: stamps.append(time.perf_counter()),
        on_epoch_end=lambda epoch, logs: stamps.append(time.perf_counter()),
    )
    model.fit(dataset, epochs=epochs, callbacks=[timer], verbose=0)
    return [round(stamps[i + 1] - stamps[i], 2) for i in range(0, len(stamps), 2)]


def pass_seconds(dataset) -> float:
    """Seconds of one pass over `dataset` without a model."""
    start = time.perf_counter()
    for _ in dataset:
        pass
    return round(time.perf_counter() - start, 2)


def profile(
    model_name: str, deterministic: bool, xla: bool, root: Path, steps: int | None = None, extras: bool = False
) -> dict:
    """One setting's epoch split: decode, input pipeline alone, model step alone (`extras`: also without the
    in-model resizer and at 16 steps per graph call), whole epochs (plain, augmented, augmented by the earlier
    pipeline, augmented ahead on a worker thread)."""
    import tensorflow as tf
    from epoch_cost import fer2013_sized_folder

    from fer_utils.models.networks import count_flops
    from fer_utils.train.config import Feed
    from fer_utils.train.fit import seed_everything
    from fer_utils.train.pipeline import class_indices, load_images, make_dataset

    frames = fer2013_sized_folder(root)
    classes = sorted(frames["emotion"].unique())
    seed_everything(0, deterministic)
    start = time.perf_counter()
    images = load_images(frames, root)
    decode = round(time.perf_counter() - start, 2)
    labels = class_indices(frames, classes)
    pipeline = {}
    for augment in (False, True):
        dataset = make_dataset(
            frames, root, classes, Feed(shuffle=True, seed=0, augment=wild_strength() if augment else None)
        )
        pass_seconds(dataset)  # fills the cache (a second decode)
        pipeline["augment" if augment else "plain"] = pass_seconds(dataset)
    dataset = augmented_ahead(frames, root, classes)
    pass_seconds(dataset)
    pipeline["augment_ahead"] = pass_seconds(dataset)
    in_memory = (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .shuffle(len(labels), seed=0, reshuffle_each_iteration=True)
        .batch(32)
        .prefetch(tf.data.AUTOTUNE)
    )
    model = compiled(model_name, len(classes), xla, steps)
    used_steps = int(model.steps_per_execution)
    step = epoch_times(model, in_memory, 2)
    extra = {}
    if extras:  # the per-step overhead's share (16 train steps per graph call)
        extra["step_16_per_call_epoch_s"] = epoch_times(compiled(model_name, len(classes), xla, 16), in_memory, 2)
    dataset = make_dataset(frames, root, classes, Feed(shuffle=True, seed=0))
    whole = epoch_times(compiled(model_name, len(classes), xla, steps), dataset, 2)
    augmented = make_dataset(frames, root, classes, Feed(shuffle=True, seed=0, augment=wild_strength()))
    whole_augmented = epoch_times(compiled(model_name, len(classes), xla, steps), augmented, 2)
    ahead = augmented_ahead(frames, root, classes)
    extra["epoch_augmented_ahead_s"] = epoch_times(compiled(model_name, len(classes), xla, steps), ahead, 2)
    return {
        "steps_per_execution": used_steps,
        "decode_s": decode,
        "pipeline_pass_s": pipeline,
        "step_only_epoch_s": step,
        **extra,
        "epoch_s": whole,
        "epoch_augmented_s": whole_augmented,
        "images": len(frames),
        "train_gflop_per_epoch": round(3 * count_flops(model) * len(frames) / 1e9, 1),
    }


def resizer(model_name: str, variant: str, root: Path) -> dict:
    """Two epochs of `make_dataset` + `fit` (op determinism on) with the crops as the book feeds them
    ("dynamic": uint8 batches of unknown side, the model's resizer runs), with their 48-px side made static
    ("static", `tf.ensure_shape`), and with a network that has no resizer ("none": `models.networks._inputs` replaced in
    this process by a 48-px input and the rescaling alone): the in-model resizer's share of an epoch."""
    import keras
    import tensorflow as tf
    from epoch_cost import fer2013_sized_folder

    from fer_utils.models import networks as models
    from fer_utils.train.config import Feed
    from fer_utils.train.fit import seed_everything
    from fer_utils.train.pipeline import make_dataset

    frames = fer2013_sized_folder(root)
    classes = sorted(frames["emotion"].unique())
    seed_everything(0, True)
    if variant == "none":

        def no_resizer(input_shape):
            inputs = keras.Input(shape=tuple(input_shape), name="pixels")
            return inputs, keras.layers.Rescaling(1.0 / 255, name="rescale")(inputs)

        models._inputs = no_resizer
    dataset = make_dataset(frames, root, classes, Feed(shuffle=True, seed=0))
    if variant != "dynamic":
        dataset = dataset.map(lambda x, y: (tf.ensure_shape(x, (None, SIDE, SIDE, 1)), y))
    model = compiled(model_name, len(classes), False)
    return {
        "variant": variant,
        "layers": [layer.name for layer in model.layers[:3]],
        "epoch_s": epoch_times(model, dataset, 2),
    }


def weights_digest(model) -> str:
    """SHA-256 of every weight of `model`, in order (equal only when the weights are bit for bit equal)."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def repro(
    model_name: str, deterministic: bool, xla: bool, root: Path, augment: bool = True, ahead: bool = False
) -> dict:
    """One short seeded run (its own process), with or without augmentation: the final weights' digest and
    the last loss."""
    from epoch_cost import fer2013_sized_folder

    from fer_utils.train.config import Feed
    from fer_utils.train.fit import seed_everything
    from fer_utils.train.pipeline import make_dataset

    frames = fer2013_sized_folder(root).sample(REPRO_CROPS, random_state=0)
    classes = sorted(frames["emotion"].unique())
    seed_everything(0, deterministic)
    dataset = make_dataset(
        frames, root, classes, Feed(shuffle=True, seed=0, augment=wild_strength() if augment else None)
    )
    if ahead:
        dataset = augmented_ahead(frames, root, classes)
    model = compiled(model_name, len(classes), xla)
    start = time.perf_counter()
    try:
        history = model.fit(dataset, epochs=REPRO_EPOCHS, verbose=0).history
    except Exception as exc:  # XLA under op determinism: TensorFlow's own refusal, recorded
        lines = str(exc).splitlines() or [""]
        reason = next((line for line in lines if "determinis" in line), lines[0])
        return {"error": f"{type(exc).__name__}: {reason.strip()[:200]}"}
    return {
        "weights_sha256": weights_digest(model),
        "last_loss": float(history["loss"][-1]),
        "xla_used": bool(model.jit_compile),
        "fit_s": round(time.perf_counter() - start, 1),
    }


def child(task: dict) -> dict:
    """Run one task in this (fresh) process."""
    if task["part"] == "resizer":
        return resizer(task["model"], task["variant"], Path(task["root"]))
    if task["part"] == "profile":
        options = {"steps": task.get("steps"), "extras": task.get("extras", False)}
        return profile(task["model"], task["deterministic"], task["xla"], Path(task["root"]), **options)
    augment, ahead = task["part"] in ("repro", "repro_ahead"), task["part"] == "repro_ahead"
    return repro(task["model"], task["deterministic"], task["xla"], Path(task["root"]), augment, ahead)


def in_fresh_process(task: dict) -> dict:
    """`child(task)` in a new Python process (op determinism cannot be switched off in a process)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(task)], capture_output=True, text=True, env=env, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:] if done.stderr else ''}"}
    return json.loads(lines[-1])


def setting_name(deterministic: bool, xla: bool) -> str:
    """'determinism on/off, XLA on/off'."""
    return f"determinism {'on' if deterministic else 'off'}, XLA {'on' if xla else 'off'}"


def summary(path: Path = RESULTS) -> str:
    """The last record of each part and setting as markdown tables, with their calibration and load."""
    import pandas as pd

    from fer_book.book_times import BUDGET_IMAGES_PER_S

    records = pd.read_json(path, lines=True)
    lines = []
    floor = records[records["part"] == "floor"].iloc[-1]
    lines.append(
        f"FLOP floor: {floor['float32_gflop_per_s']} GFLOP/s float32, {floor['bfloat16_gflop_per_s']} bfloat16 "
        f"(4096² matmul; calibration {floor['calibration']['before']} images/s, {floor['when']})\n"
    )
    profile = records[records["part"] == "profile"]
    lines += [
        "| model, 48 px | label | setting | decode (once) | pipeline pass: plain / augmented / ahead | step alone "
        "| step without resizer / 16 steps per call | epoch 2 | epoch 2, augmented | augmented ahead (option) "
        f"| calibration | epoch 2 / augmented at {BUDGET_IMAGES_PER_S:.0f} images/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, row in profile.iterrows():
        name = f"| {row['model']} | {row['label']} | {setting_name(row['deterministic'], row['xla'])}"
        if not isinstance(row.get("epoch_s"), list):
            lines.append(f"{name} | {row.get('error')} |")
            continue
        passes, calibration = row["pipeline_pass_s"], row["calibration"]
        scale = (calibration["before"] + calibration["after"]) / 2 / BUDGET_IMAGES_PER_S
        extras = [row.get(k) for k in ("step_without_resizer_epoch_s", "step_16_per_call_epoch_s")]
        extras = " / ".join(f"{v[-1]} s" if isinstance(v, list) else "–" for v in extras)
        ahead = row.get("epoch_augmented_ahead_s")
        lines.append(
            f"{name} | {row['decode_s']} s | {passes['plain']} / {passes.get('augment', '–')} / "
            f"{passes.get('augment_ahead', '–')} s "
            f"| {row['step_only_epoch_s'][-1]} s | {extras} | {row['epoch_s'][-1]} s | {row['epoch_augmented_s'][-1]} s "
            f"| {f'{ahead[-1]} s' if isinstance(ahead, list) else '–'} "
            f"| {calibration['before']}→{calibration['after']} "
            f"| {row['epoch_s'][-1] * scale:.1f} / {row['epoch_augmented_s'][-1] * scale:.1f} s |"
        )
    resizer = records[records["part"] == "resizer"]
    if len(resizer):
        lines += ["", "| model | crops fed | epoch 1 / 2 | calibration |", "|---|---|---|---|"]
        fed = {"dynamic": "as the book does (side unknown)", "static": "side made static", "none": "no resizer"}
        for _, row in resizer.iterrows():
            seconds, calibration = row["epoch_s"], row["calibration"]
            lines.append(
                f"| {row['model']} | {fed[row['variant']]} | {seconds[0]} / {seconds[1]} s "
                f"| {calibration['before']}→{calibration['after']} |"
            )
    repro = records[records["part"].isin(["repro", "repro_plain", "repro_ahead"])]
    if len(repro):
        lines += [
            "",
            "| model | augmentation | setting | run 1 weights | run 2 weights | same numbers | last loss | fit s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        groups = repro.groupby(["label", "part", "model", "deterministic", "xla"], sort=False)
        for (label, part, model, deterministic, xla), runs in groups:
            runs = runs.tail(2)
            augmentation = {"repro": "wild", "repro_ahead": "wild, ahead"}.get(part, "none")
            name = f"{model} ({label}) | {augmentation} | {setting_name(deterministic, xla)}"
            if "error" in runs and runs["error"].notna().any():
                lines.append(f"| {name} | {runs['error'].dropna().iloc[0]} | | no run | | |")
                continue
            digests = list(runs["weights_sha256"].str[:12])
            same = "yes" if len(set(runs["weights_sha256"])) == 1 else "no"
            losses = ", ".join(f"{v:.6f}" for v in runs["last_loss"])
            seconds = ", ".join(str(v) for v in runs["fit_s"].dropna()) if "fit_s" in runs else ""
            lines.append(f"| {name} | {digests[0]} | {digests[-1]} | {same} | {losses} | {seconds} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Calibrate, run the parts, calibrate again; print and append the records."""
    from fer_book.calibrate import throughput
    from fer_utils.book.artifacts import default_cache

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="floor,profile,repro")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument(
        "--settings", default=None, help="profile settings as det:xla pairs, e.g. 1:0,0:0 (default all)"
    )
    parser.add_argument("--steps", type=int, default=None, help="steps_per_execution (default: the package's)")
    parser.add_argument("--extras", default="paper-cnn", help="models whose profile also splits off the resizer")
    parser.add_argument("--label", default="main", help="what the records measure (the code measured)")
    parser.add_argument("--folder", type=Path, default=None, help="default: the artefact cache's fer2013_sized")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--summary", action="store_true", help="print the recorded tables and stop")
    args = parser.parse_args(argv)
    if args.summary:
        print(summary())
        return 0
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    from epoch_cost import fer2013_sized_folder

    root = args.folder or default_cache() / "fer2013_sized"
    fer2013_sized_folder(root)
    parts = args.parts.split(",")
    calibration = {"before": throughput()["images_per_s"], "load_before": list(os.getloadavg())}
    print(f"calibration: {calibration['before']} images/s (load {calibration['load_before'][0]:.1f})")
    records = []
    if "floor" in parts:
        records.append(flop_floor())
        print(json.dumps(records[-1]))
    chosen = SETTINGS
    if args.settings:
        chosen = tuple(tuple(bool(int(v)) for v in pair.split(":")) for pair in args.settings.split(","))
    for part, settings, copies in (
        ("profile", chosen, 1),
        ("repro", chosen if args.settings else REPRO_SETTINGS, 2),
        ("repro_plain", SETTINGS, 2),
        ("repro_ahead", ((True, False),), 2),
    ):
        if part not in parts:
            continue
        for model_name in args.models.split(","):
            for deterministic, xla in settings:
                for copy in range(copies):
                    task = {"part": part, "model": model_name, "deterministic": deterministic, "xla": xla}
                    if part == "profile":
                        task |= {"steps": args.steps, "extras": model_name in args.extras.split(",")}
                    load = list(os.getloadavg())
                    result = in_fresh_process({**task, "root": str(root)})
                    records.append(
                        {**task, "copy": copy, **result, "load_before": load, "load_after": list(os.getloadavg())}
                    )
                    print(json.dumps(records[-1]))
    for model_name in args.models.split(",") if "resizer" in parts else []:
        for variant in ("dynamic", "static", "none"):
            load = list(os.getloadavg())
            result = in_fresh_process({"part": "resizer", "model": model_name, "root": str(root), "variant": variant})
            records.append({"part": "resizer", "model": model_name, **result, "load_before": load})
            print(json.dumps(records[-1]))
    calibration.update(after=throughput()["images_per_s"], load_after=list(os.getloadavg()))
    print(f"calibration after: {calibration['after']} images/s (load {calibration['load_after'][0]:.1f})")
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as out:
        for record in records:
            record = {"label": args.label, **record, "calibration": calibration, "cpus": os.cpu_count(), "when": when}
            out.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
