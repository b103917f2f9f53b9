"""Small copies of expression datasets as they ship, built from the generated faces the package ships
(`fer_utils/assets/diffusionfer`: 7 class folders of 96×96 gray faces, CC0), for tests and chapters.

- `make_fer2013_folder`: FER-2013 from Kaggle, `train/<class>/Training_N.jpg`, `test/<class>/PublicTest_N.jpg`
  and `PrivateTest_N.jpg` (48×48 gray), class folders `angry disgust fear happy neutral sad surprise`;
- `make_rafdb_folder`: RAF-DB's basic set, `train/1..7/train_00001_aligned.jpg`, `test/1..7/test_0001_aligned.jpg`
  (index it with `classes=folders.RAFDB_CLASSES`);
- `make_fer2013_csv`: FER-2013's one CSV, `emotion,pixels,Usage`, with malformed rows on request.

Imported as `from layouts import ...` (pytest puts `tests/` on `sys.path`, see toy_data.py). Each face is
a real file of the shipped set, resized, so the sides differ in content but every class looks like itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from fer_utils.assets import diffusionfer_dir

# The shipped folders, which are also FER-2013's Kaggle class folders, in FER-2013's code order (0..6).
FER2013_FOLDERS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# RAF-DB's basic-set label of each shipped folder (folders.RAFDB_CLASSES: 1 surprised … 7 neutral).
RAFDB_LABELS: dict[str, int] = {
    "surprise": 1,
    "fear": 2,
    "disgust": 3,
    "happy": 4,
    "sad": 5,
    "angry": 6,
    "neutral": 7,
}
# The malformed rows `make_fer2013_csv` can append: (emotion code, pixels, Usage) of each kind.
MALFORMED_ROWS: dict[str, tuple[str, str, str]] = {
    "pixels": ("3", " ".join(["128"] * 2000), "Training"),  # 2,000 values, not 48×48
    "code": ("9", " ".join(["128"] * 48 * 48), "Training"),  # no emotion 9
    "usage": ("3", " ".join(["128"] * 48 * 48), "Holdout"),  # no such Usage
}


def faces(folder: str, count: int, size: int, start: int = 0) -> Iterator[np.ndarray]:
    """`count` gray size×size faces of a shipped class folder, from its `start`-th file on (cycling)."""
    import cv2

    paths = sorted((diffusionfer_dir() / folder).glob("*.png"))
    for k in range(start, start + count):
        gray = cv2.imread(str(paths[k % len(paths)]), cv2.IMREAD_GRAYSCALE)
        yield cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA)


def _write(path: Path, image: np.ndarray) -> None:
    """Write `image` to `path` (format from the suffix), creating its folder."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")


def make_fer2013_folder(
    dst: Path,
    per_class: int = 4,
    test_per_class: int = 1,
    size: int = 48,
    omit: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """FER-2013 as Kaggle ships it under `dst`: `train/<class>/Training_N.jpg` (`per_class` per class) and
    `test/<class>/PublicTest_N.jpg` + `PrivateTest_N.jpg` (`test_per_class` of each per class), 48×48 gray,
    numbered in one sequence. `omit={"test": ["disgust"]}` leaves a class out of a split folder. Returns `dst`."""
    dst, omit, number = Path(dst), omit or {}, 0
    sides = {
        "train": (("Training", per_class),),
        "test": (("PublicTest", test_per_class), ("PrivateTest", test_per_class)),
    }
    for side, usages in sides.items():
        for folder in FER2013_FOLDERS:
            if folder in omit.get(side, ()):
                continue
            start = 0 if side == "train" else per_class
            for usage, count in usages:
                for face in faces(folder, count, size, start):
                    number += 1
                    _write(dst / side / folder / f"{usage}_{number}.jpg", face)
                start += count
    return dst


def make_rafdb_folder(dst: Path, per_class: int = 4, test_per_class: int = 2, size: int = 100) -> Path:
    """RAF-DB's basic set under `dst`: `train/<1..7>/train_NNNNN_aligned.jpg` (`per_class` per class) and
    `test/<1..7>/test_NNNN_aligned.jpg` (`test_per_class` per class), size×size gray; label folders as in
    `folders.RAFDB_CLASSES` (index with `classes=RAFDB_CLASSES`, CLI `--classes`). Returns `dst`."""
    dst = Path(dst)
    counters = {"train": 0, "test": 0}
    for folder, label in RAFDB_LABELS.items():
        for side, count, start, digits in (("train", per_class, 0, 5), ("test", test_per_class, per_class, 4)):
            for face in faces(folder, count, size, start):
                counters[side] += 1
                _write(dst / side / str(label) / f"{side}_{counters[side]:0{digits}d}_aligned.jpg", face)
    return dst


def make_fer2013_csv(
    dst: Path,
    rows_per_class: int = 4,
    test_per_class: int = 1,
    malformed: Sequence[str] = ("pixels",),
    name: str = "fer2013.csv",
) -> Path:
    """FER-2013's CSV at `dst/<name>` (`emotion,pixels,Usage`): per class, `rows_per_class` Training rows and
    `test_per_class` PublicTest and PrivateTest rows of 48×48 gray faces, then one malformed row of each
    kind in `malformed` (keys of MALFORMED_ROWS: "pixels", "code", "usage"). Rows are interleaved by
    class, as in the real file. Returns the CSV's path."""
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[int, int, str, str]] = []  # (order, code, pixels, usage)
    for code, folder in enumerate(FER2013_FOLDERS):
        usages = [("Training", rows_per_class), ("PublicTest", test_per_class), ("PrivateTest", test_per_class)]
        start = 0
        for usage, count in usages:
            for k, face in enumerate(faces(folder, count, 48, start)):
                rows.append((start + k, code, " ".join(map(str, face.ravel().tolist())), usage))
            start += count
    order = {"Training": 0, "PublicTest": 1, "PrivateTest": 2}
    rows.sort(key=lambda row: (order[row[3]], row[0], row[1]))
    lines = ["emotion,pixels,Usage", *(f"{code},{pixels},{usage}" for _, code, pixels, usage in rows)]
    lines += [",".join(MALFORMED_ROWS[kind]) for kind in malformed]
    path = dst / name
    path.write_text("\n".join(lines) + "\n")
    return path
