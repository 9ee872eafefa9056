"""The exported web page in a real browser: headless Chromium driven by Playwright.

The page folder is served by Python's `http.server` on 127.0.0.1 (a free port, in a thread),
and the system Chromium (Debian's `chromium`, `make web-deps`) is driven through the PyPI
`playwright` package's own driver with `executable_path`, so no browser is downloaded.

`check_page` sends test images through the page's own path (PNG -> decode -> preprocessing ->
LiteRT.js), compares every output with the Python LiteRT interpreter on the same PNG, measures
the in-browser latency and writes a screenshot of the page after it classified a test image.

Example:

>>> result = check_page("exports/lenet5-fashion_mnist/web", x_test[:500])
>>> result.top1_equal == result.images, result.median_latency_us
(True, 160.0)
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import functools
import http.server
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from training.atomic import atomic_replace

CHROMIUM_ENV = "CONVZOO_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Headless on a closed network, as root in CI: no sandbox, no GPU, no background traffic.
# (Playwright adds --headless itself.)
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
PAGE_TIMEOUT_MS = 60_000


def find_chromium() -> str | None:
    """The Chromium executable: `$CONVZOO_CHROMIUM` (None if it is not an executable), else
    the first of `CHROMIUM_NAMES` on PATH, else None."""
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return next((shutil.which(n) for n in CHROMIUM_NAMES if shutil.which(n)), None)


def browser_unavailable_reason() -> str | None:
    """Why the page cannot be checked in a browser here (None when it can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (pip install -e .)"
    if find_chromium() is None:
        return (
            "no Chromium found (make web-deps installs Debian's chromium; or set $CONVZOO_CHROMIUM)"
        )
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@contextlib.contextmanager
def serve_directory(folder: str | os.PathLike) -> Iterator[str]:
    """Serves `folder` on 127.0.0.1 at a free port in a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclasses.dataclass
class PageSession:
    """An open page: the Playwright page plus what its console and runtime reported."""

    page: Any
    url: str
    console_errors: list[str]
    page_errors: list[str]
    ready: bool

    def message(self) -> str:
        """The text of the page's message box ('' when hidden)."""
        return self.page.evaluate(
            "document.getElementById('message').hidden ? '' : "
            "document.getElementById('message').textContent"
        )


@contextlib.contextmanager
def open_page(
    folder: str | os.PathLike,
    *,
    route: Callable[[Any], None] | None = None,
    viewport: tuple[int, int] = (1280, 900),
) -> Iterator[PageSession]:
    """Opens the page served from `folder` in headless Chromium and waits until it started.

    Args:
        folder: the web folder (index.html, metadata.json, ...).
        route: optional `page.route` set-up, called with the page before it loads (tests use
            it to break the model file).
        viewport: window size in CSS pixels.

    Raises:
        RuntimeError: no Chromium or no playwright here (`browser_unavailable_reason`).
    """
    reason = browser_unavailable_reason()
    if reason:
        raise RuntimeError(f"cannot open the page in a browser: {reason}")
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="convzoo-chromium-")
    try:
        with serve_directory(folder) as base, sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=find_chromium(),
                headless=True,
                args=list(CHROMIUM_ARGS),
                viewport={"width": viewport[0], "height": viewport[1]},
            )
            try:
                page = context.pages[0] if context.pages else context.new_page()
                console_errors: list[str] = []
                page_errors: list[str] = []
                page.on(
                    "console",
                    lambda m: console_errors.append(m.text) if m.type == "error" else None,
                )
                page.on("pageerror", lambda error: page_errors.append(str(error)))
                if route is not None:
                    route(page)
                url = base + "index.html"
                page.goto(url)
                page.wait_for_function("window.convzoo !== undefined", timeout=PAGE_TIMEOUT_MS)
                ready = bool(page.evaluate("window.convzoo.ready"))
                yield PageSession(page, url, console_errors, page_errors, ready)
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def png_data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


