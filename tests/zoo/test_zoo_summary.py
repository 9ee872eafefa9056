"""`zoo.summary` and `python -m zoo`: the lecture's per-layer table, totals, CLI errors."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zoo
from layers.arithmetic import receptive_field

ROOT = Path(__file__).resolve().parents[2]


def _rows(model):
    return {row.name: row for row in zoo.layer_stats(model)}


def test_alexnet_receptive_fields_match_the_arithmetic_module():
    model = zoo.create_model("alexnet")
    rows = _rows(model)
    names = ["conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5"]
    expected = receptive_field([model.get_layer(name) for name in names])
    for name, field in zip(names, expected, strict=True):
        assert (rows[name].receptive_field, rows[name].jump) == (field.size, field.jump), name
    # The lecture's values: 11, 19, 51, 67, 99, 131, 163, 195.
    assert rows["pool5"].receptive_field == 195 and rows["pool5"].jump == 32
    assert rows["lrn1"].receptive_field == rows["conv1"].receptive_field
    assert rows["fc6"].receptive_field is None


def test_macs_are_kernel_taps_times_output_positions():
    rows = _rows(zoo.create_model("alexnet"))
    for name, (size, taps, filters) in {
        "conv1": (55, 11 * 11 * 3, 96),
        "conv2": (27, 5 * 5 * 48, 256),
        "conv3": (13, 3 * 3 * 256, 384),
        "conv4": (13, 3 * 3 * 192, 384),
        "conv5": (13, 3 * 3 * 192, 256),
    }.items():
        assert rows[name].macs == size * size * taps * filters, name
    assert rows["fc6"].macs == 9216 * 4096 and rows["pool1"].macs == 0
    assert sum(r.macs for r in rows.values()) == 724_406_816  # the commonly quoted ~724M
    transpose = _rows(zoo.create_model("conv_autoencoder"))["dec1"]
    assert transpose.macs == 7 * 7 * 128 * 4 * 4 * 64  # every input pixel through the kernel


def test_summary_table_and_totals():
    model = zoo.create_model("lenet5_modern")
    printed = []
    text = zoo.summary(model, print_fn=printed.append)
    assert printed == [text]
    lines = text.splitlines()
    assert lines[0] == 'Model: "lenet5_modern"'
    assert any(line.startswith("conv1 (Conv2D)") and "(None, 28, 28, 6)" in line for line in lines)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    total = model.count_params()
    assert lines[-2] == (
        f"Total params: {total:,} (trainable: {trainable:,}, non-trainable: {total - trainable:,})"
    )
    macs = 28 * 28 * 6 * 25 + 10 * 10 * 16 * 150 + 400 * 120 + 120 * 84 + 84 * 10
    assert lines[-1] == f"Total MACs per example: {macs:,}"
    assert sum(row.params for row in zoo.layer_stats(model)) == total


def test_plot_writes_a_png(tmp_path):
    path = tmp_path / "lenet.png"
    zoo.summary(zoo.create_model("conv_autoencoder"), print_fn=None, plot_to=str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def _cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "zoo", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_alexnet_is_drawn_as_two_towers_that_cross_at_conv3():
    from zoo.model_plot import _levels

    rows = {row.stats.name: row for row in _levels(zoo.create_model("alexnet"))}
    assert (rows["normalize"].towers, rows["conv1"].towers, rows["conv1"].link) == (1, 2, "fan-out")
    assert (rows["conv2"].towers, rows["conv2"].link) == (2, "straight")
    assert (rows["conv3"].towers, rows["conv3"].link) == (2, "cross")
    assert (rows["conv4"].link, rows["pool5"].towers) == ("straight", 2)
    assert (rows["flatten"].towers, rows["flatten"].link, rows["fc6"].towers) == (1, "merge", 1)
    single = _levels(zoo.create_model("alexnet_single_tower"))
    assert {row.towers for row in single} == {1}


def test_cli_summary_plot_and_errors(tmp_path):
    png = tmp_path / "alexnet.png"
    ok = _cli("alexnet", "--input-shape", "64,64,3", "--num-classes", "10", "--plot", str(png))
    assert ok.returncode == 0, ok.stderr
    assert "pool5 (MaxPool2D)" in ok.stdout and "(None, 1, 1, 256)" in ok.stdout
    assert "Total params:" in ok.stdout and png.stat().st_size > 0
    # The variant's keywords are those it forwards to build_alexnet, less those it fixes.
    assert "  resize_to: int | Sequence[int] | None = None" in ok.stdout
    assert "synchronized" not in ok.stdout and "towers:" not in ok.stdout

    bad = _cli("alexnett")
    assert bad.returncode == 2 and bad.stdout == ""
    errors = [line for line in bad.stderr.splitlines() if line.startswith("python -m zoo: error:")]
    assert len(errors) == 1 and "'alexnett'" in errors[0] and "'alexnet'" in errors[0]
    assert "Traceback" not in bad.stderr

    small = _cli("alexnet", "--input-shape", "32,32,3")
    assert small.returncode == 2 and "minimum is 55x55" in small.stderr

    listing = _cli()
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    models = zoo.list_models()
    assert lines[0].split()[:2] == ["model", "task"]
    assert [line.split()[0] for line in lines[1 : 1 + len(models)]] == models
    assert lines[1].startswith("alexnet ") and lines[1].endswith("Krizhevsky et al. 2012")
