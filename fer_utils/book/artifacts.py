"""Cached, on-demand artefacts a chapter needs from an earlier one: the sample, the crops, trained runs.

Every notebook runs on its own, in any order: it reuses what `make book` or an earlier chapter built, else builds
it atomically into the cache (`default_cache`) under a key of all its inputs (`run_key`: coarse but correct)."""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fer_utils.data.corpora import VIDEO_SUFFIXES, data_files
from fer_utils.data.fer2013 import FER2013_SIDE
from fer_utils.errors import InputError, MissingFileError
from fer_utils.faces.crops import CropSpec, spec_with
from fer_utils.registry import NO_DETECTOR, PAPER_FRAMES
from fer_utils.storage.atomic import atomic_folder
from fer_utils.storage.locking import wait_lock
from fer_utils.storage.run_files import RUN_FILES
from fer_utils.train.config import TrainConfig
from fer_utils.train.runs import RunFolder

if TYPE_CHECKING:
    from fer_utils.train.pipeline import FaceData

SAMPLE_DATASET = "sample"
# The shipped generated faces (DiffusionFER-S, CC0): face crops, read as a folder of classes.
GENERATED_DATASET = "diffusionfer"
GENERATED_SIDE = 96  # the side they are shipped at
# Datasets that are face crops already (by default no detector, one frame each) and their side.
FACE_CROP_SIDES: dict[str, int] = {GENERATED_DATASET: GENERATED_SIDE, "fer2013": FER2013_SIDE}
SAMPLE_MARKER = ".complete"

# A dataset of clips that 6 frames per clip would leave below this many frames is sampled more densely.
# On 24 real MEAD clips (3 people x 8 emotions), 6 frames per clip stayed at chance in 3 of 3 seeds
# (0.149 +/- 0.020, chance 0.125); every 4th frame (about 25 per clip) reached 0.867 (random split).
MIN_DATASET_FRAMES = 600
MAX_FRAMES_PER_CLIP = 25


