"""RepConv2D against its definition built from Keras's own layers: a sum of built-in Conv2D
branches, each followed by a built-in BatchNormalization (outputs, gradients, moving
statistics in training; the fused single convolution in inference), edge runtimes, config."""

import numpy as np
import pytest
import tensorflow as tf
import testing_utils
from hypothesis import given
from hypothesis import strategies as st

from layers.rep_conv import RepConv2D

ATOL = 1e-4


class BuiltinBranches:
    """The oracle: `sum_b BatchNormalization_b(Conv2D_b(pad(x)))` with Keras's layers, each
    branch kernel zero-padded to the k x k window (the same map as the small kernel centered
    in it), the padding done explicitly so any amount fits."""

    def __init__(self, layer: RepConv2D, pads, strides, dilation):
        size = layer.kernel_size[0]
        self.pads, self.size = pads, size
        self.convs, self.norms = [], []
        for k in layer.branch_kernel_sizes:
            del k
            self.convs.append(
                tf.keras.layers.Conv2D(
                    layer.filters, size, strides=strides, dilation_rate=dilation, use_bias=False
                )
            )
            kwargs = {"fused": False} if testing_utils.LEGACY_KERAS else {}
            self.norms.append(
                tf.keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, **kwargs)
            )

    def load(self, layer: RepConv2D) -> None:
        """Copies `layer`'s branch kernels (padded) and BatchNorm slices into the branches."""
        padded = [k.numpy() for k in layer._padded_branch_kernels()]
        weights = [w.numpy().reshape(len(padded), -1) for w in layer.batch_norm.weights]
        for b, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            conv.set_weights([padded[b]])
            norm.set_weights([w[b] for w in weights])

    def build(self, x) -> None:
        self(x, training=False)

    def __call__(self, x, training):
        (top, bottom), (left, right) = self.pads
        x = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]])
        return tf.add_n(
            [
                norm(conv(x), training=training)
                for conv, norm in zip(self.convs, self.norms, strict=True)
            ]
        )

    @property
    def trainable_kernels(self):
        return [conv.kernel for conv in self.convs]


def _randomize_batch_norm(layer: RepConv2D, rng: np.random.Generator) -> None:
    n = layer.batch_norm.gamma.shape[0]
    layer.batch_norm.set_weights(
        [
            rng.uniform(0.5, 1.5, n).astype("float32"),
            rng.normal(size=n).astype("float32"),
            rng.normal(size=n).astype("float32"),
            rng.uniform(0.5, 2.0, n).astype("float32"),
        ]
    )


CASES = st.tuples(
    st.sampled_from([(3, (3, 1)), (5, (5, 5, 3, 1)), (5, (3,)), (4, (4, 2)), (3, (1, 1))]),
    st.integers(1, 3),  # batch
    st.integers(7, 12),  # height
    st.integers(7, 12),  # width
    st.integers(1, 4),  # channels
    st.integers(1, 5),  # filters
    st.integers(0, 2),  # padding
    st.sampled_from([(1, 1), (2, 1)]),  # strides, dilation
    st.integers(0, 2**16),
)


