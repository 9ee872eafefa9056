"""Atomic writes: every artifact is written under a temporary name, then renamed into place.

A crash or an error mid-write never leaves a half-written file or folder under its final
name, and what was there keeps its old content until the new one is complete. Training runs,
exports and benchmarks all write through this module.

Temporary files are hidden siblings named `.<stem>.tmp<pid><suffix>`: the suffix stays, since
Keras and matplotlib choose the format by it, and the process id lets
`training.artifacts.remove_stale_temporaries` delete what a killed writer left behind.

Example:

>>> atomic_write_json("runs/x/metrics.json", {"test_accuracy": 0.91})
>>> atomic_replace("runs/x/model.keras", lambda tmp: model.save(tmp))
>>> atomic_write_directory("exports/x/tflm", lambda tmp: (tmp / "model.h").write_text("..."))
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "TEMPORARY_NAME",
    "atomic_replace",
    "atomic_write_bytes",
    "atomic_write_directory",
    "atomic_write_json",
    "atomic_write_text",
    "jsonable",
]

# `.<stem>.tmp<pid><suffix>` (and the `.write-test*` probes of writability checks).
TEMPORARY_NAME = re.compile(r"^\.(?:.+\.tmp(\d+)(?:\.[^.]*)?|write-test\w*)$")


def temporary_name(path: Path) -> Path:
    """The hidden sibling a write to `path` goes through."""
    return path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")


def atomic_replace(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Calls `write(tmp)` to create a temporary sibling of `path`, then renames it to `path`.

    Args:
        path: the final file.
        write: creates the file at the path it is given (e.g. `model.save`, `fig.savefig`).

    Returns:
        `path`. On any error the temporary file is removed and `path` is untouched.
    """
    path = Path(path)
    tmp = temporary_name(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Writes `data` to `path` atomically (flushed to disk before the rename)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    return atomic_replace(path, write)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """`atomic_write_bytes` for UTF-8 text; a trailing newline is added if missing."""
    return atomic_write_bytes(path, (text if text.endswith("\n") else text + "\n").encode())


def jsonable(value: Any) -> Any:
    """`value` with NumPy scalars, tuples and paths made JSON types; NaN/inf become strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, str):
        value = value.item()  # NumPy scalars
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf
    if isinstance(value, Path):
        return str(value)
    return value


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Writes `obj` as indented JSON, atomically (see `jsonable` for the conversions)."""
    return atomic_write_text(path, json.dumps(jsonable(obj), indent=2))


def atomic_write_directory(directory: str | os.PathLike, fill: Callable[[Path], Any]) -> Path:
    """Calls `fill(tmp)` on a new temporary sibling folder, then swaps it in as `directory`.

    An existing `directory` is replaced only once the new one is complete, and is put back if
    the swap fails. Files get mode 644 and folders 755, as a web server or a build expects.

    Returns:
        `directory`. On any error in `fill` the temporary folder is removed and `directory`
        is untouched.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp{os.getpid()}", dir=directory.parent))
    old = directory.with_name(f".{directory.name}.old{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)  # left by a killed swap of this process id
    try:
        fill(tmp)
        for entry in [tmp, *tmp.rglob("*")]:
            os.chmod(entry, 0o755 if entry.is_dir() else 0o644)
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not directory.exists():
            os.replace(old, directory)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return directory
