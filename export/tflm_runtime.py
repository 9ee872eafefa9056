"""A `.tflite` file in the TensorFlow Lite for Microcontrollers (TFLM) runtime.

The `tflite-micro` package ships TFLM's C++ interpreter for Python (reference kernels, built
for this host). `TflmRunner` feeds it raw pixels quantized with the input tensor's own scale
and zero point and returns its int8 outputs; `measure_arena` finds the smallest tensor arena
the runtime allocates and invokes the model in (a bisection over `arena_size`, each probe a
real `AllocateTensors` + `Invoke`) and keeps TFLM's own `print_allocations` breakdown of where
the bytes go; `check_tflm_ops` runs the model once and names the first operator TFLM lacks.

Example:

>>> runner = TflmRunner(content, arena_size=16_384)
>>> runner.predict_int8(x_test[:2]).shape
(2, 10)
>>> measure_arena(content, x_test[0]).bytes
8784
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import sys
import tempfile
from collections.abc import Iterator

import numpy as np

# The arena the runner gets when none is given: generous for anything that passes
# `export.tflm_fit` (whose arena limit is 256 KB).
DEFAULT_ARENA_BYTES = 1 << 20


class TflmUnsupportedError(ValueError):
    """The TFLM runtime cannot run the model (an operator it lacks, or an allocation error)."""


@contextlib.contextmanager
def captured_native_stderr() -> Iterator[list[str]]:
    """Collects what C/C++ code writes to file descriptor 2 during the block into the list
    yielded (filled when the block ends); nothing reaches the terminal."""
    sys.stderr.flush()
    lines: list[str] = []
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines.extend(capture.read().decode(errors="replace").splitlines())


def _interpreter(content: bytes, arena_size: int, preserve: bool = False):
    from tflite_micro.python.tflite_micro import runtime

    config = (
        runtime.InterpreterConfig.kPreserveAllTensors
        if preserve
        else runtime.InterpreterConfig.kAllocationRecording
    )
    return runtime.Interpreter.from_bytes(content, arena_size=arena_size, intrepreter_config=config)


def _unsupported_op(log: list[str]) -> str | None:
    for line in log:
        found = re.search(r"Didn't find op for builtin opcode '([^']+)'", line)
        if found:
            return found.group(1)
    return None


class TflmRunner:
    """A full-integer `.tflite` file in the TFLM interpreter.

    Args:
        content: the `.tflite` bytes (int8 input and output).
        arena_size: tensor arena bytes.

    Raises:
        TflmUnsupportedError: naming the operator TFLM lacks, or TFLM's own error lines.
    """

    def __init__(self, content: bytes, arena_size: int = DEFAULT_ARENA_BYTES):
        with captured_native_stderr() as log:
            try:
                self.interpreter = _interpreter(content, arena_size)
            except RuntimeError as error:
                failure = error
            else:
                failure = None
        if failure is not None:
            op = _unsupported_op(log)
            if op:
                raise TflmUnsupportedError(
                    f"operator {op} is not in the TFLite Micro runtime (tflite-micro "
                    f"{_version()}), so the model cannot run on a microcontroller"
                ) from None
            detail = "; ".join(line.strip() for line in log if line.strip())[:300]
            raise TflmUnsupportedError(f"TFLite Micro could not load the model: {detail}")
        self.input = self.interpreter.get_input_details(0)
        self.output = self.interpreter.get_output_details(0)
        for detail, what in ((self.input, "input"), (self.output, "output")):
            if np.dtype(detail["dtype"]) != np.int8:
                raise TflmUnsupportedError(
                    f"the TFLM bundle needs an int8 {what}, got {np.dtype(detail['dtype']).name}"
                )

    @property
    def input_quantization(self) -> tuple[float, int]:
        q = self.input["quantization_parameters"]
        return float(q["scales"][0]), int(q["zero_points"][0])

    @property
    def output_quantization(self) -> tuple[float, int]:
        q = self.output["quantization_parameters"]
        return float(q["scales"][0]), int(q["zero_points"][0])

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Raw float pixels -> the int8 input, with the input tensor's scale and zero point."""
        scale, zero_point = self.input_quantization
        return np.clip(np.round(x / scale + zero_point), -128, 127).astype(np.int8)

    def dequantize(self, y: np.ndarray) -> np.ndarray:
        scale, zero_point = self.output_quantization
        return ((y.astype(np.float32) - zero_point) * scale).astype(np.float32)

    def invoke_int8(self, image_int8: np.ndarray) -> np.ndarray:
        """One inference on an already quantized `(1, H, W, C)` int8 image."""
        self.interpreter.set_input(image_int8, 0)
        self.interpreter.invoke()
        return np.array(self.interpreter.get_output(0), copy=True)

    def predict_int8(self, x: np.ndarray) -> np.ndarray:
        """int8 outputs for raw float images `(N, H, W, C)`, one image at a time."""
        return np.concatenate([self.invoke_int8(self.quantize(image[None])) for image in x])

    def latency_us(self, image: np.ndarray, runs: int = 200, warmup: int = 10) -> float:
        """Median wall time of one `invoke()` on this host (reference kernels), microseconds."""
        from export.verify import median_call_us

        self.interpreter.set_input(self.quantize(image[None]), 0)
        return median_call_us(self.interpreter.invoke, runs, warmup)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tflite-micro")
    except PackageNotFoundError:  # pragma: no cover - the package is a dependency
        return "unknown"


