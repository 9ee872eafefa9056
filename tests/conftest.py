"""Test-wide settings: quiet TensorFlow, seeded randomness, a hypothesis profile for CI."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import layers  # noqa: F401  (imports TensorFlow, first and without its native start-up logs)

settings.register_profile(
    "convzoo",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
# `make test-fast`: the same properties on fewer examples (CI runs the full profile).
settings.register_profile("fast", settings.get_profile("convzoo"), max_examples=5)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "convzoo"))


@pytest.fixture(autouse=True)
def _seed():
    import tensorflow as tf

    np.random.seed(0)
    tf.random.set_seed(0)
    yield
    tf.keras.backend.clear_session()
