"""The package's one error family (issue 45): a wrong preset name, an exercise's unreadable answer and an image
that cannot be used raise errors of `fer_utils.errors.FerError`'s family, under the parents that say what they
are, and every `except` that caught them before still does."""

from __future__ import annotations

from pathlib import Path

import pytest

from fer_utils.errors import BadImageError, FerError, MediaError, PresetError, TrainingError, VideoError
from fer_utils.train_config import PRESETS, TrainConfig


def test_a_wrong_preset_name_is_a_training_error_naming_the_presets() -> None:
    """It was a bare KeyError, whose message came quoted and outside the family the CLI reports."""
    with pytest.raises(FerError) as info:
        TrainConfig.preset("refrence")
    assert isinstance(info.value, TrainingError) and isinstance(info.value, KeyError)  # `except KeyError` still works
    assert str(info.value) == f"no training preset 'refrence'; choose one of: {', '.join(sorted(PRESETS))}"
    assert isinstance(info.value, PresetError)


def test_the_exchanges_error_is_in_the_family_and_still_a_value_error() -> None:
    from fer_utils.book.errors import ExchangeError as BookExchangeError
    from fer_utils.book.exercises.exchange import ExchangeError, ModelUnreadable, read_answer

    assert ExchangeError is BookExchangeError and issubclass(ModelUnreadable, ExchangeError)
    assert issubclass(ExchangeError, FerError) and issubclass(ExchangeError, ValueError)
    with pytest.raises(FerError, match="not JSON"):  # what the grader reads from a kernel that wrote no answer
        read_answer("{an answer cut short")


def test_a_bad_image_is_a_media_error_not_a_video_error() -> None:
    assert issubclass(BadImageError, MediaError) and not issubclass(BadImageError, VideoError)
    assert issubclass(VideoError, MediaError) and BadImageError.status == "bad_image"


def test_a_bad_image_is_still_recorded_as_such_by_preprocessing(tmp_path: Path) -> None:
    """A FER-2013 row with a value above 255 decodes to a BadImageError, which preprocessing (now catching
    MediaError) records as `bad_image` beside the good row, and goes on."""
    from fer_utils.crop_spec import CropSpec
    from fer_utils.indexing import index_dataset
    from fer_utils.preprocess import preprocess_dataset

    good = " ".join(str(i % 256) for i in range(48 * 48))
    bad = " ".join(["300"] + [str(i % 256) for i in range(1, 48 * 48)])
    csv = tmp_path / "fer2013.csv"
    csv.write_text(f"emotion,pixels,Usage\n3,{good},Training\n3,{bad},Training\n")
    clips = index_dataset("fer2013", csv).clips
    manifest = preprocess_dataset(
        clips, tmp_path / "crops", CropSpec(detector="none", side=48), frames=1, workers=1, progress=False
    )
    assert sorted(manifest["status"]) == ["bad_image", "ok"]
    assert "above 255" in manifest.loc[manifest["status"] == "bad_image", "reason"].iloc[0]
