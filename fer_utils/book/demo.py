"""The live demo page's contract: which models it shows (its slots), what it says about each (DemoAbout), and
where a chapter publishes them for `book build` (CONTRACTS.md, "Live demo"): one cache folder per slot.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TypedDict

from fer_utils.book.artifacts import artefact_lock, default_cache
from fer_utils.errors import InputError
from fer_utils.storage.atomic import atomic_folder, replace_folder, temporary_sibling
from fer_utils.storage.locking import wait_lock

DEMO_ABOUT_FILE = "about.json"
DEMO_SLOTS = ("default", "peer")  # the demo page's two models, each in its own cache folder
DEMO_SLOT_DIRS = {"default": "demo_model", "peer": "demo_model_peer"}
DEMO_TFLITE_MODES = ("float32", "int8")


class DemoAbout(TypedDict, total=False):
    """What the live demo page says about one of its models; every key optional but `trained_on`. Fractions;
    over several seeds, MEANS on `evaluated_on`, never the best seed's score (picked on those very frames)."""

    name: str  # a short label for the page's model switch
    trained_on: str  # the data it learned from
    license: str  # the model's licence (and its training data's)
    accuracy: float | None  # mean accuracy over `seeds` runs on `evaluated_on` (real faces for the book's models)
    accuracy_std: float | None  # its standard deviation over `seeds` runs
    macro_f1: float | None  # mean macro F1 over `seeds` runs on `evaluated_on` (the page opens on the higher one)
    macro_f1_std: float | None  # its standard deviation over `seeds` runs
    majority_baseline: float | None  # accuracy of always answering the commonest expression of `evaluated_on`
    chance: float | None  # the chance level on `evaluated_on` (e.g. 1/7); default 1 / number of classes
    seeds: int | None  # how many seeds the means and standard deviations summarise
    chosen_on: str | None  # how the published seed was chosen, e.g. "the lowest validation loss on ..."
    evaluated_on: str | None  # what the scores were measured on
    tflite: str  # "float32" (default) or "int8" (full integer, uint8 in and out; fer_utils.deploy.tflite)


DEMO_ABOUT_KEYS = tuple(DemoAbout.__annotations__)
DEMO_ABOUT_TEXTS = ("name", "trained_on", "license", "chosen_on", "evaluated_on")
DEMO_ABOUT_FRACTIONS = ("accuracy", "accuracy_std", "macro_f1", "macro_f1_std", "majority_baseline", "chance")


def check_demo_slot(slot: str) -> str:
    """`slot` if the demo page has it ("default" or "peer"), else an InputError listing the slots."""
    if slot not in DEMO_SLOTS:
        raise InputError(f"unknown demo slot {slot!r}; choose one of {DEMO_SLOTS}")
    return slot


def check_demo_about(about: Mapping[str, object]) -> dict:
    """`about` as a plain dict if it keeps the DemoAbout contract, else an InputError naming the key."""
    about = dict(about)
    unknown = sorted(set(about) - set(DEMO_ABOUT_KEYS))
    if unknown:
        raise InputError(f"unknown demo about keys {unknown}; known: {', '.join(DEMO_ABOUT_KEYS)}")
    for key in DEMO_ABOUT_TEXTS:
        if about.get(key) is not None and not isinstance(about[key], str):
            raise InputError(f"demo about {key!r} must be text, not {about[key]!r}")
    for key in DEMO_ABOUT_FRACTIONS:
        value = about.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= float(value) <= 1:
                raise InputError(f"demo about {key!r} must be a fraction in [0, 1], not {value!r}")
            about[key] = float(value)
    seeds = about.get("seeds")
    if seeds is not None and (isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1):
        raise InputError(f"demo about 'seeds' must be a positive whole number, not {seeds!r}")
    if about.get("tflite", "float32") not in DEMO_TFLITE_MODES:
        raise InputError(f"demo about 'tflite' must be one of {DEMO_TFLITE_MODES}, not {about['tflite']!r}")
    return about


def demo_slot_dir(slot: str, cache: Path | None = None) -> Path:
    """The cache folder where the demo model of `slot` ("default" or "peer") is published."""
    return (cache or default_cache()) / DEMO_SLOT_DIRS[check_demo_slot(slot)]


def publish_demo_model(
    run_dir: Path, about: Mapping[str, object], cache: Path | None = None, slot: str = "default"
) -> Path:
    """Copy a run's model, classes, metrics, licences and crop spec with `about` into `slot`'s folder, whole."""
    from fer_utils.faces.crops import CROP_SPEC_FILE, write_crop_spec
    from fer_utils.storage.run_files import CLASSES_FILE, METRICS_FILE, MODEL_FILE
    from fer_utils.train.runs import RunFolder

    run_dir = Path(run_dir)
    if run_dir.is_file():  # the model file itself (export_peer returns it)
        run_dir = run_dir.parent
    about = check_demo_about(about)
    target = demo_slot_dir(slot, cache)
    for name in (MODEL_FILE, CLASSES_FILE):
        if not (run_dir / name).is_file():
            raise InputError(f"{run_dir} has no {name}: publish a finished run or model folder")
    staging = temporary_sibling(target.with_name(f"{target.name}.new"))
    with wait_lock(artefact_lock(target)):  # two chapters publishing one slot at once: one after the other
        with atomic_folder(staging) as tmp:
            copied = (MODEL_FILE, CLASSES_FILE, METRICS_FILE, CROP_SPEC_FILE)
            for item in run_dir.iterdir():
                if item.name in copied or item.name.startswith("LICENSE"):
                    shutil.copy2(item, tmp / item.name)
            (tmp / DEMO_ABOUT_FILE).write_text(json.dumps(about, indent=1, default=str) + "\n", encoding="utf-8")
            if not (tmp / CROP_SPEC_FILE).is_file():  # crops made by hand, a model folder: the default spec
                write_crop_spec(tmp, RunFolder(run_dir).open().spec)
        replace_folder(staging, target)
    return RunFolder(target).model_file


def published_demo_model(cache: Path | None = None, slot: str = "default") -> tuple[Path, dict] | None:
    """The (model path, about) a chapter published for the demo page's `slot`, or None if none did."""
    from fer_utils.storage.run_files import MODEL_FILE

    folder = demo_slot_dir(slot, cache)
    if not (folder / MODEL_FILE).is_file() or not (folder / DEMO_ABOUT_FILE).is_file():
        return None
    return folder / MODEL_FILE, json.loads((folder / DEMO_ABOUT_FILE).read_text(encoding="utf-8"))
