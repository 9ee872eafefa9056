"""Tests of layers/pooling.py: Keras's own pooling layers are the oracle for "valid"/"same";
a plain numpy loop over windows (PyTorch's semantics) is the oracle for explicit padding,
ceil_mode and count_include_pad, for outputs and gradients."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import tensorflow as tf
import testing_utils
from hypothesis import assume, given
from hypothesis import strategies as st

from layers.pooling import AvgPool1D, AvgPool2D, AvgPool3D, MaxPool1D, MaxPool2D, MaxPool3D

MAX = {1: MaxPool1D, 2: MaxPool2D, 3: MaxPool3D}
AVG = {1: AvgPool1D, 2: AvgPool2D, 3: AvgPool3D}
KERAS_MAX = {
    1: tf.keras.layers.MaxPooling1D,
    2: tf.keras.layers.MaxPooling2D,
    3: tf.keras.layers.MaxPooling3D,
}
KERAS_AVG = {
    1: tf.keras.layers.AveragePooling1D,
    2: tf.keras.layers.AveragePooling2D,
    3: tf.keras.layers.AveragePooling3D,
}


def torch_output_size(n, k, s, before, after, ceil_mode, d=1):
    """PyTorch's pooling output size, written from its documentation."""
    rounding = math.ceil if ceil_mode else math.floor
    out = rounding((n + before + after - d * (k - 1) - 1) / s) + 1
    if ceil_mode and (out - 1) * s >= n + before:
        out -= 1
    return out


def reference_pool(
    x, g, kind, pool_size, strides, pads, ceil_mode, count_include_pad=True, dilation=None
):
    """Pools `x` window by window and back-propagates the cotangent `g` by hand.

    Returns `(y, dx)` where `dx` is the gradient of `sum(y * g)` with respect to `x`.
    """
    spatial = x.shape[1:-1]
    dilation = dilation or (1,) * len(spatial)
    outs = [
        torch_output_size(n, k, s, b, a, ceil_mode, d)
        for n, k, s, (b, a), d in zip(spatial, pool_size, strides, pads, dilation, strict=True)
    ]
    batch, channels = x.shape[0], x.shape[-1]
    y = np.zeros((batch, *outs, channels), np.float64)
    dx = np.zeros(x.shape, np.float64)
    for index in itertools.product(*(range(o) for o in outs)):
        starts = [i * s - b for i, s, (b, _) in zip(index, strides, pads, strict=True)]
        taps = [
            range(start, start + d * (k - 1) + 1, d)
            for start, k, d in zip(starts, pool_size, dilation, strict=True)
        ]
        real = [[t for t in axis if 0 <= t < n] for axis, n in zip(taps, spatial, strict=True)]
        region = (slice(None), *np.ix_(*real))
        window = x[(*region, slice(None))]
        flat = window.reshape(batch, -1, channels)
        cotangent = g[(slice(None), *index, slice(None))]
        if kind == "max":
            y[(slice(None), *index, slice(None))] = flat.max(axis=1)
            arg = flat.argmax(axis=1)
            grad = np.zeros_like(flat)
            for bi, ci in itertools.product(range(batch), range(channels)):
                grad[bi, arg[bi, ci], ci] = cotangent[bi, ci]
        else:
            if count_include_pad:
                divisor = np.prod(
                    [
                        sum(t < n + a for t in axis)
                        for axis, n, (_, a) in zip(taps, spatial, pads, strict=True)
                    ]
                )
            else:
                divisor = np.prod([len(axis) for axis in real])
            y[(slice(None), *index, slice(None))] = flat.sum(axis=1) / divisor
            grad = np.broadcast_to(cotangent[:, None, :] / divisor, flat.shape)
        np.add.at(dx, (*region, slice(None)), grad.reshape(window.shape))
    return y, dx


def layer_output_and_gradient(layer, x, g):
    x = tf.constant(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * tf.constant(g, tf.float32))
    return np.asarray(y), np.asarray(tape.gradient(loss, x))


