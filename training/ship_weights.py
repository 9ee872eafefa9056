"""`python -m training.ship_weights`: retrain the zoo's shipped weights and rewrite manifests.

`make weights` runs this. For each model it trains with the project's own command line and
the model's defaults, made reproducible (`--deterministic`, float32: `--mixed-precision off`,
because `auto` differs between CPUs), then writes into `zoo/weights/`, atomically:

    <model>-<dataset>.npz    the saved model's variables (`zoo.pretrained` layout)
    <model>-<dataset>.json   the manifest: SHA-256, the run record (full config, test metrics,
                             versions), the date, the commit and the exact command

The run directories stay under `runs/weights/` to be looked at (history, plots, metrics).

    python -m training.ship_weights                      # every shipped model
    python -m training.ship_weights --models lenet5      # one of them
"""

from __future__ import annotations

import datetime
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zoo.cli import OneLineErrorParser

# The models this project trains to their mark on this data set, with their defaults.
SHIPPED_MODELS = ("lenet5", "lenet5_modern", "conv_autoencoder")
DATASET = "fashion_mnist"
# The flags that make a run reproducible; everything else is the model's default.
REPRODUCIBLE_FLAGS = ("--deterministic", "--mixed-precision", "off")
RUNS_ROOT = Path("runs") / "weights"


def training_command(model: str, run_dir: Path) -> list[str]:
    """The command line that trains `model`'s shipped weights into `run_dir`."""
    return [
        "python", "-m", "training", "--model", model, "--dataset", DATASET,
        *REPRODUCIBLE_FLAGS, "--run-dir", str(run_dir), "--overwrite", "--verbose", "2",
    ]  # fmt: skip


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return done.stdout.strip()


def code_version() -> dict[str, Any]:
    """The commit of the code, and whether the code packages differ from it."""
    changed = _git("status", "--porcelain", "--", "layers", "zoo", "training")
    dirty = any(line and "zoo/weights/" not in line for line in changed.splitlines())
    return {"commit": _git("rev-parse", "HEAD") or "unknown", "dirty": dirty}


def _portable_record(run_dir: Path) -> dict[str, Any]:
    """The run record without this machine's paths."""
    from training.record import read_run_record

    record = read_run_record(run_dir).to_json()
    record["data_dir"] = None
    record["config"] = {**record["config"], "run_dir": None, "data_dir": None}
    return record


def write_shipped(model_name: str, run_dir: Path, trained: dict[str, Any], out: Path) -> Path:
    """Writes `<model>-<dataset>.npz` and its manifest from a finished run; returns the npz."""
    from training.atomic import atomic_write_bytes, atomic_write_json
    from training.evaluation import load_saved_model
    from zoo.pretrained import MANIFEST_VERSION, npz_weights_bytes, sha256_of

    stem = f"{model_name}-{DATASET}"
    weights = out / f"{stem}.npz"
    atomic_write_bytes(weights, npz_weights_bytes(load_saved_model(run_dir / "model.keras")))
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "model": model_name,
        "dataset": DATASET,
        "weights": {
            "file": weights.name,
            "sha256": sha256_of(weights),
            "bytes": weights.stat().st_size,
        },
        "trained": trained,
        "run": _portable_record(run_dir),
    }
    atomic_write_json(out / f"{stem}.json", manifest)
    return weights


def ship(model_name: str, out: Path) -> dict[str, Any]:
    """Trains `model_name` in its own process and writes its shipped files into `out`."""
    run_dir = RUNS_ROOT / f"{model_name}-{DATASET}"
    command = training_command(model_name, run_dir)
    started = time.perf_counter()
    subprocess.run([sys.executable, *command[1:]], check=True)
    trained = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **code_version(),
        "command": shlex.join(command),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    weights = write_shipped(model_name, run_dir, trained, out)
    metrics = json.loads((out / f"{weights.stem}.json").read_text())["run"]["metrics"]
    return {"model": model_name, "file": str(weights), **trained, "metrics": metrics}


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineErrorParser(
        prog="python -m training.ship_weights",
        description="Retrain the zoo's shipped weights with the models' defaults, reproducibly, "
        "and rewrite zoo/weights/ (weights + manifests).",
    )
    parser.add_argument("--models", default=",".join(SHIPPED_MODELS), help="comma-separated")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(SHIPPED_MODELS))
    if unknown:
        parser.error(f"--models: {unknown} are not shipped; choose from {list(SHIPPED_MODELS)}")
    from zoo.pretrained import WEIGHTS_DIR

    WEIGHTS_DIR.mkdir(exist_ok=True)
    for model_name in models:
        shipped = ship(model_name, WEIGHTS_DIR)
        figures = {k: v for k, v in shipped["metrics"].items() if k.startswith("test_")}
        print(f"{model_name}: {shipped['file']} ({shipped['wall_seconds']} s) {figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
