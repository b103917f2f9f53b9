"""Index any dataset by name: the table of indexers (`INDEXERS`, the CLI's `--dataset` choices) and `index_dataset`,
which checks the options an indexer takes and, with `strict`, refuses rejected files.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from fer_utils.data.corpora import DatasetIndex, index_cremad, index_mead, index_ravdess, index_savee
from fer_utils.data.fer2013 import index_fer2013_csv
from fer_utils.data.folders import index_class_folders
from fer_utils.errors import InputError

INDEXERS: dict[str, Callable[..., DatasetIndex]] = {
    "ravdess": index_ravdess,
    "cremad": index_cremad,
    "savee": index_savee,
    "mead": index_mead,
    "folder": index_class_folders,
    "fer2013": index_fer2013_csv,
}


def _check_options(key: str, options: dict) -> dict:
    """The options that are set (not None); InputError for one the indexer `key` does not take."""
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(inspect.signature(INDEXERS[key]).parameters))  # `root` is never an option
    if unknown:
        takers = [k for k, f in INDEXERS.items() if set(unknown) <= set(inspect.signature(f).parameters)]
        flags = ", ".join(f"{u} (--{u.replace('_', '-')})" for u in unknown)
        raise InputError(f"the {key} indexer takes no {flags} option; it applies to: {', '.join(takers) or 'none'}")
    return given


def index_dataset(name: str, root: Path, strict: bool = False, **options) -> DatasetIndex:
    """Index `root` as dataset `name` (a key of INDEXERS) with the indexer's `options` (None: its default);
    with `strict=True` any rejected file is an error instead of a row in `.rejected`."""
    key = name.lower()
    if key not in INDEXERS:
        raise InputError(f"unknown dataset {name!r}; choose one of {', '.join(INDEXERS)}")
    index = INDEXERS[key](Path(root), **_check_options(key, options))
    if strict and len(index.rejected):
        first = index.rejected.iloc[0]
        raise InputError(
            f"{len(index.rejected)} file(s) under {root} do not follow the {key} naming, "
            f"e.g. {first['path']}: {first['reason']}"
        )
    return index
