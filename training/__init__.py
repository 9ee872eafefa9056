"""Training: data sources, the tf.data augmentation pipeline and the Keras `fit` loop.

`python -m training` is the command line; `training.train(...)` is the same thing for notebooks:

>>> from training import train
>>> result = train(model="lenet5", dataset="fashion_mnist", epochs=2)
>>> result.run_dir, result.metrics["test_accuracy"]

`training.data` (the data sources) is importable on its own without building any model.
"""

from __future__ import annotations

from training.data import ImageDataset, load_dataset, read_idx, train_val_split

__all__ = ["ImageDataset", "TrainResult", "load_dataset", "read_idx", "train", "train_val_split"]


def __getattr__(name: str):
    # The fit loop pulls in the zoo and matplotlib: import it only when asked for.
    if name in ("train", "TrainResult"):
        import layers  # noqa: F401  (first: imports TensorFlow without its native start-up logs)
        from training import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'training' has no attribute {name!r}")
