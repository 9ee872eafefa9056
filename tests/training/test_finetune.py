"""Fine-tuning with `--weights`: from the zoo's shipped weights, a run directory or a file; a
head of another size starts fresh, everything else starts from the weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from training.__main__ import main
from training.trainer import train
from zoo import create_model

QUICK = dict(
    mixed_precision="off", train_limit=1024, test_limit=500, verbose=0, tensorboard=False,
    preview=False, seed=0,
)  # fmt: skip


def _three_class_folder(root):
    """28x28 grayscale images of three classes (Fashion-MNIST-sized), 12 per class."""
    rng = np.random.default_rng(0)
    for label, name in enumerate(("boot", "coat", "shirt")):
        (root / name).mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 80, (28, 28), dtype=np.uint8) + 60 * label
            Image.fromarray(pixels.astype(np.uint8), "L").save(root / name / f"{i:02d}.png")
    return f"folder:{root}"


def test_shipped_weights_start_where_they_ended(tmp_path):
    """One epoch at a tiny learning rate keeps the shipped model's accuracy; from random
    weights the same epoch is far below it."""
    settings = dict(model="lenet5", dataset="fashion_mnist", epochs=1, learning_rate=1e-7)
    tuned = train(**settings, **QUICK, weights="lenet5:fashion_mnist", run_dir=str(tmp_path / "a"))
    scratch = train(**settings, **QUICK, run_dir=str(tmp_path / "b"))
    assert tuned.metrics["test_accuracy"] >= 0.85
    assert scratch.metrics["test_accuracy"] < 0.5
    assert json.loads((tmp_path / "a" / "run.json").read_text())["config"]["weights"] == (
        "lenet5:fashion_mnist"
    )


def test_a_head_of_another_size_starts_fresh(tmp_path):
    dataset = _three_class_folder(tmp_path / "data")
    result = train(
        model="lenet5", dataset=dataset, epochs=1, learning_rate=1e-9, batch_size=8,
        weights="lenet5:fashion_mnist", run_dir=str(tmp_path / "run"), **QUICK,
    )  # fmt: skip
    shipped = create_model("lenet5", pretrained=True)
    tuned = create_model("lenet5", num_classes=3, pretrained=f"{result.run_dir}/model.keras")
    for name in ("conv1", "conv2", "fc1", "fc2"):
        for before, after in zip(
            shipped.get_layer(name).get_weights(), tuned.get_layer(name).get_weights(), strict=True
        ):
            np.testing.assert_allclose(after, before, atol=1e-5)
    assert tuned.get_layer("fc3").get_weights()[0].shape == (84, 3)


def test_a_run_directory_is_a_weights_source(tmp_path):
    first = train(  # a pathlib.Path is accepted as the CLI's string
        model="lenet5", dataset="fashion_mnist", epochs=1, run_dir=tmp_path / "a", **QUICK
    )
    second = train(
        model="lenet5", dataset="fashion_mnist", epochs=1, learning_rate=1e-9,
        weights=first.run_dir, run_dir=str(tmp_path / "b"), **QUICK,
    )  # fmt: skip
    assert abs(second.metrics["test_accuracy"] - first.metrics["test_accuracy"]) <= 0.01


@pytest.mark.parametrize(
    "weights, message",
    [
        ("lenet5_modern:fashion_mnist", "variables missing from the file"),
        ("alexnet:fashion_mnist", "no pretrained weights"),
        ("nowhere.keras", "no such file or run directory"),
        ("notes.txt", "not a .weights.h5, .keras, .npz file"),
    ],
)
def test_weights_that_do_not_fit_exit_2_with_one_line(tmp_path, capsys, weights, message):
    (tmp_path / "notes.txt").write_text("not weights")
    code = main(
        ["--model", "lenet5", "--weights", str(tmp_path / weights) if "." in weights else weights,
         "--run-dir", str(tmp_path / "run"), "--epochs", "1", "--train-limit", "256",
         "--mixed-precision", "off", "--no-tensorboard", "--no-preview"]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "run" / "model.keras").exists()


def test_a_finished_run_is_lengthened_with_resume_and_epochs(tmp_path, capsys):
    run = str(tmp_path / "run")
    train(model="lenet5", dataset="fashion_mnist", epochs=2, run_dir=run, **QUICK)
    assert main(["--resume", run, "--epochs", "3", "--verbose", "0"]) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["epochs"] == 3 and config["extended"] == [{"from_epochs": 2, "to_epochs": 3}]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["epochs_run"] == 3 and metrics["resumed_from_epoch"] == 2
    lines = (tmp_path / "run" / "history.csv").read_text().strip().splitlines()
    assert len(lines) == 4  # header + epochs 1, 2 (kept) and 3 (added)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["epochs"] == 3
    assert main(["--resume", run, "--epochs", "2"]) == 2
    assert "can only be lengthened" in capsys.readouterr().err
    assert main(["--resume", run, "--batch-size", "64"]) == 2
    assert "only --epochs may lengthen it" in capsys.readouterr().err
