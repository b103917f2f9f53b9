"""The generated faces shipped with the package (DiffusionFER-S, CC0): read as they are, as a folder of
classes, by the same indexer and preprocessing as any image folder."""

from __future__ import annotations

from pathlib import Path

import cv2

from fer_utils.assets import diffusionfer_dir
from fer_utils.book import artifacts
from fer_utils.data.manifest import load_manifest, usable_frames

COUNTS = {"angry": 178, "disgust": 88, "fearful": 72, "happy": 340, "neutral": 348, "sad": 81, "surprised": 182}


def test_the_shipped_folder_is_gray_96_px_with_its_license_beside_it() -> None:
    root = diffusionfer_dir()
    attribution = (root / "ATTRIBUTION.md").read_text()
    assert "CC0 1.0" in attribution and "generated faces, not photographs" in attribution
    images = sorted(root.glob("*/*.png"))
    assert len(images) == 1289
    for path in images[::97]:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert image.shape == (96, 96), path


def test_the_generated_faces_index_into_seven_classes_one_person_each(tmp_path: Path) -> None:
    crops = artifacts.Dataset(artifacts.GENERATED_DATASET).crops(tmp_path)
    frames = usable_frames(load_manifest(crops))
    assert frames["emotion"].value_counts().to_dict() == COUNTS
    assert frames["subject"].is_unique and set(frames["detector"]) == {"none"}
    assert (frames["w"] == artifacts.GENERATED_SIDE).all()
    again = artifacts.Dataset(artifacts.GENERATED_DATASET).crops(tmp_path)
    assert again == crops, "made once, then reused from the cache"
    assert artifacts.Dataset(artifacts.GENERATED_DATASET).label == "the generated faces (DiffusionFER-S)"


def test_another_folder_given_as_data_dir_is_read_instead(tmp_path: Path) -> None:
    source = diffusionfer_dir()
    for emotion in ("happy", "sad"):
        (tmp_path / "faces" / emotion).mkdir(parents=True)
        for path in sorted((source / emotion).glob("*.png"))[:3]:
            (tmp_path / "faces" / emotion / path.name).write_bytes(path.read_bytes())
    crops = artifacts.Dataset(artifacts.GENERATED_DATASET, tmp_path / "faces").crops(tmp_path / "cache")
    assert usable_frames(load_manifest(crops))["emotion"].value_counts().to_dict() == {"happy": 3, "sad": 3}
