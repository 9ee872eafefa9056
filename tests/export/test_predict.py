"""`python -m export.predict`: the same top-1 and the same figures from the Keras model and
from its exported files in their runtimes, on image files and on a data split."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from export.__main__ import main as export_main
from export.predict import Predictor, evaluate, main, predict
from training.data import load_dataset
from zoo import weights_manifest

pytestmark = pytest.mark.keras3_only

SPEC = "lenet5:fashion_mnist"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    argv = [SPEC, "--formats", "tflite_fp32,tflite_int8,onnx_fp32", "--io", "int8"]
    argv += ["--out", str(out), "--test-samples", "300", "--latency-runs", "3", "--quiet"]
    assert export_main(argv) == 0
    return out


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """20 Fashion-MNIST test images as PNG files, as a user's photos would be."""
    folder = tmp_path_factory.mktemp("images")
    data = load_dataset("fashion_mnist")
    for i in range(20):
        Image.fromarray(data.x_test[i, :, :, 0]).save(folder / f"{i:02d}.png")
    return folder


def _top1(rows):
    return [row["top"][0][0] for row in rows]


@pytest.mark.parametrize("name, min_agreement", [
    ("lenet5-fashion_mnist_fp32.tflite", 20), ("lenet5-fashion_mnist_int8.tflite", 19),
    ("lenet5-fashion_mnist_fp32.onnx", 20),
])  # fmt: skip
def test_exported_files_give_the_keras_top1_on_image_files(
    exported, image_folder, name, min_agreement
):
    keras = predict(Predictor.load(SPEC), [image_folder], top_k=3)
    exported_rows = predict(Predictor.load(exported / name), [image_folder], top_k=3)
    same = sum(a == b for a, b in zip(_top1(keras), _top1(exported_rows), strict=True))
    assert same >= min_agreement
    assert all(len(row["top"]) == 3 for row in exported_rows)
    assert all(abs(sum(p for _, p in row["top"]) - 1) < 0.2 for row in keras)  # probabilities


def test_a_split_gives_the_training_figures():
    metrics = evaluate(Predictor.load(SPEC), "fashion_mnist")
    shipped = weights_manifest("lenet5", "fashion_mnist")["run"]["metrics"]
    assert abs(metrics["test_accuracy"] - shipped["test_accuracy"]) <= 0.0005
    assert abs(metrics["test_loss"] - shipped["test_loss"]) <= 1e-3
    assert metrics["test_size"] == 10000 and np.sum(metrics["confusion_matrix"]) == 10000


def test_cli_writes_predictions_and_metrics(exported, image_folder, tmp_path, capsys):
    int8 = exported / "lenet5-fashion_mnist_int8.tflite"
    assert main([str(int8), str(image_folder), "--top-k", "2", "--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader((tmp_path / "predictions.csv").open()))
    assert len(rows) == 40 and {r["rank"] for r in rows} == {"1", "2"}
    assert len(json.loads((tmp_path / "predictions.json").read_text())) == 20
    capsys.readouterr()
    argv = [str(int8), "--dataset", "fashion_mnist", "--limit", "500", "--out", str(tmp_path)]
    assert main(argv) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert json.loads((tmp_path / "metrics.json").read_text())["test_size"] == 500
    assert (tmp_path / "confusion.png").stat().st_size > 10_000


@pytest.mark.parametrize("argv, needle", [
    (["nowhere.tflite", "x.png"], "no such model file"),
    ([SPEC], "give image files/folders or --dataset"),
    ([SPEC, "missing.png"], "no such image file or folder"),
    ([SPEC, "NOTES"], "is not a readable image"),
    (["alexnet:fashion_mnist", "x.png"], "no pretrained weights"),
])  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "NOTES").write_text("not an image")
    assert _exit_code(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and needle in err[0], err


def _exit_code(argv) -> int:
    """`main`'s return value, or the status of the parser's SystemExit."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code
