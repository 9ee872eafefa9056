"""Distributed training with tf.distribute (the existing engine, nothing home-made).

- `MultiWorkerMirroredStrategy` with two worker processes on localhost, configured through
  `TF_CONFIG`: a short `python -m training` run completes, only the chief writes the run
  directory, and the accuracy is within noise of a single-worker run of the same command.
- `MirroredStrategy` over two logical CPU devices with `--sync-bn`: one `fit` step of
  lenet5_modern (built by the trainer's own `build_model`) gives the same BatchNorm moving
  statistics and weights as one device on the full batch; without synchronization the
  variances differ (the halves' variances are not the batch's).

Already covered elsewhere: a full training run of lenet5_modern with sync_bn under mirrored
(tests/training/test_training_run.py::test_mirrored_strategy_on_two_logical_cpus) and the
layer-level synchronized moments (tests/layers/test_batch_norm.py::
test_synchronized_moments_equal_the_global_batch_under_mirrored_strategy).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hardening_utils import free_port, kill_tree, python_env

from training import train

pytestmark = pytest.mark.keras3_only  # the training world is Keras 3 (DESIGN.md)

COMMON = [
    "--dataset",
    "fashion_mnist",
    "--train-limit",
    "1500",
    "--test-limit",
    "500",
    "--epochs",
    "2",
    "--batch-size",
    "64",
    "--verbose",
    "0",
    "--no-preview",
    "--mixed-precision",
    "off",
]


def test_multiworker_two_processes_only_chief_writes(tmp_path):
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    workers, logs = [], []
    worker_tmp = tmp_path / "worker1-tmp"
    worker_tmp.mkdir()
    try:
        for index in range(2):
            run_dir = "run" if index == 0 else "worker1-run"
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            env = python_env(TF_CONFIG=tf_config)
            if index == 1:
                env["TMPDIR"] = str(worker_tmp)
            log = open(tmp_path / f"worker{index}.log", "w+")  # noqa: SIM115
            logs.append(log)
            workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "training",
                        *COMMON,
                        "--strategy",
                        "multiworker",
                        "--run-dir",
                        run_dir,
                    ],
                    cwd=tmp_path,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        codes = [w.wait(timeout=420) for w in workers]
    finally:
        for worker in workers:
            kill_tree(worker)
        outputs = []
        for log in logs:
            log.seek(0)
            outputs.append(log.read())
            log.close()
    assert codes == [0, 0], "\n---\n".join(o[-3000:] for o in outputs)

    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # tf.distribute.MultiWorkerMirroredStrategy's class is CollectiveAllReduceStrategy.
    assert metrics["strategy"] == "MultiWorkerMirroredStrategy"
    assert metrics["replicas"] == 2 and metrics["status"] == "completed"
    assert (tmp_path / "run" / "model.keras").is_file()
    # Only the chief wrote: the other worker's --run-dir never appeared and its temporary
    # write directory was removed.
    assert not (tmp_path / "worker1-run").exists()
    assert list(worker_tmp.iterdir()) == []

    single = train(
        model="lenet5",
        dataset="fashion_mnist",
        train_limit=1500,
        test_limit=500,
        epochs=2,
        batch_size=64,
        verbose=0,
        preview=False,
        mixed_precision="off",
        run_dir=str(tmp_path / "single"),
    )
    # Well above chance (0.1) for both, and within noise of each other (500 test images:
    # binomial std ~0.02; two short runs with differently ordered reductions: a few points).
    assert metrics["test_accuracy"] > 0.4 and single.metrics["test_accuracy"] > 0.4
    assert abs(metrics["test_accuracy"] - single.metrics["test_accuracy"]) < 0.1


SYNC_BN_SCRIPT = r"""
import json
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)
from training.model_build import build_model

rng = np.random.default_rng(0)
x = rng.uniform(0, 255, (16, 28, 28, 1)).astype("float32")
x[8:] = x[8:] * 0.3 + 120  # the two replicas' halves have different statistics
y = (np.arange(16) % 10).astype("int64")
data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)

