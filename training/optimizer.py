"""The optimizer and learning-rate schedule of a run, from its `TrainConfig`.

Schedules: `constant`, `step` (times `step_factor` every `step_epochs`), `cosine` (with a
linear warm-up over `warmup_epochs` from `learning_rate / 100`). Optimizers: SGD with
momentum, Adam, AdamW; weight decay leaves biases and normalization parameters alone.

Example:

>>> optimizer = build_optimizer(TrainConfig(optimizer="adam", epochs=15), steps_per_epoch=421)
"""

from __future__ import annotations

import tensorflow as tf

from training.config import TrainConfig

__all__ = ["build_optimizer", "build_schedule"]


def build_schedule(c: TrainConfig, steps_per_epoch: int):
    total = max(1, c.epochs * steps_per_epoch)
    if c.schedule == "constant":
        return c.learning_rate
    if c.schedule == "step":
        boundaries = list(
            range(c.step_epochs * steps_per_epoch, total, c.step_epochs * steps_per_epoch)
        )
        if not boundaries:
            return c.learning_rate
        values = [c.learning_rate * c.step_factor**i for i in range(len(boundaries) + 1)]
        return tf.keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    warmup = min(round(c.warmup_epochs * steps_per_epoch), total - 1)
    if warmup > 0:
        return tf.keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=c.learning_rate / 100,
            decay_steps=total - warmup,
            alpha=0.0,
            warmup_target=c.learning_rate,
            warmup_steps=warmup,
        )
    return tf.keras.optimizers.schedules.CosineDecay(c.learning_rate, decay_steps=total)


def build_optimizer(c: TrainConfig, steps_per_epoch: int) -> tf.keras.optimizers.Optimizer:
    lr = build_schedule(c, steps_per_epoch)
    wd = c.weight_decay or None
    ema = dict(use_ema=True, ema_momentum=c.ema_momentum) if c.ema_momentum else {}
    if c.optimizer == "sgd":
        opt = tf.keras.optimizers.SGD(
            lr, momentum=c.momentum, nesterov=False, weight_decay=wd, **ema
        )
    elif c.optimizer == "adam":
        opt = tf.keras.optimizers.Adam(lr, weight_decay=wd, **ema)
    else:
        opt = tf.keras.optimizers.AdamW(lr, weight_decay=c.weight_decay, **ema)
    if wd:
        # Decay the kernels only: biases and normalization scales/shifts stay free.
        opt.exclude_from_weight_decay(var_names=["bias", "gamma", "beta", "scale", "offset"])
    return opt
