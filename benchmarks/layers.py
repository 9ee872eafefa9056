"""Speed of the from-scratch layers against TensorFlow/Keras built-ins (forward + backward).

Each case builds two `tf.function`s, ours and the oracle's, that compute a loss and its
gradients with respect to the input and the weights. They run in one process, interleaved
(ours, oracle, oracle, ours, ...), after a warm-up; the table reports the median time of each
and the median of the per-round ratios against the case's target.

Run: `python -m benchmarks.layers [--quick]`. Writes `benchmarks/results/layers.md` and
`benchmarks/results/layers.json` (atomically: a temporary file, then a rename).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from training.atomic import atomic_write_text

RESULTS_DIR = Path(__file__).resolve().parent / "results"
COLUMNS = ("op", "shape", "ours_ms", "oracle_ms", "ratio", "target", "pass")


def _loss_and_grads(
    forward: Callable[[tf.Tensor], tf.Tensor], variables: list[tf.Variable]
) -> Callable[[tf.Tensor, tf.Tensor], list[tf.Tensor]]:
    """A `tf.function` returning `[loss, d loss/d x, d loss/d variables...]`."""

    @tf.function
    def step(x: tf.Tensor, upstream: tf.Tensor) -> list[tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = forward(x)
            loss = tf.reduce_sum(y * upstream)
        return [loss, *tape.gradient(loss, [x, *variables])]

    return step


def _time_pair(
    ours: Callable, oracle: Callable, args: tuple, repeats: int, warmup: int
) -> tuple[float, float, float]:
    """Median milliseconds of `ours(*args)` and `oracle(*args)`, measured interleaved, and the
    median of the per-round ratios (robust to load that drifts on a shared machine)."""
    for _ in range(warmup):
        ours(*args)[0].numpy()
        oracle(*args)[0].numpy()
    times: dict[str, list[float]] = {"ours": [], "oracle": []}
    for i in range(repeats):
        # Alternate who goes first so neither profits systematically from a warm cache.
        order = (("ours", ours), ("oracle", oracle))
        for name, fn in order if i % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            [t.numpy() for t in fn(*args)]
            times[name].append((time.perf_counter() - start) * 1e3)
    ratios = [a / b for a, b in zip(times["ours"], times["oracle"], strict=True)]
    return (
        statistics.median(times["ours"]),
        statistics.median(times["oracle"]),
        statistics.median(ratios),
    )


def _conv_transpose_case(kernel_size: int, batch: int) -> tuple[Callable, Callable, tuple, str]:
    from layers.conv_transpose import ConvTranspose2D

    height, in_channels, filters, stride = 32, 64, 32, 2
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(batch, height, height, in_channels)), tf.float32)
    out_shape = (batch, height * stride, height * stride, filters)
    upstream = tf.constant(rng.normal(size=out_shape), tf.float32)

    layer = ConvTranspose2D(filters, kernel_size, strides=stride, padding="same", use_bias=False)
    layer.build(x.shape)
    kernel = tf.Variable(layer.kernel.numpy())

    def oracle_forward(inputs: tf.Tensor) -> tf.Tensor:
        return tf.nn.conv2d_transpose(inputs, kernel, out_shape, stride, padding="SAME")

    ours = _loss_and_grads(layer, [layer.kernel])
    oracle = _loss_and_grads(oracle_forward, [kernel])
    shape = (
        f"{batch}x{height}x{height}x{in_channels} k{kernel_size} s{stride} -> "
        f"{out_shape[1]}x{out_shape[2]}x{filters}"
    )
    return ours, oracle, (x, upstream), shape


def _batch_norm_case(shape: tuple[int, ...]) -> tuple[Callable, Callable, tuple, str]:
    from layers.batch_norm import BatchNorm  # lazily: another module of the same project

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=shape), tf.float32)
    upstream = tf.constant(rng.normal(size=shape), tf.float32)
    ours_layer = BatchNorm(momentum=0.1, epsilon=1e-5)
    oracle_layer = tf.keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
    ours_layer.build(x.shape)
    oracle_layer.build(x.shape)
    ours = _loss_and_grads(
        lambda t: ours_layer(t, training=True), list(ours_layer.trainable_variables)
    )
    oracle = _loss_and_grads(
        lambda t: oracle_layer(t, training=True), list(oracle_layer.trainable_variables)
    )
    return ours, oracle, (x, upstream), "x".join(map(str, shape))


def run(quick: bool = False) -> list[dict]:
    """Runs every case and returns one row per case (keys: `COLUMNS`, plus `error` if failed)."""
    repeats, warmup = (5, 2) if quick else (31, 3)
    batch = 8 if quick else 32
    cases: list[tuple[str, Callable[[], tuple], float]] = [
        ("BatchNorm (training)", lambda: _batch_norm_case((batch, 32, 32, 64)), 1.10),
        ("BatchNorm (training)", lambda: _batch_norm_case((256, 1024)), 1.10),
        ("ConvTranspose2D", lambda: _conv_transpose_case(3, batch), 1.20),
        ("ConvTranspose2D", lambda: _conv_transpose_case(4, batch), 1.20),
    ]
    rows = []
    for op, make, target in cases:
        try:
            ours, oracle, args, shape = make()
            ours_ms, oracle_ms, ratio = _time_pair(ours, oracle, args, repeats, warmup)
        except Exception as error:  # a missing or broken layer must not hide the other rows
            rows.append(
                {
                    "op": op,
                    "shape": "",
                    "ours_ms": None,
                    "oracle_ms": None,
                    "ratio": None,
                    "target": target,
                    "pass": False,
                    "error": f"{type(error).__name__}: {error}",
                }
            )
            continue
        rows.append(
            {
                "op": op,
                "shape": shape,
                "ours_ms": round(ours_ms, 2),
                "oracle_ms": round(oracle_ms, 2),
                "ratio": round(ratio, 3),
                "target": target,
                "pass": ratio <= target,
            }
        )
    return rows


def to_markdown(rows: list[dict]) -> str:
    """The rows as a markdown table (ratio = ours / oracle, pass = ratio <= target)."""

    def cell(row: dict, key: str) -> str:
        value = row.get(key)
        if key == "ratio" and value is not None:
            return f"{value:.2f}x"
        if key == "target":
            return f"<= {value:.2f}x"
        if key == "pass":
            return "yes" if value else ("error: " + row["error"] if "error" in row else "no")
        return "-" if value is None else str(value)

    lines = [
        "| op | shape | ours ms | oracle ms | ratio | target | pass |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    lines += ["| " + " | ".join(cell(row, key) for key in COLUMNS) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def save(rows: list[dict], directory: Path = RESULTS_DIR) -> None:
    """Writes `layers.md` and `layers.json` into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    header = (
        "# Layers: forward + backward time, ours vs. TensorFlow/Keras\n\n"
        f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores. A `tf.function` computes the "
        "loss and its gradients with respect to the input and the weights; ours and the oracle "
        "run alternately after a warm-up. ms: median over the rounds; ratio: median of the "
        "per-round ratios ours / oracle (robust to load drifting on a shared machine); "
        "pass: ratio <= target.\n\n"
    )
    atomic_write_text(directory / "layers.md", header + to_markdown(rows))
    atomic_write_text(directory / "layers.json", json.dumps(rows, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.layers", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller batch, fewer repeats")
    args = parser.parse_args(argv)
    rows = run(quick=args.quick)
    print(to_markdown(rows))
    save(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
