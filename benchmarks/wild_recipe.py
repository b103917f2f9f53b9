"""The book's network for faces in the wild and its recipe on 2 CPU cores (issue 44): speed, the whole run,
the same weights twice.

    PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/wild_recipe.py --parts speed,recipe,digest
    PYTHONPATH=$PWD .venv/bin/python benchmarks/wild_recipe.py --summary     # the recorded tables (Markdown)

- **speed**: seconds per FER-2013-sized epoch (the 28,709 48-px crops `epoch_cost.py` makes from the generated
  faces) of each model through the package's own pipeline and compile (`pipeline.make_dataset`,
  `train.fit.compile_model`) under `--recipe wild`'s settings (batch 128, flips and shifts by
  `pipeline.flip_and_shift`, the one-cycle schedule, label smoothing, op determinism on): epoch 1 also
  decodes the PNGs and traces, so the figure is the mean of epochs 2 and 3. Beside it, the training FLOPs of
  an epoch (3 × the forward FLOPs of `models.networks.count_flops` × crops) and the FLOP rate they ran at, against the
  matmul floor of these cores (`train_speed.flop_floor`).
- **recipe**: what a reader runs: a Kaggle-like FER-2013 folder (train/ 28,709; test/ 3,589 `PublicTest_*`,
  the validation side, and 3,589 `PrivateTest_*`, the test side; made from the same generated faces),
  `python -m fer_utils preprocess --dataset folder --detector none --size 48`, then `python -m fer_utils train
  --recipe wild` with no other option; the training seconds (metrics.json) and the whole command's.
- **digest**: the same command on 4,096 of the crops for 2 epochs, twice, each in a fresh process: the
  SHA-256 of the saved weights and the last loss must agree.

`fer_book.calibrate`'s figure is measured in the same run, before and after each part, with the load average.
One JSON line per record in results/wild_recipe.jsonl. The faces are generated, not photographed: the times
hold for FER-2013 (same sizes), the accuracies of these runs do not (benchmarks/README.md says what was
measured on real FER-2013).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

RESULTS = Path(__file__).parent / "results" / "wild_recipe.jsonl"
VARIANTS = Path(__file__).parent / "results" / "wild_variants.jsonl"  # benchmarks/wild_variants.py
SIDE = 48
# (label, registered model, builder options): the paper's CNN, the peer's network, the book's and a wider one
SPEED_MODELS = (
    ("paper-cnn", "paper-cnn", {}),
    ("mini-xception", "mini-xception", {}),
    ("wild-cnn", "wild-cnn", {}),
    ("wild-cnn 32-64-128-256", "wild-cnn", {"widths": (32, 64, 128, 256)}),
)
FER2013_SIDES = {"train": 28_709, "PublicTest": 3_589, "PrivateTest": 3_589}
DIGEST_CROPS = 4_096
DIGEST_EPOCHS = 2


def calibration() -> dict:
    """fer_book.calibrate's images/s now, with the load average."""
    from fer_book.calibrate import throughput

    return {"images_per_s": throughput()["images_per_s"], "load": [round(v, 2) for v in os.getloadavg()]}


def speed(models: tuple[tuple[str, str, dict], ...], root: Path, rounds: int = 2) -> list[dict]:
    """Seconds per epoch of each model on the FER-2013-sized folder under the wild recipe's settings, the
    models taking turns epoch by epoch (a first round traces and decodes; the median of the next `rounds`),
    so that a change of the machine's load meanwhile slows them alike."""
    import time as clock

    from epoch_cost import fer2013_sized_folder

    from fer_utils.models import networks as registry_models
    from fer_utils.train.config import TrainConfig
    from fer_utils.train.fit import batches_per_epoch, compile_model, seed_everything
    from fer_utils.train.pipeline import make_dataset

    frames = fer2013_sized_folder(root)
    classes = sorted(frames["emotion"].unique())
    wild = TrainConfig.preset("wild", image_size=(SIDE, SIDE))
    seed_everything(0, wild.deterministic)
    dataset = make_dataset(frames, root, classes, wild.feed(training=True, seed=0))
    steps = batches_per_epoch(dataset)
    built = {}
    for label, name, options in models:
        config = TrainConfig.preset("wild", model=name, image_size=(SIDE, SIDE))
        built[label] = compile_model(
            config, len(classes), partial(registry_models.MODEL_BUILDERS[name], **options), steps
        )
    seconds: dict[str, list[float]] = {label: [] for label in built}
    for _ in range(rounds + 1):
        for label, model in built.items():
            start = clock.perf_counter()
            model.fit(dataset, epochs=1, verbose=0)
            seconds[label].append(round(clock.perf_counter() - start, 2))
    records = []
    for label, name, options in models:
        model, per_epoch = built[label], float(np.median(seconds[label][1:]))
        flops = registry_models.count_flops(model)
        gflop = 3 * flops * len(frames) / 1e9
        records.append(
            {
                "part": "speed",
                "label": label,
                "model": name,
                "options": {k: list(v) for k, v in options.items()},
                "params": registry_models.count_params(model),
                "mflops_per_image": round(flops / 1e6, 2),
                "epoch_s": seconds[label],
                "s_per_epoch": round(per_epoch, 2),
                "train_gflop_per_epoch": round(gflop, 1),
                "gflop_per_s": round(gflop / per_epoch, 1),
                "images": len(frames),
                "batch": wild.batch_size,
                "interleaved": True,
            }
        )
    return records


