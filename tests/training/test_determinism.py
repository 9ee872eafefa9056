"""`--deterministic` with the same seed twice on CPU gives bit-identical weights.

Two separate `python -m training` processes (op determinism is process-wide and cannot be
switched off again, so it stays out of the test process), run concurrently. The second
process also trains with another seed, so the comparison can fail.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from hardening_utils import kill_tree, make_idx_dir, python_env

pytestmark = pytest.mark.keras3_only  # the training world is Keras 3 (DESIGN.md)

# lenet5_modern: BatchNorm, AdamW with weight decay, the standard augmentation (random ops in
# the tf.data pipeline), label smoothing: every seeded source of randomness is exercised.
OPTIONS = ["--model", "lenet5_modern", "--data-dir", "data", "--epochs", "2"]
OPTIONS += ["--batch-size", "32", "--augment", "standard", "--verbose", "0", "--no-preview"]
OPTIONS += ["--no-tensorboard", "--deterministic", "--mixed-precision", "off"]


def _weights(path) -> list[np.ndarray]:
    import layers  # noqa: F401  (registers the custom layers for loading)

    return tf.keras.models.load_model(path, compile=False).get_weights()


def test_same_seed_deterministic_runs_give_identical_weights(tmp_path):
    make_idx_dir(tmp_path / "data", n_train=400, n_test=60)
    run = [sys.executable, "-m", "training", *OPTIONS]
    script = (
        "import subprocess, sys\n"
        f"for args in ({[*run, '--seed', '7', '--run-dir', 'b']!r}, "
        f"{[*run, '--seed', '8', '--run-dir', 'c']!r}):\n"
        "    code = subprocess.call(args)\n"
        "    if code:\n"
        "        sys.exit(code)\n"
    )
    commands = [[*run, "--seed", "7", "--run-dir", "a"], [sys.executable, "-c", script]]
    processes = [
        subprocess.Popen(
            command,
            cwd=tmp_path,
            env=python_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for command in commands
    ]
    try:
        errors = [p.communicate(timeout=400)[1] for p in processes]
    finally:
        for p in processes:
            kill_tree(p)
    assert [p.returncode for p in processes] == [0, 0], "\n".join(e[-3000:] for e in errors)

    a, b, c = (_weights(tmp_path / name / "model.keras") for name in "abc")
    assert len(a) == len(b) > 0
    for wa, wb in zip(a, b, strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert any(not np.array_equal(wa, wc) for wa, wc in zip(a, c, strict=True))
    history = [(tmp_path / name / "history.csv").read_text().splitlines() for name in "ab"]
    # Same losses and accuracies epoch by epoch (timings differ).
    strip = [[",".join(line.split(",")[:-1]) for line in h] for h in history]
    assert strip[0] == strip[1]
