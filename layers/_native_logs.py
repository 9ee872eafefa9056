"""Keeps TensorFlow's native start-up chatter off the terminal.

`import tensorflow` writes lines such as "WARNING: All log messages before absl::InitializeLog()
is called are written to STDERR" and "oneDNN custom operations are on" from C++, before
`TF_CPP_MIN_LOG_LEVEL` can take effect, so no environment variable removes them. Our command
lines promise one line on stderr for a user mistake; this imports TensorFlow once with file
descriptor 2 pointed at /dev/null. Python exceptions raised by the import are not hidden: they
propagate after stderr is restored. Set `TF_CPP_MIN_LOG_LEVEL=0` to see the native logs.
"""

from __future__ import annotations

import os
import sys


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow with its native start-up logs discarded (once per process)."""
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
