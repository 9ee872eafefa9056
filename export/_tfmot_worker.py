"""The tf_keras side of `export.tfmot_process`: QAT and pruning with tfmot.

Run only as `python -m export._tfmot_worker WORKDIR` (by `run_tfmot`): it sets
`TF_USE_LEGACY_KERAS=1` before TensorFlow is imported, so `tf.keras` is tf_keras here. WORKDIR
holds `spec.json`, `weights.npz` (the Keras 3 model's `get_weights()`), `data.npz`; the worker
writes `model.tflite` (qat) or `weights_out.npz` (prune), and `summary.json`.

QAT graph: the zoo model is rebuilt with `zoo.create_model`, its weights set, then copied layer
by layer into a chain where every `BatchNorm` that follows a convolution or dense layer is
folded into it (`w' = w * g / sqrt(v + eps)`, `b' = (b - m) * g / sqrt(v + eps) + beta`, by
`layers.fusion.fold_following`), so the int8 graph has no separate multiply/add between integer
convolutions, and a ReLU after such a layer becomes its activation (quantized once, after the
ReLU, as TFLite fuses them). A grouped convolution (AlexNet's conv2/4/5) becomes one
convolution per group on its channel slice, concatenated, so each group's kernel is a weight
of its own, quantized per output channel.
Our convolutions get QuantizeConfigs (8-bit symmetric kernels per output channel, as TFLite's
int8 convolutions; 8-bit asymmetric outputs); Keras built-ins use tfmot's default 8-bit
scheme. `init_quantizer_ranges` starts every range (input, activations, kernels) where
post-training quantization would, so the QAT model before any step already simulates the
int8 file.

QAT recipe (`fine_tune`; why: docs/MEASUREMENTS.md, "QAT fine-tuning recipe"):
Adam from `learning_rate` cosine-decayed to 0 over all epochs on the fine-tuning images
(reshuffled, seeded, with `spec["augment"]`: horizontal flips, plus random erasing for runs
trained with it), on targets distilled from the float model (`spec["distill"]` of its
probabilities on the same, possibly mirrored, view, the rest the run's label-smoothed
labels), and the weights of the epoch with the best accuracy on the held-out validation
images `x_val` are kept among those significantly better than epoch 0 (no step yet: the
PTQ-like start) in a paired sign test (`beats_start`); if none is, the start is kept. So
fine-tuning never returns a model worse on validation than the one it started from, nor one
that differs from it by noise.
"""

from __future__ import annotations

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import itertools
import json
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

from layers.fusion import fold_following, producers


def _tfmot():
    import tensorflow_model_optimization as tfmot

    return tfmot


def _custom_classes():
    from layers.batch_norm import BatchNorm

    kernel_layers = []
    for module, names in (
        ("layers.convolution", ("Conv1D", "Conv2D", "Conv3D")),
        ("layers.conv_transpose", ("ConvTranspose1D", "ConvTranspose2D", "ConvTranspose3D")),
    ):
        mod = __import__(module, fromlist=list(names))
        kernel_layers += [getattr(mod, n) for n in names if hasattr(mod, n)]
    return BatchNorm, tuple(kernel_layers)


def _quantize_configs():
    tfmot = _tfmot()
    quantizers = tfmot.quantization.keras.quantizers

    def weight_quantizer(per_axis):
        return quantizers.LastValueQuantizer(
            num_bits=8, per_axis=per_axis, symmetric=True, narrow_range=True
        )

    def output_quantizer():
        return quantizers.MovingAverageQuantizer(
            num_bits=8, per_axis=False, symmetric=False, narrow_range=False
        )

    class KernelQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
        """Our convolutions: fake-quantized kernel, per output channel as TFLite's int8
        convolutions (the kernel's last axis; per tensor for the transposed convolutions,
        whose last axis is the input's), quantized output (after the activation)."""

        def get_weights_and_quantizers(self, layer):
            per_axis = "Transpose" not in type(layer).__name__
            return [(layer.kernel, weight_quantizer(per_axis))]

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            layer.kernel = quantize_weights[0]

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return [output_quantizer()]

        def get_config(self):
            return {}

    class OutputQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
        """Weight-free layers (normalization rescale, pooling, LRN, a lone BatchNorm):
        only the output is quantized."""

        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return [output_quantizer()]

        def get_config(self):
            return {}

    class NoOpQuantizeConfig(OutputQuantizeConfig):
        """Max pooling: passes the input's scale through, no requantization."""

        def get_output_quantizers(self, layer):
            return []

    return KernelQuantizeConfig, OutputQuantizeConfig, NoOpQuantizeConfig


