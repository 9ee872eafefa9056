"""Verification: every exported file runs in its real runtime and is compared with Keras.

TFLite files run in the ai-edge-litert `Interpreter` (LiteRT, with its default XNNPACK
delegate, one thread), ONNX files in ONNX Runtime (CPU, one thread). For each file:

- classifiers: test accuracy, its drop against Keras in percentage points, top-1 agreement
  with the Keras model (% of test images with the same arg-max);
- reconstruction models: MSE and PSNR against the target (the input image), PSNR drop;
- max abs difference of the outputs against Keras (`max |y_file - y_keras|`, dequantized;
  for reconstruction models as a fraction of the output range, 255 or 1);
- file size, median latency per image at batch 1, the op list (without delegation), and for
  integer files the ops that still compute in float between input and output quantization.

A file passes when it meets its format's `Tolerance` (see `export.formats`).

Example:

>>> reference = keras_reference(model, x_test, y_test, task="classification")
>>> report = verify_file("exports/m/m_int8.tflite", FORMATS["tflite_int8"], reference)
>>> report.passed, report.agreement
(True, 99.8)
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from export.formats import ONNX, TFLITE, ExportFormat
from layers._native_logs import quiet_native_stderr
from zoo.errors import first_line

FLOAT_DTYPES = (np.float32, np.float16, np.float64)
QUANTIZE_BOUNDARY_OPS = frozenset({"QUANTIZE", "DEQUANTIZE"})


def median_call_us(call, runs: int = 200, warmup: int = 20) -> float:
    """Median wall time of `call()` in microseconds, after `warmup` untimed calls."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e6)


@dataclasses.dataclass
class Reference:
    """The Keras model's outputs on the test images, the yardstick of every file."""

    x: np.ndarray
    y: np.ndarray
    outputs: np.ndarray
    task: str
    accuracy: float | None = None
    mse: float | None = None
    psnr: float | None = None
    peak: float = 255.0

    def target(self) -> np.ndarray:
        """The reconstruction target: the input image on the model's output scale."""
        return self.x * (self.peak / 255.0)


def _mse_psnr(outputs: np.ndarray, target: np.ndarray, peak: float) -> tuple[float, float]:
    mse = float(np.mean((outputs.astype(np.float64) - target) ** 2))
    psnr = float("inf") if mse == 0 else 10.0 * math.log10(peak**2 / mse)
    return mse, psnr


def keras_reference(
    model: tf.keras.Model, x: np.ndarray, y: np.ndarray, task: str, batch_size: int = 256
) -> Reference:
    """Runs `model` in inference mode on `x` and scores it (accuracy or MSE/PSNR)."""
    outputs = np.concatenate(
        [
            np.asarray(model(x[i : i + batch_size], training=False), dtype=np.float32)
            for i in range(0, len(x), batch_size)
        ]
    )
    reference = Reference(x=x, y=y, outputs=outputs, task=task)
    if task == "classification":
        reference.accuracy = float(np.mean(outputs.argmax(-1) == y) * 100.0)
    else:
        # Outputs on the pixel scale [0, 255] or on [0, 1]: the target follows the model.
        reference.peak = 255.0 if float(np.max(outputs)) > 2.0 else 1.0
        reference.mse, reference.psnr = _mse_psnr(outputs, reference.target(), reference.peak)
    return reference


