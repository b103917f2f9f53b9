"""Training beyond one device for `train --strategy`: the strategy each name makes (`mirrored`: this machine's GPUs,
else its CPU; `multiworker`: machines each with its own `TF_CONFIG`), the cluster it describes, the linear scaling
rule (Goyal et al., 2017) and where each worker writes its run. TensorFlow waits for the cluster in C++ that Ctrl-C
never reaches, so `wait_for_peers` waits first, in Python, up to `--peer-timeout`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fer_utils.errors import InputError
from fer_utils.train.config import TrainConfig

STRATEGY_NAMES = ("mirrored", "multiworker")
TF_CONFIG = "TF_CONFIG"
WORKER_TYPES = ("chief", "worker")  # the task types that train (no parameter servers, no evaluator)
SCALING_RULE = "linear: global batch = per-replica batch × replicas, learning rate × replicas"
TF_CONFIG_EXAMPLE = '{"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": 0}}'
PEER_TIMEOUT_S = 120.0  # how long a multi-worker task waits for the others to answer (train --peer-timeout)
KNOCK_EVERY_S = 0.25  # between two rounds of knocking on the peers' ports


@dataclass(frozen=True)
class Cluster:
    """This process's place in a multi-worker cluster, as TF_CONFIG says: its task and the workers."""

    task_type: str
    index: int
    workers: int  # every task that trains: the chief, if any, and the workers
    has_chief: bool = False  # the cluster names a chief task (else worker 0 is the chief)
    addresses: tuple[tuple[str, str], ...] = field(default=(), compare=False)  # every task's (name, host:port)

    @property
    def chief(self) -> bool:
        """Whether this task writes the run: the `chief` task, or worker 0 when the cluster has no chief."""
        return self.task_type == "chief" or (self.index == 0 and not self.has_chief)

    @property
    def name(self) -> str:
        """This task as TF_CONFIG names it, e.g. "worker 1"."""
        return f"{self.task_type} {self.index}"

    @property
    def address(self) -> str:
        """This task's host:port."""
        return dict(self.addresses)[self.name]

    @property
    def peers(self) -> dict[str, str]:
        """Every other task's name → its host:port."""
        return {name: address for name, address in self.addresses if name != self.name}


def parse_tf_config(text: str | None) -> Cluster:
    """The cluster in TF_CONFIG's JSON `text`; InputError naming what is wrong, before any worker waits for another."""
    where = f"--strategy multiworker needs {TF_CONFIG}, JSON such as {TF_CONFIG_EXAMPLE} (the same cluster on "
    where += "every machine, each its own task)"
    if not text or not text.strip():
        raise InputError(f"{where}; it is not set")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}; it is not JSON ({exc})") from None
    cluster = value.get("cluster") if isinstance(value, dict) else None
    task = value.get("task") if isinstance(value, dict) else None
    if not isinstance(cluster, dict) or not cluster:
        raise InputError(f'{where}; it has no "cluster" of addresses')
    others = sorted(set(cluster) - set(WORKER_TYPES))
    if others:
        raise InputError(f"{where}; its cluster has {', '.join(others)}: only chief and worker tasks train")
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses or not all(isinstance(a, str) for a in addresses):
            raise InputError(f"{where}; its cluster's {job!r} is not a list of host:port addresses")
        for address in addresses:
            split_address(address, f"{where}; its cluster's {job!r} address")
    if len(cluster.get("chief", [])) > 1:
        raise InputError(f"{where}; its cluster has {len(cluster['chief'])} chiefs, at most one")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise InputError(f'{where}; it has no "task" with a "type" and an "index" (which machine this is)')
    kind, index = task["type"], task["index"]
    if kind not in cluster or not isinstance(index, int) or isinstance(index, bool):
        raise InputError(f"{where}; its task {task} is not a task of its cluster ({', '.join(cluster)})")
    if not 0 <= index < len(cluster[kind]):
        raise InputError(f"{where}; its task index {index} is outside its {len(cluster[kind])} {kind} address(es)")
    workers = sum(len(addresses) for addresses in cluster.values())
    named = tuple((f"{job} {i}", address) for job in WORKER_TYPES for i, address in enumerate(cluster.get(job, [])))
    return Cluster(task_type=kind, index=index, workers=workers, has_chief="chief" in cluster, addresses=named)


