"""Keeps TensorFlow's and LiteRT's native chatter off the terminal.

`import tensorflow` writes lines such as "WARNING: All log messages before absl::InitializeLog()
is called are written to STDERR" and "oneDNN custom operations are on" from C++, before
`TF_CPP_MIN_LOG_LEVEL` can take effect, so no environment variable removes them; the first
device enumeration logs "failed call to cuInit" on a machine without a GPU driver; the TFLite
converter prints "fully_quantize: 0, inference_type: 6, ..." and the LiteRT interpreter
"INFO: Created TensorFlow Lite XNNPACK delegate for CPU." Our command lines promise one line on
stderr for a user mistake, and a clean screen otherwise.

`import_tensorflow_quietly` imports TensorFlow and enumerates the physical devices once with
file descriptor 2 pointed at /dev/null (listing physical devices leaves logical devices
configurable). `quiet_native_stderr` does the same around any block, keeping what was written
and replaying it if the block raises, so a failure still shows the native log that explains it;
Python's own `sys.stderr` (progress bars, warnings) still reaches the terminal meanwhile.
Python exceptions are never hidden. Set `TF_CPP_MIN_LOG_LEVEL=0` to see every native log.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


def _verbose() -> bool:
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0"


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Redirects file descriptor 2 (C/C++ writes included) to a temporary file for the block;
    replays the captured text on stderr if the block raises."""
    if _verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    python_stderr = sys.stderr
    # Python-level writes (progress bars, warnings) keep reaching the terminal.
    sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, errors="replace")
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode(errors="replace"))
            raise
        finally:
            sys.stderr.close()
            sys.stderr = python_stderr
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow and lists its devices with native logs discarded (once per process)."""
    if "tensorflow" in sys.modules or _verbose():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with quiet_native_stderr():
        import tensorflow

        tensorflow.config.list_physical_devices()