def check_tflm_ops(content: bytes, image: np.ndarray) -> TflmRunner:
    """Loads `content` in TFLM and invokes it once on `image` (raw pixels `(H, W, C)`).

    Returns:
        The runner, ready for more images.

    Raises:
        TflmUnsupportedError: naming the first operator TFLM lacks, or why it failed.
    """
    runner = TflmRunner(content)
    with captured_native_stderr() as log:
        try:
            runner.invoke_int8(runner.quantize(image[None]))
        except RuntimeError:
            failed = True
        else:
            failed = False
    if failed:
        detail = "; ".join(line.strip() for line in log if line.strip())[:300]
        raise TflmUnsupportedError(f"TFLite Micro could not invoke the model: {detail}")
    return runner


@dataclasses.dataclass(frozen=True)
class ArenaMeasurement:
    """The tensor arena the TFLM runtime needs for one model.

    Attributes:
        bytes: the smallest `arena_size` that allocated and invoked the model.
        allocations: TFLM's `print_allocations` lines (RecordingMicroAllocator) at that size.
        breakdown: from those lines: `total`, `head` (the planned activation buffers, reused
            between ops), `tail` (persistent: tensor structs, op data, node structs), and
            per-kind persistent bytes.
    """

    bytes: int
    allocations: tuple[str, ...]
    breakdown: dict[str, int]


def _fits(content: bytes, arena_size: int, image_int8: np.ndarray) -> bool:
    try:
        interpreter = _interpreter(content, arena_size)
        interpreter.set_input(image_int8, 0)
        interpreter.invoke()
    except RuntimeError:
        return False
    return True


def _parse_allocations(lines: list[str]) -> dict[str, int]:
    breakdown: dict[str, int] = {}
    for line in lines:
        part = re.search(r"Arena allocation (\w+) (\d+) bytes", line)
        if part:
            breakdown[part.group(1)] = int(part.group(2))
        kind = re.search(r"'([^']+)' used (\d+) bytes", line)
        if kind:
            breakdown[kind.group(1)] = int(kind.group(2))
    return breakdown


def measure_arena(content: bytes, image: np.ndarray, upper: int = DEFAULT_ARENA_BYTES):
    """The smallest tensor arena TFLM runs `content` in, by bisection over real allocations.

    Args:
        content: the `.tflite` bytes.
        image: one raw-pixel input `(H, W, C)` to invoke with.
        upper: an arena size known to be enough.

    Returns:
        An `ArenaMeasurement`.

    Raises:
        TflmUnsupportedError: the model does not run even with `upper` bytes.
    """
    probe = TflmRunner(content, upper)
    image_int8 = probe.quantize(image[None])
    with captured_native_stderr():
        if not _fits(content, upper, image_int8):
            raise TflmUnsupportedError(f"TFLite Micro needs more than {upper} bytes of arena")
        low, high = 1, upper
        while low < high:
            middle = (low + high) // 2
            if _fits(content, middle, image_int8):
                high = middle
            else:
                low = middle + 1
    interpreter = _interpreter(content, low)
    interpreter.set_input(image_int8, 0)
    interpreter.invoke()
    with captured_native_stderr() as log:
        interpreter.print_allocations()
    lines = tuple(line.strip() for line in log if line.strip())
    return ArenaMeasurement(bytes=low, allocations=lines, breakdown=_parse_allocations(log))
