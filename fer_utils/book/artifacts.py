"""Cached, on-demand artefacts a chapter needs from an earlier one: the sample, the crops, trained runs.

Every notebook runs on its own from a fresh kernel, in any order: instead of assuming that an earlier
chapter ran, it asks for what it needs here. Each artefact lives in the cache (`$FER_CACHE`, else
`~/.cache/fer_utils`) under a key made from everything that defines it, is built into a temporary
folder and renamed into place when complete (so an interrupted run never leaves half an artefact),
and is reused when `make book` already built it in an earlier chapter.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import shutil
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TypedDict

from fer_utils.errors import DatasetError
from fer_utils.locking import wait_lock
from fer_utils.outputs import remove_dead_temporaries
from fer_utils.registry import DEFAULT_DETECTOR, GIVEN_PROTOCOL, NO_DETECTOR, PAPER_FRAMES, PAPER_SIDE

SAMPLE_DATASET = "sample"
# The generated faces shipped with the package (DiffusionFER-S, CC0; fer_utils/assets/diffusionfer):
# already face crops, one image per "clip", read as a folder of classes.
GENERATED_DATASET = "diffusionfer"
GENERATED_SIDE = 96  # the side they are shipped at
# Datasets of face crops already (no detector, one frame each, by default) and their side: the generated
# faces, and FER-2013's CSV (48×48 faces, `fer_utils.fer2013`).
FACE_CROP_SIDES: dict[str, int] = {GENERATED_DATASET: GENERATED_SIDE, "fer2013": 48}
SAMPLE_MARKER = ".complete"
# The reference run the chapters share (chapter 4 trains it; 3, 8 and 9 reuse it through `reference_run`):
# the paper's CNN on the chapters' DATASET, at a reduced input side so that the whole book executes in
# minutes on 2 CPU cores. Its size and epochs are defined here only: the chapters' IMAGE_SIZE and EPOCHS
# parameters default to them. EPOCHS is a ceiling: early stopping (patience 3) ends the run once the
# validation loss stops improving, measured at 23 to 30 epochs on the sample at 32×32 (benchmarks/README.md,
# lesson_runs.py). It trains with the paper's Adam step (1e-3) and the package's dropout (only before
# flatten); the paper's own dropout, 0.3 after every stage, often kills the network (chapter 5).
REFERENCE_SIZE = 32
REFERENCE_EPOCHS = 50
REFERENCE_LEARNING_RATE = 1e-3
QUICK_TRAINING = {
    "image_size": (REFERENCE_SIZE, REFERENCE_SIZE),
    "epochs": REFERENCE_EPOCHS,
    "patience": 3,
    "learning_rate": REFERENCE_LEARNING_RATE,
}


def default_cache() -> Path:
    """The artefact cache: `$FER_CACHE` if set, else `~/.cache/fer_utils`."""
    env = os.environ.get("FER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fer_utils"


def cache_key(spec: dict) -> str:
    """A short stable hash of a JSON-able specification (the name of its cache folder)."""
    text = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _fingerprinted(obj: object, modules: set[str]) -> bool:
    """Whether `obj` is a function or class of one of `modules` (the package, the builder's own module,
    the running notebook)."""
    module = getattr(obj, "__module__", None) or ""
    return isinstance(obj, (types.FunctionType, type)) and (module in modules or module.split(".")[0] in modules)


def _names_used(code: types.CodeType) -> set[str]:
    """The global and attribute names a code object (and the functions nested in it) refers to."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names_used(const)
    return names


def _source(obj: object) -> str:
    """The source text of a function or class, or its bytecode when no source is at hand."""
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        return repr((code.co_code, code.co_consts)) if code else repr(obj)


def _used_code(function: types.FunctionType, modules: set[str]) -> list[object]:
    """The functions and classes of `modules` that `function` refers to, by name or as `module.name`."""
    names = _names_used(function.__code__)
    values = [function.__globals__.get(name) for name in names]
    packages = [v for v in values if isinstance(v, types.ModuleType) and v.__name__.split(".")[0] in modules]
    values += [getattr(package, name, None) for package in packages for name in names]
    return [v for v in values if _fingerprinted(v, modules)]


