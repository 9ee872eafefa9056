"""`--help` of every command line answers without importing TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import pytest

HELP_WITHOUT_TENSORFLOW = """
import runpy, sys
sys.argv = [sys.argv[1], "--help"]
try:
    runpy.run_module(sys.argv[0], run_name="__main__")
except SystemExit as exit:
    assert exit.code == 0, exit.code
heavy = sorted(m for m in ("tensorflow", "keras", "tf_keras", "onnx") if m in sys.modules)
print("loaded:", heavy)
"""


@pytest.mark.parametrize(
    "command", ["training", "export", "zoo", "export.predict", "training.ship_weights"]
)
def test_help_does_not_import_tensorflow(command):
    proc = subprocess.run(
        [sys.executable, "-c", HELP_WITHOUT_TENSORFLOW, command],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage: python -m " + command in proc.stdout
    assert proc.stdout.strip().endswith("loaded: []"), proc.stdout[-300:]


LOAD_ON_FIRST_USE = """
import zoo.model_summary  # a submodule first: the package's functions stay functions
import zoo
assert callable(zoo.summary) and callable(zoo.layer_stats), zoo.summary
print(zoo.create_model("lenet5").count_params())
"""


def test_the_zoo_still_loads_on_first_use():
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_ON_FIRST_USE],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "61706"
