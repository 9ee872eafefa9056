"""The `tflm` format: build the bundle in memory, refuse what cannot run, write it, verify it.

`prepare_tflm` runs before the exporter writes anything: the model is refused (a
`TflmUnsupportedError`, a ValueError: exit 2 on the command line) if its size alone rules out a
microcontroller, else it is converted by `export.tflite_export.convert_tflite` with
`quantization="int8", io="int8"` (the same calibration images as `tflite_int8`), loaded and
given an offline memory plan that runs unfused activations in place (`export.tflm_plan`),
invoked in the TFLM runtime (an operator TFLM lacks is named), its arena measured, its
measured sizes checked again, and the C sources generated. `export_tflm` then writes the
directory atomically and verifies the bundle's model in TFLM over the test images: accuracy
(or PSNR), agreement with Keras, the int8 outputs against the same file in LiteRT, arena,
flash, host time and a Cortex-M4 estimate.

Example:

>>> prepared = prepare_tflm(source, model, data, class_names, metadata)
>>> report = export_tflm(prepared, out_dir, FORMATS["tflm"], reference)
>>> report.notes["tflm_arena_measured_bytes"], report.size_bytes  # LeNet-5, 3 epochs
(9272, 68064)
"""

from __future__ import annotations

import dataclasses
import gzip
import os
from pathlib import Path
from typing import Any

import numpy as np

from export.dense_as_conv import dense_as_conv
from export.formats import FORMATS, ExportFormat
from export.tflm import BundleSpec, bundle_sources, write_bundle
from export.tflm_fit import (
    check_fits,
    cmsis_nn_scratch_bytes,
    cortex_m4_estimate,
    footprint_lower_bound,
)
from export.tflm_plan import plan_in_place
from export.tflm_runtime import ArenaMeasurement, TflmRunner, check_tflm_ops, measure_arena
from export.verify import FileReport, Reference, apply_tolerance, score_outputs

BUNDLE_DIR = "tflm"


@dataclasses.dataclass
class PreparedTflm:
    """A bundle built in memory and proven loadable in TFLM, not yet written."""

    spec: BundleSpec
    files: dict[str, str]
    arena: ArenaMeasurement
    mcu: Any


def refuse_if_too_large(source) -> None:
    """Raises `TflmUnsupportedError` naming the flash and arena `source.model` would need at
    least, when that alone exceeds the microcontroller limits (nothing converted yet)."""
    check_fits(source.name, *footprint_lower_bound(source.model))


def prepare_tflm(source, model, data, class_names, metadata, *, progress: bool = False):
    """Converts, runs in TFLM, measures and generates the bundle, all in memory.

    Args:
        source: the `ModelSource`.
        model: the Keras model to convert (possibly pruned).
        data: `ExportData` (calibration images, and a test image to invoke with).
        class_names: labels for the settings header (None for reconstruction).
        metadata: the app metadata embedded in the `.tflite` like the other TFLite files.
        progress: draw the calibration progress bar.

    Returns:
        A `PreparedTflm`.

    Raises:
        TflmUnsupportedError: too large for a microcontroller, or an operator TFLM lacks.
    """
    from export.metadata import embed_in_tflite
    from export.tflite_export import convert_tflite
    from export.verify import tflite_op_names

    refuse_if_too_large(source)
    output_name = metadata["output"]["name"]
    # Dense layers as 1x1 convolutions run bit-identically in TFLM and LiteRT; one scale per
    # weight tensor keeps their per-channel parameters out of the flash.
    content = convert_tflite(
        dense_as_conv(model),
        source.input_shape,
        "int8",
        calibration=data.x_calibration,
        io="int8",
        output_name=output_name,
        progress=progress,
        per_channel=False,
    )
    content = embed_in_tflite(content, metadata, FORMATS["tflm"], output_name)
    # Unfused activations (LeNet-5's TANH) in place: 12,720 -> 9,200 arena bytes on LeNet-5.
    content = plan_in_place(content)
    image = data.x_test[0] if len(data.x_test) else data.x_calibration[0]
    try:
        runner = check_tflm_ops(content, image)
    except ValueError as error:
        raise type(error)(f"tflm: {source.name}: {error}") from None
    arena = measure_arena(content, image)
    check_fits(source.name, len(content), arena.bytes, measured=True)
    (in_scale, in_zero), (out_scale, out_zero) = (
        runner.input_quantization,
        runner.output_quantization,
    )
    spec = BundleSpec(
        name=source.name,
        model=content,
        ops=tflite_op_names(content),
        input_shape=[int(d) for d in runner.input["shape"]],
        input_scale=in_scale,
        input_zero_point=in_zero,
        output_scale=out_scale,
        output_zero_point=out_zero,
        output_shape=[int(d) for d in runner.output["shape"]],
        labels=list(class_names or []) if source.task == "classification" else [],
        arena_measured_bytes=arena.bytes,
        arena_scratch_bytes=cmsis_nn_scratch_bytes(content),
        task=source.task,
        mean=source.mean,
        std=source.std,
    )
    return PreparedTflm(spec, bundle_sources(spec), arena, cortex_m4_estimate(model))