def split_address(address: str, what: str = "the address") -> tuple[str, int]:
    """(host, port) of a TF_CONFIG address "host:port" ("[::1]:port" for IPv6); InputError naming `what`."""
    match = re.fullmatch(r"\[?(?P<host>[^\s\[\]]+?)\]?:(?P<port>\d{1,5})", address)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise InputError(f"{what} {address!r} is not host:port (a port from 1 to 65535)")
    return match["host"], int(match["port"])


def wait_for_peers(cluster: Cluster, timeout_s: float = PEER_TIMEOUT_S, say: Callable[[str], None] = print) -> None:
    """Hold this task's port until every other task accepts a TCP connection (up to `timeout_s` seconds), then free it
    for TensorFlow's server; InputError naming a busy port or the silent tasks. Ctrl-C stops the wait at once."""
    with _held_port(cluster):
        waiting = dict(cluster.peers)
        listed = ", ".join(f"{name} at {address}" for name, address in waiting.items())
        say(f"{cluster.name}: waiting up to {timeout_s:g} s for {listed} (train --peer-timeout)")
        deadline = time.monotonic() + timeout_s
        while waiting:
            why = {
                name: _knock(address, max(min(1.0, deadline - time.monotonic()), 0.05))
                for name, address in waiting.items()
            }
            waiting = {name: address for name, address in waiting.items() if why[name] is not None}
            if waiting and time.monotonic() >= deadline:
                missing = ", ".join(f"{name} at {address} ({why[name]})" for name, address in waiting.items())
                raise InputError(
                    f"no answer within {timeout_s:g} s from {missing}: start every task of {TF_CONFIG}'s cluster with "
                    "the same command, each with its own task, check the addresses, or wait longer with "
                    "--peer-timeout; nothing was written"
                )
            if waiting:
                time.sleep(KNOCK_EVERY_S)


@contextmanager
def _held_port(cluster: Cluster) -> Iterator[None]:
    """Listen on this task's port on every interface, as TensorFlow's server will, while the block runs: peers
    see this task up, and a port another process holds is an InputError now instead of a gRPC traceback."""
    _, port = split_address(cluster.address)
    try:
        listener = socket.create_server(("", port), backlog=64)
    except OSError as exc:
        raise InputError(
            f"{cluster.name}'s address {cluster.address} is busy: port {port} cannot be listened on "
            f"({os.strerror(exc.errno) if exc.errno else exc}); another process holds it (is this task already running? every machine needs its own task in "
            f"{TF_CONFIG}): stop that process or give this task a free port"
        ) from None
    with listener:
        yield


def _knock(address: str, timeout_s: float) -> str | None:
    """None when `address` accepts a TCP connection within `timeout_s`, else why not (e.g. "Connection refused")."""
    host, port = split_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__


def cluster_for(name: str | None, environ: Mapping[str, str] = os.environ) -> Cluster | None:
    """The cluster of `--strategy name`: TF_CONFIG's for multiworker, None else; InputError when TF_CONFIG names
    several tasks that `name` would ignore (this machine would train alone while the others wait for it)."""
    text = environ.get(TF_CONFIG)
    if name == "multiworker":
        return parse_tf_config(text)
    try:
        cluster = parse_tf_config(text) if text and text.strip() else None
    except InputError:
        return None  # not a cluster this run could join: nothing to ignore
    if cluster is not None and cluster.workers > 1:
        given = f"--strategy {name}" if name else "train without --strategy"
        raise InputError(
            f"{TF_CONFIG} names this machine {cluster.name} of a cluster of {cluster.workers} tasks, but {given} "
            f"trains on this machine alone and ignores it: use --strategy multiworker to train with the cluster, "
            f"or unset {TF_CONFIG}"
        )
    return None


