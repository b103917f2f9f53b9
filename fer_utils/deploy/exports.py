"""A run's export: the page's model made in one place (`page_export`), and the one rule for where an export
(a TFLite file and the files that travel with it) may be written: never into another run's folder.

An export's files (`model.tflite`, `classes.json`, `crop_spec.json`, …) describe one model: beside another
model's files they would relabel it. So an export fills a new or empty folder in one step (`atomic_folder`), or
replaces together the files of an earlier export of the *same* run (its `export.json` names the run); any other
folder is an `OutputError`, before any work (`check_export_folder`) and again when writing (`write_export`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from fer_utils.errors import InputError, OutputError
from fer_utils.faces.crops import served_spec
from fer_utils.storage.atomic import atomic_files, atomic_folder, temporary_owner
from fer_utils.storage.run_files import METRICS_FILE

if TYPE_CHECKING:
    from fer_utils.train.runs import LoadedRun, RunFolder

EXPORT_FILE = "export.json"  # in an export's folder: the run (model folder) its files were exported from


def source_of(folder: Path) -> str | None:
    """The run an earlier export into `folder` came from (its `export.json`), or None when there is none."""
    try:
        record = json.loads((Path(folder) / EXPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    source = record.get("run") if isinstance(record, dict) else None
    return source if isinstance(source, str) else None


def run_id(run: Path) -> str:
    """How an export names its run: the model folder's absolute, resolved path."""
    return str(Path(run).resolve())


def check_export_folder(folder: Path, run: Path, option: str = "--out") -> None:
    """OutputError unless `folder` is new or empty, or an earlier export of that same `run` made it: the
    export's `classes.json` and `crop_spec.json` would replace any other folder's."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    entries = [p for p in folder.iterdir() if temporary_owner(p) is None]
    if not entries:
        return
    source = source_of(folder)
    if source == run_id(run):
        return
    if source is not None:
        raise OutputError(
            f"{option} {folder} holds the export of another run ({source}); an export of {run_id(run)} would "
            "replace its classes and crop spec: give a new or empty folder (nothing was written)"
        )
    raise OutputError(
        f"{option} {folder} already holds other files ({', '.join(sorted(p.name for p in entries)[:5])}), such "
        "as another run's: an export writes its classes and crop spec only into a new or empty folder of its own, "
        "or one an earlier export of the same run made (nothing was written)"
    )


def write_export(folder: Path, run: Path, files: Mapping[str, str | bytes], option: str = "--out") -> None:
    """Write the export of `run` (`files`: name -> content) into `folder`, with its `export.json`, all files or
    none. OutputError when `folder` is not the export's own (`check_export_folder`) or cannot be written."""
    folder = Path(folder)
    check_export_folder(folder, run, option)
    contents = {**files, EXPORT_FILE: json.dumps({"run": run_id(run)})}
    contents = {name: data.encode() if isinstance(data, str) else data for name, data in contents.items()}
    try:
        if folder.is_dir() and any(temporary_owner(p) is None for p in folder.iterdir()):
            with atomic_files([folder / name for name in contents]) as temporaries:
                for tmp, data in zip(temporaries, contents.values()):
                    tmp.write_bytes(data)
        else:
            if folder.is_dir():
                folder.rmdir()
            with atomic_folder(folder) as staging:
                for name, data in contents.items():
                    (staging / name).write_bytes(data)
    except OSError as exc:
        raise OutputError(f"could not write {option} {folder}: {exc.strerror or exc} (nothing was replaced)") from exc


def run_accuracy(run: RunFolder) -> tuple[float | None, str | None]:
    """(the run's test accuracy from its metrics.json, None) or (None, a note saying why it is left out): a
    model folder without metrics.json (the peer), or one that is missing, damaged or lacks the number."""
    try:
        accuracy = run.metrics()["test"]["frame"]["accuracy"]
    except FileNotFoundError:
        return None, f"no {METRICS_FILE} in {run.path}: the export leaves the accuracy out"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problem = "not readable JSON" if isinstance(exc, ValueError) else f"no test accuracy ({type(exc).__name__})"
        return None, f"{run.metrics_file} is damaged ({problem}): the export leaves the accuracy out"
    if not isinstance(accuracy, (int, float)) or isinstance(accuracy, bool):
        return None, f"{run.metrics_file} holds no numeric test accuracy: the export leaves the accuracy out"
    return float(accuracy), None


def page_export(run: LoadedRun, mode: str, info: Mapping[str, object]) -> tuple[bytes, dict[str, object]]:
    """The live page's model of a run: its .tflite, one gray crop of the crop spec's side in a batch of 1
    (LiteRT.js runs fixed shapes only; int8 calibrated on `tflite.representative_faces`), and its `model.json`:
    `info`, the classes, the crop spec as served (`crop`, what book/_demo/crop.js cuts), the input shape and
    `tflite.page_tensors`. A model the page cannot run is an InputError naming the run."""
    from fer_utils.deploy.tflite import PAGE_TFLITE_MODES, page_tensors, representative_faces, to_tflite
    from fer_utils.models.networks import fixed_input

    model, side = run.model, run.spec.side
    if mode not in PAGE_TFLITE_MODES:
        raise InputError(f"{run.folder}: the page runs {' or '.join(PAGE_TFLITE_MODES)} models, not {mode!r}")
    if len(model.input_shape) != 4 or int(model.input_shape[-1]) != 1:
        raise InputError(f"{run.folder}: the page feeds gray crops (H, W, 1); this model takes {model.input_shape[1:]}")
    representative = representative_faces(side, side) if mode == "int8" else None
    blob = to_tflite(fixed_input(model, side, batch_size=1), mode, representative)
    served = {"classes": list(run.classes), "crop": served_spec(run.spec).to_dict(), "input_shape": [side, side, 1]}
    return blob, {**info, **served, **page_tensors(blob, mode)}
