"""Every training option, its default and its help text, in one place.

The same keys serve the command line (`--batch-size 256`), config files (`--config run.yaml`
holding `batch_size: 256`) and the Python API (`train(batch_size=256)`). Precedence: the
defaults, then the config file, then explicit command-line flags. Options whose default is
`None` or `"auto"` take a per-model value (`MODEL_DEFAULTS`), resolved by `resolve_config`.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "MODEL_DEFAULTS",
    "TrainConfig",
    "dataset_tag",
    "load_config_file",
    "progress_verbose",
    "resolve_config",
]


def _opt(default: Any, help: str, **argparse_kwargs: Any):
    return field(default=default, metadata={"help": help, **argparse_kwargs})


@dataclass
class TrainConfig:
    """All options of a training run (see `python -m training --help`)."""

    model: str = _opt("lenet5", "zoo model name (python -m zoo lists them)")
    dataset: str = _opt("fashion_mnist", "fashion_mnist | mnist | tfds:<name> | folder:<path>")
    data_dir: str | None = _opt(None, "directory with the IDX files / TFDS data")
    run_dir: str | None = _opt(None, "run directory (default: runs/<model>-<dataset>)")
    epochs: int | None = _opt(None, "epochs (auto: per model, 15 for LeNet-5)", type=int)
    batch_size: int | None = _opt(
        None, "GLOBAL batch size, split across replicas (auto: per model)", type=int
    )
    optimizer: str = _opt(
        "auto", "auto | sgd | adam | adamw", choices=("auto", "sgd", "adam", "adamw")
    )
    learning_rate: float | None = _opt(None, "peak learning rate (auto: per model)", type=float)
    momentum: float = _opt(0.9, "SGD momentum", type=float)
    weight_decay: float | None = _opt(
        None, "decoupled weight decay, not on biases/BN (auto: per model)", type=float
    )
    schedule: str = _opt("cosine", "learning-rate schedule", choices=("cosine", "step", "constant"))
    warmup_epochs: float = _opt(1.0, "linear warm-up epochs (cosine schedule)", type=float)
    step_epochs: int = _opt(5, "step schedule: epochs between decays", type=int)
    step_factor: float = _opt(0.1, "step schedule: decay factor", type=float)
    label_smoothing: float | None = _opt(
        None, "label smoothing, classification (auto: per model)", type=float
    )
    ema_momentum: float | None = _opt(
        None,
        "exponential moving average of the weights, used for validation, model.keras and the "
        "test metrics (0: off; auto: per model)",
        type=float,
    )
    early_stopping: int | None = _opt(
        None,
        "stop after this many epochs without val improvement (0: off; auto: per model, 5)",
        type=int,
    )
    val_split: float | None = _opt(
        None,
        "fraction of the TRAINING set held out for validation, seeded (auto: per model, 0.1)",
        type=float,
    )
    augment: str = _opt(
        "auto",
        "augmentation level (auto: per data set: light for MNIST-like sets, standard "
        "otherwise; on them none for the faithful lenet5, which underfits, and medium for "
        "lenet5_modern)",
        choices=("auto", "none", "light", "medium", "standard", "strong"),
    )
    noise_std: float | None = _opt(
        None,
        "reconstruction models: training input noise std, passed to the model as noise_stddev "
        "(auto: the model's default)",
        type=float,
    )
    model_options: dict | None = _opt(  # noqa: RUF009 (None default; the call adds metadata)
        None,
        "extra create_model keyword, KEY=VALUE with a JSON value, repeatable "
        "(e.g. dropout_rate=0.3, resize_to=64)",
        action="append",
        type=str,
        metavar="KEY=VALUE",
    )
    input_shape: str | None = _opt(
        None, "build the model for this H,W,C instead of its default (e.g. 28,28,1)"
    )
    weights: str | None = _opt(
        None,
        "fine-tune: start from these weights (a run directory, a .keras/.npz/.weights.h5 file, "
        "or the zoo's MODEL:DATASET such as lenet5:fashion_mnist); a classifier head of "
        "another size (another number of classes) starts fresh",
    )
    mixed_precision: str = _opt(
        "auto",
        "mixed-precision policy (auto: bfloat16/float16 where the CPU, GPU or TPU computes it "
        "natively, else off; see training/precision.py)",
        choices=("auto", "off", "float16", "bfloat16"),
    )
    xla: bool | None = _opt(
        None,
        "XLA jit_compile the train step (auto: per model)",
        action=argparse.BooleanOptionalAction,
    )
    steps_per_execution: int | None = _opt(
        None, "train steps per tf.function call (auto: 32 on one device, 1 with replicas)", type=int
    )
    seed: int = _opt(0, "seed for the split, shuffling, augmentation and weights", type=int)
    deterministic: bool = _opt(
        False, "enable TF op determinism (slower)", action=argparse.BooleanOptionalAction
    )
    strategy: str = _opt(
        "auto",
        "distribution strategy",
        choices=("auto", "default", "mirrored", "multiworker", "tpu"),
    )
    sync_bn: bool = _opt(
        False,
        "synchronized BatchNorm moments across replicas",
        action=argparse.BooleanOptionalAction,
    )
    reparam: bool | None = _opt(
        None,
        "train re-parameterized: each conv + BatchNorm as parallel batch-normalized branches "
        "(RepConv2D), folded into the plain model that model.keras holds; lenet5_modern "
        "(auto: per model, off)",
        action=argparse.BooleanOptionalAction,
    )
    train_limit: int | None = _opt(
        None, "use only this many training images (quick runs)", type=int
    )
    test_limit: int | None = _opt(None, "use only this many test images (quick runs)", type=int)
    preview: bool = _opt(True, "write augment_preview.png", action=argparse.BooleanOptionalAction)
    tensorboard: bool = _opt(True, "write TensorBoard logs", action=argparse.BooleanOptionalAction)
    verbose: int = _opt(
        1,
        "Keras progress: 0 silent, 1 progress bar (one line per epoch instead when stdout is "
        "not a terminal, e.g. redirected to a log), 2 one line per epoch",
        type=int,
    )
    # Not a flag: each `--resume RUN --epochs N` that lengthened the run, as
    # {"from_epochs", "to_epochs"} (the schedule was recomputed for the new total then).
    extended: list | None = field(default=None, metadata={"help": "", "cli": False})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Options that don't change what is trained: they may differ between a run and its resumption.
NON_SEMANTIC = ("run_dir", "verbose", "data_dir", "tensorboard", "preview")

MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    # Batch 128 / lr 2e-3, no augmentation (the tanh LeNet underfits), no XLA (slower on CPU).
    # Why these defaults: docs/MEASUREMENTS.md, "LeNet-5 training recipes".
    "lenet5": dict(
        epochs=15,
        batch_size=128,
        optimizer="adam",
        learning_rate=2e-3,
        weight_decay=0.0,
        xla=False,
        augment="none",
    ),
    # AdamW 3e-3 with decay 0.4, label smoothing 0.1, medium augmentation; reparam off (its
    # int8 files agree less). Why: docs/MEASUREMENTS.md, "LeNet-5 training recipes".
    "lenet5_modern": dict(
        epochs=15,
        batch_size=128,
        optimizer="adamw",
        learning_rate=3e-3,
        weight_decay=0.4,
        label_smoothing=0.1,
        augment="medium",
        xla=False,
    ),
    # On 28x28 MNIST-like data: the model takes the 28x28 images and resizes them to 64x64
    # inside (its first layers), instead of the pipeline upsampling them to 227x227x3, and
    # trains 5 epochs. Why: docs/MEASUREMENTS.md, "AlexNet training recipe".
    "alexnet": dict(
        epochs=30,
        batch_size=128,
        optimizer="sgd",
        learning_rate=0.01,
        weight_decay=5e-4,
        xla=False,
        mnist_like=dict(input_shape="28,28,1", model_options={"resize_to": 64}, epochs=5),
    ),
    "conv_autoencoder": dict(
        epochs=10,
        batch_size=128,
        optimizer="adam",
        learning_rate=1e-3,
        weight_decay=0.0,
        xla=False,
    ),
}
MODEL_DEFAULTS["alexnet_single_tower"] = MODEL_DEFAULTS["alexnet"]
# BatchNorm takes twice the learning rate; label smoothing bounds the logits, so the int8
# file's one output scale resolves more near-ties (its top-1 agreement passes 99.5 %).
MODEL_DEFAULTS["alexnet_bn"] = dict(
    MODEL_DEFAULTS["alexnet"],
    mnist_like=dict(
        MODEL_DEFAULTS["alexnet"]["mnist_like"], learning_rate=0.02, label_smoothing=0.1
    ),
)
_FALLBACK = dict(
    epochs=15, batch_size=128, optimizer="adam", learning_rate=1e-3, weight_decay=0.0, xla=False
)
# The `mnist_like` keys that set the model's input rather than its training.
_SHAPE_KEYS = ("input_shape", "model_options")
# Keys a model's defaults may set; without them, the value here.
_OPTIONAL_DEFAULTS = dict(
    label_smoothing=0.0, ema_momentum=0.0, early_stopping=5, val_split=0.1, reparam=False
)


def fields() -> list[dataclasses.Field]:
    return list(dataclasses.fields(TrainConfig))


def load_config_file(path: str) -> dict[str, Any]:
    """Reads a JSON or YAML file of option keys (`batch_size: 256`); dashes are accepted too."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--config {path}: no such file")
    text = p.read_text()
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as e:
        raise ValueError(f"--config {path}: cannot parse ({e})") from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(
            f"--config {path}: expected a mapping of option keys, got {type(data).__name__}"
        )
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def check_keys(values: dict[str, Any], origin: str) -> None:
    """Raises ValueError naming every key of `values` that is no option, each with the closest
    option (`'batch_sise' (did you mean 'batch_size'?)`), and the accepted ones."""
    known = sorted(f.name for f in fields())
    unknown = sorted(set(values) - set(known))
    if unknown:
        named = []
        for key in unknown:
            close = difflib.get_close_matches(key, known, n=1)
            named.append(f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key))
        raise ValueError(f"{origin}: unknown option(s) {', '.join(named)}; accepted: {known}")


