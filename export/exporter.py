"""The export pipeline: model + data -> files -> verification -> report.

`export_model` converts a loaded `ModelSource` into every requested format (see
`export.formats.FORMATS`), writes each file atomically into the export directory with the
metadata an app needs, verifies it in its real runtime against the Keras model, and writes
`report.md` / `report.json`. It never raises for a file that breaks its tolerance: the result
says which formats failed (the CLI turns that into exit code 1).

Example:

>>> source = load_source("runs/lenet5-fashion_mnist")
>>> result = export_model(source, ExportOptions(formats=resolve_formats("tflite_fp32")))
>>> result.passed, result.files["tflite_fp32"].name
(True, 'lenet5-fashion_mnist_fp32.tflite')
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from export.data import ExportData, load_export_data
from export.formats import (
    FORMAT_OPTIONS,
    FORMATS,
    ONNX,
    TFLITE,
    TFLM,
    WEB,
    ExportFormat,
    resolve_formats,
)
from export.metadata import LABELS_FILE, app_metadata, files_metadata
from export.report import write_report
from export.source import ModelSource, run_test_size, unfinished_run_warnings
from export.tflite_export import IO_TYPES
from export.verify import FileReport, keras_reference, verify_file
from training.atomic import atomic_write_bytes, atomic_write_text
from zoo.errors import first_line

DEFAULT_EXPORT_ROOT = Path("exports")
METADATA_FILE = "metadata.json"


@dataclasses.dataclass
class ExportOptions:
    """What to export and how.

    Args:
        formats: format rows to write (`resolve_formats(...)`); tflite_qat_int8 is added when
            `qat_epochs > 0`.
        out_dir: export directory; default `exports/<source name>`.
        io: input/output type of the full-integer int8 TFLite files: float32, int8, uint8.
        calibration_samples: training images for PTQ calibration (TFLite and ONNX int8).
        test_samples: test images for verification; None or 0 for the whole test split.
        qat_epochs: epochs of quantization-aware fine-tuning (0: no QAT file).
        qat_samples: training images for QAT fine-tuning (and pruning); all of them by default,
            the run's validation images held out of QAT.
        prune: target sparsity in [0, 1) of magnitude pruning before export (0: none).
        dataset: data set spec overriding the run's (needed for a bare .keras file).
        data_dir: where the data set's files are.
        latency_runs: timed invocations per file for the median latency.
        progress: draw progress bars and status lines on stderr.
        tflm_optional: a model that cannot run on a microcontroller (too large, or an op
            TFLM lacks) gets an `unsupported` tflm row instead of an error; the CLI sets it
            for its default set and `all`, so only `--formats tflm` by name refuses (exit 2).
    """

    formats: list[ExportFormat] = dataclasses.field(default_factory=lambda: resolve_formats(None))
    out_dir: str | os.PathLike | None = None
    io: str = "float32"
    calibration_samples: int = 500
    test_samples: int | None = None
    qat_epochs: int = 0
    qat_samples: int = 60000
    prune: float = 0.0
    dataset: str | None = None
    data_dir: str | None = None
    latency_runs: int = 200
    progress: bool = True
    tflm_optional: bool = False

    def validate(self) -> None:
        """Raises ValueError naming the bad option and what is accepted."""
        if self.io not in IO_TYPES:
            raise ValueError(f"Unknown --io {self.io!r}; accepted: {', '.join(IO_TYPES)}")
        if self.calibration_samples < 1:
            raise ValueError(f"--calibration-samples must be >= 1, got {self.calibration_samples}")
        if self.test_samples is not None and self.test_samples < 0:
            raise ValueError(f"--test-samples must be >= 0 (0: all), got {self.test_samples}")
        if self.qat_epochs < 0:
            raise ValueError(f"--qat-epochs must be >= 0, got {self.qat_epochs}")
        if not 0.0 <= self.prune < 1.0:
            raise ValueError(f"--prune must be a sparsity in [0, 1), got {self.prune}")
        if self.latency_runs < 1:
            raise ValueError(f"latency_runs must be >= 1, got {self.latency_runs}")


@dataclasses.dataclass
class ExportResult:
    """What an export wrote and measured."""

    out_dir: Path
    files: dict[str, Path]
    reports: list[FileReport]
    table: str

    @property
    def failed(self) -> list[FileReport]:
        return [r for r in self.reports if not r.passed and r.status != "unsupported"]

    @property
    def passed(self) -> bool:
        return not self.failed


def _log(options: ExportOptions, message: str) -> None:
    if options.progress:
        print(message, file=sys.stderr, flush=True)


def check_writable(directory: Path) -> None:
    """Raises ValueError if `directory` cannot be created or written (checked before any
    file is written, so a bad --out leaves nothing behind)."""
    probe = directory
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ValueError(f"Export directory {directory} is not usable: {probe} is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"Export directory {directory} is not writable ({probe})")
    try:  # os.access says yes to root; a real probe also catches /sys, read-only mounts
        os.rmdir(tempfile.mkdtemp(prefix=".write-test-", dir=probe))
    except OSError as error:
        raise ValueError(
            f"Export directory {directory} is not writable ({probe}: {error.strerror or error})"
        ) from None


def _needs_data_for_training(formats: list[ExportFormat], options: ExportOptions) -> bool:
    return options.prune > 0 or any(f.needs_training_data for f in formats)


def plan_formats(options: ExportOptions) -> list[ExportFormat]:
    """The format rows to export: `options.formats`, plus tflite_qat_int8 if QAT is asked."""
    formats = list(options.formats)
    names = [f.name for f in formats]
    if options.qat_epochs > 0 and "tflite_qat_int8" not in names:
        formats += resolve_formats("tflite_qat_int8")
    return formats


def check_options_apply(formats: list[ExportFormat], options: ExportOptions) -> None:
    """Raises ValueError for an option set away from its default that none of `formats` takes
    (`--io int8` with only onnx_fp32, `--qat-samples` without QAT or pruning), naming the
    option and the formats that take it; checked before any work, like Ultralytics' exporter.
    """
    defaults = ExportOptions(formats=[])
    chosen = ", ".join(f.name for f in formats) or "none"
    for field, flag in FORMAT_OPTIONS.items():
        value = getattr(options, field)
        if value == getattr(defaults, field) or any(field in f.accepts for f in formats):
            continue
        if field == "qat_samples" and options.prune > 0:
            continue  # pruning fine-tunes on them too
        takers = [f.name for f in FORMATS.values() if field in f.accepts]
        also = " and --prune" if field == "qat_samples" else ""
        raise ValueError(
            f"{flag} {value} applies to {', '.join(takers)}{also}; the chosen formats "
            f"({chosen}) do not take it: drop {flag} or add one of those formats"
        )


@dataclasses.dataclass
class _Job:
    """What every row's builder needs: the model, its data and where the files go."""

    source: ModelSource
    model: Any
    data: ExportData
    metadata: dict[str, Any]
    reference: Any
    out_dir: Path
    options: ExportOptions
    qat_epochs: int
    notes: dict[str, Any]
    tflm_prepared: Any = None
    float_onnx: bytes | None = None
    files_metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    warnings: list[str] = dataclasses.field(default_factory=list)

    @property
    def output_name(self) -> str:
        return self.metadata["output"]["name"]