class TFLiteRunner:
    """A `.tflite` file in the LiteRT interpreter: float in, float out (quantized I/O is
    quantized/dequantized with the tensors' own scale and zero point)."""

    def __init__(self, content: bytes, num_threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self.content = content
        self.delegate = "XNNPACK (default)"
        with quiet_native_stderr():  # "INFO: Created TensorFlow Lite XNNPACK delegate"
            try:
                self.interpreter = Interpreter(model_content=content, num_threads=num_threads)
                self.interpreter.allocate_tensors()
            except RuntimeError as error:
                if "XNNPACK" not in str(error):
                    raise
                # Files XNNPACK cannot take (e.g. int8 graphs with float islands such as LRN's
                # POW) still run on LiteRT's built-in kernels, as an app would fall back to.
                from ai_edge_litert.interpreter import OpResolverType

                self.delegate = "none (XNNPACK failed to prepare)"
                self.interpreter = Interpreter(
                    model_content=content,
                    num_threads=num_threads,
                    experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                )
                self.interpreter.allocate_tensors()
        (self.input,) = self.interpreter.get_input_details()
        (self.output,) = self.interpreter.get_output_details()

    def _quantize(self, x: np.ndarray) -> np.ndarray:
        dtype = np.dtype(self.input["dtype"])
        scale, zero_point = self.input["quantization"]
        if dtype.kind == "f" or scale == 0:
            return x.astype(dtype)
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)

    def _dequantize(self, y: np.ndarray) -> np.ndarray:
        scale, zero_point = self.output["quantization"]
        if np.dtype(self.output["dtype"]).kind == "f" or scale == 0:
            return y.astype(np.float32)
        return ((y.astype(np.float32) - zero_point) * scale).astype(np.float32)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Outputs for `x` `(N, H, W, C)`, one image at a time (the file's batch is 1)."""
        outputs = []
        for image in x:
            self.interpreter.set_tensor(self.input["index"], self._quantize(image[None]))
            self.interpreter.invoke()
            outputs.append(self._dequantize(self.interpreter.get_tensor(self.output["index"])))
        return np.concatenate(outputs)

    def latency_us(self, image: np.ndarray, runs: int = 200, warmup: int = 20) -> float:
        """Median wall time of one `invoke()` at batch 1, in microseconds."""
        self.interpreter.set_tensor(self.input["index"], self._quantize(image[None]))
        return median_call_us(self.interpreter.invoke, runs, warmup)

    def latency_builtin_us(self, image: np.ndarray, runs: int = 200, warmup: int = 20) -> float:
        """`latency_us` with LiteRT's built-in kernels only (no default XNNPACK delegate).

        On this x86 CPU XNNPACK wins for float32 but loses for int8 (LeNet-5: ~80 vs ~40 us),
        so the report shows both and an app picks the faster setting per file."""
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        runner = TFLiteRunner.__new__(TFLiteRunner)
        runner.content = self.content
        runner.interpreter = Interpreter(
            model_content=self.content,
            num_threads=1,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        runner.interpreter.allocate_tensors()
        runner.input, runner.output = self.input, self.output
        return runner.latency_us(image, runs=runs, warmup=warmup)

    def op_names(self) -> list[str]:
        """The file's operators in execution order, before any delegate takes them."""
        return [op["op_name"] for op in _undelegated_ops(self.content)[0]]

    def float_ops(self) -> list[str]:
        """Ops other than QUANTIZE/DEQUANTIZE that read or write a float tensor."""
        ops, dtypes = _undelegated_ops(self.content)
        found = []
        for op in ops:
            if op["op_name"] in QUANTIZE_BOUNDARY_OPS:
                continue
            tensors = [int(i) for i in (*op["inputs"], *op["outputs"]) if int(i) >= 0]
            if any(dtypes[i] in FLOAT_DTYPES for i in tensors):
                found.append(op["op_name"])
        return found


def _undelegated_ops(content: bytes) -> tuple[list[dict[str, Any]], dict[int, Any]]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_content=content,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    dtypes = {t["index"]: t["dtype"] for t in interpreter.get_tensor_details()}
    return interpreter._get_ops_details(), dtypes


def tflite_op_names(content: bytes) -> list[str]:
    """Operator names of a TFLite flatbuffer in execution order (no delegation)."""
    return [op["op_name"] for op in _undelegated_ops(content)[0]]


def tflite_float_ops(content: bytes) -> list[str]:
    """Ops of a TFLite flatbuffer that compute in float between input and output quantization."""
    return TFLiteRunner(content).float_ops()


class OnnxRunner:
    """An `.onnx` file in ONNX Runtime (CPU execution provider, one thread)."""

    def __init__(self, content: bytes, num_threads: int = 1):
        import onnxruntime as ort

        self.content = content
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(content, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        return np.concatenate(
            [
                self.session.run(None, {self.input_name: x[i : i + batch_size]})[0]
                for i in range(0, len(x), batch_size)
            ]
        ).astype(np.float32)

    def latency_us(self, image: np.ndarray, runs: int = 200, warmup: int = 20) -> float:
        feed = {self.input_name: np.ascontiguousarray(image[None], dtype=np.float32)}
        return median_call_us(lambda: self.session.run(None, feed), runs, warmup)

    def op_names(self) -> list[str]:
        import onnx

        return [node.op_type for node in onnx.load_from_string(self.content).graph.node]

    def float_ops(self) -> list[str]:
        return []


@dataclasses.dataclass
class FileReport:
    """What verification measured for one file (a row of report.md / report.json)."""

    format: str
    file: str
    runtime: str
    size_bytes: int
    tolerance: str
    accuracy: float | None = None
    accuracy_drop_pp: float | None = None
    agreement: float | None = None
    max_abs_diff: float | None = None
    mse: float | None = None
    psnr: float | None = None
    psnr_drop_db: float | None = None
    latency_us: float | None = None
    latency_builtin_us: float | None = None
    ops: list[str] = dataclasses.field(default_factory=list)
    float_ops: list[str] = dataclasses.field(default_factory=list)
    passed: bool = True
    failure: str | None = None
    status: str = "ok"
    notes: dict[str, Any] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def not_written(cls, fmt: ExportFormat, failure: str, status: str = "failed") -> FileReport:
        """The row of a format whose file was not written: `failed` (the export fails) or
        `unsupported` (a note: the model cannot have this format, the export goes on)."""
        return cls(
            format=fmt.name,
            file="-",
            runtime=fmt.runtime,
            size_bytes=0,
            tolerance=fmt.tolerance.describe(),
            passed=status == "unsupported",
            status=status,
            failure=failure,
        )


def make_runner(path: str | os.PathLike, runtime: str, num_threads: int = 1):
    """The runtime wrapper for a file: `TFLiteRunner` or `OnnxRunner`."""
    content = Path(path).read_bytes()
    if runtime == TFLITE:
        return TFLiteRunner(content, num_threads)
    if runtime == ONNX:
        return OnnxRunner(content, num_threads)
    raise ValueError(f"Unknown runtime {runtime!r}; accepted: {TFLITE}, {ONNX}")


def verify_file(
    path: str | os.PathLike,
    fmt: ExportFormat,
    reference: Reference,
    *,
    latency_runs: int = 200,
) -> FileReport:
    """Runs the file at `path` in its runtime on the reference images and checks `fmt`'s
    tolerance; a runtime that cannot load or run the file is a failure, not a crash."""
    path = Path(path)
    report = FileReport(
        format=fmt.name,
        file=path.name,
        runtime=fmt.runtime,
        size_bytes=path.stat().st_size,
        tolerance=fmt.tolerance.describe(reference.task),
    )
    try:
        runner = make_runner(path, fmt.runtime)
        outputs = runner.predict(reference.x)
        report.latency_us = runner.latency_us(reference.x[0], runs=latency_runs)
        if isinstance(runner, TFLiteRunner):
            report.latency_builtin_us = runner.latency_builtin_us(reference.x[0], latency_runs)
            report.notes["litert_delegate"] = runner.delegate
        report.ops = runner.op_names()
        report.float_ops = runner.float_ops()
    except Exception as error:  # any runtime failure fails this file
        first = first_line(error)
        report.passed, report.status = False, "failed"
        report.failure = f"{fmt.runtime} could not run {path.name}: {type(error).__name__}: {first}"
        return report
    outputs = outputs.reshape(reference.outputs.shape)
    score_outputs(report, outputs, reference)
    apply_tolerance(report, fmt, reference.task)
    return report


def score_outputs(report: FileReport, outputs: np.ndarray, reference: Reference) -> None:
    """Fills `report` with how `outputs` (shaped like the reference's) score against Keras:
    accuracy, its drop and top-1 agreement (with tie counts) for classifiers, MSE/PSNR and its
    drop for reconstruction models, and the max abs difference."""
    # Reconstruction outputs are images (on [0, 255] or [0, 1]): the difference is measured
    # as a fraction of the output range, so the same bounds hold for both scales.
    scale = 1.0 if reference.task == "classification" else reference.peak
    difference = float(np.max(np.abs(outputs - reference.outputs)))
    report.max_abs_diff = difference / scale
    size = float(np.max(np.abs(reference.outputs)))
    report.notes["max_rel_diff"] = difference / size if size > 0 else difference
    if reference.task == "classification":
        predicted = outputs.argmax(-1)
        report.accuracy = float(np.mean(predicted == reference.y) * 100.0)
        report.accuracy_drop_pp = reference.accuracy - report.accuracy
        report.agreement = float(np.mean(predicted == reference.outputs.argmax(-1)) * 100.0)
        if outputs.shape[-1] > 1:
            # Quantized logits can tie (int8 has 256 levels); ties count as disagreements
            # above, and how many there were is reported so they can be told apart.
            top2 = np.sort(outputs, axis=-1)[:, -2:]
            report.notes["top1_ties"] = int(np.sum(top2[:, 1] == top2[:, 0]))
            report.notes["agreement_ties_by_keras"] = float(
                np.mean(_break_ties_by(outputs, reference.outputs) == reference.outputs.argmax(-1))
                * 100.0
            )
    else:
        report.mse, report.psnr = _mse_psnr(outputs, reference.target(), reference.peak)
        report.psnr_drop_db = reference.psnr - report.psnr


def _break_ties_by(outputs: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Arg-max of `outputs` where a tie for the top is settled by `reference`'s preference
    among the tied classes (for reporting only: `agreement` counts ties as np.argmax does)."""
    tied = outputs == outputs.max(axis=-1, keepdims=True)
    return np.where(tied, reference, -np.inf).argmax(-1)


def apply_tolerance(report: FileReport, fmt: ExportFormat, task: str) -> None:
    """Marks `report` failed, naming the format and each broken bound, when it breaks
    `fmt.tolerance`."""
    failures = check_tolerance(report, fmt, task)
    if failures:
        report.passed, report.status = False, "failed"
        report.failure = f"{fmt.name}: " + "; ".join(failures)


def check_tolerance(report: FileReport, fmt: ExportFormat, task: str) -> list[str]:
    """The ways `report` breaks `fmt.tolerance` (empty when it passes)."""
    tolerance, failures = fmt.tolerance, []
    if not np.isfinite(report.max_abs_diff if report.max_abs_diff is not None else 0.0):
        failures.append("outputs are not finite")
    if tolerance.max_abs_diff is not None and report.max_abs_diff > tolerance.max_abs_diff:
        failures.append(f"max abs diff {report.max_abs_diff:.3g} > {tolerance.max_abs_diff:g}")
    relative = report.notes.get("max_rel_diff")
    if tolerance.max_rel_diff is not None and not relative <= tolerance.max_rel_diff:
        failures.append(
            f"max diff {relative:.3g} x max |keras output| > {tolerance.max_rel_diff:g}"
        )
    if (
        task == "classification"
        and tolerance.max_accuracy_drop_pp is not None
        and report.accuracy_drop_pp > tolerance.max_accuracy_drop_pp
    ):
        failures.append(
            f"accuracy drop {report.accuracy_drop_pp:.2f} pp > "
            f"{tolerance.max_accuracy_drop_pp:g} pp"
        )
    if (
        task == "reconstruction"
        and tolerance.max_psnr_drop_db is not None
        and report.psnr_drop_db > tolerance.max_psnr_drop_db
    ):
        failures.append(
            f"PSNR drop {report.psnr_drop_db:.2f} dB > {tolerance.max_psnr_drop_db:g} dB"
        )
    return failures
