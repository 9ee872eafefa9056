"""Faults: a training run SIGKILLed mid-epoch, a torn backup, an export killed while it writes,
a NaN loss.

Each test drives the real command in a real subprocess and checks what a user would find
afterwards: rerunning the same command finishes the job, and no file under a final name is
half-written. (That a NaN after a good epoch keeps that epoch's model is checked in-process
with poisoned weights: tests/training/test_training_run.py::
test_nan_loss_stops_and_keeps_the_best_model; here an absurd learning rate drives a real run
to NaN in its first epoch. The tanh LeNet-5 does not diverge even at lr 1e30: its bounded
activations keep the logits finite, so the ReLU + BatchNorm lenet5_modern is used.)
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from hardening_utils import kill_tree, make_idx_dir, python_env

pytestmark = pytest.mark.keras3_only  # training and export run in the Keras 3 world

FINAL_NAMES = ("config.json", "metrics.json", "history.csv", "model.keras")


def _history_epochs(run_dir: Path) -> list[int]:
    with open(run_dir / "history.csv") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def _backed_up_epoch(run_dir: Path) -> int:
    """Epochs completed according to BackupAndRestore's metadata (0 if none yet)."""
    path = run_dir / "checkpoints" / "training_metadata.json"
    try:
        return int(json.loads(path.read_text())["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


def test_sigkill_mid_epoch_then_same_command_resumes(tmp_path):
    make_idx_dir(tmp_path / "data", n_train=2400, n_test=200)
    command = [sys.executable, "-m", "training", "--data-dir", "data", "--run-dir", "run"]
    command += ["--epochs", "3", "--batch-size", "32", "--verbose", "0", "--early-stopping", "0"]
    command += ["--mixed-precision", "off"]
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=python_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        # Epoch N=1 (the second) is running once epoch 0 is backed up.
        deadline = time.monotonic() + 240
        while _backed_up_epoch(run_dir) < 1:
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "epoch 0 never finished"
            time.sleep(0.02)
        time.sleep(0.15)
        assert process.poll() is None, "the run finished before it could be killed"
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        kill_tree(process)
    assert process.returncode == -signal.SIGKILL
    assert not (run_dir / "metrics.json").exists()
    completed = _backed_up_epoch(run_dir)
    assert 1 <= completed < 3

    rerun = subprocess.run(
        command, cwd=tmp_path, env=python_env(), capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "Traceback" not in rerun.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert metrics["resumed_from_epoch"] == completed  # continued, did not start over
    assert metrics["epochs_this_session"] == 3 - completed
    assert _history_epochs(run_dir) == [0, 1, 2]  # each planned epoch exactly once

    # Nothing under a final name is corrupt: every artifact parses, the model and the
    # backup checkpoint load.
    json.loads((run_dir / "config.json").read_text())
    import layers  # noqa: F401  (registers the custom layers for loading)

    model = tf.keras.models.load_model(run_dir / "model.keras", compile=False)
    x = np.zeros((2, 28, 28, 1), np.float32)
    assert np.all(np.isfinite(model.predict(x, verbose=0)))
    backup = run_dir / "checkpoints" / "latest.weights.h5"
    model.load_weights(backup)  # BackupAndRestore's weights (h5): complete and readable
    assert _backed_up_epoch(run_dir) == 3


# An export whose first TFLite file write is interrupted by SIGKILL: the process kills itself
# inside the product's atomic write, after the bytes went to the temporary file and before
# they were synced and renamed (the worst moment for a naive writer).
KILL_ON_WRITE = r"""
import os, signal, sys
real_fsync = os.fsync
def fsync(fd):
    target = os.readlink(f"/proc/self/fd/{fd}")
    if ".tflite" in target:
        os.kill(os.getpid(), signal.SIGKILL)
    return real_fsync(fd)
os.fsync = fsync
from export.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def test_export_killed_while_writing_leaves_no_partial_file_and_reruns(tmp_path):
    make_idx_dir(tmp_path / "data", n_train=100, n_test=60)
    inputs = tf.keras.Input((28, 28, 1))
    x = tf.keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    tf.keras.Model(inputs, tf.keras.layers.Dense(10)(x)).save(tmp_path / "tiny.keras")
    args = ["tiny.keras", "--dataset", "fashion_mnist", "--data-dir", "data", "--out", "out"]
    args += ["--formats", "tflite_fp32", "--test-samples", "40", "--latency-runs", "2"]
    args += ["--quiet"]
    out = tmp_path / "out"
    final = out / "tiny_fp32.tflite"

    def killed_run():
        proc = subprocess.run(
            [sys.executable, "-c", KILL_ON_WRITE, *args],
            cwd=tmp_path,
            env=python_env(),
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]

    killed_run()
    assert not final.exists()  # nothing under the final name
    assert [p.name for p in out.glob(".tiny_fp32.tmp*.tflite")]  # it died mid-write
    assert not (out / "report.json").exists()

    done = subprocess.run(
        [sys.executable, "-m", "export", *args],
        cwd=tmp_path,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] is True
    content = final.read_bytes()
    assert content[4:8] == b"TFL3"  # a complete FlatBuffer with the TFLite identifier
    from ai_edge_litert.interpreter import Interpreter

    Interpreter(model_content=content).allocate_tensors()

    # Killed again while re-exporting over the finished files: the previous ones are intact.
    killed_run()
    assert final.read_bytes() == content
    assert json.loads((out / "report.json").read_text()) == report


def test_absurd_learning_rate_stops_with_a_clear_message(tmp_path):
    make_idx_dir(tmp_path / "data", n_train=300, n_test=60)
    command = [sys.executable, "-m", "training", "--data-dir", "data", "--run-dir", "run"]
    command += ["--model", "lenet5_modern", "--epochs", "3", "--batch-size", "32", "--verbose"]
    command += ["0", "--optimizer", "sgd", "--learning-rate", "1e30", "--schedule", "constant"]
    command += ["--mixed-precision", "off"]
    proc = subprocess.run(
        command,
        cwd=tmp_path,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "NaN" in lines[0] and "--learning-rate" in lines[0] and "1e+30" in lines[0]
    run_dir = tmp_path / "run"
    # Stopped at once, and no NaN model was kept as "best".
    assert _history_epochs(run_dir) == [0]
    assert not (run_dir / "model.keras").exists()
    assert not (run_dir / "metrics.json").exists()
    assert not [p.name for p in run_dir.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize("torn", ["", '{"epoch": 3, "ba'])
def test_torn_backup_metadata_falls_back_to_the_previous_backup(tmp_path, torn):
    """A kill while Keras rewrites training_metadata.json in place (after the new weights)
    leaves it empty or cut; the run resumes from the previous backup pair instead."""
    from training.run_dir import repair_backup

    backup = tmp_path / "checkpoints"
    backup.mkdir()
    (backup / "latest.weights.h5").write_bytes(b"weights after epoch 3")
    (backup / "latest.weights.h5.bkp").write_bytes(b"weights after epoch 2")
    (backup / "training_metadata.json").write_text(torn)
    (backup / "training_metadata.json.bkp").write_text('{"epoch": 2, "batch": 0}')
    repair_backup(backup)
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 2
    assert (backup / "latest.weights.h5").read_bytes() == b"weights after epoch 2"

    # Without a previous backup (torn during the first one) the run starts over.
    for name in ("latest.weights.h5.bkp", "training_metadata.json.bkp"):
        (backup / name).unlink()
    (backup / "training_metadata.json").write_text(torn)
    repair_backup(backup)
    assert not (backup / "training_metadata.json").exists()
    assert not (backup / "latest.weights.h5").exists()

    # An intact backup is left alone.
    (backup / "training_metadata.json").write_text('{"epoch": 1, "batch": 0}')
    (backup / "latest.weights.h5").write_bytes(b"weights after epoch 1")
    before = {p.name: p.read_bytes() for p in backup.iterdir()}
    repair_backup(backup)
    assert {p.name: p.read_bytes() for p in backup.iterdir()} == before
