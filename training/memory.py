"""Will a training run fit in memory? An estimate before the first step, a measure after.

The estimate, in bytes, for a model of `P` parameters and a global batch of `B` examples:

    weights, gradients, optimizer slots, copies:  4 P (2 + s + e + WEIGHT_COPIES)
    activations:                                   4 B * 2 * sum over layers of output elements
    runtime:                                       RUNTIME_BYTES (TensorFlow, oneDNN, tf.data)

where `s` is the optimizer's slots per weight (SGD with momentum 1, Adam and AdamW 2), `e`
is 1 with an exponential moving average of the weights, and `WEIGHT_COPIES` counts the other
weight-sized buffers a run holds at its peak (the checkpoint being serialized, the best model
read back for the test figures, kernels reordered by oneDNN), fitted to measured peaks; every
activation is kept for the backward pass and gets a gradient of its size (the factor 2).
Mixed precision is ignored: the estimate errs on the safe side. A run whose estimate exceeds
the memory available to the process (`MemAvailable`, or the cgroup's limit when lower) is
refused before it starts, with the largest batch that fits, instead of being killed by the
kernel mid-epoch.

Example:

>>> estimate = training_memory_bytes(model, batch_size=128, optimizer="sgd", ema=False)
>>> check_fits(estimate, 128, "alexnet_bn")
"""

from __future__ import annotations

import resource
from pathlib import Path

import numpy as np
import tensorflow as tf

__all__ = [
    "RUNTIME_BYTES",
    "WEIGHT_COPIES",
    "available_memory_bytes",
    "check_fits",
    "peak_resident_bytes",
    "training_memory_bytes",
]

RUNTIME_BYTES = 1 << 30
# Fitted to AlexNet-BN's measured peak resident memory (docs/MEASUREMENTS.md, "AlexNet
# training recipe"): without it the estimate undershot by 30 %.
WEIGHT_COPIES = 4
_SLOTS = {"sgd": 1, "adam": 2, "adamw": 2}


def _activation_elements(model: tf.keras.Model) -> int:
    """Output elements of one example, summed over the layers."""
    total = 0
    for layer in model.layers:
        shape = getattr(layer, "output", None)
        shape = getattr(shape, "shape", None)
        if shape is not None and all(d is not None for d in shape[1:]):
            total += int(np.prod(shape[1:]))
    return total


def training_memory_bytes(
    model: tf.keras.Model, batch_size: int, optimizer: str, ema: bool
) -> dict[str, int]:
    """The estimate of the module docstring, by part, and its `total`."""
    params = int(model.count_params())
    state = 4 * params * (2 + _SLOTS.get(optimizer, 2) + int(ema) + WEIGHT_COPIES)
    activations = 4 * batch_size * 2 * _activation_elements(model)
    return {
        "weights_and_optimizer": state,
        "activations": activations,
        "runtime": RUNTIME_BYTES,
        "total": state + activations + RUNTIME_BYTES,
        "per_example": 8 * _activation_elements(model),
    }


def _cgroup_limit() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
    return None


def available_memory_bytes() -> int | None:
    """Memory this process may still use: `MemAvailable`, or the cgroup's limit when lower."""
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except OSError:
        return None
    limit = _cgroup_limit()
    return min(v for v in (available, limit) if v is not None) if available or limit else None


def check_fits(
    estimate: dict[str, int], batch_size: int, model_name: str, available: int | None = None
) -> None:
    """Refuses a run whose estimate exceeds the available memory.

    Raises:
        ValueError: naming the batch size, the estimate, what is available and the largest
            batch size that fits.
    """
    available = available_memory_bytes() if available is None else available
    if available is None or estimate["total"] <= available:
        return
    room = available - estimate["weights_and_optimizer"] - estimate["runtime"]
    largest = max(0, room // max(estimate["per_example"], 1))
    hint = f"--batch-size {largest} or less fits" if largest else "no batch size fits"
    raise ValueError(
        f"--batch-size {batch_size}: training {model_name} needs about "
        f"{estimate['total'] / 2**30:.1f} GiB (weights and optimizer "
        f"{estimate['weights_and_optimizer'] / 2**30:.1f}, activations "
        f"{estimate['activations'] / 2**30:.1f}, runtime {estimate['runtime'] / 2**30:.1f}), "
        f"this machine has {available / 2**30:.1f} GiB available; {hint}"
    )


def peak_resident_bytes() -> int:
    """The process's peak resident set size so far (Linux: `ru_maxrss` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
