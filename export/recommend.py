"""What to ship, per deployment target, from the figures an export measured.

`recommendations(reports, task)` picks one file per target among the files that passed
verification and kept the model's quality (`QUALITY_BOUND`: an accuracy drop of at most
0.5 pp and 99 % top-1 agreement for classifiers, a PSNR drop of at most 0.5 dB for
reconstruction models), and says which figures decided:

| target | runtime | picks |
| --- | --- | --- |
| phone CPU | LiteRT, XNNPACK | the fastest `.tflite` (batch 1, one thread) |
| phone NPU / GPU | NNAPI, Edge TPU; GPU | the most accurate integer-only int8 file; fp16 |
| microcontroller | TFLite Micro | the `tflm` bundle, else the int8 file to bundle |
| server | ONNX Runtime | the fastest `.onnx` |

Example:

>>> for line in recommendations(reports, "classification"):
...     print(line)
- phone CPU (LiteRT, XNNPACK): lenet5_int8.tflite: 9.6 us per image, 92 KB, drop +0.04 pp
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from export.formats import FORMATS
from export.verify import FileReport

__all__ = ["QUALITY_BOUND", "recommendations"]

QUALITY_BOUND = {"drop_pp": 0.5, "agreement": 99.0, "drop_db": 0.5}


def _keeps_quality(r: FileReport, task: str) -> bool:
    if not r.passed or r.status != "ok" or r.file == "-":
        return False
    if task == "classification":
        drop = r.accuracy_drop_pp or 0.0
        return drop <= QUALITY_BOUND["drop_pp"] and (r.agreement or 0.0) >= 99.0
    return (r.psnr_drop_db or 0.0) <= QUALITY_BOUND["drop_db"]


def _figures(r: FileReport, task: str) -> str:
    quality = (
        f"drop {r.accuracy_drop_pp:+.2f} pp, agreement {r.agreement:.2f} %"
        if task == "classification" and r.accuracy_drop_pp is not None
        else f"PSNR drop {r.psnr_drop_db:+.2f} dB"
        if r.psnr_drop_db is not None
        else "outputs equal to Keras within tolerance"
    )
    latency = f"{r.latency_us:.1f} us per image, " if r.latency_us is not None else ""
    return f"{r.file}: {latency}{r.size_bytes / 1024:.0f} KB, {quality}"


def _fastest(candidates: Sequence[FileReport]) -> FileReport | None:
    timed = [r for r in candidates if r.latency_us is not None]
    return min(timed, key=lambda r: (r.latency_us, r.size_bytes)) if timed else None


def _integer_only(r: FileReport) -> bool:
    fmt = FORMATS.get(r.format)
    return bool(fmt and fmt.quantization in ("int8", "qat_int8") and r.ops and not r.float_ops)


def _phone_cpu(good: Sequence[FileReport], task: str) -> str:
    best = _fastest([r for r in good if r.runtime == "tflite"])
    return _figures(best, task) if best else "no .tflite file kept the quality bound"


def _accelerator(good: Sequence[FileReport], task: str) -> str:
    integer = [r for r in good if _integer_only(r) and r.runtime == "tflite"]
    npu = max(integer, key=lambda r: r.accuracy or -(r.psnr_drop_db or 0.0), default=None)
    gpu = next((r for r in good if r.format == "tflite_fp16"), None)
    parts = [
        f"NPU: {_figures(npu, task)} (integer-only graph)"
        if npu
        else "NPU: no integer-only int8 file kept the quality bound (--formats tflite_int8)"
    ]
    if gpu:
        parts.append(f"GPU delegate: {_figures(gpu, task)}")
    return "; ".join(parts)


def _microcontroller(good: Sequence[FileReport], task: str) -> str:
    tflm = next((r for r in good if r.runtime == "tflm"), None)
    if tflm:
        arena, flash = tflm.notes.get("tflm_arena_bytes"), tflm.notes.get("tflm_flash_bytes")
        return f"{tflm.file}: arena {arena} B, flash {flash} B, outputs identical to LiteRT"
    integer = [r for r in good if _integer_only(r)]
    if integer:
        return f"{integer[0].file}, bundled with --formats tflm (no tflm row in this export)"
    return "no integer-only file kept the quality bound"


def _server(good: Sequence[FileReport], task: str) -> str:
    best = _fastest([r for r in good if r.runtime == "onnx"])
    return _figures(best, task) if best else "no .onnx file kept the quality bound"


TARGETS: Sequence[tuple[str, tuple[str, ...], Callable[[Sequence[FileReport], str], str]]] = (
    ("phone CPU (LiteRT, XNNPACK)", ("tflite",), _phone_cpu),
    ("phone NPU / GPU delegate", ("tflite",), _accelerator),
    ("microcontroller (TFLite Micro)", ("tflite", "tflm"), _microcontroller),
    ("server (ONNX Runtime)", ("onnx",), _server),
)
_SUGGESTED = {"tflite": "tflite_int8", "tflm": "tflm", "onnx": "onnx_fp32,onnx_int8"}


def recommendations(reports: Sequence[FileReport], task: str) -> list[str]:
    """One Markdown bullet per deployment target: the file to ship and the figures why."""
    good = [r for r in reports if _keeps_quality(r, task)]
    lines = []
    for target, runtimes, pick in TARGETS:
        if any(r.runtime in runtimes and r.file != "-" for r in reports):
            lines.append(f"- {target}: {pick(good, task)}")
        else:
            lines.append(f"- {target}: no such file in this export (--formats "
                         f"{_SUGGESTED[runtimes[-1]]})")  # fmt: skip
    return lines
