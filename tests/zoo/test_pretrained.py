"""The zoo's shipped weights: each reaches its manifest's figure on the full test split, the
manifest matches the file and today's defaults, and every way of asking wrongly is one clear
error. Runs in both Keras worlds (the same `.npz` loads into each)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zoo
from training.config import NON_SEMANTIC, TrainConfig, resolve_config
from training.data import load_dataset
from training.ship_weights import DATASET, REPRODUCIBLE_FLAGS, SHIPPED_MODELS, training_command
from zoo import pretrained

ROOT = Path(__file__).resolve().parents[2]
# One image in 2,000 of Fashion-MNIST's 10,000 test images: a CPU's other kernels may flip a
# borderline image, never more.
ACCURACY_TOLERANCE = 0.0005
PSNR_TOLERANCE_DB = 0.01


@pytest.fixture(scope="module")
def fashion_test():
    data = load_dataset(DATASET)
    return data.x_test.astype(np.float32), data.y_test


def test_every_trainable_model_ships_weights():
    assert zoo.list_pretrained() == sorted(f"{m}:{DATASET}" for m in SHIPPED_MODELS)
    assert zoo.list_models(pretrained=True) == sorted(SHIPPED_MODELS)
    assert zoo.list_models("lenet*", pretrained=True) == ["lenet5", "lenet5_modern"]


@pytest.mark.parametrize("name", SHIPPED_MODELS)
def test_shipped_weights_reach_their_manifest_figures(name, fashion_test):
    x_test, y_test = fashion_test
    manifest = zoo.weights_manifest(name, DATASET)
    model = zoo.create_model(name, pretrained=DATASET)
    outputs = model.predict(x_test, batch_size=500, verbose=0)
    metrics = manifest["run"]["metrics"]
    if manifest["run"]["task"] == "classification":
        accuracy = float((outputs.argmax(axis=1) == y_test).mean())
        assert abs(accuracy - metrics["test_accuracy"]) <= ACCURACY_TOLERANCE
    else:
        mse = float(np.mean((outputs.astype(np.float64) - x_test) ** 2))
        psnr = 10 * np.log10(255.0**2 / mse)
        assert abs(psnr - metrics["test_psnr_db"]) <= PSNR_TOLERANCE_DB


@pytest.mark.parametrize("name", SHIPPED_MODELS)
def test_manifest_describes_its_file_and_todays_defaults(name):
    manifest = zoo.weights_manifest(name, DATASET)
    path = pretrained.WEIGHTS_DIR / manifest["weights"]["file"]
    assert pretrained.sha256_of(path) == manifest["weights"]["sha256"]
    assert path.stat().st_size == manifest["weights"]["bytes"] < 2_000_000
    assert (manifest["model"], manifest["dataset"]) == (name, DATASET)
    assert manifest["run"]["model"] == name
    today = resolve_config(
        TrainConfig(model=name, dataset=DATASET, deterministic=True, mixed_precision="off")
    ).to_dict()
    # Options added since are read at their defaults, as a resumed run reads an older config.
    shipped = TrainConfig(**manifest["run"]["config"]).to_dict()
    for key in NON_SEMANTIC:
        today.pop(key), shipped.pop(key)
    assert shipped == today, "the defaults changed since these weights were trained: make weights"
    trained = manifest["trained"]
    assert trained["dirty"] is False and len(trained["commit"]) == 40
    assert trained["command"].split()[:9] == training_command(name, Path("x"))[:9]
    assert set(REPRODUCIBLE_FLAGS) <= set(trained["command"].split())


def test_pretrained_true_is_the_first_data_set_and_equals_the_named_one():
    x = np.random.default_rng(0).uniform(0, 255, (3, 28, 28, 1)).astype(np.float32)
    default = zoo.create_model("lenet5_modern", pretrained=True)
    named = zoo.create_model("lenet5_modern", pretrained=DATASET)
    np.testing.assert_array_equal(default(x, training=False), named(x, training=False))
    random = zoo.create_model("lenet5_modern")
    assert not np.allclose(random(x, training=False), named(x, training=False))


def test_user_npz_round_trip(tmp_path):
    model = zoo.create_model("lenet5", pretrained=True)
    path = tmp_path / "mine.npz"
    path.write_bytes(pretrained.npz_weights_bytes(model))
    loaded = zoo.create_model("lenet5", pretrained=str(path))
    for before, after in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)


@pytest.mark.keras3_only
@pytest.mark.parametrize("suffix", [".keras", ".weights.h5"])
def test_user_keras_files_load(tmp_path, suffix):
    model = zoo.create_model("lenet5_modern", pretrained=True)
    path = tmp_path / f"mine{suffix}"
    model.save(path) if suffix == ".keras" else model.save_weights(path)
    loaded = zoo.create_model("lenet5_modern", pretrained=path)
    for before, after in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    with pytest.raises(ValueError, match="does not fit model"):
        zoo.create_model("lenet5_modern", num_classes=3, pretrained=path)


@pytest.mark.parametrize(
    "name, kwargs, error, message",
    [
        ("alexnet", {"pretrained": True}, ValueError, "no pretrained weights; shipped weights: "),
        ("lenet5", {"pretrained": "mnist"}, ValueError, "weights for: fashion_mnist"),
        ("lenet5", {"pretrained": True, "num_classes": 5}, ValueError, "have 10 classes"),
        ("lenet5", {"pretrained": True, "input_shape": (32, 32, 1)}, ValueError, r"\(28, 28, 1\)"),
        ("lenet5", {"pretrained": 3}, ValueError, "must be True, False, a data set name"),
        ("lenet5", {"pretrained": "nowhere.npz"}, FileNotFoundError, "no such weights file"),
    ],
)
def test_clear_errors(name, kwargs, error, message):
    with pytest.raises(error, match=message):
        zoo.create_model(name, **kwargs)


@pytest.fixture
def copied_weights(tmp_path, monkeypatch):
    shutil.copytree(pretrained.WEIGHTS_DIR, tmp_path / "weights")
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "weights")
    return tmp_path / "weights"


def test_corrupt_or_missing_file_is_refused(copied_weights):
    path = copied_weights / "lenet5-fashion_mnist.npz"
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))
    with pytest.raises(ValueError, match="is corrupt: its SHA-256"):
        zoo.create_model("lenet5", pretrained=True)
    path.unlink()
    with pytest.raises(FileNotFoundError, match="is missing"):
        zoo.create_model("lenet5", pretrained=True)


def test_weights_of_another_architecture_name_the_variable(copied_weights):
    weights, manifest_path = (copied_weights / f"lenet5-{DATASET}{s}" for s in (".npz", ".json"))
    other = zoo.create_model("lenet5_modern", pretrained=True)
    weights.write_bytes(pretrained.npz_weights_bytes(other))
    manifest = json.loads(manifest_path.read_text())
    manifest["weights"]["sha256"] = pretrained.sha256_of(weights)
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="variables missing from the file"):
        zoo.create_model("lenet5", pretrained=True)


def test_manifest_of_a_newer_version_is_refused(copied_weights):
    path = copied_weights / "lenet5-fashion_mnist.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "manifest_version": 99}))
    with pytest.raises(ValueError, match="manifest_version 99"):
        zoo.weights_manifest("lenet5")


@pytest.mark.keras3_only
def test_zoo_cli_lists_weights_and_shows_the_manifest():
    listing = _zoo_cli()
    row = next(line for line in listing.splitlines() if line.startswith("lenet5_modern "))
    accuracy = zoo.weights_manifest("lenet5_modern")["run"]["metrics"]["test_accuracy"]
    assert f"fashion_mnist {100 * accuracy:.2f} %" in row
    assert next(line for line in listing.splitlines() if line.startswith("alexnet ")).count(" - ")
    card = _zoo_cli("lenet5_modern")
    sha = zoo.weights_manifest("lenet5_modern")["weights"]["sha256"]
    assert f"sha256 {sha[:16]}" in card and "pretrained='fashion_mnist'" in card
    assert "dropout_rate: float = 0.0" in card


def _zoo_cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "zoo", *args], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return done.stdout


def test_tf_keras_and_keras3_load_the_same_numbers(tmp_path):
    """The `.npz` is world-independent: the other world's outputs equal this one's."""
    x = np.random.default_rng(1).uniform(0, 255, (2, 28, 28, 1)).astype(np.float32)
    here = zoo.create_model("lenet5_modern", pretrained=True)(x, training=False)
    np.save(tmp_path / "x.npy", x)
    script = (
        "import sys, numpy as np, zoo; x = np.load(sys.argv[1]); model = zoo.create_model("
        "'lenet5_modern', pretrained=True); np.save(sys.argv[2], model(x, training=False))"
    )
    other_world = "0" if os.environ.get("TF_USE_LEGACY_KERAS") == "1" else "1"
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        env={**os.environ, "TF_USE_LEGACY_KERAS": other_world},
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), here, rtol=1e-5, atol=1e-5)