def code_fingerprint(build: Callable) -> str:
    """A hash of `build`'s source and of every function and class it uses, transitively, from the
    package (`fer_utils`) or the module or notebook that defined it: an edited builder (or an edited
    helper it calls) gets a new cache key and retrains; the same code, from a chapter's saved cell or
    the package, gets the same key."""
    seen: set[int] = set()
    sources: list[tuple[str, str]] = []  # (name, source) without the module: a saved cell = the package
    extra = ""
    if isinstance(build, functools.partial):
        extra = repr((build.args, sorted(build.keywords.items())))
        build = build.func
    build = inspect.unwrap(build)
    modules = {"fer_utils", "__main__", build.__module__}
    pending: list[object] = [build]
    while pending:
        obj = pending.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        sources.append((obj.__qualname__, _source(obj)))
        functions = [obj] if isinstance(obj, types.FunctionType) else list(vars(obj).values())
        for function in [f for f in functions if isinstance(f, types.FunctionType)]:
            pending += _used_code(function, modules)
    text = json.dumps(sorted(set(sources))) + extra
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def artefact_lock(target: Path) -> Path:
    """The lock file that serialises the making of one cached artefact (see `locking.wait_lock`)."""
    return target.with_name(f".{target.name}.lock")


def build_atomically(target: Path, build: Callable[[Path], None]) -> Path:
    """Return `target`, building it first with `build(tmp)` into a temporary folder renamed into place.

    Two processes asking for the same artefact (two chapters executed side by side) build it once: the
    second waits on the artefact's lock, then finds it finished.
    """
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with wait_lock(artefact_lock(target)):
        if target.is_dir():
            return target
        remove_dead_temporaries(target.parent)  # builds killed before they finished
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            build(tmp)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def repo_sample() -> Path:
    """Where `make book` writes the embedded sample in a repository checkout (`data/sample`)."""
    return Path(__file__).resolve().parents[2] / "data" / "sample"


def ensure_sample(cache: Path | None = None) -> Path:
    """The embedded synthetic sample: the checkout's `data/sample` if complete, else generated into the cache."""
    local = repo_sample()
    if (local / SAMPLE_MARKER).is_file() or (local / "clips.csv").is_file():  # both written last
        return local

    def generate(tmp: Path) -> None:
        from fer_utils.sample import generate_sample

        generate_sample(tmp, progress=False)
        (tmp / SAMPLE_MARKER).touch()

    return build_atomically((cache or default_cache()) / "sample", generate)


def dataset_root(
    dataset: str = SAMPLE_DATASET, data_dir: Path | str | None = None, cache: Path | None = None
) -> tuple[str, Path]:
    """The (indexer name, root folder) of `dataset`: the sample (RAVDESS-named), the shipped generated
    faces (a folder of classes), or a real dataset folder."""
    if dataset == SAMPLE_DATASET:
        return "ravdess", ensure_sample(cache)
    if dataset == GENERATED_DATASET:
        from fer_utils.assets import diffusionfer_dir

        return "folder", Path(data_dir).expanduser().resolve() if data_dir else diffusionfer_dir()
    if data_dir is None:
        raise DatasetError(f"dataset {dataset!r} needs DATA_DIR, the folder you downloaded it to")
    return dataset, Path(data_dir).expanduser().resolve()


def load_clips(
    dataset: str = SAMPLE_DATASET,
    data_dir: Path | str | None = None,
    cache: Path | None = None,
    **index_options: object,
):
    """The clip index (ARCHITECTURE.md) of the sample or of a real dataset folder; `index_options` go
    to the indexer (e.g. `subject_pattern` for a folder of classes, `modalities` for RAVDESS)."""
    from fer_utils.data import index_dataset

    name, root = dataset_root(dataset, data_dir, cache)
    return index_dataset(name, root, **index_options)


def ensure_crops(
    dataset: str = SAMPLE_DATASET,
    data_dir: Path | str | None = None,
    cache: Path | None = None,
    detector: str | None = None,
    frames: int | None = None,
    size: int | None = None,
    workers: int | None = None,
    **index_options: object,
) -> Path:
    """The preprocessed crops folder (with `manifest.csv`) of a dataset, made once and cached.

    `detector`, `frames` and `size` default to the paper's (dlib HOG, 6 frames, 180 px), and for the
    datasets of face crops (`FACE_CROP_SIDES`: the generated faces, FER-2013) to no detector, one frame and
    their own side.

    `index_options` go to the indexer (see `load_clips`) and are part of the cache key. The
    preprocessing run is itself resumable and writes its manifest last and atomically, so the
    folder is complete exactly when `manifest.csv` exists; an interrupted run resumes where it stopped.
    """
    from fer_utils.manifest import MANIFEST_NAME

    crops_side = FACE_CROP_SIDES.get(dataset)
    detector = detector or (NO_DETECTOR if crops_side else DEFAULT_DETECTOR)
    frames = frames or (1 if crops_side else PAPER_FRAMES)
    size = size or crops_side or PAPER_SIDE
    name, root = dataset_root(dataset, data_dir, cache)
    spec = {
        "dataset": dataset,
        "root": str(root),
        "detector": detector,
        "frames": frames,
        "size": size,
        **({"index": index_options} if index_options else {}),
    }
    target = (cache or default_cache()) / "crops" / cache_key(spec)
    if (target / MANIFEST_NAME).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with wait_lock(artefact_lock(target)):  # another chapter making the same crops: wait, then reuse
        if not (target / MANIFEST_NAME).is_file():
            from fer_utils.preprocess import preprocess_dataset

            clips = load_clips(dataset, data_dir, cache, **index_options).clips
            preprocess_dataset(
                clips, target, frames=frames, detector=detector, size=size, workers=workers, progress=False
            )
    return target