def fer2013_like_folder(root: Path, out: Path) -> Path:
    """A Kaggle-like FER-2013 folder (train/<emotion>/, test/<emotion>/PublicTest_* and PrivateTest_*) of the
    FER-2013-sized crops, linked, not copied (made once: complete when its .complete marker exists)."""
    from epoch_cost import fer2013_sized_folder

    if (out / ".complete").is_file():
        return out
    shutil.rmtree(out, ignore_errors=True)
    frames = fer2013_sized_folder(root)
    held = sum(FER2013_SIDES.values()) - len(frames)  # the test sides reuse crops: take them from the start
    assert held <= len(frames)
    rows = list(frames.itertuples())
    sides = [("train", "train", rows)]
    sides += [("test", name, rows[i * FER2013_SIDES[name] : (i + 1) * FER2013_SIDES[name]])
              for i, name in enumerate(("PublicTest", "PrivateTest"))]  # fmt: skip
    for folder, name, chosen in sides:
        for row in chosen:
            target = out / folder / row.emotion / f"{name}_{Path(row.image).stem}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink((root / row.image).resolve(), target)
    (out / ".complete").touch()
    return out


def cli(*args: str) -> tuple[float, str]:
    """Run `python -m fer_utils ARGS` in a fresh process: (seconds, its output)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "fer_utils", *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"fer_utils {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.perf_counter() - start, done.stdout + done.stderr


def crops_of(folder: Path, out: Path) -> Path:
    """`preprocess --dataset folder --detector none --size 48` of `folder` into `out` (made once)."""
    if not (out / "manifest.csv").is_file():
        shutil.rmtree(out, ignore_errors=True)
        cli("preprocess", "--dataset", "folder", "--src", str(folder), "--out", str(out),
            "--detector", "none", "--size", str(SIDE))  # fmt: skip
    return out


def recipe(work: Path, root: Path) -> dict:
    """`train --recipe wild` with no other option on the FER-2013-like folder's crops."""
    crops = crops_of(fer2013_like_folder(root, work / "fer2013_like"), work / "fer2013_like_crops")
    run = work / "wild_run"
    shutil.rmtree(run, ignore_errors=True)
    seconds, output = cli("train", "--crops", str(crops), "--out", str(run), "--recipe", "wild")
    metrics = json.loads((run / "metrics.json").read_text())
    config = json.loads((run / "config.json").read_text())
    return {
        "part": "recipe",
        "command": "python -m fer_utils train --crops CROPS --out RUN --recipe wild",
        "model": config["model"],
        "epochs_run": metrics["epochs_run"],
        "sizes": config["sizes"],
        "train_seconds": metrics["train_seconds"],
        "command_seconds": round(seconds, 1),
        "s_per_epoch": round(metrics["train_seconds"] / metrics["epochs_run"], 2),
    }


def weights_digest(run: Path) -> str:
    """SHA-256 of a run's model weights, in layer order."""
    from fer_utils.models.networks import load_model

    model = load_model(run / "model.keras")
    digest = hashlib.sha256()
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()


def digest(work: Path, root: Path) -> dict:
    """The wild recipe on DIGEST_CROPS crops for DIGEST_EPOCHS epochs, twice, each in a fresh process."""
    from epoch_cost import fer2013_sized_folder

    small = work / "digest_folder"
    if not (small / ".complete").is_file():
        shutil.rmtree(small, ignore_errors=True)
        for row in fer2013_sized_folder(root).head(DIGEST_CROPS).itertuples():
            target = small / row.emotion / Path(row.image).name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink((root / row.image).resolve(), target)
        (small / ".complete").touch()
    crops = crops_of(small, work / "digest_crops")
    runs = []
    for attempt in (1, 2):
        run = work / f"digest_run{attempt}"
        shutil.rmtree(run, ignore_errors=True)
        cli("train", "--crops", str(crops), "--out", str(run), "--recipe", "wild", "--epochs", str(DIGEST_EPOCHS))
        history = (run / "history.csv").read_text().splitlines()
        runs.append({"sha256": weights_digest(run), "last_row": history[-1]})
    return {"part": "digest", "crops": DIGEST_CROPS, "epochs": DIGEST_EPOCHS, "runs": runs,
            "same": runs[0] == runs[1]}  # fmt: skip


