"""`python -m export PATH`: quantize, write TFLite/ONNX files, verify them, report.

Exit codes: 0 every file met its tolerance; 1 a file broke its tolerance (the message names
the format); 2 bad input (not a model or run directory, corrupt file, unknown format, QAT
without data, unwritable export directory, `--formats tflm` for a model too large for a
microcontroller or using an op TFLite Micro lacks): one line on stderr, no traceback, no files.

Example:

    python -m export runs/lenet5-fashion_mnist
    python -m export runs/lenet5-fashion_mnist --formats tflite_int8 --io int8
    python -m export lenet5_modern:fashion_mnist      # the zoo's shipped weights
    python -m export model.keras --dataset fashion_mnist --formats all --qat-epochs 1
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from export.formats import DEFAULT_FORMATS, FORMATS
from zoo.cli import OneLineErrorParser


def build_parser() -> argparse.ArgumentParser:
    rows = "\n".join(f"  {f.name:<20} {f.description}" for f in FORMATS.values())
    parser = OneLineErrorParser(
        prog="python -m export",
        description="Export a trained model to TFLite and ONNX, verify every file in its "
        "runtime against the Keras model, and write report.md/report.json.",
        epilog=f"formats:\n{rows}\n\ndefault: {','.join(DEFAULT_FORMATS)}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "path",
        help="a run directory (run.json + model.keras), a .keras file, or the zoo's shipped "
        "weights as MODEL:DATASET (e.g. lenet5_modern:fashion_mnist; python -m zoo lists them)",
    )
    parser.add_argument(
        "--formats",
        default=None,
        help="comma-separated format names, or 'all' (default: see below)",
    )
    parser.add_argument("--out", default=None, help="export directory (default: exports/<name>)")
    parser.add_argument(
        "--io",
        default="float32",
        help="input/output type of the full-integer int8 TFLite files: float32, int8, uint8",
    )
    parser.add_argument("--calibration-samples", type=int, default=500)
    parser.add_argument(
        "--test-samples", type=int, default=0, help="test images to verify on (0: all)"
    )
    parser.add_argument(
        "--qat-epochs",
        type=int,
        default=0,
        help="quantization-aware fine-tuning epochs (adds tflite_qat_int8)",
    )
    parser.add_argument(
        "--qat-samples",
        type=int,
        default=60000,
        help="training images for QAT/pruning (the run's validation images are held out)",
    )
    parser.add_argument(
        "--prune", type=float, default=0.0, help="magnitude-pruning sparsity in [0, 1)"
    )
    parser.add_argument("--dataset", default=None, help="data set (default: the run's)")
    parser.add_argument("--data-dir", default=None, help="where the data set's files are")
    parser.add_argument("--latency-runs", type=int, default=200)
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import layers  # noqa: F401  (first: imports TensorFlow without its native start-up logs)
        from export.exporter import ExportOptions, export_model
        from export.formats import resolve_formats
        from export.source import load_source

        options = ExportOptions(
            formats=resolve_formats(args.formats),
            # Only a tflm named in --formats makes an unfit model an error (exit 2).
            tflm_optional=args.formats is None or args.formats.strip() == "all",
            out_dir=args.out,
            io=args.io,
            calibration_samples=args.calibration_samples,
            test_samples=args.test_samples,
            qat_epochs=args.qat_epochs,
            qat_samples=args.qat_samples,
            prune=args.prune,
            dataset=args.dataset,
            data_dir=args.data_dir,
            latency_runs=args.latency_runs,
            progress=not args.quiet,
        )
        options.validate()
        source = load_source(args.path)
        result = export_model(source, options)
    except (ValueError, FileNotFoundError, PermissionError) as error:
        print(f"python -m export: error: {error}", file=sys.stderr)
        return 2
    print(result.table)
    print(f"\nreport: {result.out_dir / 'report.md'}")
    if "web" in result.files:  # the page: any static file server works
        web = result.files["web"]
        print(f"web page: python -m http.server -d {web} 8000; open http://localhost:8000/")
    if not result.passed:
        for report in result.failed:
            print(f"python -m export: FAILED {report.failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
