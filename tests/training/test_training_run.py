"""End-to-end runs on a small real Fashion-MNIST subset: artifacts, resume, errors, NaN."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from training import train
from training.data import load_dataset, validation_indices
from training.pipeline import make_dataset
from training.record import read_run_record, validation_digest
from training.trainer import RunDirError

pytestmark = pytest.mark.keras3_only  # the training world is Keras 3 (DESIGN.md)

REPO = Path(__file__).resolve().parents[2]
SMALL = dict(
    model="lenet5",
    dataset="fashion_mnist",
    train_limit=512,
    test_limit=256,
    batch_size=128,
    mixed_precision="off",  # pinned: auto depends on the CPU (tests force bfloat16 by name)
    verbose=0,
)


class CrashAtEpochEnd(tf.keras.callbacks.Callback):
    """Simulates a crash after epoch `epoch` finished (and was backed up)."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError(f"simulated crash after epoch {epoch}")


def _history_epochs(run_dir: Path) -> list[int]:
    with open(run_dir / "history.csv") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def test_one_epoch_run_writes_every_artifact(tmp_path):
    run_dir = tmp_path / "run"
    # bfloat16 whatever the CPU (TensorFlow emulates it where the CPU lacks it): the metrics
    # must still be those of the float32 model.keras, not of the bfloat16 training model.
    options = dict(SMALL, mixed_precision="bfloat16")
    result = train(**options, epochs=1, run_dir=str(run_dir))
    for name in (
        "config.json",
        "model.keras",
        "history.csv",
        "metrics.json",
        "curves.png",
        "confusion.png",
        "augment_preview.png",
    ):
        assert (run_dir / name).is_file(), name
    assert any((run_dir / "checkpoints").iterdir())
    assert list((run_dir / "tensorboard" / "train").glob("events.out.tfevents.*"))
    assert list((run_dir / "tensorboard" / "validation").glob("events.out.tfevents.*"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for split, tags in (
        ("train", {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"}),
        ("validation", {"epoch_loss", "epoch_accuracy"}),
    ):
        events = EventAccumulator(str(run_dir / "tensorboard" / split))
        events.Reload()
        assert tags <= set(events.Tags()["tensors"]), split
        (loss,) = events.Tensors("epoch_loss")
        assert loss.step == 0 and np.isfinite(tf.make_ndarray(loss.tensor_proto))
    assert not [p for p in run_dir.iterdir() if ".tmp" in p.name]

    config = json.loads((run_dir / "config.json").read_text())
    # Resolved values are recorded: lenet5's measured defaults (see training/config.py).
    assert config["learning_rate"] == 2e-3 and config["optimizer"] == "adam"
    assert config["epochs"] == 1 and config["batch_size"] == 128 and config["augment"] == "none"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(result.metrics))
    assert result.status == "completed" and result.run_dir == str(run_dir)
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["test_loss"] > 0
    assert len(metrics["per_class_accuracy"]) == 10
    assert metrics["images_per_second"] > 0 and metrics["wall_time_seconds"] > 0
    assert metrics["train_size"] + metrics["val_size"] == 512 and metrics["test_size"] == 256
    with open(run_dir / "history.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= set(row)

    # model.keras is the model that was evaluated: its test accuracy and loss, evaluated
    # here on the same batches, are exactly the reported ones.
    import layers  # noqa: F401  (registers the custom layers for loading)

    assert metrics["mixed_precision"] == "bfloat16"
    model = tf.keras.models.load_model(run_dir / "model.keras", compile=False)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    data = load_dataset("fashion_mnist").subset(512, 256, seed=0)
    test_ds = make_dataset(data.x_test, data.y_test, 128, training=False)
    logits = model.predict(test_ds, verbose=0).astype(np.float64)
    pred = logits.argmax(1)
    assert float((pred == data.y_test).mean()) == metrics["test_accuracy"]
    log_probs = logits - logits.max(1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(1, keepdims=True))
    assert -log_probs[np.arange(256), data.y_test].mean() == metrics["test_loss"]
    cm = np.asarray(metrics["confusion_matrix"])
    assert cm.sum() == 256 and np.trace(cm) == round(metrics["test_accuracy"] * 256)

    # run.json: the record export reads, describing the same model and split.
    record = read_run_record(run_dir)
    assert record.model == "lenet5" and record.task == "classification"
    assert record.input_shape == (28, 28, 1) and record.class_names == tuple(data.class_names)
    assert record.mixed_precision == "bfloat16" and record.config == config
    assert record.metrics["test_accuracy"] == metrics["test_accuracy"]
    assert record.metrics["best_val_accuracy"] == metrics["best_val_accuracy"]
    val_idx = validation_indices(data.y_train, config["val_split"], config["seed"])
    assert record.validation["sha256"] == validation_digest(val_idx)
    assert record.validation["size"] == metrics["val_size"] == len(val_idx)
    from export.source import load_source

    source = load_source(run_dir)
    assert source.record == record and source.class_names == list(data.class_names)

    # Same command again: finished, nothing retrained or overwritten.
    mtime = (run_dir / "model.keras").stat().st_mtime_ns
    again = train(**options, epochs=1, run_dir=str(run_dir))
    assert again.status == "already_finished"
    assert (run_dir / "model.keras").stat().st_mtime_ns == mtime
    # A different configuration is refused without --overwrite.
    with pytest.raises(RunDirError, match=r"different configuration.*--overwrite"):
        train(**options, epochs=2, run_dir=str(run_dir))


def test_resume_continues_at_the_right_epoch(tmp_path):
    run_dir = tmp_path / "run"
    options = dict(SMALL, epochs=4, run_dir=str(run_dir), train_limit=384)
    with pytest.raises(RuntimeError, match="after epoch 1"):
        train(**options, callbacks=[CrashAtEpochEnd(1)])
    assert (
        json.loads((run_dir / "checkpoints" / "training_metadata.json").read_text())["epoch"] == 2
    )
    assert _history_epochs(run_dir) == [0, 1]
    assert not (run_dir / "metrics.json").exists()

    # Rerunning the same command continues at epoch 3 (index 2); crash again after it.
    with pytest.raises(RuntimeError, match="after epoch 2"):
        train(**options, callbacks=[CrashAtEpochEnd(2)])
    assert _history_epochs(run_dir) == [0, 1, 2]

    # --resume RUN_DIR finishes the last epoch with the stored configuration.
    result = train(resume=str(run_dir), verbose=0)
    assert result.status in ("completed", "early_stopped")
    assert result.metrics["resumed_from_epoch"] == 3
    assert result.metrics["epochs_this_session"] == 1
    assert _history_epochs(run_dir) == [0, 1, 2, 3]
    lrs = [row["learning_rate"] for row in result.history]
    assert lrs[-1] < lrs[1]  # the cosine schedule continued rather than restarting


def test_nan_loss_stops_and_keeps_the_best_model(tmp_path, capsys):
    run_dir = tmp_path / "run"

    class PoisonAfterFirstEpoch(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                self.model.set_weights([w * np.nan for w in self.model.get_weights()])

    result = train(**SMALL, epochs=3, run_dir=str(run_dir), callbacks=[PoisonAfterFirstEpoch()])
    assert result.status == "diverged"
    assert "NaN" in capsys.readouterr().err
    assert result.metrics["best_epoch"] == 1
    assert np.isfinite(result.metrics["test_loss"])  # evaluated with the kept best model
    assert _history_epochs(run_dir) == [0, 1]
    assert (run_dir / "model.keras").is_file()


def test_mixed_precision_trains_and_saves_a_float32_model(tmp_path):
    run_dir = tmp_path / "run"
    result = train(
        **dict(SMALL, model="lenet5_modern", mixed_precision="bfloat16"),
        epochs=1,
        run_dir=str(run_dir),
        label_smoothing=0.1,
        optimizer="sgd",
        schedule="step",
        step_epochs=1,
    )
    assert result.status == "completed" and result.metrics["mixed_precision"] == "bfloat16"
    assert tf.keras.mixed_precision.global_policy().name == "float32"  # restored
    import layers  # noqa: F401  (registers the custom layers for loading)

    model = tf.keras.models.load_model(run_dir / "model.keras", compile=False)
    assert all(layer.compute_dtype == "float32" for layer in model.layers)


def test_reparam_run_saves_the_folded_plain_model(tmp_path):
    from training.data import load_dataset
    from zoo.reparam import has_reparam_layers

    run_dir = tmp_path / "run"
    result = train(
        **dict(SMALL, model="lenet5_modern"),
        epochs=2,
        run_dir=str(run_dir),
        reparam=True,
        early_stopping=0,
    )
    config = json.loads((run_dir / "config.json").read_text())
    assert result.status == "completed" and config["reparam"] is True
    saved = tf.keras.models.load_model(run_dir / "model.keras", compile=False)
    assert not has_reparam_layers(saved) and saved.count_params() == 62_384
    # model.keras (the folded model) scores what metrics.json says the trained one scored.
    test = load_dataset("fashion_mnist").subset(512, 256, seed=0)
    logits = saved.predict(test.x_test.astype(np.float32), verbose=0)
    accuracy = float(np.mean(logits.argmax(-1) == test.y_test))
    assert accuracy == pytest.approx(result.metrics["test_accuracy"], abs=1 / 256)
    # A model without a training form says so, naming the models that have one.
    with pytest.raises(ValueError, match=r"--reparam: model 'lenet5' .*lenet5_modern"):
        train(**SMALL, epochs=1, run_dir=str(tmp_path / "plain"), reparam=True)


def test_reconstruction_run_reports_mse(tmp_path):
    result = train(
        **dict(SMALL, model="conv_autoencoder", train_limit=256, test_limit=64),
        epochs=1,
        run_dir=str(tmp_path / "ae"),
        noise_std=0.1,
        preview=False,
    )
    metrics = result.metrics
    assert metrics["task"] == "reconstruction" and metrics["test_mse"] > 0
    assert metrics["test_psnr_db"] == pytest.approx(10 * np.log10(255.0**2 / metrics["test_mse"]))
    assert "val_loss" in result.history[0] and "accuracy" not in result.history[0]
    assert (tmp_path / "ae" / "model.keras").is_file()
    assert not (tmp_path / "ae" / "confusion.png").exists()


def _cli(*args: str, env: dict | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
    )


def _error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("python -m training")]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_cli_errors_are_one_line_exit_2(tmp_path):
    proc = _cli("--optimizer", "rmsprop")
    assert proc.returncode == 2 and "rmsprop" in _error_line(proc)
    proc = _cli("--epochs", "0", "--run-dir", str(tmp_path / "r"))
    assert proc.returncode == 2 and "epochs must be" in _error_line(proc)

    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = _cli("--run-dir", str(blocker / "run"), "--epochs", "1")
    assert proc.returncode == 2 and "--run-dir" in _error_line(proc)

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "config.json").write_text(json.dumps({"model": "lenet5_modern"}))
    (existing / "model.keras").write_text("a trained model")
    proc = _cli("--run-dir", str(existing), "--epochs", "1")
    line = _error_line(proc)
    assert proc.returncode == 2 and "--overwrite" in line and "--run-dir" in line
    assert (existing / "config.json").read_text() == json.dumps({"model": "lenet5_modern"})
    assert (existing / "model.keras").read_text() == "a trained model"

    proc = _cli("--dataset", "folder:" + str(tmp_path / "nope"), "--run-dir", str(tmp_path / "x"))
    assert proc.returncode == 2 and "no such directory" in _error_line(proc)
    assert not (tmp_path / "x" / "config.json").exists()


def test_help_and_config_file(tmp_path, capsys):
    from training.__main__ import main
    from training.config import fields

    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    flags = [f for f in fields() if f.metadata.get("cli") is not False]
    assert [f.name for f in fields() if f not in flags] == ["extended"]  # recorded, not a flag
    for f in flags:
        assert "--" + f.name.replace("_", "-") in text
    assert text.count("(default:") >= len(flags) + 3
    for flag in ("--config", "--resume", "--overwrite"):
        assert flag in text

    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 1\nbatchsize: 64\n")
    assert main(["--config", str(bad)]) == 2
    assert "batchsize" in capsys.readouterr().err

    good = tmp_path / "good.yaml"
    good.write_text(
        f"epochs: 1\nbatch-size: 128\ntrain_limit: 256\ntest_limit: 128\nverbose: 0\n"
        f"run_dir: {tmp_path / 'from-yaml'}\naugment: none\n"
    )
    argv = ["--config", str(good), "--batch-size", "64", "--no-preview"]
    assert main([*argv, "--model-option", "activation=relu"]) == 0
    config = json.loads((tmp_path / "from-yaml" / "config.json").read_text())
    assert config["batch_size"] == 64 and config["epochs"] == 1 and config["augment"] == "none"
    assert config["model_options"] == {"activation": "relu"}
    capsys.readouterr()
    assert main([*argv, "--model-option", "wings=2", "--run-dir", str(tmp_path / "w")]) == 2
    assert "has no option 'wings'" in capsys.readouterr().err
    assert not (tmp_path / "from-yaml" / "augment_preview.png").exists()


MIRRORED_SCRIPT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)
from training import train
result = train(model="lenet5_modern", dataset="fashion_mnist", epochs=1, batch_size=64,
               train_limit=256, test_limit=128, strategy="mirrored", sync_bn=True, verbose=0,
               mixed_precision="off",
               run_dir=sys.argv[1])
print(json.dumps({"replicas": result.metrics["replicas"],
                  "strategy": result.metrics["strategy"],
                  "accuracy": result.metrics["test_accuracy"]}))
"""


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(tmp_path / "run")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2 and out["strategy"] == "MirroredStrategy"
    assert 0.0 <= out["accuracy"] <= 1.0
    assert (tmp_path / "run" / "model.keras").is_file()
