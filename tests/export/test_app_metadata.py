"""The exported files as an app sees them: each file run with nothing but its own metadata.

The zoo's shipped LeNet-5 modern (trained on Fashion-MNIST) is exported in the default
formats, and as `tflite_int8` with `--io int8` and `--io uint8`. For every model file the
app reads its entry in `metadata.json` (`files`) or the metadata inside the file, and
`labels.txt`; it turns raw 8-bit test images into the input tensor as the entry says, runs the
file in its real runtime (LiteRT, ONNX Runtime) looking tensors up by the entry's names, reads
the output as the entry says and names the class. Nothing here knows how a format is built.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from export.data import load_export_data
from export.exporter import ExportOptions, export_model
from export.formats import DEFAULT_FORMATS, FORMATS, resolve_formats
from export.metadata import FILE_KEYS, app_metadata, file_metadata, read_file_metadata
from export.source import ModelSource, load_source

pytestmark = pytest.mark.keras3_only

# 500 test images: the int8 files of a fully trained model flip a few near-ties of them.
TEST_IMAGES = 500


@pytest.fixture(scope="module")
def data():
    return load_export_data(
        "fashion_mnist", (28, 28, 1), calibration_samples=256, test_samples=TEST_IMAGES
    )


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """The zoo's shipped LeNet-5 modern: a fully trained model, the same on every machine."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVZOO_CACHE", str(tmp_path_factory.mktemp("cache")))
        return load_source("lenet5_modern:fashion_mnist")


@pytest.fixture(scope="module")
def exports(source, data, tmp_path_factory):
    """Export directory per run: the default formats, and tflite_int8 with int8/uint8 I/O.
    The web page's browser check (test_web.py's subject) is skipped: its model file is
    verified in LiteRT, and run here like every other file."""
    runs = {"default": (None, "float32"), "io_int8": ("tflite_int8", "int8")}
    runs["io_uint8"] = ("tflite_int8", "uint8")
    results = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("export.browser.browser_unavailable_reason", lambda: "not in this test")
        for label, (formats, io) in runs.items():
            results[label] = _export(source, data, formats, io, tmp_path_factory.mktemp(label))
    return results


def _export(source, data, formats, io, out_dir):
    options = ExportOptions(
        formats=resolve_formats(formats),
        out_dir=out_dir,
        io=io,
        latency_runs=5,
        progress=False,
        tflm_optional=True,
    )
    return export_model(source, options, data=data)


def _preprocess(images: np.ndarray, spec: dict) -> np.ndarray:
    """Raw 8-bit images -> the input tensor, as the entry's `input` says."""
    low, high = spec["pixel_range"]
    pixels = images.astype(np.float64)
    assert low <= pixels.min() and pixels.max() <= high
    quantization = spec["quantization"]
    if quantization is not None:
        limits = np.iinfo(spec["dtype"])
        pixels = np.round(pixels / quantization["scale"]) + quantization["zero_point"]
        pixels = np.clip(pixels, limits.min, limits.max)
    return pixels.astype(spec["dtype"])


def _to_values(outputs: np.ndarray, spec: dict) -> np.ndarray:
    quantization = spec["quantization"]
    if quantization is None:
        return outputs.astype(np.float64)
    return (outputs.astype(np.float64) - quantization["zero_point"]) * quantization["scale"]


def _run_tflite(path: Path, inputs: np.ndarray, entry: dict) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    (detail,) = [d for d in interpreter.get_input_details() if d["name"] == entry["input"]["name"]]
    outputs = interpreter.get_output_details()
    (output,) = [d for d in outputs if d["name"] == entry["output"]["name"]]
    assert list(detail["shape"]) == entry["input"]["shape"]
    results = []
    for start in range(0, len(inputs), entry["input"]["shape"][0]):
        interpreter.set_tensor(detail["index"], inputs[start : start + detail["shape"][0]])
        interpreter.invoke()
        results.append(interpreter.get_tensor(output["index"]).copy())
    return np.concatenate(results)


def _run_onnx(path: Path, inputs: np.ndarray, entry: dict) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    assert entry["input"]["shape"][0] is None  # any batch size
    (outputs,) = session.run([entry["output"]["name"]], {entry["input"]["name"]: inputs})
    return outputs


def _app_labels(path: Path, entry: dict, labels: list[str], images: np.ndarray) -> list[str]:
    """What an app following `entry` names each raw image."""
    inputs = _preprocess(images, entry["input"])
    run = _run_tflite if path.suffix == ".tflite" else _run_onnx
    scores = _to_values(run(path, inputs, entry), entry["output"])
    assert entry["output"]["kind"] == "logits" and entry["output"]["labels"] == "labels.txt"
    return [labels[i] for i in scores.argmax(-1)]


def _entries(result) -> dict[str, dict]:
    return json.loads((result.out_dir / "metadata.json").read_text())["files"]


