"""BatchNorm against Keras's BatchNormalization (momentum = 1 - a): outputs, gradients, moving
statistics, inference and frozen modes, mixed precision, serialization, synchronized replicas,
edge runtimes."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import testing_utils
from hypothesis import given
from hypothesis import strategies as st

from layers.batch_norm import BatchNorm

ATOL = 1e-5


def keras_batch_norm(
    momentum: float = 0.1, epsilon: float = 1e-5, **kwargs
) -> tf.keras.layers.Layer:
    """The oracle for `BatchNorm(momentum=a)`: Keras's layer with momentum 1 - a.

    tf_keras picks a fused kernel for 4D/5D inputs whose moving variance is the unbiased one
    (Keras 3, like our layer, tracks the biased variance), so the oracle there is the unfused
    path."""
    if testing_utils.LEGACY_KERAS:
        kwargs["fused"] = False
    return tf.keras.layers.BatchNormalization(momentum=1.0 - momentum, epsilon=epsilon, **kwargs)


def random_params(channels: int, rng: np.random.Generator, center=True, scale=True):
    weights = []
    if scale:
        weights.append(rng.uniform(0.5, 1.5, channels).astype("float32"))
    if center:
        weights.append(rng.normal(size=channels).astype("float32"))
    weights.append(rng.normal(size=channels).astype("float32"))
    weights.append(rng.uniform(0.5, 2.0, channels).astype("float32"))
    return weights


def train_steps(layer, xs, upstream):
    """Runs training steps, returning per-step outputs and gradients (input + trainables)."""
    results = []
    for x in xs:
        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * upstream)
        grads = tape.gradient(loss, [x, *layer.trainable_weights])
        results.append((y.numpy(), [g.numpy() for g in grads]))
    return results


def assert_same_training(ours, oracle, xs, upstream):
    for (y, g), (y_ref, g_ref) in zip(
        train_steps(ours, xs, upstream), train_steps(oracle, xs, upstream), strict=True
    ):
        np.testing.assert_allclose(y, y_ref, atol=ATOL, rtol=ATOL)
        assert len(g) == len(g_ref)
        for grad, grad_ref in zip(g, g_ref, strict=True):
            np.testing.assert_allclose(grad, grad_ref, atol=ATOL, rtol=ATOL)
    for w, w_ref in zip(ours.get_weights(), oracle.get_weights(), strict=True):
        np.testing.assert_allclose(w, w_ref, atol=ATOL, rtol=ATOL)


@st.composite
def configurations(draw):
    rank = draw(st.integers(2, 5))
    shape = [draw(st.integers(2, 4))] + [draw(st.integers(1, 4)) for _ in range(rank - 1)]
    axis = draw(st.sampled_from([-1, 1] if rank > 2 else [-1]))
    shape[axis] = draw(st.integers(1, 6))
    return {
        "shape": tuple(shape),
        "axis": axis,
        "center": draw(st.booleans()),
        "scale": draw(st.booleans()),
        "momentum": draw(st.sampled_from([0.1, 0.01, 0.5])),
        "epsilon": draw(st.sampled_from([1e-5, 1e-3])),
    }


@given(config=configurations())
def test_matches_keras_in_training_and_inference(config):
    shape = config.pop("shape")
    rng = np.random.default_rng(sum(shape))
    ours, oracle = BatchNorm(**config), keras_batch_norm(**config)
    ours.build(shape)
    oracle.build(shape)
    oracle.set_weights(random_params(shape[config["axis"]], rng, config["center"], config["scale"]))
    ours.set_weights(oracle.get_weights())
    xs = [(rng.normal(size=shape) * 3 + 1).astype("float32") for _ in range(3)]
    upstream = tf.constant(rng.normal(size=shape).astype("float32"))
    assert_same_training(ours, oracle, xs, upstream)
    for training in (False, None):
        np.testing.assert_allclose(
            ours(xs[0], training=training), oracle(xs[0], training=training), atol=ATOL
        )


def test_weights_are_named_and_ordered_as_keras_and_transfer_back():
    ours, oracle = BatchNorm(), keras_batch_norm()
    ours.build((None, 3))
    oracle.build((None, 3))
    names = [w.name.split("/")[-1].split(":")[0] for w in ours.weights]
    assert names == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert [w.name.split("/")[-1].split(":")[0] for w in oracle.weights] == names
    assert [w.trainable for w in ours.weights] == [w.trainable for w in oracle.weights]
    weights = random_params(3, np.random.default_rng(1))
    ours.set_weights(weights)
    oracle.set_weights(ours.get_weights())
    x = np.random.default_rng(2).normal(size=(4, 3)).astype("float32")
    np.testing.assert_allclose(ours(x), oracle(x), atol=ATOL)


def test_inference_uses_moving_statistics_and_updates_nothing():
    layer = BatchNorm(epsilon=1e-3)
    layer.build((None, 2, 2, 3))
    weights = random_params(3, np.random.default_rng(3))
    layer.set_weights(weights)
    gamma, beta, mean, variance = weights
    x = np.random.default_rng(4).normal(size=(5, 2, 2, 3)).astype("float32")
    expected = gamma * (x - mean) / np.sqrt(variance + 1e-3) + beta
    for training in (False, None):
        np.testing.assert_allclose(layer(x, training=training), expected, atol=ATOL)
    for w, w0 in zip(layer.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(w, w0)


def test_training_normalizes_with_biased_batch_moments_and_lecture_momentum():
    x = np.random.default_rng(5).normal(size=(6, 3, 2)).astype("float32") * 2 + 3
    layer = BatchNorm(momentum=0.1, center=False, scale=False)
    y = layer(x, training=True).numpy()
    mean, variance = x.mean(axis=(0, 1)), x.var(axis=(0, 1))
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(variance + 1e-5), atol=1e-5)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.1 * mean, atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.9 + 0.1 * variance, atol=1e-6)


def test_trainable_false_freezes_to_inference_mode():
    shape = (4, 3, 3, 2)
    rng = np.random.default_rng(6)
    ours, oracle = BatchNorm(trainable=False), keras_batch_norm(trainable=False)
    ours.build(shape)
    oracle.build(shape)
    weights = random_params(2, rng)
    ours.set_weights(weights)
    oracle.set_weights(weights)
    x = rng.normal(size=shape).astype("float32")
    y = ours(x, training=True)
    np.testing.assert_allclose(y, oracle(x, training=True), atol=ATOL)
    np.testing.assert_allclose(y, ours(x, training=False), atol=0)
    for w, w0 in zip(ours.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(w, w0)


def test_fit_updates_moving_statistics_like_keras():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(32, 4, 4, 3)).astype("float32") * 2 + 1
    y = rng.normal(size=(32, 4, 4, 3)).astype("float32")
    models = []
    for layer in (BatchNorm(), keras_batch_norm()):
        model = testing_utils.model_of(layer, (4, 4, 3))
        model.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss="mse")
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        models.append(model)
    for w, w_ref in zip(models[0].get_weights(), models[1].get_weights(), strict=True):
        np.testing.assert_allclose(w, w_ref, atol=1e-5)
    np.testing.assert_allclose(
        models[0].predict(x, verbose=0), models[1].predict(x, verbose=0), atol=1e-5
    )


def test_mixed_bfloat16_computes_in_float32_and_matches_keras():
    tf.keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        shape = (4, 3, 3, 5)
        rng = np.random.default_rng(8)
        ours, oracle = BatchNorm(), keras_batch_norm()
        ours.build(shape)
        oracle.build(shape)
        oracle.set_weights(random_params(5, rng))
        ours.set_weights(oracle.get_weights())
        assert all(w.dtype == tf.float32 for w in ours.weights)
        x = tf.cast(rng.normal(size=shape) * 100 + 50, tf.bfloat16)
        for training in (True, True, False):
            y, y_ref = ours(x, training=training), oracle(x, training=training)
            assert y.dtype == tf.bfloat16
            np.testing.assert_allclose(
                tf.cast(y, tf.float32), tf.cast(y_ref, tf.float32), atol=1e-2, rtol=1e-2
            )
        for w, w_ref in zip(ours.get_weights(), oracle.get_weights(), strict=True):
            np.testing.assert_allclose(w, w_ref, rtol=1e-5)
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")


def test_get_config_round_trip():
    layer = BatchNorm(
        axis=1,
        momentum=0.05,
        epsilon=1e-4,
        center=False,
        scale=True,
        synchronized=True,
        gamma_initializer="random_normal",
        moving_variance_initializer="zeros",
        gamma_regularizer="l2",
        name="bn",
    )
    config = layer.get_config()
    restored = BatchNorm.from_config(config)
    assert restored.get_config() == config
    for key in ("axis", "momentum", "epsilon", "center", "scale", "synchronized"):
        assert config[key] == getattr(layer, key)
    restored.build((None, 3, 2))
    assert len(restored.losses) == 1  # the gamma regularizer survived


def test_one_value_per_channel_in_training_is_an_error():
    layer = BatchNorm()
    with pytest.raises(ValueError, match=r"more than 1 value per channel.*\(1, 4\)"):
        layer(np.ones((1, 4), "float32"), training=True)
    # Inference with one example is fine, and so is a 1x1 image in a batch of two.
    assert layer(np.ones((1, 4), "float32"), training=False).shape == (1, 4)
    assert BatchNorm()(np.ones((2, 1, 1, 4), "float32"), training=True).shape == (2, 1, 1, 4)


@pytest.mark.parametrize(
    ("kwargs", "shape", "message"),
    [
        ({"momentum": 1.5}, (2, 3), "momentum"),
        ({"epsilon": 0.0}, (2, 3), "epsilon"),
        ({"axis": "channels"}, (2, 3), "axis"),
        ({"axis": 3}, (2, 3), r"axis=3.*\[-2, 1\]"),
        ({}, (3,), "rank >= 2"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, shape, message):
    with pytest.raises(ValueError, match=message):
        BatchNorm(**kwargs).build(shape)


def test_unknown_channels_raise_value_error():
    with pytest.raises(ValueError, match="known size on axis -1"):
        BatchNorm().build((None, 4, None))


SYNC_SCRIPT = textwrap.dedent(
    """
    import json
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    from layers.batch_norm import BatchNorm

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(8, 3, 3, 4)) * 2 + rng.normal(size=4) * 5).astype("float32")
    upstream = rng.normal(size=x.shape).astype("float32")

    def run(layer, x, upstream):
        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * upstream)
        return y, tape.gradient(loss, x)

    single = BatchNorm()
    for _ in range(2):
        y_single, g_single = run(single, x, upstream)

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        synced = BatchNorm(synchronized=True)
        synced.build(x.shape)
        unsynced = BatchNorm()
        unsynced.build(x.shape)

    def halves(array):
        return strategy.experimental_distribute_values_from_function(
            lambda ctx: array[4 * ctx.replica_id_in_sync_group :][:4]
        )

    @tf.function
    def step(layer, x, upstream):
        return strategy.run(run, args=(layer, x, upstream))

    for _ in range(2):
        y_sync, g_sync = step(synced, halves(x), halves(upstream))
        step(unsynced, halves(x), halves(upstream))
    gather = lambda v: np.concatenate([t.numpy() for t in strategy.experimental_local_results(v)])
    error = lambda a, b: float(np.abs(np.asarray(a) - np.asarray(b)).max())
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "output_error": error(gather(y_sync), y_single),
        "gradient_error": error(gather(g_sync), g_single),
        "mean_error": error(synced.moving_mean, single.moving_mean),
        "variance_error": error(synced.moving_variance, single.moving_variance),
        "unsynced_mean_error": error(unsynced.moving_mean, single.moving_mean),
        "unsynced_variance_error": error(unsynced.moving_variance, single.moving_variance),
    }))
    """
)


def test_synchronized_moments_equal_the_global_batch_under_mirrored_strategy():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", SYNC_SCRIPT],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    errors = json.loads(result.stdout.strip().splitlines()[-1])
    assert errors["replicas"] == 2
    for key in ("output_error", "gradient_error", "mean_error", "variance_error"):
        assert errors[key] < 1e-5, errors
    # Unsynchronized replicas see different halves: their statistics are not the global ones.
    assert errors["unsynced_variance_error"] > 1e-3, errors


@pytest.mark.keras3_only
@pytest.mark.parametrize("shape", [(6,), (5, 5, 3)])
def test_tflite_and_onnx_match(shape):
    layer = BatchNorm()
    model = testing_utils.model_of(layer, shape)
    layer.set_weights(random_params(shape[-1], np.random.default_rng(9)))
    x = np.random.default_rng(10).normal(size=(2, *shape)).astype("float32")
    testing_utils.assert_edge_runtimes_match(model, x)


@pytest.mark.keras3_only
def test_keras_file_round_trip_is_exact(tmp_path):
    layer = BatchNorm(momentum=0.2)
    model = testing_utils.model_of(layer, (3, 3, 2))
    x = np.random.default_rng(11).normal(size=(4, 3, 3, 2)).astype("float32")
    layer(x, training=True)
    path = str(tmp_path / "bn.keras")
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    assert isinstance(loaded.layers[-1], BatchNorm)
    assert loaded.layers[-1].get_config() == layer.get_config()
    for w, w_ref in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(w, w_ref)
    np.testing.assert_array_equal(loaded(x, training=False), model(x, training=False))
