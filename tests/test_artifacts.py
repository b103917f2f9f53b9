"""The artefact cache: what two chapters executed side by side ask for at once is made once."""

from __future__ import annotations

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
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, _head(x, num_classes))
"""


def _import_module(folder: Path, name: str, text: str):
    """Write `text` as module `name` in `folder` and import it (inspect can then read its source)."""
    import importlib.util

    path = folder / f"{name}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_code_fingerprint_follows_the_builder_and_the_helpers_it_calls(tmp_path: Path) -> None:
    """The same code in another module has the same fingerprint; an edit in the builder or in a helper it
    calls changes it; the package's own builder is fingerprinted through its helpers too."""
    import functools

    from fer_utils.book.artifacts import code_fingerprint
    from fer_utils.models import networks as models

    same = code_fingerprint(_import_module(tmp_path, "builder_a", BUILDER_MODULE).build)
    assert code_fingerprint(_import_module(tmp_path, "builder_b", BUILDER_MODULE).build) == same
    edited_helper = BUILDER_MODULE.replace('activation="softmax"', 'activation="sigmoid"')
    assert code_fingerprint(_import_module(tmp_path, "builder_c", edited_helper).build) != same
    edited_builder = BUILDER_MODULE.replace("Flatten()(inputs)", "GlobalAveragePooling2D()(inputs)")
    assert code_fingerprint(_import_module(tmp_path, "builder_d", edited_builder).build) != same
    paper = code_fingerprint(models.build_paper_cnn)
    assert paper == code_fingerprint(models.MODEL_BUILDERS["paper-cnn"])
    assert paper != code_fingerprint(models.build_mini_xception)
    assert code_fingerprint(functools.partial(models.build_paper_cnn, l1=0.1)) != paper


def test_an_edited_builder_trains_a_new_run_and_the_same_code_reuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """artifacts.train keys its cache by the builder's code: the model of an edited builder is what the
    new run holds, and the unedited code gets the cached run back without training."""
    import json

    from toy_data import make_toy_crops

    from fer_utils.book import artifacts
    from fer_utils.train.config import TrainConfig
    from fer_utils.train.pipeline import FaceData

    monkeypatch.setenv("FER_CACHE", str(tmp_path / "cache"))
    crops = tmp_path / "crops"
    make_toy_crops(crops, size=16, frames_per_clip=1)
    config = TrainConfig.preset("reference", image_size=(16, 16), epochs=1, patience=1)
    first = artifacts.train(_import_module(tmp_path, "b1", BUILDER_MODULE).build, FaceData(crops), config)
    again = artifacts.train(_import_module(tmp_path, "b2", BUILDER_MODULE).build, FaceData(crops), config)
    assert again == first
    wider = BUILDER_MODULE.replace(
        "x = keras.layers.Flatten()(inputs)", "x = keras.layers.Dense(3)(inputs)\n    x = keras.layers.Flatten()(x)"
    )
    edited = artifacts.train(_import_module(tmp_path, "b3", wider).build, FaceData(crops), config)
    assert edited != first
    params = [json.loads((run / "config.json").read_text())["params"] for run in (first, edited)]
    classes = len(json.loads((first / "classes.json").read_text()))
    assert params == [16 * 16 * classes + classes, 16 * 16 * 3 * classes + 3 * 2 + classes]


READING_MODULE = """
import functools

import keras
import numpy as np

WIDTH = 4
SHAPES = {"hidden": (WIDTH,), "names": ("a", "b")}
MEAN = np.zeros(3)


def _hidden(x, width=WIDTH):
    return keras.layers.Dense(width)(x)


def build(num_classes=2, input_shape=(16, 16, 1), **options):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    x = _hidden(x, SHAPES["hidden"][0]) + float(MEAN.sum())
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))


def make_build(width):
    def build_with(num_classes=2, input_shape=(16, 16, 1), **options):
        return Builder(width)(num_classes, input_shape)

    return build_with


class Builder:
    def __init__(self, width):
        self.width = width

    def __call__(self, num_classes=2, input_shape=(16, 16, 1), **options):
        inputs = keras.Input(shape=input_shape)
        x = _hidden(keras.layers.Flatten()(inputs), int(self.width))
        return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))
"""


