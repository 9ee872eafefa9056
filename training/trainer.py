"""The training loop: Keras `fit` on a tf.data pipeline, under a distribution strategy.

`train(...)` is what `python -m training` runs and what notebooks call:

>>> from training import train
>>> result = train(model="lenet5", dataset="fashion_mnist", epochs=2)
>>> result.run_dir, result.metrics["test_accuracy"]

A run directory (DESIGN.md, "Artifacts") holds `config.json`, `model.keras` (best on
validation), `checkpoints/` (BackupAndRestore: rerunning the same command after a crash
continues after the last completed epoch), `history.csv`, `metrics.json`, `tensorboard/`,
`curves.png`, `confusion.png` and `augment_preview.png`. An existing run directory is never
overwritten silently: the same configuration resumes it, a finished run is reported as such,
a different configuration is an error unless `overwrite=True`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import inspect
import json
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from training import artifacts
from training.augment import build_augmenter, preview_grid, resolve_augment
from training.config import (
    NON_SEMANTIC,
    TrainConfig,
    check_keys,
    parse_input_shape,
    resolve_config,
)
from training.data import ImageDataset, load_dataset, train_val_split
from training.pipeline import make_dataset
from training.precision import resolve_mixed_precision
from training.strategy import is_chief, make_strategy, strategy_name
from zoo.reparam import fuse_into, has_reparam_layers

__all__ = ["RunDirError", "TrainResult", "train"]


class RunDirError(ValueError):
    """The run directory cannot be used as asked (conflicting config, not writable)."""


@dataclasses.dataclass
class TrainResult:
    """What `train` returns.

    Attributes:
        run_dir: the run directory.
        metrics: the content of `metrics.json`.
        history: one dict per epoch (the rows of `history.csv`).
        status: "completed", "early_stopped", "diverged" or "already_finished".
        config: the resolved configuration.
    """

    run_dir: str
    metrics: dict[str, Any]
    history: list[dict[str, float]]
    status: str
    config: dict[str, Any]


# --------------------------------------------------------------------------------------------
# Run directory
# --------------------------------------------------------------------------------------------


def _semantic(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in NON_SEMANTIC}


def _check_writable(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=run_dir, prefix=".write-test"):
            pass
    except OSError as e:
        raise RunDirError(
            f"--run-dir {run_dir} is not writable ({e.strerror or e}); choose another --run-dir"
        ) from e


def prepare_run_dir(run_dir: Path, config: dict[str, Any], overwrite: bool) -> str:
    """Returns "fresh", "resume" or "finished" for `run_dir`; raises `RunDirError` on conflict."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"--run-dir {run_dir} exists and is not a directory")
    config_path = run_dir / "config.json"
    if overwrite and run_dir.is_dir() and any(run_dir.iterdir()):
        if not config_path.is_file() and not (run_dir / "metrics.json").is_file():
            raise RunDirError(
                f"--run-dir {run_dir} holds files that are not a training run; refusing to "
                f"delete them even with --overwrite: choose another --run-dir"
            )
        shutil.rmtree(run_dir)
    _check_writable(run_dir)
    artifacts.remove_stale_temporaries(run_dir)  # left by a killed run of this directory
    if not config_path.is_file():
        others = [p.name for p in run_dir.iterdir() if not p.name.startswith(".")]
        if others:
            raise RunDirError(
                f"--run-dir {run_dir} is not empty and holds no config.json (found "
                f"{sorted(others)[:5]}); choose another --run-dir"
            )
        return "fresh"
    try:
        stored = json.loads(config_path.read_text())
    except ValueError as e:
        raise RunDirError(
            f"--run-dir {run_dir}: config.json is unreadable ({e}); pass --overwrite to start "
            f"again or choose another --run-dir"
        ) from e
    trained = any((run_dir / name).exists() for name in ("checkpoints", "model.keras"))
    if _semantic(stored) != _semantic(config) and not trained:
        return "fresh"  # a run that failed before its first epoch: nothing to lose
    if _semantic(stored) != _semantic(config):
        diff = sorted(
            (
                k
                for k in set(_semantic(stored)) | set(_semantic(config))
                if stored.get(k) != config.get(k)
            ),
            key=lambda k: (k not in ("model", "dataset"), k),  # what was trained first
        )
        changes = ", ".join(f"{k}: {stored.get(k)!r} -> {config.get(k)!r}" for k in diff[:4])
        if len(diff) > 4:
            changes += f" and {len(diff) - 4} more"
        raise RunDirError(
            f"--run-dir {run_dir} holds a run with a different configuration ({changes}); "
            f"pass --overwrite to replace it, choose another --run-dir, or --resume {run_dir} "
            f"to continue it as it was"
        )
    metrics_path = run_dir / "metrics.json"
    if metrics_path.is_file():
        return "finished"
    return "resume"


# --------------------------------------------------------------------------------------------
# Callbacks
# --------------------------------------------------------------------------------------------


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
            target = self.model
            if self.export_model is not None:
                if has_reparam_layers(self.model):
                    fuse_into(self.model, self.export_model)
                else:
                    self.export_model.set_weights(self.best_weights)
                target = self.export_model
            artifacts.atomic_save_model(target, self.run_dir / "model.keras")
        if self.write:
            artifacts.write_history(self.run_dir / "history.csv", self.rows)

    def images_per_second(self) -> float:
        # The first epoch includes tracing/compilation: leave it out when there are others.
        times = self.epoch_times[1:] if len(self.epoch_times) > 1 else self.epoch_times
        if not times:
            return float("nan")
        return self.images_per_epoch / float(np.median(times))


# --------------------------------------------------------------------------------------------
# Model, optimizer, schedule
# --------------------------------------------------------------------------------------------


def _create(name, num_classes, input_shape, overrides):
    from zoo import create_model

    try:
        return create_model(name, num_classes=num_classes, input_shape=input_shape, **overrides)
    except TypeError as e:
        raise ValueError(
            f"model {name!r} does not accept the option(s) {sorted(overrides)} ({e}); see "
            f"`python -m zoo` for its builder's keywords"
        ) from e


def _build_model(
    name: str,
    num_classes: int,
    input_shape: tuple[int, int, int] | None,
    overrides: dict[str, Any],
    sync_bn: bool,
    reparam: bool = False,
) -> tf.keras.Model:
    """`create_model`; with `sync_bn` the builder gets `synchronized=True`, which makes every
    BatchNorm compute its moments across replicas (lenet5_modern and alexnet_bn take it); with
    `reparam` it gets `reparam=True`, the re-parameterized training form (lenet5_modern)."""
    flags = {}
    for wanted, keyword, flag, what in (
        (sync_bn, "synchronized", "--sync-bn", "has no BatchNorm layer to synchronize"),
        (reparam, "reparam", "--reparam", "has no re-parameterized training form"),
    ):
        if not wanted:
            continue
        if not _builder_takes(name, keyword):
            raise ValueError(
                f"{flag}: model {name!r} {what}; drop the flag or use a model that takes it "
                f"({', '.join(_models_taking(keyword))})"
            )
        flags[keyword] = True
    return _create(name, num_classes, input_shape, {**overrides, **flags})


def _builder_takes(name: str, keyword: str) -> bool:
    from zoo import get_model_info

    return keyword in inspect.signature(get_model_info(name).builder).parameters


def _models_taking(keyword: str) -> list[str]:
    from zoo import list_models

    return [name for name in list_models() if _builder_takes(name, keyword)]


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


def repair_backup(backup_dir: Path) -> None:
    """Makes a torn `BackupAndRestore` backup loadable again.

    Keras rewrites `training_metadata.json` in place after the weights: a kill at that moment
    leaves it empty or cut, and resuming would fail on it. Keras falls back to the previous
    backup (`*.bkp`, `double_checkpoint=True`) only for unreadable weights; do the same for
    unreadable metadata, or start over when there is no previous backup.
    """
    metadata = backup_dir / "training_metadata.json"
    if not metadata.is_file():
        return
    try:
        int(json.loads(metadata.read_text())["epoch"])
        return
    except (ValueError, KeyError, TypeError):
        pass
    weights = backup_dir / "latest.weights.h5"
    previous = [Path(f"{weights}.bkp"), Path(f"{metadata}.bkp")]
    if all(p.is_file() for p in previous):
        shutil.copyfile(previous[0], weights)
        shutil.copyfile(previous[1], metadata)
    else:
        metadata.unlink()
        weights.unlink(missing_ok=True)


def _build_before_multiworker_fit(model, dataset, strategy) -> None:
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


