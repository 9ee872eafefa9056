"""`make bench`: runs every benchmark and writes one report, `benchmarks/RESULTS.md`.

Each benchmark module (`benchmarks.layers`, `benchmarks.training`, `benchmarks.export`,
`benchmarks.alexnet`) runs in its own process, so one module's TensorFlow state
(mixed-precision policy, threads, logical devices) cannot leak into the next, and writes
`benchmarks/results/<name>.md` and `.json`.
This script then puts the machine, the versions and those tables into one file: every
benchmark's latest table, those not run this time marked so.

Run: `python -m benchmarks [--quick] [--only layers,training,export]`.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from training.atomic import atomic_write_text

BENCHMARKS = ("layers", "training", "export", "alexnet")
_EARLIER = "the table of its last run, possibly on another machine or versions"
HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
REPORT = HERE / "RESULTS.md"
PACKAGES = (
    "tensorflow",
    "keras",
    "tf-keras",
    "tensorflow-model-optimization",
    "onnx",
    "onnxruntime",
    "tf2onnx",
    "ai-edge-litert",
    "numpy",
)


def machine_description() -> str:
    """One markdown block naming the CPU, cores, memory and package versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f"{pages / 2**30:.0f} GiB"
    except (ValueError, OSError):
        memory = "unknown"
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    return "\n".join(
        [
            f"- Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
            f"- CPU: {cpu}, {os.cpu_count()} cores, {memory} memory, no GPU",
            f"- Python {platform.python_version()} on {platform.system()} {platform.release()}",
            f"- Packages: {', '.join(versions)}",
        ]
    )


def write_report(names: list[str], failures: list[str]) -> Path:
    """Writes RESULTS.md (atomically) from the per-benchmark tables in `results/`: those of
    `names` (run now), and the latest table of every other benchmark, marked as such."""
    parts = [
        "# convzoo benchmark results",
        "",
        "Written by `make bench` (`python -m benchmarks`). Every ratio compares two things "
        "measured side by side in one process on this machine, as medians of repeated runs; "
        "each row names its target and whether it was met.",
        "",
        "## Machine",
        "",
        machine_description(),
    ]
    for name in BENCHMARKS:
        table = RESULTS_DIR / f"{name}.md"
        if name not in names and not table.exists():
            continue
        parts += ["", f"## {name}", ""]
        if name in failures or not table.exists():
            parts.append(f"`python -m benchmarks.{name}` failed in this run; no figures.")
            continue
        if name not in names:
            parts += [f"(not run this time: {_EARLIER})", ""]
        parts.append(table.read_text().strip())
    return atomic_write_text(REPORT, "\n".join(parts) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller runs")
    parser.add_argument(
        "--only",
        default=",".join(BENCHMARKS),
        help=f"comma-separated subset of {', '.join(BENCHMARKS)} (default: all)",
    )
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
    failures = []
    for name in names:
        command = [sys.executable, "-m", f"benchmarks.{name}", *(["--quick"] if args.quick else [])]
        print(f"== {' '.join(command[1:])}", flush=True)
        if subprocess.run(command, cwd=HERE.parent, check=False).returncode != 0:
            failures.append(name)
    report = write_report(names, failures)
    print(f"\nWrote {report}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
