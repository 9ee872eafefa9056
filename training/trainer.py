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

import dataclasses
import importlib.util
import json
import math
import os
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
from training.atomic import atomic_write_json
from training.augment import build_augmenter, preview_grid, resolve_augment
from training.callbacks import EpochTimeForecast, RunRecorder, SwapEMAWeights, monitored_metric
from training.config import (
    TrainConfig,
    check_keys,
    parse_input_shape,
    progress_verbose,
    resolve_config,
)
from training.data import ImageDataset, load_dataset, train_val_split
from training.evaluation import (
    evaluate_classifier,
    evaluate_reconstruction,
    float32_policy,
    load_saved_model,
)
from training.memory import check_fits, peak_resident_bytes, training_memory_bytes
from training.model_build import build_model
from training.multiworker_patch import build_before_multiworker_fit
from training.optimizer import build_optimizer
from training.pipeline import make_dataset
from training.precision import resolve_mixed_precision
from training.run_dir import RunDirError, lengthen_run, prepare_run_dir, repair_backup
from training.run_outputs import run_metrics, run_record, summary, write_outputs
from training.strategy import is_chief, make_strategy, strategy_name
from zoo.autoencoder import training_noise_pixels

__all__ = ["RunDirError", "TrainResult", "summary", "train"]


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
    # Paths given as `pathlib.Path` are recorded in config.json as the strings the CLI takes.
    merged = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in merged.items()}
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
    c = _resolved_config(config, resume, options)
    run_dir = Path(c.run_dir)
    info = _model_info_and_checks(c)  # unknown model: ValueError before anything is written

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
    if chief and c.extended:
        lengthen_run(write_dir, cfg)
    state = prepare_run_dir(write_dir, cfg, overwrite) if chief else "fresh"
    if not chief and (run_dir / "checkpoints").is_dir():
        # Workers restore from the chief's backup (a shared file system, as TF's multi-worker
        # guide assumes) and keep writing their own copy in their temporary directory.
        shutil.copytree(run_dir / "checkpoints", write_dir / "checkpoints")
    if state == "finished":
        return _already_finished(run_dir, cfg, c.verbose)
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


def _resolved_config(config, resume: str | None, options: dict[str, Any]) -> TrainConfig:
    """The run's configuration: `resume`'s stored one (lengthened by an `epochs` option),
    else `config` updated by `options`."""
    verbose_override = options.pop("verbose", None)
    if resume is not None:
        epochs = options.pop("epochs", None)
        if options:
            raise ValueError(
                f"resume={resume!r} continues the stored configuration; only epochs (to lengthen "
                f"it) and verbose may be given, got {sorted(options)}"
            )
        c = _lengthened(resolve_config(_stored_config(resume)), epochs)
    else:
        c = _make_config(config, options)
    if verbose_override is not None:
        c.verbose = verbose_override
    return resolve_config(c)


def _lengthened(c: TrainConfig, epochs: int | None) -> TrainConfig:
    """`c` lengthened to `epochs`, the extension recorded in `c.extended`."""
    if epochs is None or epochs == c.epochs:
        return c
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < c.epochs:
        raise ValueError(
            f"--epochs {epochs!r} with --resume {c.run_dir}: the run is configured for "
            f"{c.epochs} epochs; a resumed run can only be lengthened (an integer > {c.epochs})"
        )
    extension = {"from_epochs": c.epochs, "to_epochs": epochs}
    return dataclasses.replace(c, epochs=epochs, extended=[*(c.extended or []), extension])


def _stored_config(resume: str) -> TrainConfig:
    """The configuration stored in the run directory `resume`."""
    stored_path = Path(resume) / "config.json"
    if not stored_path.is_file():
        raise RunDirError(f"--resume {resume}: no config.json there; not a run directory")
    try:
        stored = json.loads(stored_path.read_text())
    except ValueError as e:
        raise RunDirError(f"--resume {resume}: config.json is unreadable ({e})") from e
    check_keys(stored, str(stored_path))
    return dataclasses.replace(TrainConfig(**stored), run_dir=str(resume))


