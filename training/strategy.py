"""Choosing a `tf.distribute.Strategy` and who writes the run directory.

`auto` picks, in order: `MultiWorkerMirroredStrategy` when `$TF_CONFIG` names a cluster of
more than one task, `MirroredStrategy` when TensorFlow sees more than one GPU, else the default
strategy. An explicit `mirrored` without GPUs mirrors over the logical CPU devices if there are
several (as the tests set up), else over the one CPU.
The batch size given to `fit` is the GLOBAL batch: each of the `n` replicas gets `batch / n`.

With several workers only the chief writes the run directory; the others write to a
temporary directory that is deleted afterwards, as TensorFlow's multi-worker Keras guide
prescribes (every worker must still run the saving code, since saving is collective).
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")


def _cluster_size_from_tf_config() -> int:
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except (ValueError, AttributeError) as e:
        raise ValueError(f"$TF_CONFIG is not valid JSON: {e}") from e
    return sum(len(v) for v in cluster.values())


def _mirrored() -> tf.distribute.Strategy:
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        return tf.distribute.MirroredStrategy()
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(cpus) > 1:
        return tf.distribute.MirroredStrategy(devices=cpus)
    return tf.distribute.MirroredStrategy()


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy for `--strategy name` (see the module docstring for `auto`)."""
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")
    if name == "auto":
        if _cluster_size_from_tf_config() > 1:
            return tf.distribute.MultiWorkerMirroredStrategy()
        if len(tf.config.list_logical_devices("GPU")) > 1:
            return tf.distribute.MirroredStrategy()
        return tf.distribute.get_strategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return _mirrored()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


_NAMES = {
    "CollectiveAllReduceStrategy": "MultiWorkerMirroredStrategy",
    "_DefaultDistributionStrategy": "default",
}


def strategy_name(strategy: tf.distribute.Strategy) -> str:
    """The user-facing name of a strategy: TensorFlow's public class, or "default".

    `MultiWorkerMirroredStrategy` objects are `CollectiveAllReduceStrategy` instances inside;
    the default (no distribution) strategy is a private class.
    """
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return _NAMES["CollectiveAllReduceStrategy"]
    cls = type(strategy).__name__
    return _NAMES.get(cls, cls)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True unless this process is a non-chief worker of a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None or task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief
