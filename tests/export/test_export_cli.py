"""`python -m export` on bad input: one line on stderr, exit 2, no traceback, no files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from export.__main__ import main
from export.formats import resolve_formats

pytestmark = pytest.mark.keras3_only

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_model_file(tmp_path_factory):
    inputs = tf.keras.Input((28, 28, 1))
    x = tf.keras.layers.Conv2D(2, 3, activation="relu")(inputs)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(10)(x))
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    return path


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.err


def _assert_one_line_error(err: str, *needles: str):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_missing_path_exits_2(capsys, tmp_path):
    code, err = _run(capsys, tmp_path / "nope", "--out", tmp_path / "out")
    assert code == 2
    _assert_one_line_error(err, "does not exist")
    assert not (tmp_path / "out").exists()


def test_directory_without_model_exits_2(capsys, tmp_path):
    (tmp_path / "run").mkdir()
    code, err = _run(capsys, tmp_path / "run", "--out", tmp_path / "out")
    assert code == 2
    _assert_one_line_error(err, "model.keras")
    assert not (tmp_path / "out").exists()


def test_not_a_model_file_exits_2(capsys, tmp_path):
    path = tmp_path / "weights.txt"
    path.write_text("hello")
    code, err = _run(capsys, path, "--out", tmp_path / "out")
    assert code == 2
    _assert_one_line_error(err, "not a model")


@pytest.mark.parametrize("payload", [b"not a zip at all", b"PK\x03\x04broken zip"])
def test_corrupt_keras_file_exits_2(capsys, tmp_path, payload):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(payload)
    (run / "config.json").write_text(json.dumps({"dataset": "fashion_mnist"}))
    code, err = _run(capsys, run, "--out", tmp_path / "out")
    assert code == 2
    _assert_one_line_error(err, "model.keras")
    assert not (tmp_path / "out").exists()


def test_truncated_keras_archive_exits_2(capsys, tmp_path, tiny_model_file):
    path = tmp_path / "cut.keras"
    content = tiny_model_file.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    code, err = _run(capsys, path, "--dataset", "fashion_mnist", "--out", tmp_path / "out")
    assert code == 2
    _assert_one_line_error(err, "cut.keras")


def test_unknown_format_exits_2(capsys, tmp_path, tiny_model_file):
    code, err = _run(capsys, tiny_model_file, "--formats", "tflite_fp32,tflite_int4")
    assert code == 2
    _assert_one_line_error(err, "tflite_int4", "tflite_fp32")
    with pytest.raises(ValueError, match="accepted"):
        resolve_formats("coreml")


def test_bad_io_and_prune_exit_2(capsys, tiny_model_file):
    code, err = _run(capsys, tiny_model_file, "--io", "int4")
    assert code == 2
    _assert_one_line_error(err, "int4", "uint8")
    code, err = _run(capsys, tiny_model_file, "--prune", "1.5")
    assert code == 2
    _assert_one_line_error(err, "1.5")


def test_qat_without_data_exits_2(capsys, tmp_path, tiny_model_file):
    code, err = _run(capsys, tiny_model_file, "--qat-epochs", "1", "--out", tmp_path / "out")
    assert code == 2
    _assert_one_line_error(err, "QAT", "--dataset")
    assert not (tmp_path / "out").exists()


def test_unwritable_export_dir_exits_2(capsys, tmp_path, tiny_model_file):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, err = _run(
        capsys, tiny_model_file, "--dataset", "fashion_mnist", "--out", blocker / "sub"
    )
    assert code == 2
    _assert_one_line_error(err, "not usable")
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o500)
    try:
        if os.access(readonly, os.W_OK):  # root ignores permissions: a file blocks instead
            return
        code, err = _run(capsys, tiny_model_file, "--dataset", "fashion_mnist", "--out", readonly)
        assert code == 2
        _assert_one_line_error(err, "not writable")
    finally:
        readonly.chmod(0o700)


def test_real_process_exit_code_and_stderr(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.run(
        [sys.executable, "-m", "export", str(tmp_path / "missing"), "--out", str(tmp_path / "o")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 2
    assert "Traceback" not in process.stderr
    assert "does not exist" in process.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "o").exists()


def test_cli_exports_and_fails_with_exit_1_on_broken_tolerance(
    capsys, tmp_path, tiny_model_file, monkeypatch
):
    import dataclasses

    from export import formats

    argv = [tiny_model_file, "--dataset", "fashion_mnist", "--formats", "tflite_fp32"]
    argv += ["--out", tmp_path / "out", "--test-samples", "50", "--latency-runs", "3", "--quiet"]
    code = main([str(a) for a in argv])
    out = capsys.readouterr().out
    assert code == 0 and "tflite_fp32" in out and "tiny_fp32.tflite" in out
    assert (tmp_path / "out" / "tiny_fp32.tflite").is_file()
    strict = dict(formats.FORMATS)
    strict["tflite_fp32"] = dataclasses.replace(
        strict["tflite_fp32"], tolerance=formats.Tolerance(max_abs_diff=-1.0)
    )
    monkeypatch.setattr(formats, "FORMATS", strict)
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 1
    assert "FAILED tflite_fp32:" in err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["passed"] is False
    assert np.isfinite(report["files"][0]["max_abs_diff"])


def test_a_run_record_of_a_newer_schema_exits_2(capsys, tmp_path):
    from training.record import RECORD_FILE, SCHEMA_VERSION
    from zoo import create_model

    run = tmp_path / "run"
    run.mkdir()
    create_model("lenet5").save(run / "model.keras")
    (run / RECORD_FILE).write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    code, err = _run(capsys, run, "--out", tmp_path / "out")
    assert code == 2
    _assert_one_line_error(err, RECORD_FILE, f"schema_version {SCHEMA_VERSION + 1}")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["--formats", "onnx_fp32", "--io", "int8"], ["--io int8", "tflite_int8", "onnx_fp32"]),
        (
            ["--formats", "tflite_fp32,tflite_fp16", "--calibration-samples", "50"],
            ["--calibration-samples 50", "tflite_int8", "onnx_int8", "tflm", "tflite_fp16"],
        ),
        (
            ["--formats", "tflite_int8", "--qat-samples", "100"],
            ["--qat-samples 100", "tflite_qat_int8", "--prune"],
        ),
    ],
)
def test_an_option_no_chosen_format_takes_exits_2(capsys, tmp_path, tiny_model_file, argv, needles):
    out = tmp_path / "out"
    code, err = _run(capsys, tiny_model_file, *argv, "--dataset", "fashion_mnist", "--out", out)
    assert code == 2
    _assert_one_line_error(err, *needles)
    assert not out.exists()


def test_options_are_taken_where_a_chosen_format_takes_them():
    from export.exporter import ExportOptions, check_options_apply, plan_formats

    # --io with an int8 file; --qat-samples with --qat-epochs (QAT is added) or with pruning.
    for options in (
        ExportOptions(formats=resolve_formats("onnx_fp32,tflite_int8"), io="int8"),
        ExportOptions(formats=resolve_formats("tflite_fp32"), qat_epochs=1, qat_samples=10),
        ExportOptions(formats=resolve_formats("tflite_fp32"), prune=0.5, qat_samples=10),
        ExportOptions(formats=resolve_formats("web"), calibration_samples=10),
    ):
        check_options_apply(plan_formats(options), options)


def test_shipped_weights_export_straight_from_the_zoo(capsys, tmp_path, monkeypatch):
    """`python -m export MODEL:DATASET`: no training, the manifest's figures, the run's data."""
    from zoo import weights_manifest

    monkeypatch.setenv("CONVZOO_CACHE", str(tmp_path / "cache"))
    argv = ["lenet5_modern:fashion_mnist", "--formats", "tflite_fp32,onnx_fp32"]
    argv += ["--out", tmp_path / "out", "--latency-runs", "3", "--quiet"]
    code = main([str(a) for a in argv])
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    manifest = weights_manifest("lenet5_modern", "fashion_mnist")
    keras_accuracy = report["keras"]["accuracy"] / 100
    assert abs(keras_accuracy - manifest["run"]["metrics"]["test_accuracy"]) <= 0.0005
    assert {f["format"] for f in report["files"]} == {"tflite_fp32", "onnx_fp32"}
    assert all(f["agreement"] == 100.0 for f in report["files"])
    assert (tmp_path / "out" / "lenet5_modern-fashion_mnist_fp32.tflite").is_file()
    assert manifest["weights"]["sha256"][:12] in report["context"]["weights"]


@pytest.mark.parametrize(
    "spec, needle",
    [("alexnet:fashion_mnist", "no pretrained weights"), ("lenet5:mnist", "fashion_mnist")],
)
def test_shipped_weights_that_do_not_exist_exit_2(capsys, tmp_path, spec, needle):
    code, err = _run(capsys, spec, "--out", tmp_path / "out")
    assert code == 2
    _assert_one_line_error(err, needle)
    assert not (tmp_path / "out").exists()