def test_code_fingerprint_covers_the_values_a_builder_reads(tmp_path: Path) -> None:
    """The fingerprint changes with a global a builder reads (directly, inside a dict, in a numpy array or as a
    default argument), with a closure cell, and with a callable object's attributes; not with a global it does
    not read nor with the module's name."""
    import functools

    from fer_utils.book.artifacts import code_fingerprint

    module = _import_module(tmp_path, "reads_a", READING_MODULE)
    same = code_fingerprint(module.build)
    assert code_fingerprint(_import_module(tmp_path, "reads_b", READING_MODULE).build) == same
    module.UNREAD = 1
    assert code_fingerprint(module.build) == same
    module.SHAPES = {"hidden": (5,), "names": ("a", "b")}
    changed = code_fingerprint(module.build)
    assert changed != same
    module.MEAN = module.np.ones(3)
    assert code_fingerprint(module.build) not in (same, changed)
    module.SHAPES, module.MEAN = {"hidden": (4,), "names": ("a", "b")}, module.np.zeros(3)
    assert code_fingerprint(module.build) == same
    with_default = _import_module(tmp_path, "reads_c", READING_MODULE.replace("width=WIDTH", "width=WIDTH + 1"))
    assert code_fingerprint(with_default.build) != same  # the helper's default argument is read
    assert code_fingerprint(module.make_build(3)) != code_fingerprint(module.make_build(4))
    assert code_fingerprint(module.Builder(3)) == code_fingerprint(module.Builder(3))
    assert code_fingerprint(module.Builder(3)) != code_fingerprint(module.Builder(4))
    assert code_fingerprint(module.Builder(3).__call__) == code_fingerprint(module.Builder(3).__call__)
    assert code_fingerprint(functools.partial(module.Builder(3), num_classes=2)) != code_fingerprint(module.Builder(3))


def test_what_cannot_be_fingerprinted_is_a_clear_error(tmp_path: Path) -> None:
    """A builder reading an object with no stable value, or a built-in function as the builder, is a
    FingerprintError naming the builder and what it read."""
    from fer_utils.book.artifacts import code_fingerprint
    from fer_utils.book.book_errors import FingerprintError
    from fer_utils.errors import FerError

    module = _import_module(tmp_path, "opaque", READING_MODULE)
    module.SHAPES = object()
    with pytest.raises(FingerprintError, match=r"builder build: `SHAPES`, read by build, is <object object"):
        code_fingerprint(module.build)
    with pytest.raises(FingerprintError, match=r"builder len: the builder is <built-in function len>.*built in"):
        code_fingerprint(len)
    builder = module.Builder(object())
    with pytest.raises(
        FerError, match=r"builder \(an instance of Builder\): `width`, an attribute of the builder, is <object"
    ):
        code_fingerprint(builder)


