"""The artefact cache: what two chapters executed side by side ask for at once is made once, and an artefact is
keyed by its inputs (the config, the data, the model's JSON, the source of the functions passed)."""

from __future__ import annotations

import inspect
import multiprocessing
import time
from pathlib import Path

import pytest

from fer_utils.book.artifacts import build_atomically


def _slow_build(log: Path):
    """A build that records each call and takes long enough for another process to ask meanwhile."""

    def build(tmp: Path) -> None:
        with log.open("a") as handle:
            handle.write("built\n")
        time.sleep(1.0)
        tmp.mkdir()
        (tmp / "result.txt").write_text("done")

    return build


def _ask(target: str, log: str) -> None:
    result = build_atomically(Path(target), _slow_build(Path(log)))
    assert (result / "result.txt").read_text() == "done"


def test_two_processes_asking_for_one_artefact_build_it_once(tmp_path: Path) -> None:
    target, log = tmp_path / "runs" / "abc", tmp_path / "calls.log"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_ask, args=(str(target), str(log))) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert [w.exitcode for w in workers] == [0, 0]
    assert log.read_text() == "built\n", "the second process waited and reused the first one's artefact"
    assert sorted(p.name for p in target.parent.iterdir()) == [".abc.lock", "abc"], "no temporary folder left"


def test_a_failed_build_leaves_nothing_and_the_next_call_builds(tmp_path: Path) -> None:
    target = tmp_path / "runs" / "abc"

    def failing(tmp: Path) -> None:
        tmp.mkdir()
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        build_atomically(target, failing)
    assert not target.exists() and not list(target.parent.glob(".abc.tmp-*"))
    build_atomically(target, lambda tmp: tmp.mkdir())
    assert target.is_dir()


BUILDER_MODULE = """
import keras

WIDTH = 4


def _head(x, num_classes):
    return keras.layers.Dense(num_classes, activation="softmax")(x)


def build(num_classes=2, input_shape=(16, 16, 1), **options):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Dense(WIDTH)(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, _head(x, num_classes))
"""


def _import_module(folder: Path, name: str, text: str):
    """Write `text` as module `name` in `folder` and import it (inspect can then read its source)."""
    import importlib.util
    import sys

    path = folder / f"{name}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def toy(tmp_path: Path):
    """Toy crops (16 px, one frame a clip) as `FaceData`, and a one-epoch config for them."""
    from toy_data import make_toy_crops

    from fer_utils.train.config import TrainConfig
    from fer_utils.train.pipeline import FaceData

    make_toy_crops(tmp_path / "crops", size=16, frames_per_clip=1)
    return FaceData(tmp_path / "crops"), TrainConfig.preset("reference", image_size=(16, 16), epochs=1, patience=1)