def fitted(strategy, sync, weights):
    with strategy.scope():
        model = build_model("lenet5_modern", 10, None, {"dropout_rate": 0.0}, sync)
        model.compile(
            optimizer=tf.keras.optimizers.SGD(0.05),
            loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    if weights is not None:
        model.set_weights(weights)
    model.fit(data, epochs=1, verbose=0, shuffle=False)
    names = [w.path for w in model.weights]
    return model, dict(zip(names, [np.asarray(w) for w in model.get_weights()]))

tf.keras.utils.set_random_seed(0)
one = tf.distribute.OneDeviceStrategy("/cpu:0")
with one.scope():
    start = build_model("lenet5_modern", 10, None, {"dropout_rate": 0.0}, False).get_weights()
_, reference = fitted(one, False, start)
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
model, synced = fitted(mirrored, True, start)
_, unsynced = fitted(mirrored, False, start)

def gap(a, b, pick):
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a if pick(k))

moving_var = lambda k: "moving_var" in k
moving_mean = lambda k: "moving_mean" in k
trainable = lambda k: "moving" not in k
print("RESULT " + json.dumps({
    "replicas": mirrored.num_replicas_in_sync,
    "sync_flags": [l.synchronized for l in model._flatten_layers() if hasattr(l, "synchronized")],
    "n_moving_var": sum(map(moving_var, reference)),
    "sync_var": gap(synced, reference, moving_var),
    "sync_mean": gap(synced, reference, moving_mean),
    "sync_weights": gap(synced, reference, trainable),
    "unsync_var": gap(unsynced, reference, moving_var),
    "scale_var": max(float(np.max(np.abs(v))) for k, v in reference.items() if moving_var(k)),
}))
"""


def test_mirrored_sync_bn_fit_step_matches_one_device_on_the_full_batch():
    proc = subprocess.run(
        [sys.executable, "-c", SYNC_BN_SCRIPT],
        cwd=Path(__file__).resolve().parents[2],
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT ") :])
    assert out["replicas"] == 2
    assert out["sync_flags"] and all(out["sync_flags"])
    assert out["n_moving_var"] == 4  # bn1..bn4 of lenet5_modern
    tolerance = 1e-4 * max(1.0, out["scale_var"])
    assert out["sync_var"] < tolerance and out["sync_mean"] < tolerance
    assert out["sync_weights"] < 1e-4
    # The check can fail: per-replica moments are not the batch's.
    assert out["unsync_var"] > 100 * tolerance


UNPATCHED_FIT = """
import tensorflow as tf
strategy = tf.distribute.MultiWorkerMirroredStrategy()
with strategy.scope():
    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2)])
    model.compile("sgd", "mse", metrics=["mae"])
data = tf.data.Dataset.from_tensor_slices((tf.zeros((16, 4)), tf.zeros((16, 2)))).batch(8)
try:
    model.fit(data, epochs=1, verbose=0)
    print("FIT-OK", flush=True)
except ValueError as error:
    print("FIT-FAILED", str(error).splitlines()[0][:200], flush=True)
"""


def test_keras_multiworker_fit_still_needs_our_workaround(tmp_path):
    """Plain Keras `fit` under two workers, without `training.multiworker_patch`: it still
    fails as keras-team/keras#20585 describes. When this test fails, Keras has fixed it:
    delete training/multiworker_patch.py and its call in the trainer."""
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    workers = []
    try:
        for index in range(2):
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-c", UNPATCHED_FIT],
                    cwd=tmp_path,
                    env=python_env(TF_CONFIG=tf_config),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                    start_new_session=True,
                )
            )
        outputs = [w.communicate(timeout=240)[0] for w in workers]
    finally:
        for worker in workers:
            kill_tree(worker)
    for output in outputs:
        assert "FIT-FAILED Attempt to convert a value (PerReplica" in output, output[-500:]
