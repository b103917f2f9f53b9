"""Cached, on-demand artefacts a chapter needs from an earlier one: the sample, the crops, trained runs.

Every notebook runs on its own from a fresh kernel, in any order: instead of assuming that an earlier
chapter ran, it asks for what it needs here. Each artefact lives in the cache (`$FER_CACHE`, else
`~/.cache/fer_utils`) under a key made from everything that defines it, is built into a temporary
folder and renamed into place when complete (so an interrupted run never leaves half an artefact),
and is reused when `make book` already built it in an earlier chapter.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

from fer_utils.atomic import atomic_folder
from fer_utils.book.fingerprint import code_fingerprint
from fer_utils.data import VIDEO_SUFFIXES
from fer_utils.errors import DatasetError
from fer_utils.locking import wait_lock
from fer_utils.registry import DEFAULT_DETECTOR, GIVEN_PROTOCOL, NO_DETECTOR, PAPER_FRAMES, PAPER_SIDE
from fer_utils.runs import RunFolder

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
# validation loss stops improving, well before the ceiling on the sample at 32×32 (the epochs it stops at:
# benchmarks/README.md, lesson_runs.py). It trains with the paper's Adam step (1e-3) and the package's dropout (only before
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


# A dataset of clips whose paper-sized sampling (6 frames per clip) would give fewer frames than this is
# sampled more densely, up to MAX_FRAMES_PER_CLIP per clip. Measured on 24 real clips laid out as MEAD ships
# them (3 people x 8 emotions, issue 28): with 6 frames per clip the reference run stayed at chance in 3 of
# 3 seeds (0.149 +/- 0.020, chance 0.125), while the CLI on every 4th frame (about 25 per clip) reached
# 0.867 under a random split. The sample (384 clips) keeps the paper's 6.
MIN_DATASET_FRAMES = 600
MAX_FRAMES_PER_CLIP = 25


def frames_per_clip(clips: int) -> int:
    """Frames to take from each of `clips` clips: the paper's 6, or more for a small dataset, so that it
    gives about MIN_DATASET_FRAMES frames to learn from (at most MAX_FRAMES_PER_CLIP per clip)."""
    wanted = -(-MIN_DATASET_FRAMES // max(clips, 1))  # ceiling division
    return min(MAX_FRAMES_PER_CLIP, max(PAPER_FRAMES, wanted))


def default_cache() -> Path:
    """The artefact cache: `$FER_CACHE` if set, else `~/.cache/fer_utils`."""
    env = os.environ.get("FER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fer_utils"


def cache_key(spec: dict) -> str:
    """A short stable hash of a JSON-able specification (the name of its cache folder)."""
    text = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def artefact_lock(target: Path) -> Path:
    """The lock file that serialises the making of one cached artefact (see `locking.wait_lock`)."""
    return target.with_name(f".{target.name}.lock")


def build_atomically(target: Path, build: Callable[[Path], None]) -> Path:
    """Return `target`, building it first with `build(tmp)`, which makes the folder `tmp` (fer_utils.atomic's
    temporary sibling of `target`), renamed into place when complete.

    Two processes asking for the same artefact (two chapters executed side by side) build it once: the
    second waits on the artefact's lock, then finds it finished.
    """
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with wait_lock(artefact_lock(target)):
        if target.is_dir():
            return target
        with atomic_folder(target) as tmp:  # also sweeps what builds killed before they finished left
            tmp.rmdir()  # `build` makes the folder itself
            build(tmp)
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
    from fer_utils.indexing import index_dataset

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
    index = None  # the clip index, read once: to size the sampling here, to preprocess below
    if frames is None and not crops_side and dataset != SAMPLE_DATASET:
        index = load_clips(dataset, data_dir, cache, **index_options)
        videos = sum(Path(str(path)).suffix.lower() in VIDEO_SUFFIXES for path in index.clips["path"])
        frames = frames_per_clip(videos) if videos else PAPER_FRAMES  # images have one frame each
        if frames != PAPER_FRAMES:
            print(
                f"note: {dataset} has {videos} clips; taking up to {frames} frames per clip instead of the "
                f"paper's {PAPER_FRAMES}, so that the runs have about {MIN_DATASET_FRAMES} frames to learn from"
            )
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

            if index is None:
                index = load_clips(dataset, data_dir, cache, **index_options)
            preprocess_dataset(
                index.clips, target, frames=frames, detector=detector, size=size, workers=workers, progress=False
            )
    return target


def training_config(**overrides: object):
    """The book's reference TrainConfig (QUICK_TRAINING) with `overrides` applied."""
    from fer_utils.train_config import TrainConfig

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
    fit: Callable | None = None,
    **overrides: object,
) -> RunFolder:
    """A finished training run folder (model.keras, history.csv, metrics.json) for this config, cached.

    `subjects` restricts training and testing to those subjects' frames (e.g. a SAVEE-sized subset).
    `build` makes the network (default: the registry's builder of the configured model) and `fit` compiles
    and fits it (default: `training.fit_model`); a chapter passes the ones its cells show. The cache key
    holds the fingerprints of both (`code_fingerprint`: their code and the values they read), so an edited
    builder or fit function trains a new run, and the same code (a saved cell or the package) reuses it.
    Without a `protocol` override, a manifest that keeps the dataset's own split trains on it (protocol
    `given`, said in one printed line and recorded in config.json); any other, on TrainConfig's.
    """
    from fer_utils.manifest import load_manifest, usable_frames
    from fer_utils.models import MODEL_BUILDERS
    from fer_utils.splits import default_protocol, split_note
    from fer_utils.training import fit_model

    config = training_config(**overrides)
    if "protocol" not in overrides:
        manifest = load_manifest(crops)
        if default_protocol(manifest) == GIVEN_PROTOCOL:
            config = replace(config, protocol=GIVEN_PROTOCOL)
            print(split_note(usable_frames(manifest)))
    chosen = sorted(subjects) if subjects is not None else None
    code = code_fingerprint(build or MODEL_BUILDERS[config.model])
    fitting = code_fingerprint(fit or fit_model)
    spec = {"crops": str(Path(crops).resolve()), "subjects": chosen, "code": code, "fit": fitting, **asdict(config)}

    def train(tmp: Path) -> None:
        from fer_utils.training import train_run

        frames = load_manifest(crops)
        if chosen is not None:
            frames = frames[frames["subject"].isin(chosen)]
            if frames.empty:
                raise DatasetError(f"no frames of subjects {chosen} in {crops}")
        train_run(config, frames, crops, tmp, verbose=0, build=build, fit=fit)

    return RunFolder(build_atomically((cache or default_cache()) / "runs" / cache_key(spec), train))


def reference_run(
    dataset: str = SAMPLE_DATASET,
    data_dir: Path | str | None = None,
    image_size: int = REFERENCE_SIZE,
    epochs: int = REFERENCE_EPOCHS,
    seed: int = 0,
    cache: Path | None = None,
    build: Callable | None = None,
    fit: Callable | None = None,
) -> RunFolder:
    """The book's reference run on `dataset` (its crops made first): one function for every chapter that
    uses it, so that the same IMAGE_SIZE and EPOCHS give the same (cached) run everywhere. `build` and `fit`
    go to `ensure_run`: a chapter passes the `build_paper_cnn` (and `fit_model`) it shows; the same code
    as the package's gives the same run."""
    crops = ensure_crops(dataset, data_dir, cache)
    return ensure_run(
        crops,
        cache,
        build=build,
        fit=fit,
        image_size=(image_size, image_size),
        epochs=epochs,
        seed=seed,
    )
