"""The export formats: one table, one row per file kind `python -m export` can write.

Adding a format is adding a row to `FORMATS` (and, for a new quantization scheme, a branch in the
converter the row names). Every row says which runtime verifies the file and which tolerance the
file must meet against the Keras model before it is called done.

Example:

>>> [f.name for f in resolve_formats("tflite_fp32,onnx_fp32")]
['tflite_fp32', 'onnx_fp32']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

TFLITE = "tflite"
ONNX = "onnx"
WEB = "web"
RUNTIMES = {TFLITE: "ai-edge-litert Interpreter", ONNX: "ONNX Runtime (CPU)"}
RUNTIMES[WEB] = "LiteRT.js (WASM, CPU) in headless Chromium, and ai-edge-litert"
TFLM = "tflm"
RUNTIMES[TFLM] = "TFLite Micro interpreter (tflite-micro, reference kernels)"


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """How far a file may be from its Keras model.

    Args:
        max_abs_diff: largest allowed `max |y_file - y_keras|` over the test outputs (float
            formats), or None for no such bound.
        max_rel_diff: largest allowed `max |y_file - y_keras| / max |y_keras|` over the test
            outputs, or None: a bound on rounding that scales with the outputs' size (float16
            weights round each weight to 2**-11 of its size, whatever the logits' scale).
        max_accuracy_drop_pp: largest allowed drop of test accuracy in percentage points
            (classifiers, quantized formats), or None.
        max_psnr_drop_db: largest allowed PSNR drop in dB (reconstruction models, quantized
            formats), or None.
    """

    max_abs_diff: float | None = None
    max_rel_diff: float | None = None
    max_accuracy_drop_pp: float | None = None
    max_psnr_drop_db: float | None = None

    def describe(self, task: str | None = None) -> str:
        """The bounds as text; with `task`, only those that apply to it."""
        parts = []
        if self.max_abs_diff is not None:
            parts.append(f"max abs diff <= {self.max_abs_diff:g}")
        if self.max_rel_diff is not None:
            parts.append(f"max diff <= {self.max_rel_diff:g} x max |keras output|")
        if self.max_accuracy_drop_pp is not None and task != "reconstruction":
            parts.append(f"accuracy drop <= {self.max_accuracy_drop_pp:g} pp")
        if self.max_psnr_drop_db is not None and task != "classification":
            parts.append(f"PSNR drop <= {self.max_psnr_drop_db:g} dB")
        return ", ".join(parts) or "none"


FLOAT32_TOLERANCE = Tolerance(max_abs_diff=1e-4)
# Four times float16's unit roundoff (2**-11), relative to the outputs' size: an absolute bound
# failed or passed the same file depending on the trained logits' scale.
FLOAT16_TOLERANCE = Tolerance(max_rel_diff=2e-3)
INT_TOLERANCE = Tolerance(max_accuracy_drop_pp=1.0, max_psnr_drop_db=1.0)


@dataclasses.dataclass(frozen=True)
class ExportFormat:
    """One row of the format table.

    Args:
        name: the name users pass to `--formats`.
        suffix: the file name ending, e.g. `_int8.tflite`; the file is `<model><suffix>`
            (a folder for `tflm` and `web`).
        runtime: what builds and verifies it, and so the exporter's builder for the row:
            `"tflite"` (the LiteRT interpreter), `"onnx"` (ONNX Runtime), `"tflm"` (TFLite
            Micro's interpreter), `"web"` (LiteRT.js in headless Chromium).
        options: what the converter does (`quantization`: none, float16, dynamic_int8, int8,
            int16x8, qat_int8; `io`: whether `--io` applies; `rewrite`: a deployment rewrite).
        tolerance: the bound the file must meet, else the export fails naming this format.
        description: one line for `--help` and the report.
    """

    name: str
    suffix: str
    runtime: str
    options: Mapping[str, Any]
    tolerance: Tolerance
    description: str

    @property
    def quantization(self) -> str:
        return self.options["quantization"]

    @property
    def needs_calibration(self) -> bool:
        return self.quantization in ("int8", "int16x8")

    @property
    def needs_training_data(self) -> bool:
        return self.quantization == "qat_int8"

    @property
    def is_float(self) -> bool:
        return self.quantization in ("none", "float16")

    @property
    def accepts(self) -> frozenset[str]:
        """The `ExportOptions` this row takes beyond those every row takes (`FORMAT_OPTIONS`):
        `io` where `--io` applies, `calibration_samples` where calibration sets the ranges
        (QAT starts from them), `qat_samples` for QAT."""
        taken = set()
        if self.options.get("io"):
            taken.add("io")
        if self.needs_calibration or self.needs_training_data:
            taken.add("calibration_samples")
        if self.needs_training_data:
            taken.add("qat_samples")
        return frozenset(taken)


# The options some rows take and others do not, with their command-line flags.
FORMAT_OPTIONS: Mapping[str, str] = MappingProxyType(
    {"io": "--io", "calibration_samples": "--calibration-samples", "qat_samples": "--qat-samples"}
)


def _row(name, suffix, runtime, tolerance, description, **options) -> tuple[str, ExportFormat]:
    options.setdefault("io", False)
    return name, ExportFormat(
        name, suffix, runtime, MappingProxyType(options), tolerance, description
    )


FORMATS: Mapping[str, ExportFormat] = MappingProxyType(
    dict(
        [
            _row(
                "tflite_fp32",
                "_fp32.tflite",
                TFLITE,
                FLOAT32_TOLERANCE,
                "TFLite float32",
                quantization="none",
            ),
            _row(
                "tflite_fp16",
                "_fp16.tflite",
                TFLITE,
                FLOAT16_TOLERANCE,
                "TFLite float16 weights (dequantized to float32 at load)",
                quantization="float16",
            ),
            _row(
                "tflite_dynamic_int8",
                "_dynamic_int8.tflite",
                TFLITE,
                INT_TOLERANCE,
                "TFLite dynamic-range int8 (int8 weights, float activations)",
                quantization="dynamic_int8",
            ),
            _row(
                "tflite_int8",
                "_int8.tflite",
                TFLITE,
                INT_TOLERANCE,
                "TFLite full-integer int8, calibrated on training images",
                quantization="int8",
                io=True,
            ),
            _row(
                "tflite_int8_s2d",
                "_int8_s2d.tflite",
                TFLITE,
                INT_TOLERANCE,
                "TFLite full-integer int8 with few-channel convolutions as space-to-depth "
                "convolutions (same math, faster under XNNPACK, larger file)",
                quantization="int8",
                io=True,
                rewrite="s2d_conv",
            ),
            _row(
                "tflite_int16x8",
                "_int16x8.tflite",
                TFLITE,
                INT_TOLERANCE,
                "TFLite int16 activations x int8 weights, calibrated on training images",
                quantization="int16x8",
            ),
            _row(
                "tflite_qat_int8",
                "_qat_int8.tflite",
                TFLITE,
                INT_TOLERANCE,
                "TFLite full-integer int8 from quantization-aware training (tfmot)",
                quantization="qat_int8",
                io=True,
            ),
            _row(
                "onnx_fp32",
                "_fp32.onnx",
                ONNX,
                FLOAT32_TOLERANCE,
                "ONNX float32 (tf2onnx, opset 17)",
                quantization="none",
                opset=17,
            ),
            _row(
                "onnx_int8",
                "_int8.onnx",
                ONNX,
                INT_TOLERANCE,
                "ONNX int8 QDQ (ONNX Runtime static quantization, same calibration data)",
                quantization="int8",
                opset=17,
            ),
            _row(
                "tflm",
                "/tflm/",
                TFLM,
                INT_TOLERANCE,
                "TensorFlow Lite Micro bundle folder tflm/: the int8 file (int8 I/O) as a C "
                "array, its op resolver, settings (arena measured in TFLM); run in TFLM",
                quantization="int8",
            ),
            _row(
                "web",
                "/web/",
                WEB,
                INT_TOLERANCE,
                "web page folder web/: the int8 TFLite file (float32 I/O) in LiteRT.js, "
                "feature maps, receptive fields, filters; checked in headless Chromium",
                quantization="int8",
            ),
        ]
    )
)

# What `python -m export RUN` writes when --formats is not given: every format that needs no
# extra training (QAT runs only when asked with --qat-epochs), but one int8 TFLite file: the
# smallest; tflite_int8_s2d (same integer math, faster under XNNPACK, ~1.3x larger) is asked
# for by name.
DEFAULT_FORMATS: tuple[str, ...] = (
    "tflite_fp32",
    "tflite_fp16",
    "tflite_dynamic_int8",
    "tflite_int8",
    "tflite_int16x8",
    "onnx_fp32",
    "onnx_int8",
    "tflm",  # left out, with a note in the report, for a model too large for an MCU
    "web",
)


def resolve_formats(spec: str | Sequence[str] | None) -> list[ExportFormat]:
    """Turns `"all"`, a comma-separated string or a list of names into format rows.

    Raises:
        ValueError: naming an unknown format and listing the accepted ones.
    """
    if spec is None:
        names: list[str] = list(DEFAULT_FORMATS)
    elif isinstance(spec, str):
        names = [n.strip() for n in spec.split(",") if n.strip()]
    else:
        names = [str(n).strip() for n in spec]
    if names == ["all"]:
        return list(FORMATS.values())
    if not names:
        raise ValueError(f"No export format given; accepted: all, {', '.join(FORMATS)}")
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise ValueError(
            f"Unknown export format {unknown[0]!r}; accepted: all, {', '.join(FORMATS)}"
        )
    return [FORMATS[n] for n in dict.fromkeys(names)]
