"""Mixed-precision `auto`, weight EMA, `--sync-bn` through the builders, run-directory hygiene."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from training import artifacts, train
from training.model_build import build_model
from training.precision import _cpu_flags, native_mixed_precision, resolve_mixed_precision
from training.run_dir import RunDirError

pytestmark = pytest.mark.keras3_only  # the training world is Keras 3 (DESIGN.md)

SMALL = dict(
    model="lenet5_modern",
    dataset="fashion_mnist",
    train_limit=384,
    test_limit=128,
    batch_size=64,
    mixed_precision="off",  # pinned: auto depends on the CPU (tests force bfloat16 by name)
    verbose=0,
    preview=False,
    tensorboard=False,
)


# --------------------------------------------------------------------------------------------
# --mixed-precision auto
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, gpus, tpu, expected",
    [
        ({"avx2", "amx_bf16", "amx_tile"}, [], False, "bfloat16"),
        ({"avx512f", "avx512_bf16"}, [], False, "bfloat16"),
        ({"avx2", "avx512f", "fma"}, [], False, "off"),
        (set(), [(8, 6)], False, "bfloat16"),
        (set(), [(9, 0), (8, 0)], False, "bfloat16"),
        ({"amx_bf16"}, [(7, 5)], False, "float16"),  # the GPU computes, not the CPU
        (set(), [(8, 0), (7, 0)], False, "float16"),  # the weakest GPU decides
        ({"amx_bf16"}, [(6, 1)], False, "off"),
        (set(), [None], False, "off"),  # capability unknown: stay safe
        (set(), [], True, "bfloat16"),
    ],
)
def test_native_mixed_precision(flags, gpus, tpu, expected):
    assert native_mixed_precision(frozenset(flags), gpus, tpu) == expected


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx2 amx_bf16\n\n")
    flags = _cpu_flags(cpuinfo) if sys.platform.startswith("linux") else frozenset()
    assert flags == ({"fpu", "avx2", "amx_bf16"} if sys.platform.startswith("linux") else set())
    assert _cpu_flags(tmp_path / "missing") == frozenset()


def test_resolve_mixed_precision():
    assert resolve_mixed_precision("auto") == native_mixed_precision()
    for value in ("off", "float16", "bfloat16"):
        assert resolve_mixed_precision(value) == value
    with pytest.raises(ValueError, match=r"mixed_precision.*'auto'.*got 'half'"):
        resolve_mixed_precision("half")


def test_auto_is_the_default_and_the_resolved_policy_is_recorded(tmp_path):
    options = {k: v for k, v in SMALL.items() if k != "mixed_precision"}
    result = train(**options, epochs=1, run_dir=str(tmp_path / "run"))
    native = native_mixed_precision()
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["mixed_precision"] == native and result.metrics["mixed_precision"] == native
    assert tf.keras.mixed_precision.global_policy().name == "float32"  # restored
    # The same command again resolves auto the same way: the finished run is recognized.
    assert train(**options, epochs=1, run_dir=str(tmp_path / "run")).status == "already_finished"


# --------------------------------------------------------------------------------------------
# Weight EMA
# --------------------------------------------------------------------------------------------


class WeightSpy(tf.keras.callbacks.Callback):
    """Records the model's weights: raw after training steps, and what later callbacks see."""

    def __init__(self):
        super().__init__()
        self.after_steps, self.at_epoch_end, self.at_epoch_begin = {}, {}, {}

    def on_epoch_begin(self, epoch, logs=None):
        self.at_epoch_begin[epoch] = self.model.get_weights()
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.after_steps[self._epoch] = self.model.get_weights()

    def on_epoch_end(self, epoch, logs=None):
        self.at_epoch_end[epoch] = self.model.get_weights()
        if epoch == getattr(self, "crash_after", None):
            raise RuntimeError(f"simulated crash after epoch {epoch}")


def _trainable(model_weights, model):
    names = [w.path for w in model.weights]
    trainable = {w.path for w in model.trainable_weights}
    return [w for w, n in zip(model_weights, names, strict=True) if n in trainable]


def _gap(a, b) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))


def test_ema_weights_are_validated_saved_and_swapped_back(tmp_path):
    spy = WeightSpy()
    # Plain training form: model.keras then holds the very weights the callbacks saw.
    options = dict(
        SMALL, epochs=2, ema_momentum=0.9, early_stopping=0, mixed_precision="off", reparam=False
    )
    result = train(**options, run_dir=str(tmp_path / "ema"), callbacks=[spy])
    assert result.config["ema_momentum"] == 0.9
    model = spy.model
    for epoch in (0, 1):
        # Callbacks after ours (and validation) see the averages, not the raw weights...
        raw, seen = spy.after_steps[epoch], spy.at_epoch_end[epoch]
        assert _gap(_trainable(raw, model), _trainable(seen, model)) > 1e-4
    # ...and training continues from the raw weights.
    assert _gap(spy.at_epoch_begin[1], spy.after_steps[0]) < 1e-5  # swapped by add/subtract

    import layers  # noqa: F401  (registers the custom layers for loading)

    saved = tf.keras.models.load_model(tmp_path / "ema" / "model.keras", compile=False)
    best = result.metrics["best_epoch"] - 1
    assert _gap(saved.get_weights(), spy.at_epoch_end[best]) < 1e-6

    # Without EMA the weights the callbacks see are the trained ones.
    plain = WeightSpy()
    train(**dict(options, ema_momentum=0.0), run_dir=str(tmp_path / "plain"), callbacks=[plain])
    assert _gap(plain.after_steps[1], plain.at_epoch_end[1]) == 0.0


