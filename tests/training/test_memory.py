"""A run that cannot fit in memory is refused before it starts; the epoch time is forecast."""

from __future__ import annotations

import pytest

from training import callbacks
from training.__main__ import main
from training.memory import (
    WEIGHT_COPIES,
    available_memory_bytes,
    check_fits,
    training_memory_bytes,
)
from zoo import create_model


def test_the_estimate_counts_weights_optimizer_slots_and_activations():
    model = create_model("alexnet_bn", num_classes=10, resize_to=64, input_shape=(28, 28, 1))
    params = model.count_params()
    sgd = training_memory_bytes(model, batch_size=128, optimizer="sgd", ema=False)
    adam = training_memory_bytes(model, batch_size=128, optimizer="adam", ema=True)
    assert sgd["weights_and_optimizer"] == 4 * params * (3 + WEIGHT_COPIES)
    assert adam["weights_and_optimizer"] == 4 * params * (5 + WEIGHT_COPIES)
    double = training_memory_bytes(model, batch_size=256, optimizer="sgd", ema=False)
    assert double["activations"] == 2 * sgd["activations"] > 0
    assert sgd["total"] == sum(sgd[k] for k in ("weights_and_optimizer", "activations", "runtime"))


def test_a_batch_that_does_not_fit_names_the_largest_that_does():
    estimate = {"weights_and_optimizer": 2 << 30, "activations": 8 << 30, "runtime": 1 << 30,
                "total": 11 << 30, "per_example": 1 << 26}  # fmt: skip
    with pytest.raises(ValueError, match=r"--batch-size 128: .* needs about 11\.0 GiB.*"
                       r"6\.0 GiB available; --batch-size 48 or less fits"):  # fmt: skip
        check_fits(estimate, 128, "alexnet", available=6 << 30)
    check_fits(estimate, 128, "alexnet", available=12 << 30)
    with pytest.raises(ValueError, match="no batch size fits"):
        check_fits(estimate, 128, "alexnet", available=2 << 30)


def test_this_machine_reports_its_available_memory():
    available = available_memory_bytes()
    assert available is not None and available > 1 << 28


def test_the_cli_refuses_a_batch_beyond_memory(tmp_path, capsys):
    argv = ["--model", "alexnet_bn", "--model-options", "resize_to=64", "--batch-size", "1000000",
            "--run-dir", str(tmp_path / "run"), "--mixed-precision", "off"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--batch-size 1000000: training alexnet_bn needs about" in err[0]
    assert "or less fits" in err[0]
    assert not (tmp_path / "run" / "config.json").exists()


def test_the_epoch_time_is_forecast_once_from_timed_steps(monkeypatch, capsys):
    clock = iter([10.0, 12.0, 16.0, 30.0])
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
    forecast = callbacks.EpochTimeForecast(steps_per_epoch=400, epochs=30, min_seconds=5.0)
    forecast.on_epoch_begin(0)
    for batch in (31, 63, 95):  # steps_per_execution 32: one call per 32 steps
        forecast.on_train_batch_end(batch)
    out = capsys.readouterr().out
    # 64 steps in 6 s after the first call: 94 ms per step, 38 s per epoch, 30 epochs 19 min.
    assert "94 ms per step, about 38 s per epoch, 19 min for the 30 epoch(s) to go" in out
    forecast.on_train_batch_end(127)
    assert capsys.readouterr().out == ""