@st.composite
def pool_configs(draw, padding_kinds=("int", "pairs")):
    rank = draw(st.sampled_from([1, 2, 3]))
    max_size = {1: 9, 2: 7, 3: 5}[rank]
    pool_size, strides, pads, spatial = [], [], [], []
    for _ in range(rank):
        k = draw(st.integers(1, 4))
        s = draw(st.integers(1, 3))
        if draw(st.sampled_from(padding_kinds)) == "pairs":
            pad = (draw(st.integers(0, k // 2)), draw(st.integers(0, k // 2)))
        else:
            p = draw(st.integers(0, k // 2))
            pad = (p, p)
        n = draw(st.integers(max(k - sum(pad), 1), max_size))
        pool_size.append(k)
        strides.append(s)
        pads.append(pad)
        spatial.append(n)
    return {
        "rank": rank,
        "pool_size": tuple(pool_size),
        "strides": tuple(strides),
        "pads": tuple(pads),
        "shape": (2, *spatial, draw(st.integers(1, 3))),
        "ceil_mode": draw(st.booleans()),
        "count_include_pad": draw(st.booleans()),
    }


@given(config=pool_configs())
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_explicit_padding_matches_reference(kind, config):
    rank, pads = config["rank"], config["pads"]
    kwargs = {"ceil_mode": config["ceil_mode"]}
    if kind == "avg":
        kwargs["count_include_pad"] = config["count_include_pad"]
    if any(a != b for a, b in pads):
        padding = pads  # per-side pairs
    elif len({a for a, _ in pads}) == 1:
        padding = pads[0][0]  # one int
    else:
        padding = tuple(a for a, _ in pads)  # one int per dimension
    layer = (MAX if kind == "max" else AVG)[rank](
        config["pool_size"], config["strides"], padding, **kwargs
    )
    x = np.random.randn(*config["shape"]).astype(np.float32)
    assert_matches_reference(layer, x, kind, config, pads, kwargs)


def assert_matches_reference(layer, x, kind, config, pads, kwargs) -> np.ndarray:
    """Outputs and input gradients of `layer` equal the NumPy window loop's; returns y."""
    out_shape = layer.compute_output_shape(x.shape)
    g = np.random.randn(*out_shape).astype(np.float32)
    y_ref, dx_ref = reference_pool(
        x.astype(np.float64), g, kind, config["pool_size"], config["strides"], pads, **kwargs
    )
    y, dx = layer_output_and_gradient(layer, x, g)
    assert y.shape == y_ref.shape == tuple(out_shape)
    np.testing.assert_allclose(y, y_ref, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(dx, dx_ref, atol=1e-5, rtol=1e-5)
    return y


@given(config=pool_configs(padding_kinds=("int",)), padding=st.sampled_from(["valid", "same"]))
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_named_padding_matches_keras(kind, config, padding):
    rank = config["rank"]
    pool_size, strides = config["pool_size"], config["strides"]
    shape = (2, *(max(n, k) for n, k in zip(config["shape"][1:-1], pool_size, strict=True)), 3)
    if kind == "max":
        layer, oracle = (
            MAX[rank](pool_size, strides, padding),
            KERAS_MAX[rank](pool_size, strides, padding),
        )
    else:
        # Keras averages over the real elements only: count_include_pad=False.
        layer = AVG[rank](pool_size, strides, padding, count_include_pad=False)
        oracle = KERAS_AVG[rank](pool_size, strides, padding)
    x = tf.constant(np.random.randn(*shape).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y, y_oracle = layer(x), oracle(x)
        g = tf.constant(np.random.randn(*y_oracle.shape).astype(np.float32))
        loss, loss_oracle = tf.reduce_sum(y * g), tf.reduce_sum(y_oracle * g)
    np.testing.assert_allclose(y, y_oracle, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(tape.gradient(loss, x), tape.gradient(loss_oracle, x), atol=1e-5)
    assert tuple(layer.compute_output_shape(shape)) == tuple(y_oracle.shape)


def test_max_pool_never_picks_padding():
    x = -np.ones((1, 4, 4, 1), np.float32) - np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    y = np.asarray(MaxPool2D(2, 2, padding=1)(x))
    assert y.shape == (1, 3, 3, 1)
    assert (y < 0).all()  # zero padding would have produced zeros at the borders
    np.testing.assert_array_equal(y[0, 0, 0, 0], x[0, 0, 0, 0])


def test_lecture_shapes_and_ceil_mode():
    # The lecture's AlexNet-style overlapping pooling, and the classic 5 -> 3 ceil example.
    assert MaxPool2D(3, 2).compute_output_shape((None, 55, 55, 96)) == (None, 27, 27, 96)
    assert MaxPool2D(2, 2, ceil_mode=True).compute_output_shape((1, 5, 5, 1)) == (1, 3, 3, 1)
    # The last window would start in the right padding only: PyTorch drops it.
    assert MaxPool1D(2, 2, padding=1, ceil_mode=True).compute_output_shape((1, 4, 1)) == (1, 3, 1)
    y = AvgPool1D(2, 2, ceil_mode=True)(np.arange(1, 6, dtype=np.float32).reshape(1, 5, 1))
    np.testing.assert_allclose(np.asarray(y)[0, :, 0], [1.5, 3.5, 5.0])  # the cut window: 5 / 1


def test_public_attributes():
    layer = AvgPool2D(pool_size=(3, 2), strides=1, padding=((1, 0), (1, 1)), ceil_mode=True)
    assert layer.pool_size == layer.kernel_size == (3, 2)
    assert layer.strides == (1, 1)
    assert layer.padding == ((1, 0), (1, 1))
    assert layer.ceil_mode is True and layer.count_include_pad is True
    assert layer.dilation == (1, 1)
    assert MaxPool3D(2).strides == (2, 2, 2)
    assert MaxPool1D(3, padding="SAME").padding == "same"


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (MaxPool2D, {"pool_size": 3, "strides": 2, "padding": 1, "ceil_mode": True}),
        (AvgPool2D, {"pool_size": (3, 2), "padding": ((1, 0), (1, 1)), "count_include_pad": False}),
        (AvgPool1D, {"pool_size": 2, "padding": "same"}),
        (MaxPool3D, {"pool_size": 2, "strides": (1, 2, 2), "padding": "valid"}),
    ],
)
def test_get_config_round_trip(cls, kwargs):
    layer = cls(**kwargs, name="pool")
    config = layer.get_config()
    clone = cls.from_config(config)
    assert clone.get_config() == config
    rank = len(clone.pool_size)
    x = np.random.randn(2, *([6] * rank), 3).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(layer(x)), np.asarray(clone(x)))


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
def test_mixed_bfloat16(cls):
    x = np.random.randn(2, 7, 7, 3).astype(np.float32)
    reference = np.asarray(cls(3, 2, padding=1, ceil_mode=True)(x))
    layer = cls(3, 2, padding=1, ceil_mode=True, dtype="mixed_bfloat16")
    y = layer(x)
    assert y.dtype == tf.bfloat16
    np.testing.assert_allclose(np.asarray(tf.cast(y, tf.float32)), reference, atol=3e-2, rtol=3e-2)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: MaxPool2D(0), "pool_size"),
        (lambda: AvgPool2D((2, -1)), "pool_size"),
        (lambda: MaxPool1D(2, strides=0), "strides"),
        (lambda: AvgPool3D(2, strides=(1, 1)), "strides"),
        (lambda: MaxPool2D(3, padding=2), "at most half"),
        (lambda: AvgPool2D(2, padding=((0, 2), (0, 0))), "at most half"),
        (lambda: MaxPool2D(2, padding="full"), "padding"),
        (lambda: MaxPool2D(2, ceil_mode="yes"), "ceil_mode"),
        (lambda: AvgPool2D(2, count_include_pad=1), "count_include_pad"),
        (lambda: MaxPool2D(5)(tf.zeros((1, 4, 4, 1))), "larger than the padded input"),
        (lambda: MaxPool2D(2)(tf.zeros((1, 4, 4))), "expects a 4D input"),
        (lambda: AvgPool1D(2)(tf.zeros((1, 4, 4, 1))), "expects a 3D input"),
    ],
)
def test_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_unknown_spatial_size_needs_static_shape_for_ceil_mode():
    layer = MaxPool2D(2, ceil_mode=True)
    with pytest.raises(ValueError, match="known spatial sizes"):
        layer.build((None, None, None, 3))
    # Plain pooling works on any size.
    inputs = tf.keras.Input(shape=(None, None, 3))
    model = tf.keras.Model(inputs, AvgPool2D(2, padding=1)(inputs))
    assert model(np.zeros((1, 6, 4, 3), np.float32)).shape == (1, 4, 3, 3)


EDGE_CASES = [
    (MaxPool1D, {"pool_size": 3, "strides": 2, "padding": 1, "ceil_mode": True}, (9, 4)),
    (AvgPool1D, {"pool_size": 3, "strides": 2, "padding": 1, "ceil_mode": True}, (9, 4)),
    (MaxPool2D, {"pool_size": 3, "strides": 2, "padding": 1, "ceil_mode": True}, (8, 9, 3)),
    (
        AvgPool2D,
        {"pool_size": 3, "strides": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False},
        (8, 9, 3),
    ),
    (MaxPool3D, {"pool_size": 2, "strides": 2, "padding": 1, "ceil_mode": True}, (5, 4, 5, 2)),
    (AvgPool3D, {"pool_size": (3, 2, 2), "strides": 2, "padding": (1, 0, 1)}, (5, 4, 5, 2)),
]


@pytest.mark.keras3_only
@pytest.mark.parametrize("cls, kwargs, shape", EDGE_CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_edge_runtimes_match(cls, kwargs, shape):
    model = testing_utils.model_of(cls(**kwargs), shape)
    x = np.random.randn(2, *shape).astype(np.float32)
    testing_utils.assert_edge_runtimes_match(model, x)


@pytest.mark.keras3_only
def test_keras_file_round_trip(tmp_path):
    inputs = tf.keras.Input(shape=(9, 9, 3))
    y = MaxPool2D(3, 2, padding=1, ceil_mode=True)(inputs)
    y = AvgPool2D(2, 1, padding=((1, 0), (0, 1)), count_include_pad=False)(y)
    model = tf.keras.Model(inputs, y)
    path = tmp_path / "pool.keras"
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    x = np.random.randn(2, 9, 9, 3).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    assert [type(layer) for layer in loaded.layers[1:]] == [MaxPool2D, AvgPool2D]


@pytest.mark.keras3_only
def test_padded_max_pool_quantizes_to_int8_without_losing_the_range():
    """Ceil-mode/padded max pooling must not put extreme fill values in the graph: full-int8
    calibration would stretch the scale of the pooled tensor and lose every real value."""
    inputs = tf.keras.Input(shape=(7, 7, 3))
    pooled = MaxPool2D(3, strides=2, padding=1, ceil_mode=True)(inputs)
    model = tf.keras.Model(inputs, pooled)
    rng = np.random.default_rng(0)
    samples = rng.uniform(-1, 1, size=(16, 1, 7, 7, 3)).astype(np.float32)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [testing_utils.inference_function(model, (1, 7, 7, 3))]
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([s] for s in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    content = converter.convert()
    x = samples[0]
    np.testing.assert_allclose(
        testing_utils.run_tflite(content, x), model(x).numpy(), atol=2 / 255 * 2
    )


# --- Dilation (PyTorch's MaxPool `dilation`, ONNX's `dilations`) ---------------------------------


def sees_input(n, k, s, d, before, after, ceil_mode):
    """Whether every window of one dimension holds at least one input element."""
    out = torch_output_size(n, k, s, before, after, ceil_mode, d)
    return all(
        any(0 <= i * s - before + j * d < n for j in range(k)) for i in range(out)
    )  # fmt: skip


@st.composite
def dilated_configs(draw):
    rank = draw(st.sampled_from([1, 2, 3]))
    max_size = {1: 10, 2: 7, 3: 5}[rank]
    pool_size, strides, dilation, pads, spatial = [], [], [], [], []
    ceil_mode = draw(st.booleans())
    for _ in range(rank):
        k, s, d = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
        extent = d * (k - 1) + 1
        pad = (draw(st.integers(0, extent // 2)), draw(st.integers(0, extent // 2)))
        smallest = max(extent - sum(pad), 1)
        n = draw(st.integers(smallest, max(smallest, max_size)))
        assume(sees_input(n, k, s, d, *pad, ceil_mode))
        pool_size.append(k)
        strides.append(s)
        dilation.append(d)
        pads.append(pad)
        spatial.append(n)
    assume(max(dilation) > 1)
    return {
        "rank": rank,
        "pool_size": tuple(pool_size),
        "strides": tuple(strides),
        "dilation": tuple(dilation),
        "pads": tuple(pads),
        "shape": (2, *spatial, draw(st.integers(1, 2))),
        "ceil_mode": ceil_mode,
        "count_include_pad": draw(st.booleans()),
    }


def onnx_pool(kind, x, config):
    """ONNX MaxPool / AveragePool (opset 19) on the channels-last `x`, run in onnx.reference,
    or in ONNX Runtime where onnx 1.23's reference is wrong: MaxPool with every stride and
    dilation 1 and padding (its generic pooling path misplaces the windows) and AveragePool
    whose ceil-mode windows run 2 or more past the padded input (it pads half of that extra
    in front, shifting the windows). None where ONNX Runtime refuses those too (it wants
    padding below `pool_size`, not below the dilated span): the NumPy loop checks them."""
    import onnxruntime as ort
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    x_nc = np.moveaxis(x, -1, 1)
    pads, pool_size, strides, dilation = (
        config[key] for key in ("pads", "pool_size", "strides", "dilation")
    )
    attributes = {
        "kernel_shape": list(pool_size),
        "strides": list(strides),
        "dilations": list(dilation),
        "pads": [b for b, _ in pads] + [a for _, a in pads],
        "ceil_mode": int(config["ceil_mode"]),
    }
    if kind == "avg":
        attributes["count_include_pad"] = int(config["count_include_pad"])
    op_type = "MaxPool" if kind == "max" else "AveragePool"
    graph = helper.make_graph(
        [helper.make_node(op_type, ["x"], ["y"], **attributes)],
        op_type,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_nc.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    geometry = zip(x.shape[1:-1], pool_size, strides, dilation, pads, strict=True)
    extra = [
        (torch_output_size(n, k, s, b, a, config["ceil_mode"], d) - 1) * s
        + d * (k - 1)
        + 1
        - (n + b + a)
        for n, k, s, d, (b, a) in geometry
    ]
    trivial = set(strides) == set(dilation) == {1} and any(map(any, pads))
    if (kind == "max" and trivial) or (kind == "avg" and max(extra) >= 2):
        if any(max(pair) >= k for pair, k in zip(pads, pool_size, strict=True)):
            return None
        session = ort.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        y = session.run(None, {"x": x_nc})[0]
    else:
        y = ReferenceEvaluator(model).run(None, {"x": x_nc})[0]
    return np.moveaxis(y, 1, -1)


@given(config=dilated_configs())
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_dilation_matches_onnx_and_reference(kind, config):
    """Outputs against ONNX MaxPool/AveragePool with dilations, pads, ceil_mode and
    count_include_pad; outputs and input gradients against the NumPy window loop."""
    from layers.arithmetic import pool_output_size

    rank, pads = config["rank"], config["pads"]
    kwargs = {"ceil_mode": config["ceil_mode"], "dilation": config["dilation"]}
    if kind == "avg":
        kwargs["count_include_pad"] = config["count_include_pad"]
    layer = (MAX if kind == "max" else AVG)[rank](
        config["pool_size"], config["strides"], pads, **kwargs
    )
    x = np.random.randn(*config["shape"]).astype(np.float32)
    out_shape = layer.compute_output_shape(x.shape)
    geometry = zip(x.shape[1:-1], config["pool_size"], config["strides"], pads, strict=True)
    assert out_shape[1:-1] == tuple(
        pool_output_size(n, k, s, p, config["ceil_mode"], d)
        for (n, k, s, p), d in zip(geometry, config["dilation"], strict=True)
    )
    y = assert_matches_reference(layer, x, kind, config, pads, kwargs)
    y_onnx = onnx_pool(kind, x, config)
    if y_onnx is not None:
        np.testing.assert_allclose(y, y_onnx, atol=1e-5, rtol=1e-5)


def test_dilated_max_pool_pads_with_the_window_own_elements():
    """A dilated window reaching into the padding can skip the edge element: the padding must
    repeat the window's own nearest tap, not the edge."""
    x = np.array([9, 1, 2, 3, 4], np.float32).reshape(1, 5, 1)
    y = MaxPool1D(2, strides=1, padding=1, dilation=3)(x)
    # Windows (-1, 2), (0, 3), (1, 4), (2, 5): 2, 9, 4, 2 (replicate: 9, 9, 4, 4).
    np.testing.assert_array_equal(np.asarray(y)[0, :, 0], [2, 9, 4, 2])
    assert MaxPool2D(3, dilation=(2, 1)).dilation == (2, 1)
    assert MaxPool2D(3, padding=2, dilation=2).padding == ((2, 2), (2, 2))  # half of span 5


def test_dilation_without_padding_on_unknown_sizes():
    inputs = tf.keras.Input(shape=(None, None, 3))
    model = tf.keras.Model(inputs, MaxPool2D(2, strides=1, dilation=(2, 3))(inputs))
    for shape in ((1, 6, 7, 3), (2, 4, 9, 3)):
        x = np.random.randn(*shape).astype(np.float32)
        static = MaxPool2D(2, strides=1, dilation=(2, 3))(x)
        np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(static))
    with pytest.raises(ValueError, match=r"known spatial sizes.*dilation > 1 with padding"):
        AvgPool2D(2, padding=1, dilation=2).build((None, None, 8, 3))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: MaxPool2D(2, dilation=0), "`dilation` must be a positive integer"),
        (lambda: AvgPool3D(2, dilation=(1, 2)), "dilation"),
        (lambda: MaxPool1D(2, dilation=1.5), "dilation"),
        (lambda: MaxPool2D(3, padding=3, dilation=2), r"at most half.*dilation 2.*spans 5"),
        (
            lambda: MaxPool1D(2, strides=1, padding=1, dilation=3)(tf.zeros((1, 2, 1))),
            r"window 0 of spatial dimension 0 \(input size 2\) sees only padding",
        ),
        (
            lambda: AvgPool1D(3, dilation=3)(tf.zeros((1, 6, 1))),
            r"pool_size 3 with dilation 3 \(spanning 7 positions\) is larger than the padded",
        ),
    ],
)
def test_dilation_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (MaxPool2D, {"pool_size": 2, "strides": 1, "padding": 1, "dilation": 2, "ceil_mode": True}),
        (AvgPool3D, dict(pool_size=2, padding=1, dilation=(1, 2, 2), count_include_pad=False)),
    ],
)
def test_dilated_get_config_round_trip(cls, kwargs):
    layer = cls(**kwargs, name="pool")
    config = layer.get_config()
    assert config["dilation"] == layer.dilation
    clone = cls.from_config(config)
    assert clone.get_config() == config
    x = np.random.randn(2, *([6] * len(clone.pool_size)), 3).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(layer(x)), np.asarray(clone(x)))
    older = {key: value for key, value in config.items() if key != "dilation"}
    assert cls.from_config(older).dilation == (1,) * len(clone.pool_size)


DILATED_EDGE_CASES = [
    (MaxPool1D, dict(pool_size=3, strides=2, padding=2, dilation=2, ceil_mode=True), (9, 4)),
    (
        AvgPool2D,
        dict(pool_size=2, padding=1, dilation=(2, 3), ceil_mode=True, count_include_pad=False),
        (8, 9, 3),
    ),
    (MaxPool3D, dict(pool_size=2, strides=1, padding=(0, 1, 1), dilation=(1, 2, 2)), (3, 5, 5, 2)),
]


@pytest.mark.keras3_only
@pytest.mark.parametrize(
    "cls, kwargs, shape", DILATED_EDGE_CASES, ids=lambda v: getattr(v, "__name__", "")
)
def test_dilated_edge_runtimes_match(cls, kwargs, shape):
    model = testing_utils.model_of(cls(**kwargs), shape)
    x = np.random.randn(2, *shape).astype(np.float32)
    testing_utils.assert_edge_runtimes_match(model, x)