def _chain(model):
    """The model's layers in order, checking that each feeds only the next (a chain)."""
    chain = [layer for layer in model.layers if not isinstance(layer, tf.keras.layers.InputLayer)]
    for previous, layer in itertools.pairwise(chain):
        if producers(model, layer) != [previous]:
            raise ValueError(
                f"QAT supports chain models only; {layer.name} is not fed by {previous.name}"
            )
    return chain


class ChannelSlice(tf.keras.layers.Layer):
    """Channels `[start, stop)` of the input (a STRIDED_SLICE in TFLite)."""

    def __init__(self, start: int, stop: int, **kwargs):
        super().__init__(**kwargs)
        self.start, self.stop = start, stop

    def call(self, inputs):
        return inputs[..., self.start : self.stop]

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop}


def _per_group(layer_class, config, weights, x, pending_weights, configs):
    """A grouped convolution as one convolution per group on its channel slice, concatenated:
    the same function, with each group's kernel a weight of its own. A grouped kernel would be
    split inside the layer after its per-channel fake quantization, and the converter refuses
    the transpose of a per-channel quantized slice ("mismatched quantized axes")."""
    qk = _tfmot().quantization.keras
    kernel_config, output_config, noop_config = configs
    groups, (kernel, bias) = config["groups"], weights
    inputs_per_group, filters_per_group = kernel.shape[-2], kernel.shape[-1] // groups
    outputs = []
    for g in range(groups):
        name = f"{config['name']}_group{g}"
        channels = ChannelSlice(g * inputs_per_group, (g + 1) * inputs_per_group, name=f"{name}_in")
        conv = layer_class.from_config(dict(config, groups=1, filters=filters_per_group, name=name))
        y = qk.quantize_annotate_layer(channels, noop_config())(x)
        outputs.append(qk.quantize_annotate_layer(conv, kernel_config())(y))
        filters = slice(g * filters_per_group, (g + 1) * filters_per_group)
        pending_weights.append((conv, [kernel[..., filters], bias[filters]]))
    concat = tf.keras.layers.Concatenate(name=f"{config['name']}_concat")
    return qk.quantize_annotate_layer(concat, output_config())(outputs)


def build_qat_model(model):
    """The folded, annotated and quantize-applied copy of `model` (see module docstring)."""
    tfmot = _tfmot()
    qk = tfmot.quantization.keras
    batch_norm_cls, kernel_classes = _custom_classes()
    kernel_config, output_config, noop_config = _quantize_configs()
    dense = tf.keras.layers.Dense
    builtin_ok = (
        dense,
        tf.keras.layers.Activation,
        tf.keras.layers.ReLU,
        tf.keras.layers.Flatten,
        tf.keras.layers.Reshape,
        tf.keras.layers.MaxPooling2D,
        tf.keras.layers.AveragePooling2D,
        tf.keras.layers.GlobalAveragePooling2D,
    )
    chain = _chain(model)
    inputs = tf.keras.Input(model.input_shape[1:], name="input")
    x, index = inputs, 0
    pending_weights = []
    while index < len(chain):
        layer = chain[index]
        index += 1
        if isinstance(layer, tf.keras.layers.GaussianNoise | tf.keras.layers.Dropout):
            continue  # identities at inference
        config = layer.get_config()
        weights = layer.get_weights()
        if isinstance(layer, (*kernel_classes, dense)):
            fused = fold_following(model, layer)
            index += len(fused.absorbed)
            if fused.relu is not None:
                # The ReLU becomes the layer's activation, so the output is quantized once,
                # after it, as TFLite runs the pair (one op, fused ReLU). Left apart, tfmot's
                # Dense+ReLU transform gives the Dense a NoOpQuantizeConfig, and its kernel
                # would not be fake-quantized at all.
                config["activation"] = "relu"
            config["use_bias"] = True
            weights = [fused.kernel, fused.bias]
        if isinstance(layer, kernel_classes) and config.get("groups", 1) > 1:
            configs = (kernel_config, output_config, noop_config)
            x = _per_group(type(layer), config, weights, x, pending_weights, configs)
            continue
        new = type(layer).from_config(config)
        if isinstance(new, builtin_ok):
            annotated = qk.quantize_annotate_layer(new)
        elif isinstance(new, kernel_classes):
            annotated = qk.quantize_annotate_layer(new, kernel_config())
        elif "MaxPool" in type(new).__name__:
            annotated = qk.quantize_annotate_layer(new, noop_config())
        else:
            annotated = qk.quantize_annotate_layer(new, output_config())
        x = annotated(x)
        pending_weights.append((new, weights))
    for new, weights in pending_weights:
        new.set_weights(weights)
    folded = tf.keras.Model(inputs, x, name=f"{model.name}_qat")
    scope = {
        "KernelQuantizeConfig": kernel_config,
        "OutputQuantizeConfig": output_config,
        "NoOpQuantizeConfig": noop_config,
        "ChannelSlice": ChannelSlice,
        **{cls.__name__: cls for cls in (*kernel_classes, batch_norm_cls)},
    }
    with qk.quantize_scope(scope):
        return qk.quantize_apply(folded), folded


