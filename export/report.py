"""`report.md` and `report.json`: one row per exported file, Keras first.

Columns (Ultralytics' benchmark table plus parity): format, file, size, size relative to
float32 TFLite, accuracy (or PSNR), its drop, top-1 agreement with Keras, max abs difference,
median latency per image at batch 1 on one thread, ops, and pass/fail against the tolerance.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from export.formats import FORMATS
from export.recommend import recommendations
from export.verify import FileReport, Reference
from training.atomic import atomic_write_text

REPORT_MD = "report.md"
REPORT_JSON = "report.json"
_INTEGER_FORMATS = {name for name, f in FORMATS.items() if f.quantization in ("int8", "qat_int8")}


def _fmt(value: float | None, spec: str, empty: str = "-") -> str:
    return empty if value is None else format(value, spec)


def table_rows(
    reports: Sequence[FileReport], reference: Reference, keras_size: int | None
) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the report table, as strings."""
    classification = reference.task == "classification"
    header = ["format", "file", "size KB", "gzip KB", "x fp32"]
    header += ["acc %", "drop pp", "agree %"] if classification else ["MSE", "PSNR dB", "drop dB"]
    header += ["max abs diff", "latency us", "no-XNNPACK us", "browser us", "float ops", "status"]
    fp32 = next((r.size_bytes for r in reports if r.format == "tflite_fp32"), None)
    keras_row = ["keras", "model.keras", _fmt(keras_size and keras_size / 1024, ".1f"), "-", "-"]
    keras_row += (
        [_fmt(reference.accuracy, ".2f"), "-", "-"]
        if classification
        else [_fmt(reference.mse, ".4g"), _fmt(reference.psnr, ".2f"), "-"]
    )
    keras_row += ["-", "-", "-", "-", "-", "reference"]
    rows = [keras_row]
    for r in reports:
        if r.file == "-":  # not written (unsupported, or its build failed)
            rows.append([r.format, "-", *["-"] * (len(header) - 3), r.status.upper()])
            continue
        gzip_size = r.notes.get("gzip_size_bytes")
        row = [r.format, r.file, _fmt(r.size_bytes / 1024, ".1f")]
        row.append(_fmt(gzip_size and gzip_size / 1024, ".1f"))
        row.append(_fmt(fp32 and r.size_bytes / fp32, ".3f"))
        if classification:
            row += [
                _fmt(r.accuracy, ".2f"),
                _fmt(r.accuracy_drop_pp, "+.2f"),
                _fmt(r.agreement, ".2f"),
            ]
        else:
            row += [_fmt(r.mse, ".4g"), _fmt(r.psnr, ".2f"), _fmt(r.psnr_drop_db, "+.2f")]
        row += [
            _fmt(r.max_abs_diff, ".2e"),
            _fmt(r.latency_us, ".1f"),
            _fmt(r.latency_builtin_us, ".1f"),
            _fmt(r.notes.get("browser_latency_us"), ".1f"),
            str(len(r.float_ops)) if r.format in _INTEGER_FORMATS and r.ops else "-",
            "ok" if r.passed else r.status.upper(),
        ]
        rows.append(row)
    if any(TFLM_ARENA in r.notes for r in reports):
        header, rows = _with_tflm_columns(header, rows, reports)
    return header, rows


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown pipe table (also readable as plain text)."""
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    separator = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), separator, *(line(r) for r in rows)])


def write_report(
    out_dir: str | os.PathLike,
    reports: Sequence[FileReport],
    reference: Reference,
    context: Mapping[str, Any],
    keras_size: int | None = None,
) -> str:
    """Writes `report.md` and `report.json` to `out_dir` (atomically) and returns the table."""
    out_dir = Path(out_dir)
    header, rows = table_rows(reports, reference, keras_size)
    table = format_table(header, rows)
    lines = [f"# Export report: {context.get('name', '')}", ""]
    for key in (
        "model_file",
        "model",
        "weights",
        "dataset",
        "task",
        "test_samples",
        "calibration_samples",
        "io",
        "runtime",
    ):
        if context.get(key) is not None:
            lines.append(f"- {key.replace('_', ' ')}: {context[key]}")
    lines += [f"- **warning**: {warning}" for warning in context.get("warnings") or []]
    lines += ["", table, ""]
    lines += ["## What to ship", "", *recommendations(reports, reference.task), ""]
    lines += [WHAT_TO_SHIP_NOTE, "", "## Columns", "", *COLUMNS_GLOSSARY, ""]
    if any(TFLM_ARENA in r.notes for r in reports):
        lines += [TFLM_COLUMNS_NOTE, ""]
    for r in reports:
        lines.append(f"## {r.format}: {r.file}")
        lines.append("")
        lines.append(f"- tolerance: {r.tolerance}")
        lines.append(f"- status: {'ok' if r.passed else r.status}")
        if r.failure:
            lines.append(f"- failure: {r.failure}")
        if r.ops:
            lines.append(f"- ops ({len(r.ops)}): {', '.join(sorted(set(r.ops)))}")
        if r.float_ops:
            lines.append(f"- float ops: {', '.join(r.float_ops)}")
        for key, value in r.notes.items():
            lines.append(f"- {key}: {value}")
        lines.append("")
    payload = {
        "context": dict(context),
        "keras": {
            "file": "model.keras",
            "size_bytes": keras_size,
            "accuracy": reference.accuracy,
            "mse": reference.mse,
            "psnr": reference.psnr,
        },
        "files": [r.as_dict() for r in reports],
        "what_to_ship": recommendations(reports, reference.task),
        "passed": all(r.passed for r in reports if r.status != "unsupported"),
    }
    atomic_write_text(out_dir / REPORT_MD, "\n".join(lines))
    atomic_write_text(out_dir / REPORT_JSON, json.dumps(payload, indent=2, default=_json_default))
    return table


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


WHAT_TO_SHIP_NOTE = (
    "Picked among the files that passed verification and kept the quality bound (drop <= "
    "0.5 pp and agreement >= 99 % for a classifier, PSNR drop <= 0.5 dB for a reconstruction "
    "model), by the latency and size measured on this machine (one CPU thread, batch 1): "
    "re-measure on the device, where kernels and delegates differ."
)
COLUMNS_GLOSSARY = (
    "- `format`, `file`: the format's name (`python -m export --help` describes each) and the "
    "file written; `keras` is the reference every file is compared with.",
    "- `size KB`, `gzip KB`: the file's bytes, and gzip -9 of them (what an app download or a "
    "web page transfers; int8 files compress less than float ones).",
    "- `x fp32`: size relative to the float32 .tflite (0.25 is a quarter of it).",
    "- `acc %`: top-1 accuracy on the test images; `drop pp`: Keras's accuracy minus the "
    "file's, in percentage points (+0.10: the file is 0.1 points worse; negative: better).",
    "- `agree %`: test images on which the file's top-1 class equals Keras's (fidelity, "
    "independent of the labels).",
    "- `MSE`, `PSNR dB`, `drop dB` (reconstruction models): mean squared error against the "
    "clean image, its PSNR with peak 255, and Keras's PSNR minus the file's.",
    "- `max abs diff`: the largest difference of any output element from Keras's (int8 files: "
    "after dequantization).",
    "- `latency us`: median microseconds per image, batch 1, one thread, LiteRT with its "
    "default XNNPACK delegate or ONNX Runtime CPU; `no-XNNPACK us`: LiteRT's built-in kernels "
    "only (OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES); `browser us`: the web page's "
    "model in LiteRT.js (WASM) in headless Chromium.",
    "- `float ops` (integer formats): how many ops compute in float between the input and "
    "output quantization; `0`: an integer-only graph (what NPUs and microcontrollers need); "
    "`-`: not applicable (a float format, or no op list).",
    "- `status`: `ok` met its tolerance (below each file's section); `FAILED` broke it (the "
    "export exits 1); `UNSUPPORTED`: the model cannot have this format (a note).",
)

TFLM_ARENA = "tflm_arena_bytes"
TFLM_COLUMNS_NOTE = (
    "TFLM (the tflm bundle's model in the TFLite Micro interpreter, tflite-micro's reference "
    "kernels): != LiteRT: int8 output elements that differ from the same file in LiteRT "
    "(default XNNPACK / reference kernels, OpResolverType.BUILTIN_REF), of all test outputs; "
    "LiteRT's reference kernels requantize FULLY_CONNECTED with single rounding, TFLM with "
    "TFLite's classic double rounding, so an element can differ by one int8 step; XNNPACK also "
    "rounds ADD and convolutions its own way (tflm_max_int8_steps_* below); "
    "arena B: the settings header's arena (the smallest arena TFLM ran in + margin); flash B: "
    "the model array; TFLM host us: median invoke on this host (x86, reference kernels), not "
    "MCU time: see tflm_cortex_m4_estimate below for a Cortex-M4 estimate."
)


def _with_tflm_columns(header, rows, reports):
    """Adds the TFLM columns before `status` (only when the report has a tflm row)."""
    names = ["!= LiteRT", "!= LiteRT ref", "arena B", "flash B", "TFLM host us"]
    header = [*header[:-1], *names, header[-1]]
    out = [[*rows[0][:-1], *["-"] * len(names), rows[0][-1]]]
    for row, r in zip(rows[1:], reports, strict=True):
        n = r.notes
        cells = ["-"] * len(names)
        if TFLM_ARENA in n:
            total = n.get("tflm_output_elements")
            cells = [
                f"{n['tflm_differing_vs_litert']}/{total}",
                f"{n['tflm_differing_vs_litert_reference']}/{total}",
                str(n[TFLM_ARENA]),
                str(n["tflm_flash_bytes"]),
                _fmt(n.get("tflm_host_us"), ".1f"),
            ]
        out.append([*row[:-1], *cells, row[-1]])
    return header, out
