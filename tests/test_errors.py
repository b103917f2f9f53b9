"""The package's one error family (`fer_utils.errors`): a few classes by what the caller can do, each a
subclass of the built-in it behaves like; a wrong preset name, an exercise's unreadable answer and an image that
cannot be used raise members of it, and the kind of a media or download problem travels in `status`."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from fer_utils import errors
from fer_utils.errors import (
    BookError,
    DownloadError,
    FerError,
    InputError,
    MediaError,
    MissingFileError,
    OutputError,
    SetupError,
)
from fer_utils.train.config import PRESETS, TrainConfig

# The family and the built-in each member behaves like.
FAMILY = {
    FerError: Exception,
    InputError: ValueError,
    MediaError: ValueError,
    MissingFileError: FileNotFoundError,
    OutputError: FileExistsError,
    DownloadError: OSError,
    SetupError: RuntimeError,
    BookError: RuntimeError,
}


def test_the_family_is_small_and_each_member_is_the_builtin_it_behaves_like() -> None:
    members = {value for value in vars(errors).values() if isinstance(value, type) and issubclass(value, BaseException)}
    assert members == set(FAMILY) and len(members) <= 10
    for member, builtin in FAMILY.items():
        assert issubclass(member, FerError) and issubclass(member, builtin), member
        assert str(member("the message as written")) == "the message as written"  # no quoting, no errno prefix


def test_a_status_says_what_kind_of_problem_and_survives_a_worker_process() -> None:
    """Preprocessing's workers send a MediaError back pickled; its status (the manifest status) comes with it."""
    for error, status in (
        (MediaError("x.mp4 is a zero-byte file", status="empty"), "empty"),
        (DownloadError("stopped on request", status="stopped"), "stopped"),
    ):
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error) and again.status == status and str(again) == str(error)
    assert MediaError("x").status == "unreadable" and DownloadError("x").status == "failed"
    with pytest.raises(ValueError, match="status is one of"):
        MediaError("x", status="broken")


def test_a_wrong_preset_name_is_an_input_error_naming_the_presets() -> None:
    """It was a bare KeyError, whose message came quoted and outside the family the CLI reports."""
    with pytest.raises(InputError) as info:
        TrainConfig.preset("refrence")
    assert str(info.value) == f"no training preset 'refrence'; choose one of: {', '.join(sorted(PRESETS))}"


def test_a_bad_image_is_still_recorded_as_such_by_preprocessing(tmp_path: Path) -> None:
    """An image too large to decode raises a MediaError of status `bad_image`, which preprocessing records as
    such beside the good one, and goes on. (A FER-2013 row above 255, the first example, is
    now refused earlier, at indexing.)"""
    import shutil

    from test_messy_images import huge_png

    from fer_utils.assets import london_faces_dir
    from fer_utils.data.indexing import index_dataset
    from fer_utils.faces.crops import CropSpec
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