def test_ema_resume_continues_from_the_raw_weights(tmp_path):
    options = dict(SMALL, epochs=2, ema_momentum=0.9, early_stopping=0, mixed_precision="off")
    first = WeightSpy()
    first.crash_after = 0
    with pytest.raises(RuntimeError, match="after epoch 0"):
        train(**options, run_dir=str(tmp_path / "run"), callbacks=[first])
    second = WeightSpy()
    result = train(**options, run_dir=str(tmp_path / "run"), callbacks=[second])
    assert result.metrics["resumed_from_epoch"] == 1
    # The backup was written with the averages in the model: the swap back restores the raw
    # weights the uninterrupted run would continue from.
    assert _gap(second.at_epoch_begin[1], first.after_steps[0]) < 1e-5


# --------------------------------------------------------------------------------------------
# --sync-bn
# --------------------------------------------------------------------------------------------


def _bn_flags(model) -> list[bool]:
    return [
        layer.synchronized
        for layer in model._flatten_layers(include_self=False)
        if type(layer).__name__ == "BatchNorm"
    ]


def test_early_stopping_and_val_split_come_from_the_model_defaults(monkeypatch):
    from training import config as config_module
    from training.config import TrainConfig, resolve_config

    plain = resolve_config(TrainConfig(model="lenet5"))
    assert (plain.early_stopping, plain.val_split) == (5, 0.1)
    monkeypatch.setitem(
        config_module.MODEL_DEFAULTS,
        "lenet5",
        dict(config_module.MODEL_DEFAULTS["lenet5"], early_stopping=0, val_split=0.05),
    )
    tuned = resolve_config(TrainConfig(model="lenet5"))
    assert (tuned.early_stopping, tuned.val_split) == (0, 0.05)
    # What the user sets wins over the model's default.
    mine = resolve_config(TrainConfig(model="lenet5", early_stopping=3, val_split=0.2))
    assert (mine.early_stopping, mine.val_split) == (3, 0.2)


def test_sync_bn_is_a_builder_argument():
    from zoo import create_model

    for name, options in (
        ("lenet5_modern", {}),
        ("alexnet_bn", {"input_shape": (64, 64, 3), "num_classes": 10, "fc_units": 16}),
    ):
        assert _bn_flags(create_model(name, **options)) == [False] * len(
            _bn_flags(create_model(name, **options))
        )
        synced = create_model(name, synchronized=True, **options)
        flags = _bn_flags(synced)
        assert flags and all(flags), name
        assert all(
            layer.get_config()["synchronized"]
            for layer in synced.layers
            if type(layer).__name__ == "BatchNorm"
        )
    assert all(_bn_flags(build_model("lenet5_modern", 10, None, {}, True)))
    with pytest.raises(ValueError, match=r"synchronized=True.*'lrn'"):
        create_model("alexnet", input_shape=(64, 64, 3), synchronized=True)
    with pytest.raises(ValueError, match=r"--sync-bn: model 'lenet5' has no BatchNorm"):
        build_model("lenet5", 10, None, {}, True)


# --------------------------------------------------------------------------------------------
# Run directory
# --------------------------------------------------------------------------------------------


def test_stale_temporaries_of_a_killed_run_are_removed(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)  # that process has exited
    stale = [f".model.tmp{dead_pid}.keras", f".history.tmp{dead_pid}.csv", ".write-testab_12"]
    live = f".metrics.tmp{os.getppid()}.json"  # a running process's file is kept
    kept = ["model.keras", ".hidden-note", "notes.tmp1.txt"]
    for name in [*stale, live, *kept]:
        (tmp_path / name).write_text("x")
    removed = artifacts.remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live, *kept])


def test_a_run_start_cleans_its_directory_and_names_model_changes_first(tmp_path):
    run_dir = tmp_path / "run"
    train(**SMALL, epochs=1, run_dir=str(run_dir))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    leftover = run_dir / f".model.tmp{int(dead.stdout)}.keras"
    leftover.write_text("half a model")
    changed = dict(SMALL, model="lenet5", augment="none", batch_size=32, epochs=3, seed=4)
    with pytest.raises(RunDirError) as info:
        train(**changed, run_dir=str(run_dir))
    message = str(info.value)
    assert message.index("model: 'lenet5_modern' -> 'lenet5'") < message.index("augment:")
    assert "more" in message  # more than four keys differ
    assert not leftover.exists()


def test_alexnet_takes_mnist_like_images_and_resizes_them_inside():
    from training.config import TrainConfig, resolve_config

    default = resolve_config(TrainConfig(model="alexnet_bn"))
    assert (default.input_shape, default.model_options) == ("28,28,1", {"resize_to": 64})
    assert default.epochs == 5
    # alexnet_bn's recipe on such data; the LRN variants keep the paper's learning rate.
    assert (default.learning_rate, default.label_smoothing) == (0.02, 0.1)
    lrn = resolve_config(TrainConfig(model="alexnet"))
    assert (lrn.learning_rate, lrn.label_smoothing, lrn.epochs) == (0.01, 0.0, 5)
    assert resolve_config(TrainConfig(model="alexnet_bn", learning_rate=0.05)).learning_rate == 0.05
    assert resolve_config(TrainConfig(model="alexnet", epochs=9)).epochs == 9
    chosen = resolve_config(TrainConfig(model="alexnet", model_options=["resize_to=96"]))
    assert (chosen.input_shape, chosen.model_options) == ("28,28,1", {"resize_to": 96})
    other = resolve_config(TrainConfig(model="alexnet_bn", dataset="tfds:imagenette"))
    assert (other.input_shape, other.model_options, other.epochs) == (None, None, 30)
    assert (other.learning_rate, other.label_smoothing) == (0.01, 0.0)
    lenet = resolve_config(TrainConfig(model="lenet5"))
    assert (lenet.input_shape, lenet.model_options) == (None, None)
