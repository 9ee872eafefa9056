"""Every model builds in both Keras worlds with the same layers and weight order, and weights
move between them with get_weights/set_weights (the QAT process rebuilds in tf_keras)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import testing_utils

import zoo

ROOT = Path(__file__).resolve().parents[2]

# Small inputs keep this fast; the architecture (and so the weight order) is the same.
CONFIGS = {
    "lenet5": {},
    "lenet5_modern": {"dropout_rate": 0.2},
    "alexnet": {"input_shape": (64, 64, 3), "num_classes": 10, "fc_units": 64},
    "alexnet_single_tower": {"input_shape": (64, 64, 3), "num_classes": 10, "fc_units": 64},
    "alexnet_bn": {"input_shape": (64, 64, 3), "num_classes": 10, "fc_units": 64},
    "conv_autoencoder": {},
}

# Runs in the other world: builds every model, dumps its weight layout and arrays, and its
# inference outputs on a fixed input.
_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
import zoo
configs, out = json.loads(sys.argv[1]), sys.argv[2]
layout, arrays = {}, {}
for name, kwargs in configs.items():
    tf.keras.utils.set_random_seed(1)
    if "input_shape" in kwargs:
        kwargs["input_shape"] = tuple(kwargs["input_shape"])
    model = zoo.create_model(name, **kwargs)
    layout[name] = [
        [layer.name, type(layer).__name__,
         [[w.name.split("/")[-1].split(":")[0], list(w.shape)] for w in layer.weights]]
        for layer in model.layers
    ]
    for i, w in enumerate(model.get_weights()):
        arrays[f"{name}/{i}"] = w
    x = np.random.RandomState(0).uniform(0, 255, (2, *model.input_shape[1:])).astype("float32")
    arrays[f"{name}/output"] = np.asarray(model(x, training=False))
np.savez(out + ".npz", **arrays)
json.dump({"world": tf.keras.layers.Layer.__module__, "layout": layout}, open(out + ".json", "w"))
"""


def _layout(model):
    return [
        [
            layer.name,
            type(layer).__name__,
            [[w.name.split("/")[-1].split(":")[0], list(w.shape)] for w in layer.weights],
        ]
        for layer in model.layers
    ]


def test_models_match_across_keras_worlds(tmp_path):
    other_legacy = not testing_utils.LEGACY_KERAS
    env = dict(
        os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_USE_LEGACY_KERAS="1" if other_legacy else "0"
    )
    out = str(tmp_path / "other")
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps(CONFIGS), out],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    other = json.loads(Path(out + ".json").read_text())
    assert other["world"].startswith("tf_keras") == other_legacy, other["world"]
    arrays = np.load(out + ".npz")
    for name, kwargs in CONFIGS.items():
        model = zoo.create_model(name, **kwargs)
        assert _layout(model) == other["layout"][name], name
        # Weights built in the other world load positionally here and compute the same.
        weights = model.get_weights()
        moved = [arrays[f"{name}/{i}"] for i in range(len(weights))]
        assert [w.shape for w in moved] == [w.shape for w in weights]
        model.set_weights(moved)
        x = np.random.RandomState(0).uniform(0, 255, (2, *model.input_shape[1:])).astype("float32")
        np.testing.assert_allclose(
            np.asarray(model(x, training=False)),
            arrays[f"{name}/output"],
            rtol=1e-4,
            atol=1e-4 * (255 if name == "conv_autoencoder" else 1),
            err_msg=name,
        )