def _schedule(c: TrainConfig, steps_per_epoch: int):
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


def _optimizer(c: TrainConfig, steps_per_epoch: int) -> tf.keras.optimizers.Optimizer:
    lr = _schedule(c, steps_per_epoch)
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


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def _evaluate_classifier(model, ds, y_true: np.ndarray, class_names: Sequence[str]) -> dict:
    logits = model.predict(ds, verbose=0).astype(np.float64)
    logits = logits[: len(y_true)]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float(-log_probs[np.arange(len(y_true)), y_true].mean())
    pred = logits.argmax(axis=1)
    n = len(class_names)
    confusion = np.zeros((n, n), np.int64)
    np.add.at(confusion, (y_true, pred), 1)
    per_class = {
        name: float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else float("nan")
        for i, name in enumerate(class_names)
    }
    return {
        "test_accuracy": float((pred == y_true).mean()),
        "test_loss": loss,
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion.tolist(),
    }


def _evaluate_reconstruction(model, ds) -> dict:
    se, count = 0.0, 0
    for noisy, clean in ds:
        out = model(noisy, training=False)
        se += float(tf.reduce_sum(tf.square(tf.cast(out, tf.float32) - clean)))
        count += int(tf.size(clean))
    mse = se / max(count, 1)
    psnr = 10 * math.log10(255.0**2 / mse) if mse > 0 else float("inf")
    return {"test_mse": mse, "test_loss": mse, "test_psnr_db": psnr}


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------


def _make_config(config: TrainConfig | dict | None, options: dict[str, Any]) -> TrainConfig:
    base = {}
    if isinstance(config, TrainConfig):
        base = config.to_dict()
    elif isinstance(config, dict):
        base = {k.replace("-", "_"): v for k, v in config.items()}
    elif config is not None:
        raise ValueError(f"config must be a TrainConfig or a dict, got {type(config).__name__}")
    merged = {**base, **options}
    check_keys(merged, "train()")
    return TrainConfig(**merged)


def _say(message: str, verbose: int) -> None:
    if verbose:
        print(message, flush=True)


def train(
    config: TrainConfig | dict | None = None,
    *,
    overwrite: bool = False,
    resume: str | None = None,
    callbacks: Sequence[tf.keras.callbacks.Callback] = (),
    **options: Any,
) -> TrainResult:
    """Trains a zoo model on a data set and writes the run directory.

    Args:
        config: a `TrainConfig` or a dict of its keys (e.g. from a YAML file).
        overwrite: replace an existing run directory with a different configuration.
        resume: a run directory to continue, with the configuration stored in it.
        callbacks: extra Keras callbacks, run after ours.
        **options: any `TrainConfig` key (`model="lenet5"`, `epochs=2`, `batch_size=256`, ...);
            they take precedence over `config`.

    Returns:
        A `TrainResult` with the run directory, the metrics and the history.

    Raises:
        ValueError: bad options, unknown model or data set, a conflicting run directory.
        FileNotFoundError: missing data.
    """
    verbose_override = options.pop("verbose", None)
    if resume is not None:
        stored_path = Path(resume) / "config.json"
        if not stored_path.is_file():
            raise RunDirError(f"--resume {resume}: no config.json there; not a run directory")
        try:
            stored = json.loads(stored_path.read_text())
        except ValueError as e:
            raise RunDirError(f"--resume {resume}: config.json is unreadable ({e})") from e
        check_keys(stored, str(stored_path))
        c = TrainConfig(**stored)
        c.run_dir = str(resume)
    else:
        c = _make_config(config, options)
    if verbose_override is not None:
        c.verbose = verbose_override
    c = resolve_config(c)
    run_dir = Path(c.run_dir)

    from zoo import get_model_info

    info = get_model_info(c.model)  # unknown model: ValueError before anything is written
    if c.tensorboard and importlib.util.find_spec("tensorboard") is None:
        # Keras's TensorBoard callback writes its summaries with the tensorboard package.
        raise ValueError(
            "--tensorboard needs the tensorboard package: pip install 'tensorboard==2.21.*', "
            "or pass --no-tensorboard"
        )

    tf.keras.utils.set_random_seed(c.seed)
    if c.deterministic:
        tf.config.experimental.enable_op_determinism()

    # The strategy first: a multi-worker strategy must configure TensorFlow's runtime before
    # anything else initializes it (asking for the devices below would).
    strategy = make_strategy(c.strategy)
    c.mixed_precision = resolve_mixed_precision(c.mixed_precision, strategy)  # recorded resolved
    cfg = c.to_dict()
    chief = is_chief(strategy)
    write_dir = run_dir if chief else Path(tempfile.mkdtemp(prefix="convzoo-worker-"))
    state = prepare_run_dir(write_dir, cfg, overwrite) if chief else "fresh"
    if not chief and (run_dir / "checkpoints").is_dir():
        # Workers restore from the chief's backup (a shared file system, as TF's multi-worker
        # guide assumes) and keep writing their own copy in their temporary directory.
        shutil.copytree(run_dir / "checkpoints", write_dir / "checkpoints")
    if state == "finished":
        metrics = json.loads((run_dir / "metrics.json").read_text())
        _say(
            f"{run_dir} already holds a finished run ({_headline(metrics)}); nothing to do. "
            f"Use --overwrite to train again or another --run-dir.",
            c.verbose,
        )
        return TrainResult(
            str(run_dir),
            metrics,
            artifacts.read_history(run_dir / "history.csv"),
            "already_finished",
            cfg,
        )
    started = time.perf_counter()
    # Data errors (missing/corrupt files) surface before anything is written.
    data: ImageDataset = load_dataset(c.dataset, c.data_dir)
    if c.train_limit or c.test_limit:
        data = data.subset(c.train_limit, c.test_limit, seed=c.seed)

    previous_policy = tf.keras.mixed_precision.global_policy()
    try:
        if c.mixed_precision != "off":
            tf.keras.mixed_precision.set_global_policy(f"mixed_{c.mixed_precision}")
        return _train(
            c, cfg, info, data, strategy, write_dir, state, list(callbacks), chief, started
        )
    finally:
        tf.keras.mixed_precision.set_global_policy(previous_policy)
        if not chief:
            shutil.rmtree(write_dir, ignore_errors=True)