def test_every_file_runs_from_its_metadata_alone(exports, source, data):
    model = source.model
    images = np.round(data.x_test).astype(np.uint8)  # decoded 8-bit images
    labels = (exports["default"].out_dir / "labels.txt").read_text().splitlines()
    keras = [labels[i] for i in model.predict(data.x_test, verbose=0).argmax(-1)]
    agreement, covered = {}, set()
    for label, result in exports.items():
        for name, entry in _entries(result).items():
            path = result.out_dir / name
            embedded = read_file_metadata(path)
            assert {k: embedded[k] for k in FILE_KEYS} == entry  # the file says the same
            assert embedded["class_names"] == labels
            predicted = _app_labels(path, entry, labels, images)
            key = f"{entry['format']} ({label})" if label != "default" else entry["format"]
            agreement[key] = float(np.mean([p == k for p, k in zip(predicted, keras, strict=True)]))
            covered.add((entry["format"], entry["input"]["dtype"]))
            minimum = 1.0 if FORMATS[entry["format"]].is_float else 0.99
            assert agreement[key] >= minimum, (key, agreement)
            verified = {r.format: r.agreement for r in result.reports}
            if entry["format"] not in ("tflm", "web"):  # verified in other runtimes
                # The app, following the metadata, gets what verification got in LiteRT/ORT.
                assert 100 * agreement[key] == pytest.approx(verified[entry["format"]]), key
    print("app top-1 agreement with Keras:", json.dumps(agreement, indent=1))
    written = {r.format for r in exports["default"].reports if r.status != "unsupported"}
    # int16x8 needs 16x8 kernels for every op, web needs LiteRT.js: either may be unsupported.
    assert set(DEFAULT_FORMATS) - {"tflite_int16x8", "web"} <= written
    assert {f for f, _ in covered} == written
    assert {("tflite_int8", "int8"), ("tflite_int8", "uint8"), ("tflm", "int8")} <= covered


def test_int8_io_metadata_says_int8_with_its_scale(exports):
    (entry,) = _entries(exports["io_int8"]).values()
    spec = entry["input"]
    assert spec["dtype"] == "int8" and spec["pixel_range"] == [0.0, 255.0]
    assert spec["quantization"]["scale"] > 0 and -128 <= spec["quantization"]["zero_point"] < 128
    assert spec["from_pixels"] == "q = clip(round(pixel / scale) + zero_point, -128, 127) as int8"
    assert entry["output"]["dtype"] == "int8" and entry["output"]["quantization"]["scale"] > 0
    # The top-level keys still describe the Keras model (and the float-I/O files).
    metadata = json.loads((exports["io_int8"].out_dir / "metadata.json").read_text())
    assert metadata["input"]["dtype"] == "float32" and metadata["class_names"][0] == "T-shirt/top"
    (uint8,) = _entries(exports["io_uint8"]).values()
    assert uint8["input"]["dtype"] == "uint8" and uint8["input"]["quantization"]["zero_point"] >= 0


def test_tensors_carry_the_names_the_metadata_gives(exports):
    from ai_edge_litert.interpreter import Interpreter

    out_dir = exports["default"].out_dir
    for name, entry in _entries(exports["default"]).items():
        assert (entry["input"]["name"], entry["output"]["name"]) == ("input", "logits")
        path = out_dir / name
        if path.suffix == ".tflite":
            interpreter = Interpreter(model_path=str(path))
            assert [d["name"] for d in interpreter.get_input_details()] == ["input"]
            assert [d["name"] for d in interpreter.get_output_details()] == ["logits"]
            signature = interpreter.get_signature_list()["serving_default"]
            assert signature == {"inputs": ["input"], "outputs": ["logits"]}
        else:
            graph = onnx.load(path).graph
            assert [v.name for v in graph.input] == ["input"]
            assert [v.name for v in graph.output] == ["logits"]
            dims = [
                v.type.tensor_type.shape.dim[0].dim_param for v in (*graph.input, *graph.output)
            ]
            assert dims == ["batch", "batch"]


def test_web_metadata_describes_its_model_file(exports):
    folder = exports["default"].out_dir / "web"
    if not folder.is_dir():
        pytest.skip("LiteRT.js not installed (make web-deps)")
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["web"]["model_file"] == "model.tflite"
    top = _entries(exports["default"])["web/model.tflite"]
    assert metadata["files"] == {"model.tflite": top}


def test_reconstruction_output_range_comes_from_the_model(tmp_path):
    from zoo import create_model

    for output_range, expected in (("pixels", [0.0, 255.0]), ("unit", [0.0, 1.0])):
        model = create_model("conv_autoencoder", output_range=output_range)
        source = ModelSource("ae", model, tmp_path / "ae.keras", {}, (28, 28, 1), "reconstruction")
        metadata = app_metadata(source, None)
        assert metadata["output"] == {"name": "reconstruction", "kind": "image", "range": expected}
        tensors = {
            "input": {"name": "input", "shape": [None, 28, 28, 1], "dtype": "float32"},
            "output": {"name": "reconstruction", "shape": [None, 28, 28, 1], "dtype": "float32"},
        }
        entry = file_metadata(metadata, FORMATS["onnx_fp32"], tensors)
        assert entry["output"]["range"] == expected and "labels" not in entry["output"]
        assert entry["output"]["meaning"].endswith(f"[{expected[0]:g}, {expected[1]:g}]")
