"""The artefact cache: what two chapters executed side by side ask for at once is made once."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from fer_utils.artifacts import build_atomically


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
