"""`train --strategy`: TF_CONFIG's checks, the linear scaling rule, MirroredStrategy from the command line, and
MultiWorkerMirroredStrategy across two worker processes on 127.0.0.1 of which only the chief writes the run.

The crops are `toy_data`'s real-face crops, small (32 px, 2 frames per clip) to keep the runs short.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from contextlib import ExitStack
from pathlib import Path

import pytest
from toy_data import TOY_CLASSES, make_toy_crops

from fer_utils.cli import main
from fer_utils.deploy.inference import Recognizer
from fer_utils.errors import TrainingError
from fer_utils.train.config import TrainConfig
from fer_utils.train.distribute import Cluster, parse_tf_config, run_destination, scale_config

REPO = Path(__file__).resolve().parents[1]
TESTS_DIR = Path(__file__).resolve().parent
TRAIN = ["train", "--epochs", "2", "--batch-size", "8", "--seed", "0"]


@pytest.fixture(scope="module")
def crops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A crops folder of 144 real-face 32×32 crops in 3 classes (toy_data)."""
    out = tmp_path_factory.mktemp("distributed") / "crops"
    make_toy_crops(out, size=32, frames_per_clip=2)
    return out


def tf_config(ports: list[int], index: int, cluster: dict | None = None) -> str:
    """TF_CONFIG for worker `index` of workers listening on 127.0.0.1 at `ports`."""
    workers = [f"127.0.0.1:{port}" for port in ports]
    return json.dumps({"cluster": cluster or {"worker": workers}, "task": {"type": "worker", "index": index}})


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports free on 127.0.0.1 now (the system picks them; all held until all are known)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def test_tf_config_names_this_task_and_its_chief() -> None:
    two = {"worker": ["a:1", "b:1"]}
    assert parse_tf_config(json.dumps({"cluster": two, "task": {"type": "worker", "index": 0}})) == Cluster(
        "worker", 0, 2
    )
    assert parse_tf_config(json.dumps({"cluster": two, "task": {"type": "worker", "index": 0}})).chief
    assert not parse_tf_config(json.dumps({"cluster": two, "task": {"type": "worker", "index": 1}})).chief
    with_chief = {"chief": ["c:1"], "worker": ["a:1", "b:1"]}
    worker0 = parse_tf_config(json.dumps({"cluster": with_chief, "task": {"type": "worker", "index": 0}}))
    assert not worker0.chief and worker0.workers == 3
    assert parse_tf_config(json.dumps({"cluster": with_chief, "task": {"type": "chief", "index": 0}})).chief


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (None, "it is not set"),
        ("{cluster: 1", "it is not JSON"),
        ('{"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}}', 'no "task"'),
        ('{"task": {"type": "worker", "index": 0}}', 'no "cluster"'),
        ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 1}}', "index 1 is outside"),
        ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "chief", "index": 0}}', "not a task of"),
        (
            '{"cluster": {"worker": ["127.0.0.1:1"], "ps": ["127.0.0.1:2"]}, "task": {"type": "worker", "index": 0}}',
            "ps",
        ),
        ('{"cluster": {"worker": "127.0.0.1:1"}, "task": {"type": "worker", "index": 0}}', "host:port"),
    ],
)
def test_multiworker_without_a_valid_tf_config_fails_before_anything_is_written(
    crops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, value, says
) -> None:
    if value is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", value)
    before = sorted(p.relative_to(crops) for p in crops.rglob("*"))
    out = tmp_path / "run"
    assert main([*TRAIN, "--crops", str(crops), "--out", str(out), "--strategy", "multiworker"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: --strategy multiworker needs TF_CONFIG") and says in error, error
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert sorted(p.relative_to(crops) for p in crops.rglob("*")) == before


def test_linear_scaling_multiplies_the_batch_and_the_learning_rate_by_the_replicas() -> None:
    scaled = scale_config(TrainConfig(batch_size=8, learning_rate=1e-3), 4)
    assert (scaled.batch_size, scaled.learning_rate) == (32, 4e-3)


def test_only_the_chief_writes_where_it_was_told(tmp_path: Path) -> None:
    with run_destination(tmp_path / "run", Cluster("worker", 0, 2)) as out:
        assert out == tmp_path / "run"
    with run_destination(tmp_path / "run", Cluster("worker", 1, 2)) as out:
        assert out.name == "run" and tmp_path not in out.parents
        out.mkdir()
        (out / "model.keras").write_text("a worker's copy")
    assert not out.parent.exists()  # removed with what the worker wrote
    with pytest.raises(TrainingError, match="index 2 is outside"):
        parse_tf_config(tf_config([1, 2], 2))


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from fer_utils.cli import main
    raise SystemExit(main(sys.argv[1:]))
    """
)


@pytest.mark.slow
def test_mirrored_from_the_command_line_scales_and_records_the_replicas(crops: Path, tmp_path: Path) -> None:
    """As test_training's MirroredStrategy test: two logical CPU devices, so two replicas."""
    from fer_utils.train.runs import RunFolder

    out = tmp_path / "mirrored"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-c", MIRRORED_SCRIPT, *TRAIN, "--crops", str(crops), "--out", str(out)]
    done = subprocess.run([*command, "--strategy", "mirrored"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    config = RunFolder(out).config()
    assert config["strategy"] == "MirroredStrategy" and config["replicas"] == 2
    assert (config["batch_size"], config["learning_rate"]) == (16, 2e-3)
    assert config["distribution"] == {
        "strategy": "mirrored",
        "tf_strategy": "MirroredStrategy",
        "replicas": 2,
        "workers": 1,
        "per_replica_batch_size": 8,
        "global_batch_size": 16,
        "base_learning_rate": 1e-3,
        "learning_rate": 2e-3,
        "scaling": "linear: global batch = per-replica batch × replicas, learning rate × replicas",
        "deterministic": True,
    }
    assert RunFolder(out).is_complete()


@pytest.mark.slow
def test_multiworker_on_two_local_processes_writes_one_run_that_loads_and_predicts(crops: Path, tmp_path: Path) -> None:
    """Two `python -m fer_utils train --strategy multiworker` processes, worker 0 (the chief) and worker 1, on free
    ports of 127.0.0.1: they train together, the chief writes --out, worker 1 writes nothing there and leaves
    nothing in its temporary folder; the run loads and its recognizer predicts a face."""
    from fer_utils.assets import still_paths
    from fer_utils.data.video import read_image
    from fer_utils.train.runs import RunFolder

    out, place = tmp_path / "place" / "run", tmp_path / "place"
    place.mkdir()
    ports = free_ports(2)
    workers = []
    try:
        for index in (1, 0):
            temp = tmp_path / f"tmp{index}"  # the worker's temporary folders (TMPDIR): empty at the end
            temp.mkdir()
            env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", "TMPDIR": str(temp)}
            env["TF_CONFIG"] = tf_config(ports, index)
            log = (tmp_path / f"worker{index}.log").open("w")
            command = [sys.executable, "-m", "fer_utils", *TRAIN, "--crops", str(crops), "--out", str(out)]
            workers.append(
                (index, log, subprocess.Popen([*command, "--strategy", "multiworker"], env=env, stdout=log, stderr=log))
            )
        codes = {index: process.wait(timeout=300) for index, _, process in workers}
    finally:
        for _, log, process in workers:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
            log.close()
    logs = {index: (tmp_path / f"worker{index}.log").read_text() for index in (0, 1)}
    assert codes == {0: 0, 1: 0}, logs
    assert "run written to" in logs[0] and "worker 1 trained in step with the chief" in logs[1], logs
    assert [p.name for p in place.iterdir()] == ["run"]  # one whole run, nothing half-written beside it
    assert list((tmp_path / "tmp1").iterdir()) == [] and list((tmp_path / "tmp0").iterdir()) == []

    run = RunFolder(out)
    assert run.is_complete() and run.classes() == list(TOY_CLASSES)
    config = run.config()
    assert config["strategy"] == "KerasMultiWorkerMirroredStrategy" and config["replicas"] == 2
    assert config["distribution"]["workers"] == 2 and config["distribution"]["global_batch_size"] == 16
    assert (config["batch_size"], config["learning_rate"], config["deterministic"]) == (16, 2e-3, True)
    assert run.metrics()["epochs_run"] == 2 and len(run.history()) == 2
    result = Recognizer.of_run(run).frame(read_image(still_paths()[0]))
    assert len(result.faces) == 1
    probabilities = result.faces[0].probabilities
    assert set(probabilities) == set(TOY_CLASSES) and abs(sum(probabilities.values()) - 1) < 1e-4