def _headline(metrics: dict) -> str:
    if "test_accuracy" in metrics:
        return f"test accuracy {metrics['test_accuracy']:.4f}"
    if "test_mse" in metrics:
        return f"test MSE {metrics['test_mse']:.2f}"
    return f"status {metrics.get('status')}"


def _train(
    c,
    cfg,
    info,
    data: ImageDataset,
    strategy,
    run_dir: Path,
    state,
    extra_callbacks,
    chief,
    started: float,
) -> TrainResult:
    (x_train, y_train), (x_val, y_val) = train_val_split(
        data.x_train, data.y_train, c.val_split, seed=c.seed
    )
    task = info.task
    input_override = parse_input_shape(c.input_shape)
    target_shape = input_override or tuple(info.input_shape)
    level = resolve_augment(c.augment, data.name)
    augmenter = build_augmenter(level, data.allows_flips, seed=c.seed)
    replicas = strategy.num_replicas_in_sync
    if c.batch_size % replicas:
        raise ValueError(
            f"batch_size {c.batch_size} is the global batch and must divide evenly over "
            f"{replicas} replicas"
        )
    batch = min(c.batch_size, len(x_train))
    steps_per_epoch = max(1, len(x_train) // batch)
    # Several steps per tf.function call amortize the Python overhead of small models. Under
    # MirroredStrategy, Keras 3.15's multi-step loop fails ("You must feed a value for
    # placeholder tensor ... while/cond/Placeholder"), so auto means 1 step with replicas.
    spe = c.steps_per_execution or (min(32, steps_per_epoch) if replicas == 1 else 1)

    smoothing = c.label_smoothing if task == "classification" else 0.0
    common = dict(
        target_shape=target_shape,
        num_classes=data.num_classes,
        label_smoothing=smoothing,
        task=task,
        seed=c.seed,
    )
    train_ds = make_dataset(x_train, y_train, batch, training=True, augmenter=augmenter, **common)
    val_ds = make_dataset(x_val, y_val, c.batch_size, training=False, **common)
    test_ds = make_dataset(
        data.x_test, data.y_test, c.batch_size, training=False, **{**common, "label_smoothing": 0}
    )

    overrides: dict[str, Any] = dict(c.model_options or {})
    if task == "reconstruction" and c.noise_std is not None:
        overrides["noise_stddev"] = c.noise_std
    num_outputs = data.num_classes if task == "classification" else info.num_classes
    with strategy.scope():
        model = _build_model(
            c.model, num_outputs, input_override, overrides, c.sync_bn, bool(c.reparam)
        )
        if task == "classification":
            loss = (
                tf.keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing)
                if smoothing
                else tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            )
            metrics = ["accuracy"]
        else:
            loss = tf.keras.losses.MeanSquaredError()
            metrics = []
        model.compile(
            optimizer=_optimizer(c, steps_per_epoch),
            loss=loss,
            metrics=metrics,
            jit_compile=bool(c.xla),
            steps_per_execution=spe,
        )
        if not model.built:
            model.build((None, *target_shape))
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        _build_before_multiworker_fit(model, val_ds, strategy)

    # Model errors (a bad --model-option, --sync-bn without BatchNorm) also come before any
    # file is written.
    if chief:
        artifacts.atomic_write_json(run_dir / "config.json", cfg)
    if chief and c.preview and state == "fresh":
        preview_grid(
            _preview_examples(x_train, y_train),
            augmenter,
            str(run_dir / "augment_preview.png"),
            title=f"{data.name}: --augment {level}",
        )

    monitor, mode = ("val_accuracy", "max") if task == "classification" else ("val_loss", "min")
    export_model = None
    if c.mixed_precision != "off" or c.reparam:
        policy = tf.keras.mixed_precision.global_policy()
        tf.keras.mixed_precision.set_global_policy("float32")
        try:
            export_model = _build_model(c.model, num_outputs, input_override, overrides, False)
        finally:
            tf.keras.mixed_precision.set_global_policy(policy)
    recorder = RunRecorder(
        run_dir, monitor, mode, steps_per_epoch * batch, export_model=export_model
    )
    callbacks: list[tf.keras.callbacks.Callback] = [tf.keras.callbacks.TerminateOnNaN()]
    if c.ema_momentum:
        # Before the recorder: validation, model.keras and the test metrics use the averages.
        callbacks.append(SwapEMAWeights())
    callbacks.append(recorder)
    if c.early_stopping:
        callbacks.append(
            tf.keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=c.early_stopping)
        )
    if c.tensorboard:
        callbacks.append(
            tf.keras.callbacks.TensorBoard(
                str(run_dir / "tensorboard"), write_graph=False, profile_batch=0
            )
        )
    repair_backup(run_dir / "checkpoints")
    callbacks.append(
        tf.keras.callbacks.BackupAndRestore(
            str(run_dir / "checkpoints"), double_checkpoint=True, delete_checkpoint=False
        )
    )
    callbacks += extra_callbacks

    _say(
        f"Training {c.model} on {data.name}: {len(x_train)} train / {len(x_val)} validation / "
        f"{len(data.y_test)} test images, input {target_shape}, batch {c.batch_size} over "
        f"{replicas} replica(s) ({strategy_name(strategy)}), augment {level}, "
        f"{c.optimizer} lr {c.learning_rate:g} ({c.schedule}), mixed precision "
        f"{c.mixed_precision}, xla {c.xla}, "
        f"steps/execution {spe}, run dir {run_dir}" + (" (resuming)" if state == "resume" else ""),
        c.verbose,
    )
    model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=c.epochs,
        callbacks=callbacks,
        verbose=c.verbose,
        shuffle=False,  # the pipeline shuffles (seeded)
    )
    initial_epoch = getattr(model, "_initial_epoch", 0) or 0

    status = "completed"
    if recorder.diverged_epoch is not None or (
        recorder.rows and not math.isfinite(recorder.rows[-1].get("loss", 0.0))
    ):
        status = "diverged"
    elif recorder.rows and recorder.rows[-1]["epoch"] + 1 < c.epochs:
        status = "early_stopped"

    # Evaluate the best model on validation (what model.keras holds).
    evaluated = model
    if recorder.best_weights is not None:
        model.set_weights(recorder.best_weights)
    elif (run_dir / "model.keras").is_file():
        best = tf.keras.models.load_model(run_dir / "model.keras", compile=False)
        if has_reparam_layers(model):
            evaluated = best  # the folded plain model: its weights do not fit the branches
        else:
            model.set_weights(best.get_weights())
    elif status == "diverged":
        raise FloatingPointError(
            f"the loss became NaN in the first epoch and there is no model to keep; lower "
            f"--learning-rate (was {c.learning_rate:g}) or use --mixed-precision off"
        )
    if task == "classification":
        results = _evaluate_classifier(evaluated, test_ds, data.y_test, data.class_names)
    else:
        results = _evaluate_reconstruction(evaluated, test_ds)
    wall = time.perf_counter() - started

    history = recorder.rows
    metrics = {
        "model": c.model,
        "dataset": data.name,
        "task": task,
        "status": status,
        "epochs_run": len(history),
        "epochs_this_session": recorder.epochs_run,
        "resumed_from_epoch": initial_epoch,
        "best_epoch": None if recorder.best_epoch is None else recorder.best_epoch + 1,
        f"best_{monitor}": recorder.best,
        **{k: v for k, v in results.items() if k != "confusion_matrix"},
        "images_per_second": recorder.images_per_second(),
        "wall_time_seconds": wall,
        "train_size": len(x_train),
        "val_size": len(x_val),
        "test_size": len(data.y_test),
        "replicas": replicas,
        "strategy": strategy_name(strategy),
        "mixed_precision": c.mixed_precision,
        "xla": c.xla,
    }
    if "confusion_matrix" in results:
        metrics["confusion_matrix"] = results["confusion_matrix"]
    if chief:
        artifacts.write_history(run_dir / "history.csv", history)
        if history:
            artifacts.plot_curves(
                history, run_dir / "curves.png", title=f"{c.model} on {data.name}"
            )
        if "confusion_matrix" in results:
            artifacts.plot_confusion(
                np.asarray(results["confusion_matrix"]),
                data.class_names,
                run_dir / "confusion.png",
                title=f"{c.model} on {data.name}: test accuracy {results['test_accuracy']:.4f}",
            )
        # metrics.json last: its presence marks the run as finished.
        artifacts.atomic_write_json(run_dir / "metrics.json", metrics)
    if status == "diverged":
        print(
            f"error: the loss became NaN at epoch {(recorder.diverged_epoch or 0) + 1}; "
            f"training stopped. The best model so far (epoch {metrics['best_epoch']}) is kept "
            f"in {run_dir / 'model.keras'}. Lower --learning-rate (was {c.learning_rate:g}).",
            file=sys.stderr,
        )
    if c.verbose:
        print(summary(metrics, run_dir))
    return TrainResult(str(run_dir), metrics, history, status, cfg)


