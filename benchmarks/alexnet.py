"""AlexNet benchmark: AlexNet-BN trained on Fashion-MNIST, exported and verified as trained.

The model is the run `runs/alexnet_bn-fashion_mnist` when it has finished (what
`python -m training --model alexnet_bn` writes), else AlexNet-BN trained here with the
defaults: the 28x28 images resized to 64x64 inside the model, 5 epochs, ~16 min on 2 cores.
Its training figures come from the run's `metrics.json` and `config.json`. Every file is
exported with `export.export_model` and verified on the whole test split in its runtime
(LiteRT, ONNX Runtime; one thread, batch 1).

Targets (issue 17): int8 accuracy drop <= 0.3 pp, top-1 agreement >= 99.5 % with the float
model, int8 latency <= 0.5x float32. Why the defaults are what they are (the recipes compared):
docs/MEASUREMENTS.md, "AlexNet training recipe".

    python -m benchmarks.alexnet               # the trained run, or train it first
    python -m benchmarks.alexnet --run RUN     # another finished alexnet_bn run directory
    python -m benchmarks.alexnet --quick       # 1 epoch on 5,000 images, 100 test images

Results go to benchmarks/results/alexnet.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.export import (
    fidelity_checks,
    file_rows,
    files_table,
    interleaved_latency,
    latency_checks,
    latency_table,
    targets_table,
    trained_source,
)

RESULTS = Path(__file__).resolve().parent / "results"
ALEXNET_RUN = Path("runs/alexnet_bn-fashion_mnist")  # `python -m training --model alexnet_bn`
LABEL = "alexnet_bn"
FORMATS = "tflite_fp32,tflite_fp16,tflite_int8,onnx_fp32,onnx_int8"


def run(run_dir: Path = ALEXNET_RUN, quick: bool = False) -> dict[str, Any]:
    """Exports the trained AlexNet-BN; returns its training figures and one row per file."""
    from export.data import load_export_data
    from export.exporter import ExportOptions, export_model
    from export.formats import resolve_formats

    with tempfile.TemporaryDirectory(prefix="convzoo-bench-alexnet-") as tmp:
        source, note = trained_source("alexnet_bn", run_dir, quick, Path(tmp))
        options = ExportOptions(
            formats=resolve_formats(FORMATS),
            out_dir=Path(tmp) / "export",
            calibration_samples=100 if quick else 500,
            test_samples=100 if quick else 0,
            latency_runs=50 if quick else 200,
            progress=False,
        )
        result = export_model(source, options)
        rows = file_rows(LABEL, result, note)
        training = training_figures(source.model_path.parent)
        tflite = {n: Path(p) for n, p in result.files.items() if n.startswith("tflite")}
        image = load_export_data(
            "fashion_mnist", source.input_shape, calibration_samples=1, test_samples=1
        ).x_test[0]
        latency = interleaved_latency(tflite, image, rounds=3 if quick else 15, runs=20)
    return {"training": training, "files": rows, "latency_interleaved_us": latency}


def training_figures(run_dir: Path) -> dict[str, Any]:
    """The run's recipe (config.json) and what it measured (metrics.json)."""
    config = json.loads((run_dir / "config.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    recipe_keys = (
        "dataset",
        "epochs",
        "batch_size",
        "optimizer",
        "learning_rate",
        "momentum",
        "weight_decay",
        "schedule",
        "warmup_epochs",
        "label_smoothing",
        "augment",
        "model_options",
        "input_shape",
        "mixed_precision",
    )
    metric_keys = (
        "test_accuracy",
        "epochs_run",
        "wall_time_seconds",
        "images_per_second",
        "peak_rss_mb",
        "memory_estimate_mb",
        "train_size",
        "test_size",
    )
    return {
        "run_dir": str(run_dir),
        "recipe": {k: config.get(k) for k in recipe_keys},
        **{k: metrics.get(k) for k in metric_keys},
    }


def targets(rows: list[dict], latency: dict) -> list[tuple[str, str, bool | None]]:
    """Issue 17's targets, checked on the int8 files (latency: the interleaved medians)."""
    get = {r["format"]: r for r in rows}
    checks = []
    for fmt in ("tflite_int8", "onnx_int8"):
        row = get.get(fmt)
        if row and row.get("agreement") is not None:
            checks += fidelity_checks(row, fmt, 0.3, 99.5)
    if latency.get("tflite_int8") and latency.get("tflite_fp32"):
        checks += latency_checks("tflite_int8", latency["tflite_int8"], latency["tflite_fp32"], 0.5)
    return checks


def _training_line(t: dict[str, Any]) -> str:
    from training.augment import resolve_augment

    r = t["recipe"]
    size = (r.get("model_options") or {}).get("resize_to", r.get("input_shape"))
    augment = resolve_augment(r["augment"], r["dataset"])
    return (
        f"Trained ({t['run_dir']}): {r['optimizer']} lr {r['learning_rate']} "
        f"(momentum {r['momentum']}, {r['schedule']}, {r['warmup_epochs']} warm-up epoch), "
        f"weight decay {r['weight_decay']}, label smoothing {r['label_smoothing']}, batch "
        f"{r['batch_size']}, augment {augment}, resized to {size} inside the model, "
        f"mixed precision {r['mixed_precision']}: test accuracy "
        f"**{t['test_accuracy'] * 100:.2f} %** on {t['test_size']:,} images after "
        f"{t['epochs_run']} epochs, {t['wall_time_seconds']:.0f} s wall, "
        f"{t['images_per_second']:.0f} images/s, peak resident memory {t['peak_rss_mb']:,} MB "
        f"(its pre-run estimate then: {t['memory_estimate_mb']:,} MB)."
    )


def to_markdown(result: dict[str, Any]) -> str:
    rows = result["files"]
    return "\n".join(
        [
            "# AlexNet-BN on Fashion-MNIST, trained, exported and verified",
            "",
            f"LiteRT (ai-edge-litert) 1 thread, batch 1, median; ONNX Runtime CPU 1 thread; "
            f"every file on all test images. Machine: {os.cpu_count()} cores. "
            f"{time.strftime('%Y-%m-%d')}.",
            "",
            _training_line(result["training"]),
            "",
            files_table(rows),
            "",
            "Latency side by side (us, median of 15 interleaved rounds of 20 invokes, one "
            "process; the table above times each file on its own):",
            "",
            latency_table(result["latency_interleaved_us"]),
            "",
            targets_table(targets(rows, result["latency_interleaved_us"])),
            "",
            "The recipes compared, the grouped `alexnet` (LRN) and QAT: docs/MEASUREMENTS.md, "
            '"AlexNet training recipe".',
            "",
        ]
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.alexnet")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--run", type=Path, default=ALEXNET_RUN, help="a finished run directory")
    args = parser.parse_args(argv)
    result = run(args.run, quick=args.quick)
    markdown = to_markdown(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "alexnet.md").write_text(markdown)
    (RESULTS / "alexnet.json").write_text(json.dumps(result, indent=2, default=float))
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
