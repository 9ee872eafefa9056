"""What an export tells a person: an unfinished run, a rewrite with nothing to do, the run's
own test size, no labels for an autoencoder but a picture of what it does, quiet logs."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from export.__main__ import main
from export.data import calibration_batches
from export.source import load_source, run_test_size, unfinished_run_warnings
from export.tflite_export import convert_tflite
from zoo import create_model

pytestmark = pytest.mark.keras3_only


def _run_dir(tmp_path, task_model="lenet5", epochs_done=2, finished=False):
    run = tmp_path / "run"
    run.mkdir()
    create_model(task_model).save(run / "model.keras")
    config = {"model": task_model, "dataset": "fashion_mnist", "epochs": 15, "test_limit": 2000}
    (run / "config.json").write_text(json.dumps(config))
    rows = ["epoch,loss,val_accuracy,val_loss"]
    rows += [f"{e},1.0,{0.5 + 0.1 * (e == 0)},1.0" for e in range(epochs_done)]
    (run / "history.csv").write_text("\n".join(rows) + "\n")
    if finished:
        (run / "metrics.json").write_text("{}")
    return run


def test_an_unfinished_run_is_named_with_the_checkpoint_it_exports(tmp_path):
    source = load_source(_run_dir(tmp_path))
    (warning,) = unfinished_run_warnings(source)
    assert "has no metrics.json: its training stopped after 2 of 15 epochs" in warning
    assert "model.keras, epoch 1 (best val_accuracy)" in warning and "--resume" in warning


def test_a_finished_run_has_no_warning_and_its_test_size_is_the_runs(tmp_path):
    source = load_source(_run_dir(tmp_path, finished=True))
    assert unfinished_run_warnings(source) == []
    assert run_test_size(source, own_data=True) == 2000
    assert run_test_size(source, own_data=False) is None


def test_the_s2d_rewrite_with_nothing_to_do_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CONVZOO_CACHE", str(tmp_path / "cache"))
    argv = ["lenet5:fashion_mnist", "--formats", "tflite_int8,tflite_int8_s2d", "--out",
            str(tmp_path / "out"), "--test-samples", "100", "--latency-runs", "3"]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "tflite_int8_s2d: not written: no convolution of this model" in err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (s2d,) = [r for r in report["files"] if r["format"] == "tflite_int8_s2d"]
    assert s2d["status"] == "unsupported" and s2d["file"] == "-"
    assert not list((tmp_path / "out").glob("*_s2d.tflite"))


def test_an_autoencoder_export_has_no_labels_and_shows_its_denoising(tmp_path):
    model_file = tmp_path / "ae.keras"
    create_model("conv_autoencoder").save(model_file)
    argv = [str(model_file), "--dataset", "fashion_mnist", "--formats", "tflite_fp32", "--out",
            str(tmp_path / "out"), "--test-samples", "50", "--latency-runs", "3"]  # fmt: skip
    assert main(argv) == 0
    out = tmp_path / "out"
    assert not (out / "labels.txt").exists()
    assert (out / "reconstructions.png").read_bytes()[:4] == b"\x89PNG"
    assert "What to ship" in (out / "report.md").read_text()


def test_progress_in_a_log_file_is_one_line_per_stage(capsys):
    batches = list(calibration_batches(np.zeros((50, 2)), label="calibrating int8"))
    assert len(batches) == 50
    err = capsys.readouterr().err
    assert "\r" not in err and err.count("\n") == 1 and "50/50" in err


def test_int8_conversion_does_not_leak_the_converters_input_statistics_warning():
    model = create_model("conv_autoencoder")  # its conversion takes the path that warns
    x = np.random.default_rng(0).uniform(0, 255, (8, 28, 28, 1)).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        convert_tflite(model, (28, 28, 1), "int8", calibration=x, io="int8", progress=False)
    assert not [w for w in caught if "Statistics for quantized inputs" in str(w.message)]


def test_the_s2d_file_is_compared_with_tflite_int8(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVZOO_CACHE", str(tmp_path / "cache"))
    formats = "tflite_int8,tflite_int8_s2d"
    argv = ["lenet5_modern:fashion_mnist", "--formats", formats, "--quiet", "--out",
            str(tmp_path / "out"), "--test-samples", "100", "--latency-runs", "20"]  # fmt: skip
    assert main(argv) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    s2d, base = (next(r for r in report["files"] if r["format"] == f) for f in
                 ("tflite_int8_s2d", "tflite_int8"))  # fmt: skip
    note = s2d["notes"]["vs_tflite_int8"]
    assert note.startswith(f"{s2d['latency_us'] / base['latency_us']:.2f}x tflite_int8's latency")
    assert "vs_tflite_int8: " in (tmp_path / "out" / "report.md").read_text()
