"""The `tflm` bundle: LeNet-5 and the autoencoder on real Fashion-MNIST images, the generated C++
compiled with g++, the model run in the real TFLite Micro runtime (the `tflite-micro` package),
and the refusals (too large, an op TFLM lacks) leaving nothing behind."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from export.__main__ import build_parser, main
from export.data import load_export_data
from export.exporter import ExportOptions, export_model
from export.formats import DEFAULT_FORMATS, resolve_formats
from export.source import load_source
from export.tflm import BundleSpec, bundle_sources, c_identifier, resolver_method, write_bundle
from export.tflm_export import litert_int8_outputs
from export.tflm_fit import check_fits, footprint_lower_bound
from export.tflm_runtime import TflmRunner, TflmUnsupportedError, measure_arena
from export.verify import TFLiteRunner, tflite_op_names

pytestmark = pytest.mark.keras3_only

# TFLM's C++ headers are not installed here: tflm_stub/ declares just the TFLM classes and
# methods the generated code uses (names and signatures of the real headers), so g++ type-checks
# the generated sources against them; the model itself runs in the real TFLM runtime.
STUB = Path(__file__).resolve().parent / "tflm_stub"
GXX = shutil.which("g++")


def _train_run(root: Path, model_name: str, epochs: int) -> Path:
    from training.data import load_dataset
    from zoo import create_model

    model = create_model(model_name)
    if epochs:
        ds = load_dataset("fashion_mnist").subset(train=2000, test=10, seed=0)
        loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(tf.keras.optimizers.Adam(1e-3), loss)
        model.fit(
            ds.x_train.astype(np.float32), ds.y_train, batch_size=64, epochs=epochs, verbose=0
        )
    run_dir = root / f"{model_name}-fashion_mnist"
    run_dir.mkdir()
    model.save(run_dir / "model.keras")
    config = {"model": model_name, "dataset": "fashion_mnist", "num_classes": 10}
    (run_dir / "config.json").write_text(json.dumps(config))
    return run_dir


@pytest.fixture(scope="module")
def data():
    return load_export_data("fashion_mnist", (28, 28, 1), calibration_samples=64, test_samples=300)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, data):
    """lenet5 and lenet5_modern, trained briefly, exported as tflite_int8 (int8 I/O) + tflm."""
    results = {}
    for model_name in ("lenet5", "lenet5_modern"):
        run = _train_run(tmp_path_factory.mktemp("runs"), model_name, epochs=2)
        options = ExportOptions(
            formats=resolve_formats("tflite_int8,tflm"),
            out_dir=tmp_path_factory.mktemp("out") / model_name,
            io="int8",
            latency_runs=5,
            progress=False,
        )
        results[model_name] = export_model(load_source(run), options, data=data)
    return results


def _array_bytes(source: str, ident: str) -> bytes:
    body = source.split(f"{ident}_model[] = {{", 1)[1].split("};", 1)[0]
    return bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body))


def _constant(text: str, name: str) -> int:
    return int(re.search(rf"\b{name} = (-?\d+);", text).group(1))


@pytest.mark.parametrize("model_name", ["lenet5", "lenet5_modern"])
def test_lenet_bundle_runs_in_tflm_like_the_litert_int8_file(exported, data, model_name):
    result = exported[model_name]
    by_name = {r.format: r for r in result.reports}
    report = by_name["tflm"]
    assert report.passed and report.status == "ok", report.failure
    bundle = result.out_dir / "tflm"
    ident = c_identifier(f"{model_name}-fashion_mnist")
    assert sorted(p.name for p in bundle.iterdir()) == sorted(
        [f"{ident}{s}" for s in ("_model_data.h", "_model_data.cc", "_ops.h", "_settings.h")]
        + ["README.md", f"{ident}.tflite"]
    )
    assert not [p for p in result.out_dir.iterdir() if p.name.startswith(".")]
    # The C array is byte for byte the .tflite file, 16-byte aligned, with its length.
    content = (bundle / f"{ident}.tflite").read_bytes()
    source = (bundle / f"{ident}_model_data.cc").read_text()
    assert _array_bytes(source, ident) == content
    assert f"alignas(16) const unsigned char {ident}_model[]" in source
    assert _constant(source, f"{ident}_model_len") == len(content) == report.size_bytes
    # Full integer at the edges and inside: int8 in, int8 out, no (DE)QUANTIZE, no float.
    ops = tflite_op_names(content)
    assert "QUANTIZE" not in ops and "DEQUANTIZE" not in ops
    litert = TFLiteRunner(content)
    assert np.dtype(litert.input["dtype"]) == np.int8 == np.dtype(litert.output["dtype"])
    assert "f" not in {np.dtype(t["dtype"]).kind for t in litert.interpreter.get_tensor_details()}
    # Calibrated like tflite_int8 (same images: the same input quantization), with Dense as
    # 1x1 CONV_2D and one scale per weight tensor: the same classes on nearly every image.
    int8_file = TFLiteRunner(result.files["tflite_int8"].read_bytes())
    int8_ops = tflite_op_names(result.files["tflite_int8"].read_bytes())
    assert "FULLY_CONNECTED" not in ops and "FULLY_CONNECTED" in int8_ops
    assert litert.input["quantization"] == int8_file.input["quantization"]
    x = data.x_test[:100]
    assert np.mean(litert.predict(x).argmax(-1) == int8_file.predict(x).argmax(-1)) >= 0.95
    # The ops header registers exactly the file's ops, N = their count.
    ops_h = (bundle / f"{ident}_ops.h").read_text()
    unique = list(dict.fromkeys(ops))
    assert re.findall(r"resolver\.(Add\w+)\(\)", ops_h) == [resolver_method(op) for op in unique]
    assert re.search(rf"OpCount = {len(unique)};", ops_h)
    # Settings: quantization as the runtime reports it; the arena is what TFLM needs.
    settings = (bundle / f"{ident}_settings.h").read_text()
    runner = TflmRunner(content, arena_size=_constant(settings, f"{ident}_arena_size"))
    assert _constant(settings, f"{ident}_input_zero_point") == runner.input_quantization[1]
    assert _constant(settings, f"{ident}_output_zero_point") == runner.output_quantization[1]
    assert settings.count('"T-shirt/top"') == 1 and f"{ident}_labels[10]" in settings
    measured = _constant(settings, f"{ident}_arena_measured_bytes")
    assert (
        measured
        == report.notes["tflm_arena_measured_bytes"]
        == measure_arena(content, data.x_test[0]).bytes
    )
    # Margin: CMSIS-NN's largest scratch, C3's im2col (2 x 5 x 5 x 6 int16 = 600 B), + slack.
    assert report.notes["tflm_arena_scratch_bytes"] == 600
    assert _constant(settings, f"{ident}_arena_size") >= measured + 600
    with pytest.raises(TflmUnsupportedError):
        TflmRunner(content, arena_size=measured - 64).predict_int8(data.x_test[:1])
    # LeNet-5 with int8 input: model <= 70 KB; arena 9.3 KB with FULLY_CONNECTED, ~11 KB with
    # Dense as CONV_2D, whose kernels keep 8 bytes of requantization data per output channel
    # (214 channels) in the arena: the price of bit-identical outputs.
    assert measured <= 11.5 * 1024 and len(content) <= 70 * 1024
    # Verified in TFLM on the real test images: accuracy within the int8 tolerance.
    assert report.notes["tflm_images"] == len(data.x_test) == 300
    assert report.accuracy is not None and report.accuracy_drop_pp <= 1.0
    y_tflm = runner.predict_int8(data.x_test)
    predicted = runner.dequantize(y_tflm).argmax(-1)
    assert report.accuracy == pytest.approx(np.mean(predicted == data.y_test) * 100)
    differing = int(
        np.sum(y_tflm != litert_int8_outputs(content, runner.quantize(data.x_test), False))
    )
    assert report.notes["tflm_differing_vs_litert"] == differing
    # Bit-identical to the same file in LiteRT's reference kernels on every test image.
    reference_outputs = litert_int8_outputs(content, runner.quantize(data.x_test), True)
    np.testing.assert_array_equal(y_tflm, reference_outputs)
    assert report.notes["tflm_differing_vs_litert_reference"] == 0
    assert report.notes["tflm_max_int8_steps_vs_litert_reference"] == 0
    assert report.notes["tflm_host_us"] > 0 and report.notes["tflm_cortex_m4_estimate_ms"] > 0
    markdown = (result.out_dir / "report.md").read_text()
    assert "arena B" in markdown and "tflm_cortex_m4_estimate" in markdown


def test_generated_sources_compile_with_gxx(exported, tmp_path):
    for result in exported.values():
        bundle = result.out_dir / "tflm"
        ident = c_identifier(result.out_dir.name + "-fashion_mnist")
        _compile(bundle / f"{ident}_model_data.cc", bundle)
        readme = (bundle / "README.md").read_text()
        snippet = readme.split("```cpp\n", 1)[1].split("```", 1)[0]
        main_cc = tmp_path / f"{ident}_main.cc"
        main_cc.write_text(
            snippet
            + f'\nstatic_assert({ident}_arena_size % 16 == 0, "aligned arena");\n'
            + f"const char* first_label() {{ return {ident}_labels[0]; }}\n"
        )
        _compile(main_cc, bundle)


def _compile(path: Path, include: Path) -> subprocess.CompletedProcess:
    assert GXX, "g++ not found: `make cxx` installs it (Debian's g++), `make test` runs it"
    out = path.with_suffix(".o")
    command = [GXX, "-std=c++17", "-Wall", "-Werror", "-c", str(path), "-o", str(out)]
    command += ["-I", str(include), "-I", str(STUB)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done


def test_gxx_check_catches_a_wrong_resolver_method(tmp_path):
    assert GXX, "g++ not found: `make cxx` installs it (Debian's g++), `make test` runs it"
    # The compile check can fail: an op whose Add* method the resolver lacks does not compile.
    spec = _spec("3rd model.v2", ops=["CONV_2D", "NOT_A_REAL_OP"])
    write_bundle(tmp_path / "b", bundle_sources(spec))
    main_cc = tmp_path / "main.cc"
    main_cc.write_text('#include "m_3rd_model_v2_ops.h"\n')
    command = [GXX, "-std=c++17", "-c", str(main_cc), "-o", str(tmp_path / "main.o")]
    done = subprocess.run(
        [*command, "-I", str(tmp_path / "b"), "-I", str(STUB)], capture_output=True, text=True
    )
    assert done.returncode != 0 and "AddNotARealOp" in done.stderr


def _spec(name: str, ops=("CONV_2D",), labels=("a", 'quote"d', "b\\s")) -> BundleSpec:
    return BundleSpec(
        name=name,
        model=bytes(range(40)),
        ops=list(ops),
        input_shape=[1, 28, 28, 1],
        input_scale=1.0,
        input_zero_point=-128,
        output_scale=0.5,
        output_zero_point=3,
        output_shape=[1, 3],
        labels=list(labels),
        arena_measured_bytes=9000,
    )


def test_odd_names_give_valid_identifiers_that_compile(tmp_path):
    for name, expected in [
        ("lenet5-fashion_mnist", "lenet5_fashion_mnist"),
        ("3rd model.v2", "m_3rd_model_v2"),
        ("class", "m_class"),
        ("__x--y", "x_y"),
    ]:
        assert c_identifier(name) == expected
        directory = write_bundle(tmp_path / expected, bundle_sources(_spec(name)))
        _compile(directory / f"{expected}_model_data.cc", directory)
        main_cc = tmp_path / f"{expected}_use.cc"
        main_cc.write_text(
            f'#include "{expected}_ops.h"\n#include "{expected}_settings.h"\n'
            f'static_assert({expected}_num_labels == 3, "labels");\n'
        )
        _compile(main_cc, directory)
    with pytest.raises(ValueError, match="no letter or digit"):
        c_identifier("--")


def test_resolver_methods_follow_tflm_names():
    assert [
        resolver_method(op)
        for op in (
            "CONV_2D",
            "FULLY_CONNECTED",
            "AVERAGE_POOL_2D",
            "PADV2",
            "SPACE_TO_BATCH_ND",
            "RELU6",
            "DEPTHWISE_CONV_2D",
        )
    ] == [
        "AddConv2D",
        "AddFullyConnected",
        "AddAveragePool2D",
        "AddPadV2",
        "AddSpaceToBatchNd",
        "AddRelu6",
        "AddDepthwiseConv2D",
    ]


def test_autoencoder_bundle_reports_reconstruction_metrics(tmp_path, data):
    run = _train_run(tmp_path, "conv_autoencoder", epochs=0)
    options = ExportOptions(
        formats=resolve_formats("tflm"), out_dir=tmp_path / "out", latency_runs=3, progress=False
    )
    small = load_export_data("fashion_mnist", (28, 28, 1), calibration_samples=32, test_samples=100)
    result = export_model(load_source(run), options, data=small)
    (report,) = result.reports
    assert report.passed, report.failure
    assert report.accuracy is None and np.isfinite(report.psnr) and report.psnr_drop_db <= 1.0
    ident = "conv_autoencoder_fashion_mnist"
    settings = (result.out_dir / "tflm" / f"{ident}_settings.h").read_text()
    assert f"{ident}_num_labels = 0" in settings
    assert {"CONV_2D", "PACK"} <= set(report.notes["tflm_ops"])
    assert "!= LiteRT" in (result.out_dir / "report.md").read_text()


def test_in_place_plan_saves_a_feature_map_and_keeps_outputs(exported, data):
    from export.tflm_plan import plan_offsets, strip_plan

    result = exported["lenet5"]
    content = next((result.out_dir / "tflm").glob("*.tflite")).read_bytes()
    unplanned = strip_plan(content)
    planned_arena = measure_arena(content, data.x_test[0]).bytes
    unplanned_arena = measure_arena(unplanned, data.x_test[0]).bytes
    # conv1's 28x28x6 int8 map (4,704 B) is no longer held twice around TANH.
    assert unplanned_arena - planned_arena >= 3000, (unplanned_arena, planned_arena)
    x = data.x_test[:100]
    np.testing.assert_array_equal(
        TflmRunner(content).predict_int8(x), TflmRunner(unplanned).predict_int8(x)
    )
    # TANH writes where its input (conv1's output) is, and nothing else overlaps them.
    offsets = plan_offsets(content)
    litert = TFLiteRunner(content).interpreter
    tanh = next(op for op in litert._get_ops_details() if op["op_name"] == "TANH")
    assert offsets[tanh["outputs"][0]] == offsets[tanh["inputs"][0]]


def test_alexnet_is_refused_naming_flash_and_arena():
    from zoo import create_model

    flash, arena = footprint_lower_bound(create_model("alexnet"))
    assert flash == 60_965_224 and arena > 256 * 1024
    with pytest.raises(TflmUnsupportedError, match=r"58\.1 MB of flash.*KB of tensor arena"):
        check_fits("alexnet", flash, arena)
    check_fits("lenet5", 61_706, 5_488)  # fits: no error


@pytest.fixture(scope="module")
def too_large_model(tmp_path_factory):
    # 1.2 M parameters (1.1 MB): more than the 1 MB of flash of the smallest target board.
    inputs = tf.keras.Input((28, 28, 1))
    x = tf.keras.layers.Flatten()(inputs)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(1530)(x))
    path = tmp_path_factory.mktemp("big") / "big.keras"
    model.save(path)
    return path


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_cli_refuses_a_model_too_large_for_a_microcontroller(capsys, tmp_path, too_large_model):
    out = tmp_path / "out"
    code = main([str(too_large_model), "--formats", "tflm", "--out", str(out)])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "does not fit a microcontroller" in line
    assert "1.1 MB of flash" in line and "limits are 1.0 MB" in line
    assert not out.exists()


@tf.keras.utils.register_keras_serializable(package="convzoo_test")
class Tile(tf.keras.layers.Layer):
    """tf.tile: an op LiteRT runs in int8 and TFLM does not have."""

    def call(self, x):
        return tf.tile(x, [1, 2, 1, 1])


@pytest.fixture(scope="module")
def tile_model(tmp_path_factory):
    inputs = tf.keras.Input((28, 28, 1))
    x = Tile()(tf.keras.layers.Conv2D(2, 3)(inputs))
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(10)(x))
    path = tmp_path_factory.mktemp("tile") / "tile.keras"
    model.save(path)
    return path


def test_cli_names_the_op_tflm_lacks(capsys, tmp_path, tile_model):
    out = tmp_path / "out"
    argv = [str(tile_model), "--formats", "tflite_int8,tflm", "--dataset", "fashion_mnist"]
    argv += ["--out", str(out), "--calibration-samples", "8", "--test-samples", "8", "--quiet"]
    code = main(argv)
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "TILE" in line and "TFLite Micro" in line
    assert not out.exists()


def test_default_set_reports_tflm_unsupported_instead_of_failing(tmp_path, tile_model):
    small = load_export_data("fashion_mnist", (28, 28, 1), calibration_samples=8, test_samples=8)
    options = ExportOptions(
        formats=resolve_formats("tflite_int8,tflm"),
        out_dir=tmp_path / "out",
        tflm_optional=True,
        latency_runs=3,
        progress=False,
    )
    result = export_model(load_source(tile_model), options, data=small)
    assert result.passed
    tflm = next(r for r in result.reports if r.format == "tflm")
    assert tflm.status == "unsupported" and "TILE" in tflm.failure
    assert result.files["tflite_int8"].is_file() and not (tmp_path / "out" / "tflm").exists()


def test_tflm_is_listed_in_help_default_and_all():
    assert "tflm" in build_parser().format_help()
    assert "tflm" in DEFAULT_FORMATS
    assert "tflm" in [f.name for f in resolve_formats("all")]


def test_write_bundle_replaces_atomically(tmp_path):
    target = write_bundle(tmp_path / "tflm", {"a.h": "old\n"})
    with pytest.raises(OSError):
        write_bundle(target, {"a.h": "new\n", "missing/dir/b.h": "x"})
    assert (target / "a.h").read_text() == "old\n"  # the old bundle is intact
    assert [p.name for p in tmp_path.iterdir()] == ["tflm"]  # no temporary directories
    write_bundle(target, {"a.h": "new\n"})
    assert (target / "a.h").read_text() == "new\n" and [p.name for p in tmp_path.iterdir()] == [
        "tflm"
    ]
