"""TensorBoard scalar logs written with TensorFlow's core summary ops.

`tf.keras.callbacks.TensorBoard` needs the `tensorboard` package for `tf.summary.scalar`;
TensorFlow itself only ships the low-level `tf.summary.write`. This callback writes the same
event files (`tensorboard/train`, `tensorboard/validation`, tags `epoch_loss`,
`epoch_accuracy`, `epoch_learning_rate`) with the "scalars" plugin metadata, so
`tensorboard --logdir runs/<name>/tensorboard` shows the usual curves, without the package
being a dependency of training.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import tensorflow as tf
from tensorflow.core.framework import summary_pb2


def _scalar_metadata() -> summary_pb2.SummaryMetadata:
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
    )


class ScalarLogger(tf.keras.callbacks.Callback):
    """Logs every epoch's scalar metrics (and the learning rate) as TensorBoard scalars.

    Args:
        log_dir: the directory TensorBoard is pointed at; `train/` and `validation/` are
            created below it.
    """

    def __init__(self, log_dir: str | Path):
        super().__init__()
        self.log_dir = Path(log_dir)
        self._writers: dict[str, tf.summary.SummaryWriter] = {}

    def _writer(self, split: str) -> tf.summary.SummaryWriter:
        if split not in self._writers:
            self._writers[split] = tf.summary.create_file_writer(str(self.log_dir / split))
        return self._writers[split]

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        with contextlib.suppress(AttributeError, TypeError, ValueError):
            logs["learning_rate"] = float(
                tf.keras.backend.get_value(self.model.optimizer.learning_rate)
            )
        metadata = _scalar_metadata()
        for key, value in logs.items():
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            split, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            with self._writer(split).as_default():
                tf.summary.write(
                    f"epoch_{name}",
                    tf.constant(value, tf.float32),
                    step=epoch,
                    metadata=metadata,
                )
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
