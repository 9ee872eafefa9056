"""What a finished training run writes and says: `metrics.json`, `run.json`, the history,
the plots, and the closing summary.

Example:

>>> print(summary(json.load(open("runs/lenet5-fashion_mnist/metrics.json")), "runs/lenet5"))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training import artifacts
from training.atomic import atomic_write_json
from training.data import ImageDataset, validation_indices
from training.record import (
    RunRecord,
    runtime_versions,
    scalar_metrics,
    validation_digest,
    write_run_record,
)
from training.strategy import strategy_name

__all__ = ["run_metrics", "run_record", "summary", "write_outputs"]


def run_metrics(c, info, data, plan, recorder, results, status, resumed_from, strategy) -> dict:
    """`metrics.json`: the saved model's figures (see `_score`) and how the run went."""
    scores = {k: v for k, v in results.items() if k != "confusion_matrix"}
    metrics = {
        "model": c.model,
        "dataset": data.name,
        "task": info.task,
        "status": status,
        "epochs_run": len(recorder.rows),
        "epochs_this_session": recorder.epochs_run,
        "resumed_from_epoch": resumed_from,
        "best_epoch": None if recorder.best_epoch is None else recorder.best_epoch + 1,
        **scores,
        "images_per_second": recorder.images_per_second(),
        "wall_time_seconds": None,  # set by the caller, after scoring
        "train_size": len(plan.x_train),
        "val_size": len(plan.x_val),
        "test_size": len(data.y_test),
        "replicas": plan.replicas,
        "strategy": strategy_name(strategy),
        "mixed_precision": c.mixed_precision,
        "xla": c.xla,
        "evaluated": "model.keras (float32)",
    }
    if "confusion_matrix" in results:
        metrics["confusion_matrix"] = results["confusion_matrix"]
    return metrics


def run_record(c, cfg, info, data: ImageDataset, saved, metrics: dict) -> RunRecord:
    """What export, QAT and benchmarks read of this run (`training.record`)."""
    val_idx = validation_indices(data.y_train, c.val_split, c.seed)
    return RunRecord(
        model=c.model,
        model_options=dict(c.model_options or {}),
        dataset=c.dataset,
        data_dir=c.data_dir,
        class_names=tuple(data.class_names),
        input_shape=tuple(int(d) for d in saved.input_shape[1:]),
        pixel_range=(0.0, 255.0),
        mean=tuple(info.mean),
        std=tuple(info.std),
        task=info.task,
        mixed_precision=c.mixed_precision,
        validation={
            "fraction": c.val_split,
            "seed": c.seed,
            "size": len(val_idx),
            "train_limit": c.train_limit,
            "sha256": validation_digest(val_idx),
        },
        metrics=scalar_metrics(metrics),
        versions=runtime_versions(),
        config=cfg,
    )


def write_outputs(c, data: ImageDataset, run_dir: Path, history, metrics, record) -> None:
    artifacts.write_history(run_dir / "history.csv", history)
    if history:
        artifacts.plot_curves(history, run_dir / "curves.png", title=f"{c.model} on {data.name}")
    if "confusion_matrix" in metrics:
        artifacts.plot_confusion(
            np.asarray(metrics["confusion_matrix"]),
            data.class_names,
            run_dir / "confusion.png",
            title=f"{c.model} on {data.name}: test accuracy {metrics['test_accuracy']:.4f}",
        )
    write_run_record(run_dir, record)
    # metrics.json last: its presence marks the run as finished.
    atomic_write_json(run_dir / "metrics.json", metrics)


def summary(metrics: dict, run_dir: Path | str) -> str:
    """The one-screen summary printed at the end of a run."""
    lines = [
        "",
        "=" * 72,
        f"{metrics['model']} on {metrics['dataset']}: {metrics['status']} after "
        f"{metrics['epochs_run']} epoch(s)"
        + (
            f" (resumed at epoch {metrics['resumed_from_epoch'] + 1})"
            if metrics.get("resumed_from_epoch")
            else ""
        ),
    ]
    if "test_accuracy" in metrics:
        lines.append(
            f"  test accuracy  {metrics['test_accuracy']:.4f}   "
            f"test loss {metrics['test_loss']:.4f}"
            f"   (best validation epoch {metrics['best_epoch']})"
        )
        per_class = metrics["per_class_accuracy"]
        items = [f"{name[:12]:>12s} {acc:.3f}" for name, acc in per_class.items()]
        for i in range(0, len(items), 4):
            lines.append("  " + "  ".join(items[i : i + 4]))
    else:
        lines.append(
            f"  test MSE {metrics['test_mse']:.2f}   PSNR {metrics['test_psnr_db']:.2f} dB"
        )
    lines.append(
        f"  {metrics['images_per_second']:.0f} images/s training, wall time "
        f"{metrics['wall_time_seconds']:.1f} s, {metrics['replicas']} replica(s), mixed "
        f"precision {metrics.get('mixed_precision', 'off')}"
        + (f", peak memory {metrics['peak_rss_mb']:,} MB" if "peak_rss_mb" in metrics else "")
    )
    lines.append(f"  run directory: {run_dir}")
    lines.append("=" * 72)
    return "\n".join(lines)
