"""The run directory: what a run may do with it, and repairing a torn backup.

A run directory is never overwritten silently: the same configuration resumes it, a finished
run is reported as such, a different configuration is an error unless `overwrite=True`.

Example:

>>> prepare_run_dir(Path("runs/lenet5"), config, overwrite=False)
'fresh'
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from training import artifacts
from training.atomic import atomic_write_json
from training.config import NON_SEMANTIC

__all__ = ["RunDirError", "lengthen_run", "prepare_run_dir", "repair_backup"]


class RunDirError(ValueError):
    """The run directory cannot be used as asked (conflicting config, not writable)."""


def _semantic(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in NON_SEMANTIC}


def _check_writable(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=run_dir, prefix=".write-test"):
            pass
    except OSError as e:
        raise RunDirError(
            f"--run-dir {run_dir} is not writable ({e.strerror or e}); choose another --run-dir"
        ) from e


def prepare_run_dir(run_dir: Path, config: dict[str, Any], overwrite: bool) -> str:
    """Returns "fresh", "resume" or "finished" for `run_dir`; raises `RunDirError` on conflict."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"--run-dir {run_dir} exists and is not a directory")
    config_path = run_dir / "config.json"
    if overwrite and run_dir.is_dir() and any(run_dir.iterdir()):
        if not config_path.is_file() and not (run_dir / "metrics.json").is_file():
            raise RunDirError(
                f"--run-dir {run_dir} holds files that are not a training run; refusing to "
                f"delete them even with --overwrite: choose another --run-dir"
            )
        shutil.rmtree(run_dir)
    _check_writable(run_dir)
    artifacts.remove_stale_temporaries(run_dir)  # left by a killed run of this directory
    if not config_path.is_file():
        others = [p.name for p in run_dir.iterdir() if not p.name.startswith(".")]
        if others:
            raise RunDirError(
                f"--run-dir {run_dir} is not empty and holds no config.json (found "
                f"{sorted(others)[:5]}); choose another --run-dir"
            )
        return "fresh"
    try:
        stored = json.loads(config_path.read_text())
    except ValueError as e:
        raise RunDirError(
            f"--run-dir {run_dir}: config.json is unreadable ({e}); pass --overwrite to start "
            f"again or choose another --run-dir"
        ) from e
    trained = any((run_dir / name).exists() for name in ("checkpoints", "model.keras"))
    if _semantic(stored) != _semantic(config) and not trained:
        return "fresh"  # a run that failed before its first epoch: nothing to lose
    if _semantic(stored) != _semantic(config):
        diff = sorted(
            (
                k
                for k in set(_semantic(stored)) | set(_semantic(config))
                if stored.get(k) != config.get(k)
            ),
            key=lambda k: (k not in ("model", "dataset"), k),  # what was trained first
        )
        changes = ", ".join(f"{k}: {stored.get(k)!r} -> {config.get(k)!r}" for k in diff[:4])
        if len(diff) > 4:
            changes += f" and {len(diff) - 4} more"
        raise RunDirError(
            f"--run-dir {run_dir} holds a run with a different configuration ({changes}); "
            f"pass --overwrite to replace it, choose another --run-dir, or --resume {run_dir} "
            f"to continue it as it was"
        )
    metrics_path = run_dir / "metrics.json"
    if metrics_path.is_file():
        return "finished"
    return "resume"


def lengthen_run(run_dir: Path, config: dict[str, Any]) -> None:
    """Lets `run_dir` continue to `config["epochs"]`, more than it was configured for.

    `config` is the stored configuration with a greater `epochs` and the extension appended to
    `extended`; anything else that differs is refused. `config.json` takes it, and
    `metrics.json` (the mark of a finished run) goes: the run is unfinished again, and
    resuming it continues the extension. `run.json`, `history.csv` and `model.keras` stay.
    """
    stored = json.loads((run_dir / "config.json").read_text())
    if stored.get("epochs") == config["epochs"]:
        return
    changed = {k for k in set(stored) | set(config) if stored.get(k) != config.get(k)}
    if not changed <= {"epochs", "extended", *NON_SEMANTIC}:
        raise RunDirError(f"--resume {run_dir}: cannot lengthen a run and change {sorted(changed)}")
    atomic_write_json(run_dir / "config.json", config)
    (run_dir / "metrics.json").unlink(missing_ok=True)


def repair_backup(backup_dir: Path) -> None:
    """Makes a torn `BackupAndRestore` backup loadable again.

    Keras rewrites `training_metadata.json` in place after the weights: a kill at that moment
    leaves it empty or cut, and resuming would fail on it. Keras falls back to the previous
    backup (`*.bkp`, `double_checkpoint=True`) only for unreadable weights; do the same for
    unreadable metadata, or start over when there is no previous backup.
    """
    metadata = backup_dir / "training_metadata.json"
    if not metadata.is_file():
        return
    try:
        int(json.loads(metadata.read_text())["epoch"])
        return
    except (ValueError, KeyError, TypeError):
        pass
    weights = backup_dir / "latest.weights.h5"
    previous = [Path(f"{weights}.bkp"), Path(f"{metadata}.bkp")]
    if all(p.is_file() for p in previous):
        shutil.copyfile(previous[0], weights)
        shutil.copyfile(previous[1], metadata)
    else:
        metadata.unlink()
        weights.unlink(missing_ok=True)
