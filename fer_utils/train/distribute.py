"""Training beyond one device for `train --strategy`: the strategy each name makes, the cluster `TF_CONFIG`
describes, the linear scaling rule and where each worker writes its run.

- `mirrored`: `tf.distribute.MirroredStrategy` over this machine's GPUs (Colab's, a workstation's), or over
  its logical CPU devices when it has none (one unless configured otherwise: one replica).
- `multiworker`: `tf.distribute.MultiWorkerMirroredStrategy` across machines, each started with the same
  command and its own `TF_CONFIG` (`parse_tf_config`). Every worker trains the same model in lockstep; the
  chief (the `chief` task, else worker 0) writes the run folder, every other worker writes its copy into a
  temporary folder that is removed (`run_destination`).

**Linear scaling rule** (`scale_config`): the command line's batch size is per replica; the global batch is
that × the replicas and the learning rate is multiplied by the replicas too (Goyal et al., 2017), so that one
epoch takes as many optimiser steps per example as the single-device run. config.json records both
(`distribution_record`).

**Keras 3 and MultiWorkerMirroredStrategy.** Keras 3.12's `fit` hands the strategy's `reduce` a nest (the
first batch, to build the model) and scalar metrics with `axis=0`, which TensorFlow's multi-worker strategy
refuses (tensorflow/tensorflow#72388); `KerasMultiWorkerMirroredStrategy` reduces each tensor of a nest and
reduces scalars across replicas only. Op determinism (`TrainConfig.deterministic`) works with its collective
ops on CPU (TensorFlow 2.20): the training keeps it on, as config.json records.

The strategy must be made before TensorFlow runs any op (`make_strategy` is the first thing `train` does
after its checks); this module imports TensorFlow only inside `make_strategy`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fer_utils.errors import TrainingError
from fer_utils.train.config import TrainConfig

STRATEGY_NAMES = ("mirrored", "multiworker")
TF_CONFIG = "TF_CONFIG"
# The task types MultiWorkerMirroredStrategy trains with (no parameter servers, no evaluator).
WORKER_TYPES = ("chief", "worker")
SCALING_RULE = "linear: global batch = per-replica batch × replicas, learning rate × replicas"
TF_CONFIG_EXAMPLE = '{"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": 0}}'


@dataclass(frozen=True)
class Cluster:
    """This process's place in a multi-worker cluster, as TF_CONFIG says: its task and the workers."""

    task_type: str
    index: int
    workers: int  # every task that trains: the chief, if any, and the workers
    has_chief: bool = False  # the cluster names a chief task (else worker 0 is the chief)

    @property
    def chief(self) -> bool:
        """Whether this task writes the run: the `chief` task, or worker 0 when the cluster has no chief."""
        return self.task_type == "chief" or (self.index == 0 and not self.has_chief)


def parse_tf_config(text: str | None) -> Cluster:
    """The cluster in `TF_CONFIG`'s JSON `text`; TrainingError naming what is wrong (unset, not JSON, no
    cluster of chief/worker addresses, no task, a task not in the cluster), so that a bad one fails before
    anything is written or any worker waits for another."""
    where = f"--strategy multiworker needs {TF_CONFIG}, JSON such as {TF_CONFIG_EXAMPLE} (the same cluster on "
    where += "every machine, each its own task)"
    if not text or not text.strip():
        raise TrainingError(f"{where}; it is not set")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TrainingError(f"{where}; it is not JSON ({exc})") from None
    cluster = value.get("cluster") if isinstance(value, dict) else None
    task = value.get("task") if isinstance(value, dict) else None
    if not isinstance(cluster, dict) or not cluster:
        raise TrainingError(f'{where}; it has no "cluster" of addresses')
    others = sorted(set(cluster) - set(WORKER_TYPES))
    if others:
        raise TrainingError(f"{where}; its cluster has {', '.join(others)}: only chief and worker tasks train")
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses or not all(isinstance(a, str) for a in addresses):
            raise TrainingError(f"{where}; its cluster's {job!r} is not a list of host:port addresses")
    if len(cluster.get("chief", [])) > 1:
        raise TrainingError(f"{where}; its cluster has {len(cluster['chief'])} chiefs, at most one")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise TrainingError(f'{where}; it has no "task" with a "type" and an "index" (which machine this is)')
    kind, index = task["type"], task["index"]
    if kind not in cluster or not isinstance(index, int) or isinstance(index, bool):
        raise TrainingError(f"{where}; its task {task} is not a task of its cluster ({', '.join(cluster)})")
    if not 0 <= index < len(cluster[kind]):
        raise TrainingError(f"{where}; its task index {index} is outside its {len(cluster[kind])} {kind} address(es)")
    workers = sum(len(addresses) for addresses in cluster.values())
    return Cluster(task_type=kind, index=index, workers=workers, has_chief="chief" in cluster)


def cluster_for(name: str | None, environ: Mapping[str, str] = os.environ) -> Cluster | None:
    """The cluster of `--strategy name`: TF_CONFIG's for multiworker (checked: `parse_tf_config`), None else."""
    return parse_tf_config(environ.get(TF_CONFIG)) if name == "multiworker" else None


def make_strategy(name: str) -> Any:
    """The `tf.distribute.Strategy` of `--strategy name` (STRATEGY_NAMES). Call it before TensorFlow runs any
    op: the multi-worker strategy starts this task's server from TF_CONFIG."""
    import tensorflow as tf

    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    if name == "multiworker":
        return _keras_multiworker_class(tf)()
    raise TrainingError(f"no strategy {name!r}; choose one of {', '.join(STRATEGY_NAMES)}")


def _keras_multiworker_class(tf: Any) -> type:
    """MultiWorkerMirroredStrategy with a `reduce` that takes what Keras 3's `fit` gives it (module docstring)."""

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


def scale_config(config: TrainConfig, replicas: int) -> TrainConfig:
    """`config` (its batch size per replica) under the linear scaling rule: the global batch and the learning
    rate both × `replicas`."""
    return replace(config, batch_size=config.batch_size * replicas, learning_rate=config.learning_rate * replicas)


def distribution_record(name: str, strategy: Any, config: TrainConfig, cluster: Cluster | None) -> dict[str, object]:
    """What config.json records of a distributed run: the strategy, its replicas and workers, the batch per
    replica and global, the learning rate given and the one scaled (`config`: before `scale_config`)."""
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
    """Where this process writes its run: `out`, unless it is a multi-worker task other than the chief, which
    writes into a temporary folder removed when the block ends (it trains in step with the chief, but only
    the chief's run is kept, and nothing of another's lands where the user looks)."""
    if cluster is None or cluster.chief:
        yield Path(out)
        return
    with tempfile.TemporaryDirectory(prefix=f"fer-{cluster.task_type}{cluster.index}-") as tmp:
        yield Path(tmp) / Path(out).name
