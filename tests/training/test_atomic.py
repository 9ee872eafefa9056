"""Atomic writes: nothing half-written under a final name, the old content kept on failure."""

from __future__ import annotations

import json
import math
import stat

import numpy as np
import pytest

from training.artifacts import remove_stale_temporaries
from training.atomic import (
    TEMPORARY_NAME,
    atomic_replace,
    atomic_write_directory,
    atomic_write_json,
    atomic_write_text,
)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "model.keras"
    atomic_write_text(path, "old")

    def half_then_fail(tmp):
        assert tmp.suffix == ".keras" and TEMPORARY_NAME.match(tmp.name)
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_replace(path, half_then_fail)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


def test_json_gets_numpy_scalars_and_non_finite_values(tmp_path):
    path = atomic_write_json(tmp_path / "m.json", {"a": np.float32(0.5), "b": (1, math.inf)})
    assert json.loads(path.read_text()) == {"a": 0.5, "b": [1, "inf"]}


def test_a_directory_is_swapped_in_whole_or_not_at_all(tmp_path):
    target = tmp_path / "bundle"
    atomic_write_directory(target, lambda d: (d / "a.h").write_text("one"))
    assert (target / "a.h").read_text() == "one"
    assert stat.S_IMODE((target / "a.h").stat().st_mode) == 0o644
    assert stat.S_IMODE(target.stat().st_mode) == 0o755

    def fail(d):
        (d / "a.h").write_text("two")
        raise RuntimeError("converter failed")

    with pytest.raises(RuntimeError, match="converter failed"):
        atomic_write_directory(target, fail)
    assert (target / "a.h").read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]

    atomic_write_directory(target, lambda d: (d / "b.h").write_text("new"))
    assert sorted(p.name for p in target.iterdir()) == ["b.h"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    stale = tmp_path / ".model.tmp999999999.keras"
    stale.write_text("left by a killed run")
    (tmp_path / "model.keras").write_text("kept")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]