def make_strategy(name: str) -> Any:
    """The `tf.distribute.Strategy` of `--strategy name`, made before TensorFlow runs any op (multiworker's server)."""
    if name == "multiworker":
        with _sigterm_kept():
            import tensorflow as tf

            return _keras_multiworker_class(tf)()
    import tensorflow as tf

    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    raise InputError(f"no strategy {name!r}; choose one of {', '.join(STRATEGY_NAMES)}")


@contextmanager
def _sigterm_kept() -> Iterator[None]:
    """SIGTERM blocked while the block starts TensorFlow's multi-worker runtime (import it inside), which takes it over
    and only logs it; then Python's handler put back and SIGTERM unblocked, so one sent meanwhile reaches Python.
    Windows has no signal masks (nor a SIGTERM to catch: it ends a process outright): nothing to keep there."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    handler = signal.getsignal(signal.SIGTERM)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _keras_multiworker_class(tf: Any) -> type:
    """MultiWorkerMirroredStrategy with a `reduce` that takes what Keras 3.12's `fit` gives it (see the class)."""

    class KerasMultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        """TensorFlow's MultiWorkerMirroredStrategy; `reduce` maps over a nest and reduces a scalar across
        replicas only (Keras 3 asks for axis 0, which a scalar lacks: tensorflow/tensorflow#72388)."""

        def reduce(self, reduce_op: Any, value: Any, axis: int | None) -> Any:
            def one(tensor: Any) -> Any:
                rank = self.experimental_local_results(tensor)[0].shape.rank
                return super(KerasMultiWorkerMirroredStrategy, self).reduce(
                    reduce_op, tensor, None if rank == 0 else axis
                )

            return tf.nest.map_structure(one, value)

    return KerasMultiWorkerMirroredStrategy


def lost_cluster(exc: BaseException, cluster: Cluster | None) -> InputError | None:
    """The InputError to end with when `exc` says a task of `cluster` went away mid-training; None otherwise."""
    if cluster is None:
        return None
    from tensorflow import errors

    lost = (errors.UnavailableError, errors.AbortedError, errors.CancelledError, errors.DeadlineExceededError)
    if not isinstance(exc, lost):
        return None
    lines = re.sub(r"\{\{[^}]*\}\}\s*", "", str(getattr(exc, "message", exc))).strip().splitlines()
    return InputError(
        f"{cluster.name} lost the cluster while training ({lines[0] if lines else type(exc).__name__}): another "
        "task stopped or cannot be reached; this task's run was not written. Start every task again"
    )


def scale_config(config: TrainConfig, replicas: int) -> TrainConfig:
    """`config` (its batch per replica) under the linear scaling rule: global batch and learning rate × `replicas`."""
    return replace(config, batch_size=config.batch_size * replicas, learning_rate=config.learning_rate * replicas)


def distribution_record(name: str, strategy: Any, config: TrainConfig, cluster: Cluster | None) -> dict[str, object]:
    """What config.json records of a distributed run (`config`: before `scale_config`)."""
    replicas = int(strategy.num_replicas_in_sync)
    scaled = scale_config(config, replicas)
    return {
        "strategy": name,
        "tf_strategy": type(strategy).__name__,
        "replicas": replicas,
        "workers": cluster.workers if cluster else 1,
        "per_replica_batch_size": config.batch_size,
        "global_batch_size": scaled.batch_size,
        "base_learning_rate": config.learning_rate,
        "learning_rate": scaled.learning_rate,
        "scaling": SCALING_RULE,
        "deterministic": config.deterministic,
    }


@contextmanager
def run_destination(out: Path, cluster: Cluster | None) -> Iterator[Path]:
    """Where this process writes its run: `out`, or a temporary folder for a task other than the chief's."""
    if cluster is None or cluster.chief:
        yield Path(out)
        return
    with tempfile.TemporaryDirectory(prefix=f"fer-{cluster.task_type}{cluster.index}-") as tmp:
        yield Path(tmp) / Path(out).name
