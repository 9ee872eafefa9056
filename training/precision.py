"""Choosing the mixed-precision policy: `--mixed-precision auto` uses what the hardware runs
natively.

`auto` resolves, in order, to:

- `bfloat16` on TPUs and on GPUs of CUDA compute capability >= 8.0 (Ampere and later), whose
  tensor cores compute in bfloat16 with float32's exponent range (no loss scaling needed);
- `float16` on CUDA GPUs of compute capability 7.x (Volta, Turing): float16 tensor cores, with
  Keras's dynamic loss scaling;
- `bfloat16` on a CPU with bfloat16 instructions (Linux `/proc/cpuinfo` flags `amx_bf16` or
  `avx512_bf16`: Intel Sapphire Rapids and later, AMD Zen 4 and later), which oneDNN uses for
  bfloat16 convolutions and matrix products;
- `off` (float32) otherwise: without native support, 16-bit types are emulated and slower.

Models keep their variables in float32 and compute in the 16-bit type (Keras's `mixed_*`
policies); the zoo's logits layers stay float32. The run directory records the resolved policy,
never `auto`.

Example:

>>> resolve_mixed_precision("auto")  # on a Sapphire Rapids CPU
'bfloat16'
"""

from __future__ import annotations

import sys
from pathlib import Path

import tensorflow as tf

__all__ = ["MIXED_PRECISION_CHOICES", "native_mixed_precision", "resolve_mixed_precision"]

MIXED_PRECISION_CHOICES = ("auto", "off", "float16", "bfloat16")
CPU_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


def _cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags Linux reports (empty elsewhere or when unreadable)."""
    if not sys.platform.startswith("linux"):
        return frozenset()
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def _gpu_policy(capabilities: list[tuple[int, int] | None]) -> str:
    """The policy every listed GPU runs natively (the weakest GPU decides)."""
    if not capabilities or any(c is None for c in capabilities):
        return "off"
    weakest = min(capabilities)
    if weakest >= (8, 0):
        return "bfloat16"
    if weakest >= (7, 0):
        return "float16"
    return "off"


def native_mixed_precision(
    cpu_flags: frozenset[str] | None = None,
    gpu_capabilities: list[tuple[int, int] | None] | None = None,
    tpu: bool | None = None,
) -> str:
    """The 16-bit type this machine computes natively: "bfloat16", "float16" or "off".

    Args:
        cpu_flags: CPU feature flags (default: read from `/proc/cpuinfo` on Linux).
        gpu_capabilities: CUDA compute capability per GPU (default: from
            `tf.config.experimental.get_device_details` for every visible GPU).
        tpu: whether TPUs are visible (default: asks TensorFlow).
    """
    if tpu is None:
        tpu = bool(tf.config.list_physical_devices("TPU"))
    if tpu:
        return "bfloat16"
    if gpu_capabilities is None:
        gpu_capabilities = [
            tf.config.experimental.get_device_details(gpu).get("compute_capability")
            for gpu in tf.config.list_physical_devices("GPU")
        ]
    if gpu_capabilities:
        return _gpu_policy([None if c is None else tuple(c) for c in gpu_capabilities])
    flags = _cpu_flags() if cpu_flags is None else cpu_flags
    return "bfloat16" if CPU_BF16_FLAGS & set(flags) else "off"


def resolve_mixed_precision(value: str, strategy: tf.distribute.Strategy | None = None) -> str:
    """`auto` -> `native_mixed_precision()`; the other choices are returned as given.

    Args:
        value: "auto", "off", "float16" or "bfloat16".
        strategy: the run's strategy; a `TPUStrategy` means bfloat16 (its TPUs may be remote,
            not among this host's devices).
    """
    if value not in MIXED_PRECISION_CHOICES:
        raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION_CHOICES}, got {value!r}")
    if value != "auto":
        return value
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "bfloat16"
    return native_mixed_precision()
