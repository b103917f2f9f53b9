"""The crop spec: said once, written beside the crops, copied into every run, read by all that cut.

How a face becomes a model's input (detector, margin, side, alignment, colour) is one `CropSpec`: the
preprocessing run writes it beside its crops, training copies it into the run folder, and the recognizer of a
run reads it from there. That every path cuts a face from the spec alone is shown by what they cut
(tests/test_crop_parity.py: the CLI, Python inference, the API and the page give the same pixels for a spec
that is not the default), not by scanning the code for numbers. Folders made before the spec existed are refused
with what to do: preprocess the crops again, or train the run again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from toy_data import TOY_CLASSES, make_toy_crops

from fer_utils.deploy.inference import Recognizer
from fer_utils.errors import InputError, MissingFileError
from fer_utils.faces.crops import (
    CROP_SPEC_FILE,
    CropSpec,
    check_crop_spec,
    default_margin,
    read_crop_spec,
    served_spec,
    spec_with,
    write_crop_spec,
)
from fer_utils.registry import DEFAULT_MARGIN, NO_DETECTOR

REPO = Path(__file__).resolve().parents[1]


# --- the spec itself ---------------------------------------------------------------------------------------


def test_the_defaults_are_the_registrys_and_the_spec_round_trips(tmp_path: Path) -> None:
    spec = CropSpec()
    assert (spec.margin, spec.colour, spec.align) == (DEFAULT_MARGIN, "gray", False)
    assert read_crop_spec(tmp_path) is None
    path = write_crop_spec(tmp_path, CropSpec(detector="opencv-haar", margin=0.25, side=96, align=True))
    assert path == tmp_path / CROP_SPEC_FILE
    assert read_crop_spec(tmp_path) == CropSpec(detector="opencv-haar", margin=0.25, side=96, align=True)
    before = path.stat().st_mtime_ns
    write_crop_spec(tmp_path, read_crop_spec(tmp_path))  # the same spec: the file is left alone
    assert path.stat().st_mtime_ns == before


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("detector", "mtcnn", "unknown detector"),
        ("margin", 1.5, "margin must be between 0 and 1"),
        ("margin", True, "margin must be between 0 and 1"),
        ("side", 4, "at least 8 pixels"),
        ("side", 96.0, "at least 8 pixels"),
        ("side", 100000, "at most 1024 pixels"),  # it ran out of memory
        ("colour", "rgb", "unknown crop colour"),
    ],
)
def test_a_spec_that_cannot_work_is_refused(field: str, value: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_crop_spec(CropSpec(**{field: value}))


def test_a_damaged_spec_file_is_a_crop_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / CROP_SPEC_FILE).write_text('{"margin": 0.1}')
    with pytest.raises(InputError, match=f"{CROP_SPEC_FILE}.*exactly the fields"):
        read_crop_spec(tmp_path)
    (tmp_path / CROP_SPEC_FILE).write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        read_crop_spec(tmp_path)


def test_a_spec_made_without_a_margin_takes_its_detectors_default() -> None:
    """`CropSpec()`'s margin was 0.1 whatever its detector, and the CLI alone applied `default_margin`
    (0 for whole images), so the API and the book cut whole images with a margin the CLI did not. The spec
    itself decides it now, for every caller; a margin given is kept; the CLI's options and the book's keywords
    give None for what they leave to the spec (`spec_with`), and a model of whole images is served through a face
    detector with the default margin (`served_spec`: the recognizer's default and the page's)."""
    assert CropSpec(detector=NO_DETECTOR).margin == 0.0 == default_margin(NO_DETECTOR)
    assert CropSpec(detector="opencv-haar").margin == DEFAULT_MARGIN == CropSpec().margin
    assert CropSpec(detector=NO_DETECTOR, margin=0.2).margin == 0.2
    assert spec_with(detector=NO_DETECTOR, margin=None, side=None) == CropSpec(detector=NO_DETECTOR)
    assert spec_with(side=48) == CropSpec(side=48)
    assert served_spec(CropSpec(detector=NO_DETECTOR, side=96)) == CropSpec(side=96)
    kept = CropSpec(detector="opencv-haar", margin=0.3)
    assert served_spec(kept) == kept


def test_whole_images_have_no_margin_and_are_served_with_the_default_one() -> None:
    """A crop of a whole image (detector none) has no margin by default; served through a face detector, it gets
    the default margin, since how much of a whole image lies around its face is not known."""
    assert default_margin(NO_DETECTOR) == 0.0 and default_margin("dlib-hog") == DEFAULT_MARGIN
    whole = CropSpec(detector=NO_DETECTOR, margin=0.0, side=96)
    assert whole.served_with("dlib-hog") == CropSpec(detector="dlib-hog", margin=DEFAULT_MARGIN, side=96)
    assert CropSpec(margin=0.3).served_with("opencv-haar").margin == 0.3


# --- written by preprocessing, copied by training, read by the recognizer -----------------------------------


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Toy crops (64 px) with their spec."""
    root = tmp_path_factory.mktemp("toy")
    make_toy_crops(root, size=64, frames_per_clip=2)
    return root


