"""Every default from `TrainConfig`: the learning rate, the epochs and the augmentation a config
holds reach the run a chapter trains, through the code the chapter shows.

A kernel imports the chapters' kit and trains as chapter 4's reference-run cell does, with the code chapter 4
shows (`fer.make_dataset`, `fer.fit_model`): `fer.train(fer.build_paper_cnn,
fer.FaceData(crops, pipeline=make_dataset), config, fit=fer.fit_model)`, with a config whose learning rate, epochs
and augmentation differ from every default. The package's `make_dataset` is wrapped only to write down the
`Feed` each call receives. The run folder must hold what the config said: the optimiser's learning rate in the
saved model, one history row per epoch, and the augmentation in the training feed (none in the others).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import nbformat
import pytest

from fer_utils.train.config import Augmentation, TrainConfig

pytestmark = pytest.mark.slow

CHANGES = {"learning_rate": 2.5e-3, "epochs": 3, "patience": 3, "augment": True, "augment_shift": 0.08}

KIT = """
import dataclasses
import json
from dataclasses import replace

from fer_utils.book.kit import fer

Feed = fer.Feed
"""

RECORD_FEEDS = """
_shown_make_dataset = fer.make_dataset


def make_dataset(frames, root, classes, feed=Feed()):
    \"\"\"The chapter's make_dataset, writing down the feed it was given.\"\"\"
    with open({feeds!r}, "a") as log:
        log.write(json.dumps({{"rows": len(frames), **dataclasses.asdict(feed)}}) + "\\n")
    return _shown_make_dataset(frames, root, classes, feed)
"""

TRAIN = """
data = fer.FaceData({crops!r}, pipeline=make_dataset)
config = replace(fer.TrainConfig.preset("reference", image_size=(16, 16), augment_zoom=0.0), **{changes!r})
run = fer.train(fer.build_paper_cnn, data, config, fit=fer.fit_model)
print("RUN", run)
"""


def test_learning_rate_epochs_and_augmentation_of_the_config_reach_chapter_4s_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import papermill
    from toy_data import make_toy_crops

    monkeypatch.setenv("FER_CACHE", str(tmp_path / "cache"))
    crops, feeds = tmp_path / "crops", tmp_path / "feeds.jsonl"
    make_toy_crops(crops, size=16, frames_per_clip=1)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(KIT),
        nbformat.v4.new_code_cell(RECORD_FEEDS.format(feeds=str(feeds))),
        nbformat.v4.new_code_cell(TRAIN.format(crops=str(crops), changes=CHANGES)),
    ]
    path = tmp_path / "chapter.ipynb"
    nbformat.write(notebook, path)
    done = papermill.execute_notebook(str(path), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False)
    text = "".join(o.get("text", "") for o in done.cells[-1].outputs)
    run = Path(text.split("RUN ", 1)[1].strip())

    config = TrainConfig.preset("reference", image_size=(16, 16), augment_zoom=0.0, **CHANGES)
    with zipfile.ZipFile(run / "model.keras") as archive:
        optimizer = json.loads(archive.read("config.json"))["compile_config"]["optimizer"]["config"]
    assert optimizer["learning_rate"] == pytest.approx(config.learning_rate)
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) - 1 == config.epochs == json.loads((run / "metrics.json").read_text())["epochs_run"]
    recorded = json.loads((run / "config.json").read_text())
    assert (recorded["learning_rate"], recorded["epochs"], recorded["augment_shift"]) == (2.5e-3, 3, 0.08)

    given = [json.loads(line) for line in feeds.read_text().splitlines()]
    training = [feed for feed in given if feed["shuffle"]]
    assert len(training) == 1 and len(given) >= 3, given  # training, validation, test
    assert Augmentation(**training[0]["augment"]) == config.augmentation() == Augmentation(0.0, 0.08, 0.0)
    assert training[0]["seed"] == config.seed and training[0]["batch_size"] == config.batch_size
    assert all(feed["augment"] is None for feed in given if not feed["shuffle"])