def training_config(**overrides: object):
    """The book's reference TrainConfig (QUICK_TRAINING) with `overrides` applied."""
    from fer_utils.training import TrainConfig

    values = {**QUICK_TRAINING, **overrides}
    if "image_size" in values:
        values["image_size"] = tuple(values["image_size"])
    if "dropout" in values:
        values["dropout"] = tuple(values["dropout"])
    return replace(TrainConfig(), **values)


def ensure_run(
    crops: Path,
    cache: Path | None = None,
    subjects: Sequence[str] | None = None,
    build: Callable | None = None,
    **overrides: object,
) -> Path:
    """A finished training run folder (model.keras, history.csv, metrics.json) for this config, cached.

    `subjects` restricts training and testing to those subjects' frames (e.g. a SAVEE-sized subset).
    `build` makes the network (default: the registry's builder of the configured model); the cache key
    holds the fingerprint of its code (`code_fingerprint`), so an edited builder trains a new run.
    Without a `protocol` override, a manifest that keeps the dataset's own split trains on it (protocol
    `given`, said in one printed line and recorded in config.json); any other, on TrainConfig's.
    """
    from fer_utils.manifest import load_manifest, usable_frames
    from fer_utils.models import MODEL_BUILDERS
    from fer_utils.splits import default_protocol, split_note

    config = training_config(**overrides)
    if "protocol" not in overrides:
        manifest = load_manifest(crops)
        if default_protocol(manifest) == GIVEN_PROTOCOL:
            config = replace(config, protocol=GIVEN_PROTOCOL)
            print(split_note(usable_frames(manifest)))
    chosen = sorted(subjects) if subjects is not None else None
    code = code_fingerprint(build or MODEL_BUILDERS[config.model])
    spec = {"crops": str(Path(crops).resolve()), "subjects": chosen, "code": code, **asdict(config)}

    def train(tmp: Path) -> None:
        from fer_utils.training import train_run

        frames = load_manifest(crops)
        if chosen is not None:
            frames = frames[frames["subject"].isin(chosen)]
            if frames.empty:
                raise DatasetError(f"no frames of subjects {chosen} in {crops}")
        train_run(config, frames, crops, tmp, verbose=0, build=build)

    return build_atomically((cache or default_cache()) / "runs" / cache_key(spec), train)


def reference_run(
    dataset: str = SAMPLE_DATASET,
    data_dir: Path | str | None = None,
    image_size: int = REFERENCE_SIZE,
    epochs: int = REFERENCE_EPOCHS,
    seed: int = 0,
    cache: Path | None = None,
) -> Path:
    """The book's reference run on `dataset` (its crops made first): one function for every chapter that
    uses it, so that the same IMAGE_SIZE and EPOCHS give the same (cached) run everywhere."""
    crops = ensure_crops(dataset, data_dir, cache)
    return ensure_run(
        crops,
        cache,
        image_size=(image_size, image_size),
        epochs=epochs,
        seed=seed,
    )


def load_run(run_dir: Path) -> dict:
    """A finished run's `config`, `metrics` (JSON) and `history` (DataFrame), for the chapters' figures."""
    from fer_utils.runs import RunFolder

    run = RunFolder(run_dir)
    return {"config": run.config(), "metrics": run.metrics(), "history": run.history()}


DEMO_MODEL_DIR = "demo_model"
DEMO_ABOUT_FILE = "about.json"
# The demo page's two models: the book's default and the peer (fer_utils.peer), each published in its
# own cache folder (the default's folder keeps its old name).
DEMO_SLOTS = ("default", "peer")
DEMO_SLOT_DIRS = {"default": DEMO_MODEL_DIR, "peer": f"{DEMO_MODEL_DIR}_peer"}
DEMO_TFLITE_MODES = ("float32", "int8")