def _model_info_and_checks(c: TrainConfig):
    from zoo import get_model_info

    info = get_model_info(c.model)
    if c.tensorboard and importlib.util.find_spec("tensorboard") is None:
        # Keras's TensorBoard callback writes its summaries with the tensorboard package.
        raise ValueError(
            "--tensorboard needs the tensorboard package: pip install 'tensorboard==2.21.*', "
            "or pass --no-tensorboard"
        )
    return info


def _already_finished(run_dir: Path, cfg: dict[str, Any], verbose: int) -> TrainResult:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    _say(
        f"{run_dir} already holds a finished run ({_headline(metrics)}); nothing to do. "
        f"Use --overwrite to train again or another --run-dir.",
        verbose,
    )
    history = artifacts.read_history(run_dir / "history.csv")
    return TrainResult(str(run_dir), metrics, history, "already_finished", cfg)


def _headline(metrics: dict) -> str:
    if "test_accuracy" in metrics:
        return f"test accuracy {metrics['test_accuracy']:.4f}"
    if "test_mse" in metrics:
        return f"test MSE {metrics['test_mse']:.2f}"
    return f"status {metrics.get('status')}"


@dataclasses.dataclass
class _Plan:
    """The splits and pipelines of one run, and how its steps are batched."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    train_ds: tf.data.Dataset
    val_ds: tf.data.Dataset
    test_ds: tf.data.Dataset
    input_override: tuple[int, int, int] | None
    target_shape: tuple[int, int, int]
    augment_level: str
    augmenter: Any
    batch: int
    steps_per_epoch: int
    steps_per_execution: int
    replicas: int


def _plan(c: TrainConfig, info, data: ImageDataset, strategy) -> _Plan:
    (x_train, y_train), (x_val, y_val) = train_val_split(
        data.x_train, data.y_train, c.val_split, seed=c.seed
    )
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
    common = dict(
        target_shape=target_shape,
        num_classes=data.num_classes,
        label_smoothing=_label_smoothing(c, info),
        task=info.task,
        seed=c.seed,
    )
    train_ds = make_dataset(x_train, y_train, batch, training=True, augmenter=augmenter, **common)
    # Validation feeds the compiled loss (one-hot labels when smoothing); test is scored here.
    val_ds = make_dataset(x_val, y_val, c.batch_size, training=False, **common)
    common["label_smoothing"] = 0.0
    test_ds = make_dataset(data.x_test, data.y_test, c.batch_size, training=False, **common)
    return _Plan(
        x_train, y_train, x_val, y_val, train_ds, val_ds, test_ds, input_override,
        target_shape, level, augmenter, batch, steps_per_epoch, spe, replicas,
    )  # fmt: skip


def _label_smoothing(c: TrainConfig, info) -> float:
    return c.label_smoothing if info.task == "classification" else 0.0


def _model_overrides(c: TrainConfig, info) -> dict[str, Any]:
    overrides: dict[str, Any] = dict(c.model_options or {})
    if info.task == "reconstruction" and c.noise_std is not None:
        overrides["noise_stddev"] = c.noise_std
    return overrides


def _num_outputs(info, data: ImageDataset) -> int:
    return data.num_classes if info.task == "classification" else info.num_classes


def _compiled_model(c: TrainConfig, info, data: ImageDataset, strategy, plan: _Plan):
    """The model to train, built and compiled under the strategy."""
    with strategy.scope():
        model = build_model(
            c.model,
            _num_outputs(info, data),
            plan.input_override,
            _model_overrides(c, info),
            c.sync_bn,
            bool(c.reparam),
        )
        if c.weights:
            _start_from_weights(model, c)
        smoothing = _label_smoothing(c, info)
        if info.task == "classification":
            loss = (
                tf.keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing)
                if smoothing
                else tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            )
            metrics = ["accuracy"]
        else:
            loss, metrics = tf.keras.losses.MeanSquaredError(), []
        model.compile(
            optimizer=build_optimizer(c, plan.steps_per_epoch),
            loss=loss,
            metrics=metrics,
            jit_compile=bool(c.xla),
            steps_per_execution=plan.steps_per_execution,
        )
        if not model.built:
            model.build((None, *plan.target_shape))
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        build_before_multiworker_fit(model, plan.val_ds, strategy)
    return model


def _start_from_weights(model: tf.keras.Model, c: TrainConfig) -> None:
    """Fine-tuning: loads `--weights` into the new model; a head of another size starts fresh."""
    from zoo.pretrained import load_weights_into, weights_file

    path = weights_file(c.weights)
    replaced = load_weights_into(model, path, replace_head=True)
    note = f"; new head ({', '.join(replaced)})" if replaced else ""
    _say(f"Starting from the weights of {c.weights} ({path}){note}", c.verbose)


def _forecast(c: TrainConfig, plan: _Plan) -> list[tf.keras.callbacks.Callback]:
    return [EpochTimeForecast(plan.steps_per_epoch, c.epochs)] if c.verbose else []


def _export_twin(c: TrainConfig, info, data: ImageDataset, plan: _Plan):
    """A plain float32 model of the same architecture that `model.keras` is saved from when
    the training model is not one (mixed precision, re-parameterized branches); else None."""
    if c.mixed_precision == "off" and not c.reparam:
        return None
    with float32_policy():
        return build_model(
            c.model, _num_outputs(info, data), plan.input_override, _model_overrides(c, info), False
        )


def _callbacks(c: TrainConfig, run_dir: Path, recorder: RunRecorder, extra) -> list:
    monitor, mode = recorder.monitor, recorder.mode
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
    return callbacks + list(extra)


def _lengthening_note(c: TrainConfig) -> str:
    if not c.extended:
        return ""
    last = c.extended[-1]
    return (
        f"; lengthened from {last['from_epochs']} to {last['to_epochs']} epochs, the "
        f"{c.schedule} schedule recomputed for {last['to_epochs']}"
    )


def _announce(c: TrainConfig, data: ImageDataset, plan: _Plan, strategy, run_dir, state) -> None:
    _say(
        f"Training {c.model} on {data.name}: {len(plan.x_train)} train / {len(plan.x_val)} "
        f"validation / {len(data.y_test)} test images, input {plan.target_shape}, batch "
        f"{c.batch_size} over {plan.replicas} replica(s) ({strategy_name(strategy)}), augment "
        f"{plan.augment_level}, {c.optimizer} lr {c.learning_rate:g} ({c.schedule}), mixed "
        f"precision {c.mixed_precision}, xla {c.xla}, steps/execution "
        f"{plan.steps_per_execution}, run dir {run_dir}"
        + (" (resuming)" if state == "resume" else "")
        + _lengthening_note(c),
        c.verbose,
    )


def _status(recorder: RunRecorder, epochs: int) -> str:
    rows = recorder.rows
    if recorder.diverged_epoch is not None or (
        rows and not math.isfinite(rows[-1].get("loss", 0.0))
    ):
        return "diverged"
    if rows and rows[-1]["epoch"] + 1 < epochs:
        return "early_stopped"
    return "completed"


def _saved_model(model, recorder: RunRecorder, run_dir: Path, status: str, c: TrainConfig):
    """The model `model.keras` holds, loaded back from the file.

    When no epoch improved on the monitored figure (so nothing was saved), the final weights
    are saved first, so the figures always describe a file the user has.
    """
    path = run_dir / "model.keras"
    if not path.is_file():
        if status == "diverged":
            raise FloatingPointError(
                f"the loss became NaN in the first epoch and there is no model to keep; lower "
                f"--learning-rate (was {c.learning_rate:g}) or use --mixed-precision off"
            )
        recorder.save_current()
    return load_saved_model(path)


def _score(saved, info, data: ImageDataset, plan: _Plan) -> dict[str, Any]:
    """The saved model's figures on the test split, and its monitored validation figure."""
    if info.task == "classification":
        results = evaluate_classifier(saved, plan.test_ds, data.y_test, data.class_names)
        val = evaluate_classifier(saved, plan.val_ds, plan.y_val, data.class_names, split="val")
        results["best_val_accuracy"] = val["val_accuracy"]
    else:
        results = evaluate_reconstruction(saved, plan.test_ds)
        results["best_val_loss"] = evaluate_reconstruction(saved, plan.val_ds, "val")["val_loss"]
    return results


