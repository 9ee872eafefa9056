"""The `web` format in a real browser: the exported page served from its folder and driven in
headless Chromium (Debian's `chromium`, `make web-deps`) through Playwright.

A LeNet-5 trained briefly on real Fashion-MNIST images is exported with `--formats web`; the
page then classifies real test images through its own file path (PNG -> decode ->
preprocessing -> LiteRT.js) and every output is compared with the Python LiteRT interpreter on
the same PNG, the feature maps with the interpreter's outputs of the feature-map file, and bad
input must give a message in the page.
"""

from __future__ import annotations

import json
import shutil
import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf

from export.browser import check_page, open_page, png_data_url
from export.data import load_export_data
from export.exporter import ExportOptions, export_model
from export.formats import resolve_formats
from export.source import load_source
from export.web import (
    FEATURES_FILE,
    MODEL_FILE,
    SCREENSHOT_FILE,
    encode_png,
    feature_map_model,
    run_feature_maps,
)
from layers.arithmetic import receptive_field

pytestmark = pytest.mark.keras3_only

TEST_IMAGES = 240


@pytest.fixture(scope="module")
def data():
    return load_export_data(
        "fashion_mnist", (28, 28, 1), calibration_samples=64, test_samples=TEST_IMAGES
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """The zoo's shipped LeNet-5 modern as a run directory: fully trained and the same on every
    machine (a briefly trained, unseeded model put its int8 file a single image either side of
    the 1 pp accuracy bound, depending on its random start)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVZOO_CACHE", str(tmp_path_factory.mktemp("cache")))
        cached = load_source("lenet5_modern:fashion_mnist").model_path.parent
    run = tmp_path_factory.mktemp("runs") / "lenet5_modern-fashion_mnist"
    shutil.copytree(cached, run)
    return run


@pytest.fixture(scope="module")
def exported(run_dir, data, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    options = ExportOptions(
        formats=resolve_formats("web"), out_dir=out, latency_runs=5, progress=False
    )
    result = export_model(load_source(run_dir), options, data=data)
    return result


@pytest.fixture(scope="module")
def folder(exported):
    return exported.out_dir / "web"


def test_export_writes_a_self_contained_folder_and_reports_the_browser(exported, folder):
    (report,) = exported.reports
    assert report.passed, report.failure
    assert report.format == "web" and report.file == "web/"
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    for name in ("index.html", "app.js", "style.css", "metadata.json", MODEL_FILE, FEATURES_FILE):
        assert name in names
    assert (
        "vendor/litert/core.js" in names and "vendor/litert/wasm/litert_wasm_internal.wasm" in names
    )
    assert (folder / MODEL_FILE).read_bytes()[4:8] == b"TFL3"
    # Offline: the page refers to nothing outside its folder (no CDN, no node_modules).
    for name in ("index.html", "app.js", "style.css"):
        text = (folder / name).read_text()
        assert "http://" not in text and "https://" not in text and "node_modules" not in text
    # Published atomically: no temporary folders left beside it.
    assert [p.name for p in exported.out_dir.iterdir() if p.name.startswith(".")] == []
    metadata = json.loads((folder / "metadata.json").read_text())
    web = metadata["web"]
    assert web["preprocessing"]["background"] == "dark" and web["preprocessing"]["invert_drawn"]
    assert web["quantization"]["input"]["dtype"] == "float32"
    assert len(web["samples"]) == 10 and metadata["class_names"][0] == "T-shirt/top"
    # The browser check ran in the export: screenshot next to the page, linked from report.md,
    # the in-browser latency in the web row's own column.
    screenshot = folder / SCREENSHOT_FILE
    assert (
        screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 20_000
    )
    md = (exported.out_dir / "report.md").read_text()
    assert f"[web/{SCREENSHOT_FILE}](web/{SCREENSHOT_FILE})" in md
    header = next(line for line in md.splitlines() if line.startswith("| format"))
    row = next(line for line in md.splitlines() if line.startswith("| web "))
    columns = [c.strip() for c in header.strip("|").split("|")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    latency = float(cells[columns.index("browser us")])
    assert latency == report.notes["browser_latency_us"] and 0 < latency < 100_000
    assert f"{TEST_IMAGES}/{TEST_IMAGES}" in report.notes["browser_check"]


def test_page_outputs_equal_python_litert_on_test_images(folder, data):
    result = check_page(folder, data.x_test, screenshot=None, timing_rounds=5)
    print(f"\nweb page vs Python LiteRT: {result.summary()}")
    assert result.images == TEST_IMAGES >= 200
    assert result.console_errors == []
    assert result.top1_equal == result.images
    # The int8 file dequantizes its outputs: LiteRT.js and the Python interpreter agree bit
    # for bit.
    assert result.identical == result.images and result.max_abs_diff == 0.0
    assert result.outputs.shape == (TEST_IMAGES, 10) and np.ptp(result.outputs) > 0


def test_page_preprocessing_follows_metadata(folder, data):
    image = data.x_test[5]
    inverted = 255.0 - image  # a light-background picture of the same item
    with open_page(folder) as session:
        assert session.ready, session.message()
        seen = session.page.evaluate(
            "url => window.convzoo.classifyDataUrl(url)", png_data_url(encode_png(image))
        )
        assert np.array_equal(np.asarray(seen["pixels"]), image.reshape(-1))
        # Auto inversion: a light background is turned into the data set's dark one.
        seen = session.page.evaluate(
            "url => window.convzoo.classifyDataUrl(url)", png_data_url(encode_png(inverted))
        )
        assert np.array_equal(np.asarray(seen["pixels"]), image.reshape(-1))
        assert session.page.is_checked("#invert")
        # A larger image is fitted into 28 x 28: the same item scaled up 4x comes back close.
        big = np.kron(image[..., 0], np.ones((4, 4), np.float32))[..., None]
        seen = session.page.evaluate(
            "url => window.convzoo.classifyDataUrl(url)", png_data_url(encode_png(big))
        )
        assert np.mean(np.abs(np.asarray(seen["pixels"]) - image.reshape(-1))) < 2.0
        assert session.console_errors == [] and session.page_errors == []


def test_feature_maps_equal_python_runtime(folder, data, run_dir):
    image = data.x_test[3]
    png = encode_png(image)
    decoded = tf.io.decode_png(png).numpy().astype(np.float32)
    expected = run_feature_maps((folder / FEATURES_FILE).read_bytes(), decoded)
    metadata = json.loads((folder / "metadata.json").read_text())
    layers = metadata["web"]["layers"]
    assert [layer["name"] for layer in layers] == ["conv1", "pool1", "conv2", "pool2"]
    with open_page(folder) as session:
        assert session.ready, session.message()
        session.page.evaluate("url => window.convzoo.classifyDataUrl(url)", png_data_url(png))
        shown = session.page.evaluate("window.convzoo.featureMaps()")
        canvases = session.page.locator("#maps canvas").count()
        assert session.console_errors == [] and session.page_errors == []
    assert canvases == sum(layer["shape"][-1] for layer in layers)
    diffs = {
        layer["name"]: float(
            np.max(np.abs(np.asarray(shown[layer["name"]]) - expected[layer["name"]].reshape(-1)))
        )
        for layer in layers
    }
    print(f"\nfeature maps, page vs Python LiteRT, max abs diff: {diffs}")
    for layer in layers:
        got = np.asarray(shown[layer["name"]], np.float32).reshape(layer["shape"])
        np.testing.assert_allclose(got, expected[layer["name"]], atol=1e-4, rtol=0)
        assert np.ptp(got) > 0
    # The file's outputs are the Keras model cut after each layer.
    cut = feature_map_model(load_source(run_dir).model)
    keras_maps = cut(decoded[None], training=False)
    for layer, keras_map in zip(layers, keras_maps, strict=False):
        np.testing.assert_allclose(expected[layer["name"]], keras_map[0], atol=1e-3, rtol=1e-3)
    # Receptive fields from layers.arithmetic along each axis (LeNet-5: 5x5 'same' conv, 2x2
    # pool, 5x5 'valid' conv, 2x2 pool).
    fields = receptive_field([(5, 1, 1, 2), (2, 2, 1), (5, 1, 1), (2, 2, 1)])
    for layer, field in zip(layers, fields, strict=True):
        rf = layer["receptive_field"]
        assert rf["size"] == [field.size] * 2 and rf["jump"] == [field.jump] * 2
        assert rf["start"] == [field.start] * 2
    assert [layer["receptive_field"]["size"][0] for layer in layers] == [5, 6, 14, 16]
    filters = metadata["web"]["filters"]
    assert filters["layer"] == "conv1" and filters["shape"] == [5, 5, 1, 6]


def _solid_png(width: int, height: int, value: int = 200) -> bytes:
    """A grey PNG of any size, cheaply: one repeated row compresses to almost nothing."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes([value]) * width
    compressor = zlib.compressobj(9)
    blocks = [compressor.compress(row) for _ in range(height)]
    data = b"".join(blocks) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def _pick(session, name: str, mime: str, payload: bytes) -> str:
    session.page.set_input_files(
        "#file", files=[{"name": name, "mimeType": mime, "buffer": payload}]
    )
    session.page.wait_for_function("!document.getElementById('message').hidden", timeout=30_000)
    message = session.message()
    session.page.evaluate("document.getElementById('message').hidden = true")
    return message


def test_bad_input_gives_a_message_in_the_page(folder):
    huge = _solid_png(8000, 6250)  # 50 megapixels
    assert len(huge) < 200_000
    with open_page(folder) as session:
        assert session.ready, session.message()
        assert session.console_errors == []  # the page loads without console errors
        assert "is not an image" in _pick(session, "notes.txt", "text/plain", b"hello")
        assert "could not be read as an image" in _pick(
            session, "broken.png", "image/png", b"\x89PNG\r\n\x1a\nnot really"
        )
        message = _pick(session, "huge.png", "image/png", huge)
        assert "50.0 megapixels" in message and "up to 16" in message
        assert session.page_errors == []
        # The page still works after bad input.
        session.page.set_input_files(
            "#file",
            files=[{"name": "ok.png", "mimeType": "image/png", "buffer": _solid_png(56, 56, 30)}],
        )
        session.page.wait_for_function(
            "document.getElementById('seen-caption').textContent.startsWith('ok.png')"
        )
        assert session.page.locator("#bars .bar").count() == 5
        assert session.page_errors == []


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, b"", "HTTP 404"),
        (200, b"this is not a model", "is not a TFLite model file"),
    ],
)
def test_model_that_fails_to_load_gives_a_message(folder, status, body, expected):
    def broken_model(page):
        page.route("**/model.tflite", lambda route: route.fulfill(status=status, body=body))

    with open_page(folder, route=broken_model) as session:
        assert not session.ready
        message = session.message()
        assert expected in message and "model file" in message
        assert session.page_errors == []


def test_web_row_without_litert_js_or_chromium(run_dir, data, tmp_path, monkeypatch):
    options = ExportOptions(
        formats=resolve_formats("web"), out_dir=tmp_path / "a", latency_runs=2, progress=False
    )
    monkeypatch.setenv("CONVZOO_WEB_NODE_MODULES", str(tmp_path / "empty"))
    result = export_model(load_source(run_dir), options, data=data)
    (report,) = result.reports
    assert report.status == "unsupported" and "make web-deps" in report.failure
    assert result.passed  # a note in the report, not a failed export (make train goes on)
    assert not (tmp_path / "a" / "web").exists()
    monkeypatch.delenv("CONVZOO_WEB_NODE_MODULES")
    monkeypatch.setenv("CONVZOO_CHROMIUM", str(tmp_path / "no-chromium"))
    options.out_dir = tmp_path / "b"
    result = export_model(load_source(run_dir), options, data=data)
    (report,) = result.reports
    assert report.passed and report.notes["browser_check"].startswith("not run: no Chromium")
    assert (tmp_path / "b" / "web" / MODEL_FILE).is_file()
    assert not (tmp_path / "b" / "web" / SCREENSHOT_FILE).exists()