def quantized_kernels(qat_model) -> list[str]:
    """Names of the layers whose kernel is fake-quantized (has a kernel range)."""
    return [
        getattr(wrapper, "layer", wrapper).name
        for wrapper in qat_model.layers
        if any("kernel_min" in v.name for v in wrapper.non_trainable_weights)
    ]


def init_quantizer_ranges(qat_model, folded, images) -> int:
    """Starts every quantizer range of the QAT model where post-training quantization would.

    tfmot's quantizers start at [-6, 6] and only move in training steps (the activations'
    MovingAverageQuantizer with decay 0.999, the kernels' LastValueQuantizer to the current
    kernel): before the first step the QAT model clips the raw pixels to 6 and rounds most
    kernel values to 0. So the input and activation ranges are set to the float model's
    observed min/max on the calibration images (widened to include 0, as TFLite requires) and
    each kernel range to +-max|kernel| (per output channel where the quantizer is), the
    symmetric range LastValueQuantizer would compute. Then the QAT model before any step is a
    faithful simulation of the int8 file, and fine-tuning starts from there.

    Returns:
        How many ranges were set.
    """
    layers = [layer for layer in folded.layers if not isinstance(layer, tf.keras.layers.InputLayer)]
    probe = tf.keras.Model(folded.inputs, [layer.output for layer in layers])
    outputs = probe.predict(images, batch_size=64, verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]

    def span(y):
        return min(float(np.min(y)), 0.0), max(float(np.max(y)), 0.0)

    ranges = {
        getattr(layer, "layer", layer).name: span(y)
        for layer, y in zip(layers, outputs, strict=True)
    }
    count = 0
    for wrapper in qat_model.layers:
        inner = getattr(wrapper, "layer", None)
        for variable in wrapper.non_trainable_weights:
            leaf = variable.name.split("/")[-1].split(":")[0]
            kind, _, end = leaf.rpartition("_")
            if end not in ("min", "max"):
                continue
            if kind in ("output", "post_activation") and inner is not None:
                if inner.name not in ranges:
                    continue
                low, high = ranges[inner.name]
            elif kind == "quantize_layer":  # the graph input
                low, high = span(images)
            elif kind == "kernel" and inner is not None:
                # The wrapper's variable: `inner.kernel` is the fake-quantized tensor of the
                # last call (set by the QuantizeConfig), not the weights.
                (kernel,) = [
                    w.numpy() for w in wrapper.trainable_weights if w.name.endswith("kernel:0")
                ]
                axes = tuple(range(kernel.ndim - len(variable.shape)))
                high = np.max(np.abs(kernel), axis=axes)
                low = -high
            else:
                continue
            variable.assign(np.broadcast_to(low if end == "min" else high, variable.shape))
            count += end == "min"
    return count


def _compile(model, task, learning_rate, soft=False):
    """Adam on cross-entropy from logits (soft targets: `CategoricalCrossentropy`, labels:
    the sparse one) for classifiers, MSE for reconstruction."""
    if task == "classification" and soft:
        loss = tf.keras.losses.CategoricalCrossentropy(from_logits=True)
    elif task == "classification":
        loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    else:
        loss = tf.keras.losses.MeanSquaredError()
    model.compile(tf.keras.optimizers.Adam(learning_rate), loss)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def teacher_probabilities(model, images) -> np.ndarray:
    """The float model's class probabilities on `images`."""
    return softmax(model.predict(images, batch_size=256, verbose=0))