class DemoAbout(TypedDict, total=False):
    """What the live demo page says about one of its models (ARCHITECTURE.md, "Live demo").

    Every key is optional when publishing; the page needs `trained_on`. Fractions, not percentages. For a
    model trained over several seeds, `accuracy` and `macro_f1` are the MEANS over the seeds on
    `evaluated_on` (never the best seed's score, which was picked on those very frames), with their
    standard deviations; `chosen_on` says how the one published seed was picked. A single fixed network
    (the peer) gives its one score and no std.
    """

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
    tflite: str  # "float32" (default) or "int8" (full integer, uint8 in and out; fer_utils.deploy)


DEMO_ABOUT_KEYS = tuple(DemoAbout.__annotations__)
DEMO_ABOUT_TEXTS = ("name", "trained_on", "license", "chosen_on", "evaluated_on")
DEMO_ABOUT_FRACTIONS = ("accuracy", "accuracy_std", "macro_f1", "macro_f1_std", "majority_baseline", "chance")


def check_demo_about(about: Mapping[str, object]) -> dict:
    """`about` as a plain dict if it keeps the DemoAbout contract, else a ValueError naming the key."""
    about = dict(about)
    unknown = sorted(set(about) - set(DEMO_ABOUT_KEYS))
    if unknown:
        raise ValueError(f"unknown demo about keys {unknown}; known: {', '.join(DEMO_ABOUT_KEYS)}")
    for key in DEMO_ABOUT_TEXTS:
        if about.get(key) is not None and not isinstance(about[key], str):
            raise ValueError(f"demo about {key!r} must be text, not {about[key]!r}")
    for key in DEMO_ABOUT_FRACTIONS:
        value = about.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= float(value) <= 1:
                raise ValueError(f"demo about {key!r} must be a fraction in [0, 1], not {value!r}")
            about[key] = float(value)
    seeds = about.get("seeds")
    if seeds is not None and (isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1):
        raise ValueError(f"demo about 'seeds' must be a positive whole number, not {seeds!r}")
    if about.get("tflite", "float32") not in DEMO_TFLITE_MODES:
        raise ValueError(f"demo about 'tflite' must be one of {DEMO_TFLITE_MODES}, not {about['tflite']!r}")
    return about


def demo_slot_dir(slot: str, cache: Path | None = None) -> Path:
    """The cache folder where the demo model of `slot` ("default" or "peer") is published."""
    if slot not in DEMO_SLOTS:
        raise ValueError(f"unknown demo slot {slot!r}; choose one of {DEMO_SLOTS}")
    return (cache or default_cache()) / DEMO_SLOT_DIRS[slot]


def publish_demo_model(
    run_dir: Path, about: Mapping[str, object], cache: Path | None = None, slot: str = "default"
) -> Path:
    """Put a model on the live demo page: its model, classes (and metrics.json, when the folder has one)
    are copied (atomically) to the cache with `about` (a DemoAbout: trained_on, license, accuracy, …)
    beside them; `book build` takes them from there.

    `slot="default"` (a chapter's run folder) makes it the page's default model; `slot="peer"` records
    the peer as measured by a chapter (`run_dir` is the folder `fer_utils.peer.export_peer` wrote), whose
    about is laid over `fer_utils.peer.PEER_ABOUT`."""
    from fer_utils.runs import CLASSES_FILE, METRICS_FILE, MODEL_FILE, RunFolder

    run_dir = Path(run_dir)
    if run_dir.is_file():  # the model file itself (export_peer returns it)
        run_dir = run_dir.parent
    about = check_demo_about(about)
    target = demo_slot_dir(slot, cache)
    for name in (MODEL_FILE, CLASSES_FILE):
        if not (run_dir / name).is_file():
            raise DatasetError(f"{run_dir} has no {name}: publish a finished run or model folder")

    def copy(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        for item in run_dir.iterdir():
            if item.name in (MODEL_FILE, CLASSES_FILE, METRICS_FILE) or item.name.startswith("LICENSE"):
                shutil.copy2(item, tmp / item.name)
        (tmp / DEMO_ABOUT_FILE).write_text(json.dumps(about, indent=1, default=str) + "\n")

    staging = target.with_name(f".{target.name}.new-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    build_atomically(staging, copy)
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return RunFolder(target).model


def published_demo_model(cache: Path | None = None, slot: str = "default") -> tuple[Path, dict] | None:
    """The (model path, about) a chapter published for the demo page's `slot`, or None if none did."""
    from fer_utils.runs import MODEL_FILE

    folder = demo_slot_dir(slot, cache)
    if not (folder / MODEL_FILE).is_file() or not (folder / DEMO_ABOUT_FILE).is_file():
        return None
    return folder / MODEL_FILE, json.loads((folder / DEMO_ABOUT_FILE).read_text())