def parse_model_options(value: Any) -> dict[str, Any]:
    """`["dropout_rate=0.3", "towers=1"]` (the CLI's form) or a dict -> a dict of overrides."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    options: dict[str, Any] = {}
    for item in value:
        key, sep, raw = str(item).partition("=")
        if not sep or not key.strip().isidentifier():
            raise ValueError(f"model option must be KEY=VALUE, got {item!r}")
        try:
            options[key.strip()] = json.loads(raw)
        except ValueError:
            options[key.strip()] = raw  # a bare string
    return options


def parse_input_shape(value: Any) -> tuple[int, int, int] | None:
    if value is None or value == "":
        return None
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        shape = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be H,W,C with positive integers, got {value!r}")
    return shape


def dataset_tag(dataset: str) -> str:
    """The data set's part of a default run directory name: `fashion_mnist`, `tfds_cifar10`,
    and for `folder:<path>` the folder's base name (`folder:/data/photos/` -> `photos`)."""
    if dataset.startswith("folder:"):
        path = os.path.abspath(os.path.expanduser(dataset[len("folder:") :] or "."))
        tag = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.basename(path)).strip("._")
        return tag or "folder"
    return dataset.replace("/", "_").replace(":", "_").strip("_")


def progress_verbose(verbose: int, stream: Any = None) -> int:
    """The Keras `verbose` for `fit`: a progress bar (1) redraws itself with carriage returns,
    which a log file or pipe keeps as hundreds of updates on one line, so where `stream`
    (default `sys.stdout`) is not a terminal (nor a notebook) it becomes one line per epoch
    (2)."""
    stream = sys.stdout if stream is None else stream
    if verbose != 1 or "ipykernel" in sys.modules:
        return verbose
    isatty = getattr(stream, "isatty", None)
    return 1 if isatty is not None and isatty() else 2


