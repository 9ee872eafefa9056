"""LayerNorm, GroupNorm and InstanceNorm against Keras's LayerNormalization and
GroupNormalization: outputs and gradients over many shapes, mixed precision, serialization,
errors, edge runtimes."""

import numpy as np
import pytest
import tensorflow as tf
import testing_utils
from hypothesis import given
from hypothesis import strategies as st

from layers.group_norm import GroupNorm
from layers.instance_norm import InstanceNorm
from layers.layer_norm import LayerNorm

ATOL = 1e-5


def set_params(layers, rng):
    """Gives `layers` (ours and the oracle) the same random gamma/beta."""
    for name in ("gamma", "beta"):
        reference = getattr(layers[0], name)
        if reference is None:
            continue
        value = rng.uniform(0.5, 1.5, reference.shape).astype("float32")
        for layer in layers:
            getattr(layer, name).assign(value)


def outputs_and_gradients(layer, x, upstream):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * upstream)
    grads = tape.gradient(loss, [x, *layer.trainable_weights])
    return y.numpy(), [g.numpy() for g in grads]


def assert_matches(ours, oracle, shape, seed):
    rng = np.random.default_rng(seed)
    ours.build(shape)
    oracle.build(shape)
    set_params([ours, oracle], rng)
    x = (rng.normal(size=shape) * 3 + 1).astype("float32")
    upstream = tf.constant(rng.normal(size=shape).astype("float32"))
    y, grads = outputs_and_gradients(ours, x, upstream)
    y_ref, grads_ref = outputs_and_gradients(oracle, x, upstream)
    np.testing.assert_allclose(y, y_ref, atol=ATOL, rtol=ATOL)
    assert len(grads) == len(grads_ref) == 1 + ours.scale + ours.center
    for grad, grad_ref in zip(grads, grads_ref, strict=True):
        np.testing.assert_allclose(grad, grad_ref, atol=1e-4, rtol=1e-4)


@st.composite
def layer_norm_cases(draw):
    rank = draw(st.integers(2, 4))
    shape = tuple([draw(st.integers(1, 3))] + [draw(st.integers(2, 5)) for _ in range(rank - 1)])
    candidates = [-1, list(range(1, rank)), [rank - 1]]
    if rank > 2:
        candidates += [[1], [1, rank - 1], -2]
    axis = draw(st.sampled_from(candidates))
    return shape, axis, draw(st.booleans()), draw(st.booleans())


@given(case=layer_norm_cases(), epsilon=st.sampled_from([1e-3, 1e-5]))
def test_layer_norm_matches_keras(case, epsilon):
    shape, axis, center, scale = case
    kwargs = {"axis": axis, "epsilon": epsilon, "center": center, "scale": scale}
    assert_matches(
        LayerNorm(**kwargs), tf.keras.layers.LayerNormalization(**kwargs), shape, sum(shape)
    )


@st.composite
def group_norm_cases(draw):
    rank = draw(st.integers(2, 5))
    groups = draw(st.integers(1, 4))
    channels = groups * draw(st.integers(1, 3))
    shape = [draw(st.integers(1, 3))] + [draw(st.integers(1, 4)) for _ in range(rank - 1)]
    axis = draw(st.sampled_from([-1, 1] if rank > 2 else [-1]))
    shape[axis] = channels
    return tuple(shape), groups, axis, draw(st.booleans()), draw(st.booleans())


@given(case=group_norm_cases())
def test_group_norm_matches_keras(case):
    shape, groups, axis, center, scale = case
    kwargs = {"groups": groups, "axis": axis, "epsilon": 1e-3, "center": center, "scale": scale}
    assert_matches(
        GroupNorm(**kwargs), tf.keras.layers.GroupNormalization(**kwargs), shape, sum(shape)
    )


@given(
    shape=st.lists(st.integers(1, 4), min_size=3, max_size=5).map(tuple),
    center=st.booleans(),
    scale=st.booleans(),
)
def test_instance_norm_is_group_norm_with_one_group_per_channel(shape, center, scale):
    kwargs = {"epsilon": 1e-3, "center": center, "scale": scale}
    oracle = tf.keras.layers.GroupNormalization(groups=shape[-1], **kwargs)
    assert_matches(InstanceNorm(**kwargs), oracle, shape, sum(shape))


def test_instance_norm_normalizes_each_channel_of_each_example_over_space():
    x = np.random.default_rng(0).normal(size=(2, 4, 5, 3)).astype("float32") * 4 + 2
    y = InstanceNorm(epsilon=1e-5, center=False, scale=False)(x).numpy()
    mean, variance = x.mean(axis=(1, 2), keepdims=True), x.var(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(variance + 1e-5), atol=1e-5)


