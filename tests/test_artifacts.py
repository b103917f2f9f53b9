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

    from fer_utils import models
    from fer_utils.book.artifacts import code_fingerprint

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
    """ensure_run(build=…) keys its cache by the builder's code: the model of an edited builder is what the
    new run holds, and the unedited code gets the cached run back without training."""
    import json

    from toy_data import make_toy_crops

    from fer_utils.book import artifacts

    monkeypatch.setenv("FER_CACHE", str(tmp_path / "cache"))
    crops = tmp_path / "crops"
    make_toy_crops(crops, size=16, frames_per_clip=1)
    settings = dict(image_size=(16, 16), epochs=1, patience=1)
    first = artifacts.ensure_run(crops, build=_import_module(tmp_path, "b1", BUILDER_MODULE).build, **settings)
    again = artifacts.ensure_run(crops, build=_import_module(tmp_path, "b2", BUILDER_MODULE).build, **settings)
    assert again == first
    wider = BUILDER_MODULE.replace(
        "x = keras.layers.Flatten()(inputs)", "x = keras.layers.Dense(3)(inputs)\n    x = keras.layers.Flatten()(x)"
    )
    edited = artifacts.ensure_run(crops, build=_import_module(tmp_path, "b3", wider).build, **settings)
    assert edited != first
    params = [json.loads((run / "config.json").read_text())["params"] for run in (first, edited)]
    classes = len(json.loads((first / "classes.json").read_text()))
    assert params == [16 * 16 * classes + classes, 16 * 16 * 3 * classes + 3 * 2 + classes]
