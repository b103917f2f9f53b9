"""The crop spec: how a face in a frame becomes a model's input, said once and read by all that cut one.

A `CropSpec` names the face detector that found the box (`detector`), the margin added on every side of the
box as a fraction of its longest side (`margin`), the side in pixels of the square crop (`side`), whether the
eyes were levelled first (`align`) and the crop's colour (`colour`: gray, the only one the book makes).
Preprocessing writes it beside its crops (`CROP_SPEC_FILE`, `write_crop_spec`); training copies it into every
run folder; export copies it beside every exported model (the TFLite file's sidecar, the demo page's
`models.json`). Whatever cuts a face for a model reads it: training (the crops come at `side`, and the model
resizes them itself, `models.networks._inputs`), `inference.Recognizer` and `predict`, TFLite export, and the page
(`book/_demo/crop.js`, which reproduces `crops.crop_face` pixel for pixel). No other place states a margin or
a side: the default margin is named once, `registry.DEFAULT_MARGIN` (the registry imports nothing, so the
CLI's help shows it without loading anything), and a spec made without a margin takes `default_margin` of its
detector (none around a whole image, detector "none"): the one place that decides it, since every entry point
(`preprocess_dataset`, the CLI's `preprocess`, `artifacts.Dataset.crops`, the recognizer, export) makes a
`CropSpec` and hands it on (`tests/test_crop_spec.py` reads the code for margin literals, the page's
included; `tests/test_crop_parity.py` cuts the same whole images through each entry point).

Folders made before the spec existed are refused with what to do (`preprocess_folder.folder_crop_spec`:
preprocess again; `runs.RunFolder.crop_spec`: train again).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from fer_utils.errors import InputError
from fer_utils.registry import DEFAULT_DETECTOR, DEFAULT_MARGIN, DETECTORS, MAX_SIDE, NO_DETECTOR, PAPER_SIDE
from fer_utils.storage.atomic import write_atomic

CROP_SPEC_FILE = "crop_spec.json"  # beside a folder's crops, in a run folder, beside an exported model
GRAY = "gray"
COLOURS: tuple[str, ...] = (GRAY,)
MIN_SIDE = 8  # the smallest crop any of the book's models can take (three 2×2 poolings)


@dataclass(frozen=True)
class CropSpec:
    """How a face becomes a model's input: the square around `detector`'s box with `margin` (a fraction of
    the box's longest side) on every side, eyes levelled first when `align`, in `colour`, `side`×`side` px."""

    detector: str = DEFAULT_DETECTOR
    margin: float = None  # type: ignore[assignment]  # None: the detector's default, set in __post_init__
    side: int = PAPER_SIDE
    align: bool = False
    colour: str = GRAY

    def __post_init__(self) -> None:
        """A spec made without a margin takes its detector's default (`default_margin`), so that no caller
        decides it: none around a whole image, DEFAULT_MARGIN around a detector's box."""
        if self.margin is None:
            object.__setattr__(self, "margin", default_margin(self.detector))

    def to_dict(self) -> dict:
        """The spec as plain JSON values (what `crop_spec.json` and the page's `models.json` hold)."""
        return asdict(self)

    def served_with(self, detector: str) -> CropSpec:
        """The spec a recognizer that finds faces with `detector` crops with: this one with that detector; for
        crops of whole images (detector "none") the default margin, since how much of a whole image lies
        around its face is not known."""
        whole = self.detector == NO_DETECTOR and detector != NO_DETECTOR
        return replace(self, detector=detector, margin=default_margin(detector) if whole else self.margin)


def served_spec(spec: CropSpec) -> CropSpec:
    """The spec faces are cut with when served (found by a face detector, in a frame): `spec` for crops of a
    detector's boxes, and for crops of whole images (detector "none") the book's default detector's, with its
    default margin (`CropSpec.served_with`). What `inference.Recognizer` cuts by default and what the demo page
    is given (`models.json`), whose BlazeFace finds the faces."""
    return spec.served_with(DEFAULT_DETECTOR if spec.detector == NO_DETECTOR else spec.detector)


def check_crop_spec(spec: CropSpec) -> CropSpec:
    """`spec` if every field can work, else an InputError naming the field."""
    if spec.detector not in DETECTORS:
        raise InputError(f"unknown detector {spec.detector!r} in the crop spec; choose one of: {', '.join(DETECTORS)}")
    if isinstance(spec.margin, bool) or not isinstance(spec.margin, (int, float)) or not 0.0 <= spec.margin <= 1.0:
        raise InputError(f"margin must be between 0 and 1 (fraction of the box size), got {spec.margin!r}")
    if isinstance(spec.side, bool) or not isinstance(spec.side, int) or spec.side < MIN_SIDE:
        raise InputError(f"crop size must be at least {MIN_SIDE} pixels, got {spec.side!r}")
    if spec.side > MAX_SIDE:
        raise InputError(
            f"crop size must be at most {MAX_SIDE} pixels (a crop's memory grows with its square), got {spec.side}"
        )
    if not isinstance(spec.align, bool):
        raise InputError(f"align must be true or false, got {spec.align!r}")
    if spec.colour not in COLOURS:
        raise InputError(f"unknown crop colour {spec.colour!r}; the book's crops are {', '.join(COLOURS)}")
    return spec


def default_margin(detector: str) -> float:
    """The margin a crop gets when none is asked for: none around a whole image (detector "none": the image
    is the face), else DEFAULT_MARGIN."""
    return 0.0 if detector == NO_DETECTOR else DEFAULT_MARGIN


def spec_with(**fields: object) -> CropSpec:
    """The spec of the fields given, a field given as None taking the spec's default (the margin its
    detector's, `default_margin`): what the CLI's options and `artifacts.Dataset.crops`'s keywords make, so
    that neither decides a default of its own. Not checked here: whoever cuts with it checks it
    (`check_crop_spec`; preprocessing as an InputError)."""
    return CropSpec(**{name: value for name, value in fields.items() if value is not None})


def spec_from_dict(record: Mapping[str, object], source: Path | str) -> CropSpec:
    """The spec a `crop_spec.json` (or a `models.json` entry) holds; an InputError naming `source` when it is
    not one."""
    fields = set(CropSpec.__dataclass_fields__)
    if not isinstance(record, Mapping) or set(record) != fields:
        raise InputError(f"{source}: a crop spec must have exactly the fields {sorted(fields)}, got {record!r}")
    try:
        return check_crop_spec(CropSpec(**record))
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None


def read_crop_spec(folder: Path) -> CropSpec | None:
    """The spec in `folder`'s `crop_spec.json`, None when it has none (InputError when it is not a spec)."""
    path = Path(folder) / CROP_SPEC_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc
    return spec_from_dict(record, path)


def spec_bytes(spec: CropSpec) -> bytes:
    """The bytes of `crop_spec.json` for `spec` (the same spec, the same bytes)."""
    return (json.dumps(check_crop_spec(spec).to_dict(), indent=2, sort_keys=True) + "\n").encode("utf-8")


def write_crop_spec(folder: Path, spec: CropSpec) -> Path:
    """Write `spec` as `folder`'s `crop_spec.json` (atomically; left alone when it already holds these bytes)."""
    path = Path(folder) / CROP_SPEC_FILE
    data = spec_bytes(spec)
    if not (path.is_file() and path.read_bytes() == data):
        write_atomic(path, data)
    return path