def variants_table(path: Path = VARIANTS) -> list[str]:
    """wild_variants.py's records as a Markdown table: mean ± std over seeds per block order."""
    import pandas as pd

    if not path.is_file():
        return []
    runs = pd.read_json(path, lines=True)
    lines = [
        "| block order | seeds | generated faces, test side | real faces at hand, accuracy | real, macro F1 |",
        "|---|---|---|---|---|",
    ]
    for name, group in runs.groupby("variant", sort=False):
        cells = [
            f"{group[c].mean():.3f} ± {group[c].std(ddof=1):.3f}" for c in ("generated_test", "real_acc", "real_f1")
        ]
        lines.append(f"| {name} | {len(group)} | " + " | ".join(cells) + " |")
    return lines


def summary(path: Path = RESULTS) -> str:
    """The recorded runs as Markdown tables, each with its calibration."""
    from fer_book.book_times import BUDGET_IMAGES_PER_S, projected

    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    floor = next((r for r in reversed(records) if r["part"] == "floor"), None)
    lines = []
    speeds = [r for r in records if r["part"] == "speed"]
    if speeds:
        lines += [
            "| model | params | MFLOPs per image | s per epoch | GFLOP/s | share of the matmul floor | calibration |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in speeds:
            share = f"{r['gflop_per_s'] / floor['float32_gflop_per_s']:.0%}" if floor else "–"
            lines.append(
                f"| {r['label']} | {r['params']:,} | {r['mflops_per_image']} | {r['s_per_epoch']} | "
                f"{r['gflop_per_s']} | {share} | {r['calibration']['images_per_s']} |"
            )
        if floor:
            lines.append(f"\nMatmul floor: {floor['float32_gflop_per_s']} GFLOP/s float32.")
    for r in (r for r in records if r["part"] == "recipe"):
        rates = (r["calibration"]["images_per_s"], r["calibration_after"]["images_per_s"])
        scaled = [projected(r["train_seconds"], rate, BUDGET_IMAGES_PER_S) for rate in rates]
        lines.append(
            f"\n`{r['command']}`: {r['model']}, {r['epochs_run']} epochs on {r['sizes']['train']:,} training crops "
            f"(validation {r['sizes']['val']:,}, test {r['sizes']['test']:,}), {r['train_seconds']} s of training "
            f"({r['s_per_epoch']} s per epoch, validation included), the whole command {r['command_seconds']} s; "
            f"calibration {rates[0]} images/s before and {rates[1]} after: {scaled[0]:.0f} and {scaled[1]:.0f} s of "
            f"training scaled to {BUDGET_IMAGES_PER_S:.0f} images/s."
        )
    for r in (r for r in records if r["part"] == "digest"):
        lines.append(
            f"\nSame seed, same weights: two fresh processes, {r['crops']:,} crops, {r['epochs']} epochs: SHA-256 "
            f"{r['runs'][0]['sha256'][:16]}… and {r['runs'][1]['sha256'][:16]}…: "
            + ("identical." if r["same"] else "DIFFERENT.")
        )
    return "\n".join([*lines, "", *variants_table()])


def main(argv: list[str] | None = None) -> int:
    """Run the parts asked, appending one record each, with the calibration before and after."""
    from fer_utils.book.artifacts import default_cache

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="speed,recipe,digest")
    parser.add_argument("--models", default=",".join(label for label, _, _ in SPEED_MODELS))
    parser.add_argument("--work", type=Path, default=None, help="default: the artefact cache's wild_recipe/")
    parser.add_argument("--summary", action="store_true")
    args = parser.parse_args(argv)
    if args.summary:
        print(summary())
        return 0
    root = default_cache() / "fer2013_sized"
    work = args.work or default_cache() / "wild_recipe"
    work.mkdir(parents=True, exist_ok=True)
    parts = args.parts.split(",")
    jobs = []
    if "speed" in parts:
        from train_speed import flop_floor

        jobs.append(lambda: flop_floor())
        chosen = args.models.split(",")
        jobs.append(lambda: speed(tuple(m for m in SPEED_MODELS if m[0] in chosen), root))
    if "recipe" in parts:
        jobs.append(lambda: recipe(work, root))
    if "digest" in parts:
        jobs.append(lambda: digest(work, root))
    for job in jobs:
        before = calibration()
        made = job()
        after = calibration()
        for record in made if isinstance(made, list) else [made]:
            record |= {"calibration": before, "calibration_after": after}
            print(json.dumps(record))
            with RESULTS.open("a") as out:
                out.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
