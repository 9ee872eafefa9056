"""A workaround for Keras 3.15 under `MultiWorkerMirroredStrategy` (keras-team/keras#20585).

Keras 3.15's `fit`/`evaluate`/`predict` first build the model from a distributed batch
averaged with `strategy.reduce`, which across several workers fails on the (x, y) tuple
("Attempt to convert a value (PerReplica...)"), and average the per-step scalar logs with
`strategy.reduce("MEAN", v, axis=0)`, which fails on scalars. `build_before_multiworker_fit`
builds the model from one local batch instead and reduces scalars with no axis.
`tests/training/test_multiworker.py` runs two workers with it (a run completes) and without
it (plain Keras still fails: when that test fails, upstream has fixed the bug and this module
can go).
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["build_before_multiworker_fit"]


def build_before_multiworker_fit(model, dataset, strategy) -> None:
    """Builds the compiled model from one local batch and skips Keras's own symbolic build.

    Keras 3.15's `fit`/`evaluate`/`predict` first build the model from a distributed batch
    averaged with `strategy.reduce`, which across several workers fails on the (x, y) tuple
    ("Attempt to convert a value (PerReplica...)", keras-team/keras#20585). The build needs
    shapes only: one batch of the unshuffled validation set gives them.
    """
    batch = next(iter(dataset))
    with strategy.scope():
        model._symbolic_build(data_batch=batch)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    # The same release averages the per-step scalar logs (loss, accuracy) across workers with
    # `strategy.reduce("MEAN", v, axis=0)`, which fails on scalars: reduce those with no axis.
    from keras.src.backend.tensorflow import trainer as keras_tf_trainer

    original = keras_tf_trainer.reduce_per_replica
    if getattr(original, "convzoo_multiworker", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        def scalar_mean(v):
            local = strategy.experimental_local_results(v)
            if reduction in ("auto", "mean") and local and local[0].shape.rank == 0:
                return strategy.reduce("MEAN", v, axis=None)
            return original(v, strategy, reduction)

        if not keras_tf_trainer._collective_all_reduce_multi_worker(strategy):
            return original(values, strategy, reduction)
        return tf.nest.map_structure(scalar_mean, values)

    reduce_per_replica.convzoo_multiworker = True
    keras_tf_trainer.reduce_per_replica = reduce_per_replica
