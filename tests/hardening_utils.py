"""Helpers for the hardening tests (bad inputs, faults, distribution, determinism).

- `snapshot` / `assert_nothing_changed`: a directory tree's paths, sizes, SHA-256 and mtimes
  before and after a failed command, so "nothing pre-existing was changed" is checked.
- `write_idx` / `make_idx_dir`: small IDX data sets (real format, built in tmp dirs).
- `run_cli_cases`: many invocations of a CLI's `main(argv)` in ONE real subprocess (a
  TensorFlow import costs 5-8 s here); each case gets its own environment, working directory
  and file-descriptor-level stdout/stderr capture, so C++ logs and tracebacks are seen too.
- `free_port`, `python_env`, `kill_tree`: process plumbing for the subprocess tests.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]

IDX_STEMS = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


# --------------------------------------------------------------------------------------------
# Directory snapshots
# --------------------------------------------------------------------------------------------


def snapshot(root: str | os.PathLike) -> dict[str, tuple]:
    """Every path under `root` -> (kind, size, sha256, mtime_ns, mode) ('dir' has no bytes)."""
    root = Path(root)
    state: dict[str, tuple] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        st = path.lstat()
        if path.is_dir() and not path.is_symlink():
            state[rel] = ("dir", 0, "", st.st_mtime_ns, st.st_mode)
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
            state[rel] = ("file", st.st_size, digest, st.st_mtime_ns, st.st_mode)
    return state


def assert_nothing_changed(
    before: dict[str, tuple], after: dict[str, tuple], allow_new_dirs: bool = True
) -> None:
    """Every pre-existing path is still there, byte-identical, with the same mtime; no new
    files (and, unless `allow_new_dirs`, no new directories) appeared."""
    changed = {}
    for path, entry in before.items():
        now = after.get(path)
        if entry[0] == "dir":
            # A directory's mtime changes when an entry is created and removed again (a
            # write probe); its content is compared entry by entry instead.
            if now is None or now[0] != "dir" or now[4] != entry[4]:
                changed[path] = (entry, now)
        elif now != entry:
            changed[path] = (entry, now)
    assert not changed, f"pre-existing paths changed: {changed}"
    new = sorted(p for p in after if p not in before)
    new_files = [p for p in new if after[p][0] != "dir"]
    assert not new_files, f"new files appeared: {new_files}"
    if not allow_new_dirs:
        assert not new, f"new directories appeared: {new}"


# --------------------------------------------------------------------------------------------
# IDX data
# --------------------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray, compress: bool = True) -> bytes:
    """`array` (uint8) in the IDX format, gzip-compressed if `compress`."""
    array = np.asarray(array, np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.tobytes()
    return gzip.compress(payload) if compress else payload


def make_idx_dir(
    directory: str | os.PathLike,
    n_train: int = 300,
    n_test: int = 100,
    size: tuple[int, int] = (28, 28),
    seed: int = 0,
) -> Path:
    """Writes four gzip IDX files of a learnable 10-class toy problem (class = bright band)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    def images(labels):
        x = rng.integers(0, 60, (len(labels), *size), dtype=np.uint8)
        rows = size[0] // 10
        for i, label in enumerate(labels):
            x[i, label * rows : (label + 1) * rows] += 180
        return x

    y_train = (np.arange(n_train) % 10).astype(np.uint8)
    y_test = (np.arange(n_test) % 10).astype(np.uint8)
    arrays = {
        "x_train": images(y_train),
        "y_train": y_train,
        "x_test": images(y_test),
        "y_test": y_test,
    }
    for key, stem in IDX_STEMS.items():
        (directory / f"{stem}.gz").write_bytes(idx_bytes(arrays[key]))
    return directory


# --------------------------------------------------------------------------------------------
# Subprocesses
# --------------------------------------------------------------------------------------------


def python_env(**extra: str | None) -> dict[str, str]:
    """The test process's environment for a child Python: repo importable, TF quiet; a value
    of None removes the variable."""
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
    )
    env.pop("TF_CONFIG", None)
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILLs a child started with `start_new_session=True` and its process group."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)


_CASE_RUNNER = r"""
import importlib, json, os, sys, tempfile, traceback
module, cases = sys.argv[1], json.loads(sys.stdin.read())
real_out, real_err = os.dup(1), os.dup(2)
results = []
for case in cases:
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    for key, value in case.get("env", {}).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    os.chdir(case["cwd"])
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    sys.stdout.flush(); sys.stderr.flush()
    os.dup2(out.fileno(), 1); os.dup2(err.fileno(), 2)
    try:
        main = importlib.import_module(module + ".__main__").main
        code = main(case["argv"])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = "uncaught"
    sys.stdout.flush(); sys.stderr.flush()
    os.dup2(real_out, 1); os.dup2(real_err, 2)
    os.chdir(saved_cwd)
    os.environ.clear(); os.environ.update(saved_env)
    out.seek(0); err.seek(0)
    results.append({"code": code, "stdout": out.read().decode(errors="replace"),
                    "stderr": err.read().decode(errors="replace")})
print("CASE-RESULTS " + json.dumps(results))
"""


def run_cli_cases(
    module: str, cases: Sequence[dict[str, Any]], timeout: float = 300
) -> list[dict[str, Any]]:
    """Runs `module.__main__.main(argv)` for each case in one fresh Python process.

    Args:
        module: "training" or "export".
        cases: dicts with "argv" (list of str), "cwd" and optionally "env" (None unsets).
        timeout: for the whole batch.

    Returns:
        One dict per case: "code" (the exit code, or "uncaught" if an exception escaped
        `main`), "stdout", "stderr" (file-descriptor level, C++ logs included).
    """
    process = subprocess.run(
        [sys.executable, "-c", _CASE_RUNNER, module],
        input=json.dumps([dict(c, cwd=str(c["cwd"])) for c in cases]),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=python_env(),
    )
    marker = [line for line in process.stdout.splitlines() if line.startswith("CASE-RESULTS ")]
    assert process.returncode == 0 and marker, process.stderr[-4000:]
    return json.loads(marker[-1][len("CASE-RESULTS ") :])


def one_error_line(stderr: str, prog: str) -> str:
    """The single line of `stderr`; fails unless stderr is exactly one `prog: error:` line."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    return lines[0]
