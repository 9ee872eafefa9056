"""The bad-input catalogue: every user mistake the product must answer with a clear error.

One list per surface, one test id per case (`pytest tests/test_bad_inputs.py -v` reads as the
catalogue):

- `LAYER_CASES`, `ZOO_CASES`: Python-level; each raises `ValueError` whose message names the
  bad value and what is accepted (both Keras worlds).
- `TRAINING_CLI_CASES`, `EXPORT_CLI_CASES`: `python -m training` / `python -m export` in a
  real subprocess (all cases of one CLI share one process, see `hardening_utils.run_cli_cases`);
  each case gets its own directory with whatever pre-existing files it needs, and asserts exit
  code 2, exactly one `<prog>: error:` line on stderr naming the bad value and what is
  accepted, no traceback, and a directory snapshot (paths, bytes, mtimes) unchanged: nothing
  pre-existing modified and no file created.

Covered elsewhere and not repeated here:

- a finished run directory rerun with the same command is reported and left untouched:
  tests/training/test_training_run.py::test_one_epoch_run_writes_every_artifact;
- oracle-level checks of the same layer errors (more shapes): tests/layers/test_convolution.py,
  test_conv_transpose.py, test_pooling.py, test_batch_norm.py, test_norms.py, test_padding.py;
- the export CLI's bad inputs in-process (same messages): tests/export/test_export_cli.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import tensorflow as tf
from hardening_utils import (
    assert_nothing_changed,
    free_port,
    idx_bytes,
    make_idx_dir,
    one_error_line,
    python_env,
    run_cli_cases,
    snapshot,
)

import zoo
from layers.batch_norm import BatchNorm
from layers.conv_transpose import ConvTranspose2D
from layers.convolution import Conv1D, Conv2D, Conv3D
from layers.group_norm import GroupNorm
from layers.pooling import AvgPool2D, MaxPool2D

# --------------------------------------------------------------------------------------------
# Python level: layers and zoo
# --------------------------------------------------------------------------------------------


def _zeros(*shape: int) -> tf.Tensor:
    return tf.zeros(shape)


POSITIVE = "a positive integer or a tuple of"

# (id, call, regex the message must match: the bad value and what is accepted)
LAYER_CASES: list[tuple[str, Callable[[], object], str]] = [
    # zero / negative kernel, stride, dilation
    ("conv2d-kernel-0", lambda: Conv2D(4, 0), rf"`kernel_size` must be {POSITIVE}.*got 0"),
    ("conv2d-kernel-neg", lambda: Conv2D(4, (3, -3)), r"`kernel_size`.*got \(3, -3\)"),
    ("conv3d-kernel-0", lambda: Conv3D(4, (3, 3, 0)), r"`kernel_size`.*3 such.*got \(3, 3, 0\)"),
    ("conv2d-stride-0", lambda: Conv2D(4, 3, strides=0), rf"`strides` must be {POSITIVE}.*got 0"),
    ("conv2d-stride-neg", lambda: Conv2D(4, 3, strides=-2), r"`strides`.*got -2"),
    ("conv2d-dilation-0", lambda: Conv2D(4, 3, dilation=0), rf"`dilation` must be {POSITIVE}"),
    ("conv1d-dilation-neg", lambda: Conv1D(4, 3, dilation=-2), r"`dilation`.*got -2"),
    ("convT-kernel-0", lambda: ConvTranspose2D(4, 0), rf"`kernel_size` must be {POSITIVE}"),
    ("convT-stride-neg", lambda: ConvTranspose2D(4, 3, strides=-1), r"`strides`.*got -1"),
    ("convT-dilation-0", lambda: ConvTranspose2D(4, 3, dilation=0), r"`dilation`.*got 0"),
    ("pool-size-0", lambda: MaxPool2D(0), rf"`pool_size` must be {POSITIVE}.*got 0"),
    ("pool-stride-neg", lambda: AvgPool2D(2, strides=-1), r"`strides`.*got -1"),
    # kernel larger than the padded input
    (
        "conv-kernel-larger-than-input",
        lambda: Conv2D(4, 5)(_zeros(1, 3, 3, 1)),
        r"kernel larger than padded input.*spans 5 positions.*3 \+ 0 \+ 0 = 3.*smaller kernel",
    ),
    (
        "conv-dilated-kernel-larger-than-padded-input",
        lambda: Conv2D(4, 3, padding=1, dilation=3)(_zeros(1, 4, 4, 1)),
        r"spans 7 positions.*4 \+ 1 \+ 1 = 6.*more padding",
    ),
    (
        "pool-larger-than-input",
        lambda: MaxPool2D(5)(_zeros(1, 3, 3, 1)),
        r"pool_size 5 is larger than the padded input \(3 \+ 0 \+ 0 = 3\)",
    ),
    (
        "convT-padding-eats-output",
        lambda: ConvTranspose2D(2, 3, padding=3)(_zeros(1, 2, 2, 1)),
        r"input size 2.*output size -2 < 1.*less padding or a larger input",
    ),
    # unknown padding mode / padding
    (
        "conv-unknown-padding-mode",
        lambda: Conv2D(4, 3, padding_mode="mirror"),
        r"'zeros', 'reflect', 'replicate', 'circular', got 'mirror'",
    ),
    (
        "conv-unknown-padding",
        lambda: Conv2D(4, 3, padding="full"),
        r"'same' or 'valid', got 'full'",
    ),
    # wrong input rank
    (
        "conv-rank-3-input",
        lambda: Conv2D(4, 3)(_zeros(1, 8, 8)),
        r"expects a 4D input \(batch, height, width, channels\), got shape \(1, 8, 8\) \(3D\)",
    ),
    (
        "convT-rank-5-input",
        lambda: ConvTranspose2D(4, 3)(_zeros(1, 8, 8, 8, 1)),
        r"expects a 4D input.*\(5D\)",
    ),
    ("pool-rank-2-input", lambda: MaxPool2D(2)(_zeros(8, 8)), r"expects a 4D input.*\(2D\)"),
    # channels not divisible by groups
    (
        "conv-filters-not-divisible-by-groups",
        lambda: Conv2D(6, 3, groups=4),
        r"`filters`=6 must be divisible by `groups`=4",
    ),
    (
        "conv-input-channels-not-divisible-by-groups",
        lambda: Conv2D(4, 3, groups=2)(_zeros(1, 8, 8, 3)),
        r"input channels 3 must be divisible by `groups`=2",
    ),
    (
        "groupnorm-channels-not-divisible",
        lambda: GroupNorm(groups=4)(_zeros(2, 4, 4, 6)),
        r"6 channels cannot be split into groups=4.*must divide",
    ),
    # output_padding >= stride
    (
        "convT-output-padding-equal-stride",
        lambda: ConvTranspose2D(4, 3, strides=2, output_padding=2),
        r"`output_padding` must be smaller than the stride.*output_padding=\(2, 2\)",
    ),
    (
        "convT-output-padding-with-stride-1",
        lambda: ConvTranspose2D(4, 3, output_padding=1),
        r"`output_padding` must be smaller than the dilation \(stride is 1\)",
    ),
    (
        "convT-output-padding-negative",
        lambda: ConvTranspose2D(4, 3, strides=2, output_padding=-1),
        r"`output_padding` must be an integer >= 0.*got -1",
    ),
    # BatchNorm on a batch of 1 in training
    (
        "batchnorm-batch-of-1-dense",
        lambda: BatchNorm()(tf.ones((1, 4)), training=True),
        r"more than 1 value per channel in training, got input shape \(1, 4\).*batch of 2",
    ),
    (
        "batchnorm-batch-of-1-1x1-image",
        lambda: BatchNorm()(tf.ones((1, 1, 1, 3)), training=True),
        r"more than 1 value per channel.*\(1, 1, 1, 3\).*training=False",
    ),
]

ZOO_CASES: list[tuple[str, Callable[[], object], str]] = [
    (
        "unknown-model",
        lambda: zoo.create_model("resnet50"),
        r"Unknown model 'resnet50'.*Known models: alexnet, .*lenet5",
    ),
    (
        "unknown-model-info",
        lambda: zoo.get_model_info("LeNet-5"),
        r"'LeNet-5'.*Known models",
    ),
    (
        "alexnet-input-too-small",
        lambda: zoo.create_model("alexnet", input_shape=(32, 32, 3)),
        r"Input 32x32 is too small for 'alexnet'.*minimum is \d+x\d+.*resize_to",
    ),
    (
        "alexnet-bn-input-too-small",
        lambda: zoo.create_model("alexnet_bn", input_shape=(16, 16, 3)),
        r"Input 16x16 is too small.*minimum",
    ),
    (
        "num-classes-0",
        lambda: zoo.create_model("lenet5", num_classes=0),
        r"`num_classes` of 'lenet5' must be a positive integer, got 0",
    ),
    (
        "num-classes-negative",
        lambda: zoo.create_model("alexnet", num_classes=-1),
        r"`num_classes`.*positive integer, got -1",
    ),
    (
        "num-classes-not-int",
        lambda: zoo.create_model("lenet5_modern", num_classes=2.5),
        r"`num_classes`.*positive integer, got 2.5",
    ),
]


@pytest.mark.parametrize(
    "call, pattern", [c[1:] for c in LAYER_CASES], ids=[c[0] for c in LAYER_CASES]
)
def test_layer_bad_argument(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


@pytest.mark.parametrize("call, pattern", [c[1:] for c in ZOO_CASES], ids=[c[0] for c in ZOO_CASES])
def test_zoo_bad_argument(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


# --------------------------------------------------------------------------------------------
# CLI cases
# --------------------------------------------------------------------------------------------


@dataclass
class CliCase:
    """One bad invocation.

    Attributes:
        id: test id.
        argv: arguments (relative paths are relative to the case's own directory).
        needles: substrings of the error line (the bad value, what is accepted).
        setup: builds the case's pre-existing files in its directory.
        env: environment changes (None unsets a variable).
        code: expected exit code.
        outside: absolute paths outside the case directory that must not come to exist.
        absent: substrings the error line must not hold (a remedy that does not apply).
    """

    id: str
    argv: list[str]
    needles: list[str]
    setup: Callable[[Path], None] = lambda d: None
    env: dict[str, str | None] = field(default_factory=dict)
    code: int = 2
    outside: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)


def _idx_dir(name: str = "data", **kwargs) -> Callable[[Path], None]:
    return lambda d: make_idx_dir(d / name, **kwargs)


def _corrupt(stem: str, how: str) -> Callable[[Path], None]:
    def setup(d: Path) -> None:
        make_idx_dir(d / "data", n_train=60, n_test=20)
        path = d / "data" / f"{stem}.gz"
        if how == "magic":
            path.write_bytes(b"\x08\x03\x00\x00 this is not IDX")
        elif how == "gzip":
            path.write_bytes(path.read_bytes()[:-25])
        elif how == "payload":
            path.unlink()
            raw = idx_bytes(make_array(60), compress=False)
            (d / "data" / stem).write_bytes(raw[:-7])
        elif how == "count":
            path.write_bytes(idx_bytes(make_array(59)[:, 0, 0]))

    return setup


def make_array(n: int):
    import numpy as np

    return np.zeros((n, 28, 28), np.uint8)


def _empty_folder(d: Path) -> None:
    for name in ("cat", "dog"):
        (d / "images" / name).mkdir(parents=True)
    (d / "images" / "cat" / "notes.txt").write_text("not an image")


def _flat_folder(d: Path) -> None:
    (d / "images").mkdir()
    (d / "images" / "readme.md").write_text("images should be in class subfolders")


def _one_class_folder(d: Path) -> None:
    from PIL import Image

    (d / "images" / "cat").mkdir(parents=True)
    for i in range(3):
        Image.new("L", (8, 8), 40 * i).save(d / "images" / "cat" / f"{i}.png")


def _config_file(text: str) -> Callable[[Path], None]:
    return lambda d: (d / "run.yaml").write_text(text)


def _blocker(d: Path) -> None:
    (d / "file").write_text("a regular file where a directory is needed")


def _readonly_parent(d: Path) -> None:
    (d / "locked").mkdir()
    (d / "locked").chmod(0o500)


READONLY_RUN_DIR = (
    "locked/run" if os.geteuid() != 0 else "/sys/convzoo-hardening-run"
)  # root ignores permission bits; /sys refuses new entries even to root


def _existing_run(d: Path) -> None:
    from training.config import TrainConfig, resolve_config

    stored = resolve_config(TrainConfig(model="lenet5_modern", run_dir="run", epochs=3))
    (d / "run").mkdir()
    (d / "run" / "config.json").write_text(json.dumps(stored.to_dict(), indent=2))
    (d / "run" / "model.keras").write_bytes(b"a trained model the user wants to keep")
    (d / "run" / "history.csv").write_text("epoch,loss\n0,0.5\n")


def _foreign_dir(d: Path) -> None:
    (d / "run").mkdir()
    (d / "run" / "thesis.tex").write_text("\\documentclass{article}")


def _unreadable_config_run(d: Path) -> None:
    (d / "run").mkdir()
    (d / "run" / "config.json").write_text('{"model": "lenet5", ')
    (d / "run" / "model.keras").write_bytes(b"weights")


QUICK = ["--run-dir", "run", "--epochs", "1", "--train-limit", "64", "--verbose", "0"]
DATA = ["--data-dir", "data"]
# No download can succeed, even on a connected machine: every HTTPS request goes to a local
# port where nothing listens (refused at once, so the offline check takes no time either).
_NO_PROXY = f"http://127.0.0.1:{free_port()}"
OFFLINE = {
    "CONVZOO_DATA": None,
    "KERAS_HOME": None,
    "HOME": "{dir}/home",
    "TFDS_DATA_DIR": "{dir}/tfds",
    "NO_GCE_CHECK": "true",
    "https_proxy": _NO_PROXY,
    "HTTPS_PROXY": _NO_PROXY,
    "http_proxy": _NO_PROXY,
    "HTTP_PROXY": _NO_PROXY,
    "no_proxy": None,
    "NO_PROXY": None,
}

TRAINING_CLI_CASES: list[CliCase] = [
    # unknown flag or value
    CliCase("unknown-flag", ["--epochz", "1", *QUICK], ["--epochz", "--epochs", "--help"]),
    CliCase(
        "unknown-choice",
        ["--optimizer", "rmsprop", *QUICK],
        ["'rmsprop'", "'adam'", "'sgd'"],
    ),
    CliCase("not-an-int", ["--batch-size", "big", *QUICK], ["--batch-size", "'big'", "int"]),
    CliCase("non-positive-epochs", [*QUICK, "--epochs", "0"], ["epochs", "positive", "got 0"]),
    CliCase("val-split-out-of-range", ["--val-split", "1.5", *QUICK], ["val_split", "(0, 1)"]),
    CliCase(
        "unknown-model",
        ["--model", "resnet50", *QUICK],
        ["'resnet50'", "Known models", "lenet5"],
    ),
    CliCase(
        "unknown-dataset",
        ["--dataset", "cifar10", *QUICK],
        ["'cifar10'", "did you mean 'tfds:cifar10'?", "'fashion_mnist'", "tfds:<name>"],
    ),
    CliCase(
        "unknown-tfds-dataset",
        ["--dataset", "tfds:cifar", *QUICK],
        ["tfds:cifar", "no such TensorFlow Datasets data set", "did you mean tfds:cifar10"],
    ),
    CliCase("bad-input-shape", ["--input-shape", "28,28", *QUICK], ["'28,28'", "H,W,C"]),
    CliCase(
        "sync-bn-without-batchnorm",
        ["--sync-bn", "--model", "lenet5", "--data-dir", "data", *QUICK],
        ["--sync-bn", "'lenet5'", "lenet5_modern"],
        setup=_idx_dir(n_train=60, n_test=20),
    ),
    CliCase(
        "reparam-without-training-form",
        ["--reparam", "--model", "lenet5", "--data-dir", "data", *QUICK],
        ["--reparam", "'lenet5'", "lenet5_modern"],
        setup=_idx_dir(n_train=60, n_test=20),
    ),
    CliCase("missing-config-file", ["--config", "nope.yaml", *QUICK], ["nope.yaml", "no such"]),
    CliCase(
        "config-key-typo",
        ["--config", "run.yaml", *QUICK],
        ["--config run.yaml", "'batch_sise' (did you mean 'batch_size'?)", "accepted"],
        setup=_config_file("batch_sise: 64\n"),
    ),
    # --model-options: an unknown keyword, a known keyword with a value of the wrong type
    CliCase(
        "model-option-unknown",
        ["--model", "lenet5_modern", "--model-options", "dropout=0.3", *DATA, *QUICK],
        ["'dropout'", "did you mean 'dropout_rate'?", "accepted: conv1_padding, dropout_rate"],
        setup=_idx_dir(n_train=60, n_test=20),
    ),
    CliCase(
        "model-option-bad-value",
        ["--model", "lenet5_modern", "--model-options", "dropout_rate=abc", *DATA, *QUICK],
        ["dropout_rate='abc'", "expects dropout_rate to be float", "default: 0.0", "got str"],
        setup=_idx_dir(n_train=60, n_test=20),
        absent=["does not accept", "has no option"],
    ),
    CliCase("resume-not-a-run", ["--resume", "somewhere"], ["somewhere", "config.json"]),
    # missing dataset offline
    # Debian packages Fashion-MNIST only: MNIST's remedies are IDX files, mnist.npz or TFDS
    CliCase(
        "dataset-missing-offline",
        ["--dataset", "mnist", *QUICK],
        ["mnist", "--data-dir", "CONVZOO_DATA", "mnist.npz", "tfds build mnist", "no connection"],
        env=OFFLINE,
        absent=["apt-get"],
    ),
    CliCase(
        "dataset-missing-in-data-dir",
        ["--dataset", "mnist", "--data-dir", "empty", *QUICK],
        ["--data-dir empty", "train-images-idx3-ubyte", "mnist.npz", "Debian has no mnist"],
        setup=lambda d: (d / "empty").mkdir(),
        env=OFFLINE,
        absent=["apt-get"],
    ),
    CliCase(
        "tfds-dataset-offline",
        ["--dataset", "tfds:cifar10", "--data-dir", "tfds-data", *QUICK],
        [
            "tfds:cifar10 is not on this machine",
            "--data-dir tfds-data",
            "could not be downloaded (no connection",
            "tfds build cifar10 --data_dir DIR",
            "pass `--data-dir DIR`",
        ],
        setup=lambda d: (d / "tfds-data").mkdir(),
        env=OFFLINE,
        absent=["splits"],
    ),
    CliCase(
        "idx-some-files-missing",
        ["--data-dir", "data", *QUICK],
        ["t10k-labels-idx1-ubyte", "missing"],
        setup=lambda d: (
            make_idx_dir(d / "data", n_train=60, n_test=20),
            (d / "data" / "t10k-labels-idx1-ubyte.gz").unlink(),
        ),
    ),
    # corrupt / truncated IDX or gzip
    CliCase(
        "idx-bad-magic",
        ["--data-dir", "data", *QUICK],
        ["train-images-idx3-ubyte.gz", "not an IDX file", "expected 00 00"],
        setup=_corrupt("train-images-idx3-ubyte", "magic"),
    ),
    CliCase(
        "gzip-truncated",
        ["--data-dir", "data", *QUICK],
        ["train-images-idx3-ubyte.gz", "corrupt or truncated gzip"],
        setup=_corrupt("train-images-idx3-ubyte", "gzip"),
    ),
    CliCase(
        "idx-payload-truncated",
        ["--data-dir", "data", *QUICK],
        ["train-images-idx3-ubyte", "(60, 28, 28)", "truncated"],
        setup=_corrupt("train-images-idx3-ubyte", "payload"),
    ),
    # label / image count mismatch
    CliCase(
        "label-image-count-mismatch",
        ["--data-dir", "data", *QUICK],
        ["60 images", "59 labels", "train-labels-idx1-ubyte.gz"],
        setup=_corrupt("train-labels-idx1-ubyte", "count"),
    ),
    # empty image folder
    CliCase(
        "image-folder-empty",
        ["--dataset", "folder:images", *QUICK],
        ["folder:images", "no images found", ".png"],
        setup=_empty_folder,
    ),
    CliCase(
        "image-folder-without-class-subfolders",
        ["--dataset", "folder:images", *QUICK],
        ["folder:images", "no images found", "subfolder per class"],
        setup=_flat_folder,
    ),
    CliCase(
        "image-folder-one-class",
        ["--dataset", "folder:images", *QUICK],
        ["folder:images", "only one class found ('cat', 3 images)", "at least 2"],
        setup=_one_class_folder,
    ),
    CliCase(
        "image-folder-missing",
        ["--dataset", "folder:nowhere", *QUICK],
        ["folder:nowhere", "no such directory"],
    ),
    # unwritable run directory
    CliCase(
        "run-dir-under-a-file",
        [*QUICK, "--run-dir", "file/run", "--data-dir", "data"],
        ["--run-dir file/run", "not writable", "choose another --run-dir"],
        setup=lambda d: (_blocker(d), make_idx_dir(d / "data", n_train=60, n_test=20)),
    ),
    CliCase(
        "run-dir-read-only",
        [*QUICK, "--run-dir", READONLY_RUN_DIR, "--data-dir", "data"],
        [f"--run-dir {READONLY_RUN_DIR}", "not writable"],
        setup=lambda d: (_readonly_parent(d), make_idx_dir(d / "data", n_train=60, n_test=20)),
        outside=[READONLY_RUN_DIR] if READONLY_RUN_DIR.startswith("/") else [],
    ),
    # an existing run directory is never overwritten silently
    CliCase(
        "run-dir-holds-another-run",
        [*QUICK, "--data-dir", "data"],
        ["--run-dir run", "different configuration", "epochs: 3 -> 1", "--overwrite"],
        setup=lambda d: (_existing_run(d), make_idx_dir(d / "data", n_train=60, n_test=20)),
    ),
    CliCase(
        "run-dir-holds-other-files",
        [*QUICK, "--data-dir", "data"],
        ["--run-dir run", "not empty", "thesis.tex", "choose another --run-dir"],
        setup=lambda d: (_foreign_dir(d), make_idx_dir(d / "data", n_train=60, n_test=20)),
    ),
    CliCase(
        "overwrite-refuses-non-run-dir",
        [*QUICK, "--overwrite", "--data-dir", "data"],
        ["--run-dir run", "not a training run", "refusing"],
        setup=lambda d: (_foreign_dir(d), make_idx_dir(d / "data", n_train=60, n_test=20)),
    ),
    CliCase(
        "run-dir-unreadable-config",
        [*QUICK, "--data-dir", "data"],
        ["--run-dir run", "config.json is unreadable", "--overwrite"],
        setup=lambda d: (
            _unreadable_config_run(d),
            make_idx_dir(d / "data", n_train=60, n_test=20),
        ),
    ),
]


def _tiny_keras_model(path: Path) -> None:
    inputs = tf.keras.Input((28, 28, 1))
    x = tf.keras.layers.Conv2D(2, 3, activation="relu")(inputs)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    tf.keras.Model(inputs, tf.keras.layers.Dense(10)(x)).save(path)


def _with_model(extra: Callable[[Path], None] | None = None) -> Callable[[Path], None]:
    def setup(d: Path) -> None:
        shutil.copy(MODEL_TEMPLATE["path"], d / "tiny.keras")
        make_idx_dir(d / "data", n_train=60, n_test=20)
        if extra is not None:
            extra(d)

    return setup


MODEL_TEMPLATE: dict[str, Path] = {}


def _junk_zip(d: Path) -> None:
    with zipfile.ZipFile(d / "fake.keras", "w") as z:
        z.writestr("config.json", "{not json")
        z.writestr("model.weights.h5", b"\x00" * 64)


def _truncated_keras(d: Path) -> None:
    content = (d / "tiny.keras").read_bytes()
    (d / "cut.keras").write_bytes(content[: len(content) // 2])


def _previous_export(d: Path) -> None:
    (d / "out").mkdir()
    (d / "out" / "tiny_fp32.tflite").write_bytes(b"TFL3 an export the user keeps")
    (d / "out" / "report.md").write_text("# previous report\n")


EXPORT_QUICK = ["--dataset", "fashion_mnist", "--data-dir", "data", "--out", "out", "--quiet"]

EXPORT_CLI_CASES: list[CliCase] = [
    CliCase(
        "unknown-flag",
        ["tiny.keras", "--formatz", "all", *EXPORT_QUICK],
        ["--formatz", "--formats", "--help"],
        setup=_with_model(),
    ),
    CliCase(
        "not-an-int",
        ["tiny.keras", "--latency-runs", "many", *EXPORT_QUICK],
        ["--latency-runs", "'many'", "int"],
        setup=_with_model(),
    ),
    CliCase(
        "not-a-model",
        ["notes.txt", *EXPORT_QUICK],
        ["notes.txt", "not a model", "run directory or a .keras file"],
        setup=lambda d: (d / "notes.txt").write_text("hello"),
    ),
    CliCase(
        "directory-without-model",
        ["emptyrun", *EXPORT_QUICK],
        ["emptyrun", "model.keras", "run directory"],
        setup=lambda d: (d / "emptyrun").mkdir(),
    ),
    CliCase(
        "missing-path",
        ["nowhere.keras", *EXPORT_QUICK],
        ["nowhere.keras", "does not exist", ".keras file"],
    ),
    CliCase(
        "corrupt-keras-not-a-zip",
        ["bad.keras", *EXPORT_QUICK],
        ["bad.keras", "not a Keras model file", "valid .keras archive"],
        setup=lambda d: (d / "bad.keras").write_bytes(b"PK\x03\x04 garbage"),
    ),
    CliCase(
        "corrupt-keras-truncated",
        ["cut.keras", *EXPORT_QUICK],
        ["cut.keras", ".keras"],
        setup=_with_model(_truncated_keras),
    ),
    CliCase(
        "corrupt-keras-junk-archive",
        ["fake.keras", *EXPORT_QUICK],
        ["fake.keras", "not a loadable Keras model"],
        setup=_junk_zip,
    ),
    CliCase(
        "unknown-format",
        ["tiny.keras", "--formats", "tflite_fp32,tflite_int4", *EXPORT_QUICK],
        ["tflite_int4", "accepted", "tflite_fp32", "onnx"],
        setup=_with_model(),
    ),
    CliCase(
        "unknown-io-type",
        ["tiny.keras", "--io", "int4", *EXPORT_QUICK],
        ["'int4'", "float32", "uint8"],
        setup=_with_model(),
    ),
    CliCase(
        "prune-out-of-range",
        ["tiny.keras", "--prune", "1.5", *EXPORT_QUICK],
        ["--prune", "1.5", "[0, 1)"],
        setup=_with_model(),
    ),
    CliCase(
        "qat-without-data",
        ["tiny.keras", "--qat-epochs", "1", "--out", "out", "--quiet"],
        ["QAT", "no data set is known", "--dataset"],
        setup=_with_model(),
    ),
    CliCase(
        "export-data-missing-offline",
        ["tiny.keras", "--dataset", "mnist", "--out", "out", "--quiet"],
        ["mnist", "--data-dir", "mnist.npz"],
        setup=_with_model(),
        env=OFFLINE,
        absent=["apt-get"],
    ),
    CliCase(
        "export-dir-under-a-file",
        ["tiny.keras", *EXPORT_QUICK, "--out", "file/out"],
        ["file/out", "not usable", "is a file"],
        setup=_with_model(_blocker),
    ),
    CliCase(
        "export-dir-read-only",
        [
            "tiny.keras",
            *EXPORT_QUICK,
            "--out",
            "locked/out" if os.geteuid() != 0 else "/sys/convzoo-hardening-export",
        ],
        ["not writable"],
        setup=_with_model(_readonly_parent),
        outside=[] if os.geteuid() != 0 else ["/sys/convzoo-hardening-export"],
    ),
    CliCase(
        "previous-export-kept-on-bad-format",
        ["tiny.keras", *EXPORT_QUICK, "--formats", "tflite_fp16,coreml"],
        ["coreml", "accepted"],
        setup=_with_model(_previous_export),
    ),
]


def _run_catalogue(module: str, cases: list[CliCase], root: Path) -> dict[str, dict]:
    invocations, before = [], {}
    for case in cases:
        directory = root / case.id
        directory.mkdir()
        case.setup(directory)
        env = {k: (v.replace("{dir}", str(directory)) if v else v) for k, v in case.env.items()}
        invocations.append({"argv": case.argv, "cwd": directory, "env": env})
        before[case.id] = snapshot(directory)
    try:
        results = run_cli_cases(module, invocations)
        after = {case.id: snapshot(root / case.id) for case in cases}
    finally:
        for case in cases:  # let pytest clean up the read-only directories
            locked = root / case.id / "locked"
            if locked.exists():
                locked.chmod(0o700)
    return {
        case.id: dict(result, before=before[case.id], after=after[case.id])
        for case, result in zip(cases, results, strict=True)
    }


def _check(case: CliCase, result: dict, prog: str) -> None:
    assert result["code"] == case.code, (result["code"], result["stderr"][-3000:])
    line = one_error_line(result["stderr"], prog)
    for needle in case.needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    for wrong in case.absent:
        assert wrong not in line, f"{wrong!r} in {line!r}"
    assert_nothing_changed(result["before"], result["after"])
    for path in case.outside:
        assert not os.path.lexists(path), path


@pytest.fixture(scope="module")
def training_results(tmp_path_factory):
    return _run_catalogue("training", TRAINING_CLI_CASES, tmp_path_factory.mktemp("train-cli"))


@pytest.fixture(scope="module")
def export_results(tmp_path_factory):
    template = tmp_path_factory.mktemp("template") / "tiny.keras"
    _tiny_keras_model(template)
    MODEL_TEMPLATE["path"] = template
    return _run_catalogue("export", EXPORT_CLI_CASES, tmp_path_factory.mktemp("export-cli"))


@pytest.mark.keras3_only
@pytest.mark.parametrize("case", TRAINING_CLI_CASES, ids=[c.id for c in TRAINING_CLI_CASES])
def test_training_cli_bad_input(case, training_results):
    _check(case, training_results[case.id], "python -m training")


@pytest.mark.keras3_only
@pytest.mark.parametrize("case", EXPORT_CLI_CASES, ids=[c.id for c in EXPORT_CLI_CASES])
def test_export_cli_bad_input(case, export_results):
    _check(case, export_results[case.id], "python -m export")


@pytest.mark.keras3_only
def test_real_cli_processes_exit_2_with_one_line(tmp_path):
    """`python -m training` / `python -m export` themselves (not `main` in a harness): the
    process exit status is 2 and stderr is the one error line."""
    commands = {
        "training": [sys.executable, "-m", "training", "--epochs", "-1"],
        "export": [sys.executable, "-m", "export", str(tmp_path / "x.keras"), "--io", "int3"],
    }
    processes = {
        name: subprocess.Popen(
            argv,
            cwd=tmp_path,
            env=python_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, argv in commands.items()
    }
    outputs = {name: p.communicate(timeout=180) for name, p in processes.items()}
    assert processes["training"].returncode == 2
    line = one_error_line(outputs["training"][1], "python -m training")
    assert "epochs must be a positive integer, got -1" in line
    assert processes["export"].returncode == 2
    line = one_error_line(outputs["export"][1], "python -m export")
    assert "'int3'" in line and "uint8" in line
    assert list(tmp_path.iterdir()) == []
