"""A chapter's results record: what its run glues, the claims it checks and the values it records, in one JSON file.

`fer_book execute` names the file of each chapter it runs (`RESULTS_ENV`: `<stage>/results/<chapter>.json`) and
starts it with the chapter's title and parameters; `glue`, `check_claims` and `record` add to it, each write whole
(`write_atomic`). The scorecard, the build's check of the claims and the tests read it, never a notebook's outputs.
A reader's run in Jupyter or Colab names no file and records nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from fer_utils.errors import InputError
from fer_utils.storage.atomic import write_atomic

RESULTS_ENV = "FER_RESULTS"  # the results file of the chapter a kernel runs, set by `fer_book execute`
RESULTS_DIR = "results"  # a stage's folder of results records, one per chapter


def results_file(stage: Path, chapter: str) -> Path:
    """The results record of `chapter` (a notebook's name, with or without `.ipynb`) in `stage`."""
    return Path(stage) / RESULTS_DIR / f"{Path(chapter).stem}.json"


def read_results(path: Path) -> dict:
    """A results record: {chapter, title, parameters, given, glued: {name: {text, numbers}}, checks, values}."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def start_results(
    path: Path, chapter: str, title: str, parameters: Mapping[str, object], given: Mapping[str, object]
) -> None:
    """A new, empty record for a run of `chapter` with `parameters` (its defaults, with the `given` ones in their
    place); what an earlier run recorded there is replaced."""
    head = {"chapter": chapter, "title": title, "parameters": dict(parameters), "given": dict(given)}
    write_atomic(Path(path), json.dumps(head | {"glued": {}, "checks": [], "values": {}}, indent=1) + "\n")


def plain(value: object) -> object:
    """`value` as JSON holds it: a NumPy number as a Python one, a pandas Series or a mapping as a dict."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if hasattr(value, "item"):  # a NumPy scalar
        return value.item()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise InputError(f"a results record holds numbers, text, lists and mappings of them, not {type(value).__name__}")


def add(section: str, value: object, name: str | None = None) -> None:
    """Add `value` to the running chapter's record: under `name` in the mapping `section`, or, with no name, to the
    end of the list `section` (`checks`, one per `check_claims` call)."""
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    results = read_results(Path(path))
    if name is None:
        results[section].append(plain(value))
    else:
        results[section][name] = plain(value)
    write_atomic(Path(path), json.dumps(results, indent=1) + "\n")


def record(name: str, value: object) -> None:
    """Record a value of the chapter's run that its text does not state (a table's column by row, for example) for
    the scorecard and the tests; outside `fer_book execute` it does nothing."""
    add("values", value, name)
