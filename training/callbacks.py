"""The callbacks every run uses: the run recorder and an exponential-moving-average swap.

`RunRecorder` writes `history.csv` and the best `model.keras` after every epoch, atomically;
`SwapEMAWeights` puts the weights' moving averages in the model between epochs.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from training import artifacts
from zoo.reparam import fuse_into, has_reparam_layers

__all__ = ["EpochTimeForecast", "RunRecorder", "SwapEMAWeights", "monitored_metric"]


def monitored_metric(task: str) -> tuple[str, str]:
    """The validation figure that picks a run's best epoch for `task`, and whether the best
    is its `max` or `min`: `("val_accuracy", "max")` for a classifier, else `("val_loss", "min")`.
    """
    return ("val_accuracy", "max") if task == "classification" else ("val_loss", "min")


class RunRecorder(tf.keras.callbacks.Callback):
    """Writes `history.csv` (with the learning rate) and the best `model.keras` after every
    epoch, atomically, and measures training throughput.

    On a resumed run the rows already in `history.csv` before the resumed epoch are kept and
    the best value so far is taken from them, so a resumption never replaces a better model.
    """

    def __init__(
        self,
        run_dir: Path,
        monitor: str,
        mode: str,
        images_per_epoch: int,
        write: bool = True,
        export_model: tf.keras.Model | None = None,
    ):
        super().__init__()
        self.run_dir = run_dir
        self.monitor = monitor
        self.mode = mode
        self.images_per_epoch = images_per_epoch
        self.write = write
        # Under mixed precision, or for a re-parameterized model (folded by `fuse_into`), the
        # best weights are saved in a plain float32 twin, so model.keras is a plain float32
        # model for export whatever policy and form trained it.
        self.export_model = export_model
        self.rows: list[dict[str, float]] = artifacts.read_history(run_dir / "history.csv")
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_weights: list[np.ndarray] | None = None
        self.diverged_epoch: int | None = None
        self.epoch_times: list[float] = []
        self.epochs_run = 0
        self._t0 = 0.0
        self._train_end = 0.0

    def _better(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def _restore_best_from_rows(self, epoch: int) -> None:
        self.rows = [r for r in self.rows if r["epoch"] < epoch]
        for r in self.rows:
            if self.monitor in r and self._better(r[self.monitor]):
                self.best, self.best_epoch = r[self.monitor], int(r["epoch"])

    def on_epoch_begin(self, epoch, logs=None):
        if self.epochs_run == 0:
            self._restore_best_from_rows(epoch)
        self._t0 = time.perf_counter()
        self._train_end = 0.0

    def on_test_begin(self, logs=None):
        # Keras runs validation inside the epoch: stop the training clock here.
        if self._t0 and not self._train_end:
            self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        end = self._train_end or time.perf_counter()
        self.epoch_times.append(end - self._t0)
        self.epochs_run += 1
        row = {"epoch": epoch}
        row.update({k: float(v) for k, v in logs.items() if np.ndim(v) == 0})
        with contextlib.suppress(AttributeError, TypeError, ValueError):
            row["learning_rate"] = float(
                tf.keras.backend.get_value(self.model.optimizer.learning_rate)
            )
        row["epoch_seconds"] = self.epoch_times[-1]
        self.rows = [r for r in self.rows if r["epoch"] < epoch] + [row]
        if not math.isfinite(row.get("loss", 0.0)):
            self.diverged_epoch = epoch
            self.model.stop_training = True
        elif self._better(row.get(self.monitor, float("nan"))):
            self.best, self.best_epoch = row[self.monitor], epoch
            self.best_weights = [np.copy(w) for w in self.model.get_weights()]
            self.save_current()
        if self.write:
            artifacts.write_history(self.run_dir / "history.csv", self.rows)

    def save_current(self) -> None:
        """Saves the model's current weights as `model.keras` (through the float32 twin)."""
        target = self.model
        if self.export_model is not None:
            if has_reparam_layers(self.model):
                fuse_into(self.model, self.export_model)
            else:
                self.export_model.set_weights(self.model.get_weights())
            target = self.export_model
        artifacts.atomic_save_model(target, self.run_dir / "model.keras")

    def images_per_second(self) -> float:
        # The first epoch includes tracing/compilation: leave it out when there are others.
        times = self.epoch_times[1:] if len(self.epoch_times) > 1 else self.epoch_times
        if not times:
            return float("nan")
        return self.images_per_epoch / float(np.median(times))


# Keras 3 only; tf_keras has no such callback (training runs in Keras 3, DESIGN.md), but this
# module must still import in the legacy world.
_SwapEMABase = getattr(tf.keras.callbacks, "SwapEMAWeights", tf.keras.callbacks.Callback)


class SwapEMAWeights(_SwapEMABase):
    """Keras's `SwapEMAWeights(swap_on_epoch=True)`, made safe for `BackupAndRestore`.

    From the end of an epoch to the start of the next the model holds the moving averages of
    its weights (the optimizer holds the raw ones): validation, the callbacks after this one
    (`model.keras`) and the backup all see the averages. A backup restored on resumption
    therefore has the averages in the model: the first epoch after it swaps them back before
    training continues, as an uninterrupted run does.
    """

    def __init__(self):
        super().__init__(swap_on_epoch=True)
        self._first_epoch = True

    def on_train_begin(self, logs=None):
        self._first_epoch = True

    def on_epoch_begin(self, epoch, logs=None):
        if self._first_epoch:
            self._first_epoch = False
            self._ema_weights_in_model = epoch > 0  # resumed from a backup
        super().on_epoch_begin(epoch, logs)


class EpochTimeForecast(tf.keras.callbacks.Callback):
    """Says, once the first steps are timed, how long an epoch and the run will take.

    The clock starts at the end of the first call of the train step (tracing and the first
    `steps_per_execution` steps excluded) and the forecast is printed once at least
    `min_seconds` and two more calls have passed, from the measured time per step.
    """

    def __init__(self, steps_per_epoch: int, epochs: int, min_seconds: float = 5.0):
        super().__init__()
        self.steps_per_epoch, self.epochs, self.min_seconds = steps_per_epoch, epochs, min_seconds
        self._start: tuple[int, float] | None = None
        self._calls = 0
        self._done = False
        self._first_epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        if self._start is None:
            self._first_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._done:
            return
        now = time.perf_counter()
        if self._start is None:
            self._start = (batch, now)
            return
        self._calls += 1
        steps, seconds = batch - self._start[0], now - self._start[1]
        if self._calls >= 2 and seconds >= self.min_seconds and steps > 0:
            self._done = True
            print(self.forecast(seconds / steps), flush=True)

    def forecast(self, seconds_per_step: float) -> str:
        epoch = seconds_per_step * self.steps_per_epoch
        remaining = epoch * (self.epochs - self._first_epoch)
        return (
            f"\ntiming: {1000 * seconds_per_step:.0f} ms per step, about {_duration(epoch)} per "
            f"epoch, {_duration(remaining)} for the {self.epochs - self._first_epoch} epoch(s) "
            "to go (validation excluded)"
        )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
