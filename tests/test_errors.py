"""The package's one error family (issue 45): a wrong preset name, an exercise's unreadable answer and an image
that cannot be used raise errors of `fer_utils.errors.FerError`'s family, under the parents that say what they
are, and every `except` that caught them before still does."""

from __future__ import annotations

from pathlib import Path

import pytest

from fer_utils.errors import BadImageError, FerError, MediaError, PresetError, TrainingError, VideoError
from fer_utils.train.config import PRESETS, TrainConfig


def test_a_wrong_preset_name_is_a_training_error_naming_the_presets() -> None:
    """It was a bare KeyError, whose message came quoted and outside the family the CLI reports."""
    with pytest.raises(FerError) as info:
        TrainConfig.preset("refrence")
    assert isinstance(info.value, TrainingError) and isinstance(info.value, KeyError)  # `except KeyError` still works
    assert str(info.value) == f"no training preset 'refrence'; choose one of: {', '.join(sorted(PRESETS))}"
    assert isinstance(info.value, PresetError)


def test_a_bad_image_is_a_media_error_not_a_video_error() -> None:
    assert issubclass(BadImageError, MediaError) and not issubclass(BadImageError, VideoError)
    assert issubclass(VideoError, MediaError) and BadImageError.status == "bad_image"


def test_a_bad_image_is_still_recorded_as_such_by_preprocessing(tmp_path: Path) -> None:
    """An image too large to decode raises a BadImageError, which preprocessing (now catching MediaError)
    records as `bad_image` beside the good one, and goes on. (A FER-2013 row above 255, the first example, is
    now refused earlier, at indexing: issue 47.)"""
    import shutil

    from test_messy_images import huge_png

    from fer_utils.assets import london_faces_dir
    from fer_utils.data.indexing import index_dataset
    from fer_utils.faces.crop_spec import CropSpec
    from fer_utils.faces.preprocess import preprocess_dataset

    src = tmp_path / "src" / "neutral"
    src.mkdir(parents=True)
    huge_png(src / "999_03.png")
    shutil.copy(london_faces_dir() / "neutral" / "001_03.jpg", src)
    clips = index_dataset("folder", src.parent).clips
    manifest = preprocess_dataset(
        clips, tmp_path / "crops", CropSpec(detector="none", side=48), frames=1, workers=1, progress=False
    )
    assert sorted(manifest["status"]) == ["bad_image", "ok"]
    assert "limit" in manifest.loc[manifest["status"] == "bad_image", "reason"].iloc[0]
