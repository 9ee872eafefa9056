"""Run-directory artifacts, each written to a temporary name and renamed into place.

A crash while writing never leaves a half-written `config.json`, `metrics.json`,
`history.csv`, `model.keras` or PNG under its final name (DESIGN.md, "Artifacts").
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.atomic import (
    TEMPORARY_NAME,
    atomic_replace,
    atomic_write_text,
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else
    return True


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Deletes the hidden temporary files (`.model.tmp<pid>.keras`, ...) that a killed writer
    left in `directory`; files of a process that is still running are kept.

    Returns:
        The deleted paths.
    """
    removed = []
    directory = Path(directory)
    if not directory.is_dir():
        return removed
    for entry in directory.iterdir():
        match = TEMPORARY_NAME.match(entry.name)
        if not match or not entry.is_file():
            continue
        pid = match.group(1)
        if pid is not None and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        with contextlib.suppress(FileNotFoundError):
            entry.unlink()
            removed.append(entry)
    return removed


def atomic_save_model(model, path: str | os.PathLike) -> Path:
    """`model.save` to a temporary `.keras` name, then rename."""
    return atomic_replace(path, lambda tmp: model.save(str(tmp)))


def atomic_savefig(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """`fig.savefig` to a temporary name with the same suffix, then rename."""
    return atomic_replace(path, lambda tmp: fig.savefig(tmp, dpi=dpi))


def read_history(path: str | os.PathLike) -> list[dict[str, float]]:
    """Rows of `history.csv` (epoch as int, the rest as float); [] when absent."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            rows.append(
                {k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""}
            )
    return rows


def write_history(path: str | os.PathLike, rows: Sequence[dict[str, float]]) -> None:
    """Writes rows (one per epoch, the last row per epoch wins) as CSV, atomically."""
    by_epoch: dict[int, dict[str, float]] = {}
    for row in rows:
        by_epoch[int(row["epoch"])] = dict(row)
    ordered = [by_epoch[e] for e in sorted(by_epoch)]
    keys = ["epoch"]
    for row in ordered:
        keys += [k for k in row if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    for row in ordered:
        writer.writerow({k: row.get(k, "") for k in keys})
    atomic_write_text(path, buf.getvalue())


def plot_curves(rows: Sequence[dict[str, float]], path: str | os.PathLike, title: str = "") -> None:
    """`curves.png`: loss and accuracy (train and validation) and the learning rate per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] + 1 for r in rows]
    panels = [("loss", "loss")]
    if any("accuracy" in r for r in rows):
        panels.append(("accuracy", "accuracy"))
    if any("learning_rate" in r for r in rows):
        panels.append(("learning_rate", "learning rate"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        for prefix, style in (("", "-o"), ("val_", "-s")):
            values = [r.get(prefix + key, np.nan) for r in rows]
            if not np.all(np.isnan(values)):
                name = "validation" if prefix else ("train" if key != "learning_rate" else "lr")
                ax.plot(epochs, values, style, markersize=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


def plot_confusion(
    matrix: np.ndarray, class_names: Sequence[str], path: str | os.PathLike, title: str = ""
) -> None:
    """`confusion.png`: row-normalized confusion matrix (rows: true class, columns: predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(class_names)
    norm = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.55 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(class_names, rotation=60, ha="right", fontsize=7)
    ax.set_yticklabels(class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(
                    j,
                    i,
                    f"{int(matrix[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
    fig.colorbar(im, ax=ax, fraction=0.046)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)
