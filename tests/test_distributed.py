"""`train --strategy`: TF_CONFIG's checks, the linear scaling rule, MirroredStrategy from the command line, and
MultiWorkerMirroredStrategy across two worker processes on 127.0.0.1 of which only the chief writes the run.

The crops are `toy_data`'s real-face crops, small (32 px, 2 frames per clip) to keep the runs short.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from toy_data import TOY_CLASSES, make_toy_crops

from fer_utils.cli import main
from fer_utils.deploy.inference import Recognizer
from fer_utils.errors import InputError
from fer_utils.train.config import TrainConfig
from fer_utils.train.distribute import (
    PEER_TIMEOUT_S,
    Cluster,
    lost_cluster,
    parse_tf_config,
    run_destination,
    scale_config,
)

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
    with pytest.raises(InputError, match="index 2 is outside"):
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
    from fer_utils.data.media import read_image
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


def start_worker(crops: Path, out: Path, ports: list[int], index: int, log: Path, *options: str) -> subprocess.Popen:
    """`python -m fer_utils train --strategy multiworker` as worker `index` of workers on 127.0.0.1 at `ports`,
    its output (unbuffered) in `log`."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    env["TF_CONFIG"] = tf_config(ports, index)
    command = [sys.executable, "-m", "fer_utils", *TRAIN, "--crops", str(crops), "--out", str(out)]
    with log.open("w") as fh:
        return subprocess.Popen([*command, "--strategy", "multiworker", *options], env=env, stdout=fh, stderr=fh)


def wait_for_line(log: Path, text: str, process: subprocess.Popen, timeout_s: float = 120) -> None:
    """Until `log` holds `text` (failing with the log when the process ends first or time runs out)."""
    deadline = time.monotonic() + timeout_s
    while text not in log.read_text() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert text in log.read_text(), log.read_text()[-3000:]


def ended(process: subprocess.Popen, timeout_s: float) -> int:
    """`process`'s exit code once it ends within `timeout_s` (killed, and the test failed, if it does not)."""
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)
        raise AssertionError(f"still running {timeout_s} s later") from None


def error_lines(text: str) -> list[str]:
    """The lines of `text` from the command itself (TensorFlow's C++ log lines left out)."""
    return [line for line in text.splitlines() if line.startswith("error: ")]


def test_a_worker_whose_peer_never_starts_says_how_long_it_waits_and_then_names_it(crops: Path, tmp_path: Path) -> None:
    """Worker 0 alone waited for worker 1 more than 5 minutes, and only kill -9 ended it; now it says how long it
    waits and for whom, and ends after --peer-timeout with one line naming the worker that did not answer."""
    ports, out, log = free_ports(2), tmp_path / "place" / "run", tmp_path / "worker0.log"
    started = time.monotonic()
    code = ended(start_worker(crops, out, ports, 0, log, "--peer-timeout", "2"), 120)
    text = log.read_text()
    assert code == 2, text
    assert f"worker 0: waiting up to 2 s for worker 1 at 127.0.0.1:{ports[1]}" in text
    assert error_lines(text) == [
        f"error: no answer within 2 s from worker 1 at 127.0.0.1:{ports[1]} (Connection refused): start every task "
        "of TF_CONFIG's cluster with the same command, each with its own task, check the addresses, or wait longer "
        "with --peer-timeout; nothing was written"
    ]
    assert "Traceback" not in text and time.monotonic() - started < 60
    assert not (tmp_path / "place").exists()


@pytest.mark.parametrize(
    ("stop", "code", "says"), [(signal.SIGINT, 130, "interrupted (Ctrl-C)"), (signal.SIGTERM, 143, "stopped (SIGTERM)")]
)
def test_ctrl_c_and_sigterm_stop_a_worker_waiting_for_its_peer_at_once(
    crops: Path, tmp_path: Path, stop: signal.Signals, code: int, says: str
) -> None:
    """Both were ignored while worker 0 waited for a worker 1 that never started; now it stops at once, 130 for
    Ctrl-C and 143 for SIGTERM, with one line and nothing written. The wait's default is said when it starts."""
    ports, out, log = free_ports(2), tmp_path / "place" / "run", tmp_path / "worker0.log"
    worker = start_worker(crops, out, ports, 0, log)
    try:
        wait_for_line(log, f"waiting up to {PEER_TIMEOUT_S:g} s for worker 1 at 127.0.0.1:{ports[1]}", worker)
        worker.send_signal(stop)
        assert ended(worker, 10) == code, log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=30)
    text = log.read_text()
    lines = error_lines(text)
    assert len(lines) == 1 and lines[0].startswith(f"error: {says}: what this command had finished is kept"), text
    assert "Traceback" not in text and not (tmp_path / "place").exists()


