"""End-to-end export tests: zoo models trained briefly on real Fashion-MNIST images, every
format written, run in its real runtime (LiteRT, ONNX Runtime) and checked against Keras."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnx
import pytest
import tensorflow as tf

from export.data import load_export_data
from export.exporter import ExportOptions, export_model
from export.formats import FORMATS, Tolerance, resolve_formats
from export.onnx_export import read_metadata as read_onnx_metadata
from export.source import load_source
from export.tflite_export import read_metadata as read_tflite_metadata
from export.verify import TFLiteRunner, keras_reference, tflite_op_names, verify_file

pytestmark = pytest.mark.keras3_only

# The web page folder has its own test (tests/export/test_web.py, in a browser), and so has
# the TFLite Micro bundle folder (tests/export/test_tflm.py, g++ and the TFLM runtime).
PTQ_FORMATS = [
    name
    for name, f in FORMATS.items()
    if f.quantization != "qat_int8" and name not in ("web", "tflm")
]


def _train_run(tmp_path_factory, model_name: str, task: str):
    from training.data import load_dataset
    from zoo import create_model

    ds = load_dataset("fashion_mnist").subset(train=3000, test=200, seed=0)
    model = create_model(model_name)
    x = ds.x_train.astype(np.float32)
    if task == "classification":
        loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(tf.keras.optimizers.Adam(1e-3), loss)
        # Three epochs: a model with wider logit margins, so quantization noise on the 200-300
        # test images stays well inside the 1 pp tolerance the QAT test asserts.
        model.fit(x, ds.y_train, batch_size=64, epochs=3, verbose=0)
    # The autoencoder is exported as initialized: parity with Keras is what is tested.
    run_dir = tmp_path_factory.mktemp("runs") / f"{model_name}-fashion_mnist"
    run_dir.mkdir()
    model.save(run_dir / "model.keras")
    config = {
        "model": model_name,
        "dataset": "fashion_mnist",
        "data_dir": None,
        "num_classes": 10,
        "input_shape": list(model.input_shape[1:]),
    }
    (run_dir / "config.json").write_text(json.dumps(config))
    return run_dir


@pytest.fixture(scope="module")
def data():
    return load_export_data("fashion_mnist", (28, 28, 1), calibration_samples=64, test_samples=200)


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory):
    return _train_run(tmp_path_factory, "lenet5_modern", "classification")


@pytest.mark.parametrize(
    ("model_name", "task"),
    [
        ("lenet5", "classification"),
        ("lenet5_modern", "classification"),
        ("conv_autoencoder", "reconstruction"),
    ],
)
def test_every_format_verifies_in_its_runtime(
    request, tmp_path_factory, tmp_path, data, model_name, task
):
    run_dir = (
        request.getfixturevalue("lenet_run")
        if model_name == "lenet5_modern"
        else _train_run(tmp_path_factory, model_name, task)
    )
    source = load_source(run_dir)
    assert source.task == task and source.name == f"{model_name}-fashion_mnist"
    options = ExportOptions(
        formats=resolve_formats(PTQ_FORMATS),
        out_dir=tmp_path / "out",
        latency_runs=5,
        progress=False,
    )
    result = export_model(source, options, data=data)
    assert [r.format for r in result.reports] == PTQ_FORMATS
    failed = [(r.format, r.failure) for r in result.reports if not r.passed]
    assert not failed, failed
    for report in result.reports:
        if report.status == "unsupported":
            # int16x8 exists only where the converter has 16x8 kernels for every op; the s2d
            # rewrite changes nothing in a model whose convolutions all have an activation
            # inside (lenet5's tanh, the autoencoder's ReLU), and its file would be int8's.
            expected = {"tflite_int16x8": "not yet supported", "tflite_int8_s2d": "not written"}
            assert expected[report.format] in report.failure
            assert report.format != "tflite_int8_s2d" or model_name != "lenet5_modern"
            continue
        assert report.status == "ok"
        assert report.size_bytes > 0 and report.latency_us > 0 and report.ops
        assert report.max_abs_diff is not None and np.isfinite(report.max_abs_diff)
        if task == "classification":
            assert report.agreement >= 90.0 and report.accuracy is not None
        else:
            assert np.isfinite(report.psnr) and report.agreement is None
    # Float formats meet their bounds, int formats carry no float compute.
    by_name = {r.format: r for r in result.reports}
    assert by_name["tflite_fp32"].max_abs_diff <= 1e-4
    assert by_name["onnx_fp32"].max_abs_diff <= 1e-4
    assert by_name["tflite_fp16"].notes["max_rel_diff"] <= 2e-3
    assert by_name["tflite_int8"].float_ops == []
    assert by_name["tflite_int8_s2d"].float_ops == []
    if model_name == "lenet5_modern":
        # C1 and C3 (6 input channels) run as space-to-depth convolutions: same integer math.
        s2d_ops = by_name["tflite_int8_s2d"].ops
        assert s2d_ops.count("SPACE_TO_DEPTH") == 2 and s2d_ops.count("DEPTH_TO_SPACE") == 2
        assert by_name["tflite_int8_s2d"].agreement >= by_name["tflite_int8"].agreement - 1.0
    # Files on disk: only built-in ops in TFLite, a valid opset >= 17 ONNX graph, metadata.
    out = tmp_path / "out"
    for name, path in result.files.items():
        content = path.read_bytes()
        if path.suffix == ".tflite":
            ops = tflite_op_names(content)
            assert ops and not any(op.startswith(("FLEX", "Flex", "CUSTOM")) for op in ops)
            metadata = read_tflite_metadata(content)
            assert metadata["task"] == task and metadata["format"] == name
            assert metadata["input"]["shape"] == [1, 28, 28, 1]
            labels = metadata["class_names"]
            assert labels[0] == "T-shirt/top" if task == "classification" else labels is None
            signatures = TFLiteRunner(content).interpreter.get_signature_list()
            assert list(signatures) == ["serving_default"]
            assert signatures["serving_default"]["inputs"] == ["input"]
        else:
            proto = onnx.load_from_string(content)
            onnx.checker.check_model(proto)
            assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
            props = read_onnx_metadata(content)
            labels = json.loads(props["convzoo.class_names"])
            assert labels[1] == "Trouser" if task == "classification" else labels is None
            assert props["convzoo.task"] == task
    if task == "classification":
        assert (out / "labels.txt").read_text().splitlines()[0] == "T-shirt/top"
    else:
        assert not (out / "labels.txt").exists()
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] and len(report["files"]) == len(PTQ_FORMATS)
    assert "tflite_int8" in (out / "report.md").read_text()
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))


@pytest.mark.parametrize("io", ["int8", "uint8"])
def test_full_integer_io_has_no_float_ops(tmp_path, lenet_run, data, io):
    source = load_source(lenet_run)
    options = ExportOptions(
        formats=resolve_formats("tflite_int8"),
        out_dir=tmp_path,
        io=io,
        latency_runs=5,
        progress=False,
    )
    result = export_model(source, options, data=data)
    (report,) = result.reports
    assert report.passed, report.failure
    content = result.files["tflite_int8"].read_bytes()
    runner = TFLiteRunner(content)
    assert np.dtype(runner.input["dtype"]).name == io
    assert np.dtype(runner.output["dtype"]).name == io
    assert "DEQUANTIZE" not in tflite_op_names(content)
    assert runner.float_ops() == []
    # int8 in, int8 out: not a single float tensor anywhere in the graph.
    dtypes = {np.dtype(t["dtype"]).kind for t in runner.interpreter.get_tensor_details()}
    assert "f" not in dtypes
    assert read_tflite_metadata(content)["quantization"]["input"]["dtype"] == io


def test_float_io_int8_file_only_quantizes_at_the_ends(tmp_path, lenet_run, data):
    source = load_source(lenet_run)
    options = ExportOptions(
        formats=resolve_formats("tflite_int8"), out_dir=tmp_path, latency_runs=5, progress=False
    )
    content = export_model(source, options, data=data).files["tflite_int8"].read_bytes()
    ops = tflite_op_names(content)
    assert ops[0] == "QUANTIZE" and ops[-1] == "DEQUANTIZE"
    assert TFLiteRunner(content).float_ops() == []
    # The float32 file, by contrast, computes everything in float: the check can fail.
    fp32 = ExportOptions(
        formats=resolve_formats("tflite_fp32"), out_dir=tmp_path, latency_runs=5, progress=False
    )
    content = export_model(source, fp32, data=data).files["tflite_fp32"].read_bytes()
    assert "CONV_2D" in TFLiteRunner(content).float_ops()


def test_a_file_breaking_its_tolerance_fails_naming_the_format(tmp_path, lenet_run, data):
    source = load_source(lenet_run)
    strict = dataclasses.replace(FORMATS["tflite_fp16"], tolerance=Tolerance(max_abs_diff=1e-12))
    options = ExportOptions(formats=[strict], out_dir=tmp_path, latency_runs=5, progress=False)
    result = export_model(source, options, data=data)
    assert not result.passed
    (report,) = result.failed
    assert report.failure.startswith("tflite_fp16:") and "max abs diff" in report.failure
    assert json.loads((tmp_path / "report.json").read_text())["passed"] is False


def test_a_broken_file_fails_verification(tmp_path, lenet_run, data):
    source = load_source(lenet_run)
    reference = keras_reference(source.model, data.x_test[:20], data.y_test[:20], source.task)
    options = ExportOptions(
        formats=resolve_formats("tflite_fp32"), out_dir=tmp_path, latency_runs=5, progress=False
    )
    path = export_model(source, options, data=data).files["tflite_fp32"]
    good = verify_file(path, FORMATS["tflite_fp32"], reference, latency_runs=5)
    assert good.passed
    content = bytearray(path.read_bytes())
    path.write_bytes(bytes(content[: len(content) // 2]))
    broken = verify_file(path, FORMATS["tflite_fp32"], reference, latency_runs=5)
    assert not broken.passed and broken.failure


@pytest.fixture(scope="module")
def train_data():
    return load_export_data(
        "fashion_mnist", (28, 28, 1), calibration_samples=64, test_samples=300, train_samples=300
    )


def test_qat_int8_folds_batchnorm_and_keeps_accuracy(tmp_path, lenet_run, train_data):
    source = load_source(lenet_run)
    options = ExportOptions(
        formats=resolve_formats("tflite_int8"),
        out_dir=tmp_path,
        io="int8",
        qat_epochs=1,
        latency_runs=5,
        progress=False,
    )
    result = export_model(source, options, data=train_data)
    assert [r.format for r in result.reports] == ["tflite_int8", "tflite_qat_int8"]
    qat = result.reports[1]
    assert qat.passed, qat.failure
    assert qat.accuracy_drop_pp <= 1.0 and qat.float_ops == []
    content = result.files["tflite_qat_int8"].read_bytes()
    ops = tflite_op_names(content)
    # BatchNorm folded into the convolutions: no DEQUANTIZE, no float anywhere.
    assert "DEQUANTIZE" not in ops and ops.count("CONV_2D") == 2
    runner = TFLiteRunner(content)
    assert np.dtype(runner.input["dtype"]) == np.int8
    assert "f" not in {np.dtype(t["dtype"]).kind for t in runner.interpreter.get_tensor_details()}
    assert read_tflite_metadata(content)["format"] == "tflite_qat_int8"


def test_pruning_sparsifies_and_reports_compressed_size(tmp_path, lenet_run, train_data):
    source = load_source(lenet_run)
    options = ExportOptions(
        formats=resolve_formats("tflite_fp32"),
        out_dir=tmp_path,
        prune=0.5,
        latency_runs=5,
        progress=False,
    )
    result = export_model(source, options, data=train_data)
    (report,) = result.reports
    assert report.passed, report.failure
    kernels = [w for w in source.model.get_weights() if w.ndim >= 2]
    zeros = sum(int((k == 0).sum()) for k in kernels) / sum(k.size for k in kernels)
    assert zeros >= 0.45
    assert "pruning" in report.notes
    assert report.notes["gzip_size_bytes"] < 0.8 * report.size_bytes
    assert "gzip KB" in (tmp_path / "report.md").read_text()


def test_qat_fine_tunes_with_the_runs_label_smoothing(tmp_path, lenet_run, train_data):
    from export.tfmot_process import qat_split, run_tfmot

    run_dir = tmp_path / lenet_run.name
    run_dir.mkdir()
    (run_dir / "model.keras").write_bytes((lenet_run / "model.keras").read_bytes())
    config = json.loads((lenet_run / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps(dict(config, label_smoothing=0.1)))
    source = load_source(run_dir)
    result = run_tfmot(source, train_data, mode="qat", epochs=2, distill=0.0)
    summary = result.summary
    assert summary["label_smoothing"] == pytest.approx(0.1)
    # Cross-entropy against smoothed one-hot targets cannot go below their entropy (0.50 for
    # 10 classes at 0.1); hard labels would let it.
    entropy = -(0.91 * np.log(0.91) + 9 * 0.01 * np.log(0.01))
    assert min(summary["loss"]) >= entropy - 1e-3
    assert TFLiteRunner(result.tflite).float_ops() == []
    # No run validation split in this config: 10 % of the 300 QAT images are held out.
    assert (summary["train_samples"], summary["val_samples"]) == (270, 30)
    # Every kernel TFLite quantizes is fake-quantized in training (tfmot's Dense+ReLU
    # transform would leave fc1 and fc2 float).
    assert set(summary["quantized_kernels"]) == {"conv1", "conv2", "fc1", "fc2", "fc3"}
    # Epoch 0 (before any step) simulates int8 faithfully: initialized ranges, not tfmot's
    # [-6, 6] that clips the raw pixels (chance accuracy). A fine-tuned epoch is kept only if
    # significantly better than epoch 0, the best such one.
    split = qat_split(train_data)
    logits = source.model.predict(split.x_val, verbose=0)
    float_val = float(np.mean(logits.argmax(-1) == split.y_val))
    scores = summary["val_accuracy"]
    assert len(scores) == 3 and abs(scores[0] - float_val) <= 2 / 30 + 1e-9
    significant = summary["val_significant"]
    candidates = [0] + [epoch for epoch in (1, 2) if significant[epoch]]
    assert significant[0] is False
    assert scores[summary["best_epoch"]] == max(scores[epoch] for epoch in candidates)
    assert summary["best_epoch"] in candidates


def test_qat_holds_out_the_runs_validation_split():
    from export.data import to_model_input
    from export.tfmot_process import qat_split
    from training.data import load_dataset, train_val_split

    data = load_export_data(
        "fashion_mnist",
        (28, 28, 1),
        calibration_samples=8,
        test_samples=8,
        train_samples=3000,
        val_split=0.1,
        val_seed=3,
    )
    split = qat_split(data)
    ds = load_dataset("fashion_mnist")
    (x_fit_run, _), (x_val, y_val) = train_val_split(ds.x_train, ds.y_train, 0.1, seed=3)
    np.testing.assert_array_equal(split.x_val, to_model_input(x_val, (28, 28, 1)))
    np.testing.assert_array_equal(split.y_val, y_val)
    # The QAT sample is drawn from the run's training part only: all 3000 images are kept,
    # and every one of them is a training-part image (compared by content).
    assert len(split.x_fit) == len(split.y_fit) == 3000
    run_training_part = {image.tobytes() for image in to_model_input(x_fit_run, (28, 28, 1))}
    assert all(image.tobytes() in run_training_part for image in split.x_fit)
    assert split.allows_flips and "validation split" in split.how


def test_exporting_a_run_asks_for_its_validation_split(tmp_path, lenet_run, monkeypatch):
    import export.exporter as exporter

    asked = {}

    def fake_load(dataset, input_shape, **kwargs):
        asked.update(kwargs, dataset=dataset)
        raise RuntimeError("stop after the data request")

    monkeypatch.setattr(exporter, "load_export_data", fake_load)
    source = load_source(lenet_run)
    config = source.config = dict(source.config, val_split=0.1, seed=3)
    options = ExportOptions(
        formats=resolve_formats("tflite_int8"), out_dir=tmp_path, qat_epochs=1, progress=False
    )
    with pytest.raises(RuntimeError, match="stop after"):
        export_model(source, options)
    assert asked["dataset"] == config["dataset"] and asked["train_samples"] > 0
    assert asked["val_split"] == pytest.approx(0.1)
    assert asked["val_seed"] == config["seed"]
    # Exported on another data set, the run's split means nothing.
    options.dataset = "tfds:mnist"
    with pytest.raises(RuntimeError, match="stop after"):
        export_model(source, options)
    assert asked["dataset"] == "tfds:mnist" and asked["val_split"] == 0.0


def test_qat_without_a_run_split_holds_out_a_share_of_its_images():
    from export.tfmot_process import qat_split

    data = load_export_data(
        "fashion_mnist", (28, 28, 1), calibration_samples=8, test_samples=8, train_samples=200
    )
    assert data.x_validation is None
    split = qat_split(data)
    assert (len(split.x_fit), len(split.x_val)) == (180, 20)
    held_out = {image.tobytes() for image in split.x_val}
    assert sum(image.tobytes() in held_out for image in data.x_train) == 20
    assert split.allows_flips and "QAT images" in split.how


@pytest.mark.parametrize(
    ("dataset", "level", "expected"),
    [
        ("fashion_mnist", "auto", "flip"),
        ("fashion_mnist", "light", "flip"),
        ("fashion_mnist", "medium", "flip_erase"),
        ("fashion_mnist", "none", "none"),
        ("mnist", "medium", "none"),
    ],
)
def test_qat_augments_as_the_run_trained(lenet_run, dataset, level, expected):
    from export.tfmot_process import QatSplit, qat_augment

    source = load_source(lenet_run)
    source.config = dict(source.config, dataset=dataset, augment=level)
    empty = np.zeros((0, 28, 28, 1), np.float32)
    labels = np.zeros(0, np.int64)
    split = QatSplit(empty, labels, empty, labels, dataset != "mnist", "")
    assert qat_augment(source, split) == expected


def test_float16_tolerance_is_relative_to_the_outputs_size():
    from export.verify import FileReport, check_tolerance

    fmt = FORMATS["tflite_fp16"]
    report = FileReport("tflite_fp16", "m.tflite", "tflite", 1, fmt.tolerance.describe())
    # 0.0114 on logits up to 18.3 (6.2e-4 of them) passes: what an absolute 1e-2 failed.
    report.max_abs_diff, report.notes["max_rel_diff"] = 0.0114, 0.0114 / 18.3
    report.accuracy_drop_pp = 0.0
    assert check_tolerance(report, fmt, "classification") == []
    report.notes["max_rel_diff"] = 3e-3
    (failure,) = check_tolerance(report, fmt, "classification")
    assert "max diff 0.003 x max |keras output| > 0.002" in failure