def _train(
    c: TrainConfig,
    cfg: dict[str, Any],
    info,
    data: ImageDataset,
    strategy,
    run_dir: Path,
    state: str,
    extra_callbacks: list,
    chief: bool,
    started: float,
) -> TrainResult:
    plan = _plan(c, info, data, strategy)
    model = _compiled_model(c, info, data, strategy, plan)
    estimate = training_memory_bytes(model, c.batch_size, c.optimizer, bool(c.ema_momentum))
    check_fits(estimate, c.batch_size, c.model)
    # Model errors (a bad --model-option, --sync-bn without BatchNorm) also come before any
    # file is written.
    if chief:
        atomic_write_json(run_dir / "config.json", cfg)
    if chief and c.preview and state == "fresh":
        noise = training_noise_pixels(model, _model_overrides(c, info).get("std", info.std))
        preview_grid(
            _preview_examples(plan.x_train, plan.y_train),
            plan.augmenter,
            str(run_dir / "augment_preview.png"),
            title=f"{data.name}: --augment {plan.augment_level}"
            + (f" + training noise (std {noise:.0f} pixels)" if noise else ""),
            noise_std=noise,
        )
    monitor, mode = monitored_metric(info.task)
    recorder = RunRecorder(
        run_dir,
        monitor,
        mode,
        plan.steps_per_epoch * plan.batch,
        export_model=_export_twin(c, info, data, plan),
    )
    _announce(c, data, plan, strategy, run_dir, state)
    model.fit(
        plan.train_ds,
        validation_data=plan.val_ds,
        epochs=c.epochs,
        callbacks=_callbacks(c, run_dir, recorder, [*_forecast(c, plan), *extra_callbacks]),
        verbose=progress_verbose(c.verbose),  # no progress bar in a log file
        shuffle=False,  # the pipeline shuffles (seeded)
    )
    status = _status(recorder, c.epochs)
    saved = _saved_model(model, recorder, run_dir, status, c)
    results = _score(saved, info, data, plan)
    resumed_from = getattr(model, "_initial_epoch", 0) or 0
    metrics = run_metrics(c, info, data, plan, recorder, results, status, resumed_from, strategy)
    metrics["wall_time_seconds"] = time.perf_counter() - started
    metrics["peak_rss_mb"] = round(peak_resident_bytes() / 2**20)
    metrics["memory_estimate_mb"] = round(estimate["total"] / 2**20)
    if chief:
        record = run_record(c, cfg, info, data, saved, metrics)
        write_outputs(c, data, run_dir, recorder.rows, metrics, record)
    if status == "diverged":
        print(
            f"error: the loss became NaN at epoch {(recorder.diverged_epoch or 0) + 1}; "
            f"training stopped. The best model so far (epoch {metrics['best_epoch']}) is kept "
            f"in {run_dir / 'model.keras'}. Lower --learning-rate (was {c.learning_rate:g}).",
            file=sys.stderr,
        )
    if c.verbose:
        print(summary(metrics, run_dir))
    return TrainResult(str(run_dir), metrics, recorder.rows, status, cfg)


def _preview_examples(x: np.ndarray, y: np.ndarray, rows: int = 6) -> np.ndarray:
    picks = []
    for label in np.unique(y)[:rows]:
        picks.append(int(np.flatnonzero(y == label)[0]))
    return x[picks]