def soft_targets(labels, num_classes, label_smoothing=0.0, teacher=None, distill=0.0):
    """Classification targets `(N, K)`: the labels one-hot, smoothed as Keras does
    (`y (1 - s) + s / K`), mixed with the float teacher's probabilities `teacher`:
    `(1 - distill) * smoothed + distill * teacher`."""
    one_hot = np.eye(num_classes, dtype=np.float32)[labels]
    targets = one_hot * (1.0 - label_smoothing) + label_smoothing / num_classes
    if distill:
        targets = (1.0 - distill) * targets + distill * teacher
    return targets.astype(np.float32)


def random_erase(images, probability=0.5, scale=(0.02, 0.2), ratio=(0.3, 3.3), seed=None):
    """Random erasing (Zhong et al., 2017) with tf ops on a batch `(B, H, W, C)`: with
    `probability`, each image gets one rectangle of `scale` of its area and aspect ratio in
    `ratio` (log-uniform) set to 0, the fill `training.augment`'s medium level uses."""
    shape = tf.shape(images)
    batch = shape[0]
    height = tf.cast(shape[1], tf.float32)
    width = tf.cast(shape[2], tf.float32)
    uniform = tf.random.uniform([5, batch], seed=seed)
    area = (scale[0] + (scale[1] - scale[0]) * uniform[0]) * height * width
    aspect = tf.exp(np.log(ratio[0]) + (np.log(ratio[1]) - np.log(ratio[0])) * uniform[1])
    box_h = tf.minimum(tf.round(tf.sqrt(area * aspect)), height)
    box_w = tf.minimum(tf.round(tf.sqrt(area / aspect)), width)
    top = tf.floor(uniform[2] * (height - box_h + 1.0))
    left = tf.floor(uniform[3] * (width - box_w + 1.0))
    rows = tf.range(height)[None, :]
    cols = tf.range(width)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + box_h)[:, None])
    in_cols = (cols >= left[:, None]) & (cols < (left + box_w)[:, None])
    mask = in_rows[:, :, None] & in_cols[:, None, :] & (uniform[4] < probability)[:, None, None]
    return tf.where(mask[..., None], tf.zeros_like(images), images)


def augmenter(kind: str, seed: int):
    """`(images, targets, mirrored_targets) -> (images, targets)` for `spec["augment"]`: each
    image flipped horizontally with probability 0.5, taking its mirror image's target (the
    teacher's probabilities differ between the two views), then for `flip_erase` randomly
    erased; None for "none"."""
    if kind == "none":
        return None
    if kind not in ("flip", "flip_erase"):
        raise ValueError(f"Unknown QAT augment {kind!r}; accepted: none, flip, flip_erase")

    def augment(images, targets, mirrored_targets):
        flip = tf.random.uniform([tf.shape(images)[0]], seed=seed) < 0.5
        images = tf.where(flip[:, None, None, None], tf.reverse(images, [2]), images)
        targets = tf.where(flip[:, None], mirrored_targets, targets)
        if kind == "flip_erase":
            images = random_erase(images, seed=seed + 1)
        return images, targets

    return augment


SIGNIFICANCE_Z = 1.645  # one-sided 95 %


def _per_image(model, task, x_val, y_val) -> np.ndarray:
    """Per validation image, higher is better: 1/0 correct (classification) or minus the
    squared error (reconstruction)."""
    out = model.predict(x_val, batch_size=256, verbose=0)
    if task == "classification":
        return (np.argmax(out, axis=-1) == y_val).astype(np.float64)
    return -np.mean((out - y_val) ** 2, axis=tuple(range(1, out.ndim)))


def beats_start(candidate: np.ndarray, start: np.ndarray, z: float = SIGNIFICANCE_Z) -> bool:
    """Paired one-sided sign test (McNemar's for accuracies) on per-image validation scores:
    the images the candidate improves outnumber those it worsens by more than `z` standard
    deviations of that difference under "no change" (`sqrt(improved + worsened)`)."""
    improved, worsened = int(np.sum(candidate > start)), int(np.sum(candidate < start))
    return bool(improved - worsened > z * np.sqrt(improved + worsened))