def _preview_examples(x: np.ndarray, y: np.ndarray, rows: int = 6) -> np.ndarray:
    picks = []
    for label in np.unique(y)[:rows]:
        picks.append(int(np.flatnonzero(y == label)[0]))
    return x[picks]


def summary(metrics: dict, run_dir: Path | str) -> str:
    """The one-screen summary printed at the end of a run."""
    lines = [
        "",
        "=" * 72,
        f"{metrics['model']} on {metrics['dataset']}: {metrics['status']} after "
        f"{metrics['epochs_run']} epoch(s)"
        + (
            f" (resumed at epoch {metrics['resumed_from_epoch'] + 1})"
            if metrics.get("resumed_from_epoch")
            else ""
        ),
    ]
    if "test_accuracy" in metrics:
        lines.append(
            f"  test accuracy  {metrics['test_accuracy']:.4f}   test loss {metrics['test_loss']:.4f}"
            f"   (best validation epoch {metrics['best_epoch']})"
        )
        per_class = metrics["per_class_accuracy"]
        items = [f"{name[:12]:>12s} {acc:.3f}" for name, acc in per_class.items()]
        for i in range(0, len(items), 4):
            lines.append("  " + "  ".join(items[i : i + 4]))
    else:
        lines.append(
            f"  test MSE {metrics['test_mse']:.2f}   PSNR {metrics['test_psnr_db']:.2f} dB"
        )
    lines.append(
        f"  {metrics['images_per_second']:.0f} images/s training, wall time "
        f"{metrics['wall_time_seconds']:.1f} s, {metrics['replicas']} replica(s), mixed "
        f"precision {metrics.get('mixed_precision', 'off')}"
    )
    lines.append(f"  run directory: {run_dir}")
    lines.append("=" * 72)
    return "\n".join(lines)