def test_preprocessing_writes_the_spec_beside_its_crops_and_start_over_removes_it(tmp_path: Path) -> None:
    from fer_utils.assets import still_paths
    from fer_utils.data.indexing import index_dataset
    from fer_utils.faces.preprocess import folder_crop_spec, preprocess_dataset, start_over

    src = tmp_path / "src" / "neutral"
    src.mkdir(parents=True)
    for still in still_paths()[:2]:
        (src / still.name).write_bytes(still.read_bytes())
    clips = index_dataset("folder", tmp_path / "src").clips
    out = tmp_path / "crops"
    preprocess_dataset(clips, out, CropSpec(detector="opencv-haar", margin=0.3, side=48), workers=1, progress=False)
    assert read_crop_spec(out) == CropSpec(detector="opencv-haar", margin=0.3, side=48)
    settings = json.loads((out / ".parts" / "settings.json").read_text())
    assert settings["size"] == 48 and settings["margin"] == 0.3 and "crop" not in settings  # the older names
    (out / CROP_SPEC_FILE).unlink()  # a folder preprocessed before the spec existed: refused, with what to do
    with pytest.raises(InputError, match=r"preprocessed before crop specs were saved.*preprocess it again"):
        folder_crop_spec(out)
    preprocess_dataset(clips, out, CropSpec(detector="opencv-haar", margin=0.3, side=48), workers=1, progress=False)
    assert read_crop_spec(out) == CropSpec(detector="opencv-haar", margin=0.3, side=48)  # resumed, and written
    start_over(out)
    assert not (out / CROP_SPEC_FILE).exists() and folder_crop_spec(out) is None


@pytest.mark.slow
def test_a_run_copies_its_crops_spec_and_its_recognizer_crops_with_it(toy: Path, tmp_path: Path) -> None:
    """The run folder holds the crops' spec (config.json no longer repeats it); the model takes the crops at their
    side (64) and resizes them itself to the run's 16; the run's recognizer cuts faces with the spec."""
    from fer_utils.models.networks import input_side
    from fer_utils.train.config import TrainConfig
    from fer_utils.train.fit import train_run
    from fer_utils.train.pipeline import FaceData

    config = TrainConfig(epochs=1, image_size=(16, 16), patience=1)
    run = train_run(None, FaceData(toy), config, tmp_path / "run", verbose=0)
    assert read_crop_spec(run.path) == read_crop_spec(toy) and "crops" not in run.config()
    assert input_side(run.load()) is None and run.load().get_layer("resize").output.shape[1:3] == (16, 16)
    recognizer = Recognizer.of_run(run)
    assert recognizer.spec.side == 64 and recognizer.margin == read_crop_spec(toy).margin


def legacy_run(folder: Path, crops: dict | None, side: int = 32) -> Path:
    """A run folder as the package wrote it before the crop spec: a model of one input side with no resizer,
    its classes, and config.json recording the image size and, when `crops` is given, the crops' preprocessing
    settings (`crops`) instead of a `crop_spec.json`."""
    import keras

    from fer_utils.models.networks import save_model

    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(side, side, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    outputs = keras.layers.Dense(len(TOY_CLASSES), activation="softmax")(keras.layers.Flatten()(x))
    save_model(keras.Model(inputs, outputs), folder / "model.keras", list(TOY_CLASSES))
    config = {"image_size": [side, side], **({"crops": crops} if crops is not None else {})}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_a_run_made_before_the_spec_is_refused_with_what_to_do(tmp_path: Path) -> None:
    """A run whose config.json records its crops' settings (`crops`) instead of a spec, or whose model takes a
    fixed side other than its crops' (saved before models resized their input), is refused in one line naming
    what is missing and saying to train it again; neither is read into a spec nor put behind a resizer."""
    from fer_utils.train.runs import RunFolder

    settings = {"detector": "opencv-haar", "size": 180, "margin": 0.2, "align": False, "frames": 6}
    old = RunFolder(legacy_run(tmp_path / "old", settings))
    with pytest.raises(MissingFileError, match=r"before runs saved their crop spec \(crop_spec.json is missing.*train"):
        old.crop_spec()
    with pytest.raises(MissingFileError, match="train the run again"):
        Recognizer.of_run(old)
    unresized = RunFolder(legacy_run(tmp_path / "unresized", None))
    write_crop_spec(unresized.path, CropSpec(side=180))
    with pytest.raises(InputError, match=r"takes 32×32 px crops and does not resize.*180×180 px: train the run"):
        unresized.load()


def test_runs_on_crops_made_by_hand_or_aligned_crops(tmp_path: Path) -> None:
    """Crops made by hand (no spec, no record) take the default spec at the run's image size; a model folder with
    no config at all the side its model takes. Aligned crops are refused by the recognizer, which does not align."""
    from fer_utils.train.runs import RunFolder

    by_hand = RunFolder(legacy_run(tmp_path / "b", None, 48))
    assert by_hand.crop_spec() == CropSpec(side=48)
    (by_hand / "config.json").unlink()
    assert by_hand.crop_spec(48) == CropSpec(side=48) and Recognizer.of_run(by_hand).spec.side == 48
    aligned = RunFolder(legacy_run(tmp_path / "c", None))
    write_crop_spec(aligned.path, CropSpec(detector="dlib-hog", margin=0.1, side=32, align=True))
    with pytest.raises(InputError, match="eye-aligned"):
        Recognizer.of_run(aligned)