def export_model(
    source: ModelSource, options: ExportOptions, data: ExportData | None = None
) -> ExportResult:
    """Exports `source.model` in every planned format, verifies and reports.

    Args:
        source: the loaded model (`export.source.load_source`).
        options: formats and settings.
        data: calibration/test images; read through `training.data` when None.

    Raises:
        ValueError / FileNotFoundError: bad options (or one no chosen format takes), no data
            set known, data not found, unwritable export directory, a model that cannot run
            in TFLite Micro with `tflm` asked by name. Raised before any file is written.
    """
    options.validate()
    formats = plan_formats(options)
    check_options_apply(formats, options)
    out_dir = Path(options.out_dir) if options.out_dir else DEFAULT_EXPORT_ROOT / source.name
    check_writable(out_dir)
    formats, tflm_skipped = _refuse_unfit_tflm(source, formats, options)
    qat_requested = options.qat_epochs > 0 or any(f.needs_training_data for f in formats)
    qat_epochs = options.qat_epochs or (3 if qat_requested else 0)
    data = data if data is not None else _read_data(source, formats, options)
    if _needs_data_for_training(formats, options) and (
        data.x_train is None or not len(data.x_train)
    ):
        raise ValueError("QAT/pruning needs labelled training images, but the data given has none")
    # A reconstruction model's outputs are images: its files carry no labels.
    labelled = source.task == "classification"
    class_names = (source.class_names or data.class_names) if labelled else None
    model = source.model
    notes = _prune(source, model, data, options, qat_epochs)
    metadata = app_metadata(source, class_names)
    tflm_prepared, tflm_skipped = _prepare_tflm(
        source, model, data, metadata, formats, options, tflm_skipped
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    reference = keras_reference(model, data.x_test, data.y_test, source.task)
    job = _Job(source, model, data, metadata, reference, out_dir, options, qat_epochs, notes)
    job.tflm_prepared = tflm_prepared
    job.warnings = unfinished_run_warnings(source)
    _write_metadata(job)
    for warning in job.warnings:
        _log(options, f"warning: {warning}")
    if class_names:
        atomic_write_text(out_dir / LABELS_FILE, "\n".join(class_names))
    files: dict[str, Path] = {}
    reports: list[FileReport] = [tflm_skipped] if tflm_skipped else []
    for fmt in formats:
        report, path = BUILDERS[fmt.runtime](job, fmt)
        if report is None:  # refused before the loop; its row is in `reports` already
            continue
        reports.append(report)
        if path is not None:
            files[fmt.name] = path
            job.files_metadata.update(files_metadata(out_dir, path))
            _write_metadata(job)
        if not report.passed:
            _log(options, f"  FAILED {report.failure}")
        elif report.status == "unsupported":
            _log(options, f"  {report.failure}")
    compare_rewrite_latency(reports)
    if source.task == "reconstruction":
        from export.preview import write_reconstruction_preview

        write_reconstruction_preview(model, data.x_test, source.std, out_dir / PREVIEW_FILE)
    table = write_report(out_dir, reports, reference, _context(job, formats), _keras_size(source))
    return ExportResult(out_dir=out_dir, files=files, reports=reports, table=table)


def _write_metadata(job: _Job) -> None:
    """`metadata.json`: the model's keys, and `files`: each written file's own entry."""
    content = dict(job.metadata, files=job.files_metadata)
    atomic_write_text(job.out_dir / METADATA_FILE, json.dumps(content, indent=2))


def _read_data(source: ModelSource, formats, options: ExportOptions) -> ExportData:
    dataset = options.dataset or source.dataset
    if not dataset:
        what = "QAT/pruning" if _needs_data_for_training(formats, options) else "export"
        raise ValueError(
            f"{what} needs data but no data set is known for {source.model_path}: pass "
            "--dataset (e.g. fashion_mnist) or export a run directory with config.json"
        )
    _log(options, f"reading {dataset} (calibration and test images)")
    # QAT selects its epoch on the run's own validation images, kept out of its sample.
    own_data = dataset == source.config.get("dataset")
    record = source.record if own_data else None
    return load_export_data(
        dataset,
        source.input_shape,
        data_dir=options.data_dir or source.data_dir,
        calibration_samples=options.calibration_samples,
        test_samples=options.test_samples or run_test_size(source, own_data),
        train_samples=options.qat_samples if _needs_data_for_training(formats, options) else 0,
        val_split=float(source.config.get("val_split") or 0.0) if own_data else 0.0,
        val_seed=int(source.config.get("seed") or 0),
        val_digest=record.validation.get("sha256") if record else None,
    )


def _prune(source, model, data, options: ExportOptions, qat_epochs: int) -> dict[str, Any]:
    """Magnitude-prunes `model` in place when asked; returns the note every row carries."""
    if options.prune <= 0:
        return {}
    from export.tfmot_process import run_tfmot

    _log(options, f"pruning to {options.prune:.0%} sparsity (tfmot, tf_keras process)")
    pruned = run_tfmot(
        source, data, mode="prune", sparsity=options.prune, epochs=max(1, qat_epochs)
    )
    model.set_weights(pruned.weights)
    return {
        "pruning": f"tfmot magnitude pruning to {options.prune:.0%} (kernels now "
        f"{pruned.summary.get('sparsity', float('nan')):.1%} zeros), stripped; see gzip size"
    }


def _context(job: _Job, formats) -> dict[str, Any]:
    options = job.options
    return {
        "name": job.source.name,
        "model_file": str(job.source.model_path),
        "model": job.source.model_name,
        "weights": job.source.origin,
        "dataset": job.data.dataset or options.dataset or job.source.dataset,
        "task": job.source.task,
        "test_samples": len(job.data.x_test),
        "calibration_samples": len(job.data.x_calibration),
        "io": options.io,
        "prune": options.prune,
        "qat_epochs": job.qat_epochs,
        "runtime": "LiteRT (ai-edge-litert) 1 thread, ONNX Runtime CPU 1 thread, batch 1",
        "warnings": job.warnings or None,
    }


def _keras_size(source: ModelSource) -> int | None:
    return source.model_path.stat().st_size if source.model_path.exists() else None


def _file_name(job: _Job, fmt: ExportFormat) -> str:
    return f"{job.source.name}{fmt.suffix}"


def _file_row(job: _Job, fmt: ExportFormat, build) -> tuple[FileReport, Path | None]:
    """Builds one file with `build()`, writes it atomically and verifies it in its runtime;
    a converter failure is a failed (or, for int16x8, unsupported) row, not a crash."""
    path = job.out_dir / _file_name(job, fmt)
    _log(job.options, f"exporting {fmt.name} -> {path}")
    try:
        content = build()
    except Exception as error:
        message = first_line(error)
        status = "unsupported" if fmt.quantization == "int16x8" else "failed"
        failure = f"{fmt.name}: conversion failed: {type(error).__name__}: {message}"
        return FileReport.not_written(fmt, failure, status), None
    atomic_write_bytes(path, content)
    _log(job.options, f"  verifying in {fmt.runtime} on {len(job.data.x_test)} test images")
    started = time.perf_counter()
    report = verify_file(path, fmt, job.reference, latency_runs=job.options.latency_runs)
    _log(job.options, f"  {report.status} ({time.perf_counter() - started:.0f} s)")
    report.notes.update(job.notes)
    report.notes["gzip_size_bytes"] = len(gzip.compress(content, 9))
    if fmt.options.get("io"):
        report.notes["io"] = job.options.io
    return report, path


def _tflite_row(job: _Job, fmt: ExportFormat) -> tuple[FileReport, Path | None]:
    io = job.options.io if fmt.options.get("io") else "float32"
    if fmt.options.get("rewrite") == "s2d_conv" and not _rewrite_applies(job.model):
        return FileReport.not_written(fmt, S2D_NOTHING_TO_DO, "unsupported"), None

    def build() -> bytes:
        content = _build_tflite(
            fmt, job.model, job.source, job.data, io, job.output_name, job.options, job.qat_epochs
        )
        return _embed_tflite_metadata(content, job.metadata, fmt, job.output_name)

    return _file_row(job, fmt, build)


def _onnx_row(job: _Job, fmt: ExportFormat) -> tuple[FileReport, Path | None]:
    def build() -> bytes:
        if job.float_onnx is None:
            job.float_onnx = _build_onnx_float(job.model, job.source, job.metadata, fmt)
        content = job.float_onnx
        if fmt.quantization != "none":
            content = _build_onnx_int8(job.float_onnx, job.data, job.options)
        return _embed_onnx_metadata(content, job.metadata, fmt)

    return _file_row(job, fmt, build)


def _tflm_row(job: _Job, fmt: ExportFormat) -> tuple[FileReport | None, Path | None]:
    """The C bundle folder, run in TFLite Micro (export/tflm*.py)."""
    if job.tflm_prepared is None:
        return None, None
    report = _export_tflm(job.tflm_prepared, job.out_dir, fmt, job.reference, job.options)
    return report, job.out_dir / "tflm"


def _web_row(job: _Job, fmt: ExportFormat) -> tuple[FileReport, Path | None]:
    """The page folder, checked in headless Chromium (export/web_export.py)."""
    from export.web_export import export_web

    _log(job.options, f"exporting {fmt.name} -> {job.out_dir / 'web'}/")
    return export_web(
        fmt, job.model, job.source, job.data, job.metadata, job.reference, job.out_dir, job.options
    )


PREVIEW_FILE = "reconstructions.png"
S2D_NOTHING_TO_DO = (
    "tflite_int8_s2d: not written: no convolution of this model is one the space-to-depth "
    "rewrite takes (stride 1, at most 8 input channels, no activation inside the layer), so "
    "the file would be tflite_int8's"
)


def compare_rewrite_latency(reports: list[FileReport]) -> None:
    """Notes on the s2d row how its latency compares with tflite_int8's on this CPU: the
    rewrite is faster under XNNPACK on some CPUs and models, slower on others."""
    rows = {r.format: r for r in reports if r.latency_us}
    s2d, base = rows.get("tflite_int8_s2d"), rows.get("tflite_int8")
    if s2d is None or base is None:
        return
    ratio = s2d.latency_us / base.latency_us
    verdict = "faster" if ratio < 1 else "not faster"
    s2d.notes["vs_tflite_int8"] = (
        f"{ratio:.2f}x tflite_int8's latency ({s2d.latency_us:.1f} vs {base.latency_us:.1f} "
        f"us): {verdict} on this CPU; ship it only where it measures faster"
    )


def _rewrite_applies(model: Any) -> bool:
    from export.rewrite import rewritable_convolutions

    return bool(rewritable_convolutions(model))


# Each row's runtime names its builder: (job, row) -> (its report, the file or folder).
BUILDERS = {TFLITE: _tflite_row, ONNX: _onnx_row, TFLM: _tflm_row, WEB: _web_row}


def _build_tflite(fmt, model, source, data, io, output_name, options, qat_epochs) -> bytes:
    from export.tflite_export import convert_tflite

    if fmt.quantization == "qat_int8":
        from export.tfmot_process import run_tfmot

        _log(options, f"  quantization-aware training, {qat_epochs} epoch(s), tf_keras process")
        result = run_tfmot(
            source, data, mode="qat", epochs=qat_epochs, io=io, weights=model.get_weights()
        )
        return result.tflite
    if fmt.options.get("rewrite") == "s2d_conv":
        from export.rewrite import rewrite_for_deployment

        model = rewrite_for_deployment(model)
    return convert_tflite(
        model,
        source.input_shape,
        fmt.quantization,
        calibration=data.x_calibration,
        io=io,
        output_name=output_name,
        progress=options.progress,
    )


def _embed_tflite_metadata(content, metadata, fmt, output_name) -> bytes:
    from export.metadata import embed_in_tflite

    return embed_in_tflite(content, metadata, fmt, output_name)


def _build_onnx_float(model, source, metadata, fmt) -> bytes:
    from export.onnx_export import convert_onnx

    proto = convert_onnx(
        model, source.input_shape, fmt.options.get("opset", 17), metadata["output"]["name"]
    )
    return proto.SerializeToString()


def _embed_onnx_metadata(content: bytes, metadata, fmt: ExportFormat) -> bytes:
    from export.metadata import embed_in_onnx

    return embed_in_onnx(content, metadata, fmt)


def _build_onnx_int8(float_content: bytes, data: ExportData, options: ExportOptions) -> bytes:
    from export.onnx_export import quantize_onnx_int8

    return quantize_onnx_int8(float_content, data.x_calibration, progress=options.progress)


def _export_tflm(prepared, out_dir, fmt, reference, options) -> FileReport:
    from export.tflm_export import export_tflm

    _log(options, f"exporting {fmt.name} -> {out_dir / 'tflm'}/")
    try:
        _, report = export_tflm(prepared, out_dir, fmt, reference, options.latency_runs)
    except Exception as error:  # a runtime failure is a failed row, not a crash
        first = first_line(error)
        failure = f"tflm: TFLite Micro could not verify the bundle: {first}"
        report = FileReport.not_written(fmt, failure, "failed")
    return report


def _tflm_skip_report(error: Exception) -> FileReport:
    return FileReport.not_written(FORMATS["tflm"], str(error), "unsupported")


def _refuse_unfit_tflm(source, formats, options):
    """Before anything is read or written: a model whose parameter count or activations
    alone exceed a microcontroller is refused for tflm (an error, or with `tflm_optional`
    the tflm row is dropped and reported as unsupported)."""
    if not any(f.runtime == TFLM for f in formats):
        return formats, None
    from export.tflm_export import refuse_if_too_large

    try:
        refuse_if_too_large(source)
    except ValueError as error:
        if not options.tflm_optional:
            raise
        return [f for f in formats if f.runtime != TFLM], _tflm_skip_report(error)
    return formats, None


def _prepare_tflm(source, model, data, metadata, formats, options, skipped):
    """Builds the tflm bundle in memory and runs it in TFLM before any file is written."""
    if not any(f.runtime == TFLM for f in formats):
        return None, skipped
    from export.tflm_export import prepare_tflm

    _log(options, "tflm: converting (int8 I/O) and measuring the arena in TFLite Micro")
    try:
        prepared = prepare_tflm(
            source, model, data, metadata["class_names"], metadata, progress=options.progress
        )
    except ValueError as error:
        if not options.tflm_optional:
            raise
        return None, _tflm_skip_report(error)
    return prepared, skipped