@given(CASES)
def test_training_and_inference_match_keras_branches(case):
    (size, branches), batch, height, width, channels, filters, pad, (stride, dil), seed = case
    rng = np.random.default_rng(seed)
    layer = RepConv2D(
        filters, size, branches, strides=stride, padding=pad, dilation=dil, momentum=0.1
    )
    x = rng.normal(size=(batch, height, width, channels)).astype("float32")
    layer(x, training=False)
    _randomize_batch_norm(layer, rng)
    oracle = BuiltinBranches(layer, ((pad, pad), (pad, pad)), stride, dil)
    oracle.build(x)
    oracle.load(layer)

    # Inference: the fused single convolution against the branch sum with moving statistics.
    np.testing.assert_allclose(layer(x, training=False), oracle(x, training=False), atol=ATOL)

    # Training: batch statistics, gradients with respect to the input and every kernel (the
    # oracle's padded kernels carry the gradient of the small ones in their center), and the
    # moving statistics after the step.
    x_t = tf.constant(x)
    upstream = rng.normal(size=layer(x, training=True).shape).astype("float32")
    _randomize_batch_norm(layer, rng)
    oracle.load(layer)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x_t)
        ours = layer(x_t, training=True)
        theirs = oracle(x_t, training=True)
        loss_ours = tf.reduce_sum(ours * upstream)
        loss_theirs = tf.reduce_sum(theirs * upstream)
    np.testing.assert_allclose(ours, theirs, atol=ATOL)
    np.testing.assert_allclose(
        tape.gradient(loss_ours, x_t), tape.gradient(loss_theirs, x_t), atol=ATOL
    )
    kernel_grads = tape.gradient(loss_theirs, oracle.trainable_kernels)
    for k, ours_grad, padded_grad in zip(
        layer.branch_kernel_sizes,
        tape.gradient(loss_ours, layer.branch_kernels),
        kernel_grads,
        strict=True,
    ):
        margin = (size - k) // 2
        center = padded_grad[margin : margin + k, margin : margin + k]
        np.testing.assert_allclose(ours_grad, center, atol=ATOL)
    moving = np.concatenate([norm.moving_mean.numpy() for norm in oracle.norms])
    np.testing.assert_allclose(layer.batch_norm.moving_mean.numpy(), moving, atol=1e-5)


def test_fused_kernel_and_bias_is_one_convolution():
    rng = np.random.default_rng(0)
    layer = RepConv2D(4, 5, padding="same")
    x = rng.normal(size=(2, 9, 9, 3)).astype("float32")
    layer(x)
    _randomize_batch_norm(layer, rng)
    kernel, bias = layer.fused_kernel_and_bias()
    plain = tf.keras.layers.Conv2D(4, 5, padding="same")
    plain.build(x.shape)
    plain.set_weights([kernel.numpy(), bias.numpy()])
    np.testing.assert_allclose(layer(x, training=False), plain(x), atol=ATOL)
    assert layer.branch_kernel_sizes == (5, 5, 3, 1)
    assert [tuple(w.shape) for w in layer.weights] == [
        (5, 5, 3, 4),
        (5, 5, 3, 4),
        (3, 3, 3, 4),
        (1, 1, 3, 4),
        (16,),
        (16,),
        (16,),
        (16,),
    ]


def test_mixed_precision_keeps_float32_weights():
    layer = RepConv2D(3, 3, padding=1, dtype="mixed_bfloat16")
    y = layer(tf.random.normal((2, 6, 6, 2)), training=True)
    assert y.dtype == tf.bfloat16
    assert all(w.dtype == tf.float32 for w in layer.weights)
    assert layer(tf.random.normal((2, 6, 6, 2)), training=False).dtype == tf.bfloat16


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(kernel_size=5, branch_kernel_sizes=(5, 2)), "parity"),
        (dict(kernel_size=3, branch_kernel_sizes=(5,)), r"\[1, 3\]"),
        (dict(kernel_size=3, branch_kernel_sizes=()), "non-empty"),
        (dict(kernel_size=(3, 5)), "square"),
    ],
)
def test_bad_branches_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RepConv2D(4, **kwargs)


@pytest.mark.keras3_only
def test_config_round_trip_and_edge_runtimes_run_one_convolution(tmp_path):
    rng = np.random.default_rng(1)
    layer = RepConv2D(6, 5, padding=2, name="conv1")
    model = testing_utils.model_of(layer, (12, 12, 1))
    _randomize_batch_norm(layer, rng)
    x = rng.normal(size=(2, 12, 12, 1)).astype("float32")
    path = tmp_path / "rep.keras"
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)
    assert loaded.get_layer("conv1").get_config() == layer.get_config()
    testing_utils.assert_edge_runtimes_match(model, x, atol=ATOL)
    ops = testing_utils.tflite_op_names(testing_utils.to_tflite(model, x.shape))
    assert "CONV_2D" in ops and "CONCATENATION" not in ops
