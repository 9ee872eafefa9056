"""The run record (`run.json`): written by training, read by export, in both directions."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from training.record import (
    RECORD_FILE,
    SCHEMA_VERSION,
    RunRecord,
    RunRecordError,
    read_run_record,
    validation_digest,
    write_run_record,
)


def _record(**changes) -> RunRecord:
    values = dict(
        model="lenet5",
        model_options={"activation": "tanh"},
        dataset="fashion_mnist",
        data_dir=None,
        class_names=tuple(f"class{i}" for i in range(10)),
        input_shape=(28, 28, 1),
        pixel_range=(0.0, 255.0),
        mean=(0.286,),
        std=(0.353,),
        task="classification",
        mixed_precision="bfloat16",
        validation={"fraction": 0.1, "seed": 0, "size": 6000, "sha256": "ab" * 32},
        metrics={"test_accuracy": 0.9, "test_loss": 0.3},
        versions={"tensorflow": "2.21.0"},
        config={"model": "lenet5", "epochs": 15},
    )
    values.update(changes)
    return RunRecord(**values)


def test_write_then_read_gives_the_same_record(tmp_path):
    record = _record()
    path = write_run_record(tmp_path, record)
    assert path == tmp_path / RECORD_FILE
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION and data["input_shape"] == [28, 28, 1]
    assert read_run_record(tmp_path) == record
    assert not [p for p in tmp_path.iterdir() if p.name != RECORD_FILE]  # no temporaries


def test_a_newer_schema_is_refused_by_name(tmp_path):
    data = _record().to_json()
    data["schema_version"] = SCHEMA_VERSION + 1
    (tmp_path / RECORD_FILE).write_text(json.dumps(data))
    with pytest.raises(RunRecordError, match=rf"schema_version {SCHEMA_VERSION + 1}.*upgrade"):
        read_run_record(tmp_path)


def test_missing_and_unknown_keys_are_named(tmp_path):
    data = _record().to_json()
    del data["task"]
    data["colour"] = "blue"
    (tmp_path / RECORD_FILE).write_text(json.dumps(data))
    with pytest.raises(RunRecordError, match=r"missing keys \['task'\], unknown keys \['colour'\]"):
        read_run_record(tmp_path)
    (tmp_path / RECORD_FILE).write_text("{not json")
    with pytest.raises(RunRecordError, match="not readable JSON"):
        read_run_record(tmp_path)


def test_bad_values_are_refused():
    with pytest.raises(RunRecordError, match="task 'detection'"):
        _record(task="detection")
    with pytest.raises(RunRecordError, match="input_shape"):
        _record(input_shape=(28, 28))


def test_a_directory_from_before_records_is_migrated(tmp_path):
    config = {"model": "lenet5_modern", "dataset": "fashion_mnist", "val_split": 0.1, "seed": 3}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "metrics.json").write_text(
        json.dumps({"test_accuracy": 0.91, "val_size": 6000, "confusion_matrix": [[1]]})
    )
    record = read_run_record(tmp_path)
    from zoo import get_model_info

    info = get_model_info("lenet5_modern")
    assert record.task == "classification" and record.input_shape == tuple(info.input_shape)
    assert record.mean == tuple(info.mean) and record.std == tuple(info.std)
    assert record.validation == {"fraction": 0.1, "seed": 3, "size": 6000, "sha256": None}
    assert record.metrics == {"test_accuracy": 0.91}
    assert record.versions == {"migrated_from": "config.json"}
    # The migrated record is a valid record: it survives the round trip.
    (tmp_path / "copy").mkdir()
    write_run_record(tmp_path / "copy", record)
    assert read_run_record(tmp_path / "copy") == record


def test_no_record_and_no_config_is_none(tmp_path):
    assert read_run_record(tmp_path) is None


def test_validation_digest_names_the_split():
    from training.data import train_val_split, validation_indices

    y = np.repeat(np.arange(10), 50)
    idx = validation_indices(y, 0.1, seed=0)
    (_, _), (_, y_val) = train_val_split(np.arange(500), y, 0.1, seed=0)
    assert len(idx) == 50 and np.array_equal(y[idx], y_val)
    assert validation_digest(idx) == validation_digest(idx.copy())
    assert validation_digest(idx) != validation_digest(validation_indices(y, 0.1, seed=1))


def test_export_refuses_a_validation_split_that_does_not_match_the_record():
    from export.data import load_export_data
    from training.data import load_dataset, validation_indices

    y = load_dataset("fashion_mnist").y_train
    right = validation_digest(validation_indices(y, 0.1, seed=0))
    kwargs = dict(calibration_samples=8, test_samples=8, train_samples=16, val_split=0.1)
    data = load_export_data("fashion_mnist", (28, 28, 1), val_digest=right, **kwargs)
    assert len(data.y_validation) == 6000
    with pytest.raises(ValueError, match=r"validation split .* does not match the run record"):
        load_export_data("fashion_mnist", (28, 28, 1), val_digest="0" * 64, **kwargs)


def test_record_fields_are_documented():
    import training.record as module

    for field in dataclasses.fields(RunRecord):
        assert f"`{field.name}`" in module.__doc__, field.name
