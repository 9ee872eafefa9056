"""Options named by their true cause: config key typos, `--model-options` keywords and values,
default run directory names, and progress output that suits a log file."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from hardening_utils import make_idx_dir, python_env

from training.config import (
    TrainConfig,
    check_keys,
    dataset_tag,
    load_config_file,
    progress_verbose,
    resolve_config,
)
from training.model_build import build_model, builder_keywords, check_model_options

pytestmark = pytest.mark.keras3_only  # the training world is Keras 3 (DESIGN.md)


# --------------------------------------------------------------------------------------------
# --config keys
# --------------------------------------------------------------------------------------------


def test_config_key_typo_gets_a_did_you_mean(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("batch_sise: 64\nepochs: 2\nwibble: 1\n")
    with pytest.raises(ValueError) as info:
        check_keys(load_config_file(str(path)), f"--config {path}")
    message = str(info.value)
    assert f"--config {path}: unknown option(s) 'batch_sise' (did you mean 'batch_size'?), " in (
        message
    )
    assert "'wibble';" in message and "accepted: ['augment', " in message


# --------------------------------------------------------------------------------------------
# --model-options
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, options, expected",
    [
        (
            "lenet5_modern",
            {"dropout_rate": "abc"},
            "--model-options dropout_rate='abc': model 'lenet5_modern' expects dropout_rate to "
            "be float (default: 0.0), got str 'abc'",
        ),
        (
            "lenet5_modern",
            {"reparam": "yes"},
            "expects reparam to be bool (default: False, as KEY=VALUE: reparam=false), got str",
        ),
        (
            "lenet5",
            {"mean": ["a"]},
            "expects mean to be Sequence[float] (default: (0.286,), as KEY=VALUE: mean=[0.286])",
        ),
        (
            "alexnet",  # keywords forwarded to build_alexnet through **overrides
            {"resize_to": "big"},
            "model 'alexnet' expects resize_to to be int | Sequence[int] | None",
        ),
        (
            "lenet5_modern",
            {"dropout": 0.3},
            "--model-options dropout=0.3: model 'lenet5_modern' has no option 'dropout' (did you "
            "mean 'dropout_rate'?); accepted: conv1_padding, dropout_rate, mean, name, reparam, "
            "std, synchronized",
        ),
        ("lenet5", {"wings": 2}, "has no option 'wings'; accepted: activation, conv1_padding"),
        ("alexnet", {"towers": 1}, "has no option 'towers'"),  # alexnet fixes it itself
    ],
)
def test_model_option_errors_name_the_true_cause(model, options, expected):
    with pytest.raises(ValueError) as info:
        check_model_options(model, options)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    "model, options",
    [
        ("lenet5_modern", {"dropout_rate": 1}),  # an int is a float
        ("lenet5", {"conv1_padding": None, "mean": [0.5], "std": (0.25,), "activation": "relu"}),
        ("alexnet", {"resize_to": 64, "dropout_rate": 0.1, "fc_units": 16}),
        ("alexnet_single_tower", {"resize_to": [64, 64]}),
        ("conv_autoencoder", {"filters": [4, 8], "noise_stddev": 0.1}),
    ],
)
def test_model_options_of_the_right_type_pass(model, options):
    check_model_options(model, options)


def test_variants_declare_the_keywords_they_forward():
    alexnet = builder_keywords("alexnet")
    assert {"dropout_rate", "fc_units", "resize_to", "initialization"} <= set(alexnet)
    assert not {"towers", "normalization", "synchronized", "input_shape", "num_classes"} & set(
        alexnet
    )
    assert "synchronized" in builder_keywords("alexnet_bn")
    assert str(alexnet["fc_units"].annotation) == "int" and alexnet["fc_units"].default == 4096


def test_a_keyword_a_variant_sets_itself_is_refused():
    with pytest.raises(ValueError, match=r"model 'alexnet' has no option 'synchronized'"):
        check_model_options("alexnet", {"synchronized": True})


def test_bad_model_option_value_is_caught_before_the_builder():
    with pytest.raises(ValueError, match=r"dropout_rate='abc'.*float"):
        build_model("lenet5_modern", 10, None, {"dropout_rate": "abc"}, sync_bn=False)


# --------------------------------------------------------------------------------------------
# Default run directories
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dataset, tag",
    [
        ("fashion_mnist", "fashion_mnist"),
        ("mnist", "mnist"),
        ("tfds:cifar10", "tfds_cifar10"),
        ("tfds:mnist_corrupted/shot_noise", "tfds_mnist_corrupted_shot_noise"),
        ("folder:/tmp/convzoo_x1/fmfolder", "fmfolder"),
        ("folder:/data/my photos/", "my_photos"),
        ("folder:images", "images"),
    ],
)
def test_default_run_dir_names(dataset, tag):
    assert dataset_tag(dataset) == tag
    config = resolve_config(TrainConfig(model="lenet5_modern", dataset=dataset))
    assert config.run_dir == f"runs/lenet5_modern-{tag}"


def test_folder_tag_of_a_relative_path_is_the_folder_name(tmp_path, monkeypatch):
    (tmp_path / "shoes").mkdir()
    monkeypatch.chdir(tmp_path / "shoes")
    assert dataset_tag("folder:.") == "shoes"
    assert dataset_tag("folder:../shoes") == "shoes"


# --------------------------------------------------------------------------------------------
# Progress output
# --------------------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    "verbose, stream, expected",
    [
        (1, _Terminal(), 1),
        (1, io.StringIO(), 2),  # a file or a pipe: one line per epoch
        (0, io.StringIO(), 0),
        (2, _Terminal(), 2),
        (1, object(), 2),  # no isatty at all
    ],
)
def test_progress_verbose(verbose, stream, expected):
    assert progress_verbose(verbose, stream) == expected


def test_redirected_training_log_has_no_carriage_returns(tmp_path):
    """`python -m training` with the default --verbose 1 and stdout to a pipe: one line per
    epoch, no progress bar redrawn with carriage returns and backspaces."""
    make_idx_dir(tmp_path / "data", n_train=600, n_test=256)
    argv = [
        *("--data-dir", "data", "--run-dir", "run", "--epochs", "2"),
        *("--train-limit", "512", "--test-limit", "256", "--mixed-precision", "off"),
        *("--no-tensorboard", "--no-preview"),
    ]
    process = subprocess.run(
        [sys.executable, "-m", "training", *argv],
        cwd=tmp_path,
        env=python_env(),
        capture_output=True,  # stdout is a pipe, as when redirected to a log
        timeout=600,
    )
    out = process.stdout.decode(errors="replace")
    assert process.returncode == 0, process.stderr.decode(errors="replace")[-3000:]
    assert out.count("\r") == 0 and out.count("\b") == 0  # a progress bar redraws with both
    lines = out.splitlines()
    assert "Epoch 1/2" in lines and "Epoch 2/2" in lines
    assert sum(" - loss: " in line for line in lines) == 2  # one line per epoch
    assert "  run directory: run" in lines
