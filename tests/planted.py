"""A dataset with its own split made from the shipped generated faces, with duplicates planted on purpose:
the real files behind the duplicate audit's tests (tests/test_duplicates.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2

from fer_utils.assets import diffusionfer_dir

CLASSES = ("happy", "sad", "angry", "neutral")
PER_CLASS = {"train": 6, "test": 3}  # distinct generated faces per class and side
# The planted copies, each a test image (or a second train image) made from a train image:
# name -> (train class it copies, its class folder, its side, how it is made)
PLANTED = {
    "exact": ("happy", "happy", "test", "copy"),
    "reencoded": ("sad", "sad", "test", "jpeg"),
    "resized": ("angry", "angry", "test", "resize"),
    "conflict": ("neutral", "happy", "test", "copy"),
    "within": ("happy", "happy", "train", "copy"),
}
# What the audit must find: exact groups (images), near-duplicate groups (images), and per kind the groups
# across train and test and those with conflicting labels.
EXACT_GROUPS, EXACT_IMAGES, EXACT_ACROSS, EXACT_CONFLICTS = 3, 6, 2, 1  # exact, conflict, within
NEAR_GROUPS, NEAR_IMAGES, NEAR_ACROSS = 2, 4, 2  # reencoded, resized
TEST_COPIES = 4  # exact, reencoded, resized, conflict: what the clean-test option removes
IMAGES = len(CLASSES) * sum(PER_CLASS.values()) + len(PLANTED)


def planted_dataset(root: Path) -> Path:
    """`root/{train,test}/<class>/*.png` of distinct generated faces plus the PLANTED copies; returns `root`."""
    shipped = {name: sorted((diffusionfer_dir() / name).glob("*.png")) for name in CLASSES}
    originals = {}
    for name in CLASSES:
        start = 0
        for side, count in PER_CLASS.items():
            (root / side / name).mkdir(parents=True, exist_ok=True)
            for image in shipped[name][start : start + count]:
                shutil.copy2(image, root / side / name / image.name)
            originals.setdefault(name, root / "train" / name / shipped[name][0].name)
            start += count
    taken = dict.fromkeys(CLASSES, 1)  # the next train image of a class to copy (each copy its own original)
    for label, (source, folder, side, how) in PLANTED.items():
        original = root / "train" / source / shipped[source][taken[source]].name
        taken[source] += 1
        target = root / side / folder / f"{label}_{original.stem}"
        image = cv2.imread(str(original), cv2.IMREAD_UNCHANGED)
        if how == "copy":
            shutil.copy2(original, target.with_suffix(".png"))
        elif how == "jpeg":
            cv2.imwrite(str(target.with_suffix(".jpg")), image, [cv2.IMWRITE_JPEG_QUALITY, 75])
        else:
            side_px = image.shape[0] * 3 // 4
            small = cv2.resize(image, (side_px, side_px), interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(target.with_suffix(".png")), small)
    return root