def test_a_second_worker_on_the_same_port_names_it_and_the_first_still_stops(crops: Path, tmp_path: Path) -> None:
    """The same TF_CONFIG started twice: the second ended in a traceback (UnknownError: Could not start gRPC
    server) and the first hung; now the second names the busy address in one line and the first, still waiting,
    stops on SIGTERM."""
    ports, out = free_ports(2), tmp_path / "place" / "run"
    first = start_worker(crops, out, ports, 0, tmp_path / "first.log", "--peer-timeout", "60")
    try:
        wait_for_line(tmp_path / "first.log", "waiting up to 60 s", first)
        second = start_worker(crops, out, ports, 0, tmp_path / "second.log", "--peer-timeout", "60")
        assert ended(second, 120) == 2
        text = (tmp_path / "second.log").read_text()
        assert len(error_lines(text)) == 1 and "Traceback" not in text, text
        assert error_lines(text)[0].startswith(
            f"error: worker 0's address 127.0.0.1:{ports[0]} is busy: port {ports[0]} cannot be listened on "
            "(Address already in use); another process holds it"
        ), text
        assert first.poll() is None, "the first worker still waits for its peer"
        first.send_signal(signal.SIGTERM)
        assert ended(first, 10) == 143
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=30)
    assert not (tmp_path / "place").exists()


@pytest.mark.parametrize("strategy", [["--strategy", "mirrored"], []], ids=["mirrored", "one-device"])
def test_a_cluster_tf_config_that_the_strategy_would_ignore_is_refused(
    crops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, strategy: list[str]
) -> None:
    """--strategy mirrored trained alone, and wrote a run, on the machine TF_CONFIG calls worker 1 of 2."""
    monkeypatch.setenv("TF_CONFIG", tf_config([1, 2], 1))
    out = tmp_path / "run"
    assert main([*TRAIN, "--crops", str(crops), "--out", str(out), *strategy]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: TF_CONFIG names this machine worker 1 of a cluster of 2 tasks, but ") and (
        "use --strategy multiworker" in error
    ), error
    assert not out.exists()


def test_a_peer_lost_mid_training_is_one_line_naming_this_task() -> None:
    import tensorflow as tf

    cluster = parse_tf_config(tf_config([1, 2], 1))
    lost = tf.errors.UnavailableError(
        None, None, "{{function_node __wrapped__CollectiveReduceV2}} Collective ops is aborted by: Socket closed\nmore"
    )
    error = lost_cluster(lost, cluster)
    assert isinstance(error, InputError) and "\n" not in str(error)
    assert str(error).startswith(
        "worker 1 lost the cluster while training (Collective ops is aborted by: Socket closed)"
    )
    assert lost_cluster(ValueError("a bug"), cluster) is None and lost_cluster(lost, None) is None


@pytest.mark.slow
def test_sigterm_to_the_chief_mid_training_stops_both_workers_with_one_line_each(crops: Path, tmp_path: Path) -> None:
    """The chief stopped by SIGTERM while training: it now exits 143 with one line (TensorFlow's preemption
    notifier swallowed SIGTERM while it waited); worker 1, which died of an UnavailableError traceback, ends with
    one line naming what it lost, exit 2. No run, whole or half, at --out."""
    ports, place = free_ports(2), tmp_path / "place"
    out = place / "run"
    workers = [start_worker(crops, out, ports, i, tmp_path / f"w{i}.log", "--epochs", "200") for i in (1, 0)]
    try:
        wait_for_line(tmp_path / "w0.log", "Epoch 2/", workers[1], 300)
        workers[1].send_signal(signal.SIGTERM)
        codes = [ended(worker, 120) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=30)
    logs = [(tmp_path / f"w{i}.log").read_text() for i in (1, 0)]
    assert codes == [2, 143], logs
    assert all("Traceback" not in log for log in logs), logs
    assert error_lines(logs[0])[0].startswith("error: worker 1 lost the cluster while training ("), logs[0]
    assert error_lines(logs[1])[0].startswith("error: stopped (SIGTERM)"), logs[1]
    assert not place.exists() or list(place.iterdir()) == []


def test_keeping_sigterm_needs_no_signal_mask_where_the_platform_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows has no `signal.pthread_sigmask` (issue 72): `--strategy multiworker` there raised AttributeError
    before TensorFlow started. Without it the block runs as is and SIGTERM's handler is left as it was."""
    from fer_utils.train.distribute import _sigterm_kept

    handler = signal.getsignal(signal.SIGTERM)
    monkeypatch.delattr(signal, "pthread_sigmask")
    ran = []
    with _sigterm_kept():
        ran.append(True)
    assert ran == [True] and signal.getsignal(signal.SIGTERM) is handler