@dataclasses.dataclass
class BrowserCheck:
    """What the page did with the test images, against the Python LiteRT interpreter.

    Attributes:
        images: how many test images went through the page.
        top1_equal: images whose page top-1 equals the Python LiteRT top-1.
        identical: images whose page outputs (dequantized) equal Python's bit for bit.
        max_abs_diff: largest `|y_page - y_python|` over all outputs.
        median_latency_us: in-browser latency per image (median over timing rounds).
        console_errors: console errors while loading and classifying.
        screenshot: the PNG written next to the page.
        outputs, reference: the page's and Python's outputs `(N, classes)`.
    """

    images: int
    top1_equal: int
    identical: int
    max_abs_diff: float
    median_latency_us: float
    console_errors: list[str]
    screenshot: Path | None
    outputs: np.ndarray
    reference: np.ndarray

    @property
    def passed(self) -> bool:
        return (
            self.images > 0
            and self.top1_equal == self.images
            and self.identical == self.images
            and not self.console_errors
        )

    def summary(self) -> str:
        return (
            f"{self.images} test images through the page: top-1 equal to Python LiteRT "
            f"{self.top1_equal}/{self.images}, outputs identical {self.identical}/{self.images} "
            f"(max abs diff {self.max_abs_diff:.3g}), median {self.median_latency_us:.1f} us per "
            f"image, {len(self.console_errors)} console errors"
        )


def check_page(
    folder: str | os.PathLike,
    images: np.ndarray,
    *,
    model_file: str = "model.tflite",
    screenshot: str | None = "screenshot.png",
    batch: int = 50,
    timing_rounds: int = 30,
    timing_runs: int = 20,
) -> BrowserCheck:
    """Sends `images` through the page and compares with the Python LiteRT interpreter.

    Args:
        folder: the web folder.
        images: raw-pixel test images `(N, H, W, C)` (integers in [0, 255]); each is encoded
            as a PNG, which both the page (through its file path) and Python decode.
        model_file: the page's model, run in Python on the same decoded pixels.
        screenshot: file name of the screenshot written into `folder` (None: none).
        batch: images per round trip to the page.
        timing_rounds, timing_runs: the latency is the median over rounds of the mean of
            back-to-back runs (the browser clock has ~0.1 ms resolution).

    Raises:
        RuntimeError: the page did not start (its message says why) or no browser here.
    """
    import tensorflow as tf

    from export.verify import TFLiteRunner
    from export.web import encode_png

    folder = Path(folder)
    pngs = [encode_png(image) for image in images]
    decoded = np.stack([tf.io.decode_png(png).numpy().astype(np.float32) for png in pngs])
    reference = TFLiteRunner((folder / model_file).read_bytes()).predict(decoded)
    with open_page(folder, viewport=(1280, 1500)) as session:
        if not session.ready:
            raise RuntimeError(f"the page did not start: {session.message()}")
        outputs = []
        urls = [png_data_url(png) for png in pngs]
        for start in range(0, len(urls), batch):
            results = session.page.evaluate(
                "urls => window.convzoo.classifyBatch(urls)", urls[start : start + batch]
            )
            outputs += [r["logits"] for r in results]
        latency = float(
            session.page.evaluate(
                "([r, n]) => window.convzoo.benchmark(r, n)", [timing_rounds, timing_runs]
            )
        )
        shot = None
        if screenshot:
            session.page.evaluate(
                "url => window.convzoo.classifyDataUrl(url, 'test image 0')", urls[0]
            )
            layers = json.loads((folder / "metadata.json").read_text())["web"]["layers"]
            if layers:  # hover a unit of a deeper layer: its receptive field shows on the input
                layer = layers[min(2, len(layers) - 1)]
                height, width = layer["shape"][:2]
                point = session.page.evaluate(
                    "([name, i, j]) => window.convzoo.hover(name, i, j, 0)",
                    [layer["name"], height // 2, width // 2],
                )
                session.page.mouse.move(point["x"], point["y"])
            shot = folder / screenshot
            atomic_replace(shot, lambda tmp: session.page.screenshot(path=str(tmp), full_page=True))
        errors = session.console_errors + session.page_errors
    outputs = np.asarray(outputs, np.float32).reshape(reference.shape)
    return BrowserCheck(
        images=len(images),
        top1_equal=int(np.sum(outputs.argmax(-1) == reference.argmax(-1))),
        identical=int(np.sum(np.all(outputs == reference, axis=-1))),
        max_abs_diff=float(np.max(np.abs(outputs - reference))) if len(images) else 0.0,
        median_latency_us=latency,
        console_errors=errors,
        screenshot=shot,
        outputs=outputs,
        reference=reference,
    )