def test_group_norm_with_one_group_is_layer_norm_over_all_but_batch():
    x = np.random.default_rng(1).normal(size=(2, 3, 3, 4)).astype("float32")
    group = GroupNorm(groups=1)(x)
    layer = LayerNorm(axis=(1, 2, 3), center=False, scale=False)(x)
    np.testing.assert_allclose(group, layer, atol=ATOL)


@pytest.mark.parametrize(
    ("make", "make_oracle"),
    [
        (lambda: LayerNorm(axis=(1, 2, 3)), lambda: tf.keras.layers.LayerNormalization((1, 2, 3))),
        (lambda: GroupNorm(groups=2), lambda: tf.keras.layers.GroupNormalization(groups=2)),
        (lambda: InstanceNorm(), lambda: tf.keras.layers.GroupNormalization(groups=4)),
    ],
    ids=["layer", "group", "instance"],
)
def test_mixed_bfloat16_computes_in_float32(make, make_oracle):
    tf.keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        ours, oracle = make(), make_oracle()
        shape = (2, 3, 3, 4)
        ours.build(shape)
        oracle.build(shape)
        set_params([ours, oracle], np.random.default_rng(2))
        assert all(w.dtype == tf.float32 for w in ours.weights)
        x = tf.cast(np.random.default_rng(3).normal(size=shape) * 100 + 50, tf.bfloat16)
        y = ours(x)
        assert y.dtype == tf.bfloat16
        np.testing.assert_allclose(
            tf.cast(y, tf.float32), tf.cast(oracle(x), tf.float32), atol=1e-2, rtol=1e-2
        )
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")


CONFIGURED = [
    LayerNorm(axis=[1, 2], epsilon=1e-4, center=False, gamma_regularizer="l2", name="ln"),
    GroupNorm(groups=3, axis=1, epsilon=1e-5, scale=False, beta_initializer="ones", name="gn"),
    InstanceNorm(epsilon=1e-2, gamma_initializer="random_normal", name="in"),
]


@pytest.mark.parametrize("layer", CONFIGURED, ids=lambda layer: type(layer).__name__)
def test_get_config_round_trip(layer):
    config = layer.get_config()
    restored = type(layer).from_config(config)
    assert restored.get_config() == config
    assert config["epsilon"] == layer.epsilon
    assert ("groups" in config) == (type(layer) is GroupNorm)


@pytest.mark.parametrize(
    ("make", "shape", "message"),
    [
        (lambda: GroupNorm(groups=3), (2, 4, 4, 8), r"8 channels cannot be split into groups=3"),
        (lambda: GroupNorm(groups=16), (2, 4, 4, 8), r"groups=16"),
        (lambda: GroupNorm(groups=0), (2, 4), "positive integer"),
        (lambda: GroupNorm(groups=2), (4,), r"rank >= 2"),
        (lambda: InstanceNorm(), (2, 8), r"rank >= 3.*\(2, 8\)"),
        (lambda: GroupNorm(groups=2, axis=4), (2, 4, 4, 8), r"axis=4"),
        (lambda: LayerNorm(axis=0), (2, 4), "batch axis"),
        (lambda: LayerNorm(axis=3), (2, 4), r"axis=3.*\[-2, 1\]"),
        (lambda: LayerNorm(axis="last"), (2, 4), "axis"),
        (lambda: LayerNorm(epsilon=-1.0), (2, 4), "epsilon"),
        (lambda: LayerNorm(), (5,), r"rank >= 2"),
    ],
)
def test_bad_arguments_raise_value_error(make, shape, message):
    with pytest.raises(ValueError, match=message):
        make().build(shape)


EDGE_CASES = [
    (lambda: LayerNorm(axis=(1, 2, 3)), (4, 4, 6)),
    (lambda: GroupNorm(groups=3), (4, 4, 6)),
    (lambda: InstanceNorm(), (4, 4, 6)),
]


@pytest.mark.keras3_only
@pytest.mark.parametrize(("make", "shape"), EDGE_CASES, ids=["layer", "group", "instance"])
def test_tflite_and_onnx_match(make, shape):
    layer = make()
    model = testing_utils.model_of(layer, shape)
    set_params([layer], np.random.default_rng(4))
    x = np.random.default_rng(5).normal(size=(2, *shape)).astype("float32")
    testing_utils.assert_edge_runtimes_match(model, x, atol=1e-4, rtol=1e-4)


@pytest.mark.keras3_only
@pytest.mark.parametrize(("make", "shape"), EDGE_CASES, ids=["layer", "group", "instance"])
def test_keras_file_round_trip_is_exact(make, shape, tmp_path):
    layer = make()
    model = testing_utils.model_of(layer, shape)
    set_params([layer], np.random.default_rng(6))
    path = str(tmp_path / "norm.keras")
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    assert type(loaded.layers[-1]) is type(layer)
    assert loaded.layers[-1].get_config() == layer.get_config()
    x = np.random.default_rng(7).normal(size=(2, *shape)).astype("float32")
    np.testing.assert_array_equal(loaded(x), model(x))
