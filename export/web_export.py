"""The `web` row of an export: write the page folder, verify its model, check it in a browser.

`export_web` converts the int8 file the page runs (the `tflite_int8` conversion with float32
input/output: LiteRT.js 2.5 tensors are float32, int32 or uint8, so the int8 file keeps its
QUANTIZE/DEQUANTIZE inside), writes `exports/<name>/web/` (`export.web.write_web_folder`),
verifies `model.tflite` in the Python LiteRT interpreter against Keras like every other file,
and, before the folder is published, opens it in headless Chromium (`export.browser`): test
images go through the page's own path, their outputs must equal the Python interpreter's, the
in-browser median latency goes into the report and a screenshot is written next to the page.

Where no Chromium or no LiteRT.js is installed, the row is not a crash and does not fail the
export: LiteRT.js missing makes the row `unsupported` with the command that installs it
(`make web-deps`); Chromium missing leaves the row verified in Python only, with a one-line
note saying the browser check did not run and why.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from export.formats import TFLITE, ExportFormat
from export.verify import FileReport, Reference, verify_file
from zoo.errors import first_line

# Test images sent through the page during an export (the whole check takes ~10 s for 500).
BROWSER_CHECK_IMAGES = 500


def _failed(fmt: ExportFormat, message: str, status: str = "failed") -> FileReport:
    return FileReport.not_written(fmt, f"{fmt.name}: {message}", status)


def export_web(
    fmt: ExportFormat,
    model: Any,
    source: Any,
    data: Any,
    metadata: dict[str, Any],
    reference: Reference,
    out_dir: Path,
    options: Any,
    browser_images: int = BROWSER_CHECK_IMAGES,
) -> tuple[FileReport, Path | None]:
    """Writes and checks `out_dir/web`.

    Args:
        fmt: the `web` format row.
        model, source, data, metadata, reference, out_dir, options: the export's (see
            `export.exporter.export_model`).
        browser_images: test images sent through the page in the browser check.

    Returns:
        The row's report and the folder (None when it was not written).
    """
    from export.exporter import _build_tflite, _embed_tflite_metadata, _log
    from export.metadata import own_entry
    from export.tflite_export import io_quantization, read_metadata
    from export.web import MODEL_FILE, SCREENSHOT_FILE, WEB_DIR, write_web_folder

    if source.task != "classification":
        return _failed(fmt, "the web page is for image classifiers only", "unsupported"), None
    output_name = metadata["output"]["name"]
    try:
        content = _build_tflite(fmt, model, source, data, "float32", output_name, options, 0)
        content = _embed_tflite_metadata(content, metadata, fmt, output_name)
    except Exception as error:  # a converter failure is a row, not a crash
        return _failed(fmt, f"conversion failed: {type(error).__name__}: {error}"), None

    from export.browser import browser_unavailable_reason, check_page

    reason = browser_unavailable_reason()
    checks: dict[str, Any] = {}

    def browser_check(folder: Path) -> None:
        if reason is None:
            images = data.x_test[: min(browser_images, len(data.x_test))]
            _log(options, f"  checking the page in headless Chromium ({len(images)} test images)")
            try:
                checks["result"] = check_page(folder, images, screenshot=SCREENSHOT_FILE)
            except Exception as error:  # the page is still written; the row fails
                checks["error"] = f"{type(error).__name__}: {first_line(error)}"

    try:
        folder = write_web_folder(
            out_dir,
            model,
            dict(metadata, files={MODEL_FILE: own_entry(read_metadata(content))}),
            content,
            io_quantization(content),
            data.x_calibration,
            data.x_test,
            data.y_test,
            metadata.get("class_names"),
            before_publish=browser_check,
        )
    except FileNotFoundError as error:  # LiteRT.js not installed: a note, not a failed export
        return _failed(fmt, first_line(error), "unsupported"), None
    except (ValueError, RuntimeError) as error:
        return _failed(fmt, first_line(error)), None
    report = verify_file(
        folder / MODEL_FILE,
        dataclasses.replace(fmt, runtime=TFLITE),
        reference,
        latency_runs=options.latency_runs,
    )
    report.runtime, report.file = fmt.runtime, f"{WEB_DIR}/"
    report.notes["model_file"] = f"{WEB_DIR}/{MODEL_FILE} (the size columns are this file's)"
    report.notes["folder_bytes"] = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    report.notes["serve"] = (
        f"python -m http.server -d {folder} 8000, then open http://localhost:8000/"
    )
    result = checks.get("result")
    if "error" in checks:
        report.passed, report.status = False, "failed"
        report.failure = f"{fmt.name}: the browser check failed: {checks['error']}"
        return report, folder
    if result is None:
        report.notes["browser_check"] = f"not run: {reason}"
        return report, folder
    report.notes["browser_check"] = result.summary()
    report.notes["browser_latency_us"] = round(result.median_latency_us, 1)
    if result.screenshot is not None:
        report.notes["screenshot"] = f"[{WEB_DIR}/{SCREENSHOT_FILE}]({WEB_DIR}/{SCREENSHOT_FILE})"
    if not result.passed:
        problems = []
        if result.top1_equal != result.images or result.identical != result.images:
            problems.append(
                f"page outputs differ from Python LiteRT (top-1 equal {result.top1_equal}/"
                f"{result.images}, identical {result.identical}/{result.images})"
            )
        if result.console_errors:
            problems.append(f"console error: {result.console_errors[0][:200]}")
        report.passed, report.status = False, "failed"
        report.failure = f"{fmt.name}: " + "; ".join(problems)
    return report, folder