def _is_mnist_like(c: TrainConfig) -> bool:
    return c.dataset in ("fashion_mnist", "mnist")


def _mnist_like_shape(c: TrainConfig, small: dict[str, Any] | None) -> None:
    """A model's input shape and options for 28x28 MNIST-like data, unless given."""
    if small is None or not _is_mnist_like(c) or c.input_shape:
        return
    c.input_shape = small["input_shape"]
    c.model_options = {**small["model_options"], **parse_model_options(c.model_options)}


def resolve_config(config: TrainConfig) -> TrainConfig:
    """Fills every `None`/`auto` with the model's default and validates the values."""
    c = dataclasses.replace(config)
    defaults = MODEL_DEFAULTS.get(c.model, _FALLBACK)
    if _is_mnist_like(c) and "mnist_like" in defaults:
        # Its training keys override the model's defaults; its shape keys apply below.
        small = defaults["mnist_like"]
        defaults = {**defaults, **{k: v for k, v in small.items() if k not in _SHAPE_KEYS}}
    for key in ("epochs", "batch_size", "learning_rate", "weight_decay", "xla"):
        if getattr(c, key) is None:
            setattr(c, key, defaults[key])
    for key, value in _OPTIONAL_DEFAULTS.items():
        if getattr(c, key) is None:
            setattr(c, key, defaults.get(key, value))
    if c.optimizer == "auto":
        c.optimizer = defaults["optimizer"]
    if c.augment == "auto" and "augment" in defaults and c.dataset in ("fashion_mnist", "mnist"):
        c.augment = defaults["augment"]  # else the data set's default, at data-loading time
    _mnist_like_shape(c, defaults.get("mnist_like"))
    if c.run_dir is None:
        c.run_dir = os.path.join("runs", f"{c.model}-{dataset_tag(c.dataset)}")
    checks = [
        ("epochs", c.epochs >= 1, "a positive integer"),
        ("batch_size", c.batch_size >= 1, "a positive integer"),
        ("learning_rate", c.learning_rate > 0, "positive"),
        ("weight_decay", c.weight_decay >= 0, ">= 0"),
        ("momentum", 0 <= c.momentum < 1, "in [0, 1)"),
        ("label_smoothing", 0 <= c.label_smoothing < 1, "in [0, 1)"),
        ("ema_momentum", 0 <= c.ema_momentum < 1, "in [0, 1) (0: off)"),
        ("val_split", 0 < c.val_split < 1, "in (0, 1)"),
        ("warmup_epochs", c.warmup_epochs >= 0, ">= 0"),
        ("step_epochs", c.step_epochs >= 1, ">= 1"),
        ("step_factor", 0 < c.step_factor <= 1, "in (0, 1]"),
        ("early_stopping", c.early_stopping >= 0, ">= 0"),
        ("noise_std", c.noise_std is None or c.noise_std >= 0, ">= 0"),
        ("verbose", c.verbose in (0, 1, 2), "0, 1 or 2"),
    ]
    if c.steps_per_execution is not None:
        checks.append(("steps_per_execution", c.steps_per_execution >= 1, ">= 1"))
    for limit in ("train_limit", "test_limit"):
        if getattr(c, limit) is not None:
            checks.append((limit, getattr(c, limit) >= 1, "a positive integer"))
    for name, ok, accepted in checks:
        if not ok:
            raise ValueError(f"{name} must be {accepted}, got {getattr(c, name)!r}")
    for f in fields():
        choices = f.metadata.get("choices")
        if choices and getattr(c, f.name) not in choices:
            raise ValueError(f"{f.name} must be one of {choices}, got {getattr(c, f.name)!r}")
    parse_input_shape(c.input_shape)
    c.model_options = parse_model_options(c.model_options) or None
    return c