def litert_int8_outputs(content: bytes, x_int8: np.ndarray, reference_kernels: bool) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from layers._native_logs import quiet_native_stderr

    kwargs = (
        {"experimental_op_resolver_type": OpResolverType.BUILTIN_REF} if reference_kernels else {}
    )
    with quiet_native_stderr():
        interpreter = Interpreter(model_content=content, num_threads=1, **kwargs)
        interpreter.allocate_tensors()
    (detail,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    outputs = []
    for image in x_int8:
        interpreter.set_tensor(detail["index"], image[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(out["index"]).copy())
    return np.concatenate(outputs)


def verify_tflm(
    prepared: PreparedTflm, fmt: ExportFormat, reference: Reference, latency_runs: int = 200
) -> FileReport:
    """Runs the bundle's model in TFLM (with the header's arena size) on the reference images.

    Returns:
        A `FileReport` whose notes hold `tflm_arena_bytes`, `tflm_flash_bytes`,
        `tflm_differing_vs_litert` (int8 output elements that differ from the same file in
        LiteRT with its default XNNPACK delegate), `..._reference` (LiteRT's reference
        kernels), `tflm_host_us` and the Cortex-M4 estimate.
    """
    spec = prepared.spec
    report = FileReport(
        format=fmt.name,
        file=f"{BUNDLE_DIR}/",
        runtime=fmt.runtime,
        size_bytes=len(spec.model),
        tolerance=fmt.tolerance.describe(reference.task),
    )
    runner = TflmRunner(spec.model, arena_size=spec.arena_bytes)
    x_int8 = runner.quantize(reference.x)
    y_tflm = np.concatenate([runner.invoke_int8(image[None]) for image in x_int8])
    score_outputs(report, runner.dequantize(y_tflm).reshape(reference.outputs.shape), reference)
    for key, reference_kernels in (("", False), ("_reference", True)):
        y_litert = litert_int8_outputs(spec.model, x_int8, reference_kernels).astype(np.int32)
        report.notes[f"tflm_differing_vs_litert{key}"] = int(np.sum(y_litert != y_tflm))
        steps = np.abs(y_litert - y_tflm.astype(np.int32))
        report.notes[f"tflm_max_int8_steps_vs_litert{key}"] = int(steps.max(initial=0))
        if reference.task == "classification":
            top1 = y_litert.argmax(-1) != y_tflm.argmax(-1)
            report.notes[f"tflm_top1_differing_vs_litert{key}"] = int(np.sum(top1))
    report.ops = list(spec.ops)
    report.latency_us = None
    report.notes.update(_bundle_notes(prepared, y_tflm, runner, reference, latency_runs))
    apply_tolerance(report, fmt, reference.task)
    return report


def _bundle_notes(prepared, y_tflm, runner, reference, latency_runs) -> dict[str, Any]:
    spec, arena = prepared.spec, prepared.arena
    return {
        "tflm_output_elements": int(y_tflm.size),
        "tflm_images": len(reference.x),
        "tflm_arena_bytes": spec.arena_bytes,
        "tflm_arena_measured_bytes": arena.bytes,
        "tflm_arena_scratch_bytes": spec.arena_scratch_bytes,
        "tflm_arena_breakdown": arena.breakdown,
        "tflm_flash_bytes": len(spec.model),
        "tflm_host_us": runner.latency_us(reference.x[0], runs=latency_runs),
        "tflm_ops": spec.unique_ops,
        "tflm_cortex_m4_estimate_ms": prepared.mcu.milliseconds,
        "tflm_cortex_m4_estimate": prepared.mcu.describe(),
        "gzip_size_bytes": len(gzip.compress(spec.model, 9)),
    }


def export_tflm(
    prepared: PreparedTflm,
    out_dir: str | os.PathLike,
    fmt: ExportFormat,
    reference: Reference,
    latency_runs: int = 200,
) -> tuple[Path, FileReport]:
    """Writes the bundle to `out_dir/tflm/` (atomically, with the `.tflite` beside the
    sources) and verifies it.

    Returns:
        (the bundle directory, its `FileReport`).
    """
    files: dict[str, str | bytes] = dict(prepared.files)
    files[f"{prepared.spec.ident}.tflite"] = prepared.spec.model
    directory = write_bundle(Path(out_dir) / BUNDLE_DIR, files)
    return directory, verify_tflm(prepared, fmt, reference, latency_runs)