def frames_per_clip(clips: int) -> int:
    """Frames per clip: the paper's 6, or up to MAX_FRAMES_PER_CLIP to reach about MIN_DATASET_FRAMES in all."""
    wanted = -(-MIN_DATASET_FRAMES // max(clips, 1))  # ceiling division
    return min(MAX_FRAMES_PER_CLIP, max(PAPER_FRAMES, wanted))


def default_cache(cache: str | os.PathLike | None = None) -> Path:
    """The artefact cache: `cache` if given (a path or its text), else `$FER_CACHE` if set, else `~/.cache/fer_utils`."""
    if cache is not None:
        return Path(cache).expanduser()
    env = os.environ.get("FER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fer_utils"


def cache_key(spec: dict) -> str:
    """A short stable hash of a JSON-able specification (the name of its cache folder)."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:12]


def artefact_lock(target: Path) -> Path:
    """The lock file that serialises the making of one cached artefact (see `locking.wait_lock`)."""
    return target.with_name(f".{target.name}.lock")


def writable(folder: Path) -> bool:
    """Whether artefacts can be written into `folder` (made if missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def build_atomically(target: Path, build: Callable[[Path], None]) -> Path:
    """`target`, built once by `build(tmp)` under a lock, renamed into place; a read-only cache builds in /tmp."""
    if not target.is_dir() and not writable(target.parent):
        target = Path(tempfile.gettempdir()) / "fer-scratch-cache" / target.parent.name / target.name
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with wait_lock(artefact_lock(target)):
        if target.is_dir():
            return target
        with atomic_folder(target) as tmp:  # also sweeps what killed builds left
            tmp.rmdir()  # `build` makes the folder itself
            build(tmp)
    return target


def ensure_sample(cache: str | os.PathLike | None = None) -> Path:
    """The embedded synthetic sample: the checkout's `data/sample` if complete, else generated into the cache."""
    local = Path(__file__).resolve().parents[2] / "data" / "sample"  # where `make book` writes it in a checkout
    if (local / SAMPLE_MARKER).is_file() or (local / "clips.csv").is_file():  # both written last
        return local

    def generate(tmp: Path) -> None:
        from fer_utils.faces.sample import generate_sample

        generate_sample(tmp, progress=False)
        (tmp / SAMPLE_MARKER).touch()

    return build_atomically(default_cache(cache) / "sample", generate)


@dataclass(frozen=True)
class Dataset:
    """The data a chapter reads (DATASET, DATA_DIR): `"sample"`, `"diffusionfer"` or an indexer with `data_dir`."""

    name: str = SAMPLE_DATASET
    data_dir: Path | None = None

    def __post_init__(self) -> None:
        from fer_utils.data.indexing import INDEXERS

        names = (SAMPLE_DATASET, GENERATED_DATASET, *INDEXERS)
        if self.name not in names:
            raise InputError(f"unknown dataset {self.name!r} (DATASET); choose one of {', '.join(names)}")
        if self.name == SAMPLE_DATASET and self.data_dir is not None:  # else its results would be the sample's
            raise InputError(
                f"DATA_DIR {self.data_dir} goes with a dataset you downloaded: the sample is made by the package; "
                f"set DATASET too (one of {', '.join(names[1:])})"
            )
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser().resolve())
        elif self.name not in (SAMPLE_DATASET, GENERATED_DATASET):
            raise InputError(f"dataset {self.name!r} needs DATA_DIR, the folder you downloaded it to")

    @property
    def label(self) -> str:
        """How sentences about results name the data: the synthetic sample, or the dataset and its folder."""
        if self.name == SAMPLE_DATASET:  # the only data the book may call synthetic
            return "the synthetic sample"
        if self.name == GENERATED_DATASET and self.data_dir is None:
            return "the generated faces (DiffusionFER-S)"
        return f"{self.name} ({self.data_dir.name})" if self.data_dir else self.name

    def source(self, cache: str | os.PathLike | None = None) -> tuple[str, Path]:
        """(indexer name, root folder) of the sample, the shipped generated faces or the real dataset."""
        if self.name == SAMPLE_DATASET:
            return "ravdess", ensure_sample(cache)
        if self.name == GENERATED_DATASET:
            from fer_utils.assets import diffusionfer_dir

            return "folder", self.data_dir or diffusionfer_dir()
        return self.name, self.data_dir

    def index(self, cache: str | os.PathLike | None = None, **index_options: object):
        """The clip index (CONTRACTS.md); `index_options` go to the indexer (e.g. `subject_pattern`, `modalities`)."""
        from fer_utils.data.indexing import index_dataset

        return index_dataset(*self.source(cache), **index_options)

    def crop_spec(self, detector: str | None = None, side: int | None = None) -> CropSpec:
        """How this dataset's faces are cut: by default with no detector at their own side for face crops."""
        crops_side = FACE_CROP_SIDES.get(self.name)
        detector = detector or (NO_DETECTOR if crops_side else None)
        return spec_with(detector=detector, side=side or crops_side)

    def crops(
        self,
        cache: str | os.PathLike | None = None,
        detector: str | None = None,
        frames: int | None = None,
        side: int | None = None,
        workers: int | None = None,
        crop: Callable | None = None,
        spec: CropSpec | None = None,
        **index_options: object,
    ) -> Path:
        """The cached crops folder, faces cut by `crop` as `spec` (or `crop_spec`) says; an interrupted one resumes."""
        from fer_utils.data.manifest import MANIFEST_NAME

        if spec is not None and (detector or side):
            raise InputError("give Dataset.crops a crop spec, or a detector and side, not both")
        spec = spec or self.crop_spec(detector, side)
        whole_images = self.name in FACE_CROP_SIDES
        index = None  # the clip index, read once: to size the sampling, then to preprocess
        if frames is None and not whole_images and self.name != SAMPLE_DATASET:
            index = self.index(cache, **index_options)
            videos = sum(Path(str(path)).suffix.lower() in VIDEO_SUFFIXES for path in index.clips["path"])
            frames = frames_per_clip(videos) if videos else PAPER_FRAMES  # images have one frame each
            if frames != PAPER_FRAMES:
                print(
                    f"note: {self.name} has {videos} clips; taking up to {frames} frames per clip instead of the "
                    f"paper's {PAPER_FRAMES}, so that the runs have about {MIN_DATASET_FRAMES} frames to learn from"
                )
        frames = frames or (1 if whole_images else PAPER_FRAMES)
        root = self.source(cache)[1]
        key = {"dataset": self.name, "root": str(root), "frames": frames, "crop_spec": spec.to_dict()}
        key["files"] = files_digest(root)  # a file added, removed or rewritten makes new crops
        if index_options:
            key["index"] = index_options
        crop = edited_crop(crop)
        if crop is not None:
            key["crop"] = source(crop)
        target = default_cache(cache) / "crops" / cache_key(key)
        if (target / MANIFEST_NAME).is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with wait_lock(artefact_lock(target)):  # another chapter making the same crops: wait, then reuse
            if not (target / MANIFEST_NAME).is_file():
                from fer_utils.faces.preprocess import preprocess_dataset

                if index is None:
                    index = self.index(cache, **index_options)
                preprocess_dataset(index.clips, target, spec, frames=frames, workers=workers, progress=False, crop=crop)
        return target


def files_digest(root: Path) -> str:
    """A hash of the name, size and modification time of every dataset file under `root` (`corpora.data_files`), or
    of `root` itself when it is a file (FER-2013's CSV): part of a crops folder's key, which then follows the data."""
    root = Path(root)
    digest = hashlib.sha256()
    for path in [root] if root.is_file() else data_files(root):
        stat = path.stat()
        digest.update(f"{path.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def edited_crop(crop: Callable | None) -> Callable | None:
    """`crop` when its source differs from the package's `crops.crop_face`, else None (the package's own)."""
    from fer_utils.faces.crops import crop_face

    return None if crop is None or source(crop) == source(crop_face) else crop


def source(function: Callable) -> str:
    """The source of `function`, part of a cache key; an InputError naming it when Python has none (a built-in)."""
    try:
        return inspect.getsource(function).strip()
    except (OSError, TypeError) as problem:
        raise InputError(
            f"the cache keys an artefact by the source of the functions it is given, and {function!r} has none "
            "Python can read: define it with `def` in a notebook cell or a file"
        ) from problem


@functools.cache
def package_digest() -> str:
    """A hash of the package's own source (every `fer_utils/**/*.py` file), computed once per process."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def model_json(build: Callable, config: TrainConfig, classes: int) -> str:
    """The JSON of `build`'s network, layers named by order of appearance (Keras's made-up names count per process)."""
    from fer_utils.train.fit import model_options

    model = build(num_classes=classes, input_shape=(*config.image_size, 1), **model_options(config, build))
    spec = json.loads(model.to_json())
    names: dict[str, str] = {}

    def walk(value: object, rename: bool) -> object:
        if isinstance(value, dict):
            settings = value.get("config")
            if not rename and isinstance(settings, dict) and "DTypePolicy" not in str(value.get("class_name")):
                names.setdefault(settings.get("name"), f"#{len(names)}")  # a layer's or a model's name
            return {key: walk(item, rename) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, rename) for item in value]
        return names.get(value, value) if rename and isinstance(value, str) else value

    walk(spec, rename=False)
    return json.dumps(walk(spec, rename=True), sort_keys=True)


def run_key(build: Callable | None, data: FaceData, config: TrainConfig, fit: Callable | None = None) -> str:
    """The cache key of the run `train` makes (its parts: see the module docstring)."""
    from fer_utils.data.corpora import classes_in
    from fer_utils.models.networks import MODEL_BUILDERS
    from fer_utils.train.fit import fit_run

    build = build or MODEL_BUILDERS[config.model]
    frames = data.frames()
    spec = {
        **asdict(config),
        "data": [str(data.crops.resolve()), hashlib.sha256(frames.to_csv(index=False).encode()).hexdigest()],
        "code": [package_digest(), *map(source, (build, fit or fit_run, data.split, data.pipeline))],
        "model": model_json(build, config, len(classes_in(frames))),
    }
    return cache_key(spec)


def train(
    build: Callable | None,
    data: FaceData,
    config: TrainConfig,
    *,
    fit: Callable | None = None,
    cache: str | os.PathLike | None = None,
) -> RunFolder:
    """The finished run of `build`'s network (None: the registry's) on `data`, cached under `run_key`."""
    from fer_utils.train.fit import train_run

    target = default_cache(cache) / "runs" / run_key(build, data, config, fit)
    run = RunFolder(build_atomically(target, lambda tmp: train_run(build, data, config, tmp, fit=fit, verbose=0)))
    missing = [name for name in RUN_FILES if not (run.path / name).is_file()]
    if missing:  # written whole, so removed since: never handed on, whatever reads it next would fail
        raise MissingFileError(
            f"the cached run {run.path} has lost {', '.join(missing)} since it was trained: delete that folder and "
            "run this cell again, which trains the run anew"
        )
    return run