def fine_tune(model, spec, task, x_fit, targets, x_val, y_val, mirrored_targets=None) -> dict:
    """Compiles and fine-tunes `model` (see the module docstring) on `targets` (labels,
    soft classification targets or reconstruction targets; `mirrored_targets`: those of the
    mirrored images, if they differ) and restores the best validation epoch. Returns the
    summary entries (losses, validation scores, best epoch)."""
    epochs, batch_size, seed = spec["epochs"], spec["batch_size"], int(spec.get("seed", 0))
    steps = max(1, epochs * int(np.ceil(len(x_fit) / batch_size)))
    schedule = tf.keras.optimizers.schedules.CosineDecay(spec["learning_rate"], steps)
    _compile(model, task, schedule, soft=targets.ndim == 2 and task == "classification")
    augment = augmenter(spec.get("augment", "none"), seed)
    if augment is None:
        dataset = tf.data.Dataset.from_tensor_slices((x_fit, targets))
    else:
        mirrored = targets if mirrored_targets is None else mirrored_targets
        dataset = tf.data.Dataset.from_tensor_slices((x_fit, targets, mirrored))
    dataset = dataset.shuffle(len(x_fit), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if augment is not None:
        dataset = dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    start = _per_image(model, task, x_val, y_val)
    scores, significant = [float(np.mean(start))], [False]
    best_weights, best_epoch, losses = model.get_weights(), 0, []
    for epoch in range(1, epochs + 1):
        history = model.fit(dataset, epochs=epoch, initial_epoch=epoch - 1, verbose=0)
        losses += [float(v) for v in history.history["loss"]]
        per_image = _per_image(model, task, x_val, y_val)
        scores.append(float(np.mean(per_image)))
        significant.append(beats_start(per_image, start))
        # A fine-tuned epoch replaces the start only if it is significantly better on
        # validation: a gain of a few images is noise, and chasing it moves the file away
        # from the float model. Ties: the later, more quantization-adapted epoch.
        if significant[-1] and scores[-1] >= scores[best_epoch]:
            best_weights, best_epoch = model.get_weights(), epoch
    model.set_weights(best_weights)
    key = "val_accuracy" if task == "classification" else "val_neg_mse"
    return {"loss": losses, key: scores, "val_significant": significant, "best_epoch": best_epoch}


def _targets(task, x, y, peak):
    return y if task == "classification" else x * (peak / 255.0)


def _to_tflite(model, io, calibration) -> bytes:
    spec = tf.TensorSpec((1, *model.input_shape[1:]), tf.float32, name="input")
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    # Ranges come from the fake-quant nodes; the converter still wants images for the few
    # tensors QAT leaves without one (e.g. the graph input in tf_keras 2.21).
    converter.representative_dataset = lambda: ([x[None]] for x in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    io_type = {"float32": tf.float32, "int8": tf.int8, "uint8": tf.uint8}[io]
    converter.inference_input_type = io_type
    converter.inference_output_type = io_type
    return bytes(converter.convert())


def _prunable(layer, kernel_classes):
    """Gives our kernel layers tfmot's PrunableLayer interface (prune the kernel)."""
    tfmot = _tfmot()
    if isinstance(layer, kernel_classes):
        cls = type(layer)
        layer.__class__ = type(
            cls.__name__,
            (cls, tfmot.sparsity.keras.PrunableLayer),
            {"get_prunable_weights": lambda self: [self.kernel]},
        )
        return True
    return isinstance(layer, tf.keras.layers.Dense | tf.keras.layers.Conv2D)


def run(work: Path) -> None:
    from zoo import create_model

    spec = json.loads((work / "spec.json").read_text())
    # Seeded shuffling and initialization: the same export gives the same QAT/pruned file.
    tf.keras.utils.set_random_seed(int(spec.get("seed", 0)))
    with np.load(work / "weights.npz") as arrays:
        weights = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
    with np.load(work / "data.npz") as arrays:
        x_train, y_train = arrays["x_train"], arrays["y_train"]
        x_calibration = arrays["x_calibration"]
        x_val = arrays["x_val"] if "x_val" in arrays.files else None
        y_val = arrays["y_val"] if "y_val" in arrays.files else None
    model_spec = spec["model"]
    model = create_model(model_spec["name"], **model_spec["kwargs"])
    shapes = [tuple(w.shape) for w in model.get_weights()]
    if shapes != [tuple(w.shape) for w in weights]:
        raise ValueError(
            f"rebuilt {model_spec['name']} has weights {shapes}, the saved model "
            f"{[tuple(w.shape) for w in weights]}"
        )
    model.set_weights(weights)
    task = model_spec["task"]
    peak = 255.0
    if task == "reconstruction":
        peak = 255.0 if float(np.max(model.predict(x_train[:16], verbose=0))) > 2.0 else 1.0
    targets = _targets(task, x_train, y_train, peak)
    summary = {"mode": spec["mode"], "epochs": spec["epochs"], "train_samples": len(x_train)}
    for key in ("learning_rate", "batch_size", "seed", "augment", "validation"):
        if key in spec:
            summary[key] = spec[key]
    smoothing = float(spec.get("label_smoothing") or 0.0)
    distill = float(spec.get("distill") or 0.0) if spec["mode"] == "qat" else 0.0
    summary["label_smoothing"] = smoothing if task == "classification" else 0.0
    summary["distill"] = distill if task == "classification" else 0.0
    mirrored_targets = None
    if task == "classification" and (smoothing or distill):
        num_classes = int(model.output_shape[-1])
        teacher = teacher_probabilities(model, x_train) if distill else None
        targets = soft_targets(y_train, num_classes, smoothing, teacher, distill)
        if distill and spec.get("augment", "none") != "none":
            teacher = teacher_probabilities(model, np.ascontiguousarray(x_train[:, :, ::-1]))
            mirrored_targets = soft_targets(y_train, num_classes, smoothing, teacher, distill)
    if spec["mode"] == "qat":
        qat_model, folded = build_qat_model(model)
        reference = model.predict(x_train[:256], verbose=0)
        folded_out = folded.predict(x_train[:256], verbose=0)
        summary["fold_max_abs_diff"] = float(np.max(np.abs(reference - folded_out)))
        summary["ranges_initialized"] = init_quantizer_ranges(qat_model, folded, x_calibration)
        summary["quantized_kernels"] = quantized_kernels(qat_model)
        if x_val is None or not len(x_val):
            raise ValueError("QAT needs held-out validation images (x_val) to pick the epoch")
        val_targets = _targets(task, x_val, y_val, peak)
        summary["val_samples"] = len(x_val)
        summary.update(
            fine_tune(qat_model, spec, task, x_train, targets, x_val, val_targets, mirrored_targets)
        )
        (work / "model.tflite").write_bytes(_to_tflite(qat_model, spec["io"], x_calibration))
    else:
        tfmot = _tfmot()
        sparsity = tfmot.sparsity.keras
        _, kernel_classes = _custom_classes()
        steps = max(1, spec["epochs"] * int(np.ceil(len(x_train) / spec["batch_size"])))
        schedule = sparsity.PolynomialDecay(
            initial_sparsity=0.0,
            final_sparsity=spec["sparsity"],
            begin_step=0,
            end_step=max(1, int(steps * 0.7)),
            frequency=max(1, steps // 20),
        )

        def clone(layer):
            if _prunable(layer, kernel_classes):
                return sparsity.prune_low_magnitude(layer, pruning_schedule=schedule)
            return layer

        pruned = tf.keras.models.clone_model(model, clone_function=clone)
        _compile(pruned, task, spec["learning_rate"], soft=targets.ndim == 2)
        pruned.fit(
            x_train,
            targets,
            batch_size=spec["batch_size"],
            epochs=spec["epochs"],
            verbose=0,
            callbacks=[sparsity.UpdatePruningStep()],
        )
        stripped = sparsity.strip_pruning(pruned)
        out = stripped.get_weights()
        kernels = [w for w in out if w.ndim >= 2]
        summary["sparsity"] = float(
            sum(int((k == 0).sum()) for k in kernels) / max(1, sum(k.size for k in kernels))
        )
        np.savez(work / "weights_out.npz", *out)
    (work / "summary.json").write_text(json.dumps(summary))


if __name__ == "__main__":
    try:
        run(Path(sys.argv[1]))
    except Exception as error:  # the traceback, then one line for the parent process
        import traceback

        traceback.print_exc()
        # Keras errors span many lines ("Exception encountered when calling layer ..."):
        # the parent shows the last line, so it names the error's first line.
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        print(f"{type(error).__name__}: {lines[0] if lines else ''}", file=sys.stderr)
        sys.exit(1)
