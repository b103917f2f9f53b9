"""The book's glue, and the chapters' one face to the package: `from fer_utils import book as fer`.

A chapter imports the code it teaches (the names its shown cells read) and reaches everything else, the
plumbing, through this face: `fer.Dataset(DATASET, DATA_DIR)` (the data it reads), `fer.FaceData` (what a
run learns from), `fer.TrainConfig` (its presets), `fer.train(build, data, config)` (a cached run),
`fer.summarize` and the other reports over seeds, `fer.show_lesson`, and the modules `fer.plots`,
`fer.widgets`, `fer.exercises`, `fer.realfaces`, `fer.demo`. Each name is defined in its own module
(listed in FACE) and loaded on first use, so importing one module of this subpackage loads no other.

The library (`fer_utils.*`) knows nothing of chapters; this subpackage builds on it, and the command line
(`fer_utils.cli`) on both.
"""

from __future__ import annotations

import importlib

# name -> the module that defines it (a module of this subpackage is itself a name)
FACE: dict[str, str] = {
    # the data a chapter reads and what a run learns from
    **dict.fromkeys(("Dataset", "GENERATED_DATASET", "SAMPLE_DATASET", "default_cache"), "fer_utils.book.artifacts"),
    "FaceData": "fer_utils.train.pipeline",
    "load_manifest": "fer_utils.data.manifest",
    "usable_frames": "fer_utils.data.manifest",
    "audit_line": "fer_utils.data.duplicates",
    "load_images": "fer_utils.train.pipeline",
    "make_dataset": "fer_utils.train.pipeline",
    # runs
    "TrainConfig": "fer_utils.train.config",
    "train": "fer_utils.book.artifacts",
    "train_variants": "fer_utils.book.chapters",
    "RunFolder": "fer_utils.train.runs",
    "predict_batches": "fer_utils.train.fit",
    # what a chapter checks and reports
    **dict.fromkeys(
        (
            "check_frames",
            "clamp_subjects",
            "clamp_count",
            "describe_frames",
            "index_table",
            "histories",
            "summarize",
            "mean_std",
            "difference_note",
            "seed_spread",
            "beyond_spread",
            "confidence_interval",
            "guessing_ceiling",
            "bootstrap_interval",
            "faces_scored",
        ),
        "fer_utils.book.chapters",
    ),
    "show_lesson": "fer_utils.book.lessons",
    "ParameterError": "fer_utils.book.book_errors",
    # whole modules
    **{name: f"fer_utils.book.{name}" for name in ("chapters", "plots", "widgets", "exercises", "realfaces", "demo")},
}
__all__ = sorted(FACE)


def __getattr__(name: str) -> object:
    """The face's `name`, imported from its module on first use (PEP 562)."""
    if name not in FACE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}; the book's face offers {__all__}")
    module = importlib.import_module(FACE[name])
    return module if module.__name__.rsplit(".", 1)[-1] == name else getattr(module, name)


def __dir__() -> list[str]:
    return __all__