def test_a_builder_reading_a_changed_global_trains_a_new_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A global the builder reads (`WIDTH` of its hidden layer) changed in place, as a notebook cell re-run
    with another value does: artifacts.train trains a new run with the new width instead of reusing the old one;
    the old value gets the old run back; an unfingerprintable builder trains nothing."""
    import json

    from toy_data import make_toy_crops

    from fer_utils.book import artifacts
    from fer_utils.book.book_errors import FingerprintError
    from fer_utils.train.config import TrainConfig
    from fer_utils.train.pipeline import FaceData

    monkeypatch.setenv("FER_CACHE", str(tmp_path / "cache"))
    crops = tmp_path / "crops"
    make_toy_crops(crops, size=16, frames_per_clip=1)
    config = TrainConfig.preset("reference", image_size=(16, 16), epochs=1, patience=1)
    module = _import_module(tmp_path, "global_width", READING_MODULE)
    narrow = artifacts.train(module.build, FaceData(crops), config)
    module.SHAPES = {**module.SHAPES, "hidden": (6,)}
    wide = artifacts.train(module.build, FaceData(crops), config)
    assert Path(wide) != Path(narrow)
    classes = len(json.loads((Path(narrow) / "classes.json").read_text()))
    params = [json.loads((Path(run) / "config.json").read_text())["params"] for run in (narrow, wide)]
    assert params == [256 * w + w + w * classes + classes for w in (4, 6)]
    module.SHAPES = {**module.SHAPES, "hidden": (4,)}
    assert Path(artifacts.train(module.build, FaceData(crops), config)) == Path(narrow)
    module.SHAPES = object()
    with pytest.raises(FingerprintError, match="SHAPES"):
        artifacts.train(module.build, FaceData(crops), config)
    assert len(list((tmp_path / "cache" / "runs").glob("[!.]*"))) == 2  # the two runs, no third


def test_a_callable_object_builds_the_run_and_its_attributes_key_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A callable object (an instance with `__call__`) as builder: artifacts.train trains its model, and an object
    with other attribute values trains another run (it failed with AttributeError before)."""
    import json

    from toy_data import make_toy_crops

    from fer_utils.book import artifacts
    from fer_utils.train.config import TrainConfig
    from fer_utils.train.pipeline import FaceData

    monkeypatch.setenv("FER_CACHE", str(tmp_path / "cache"))
    crops = tmp_path / "crops"
    make_toy_crops(crops, size=16, frames_per_clip=1)
    config = TrainConfig.preset("reference", image_size=(16, 16), epochs=1, patience=1)
    module = _import_module(tmp_path, "callable_builder", READING_MODULE)
    runs = [artifacts.train(module.Builder(width), FaceData(crops), config) for width in (2, 3, 2)]
    assert Path(runs[0]) == Path(runs[2]) != Path(runs[1])
    classes = len(json.loads((Path(runs[0]) / "classes.json").read_text()))
    params = [json.loads((Path(run) / "config.json").read_text())["params"] for run in runs[:2]]
    assert params == [256 * w + w + w * classes + classes for w in (2, 3)]


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


CLASS_MODULE = '''import keras


class Snapshot(keras.callbacks.Callback):
    """Keeps the weights at the end of training."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_train_end(self, logs=None):
        self.model.save_weights(self.path)


def decoder(size: tuple[int, int]):
    def decode(image: list[int]) -> dict[str, int]:  # a nested function's annotations
        return {"pixels": len(image) * size[0]}

    return decode


def callbacks(path):
    return [Snapshot(path), keras.callbacks.TerminateOnNaN(), decoder((2, 2))]
'''


@pytest.mark.slow
def test_code_defined_in_a_notebook_has_the_fingerprint_of_its_package_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: two things a chapter's saved cell holds got another key in a kernel than in the
    package, so chapter 4's `fit_model` and `make_dataset` keyed another reference run than chapters 3, 8 and
    9 would have found: a class (`LastEpochWeights`: Python cannot find the source of a class defined in a
    notebook) and a nested function's annotations (`_decoder`'s `decode`: a kernel evaluates them, reading
    `tuple`; the package's `from __future__ import annotations` does not). The same code, the same key."""
    import sys

    import nbformat
    import papermill

    from fer_utils.book.fingerprint import code_fingerprint

    module = _import_module(tmp_path, "class_module", CLASS_MODULE)
    monkeypatch.setitem(sys.modules, "class_module", module)  # imported, as the package's modules are
    package = code_fingerprint(module.callbacks)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(CLASS_MODULE),
        nbformat.v4.new_code_cell(
            "from fer_utils.book.fingerprint import code_fingerprint\nprint('KEY', code_fingerprint(callbacks))"
        ),
    ]
    path = tmp_path / "chapter.ipynb"
    nbformat.write(notebook, path)
    done = papermill.execute_notebook(str(path), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False)
    printed = "".join(output.get("text", "") for output in done.cells[-1].outputs)
    assert printed.split("KEY ", 1)[1].strip() == package