def test_a_run_is_keyed_by_the_source_passed_the_model_it_makes_and_the_package(
    tmp_path: Path, toy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same source in another module has the same key, and so has the package's builder passed or not; an
    edit of the builder, a change of the network through a helper or a global it reads, an edit of the fit
    function, the frames used or any edit of the package (its digest) give another key."""
    from dataclasses import replace

    from fer_utils.book import artifacts
    from fer_utils.models import networks
    from fer_utils.train.fit import fit_model
    from fer_utils.train.pipeline import FaceData

    data, config = toy
    module = _import_module(tmp_path, "builder_a", BUILDER_MODULE)
    key = artifacts.run_key(module.build, data, config)
    assert artifacts.run_key(_import_module(tmp_path, "builder_b", BUILDER_MODULE).build, data, config) == key
    edits = [
        BUILDER_MODULE.replace('activation="softmax"', 'activation="sigmoid"'),  # a helper it calls
        BUILDER_MODULE.replace("Dense(WIDTH)", "Dense(WIDTH, use_bias=False)"),  # the builder itself
    ]
    keys = {artifacts.run_key(_import_module(tmp_path, f"edit{i}", t).build, data, config) for i, t in enumerate(edits)}
    module.WIDTH = 5  # a global it reads, changed as a notebook cell run again changes it
    keys.add(artifacts.run_key(module.build, data, config))
    module.WIDTH = 4
    assert artifacts.run_key(module.build, data, config) == key
    assert len(keys | {key}) == 4
    shown_fit = _import_module(
        tmp_path, "shown_fit", "from fer_utils.train.fit import *\n\n\n" + inspect.getsource(fit_model)
    )
    paper = artifacts.run_key(None, data, config)
    assert artifacts.run_key(networks.build_paper_cnn, data, config, fit=fit_model) != paper  # not the default fit
    shown = artifacts.run_key(networks.build_paper_cnn, data, config, fit=shown_fit.fit_model)
    assert shown == artifacts.run_key(None, data, config, fit=fit_model)
    assert artifacts.run_key(networks.build_paper_cnn, data, replace(config, seed=1)) != paper
    assert (
        artifacts.run_key(None, FaceData(data.crops, subjects=sorted(set(data.frames()["subject"]))[:6]), config)
        != paper
    )
    monkeypatch.setattr(artifacts, "package_digest", lambda: "an edited package")
    assert artifacts.run_key(None, data, config) != paper


def test_a_function_without_source_is_a_clear_error_and_trains_nothing(tmp_path: Path, toy) -> None:
    """A built-in, a callable object or a function typed at a prompt has no source to key a run or crops by:
    an error of the package's family naming it, before anything is trained."""
    from fer_utils.book import artifacts
    from fer_utils.errors import FerError, InputError

    data, config = toy
    namespace: dict = {}
    exec(compile("def build(num_classes, input_shape): pass", "<stdin>", "exec"), namespace)  # typed at a prompt
    module = _import_module(tmp_path, "callable_builder", "class Builder:\n    def __call__(self): pass\n")
    for function, named in (
        (len, "built-in function len"),
        (namespace["build"], "function build"),
        (module.Builder(), "Builder object"),
    ):
        with pytest.raises(InputError, match=named) as caught:
            artifacts.train(function, data, config, cache=tmp_path / "cache")
        assert isinstance(caught.value, (FerError, ValueError))
    with pytest.raises(InputError, match="built-in function min"):
        artifacts.train(None, data, config, fit=min, cache=tmp_path / "cache")
    with pytest.raises(InputError, match="built-in function max"):
        artifacts.edited_crop(max)
    assert not (tmp_path / "cache" / "runs").exists() or not list((tmp_path / "cache" / "runs").glob("[!.]*"))


def test_the_same_inputs_reuse_the_run_and_an_edited_builder_trains_a_new_one(
    tmp_path: Path, toy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """artifacts.train: the same source (in another module) gets the cached run back without training; the
    run of an edited builder holds the edited model."""
    import json

    from fer_utils.book import artifacts

    monkeypatch.setenv("FER_CACHE", str(tmp_path / "cache"))
    data, config = toy
    first = artifacts.train(_import_module(tmp_path, "b1", BUILDER_MODULE).build, data, config)
    again = artifacts.train(_import_module(tmp_path, "b2", BUILDER_MODULE).build, data, config)
    assert again == first
    wider = BUILDER_MODULE.replace("Dense(WIDTH)", "Dense(WIDTH * 2)")
    edited = artifacts.train(_import_module(tmp_path, "b3", wider).build, data, config)
    assert edited != first
    classes = len(json.loads((first / "classes.json").read_text()))
    params = [json.loads((run / "config.json").read_text())["params"] for run in (first, edited)]
    assert params == [256 * w + w + w * classes + classes for w in (4, 8)]


def test_an_edited_crop_function_makes_crops_of_its_own(tmp_path: Path) -> None:
    """A crop function with the source of the package's `crop_face` (a chapter's copy) shares the package's
    crops; an edited one makes crops of its own, cut by it."""
    import cv2

    from fer_utils.assets import diffusionfer_dir
    from fer_utils.book import artifacts
    from fer_utils.data.manifest import load_manifest
    from fer_utils.faces import crops

    for emotion in ("happy", "sad"):
        (tmp_path / "faces" / emotion).mkdir(parents=True)
        for path in sorted((diffusionfer_dir() / emotion).glob("*.png"))[:2]:
            (tmp_path / "faces" / emotion / path.name).write_bytes(path.read_bytes())
    text = Path(crops.__file__).read_text()
    copy = _import_module(tmp_path, "shown_crops", text).crop_face
    resize = "return cv2.resize(padded, (side, side), interpolation=interpolation)"
    assert resize in text
    edited = _import_module(tmp_path, "edited_crops", text.replace(resize, "return 255 - " + resize[7:])).crop_face
    assert artifacts.edited_crop(copy) is None and artifacts.edited_crop(edited) is edited
    dataset = artifacts.Dataset(artifacts.GENERATED_DATASET, tmp_path / "faces")
    package = dataset.crops(tmp_path / "cache", workers=1)
    assert dataset.crops(tmp_path / "cache", crop=copy, workers=1) == package
    own = dataset.crops(tmp_path / "cache", crop=edited, workers=1)
    assert own != package
    paths = load_manifest(package)["image"].head(1).tolist()
    image, inverted = (cv2.imread(str(folder / paths[0]), cv2.IMREAD_GRAYSCALE) for folder in (package, own))
    assert (inverted == 255 - image).all()


def test_a_small_clip_dataset_is_sampled_more_densely_and_the_paper_sized_one_is_not() -> None:
    """24 real clips at 6 frames each left the reference run at chance; a small dataset takes
    more frames per clip (about MIN_DATASET_FRAMES in all, capped), a paper-sized one keeps 6."""
    from fer_utils.book import artifacts

    assert artifacts.frames_per_clip(384) == 6  # the sample: unchanged, so its cached runs are unchanged
    assert artifacts.frames_per_clip(1440) == 6  # RAVDESS's video-only speech clips
    assert artifacts.frames_per_clip(24) == artifacts.MAX_FRAMES_PER_CLIP == 25
    assert artifacts.frames_per_clip(50) == 12
    assert artifacts.MIN_DATASET_FRAMES <= 50 * 12
    assert artifacts.frames_per_clip(0) == 25


def test_a_small_mead_folder_is_cropped_more_densely_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three of the sample's clips laid out as MEAD ships them (`M00N/video/front/<emotion>/level_1/001.mp4`):
    too few clips for the paper's 6 frames each, so every frame of each 15-frame clip is taken, with a note
    saying so (chapter 10 prints it)."""
    from fer_utils.book import artifacts
    from fer_utils.data.corpora import index_ravdess
    from fer_utils.data.manifest import load_manifest

    clips = index_ravdess(artifacts.ensure_sample()).clips
    for number, (emotion, folder) in enumerate((("happy", "happy"), ("sad", "sad"), ("calm", "contempt")), 1):
        source = clips[clips["emotion"] == emotion]["path"].iloc[0]
        target = tmp_path / "mead" / f"M00{number}" / "video" / "front" / folder / "level_1" / "001.mp4"
        target.parent.mkdir(parents=True)
        target.write_bytes(Path(source).read_bytes())
    dataset = artifacts.Dataset("mead", tmp_path / "mead")
    manifest = load_manifest(dataset.crops(tmp_path / "cache", detector="none", side=16, workers=1))
    assert "mead has 3 clips; taking up to 25 frames per clip instead of the paper's 6" in capsys.readouterr().out
    assert manifest.groupby("clip_id").size().tolist() == [15, 15, 15]
    assert set(manifest["emotion"]) == {"happy", "sad", "contempt"}


def test_a_changed_dataset_makes_new_crops_and_an_unchanged_one_reuses_them(tmp_path: Path) -> None:
    """Issue 74: after `Dataset("folder", D).crops()`, a class folder added to D, an image deleted and another
    overwritten, `crops()` gave back the same cached folder (the deleted image still in its manifest, the new class
    missing): the key was the root's path and the settings. It follows the dataset's files now."""
    import cv2
    from layouts import faces

    from fer_utils.book import artifacts
    from fer_utils.data.manifest import load_manifest

    root, cache = tmp_path / "faces", tmp_path / "cache"
    for emotion, folder in (("happy", "happy"), ("sad", "sad")):
        (root / emotion).mkdir(parents=True)
        for k, face in enumerate(faces(folder, 3, 48)):
            cv2.imwrite(str(root / emotion / f"{k}.png"), face)
    dataset = artifacts.Dataset("folder", root)
    first = dataset.crops(cache, detector="none", side=16, workers=1)
    assert dataset.crops(cache, detector="none", side=16, workers=1) == first  # the same files: reused
    (root / "angry").mkdir()
    cv2.imwrite(str(root / "angry" / "0.png"), next(faces("angry", 1, 48)))
    (root / "happy" / "0.png").unlink()
    overwritten = 255 - cv2.imread(str(root / "sad" / "1.png"), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(root / "sad" / "1.png"), overwritten)
    second = dataset.crops(cache, detector="none", side=16, workers=1)
    assert second != first
    manifest = load_manifest(second)
    assert set(manifest["emotion"]) == {"angry", "happy", "sad"} and len(manifest) == 6
    sources = {Path(source).relative_to(root).as_posix() for source in manifest["source"]}
    assert "happy/0.png" not in sources and "angry/0.png" in sources
    row = manifest[manifest["source"].map(lambda source: Path(source).relative_to(root).as_posix()) == "sad/1.png"]
    crop = cv2.imread(str(second / row["image"].iloc[0]), cv2.IMREAD_GRAYSCALE)
    expected = cv2.resize(overwritten, (16, 16), interpolation=cv2.INTER_AREA)
    assert abs(crop.astype(int) - expected.astype(int)).max() <= 1  # cut from the new file
    assert len(load_manifest(first)) == 6 and (first / "manifest.csv").is_file()  # the old crops kept as they were


def test_a_cached_run_that_lost_its_model_is_a_clear_error_not_handed_on(tmp_path: Path, toy) -> None:
    """Issue 74: a cached run whose `model.keras` was deleted came back from `artifacts.train` as it was, and the
    chapter then failed loading it, without advice. Now an error naming the file, the folder and what to do."""
    from fer_utils.book import artifacts
    from fer_utils.errors import MissingFileError

    data, config = toy
    run = artifacts.train(None, data, config, cache=tmp_path / "cache")
    assert artifacts.train(None, data, config, cache=tmp_path / "cache") == run  # complete: reused
    run.model_file.unlink()
    with pytest.raises(MissingFileError, match=r"has lost model\.keras since it was trained: delete that folder"):
        artifacts.train(None, data, config, cache=tmp_path / "cache")
    assert run.config_file.is_file() and not run.model_file.exists()  # nothing removed, nothing trained over it


def test_a_cache_named_by_its_text_is_the_folder_its_path_names(tmp_path: Path) -> None:
    """`Dataset.crops(cache="…")`, as a reader types a folder, was a TypeError (str / str) deep in the crops'
    key; so were `realfaces.stills_folder` and `artifacts.train`. The text names the same folder as its path."""
    import cv2
    from layouts import faces

    from fer_utils.book import artifacts, realfaces

    root, cache = tmp_path / "faces", tmp_path / "cache"
    (root / "happy").mkdir(parents=True)
    for k, face in enumerate(faces("happy", 2, 48)):
        cv2.imwrite(str(root / "happy" / f"{k}.png"), face)
    dataset = artifacts.Dataset("folder", root)
    crops = dataset.crops(str(cache), detector="none", side=16, workers=1)
    assert crops.parent == cache / "crops" and (crops / "manifest.csv").is_file()
    assert dataset.crops(cache, detector="none", side=16, workers=1) == crops  # the same folder: reused
    stills = realfaces.stills_folder(str(cache))
    assert stills.parent == cache and len(list((stills / "neutral").glob("*.png"))) == 24
