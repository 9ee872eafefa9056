"""`python -m export.predict`: run a trained or exported model on images or on a data split.

The model is a run directory, a `.keras` file, the zoo's shipped weights (`MODEL:DATASET`), or
an exported `.tflite` (in LiteRT) or `.onnx` file (in ONNX Runtime): the same file an app runs,
in the same runtime. Images are files or folders of files (PNG, JPEG, ...), converted to the
model's channels and resized to its input; a data set split (`--dataset fashion_mnist
--split test`) is scored with the figures training reports (accuracy, loss, per-class
accuracy, the confusion matrix), for Ultralytics-style `predict` and `val` in one command.

    python -m export.predict runs/lenet5-fashion_mnist shoe.png bag.jpg --top-k 3
    python -m export.predict exports/lenet5-fashion_mnist/lenet5-fashion_mnist_int8.tflite photos/
    python -m export.predict lenet5_modern:fashion_mnist --dataset fashion_mnist --out val/

With `--out DIR`: `predictions.csv` and `predictions.json` (top-k labels and probabilities per
image), and for a split `metrics.json` and `confusion.png`. Errors: one line, exit 2.

Python:

>>> predictor = Predictor.load("lenet5:fashion_mnist")
>>> predict(predictor, ["shoe.png"], top_k=2)[0]["top"]
[('Sneaker', 0.91), ('Sandal', 0.07)]
>>> evaluate(predictor, "fashion_mnist")["test_accuracy"]
0.9047
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoo.cli import OneLineErrorParser
from zoo.errors import first_line

__all__ = ["Predictor", "evaluate", "load_images", "predict"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm")


@dataclasses.dataclass
class Predictor:
    """A model ready to run on raw pixels, whatever file it came from.

    Attributes:
        path: what it was loaded from.
        kind: `"keras"`, `"tflite"` (LiteRT) or `"onnx"` (ONNX Runtime).
        input_shape: per-example `(H, W, C)`; inputs are raw pixels, float32 in [0, 255].
        task: `"classification"` (logits out) or `"reconstruction"` (an image out).
        class_names: label names (indices as strings when the file names none).
        run: `run(x)` for a batch `(N, H, W, C)` of raw pixels returns the outputs.
    """

    path: str
    kind: str
    input_shape: tuple[int, int, int]
    task: str
    class_names: list[str]
    run: Any

    @classmethod
    def load(cls, path: str | os.PathLike) -> Predictor:
        """Loads a run directory, `.keras`, `MODEL:DATASET`, `.tflite` or `.onnx` file.

        Raises:
            FileNotFoundError: nothing at `path`.
            ValueError: a file of another kind, or one its runtime cannot load.
        """
        suffix = Path(path).suffix
        if suffix in (".tflite", ".onnx"):
            return _exported(Path(path))
        from export.source import load_source

        source = load_source(path)
        names = source.class_names or [str(i) for i in range(source.num_outputs)]
        model = source.model
        return cls(str(path), "keras", source.input_shape, source.task, names,
                   lambda x: np.asarray(model.predict(x, batch_size=256, verbose=0)))  # fmt: skip


def _exported(path: Path) -> Predictor:
    from export.verify import make_runner

    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        runner = make_runner(path, path.suffix[1:])  # "tflite" or "onnx", the runtime names
    except Exception as error:  # the runtimes raise many kinds for a bad file
        first = first_line(error)
        raise ValueError(f"{path} is not a loadable {path.suffix} model: {first}") from None
    input_shape, output_shape = _io_shapes(runner)
    task = "reconstruction" if output_shape == input_shape else "classification"
    names = _class_names_beside(path) or [str(i) for i in range(int(np.prod(output_shape)))]
    return Predictor(str(path), path.suffix[1:], input_shape, task, names, runner.predict)


def _io_shapes(runner) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if hasattr(runner, "interpreter"):
        return tuple(int(d) for d in runner.input["shape"][1:]), tuple(
            int(d) for d in runner.output["shape"][1:]
        )
    session = runner.session
    return tuple(session.get_inputs()[0].shape[1:]), tuple(session.get_outputs()[0].shape[1:])


def _class_names_beside(path: Path) -> list[str] | None:
    """The labels an export wrote next to its files: `labels.txt`, else metadata.json's."""
    labels = path.parent / "labels.txt"
    if labels.is_file():
        return [line for line in labels.read_text().splitlines() if line]
    metadata = path.parent / "metadata.json"
    if metadata.is_file():
        return json.loads(metadata.read_text()).get("class_names")
    return None


def _image_files(sources: Sequence[str | os.PathLike]) -> list[Path]:
    files: list[Path] = []
    for source in map(Path, sources):
        if source.is_dir():
            found = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ValueError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}) in it")
            files += found
        elif source.is_file():
            files.append(source)
        else:
            raise FileNotFoundError(f"{source}: no such image file or folder")
    return files


def load_images(
    sources: Sequence[str | os.PathLike], input_shape: tuple[int, int, int]
) -> tuple[list[Path], np.ndarray]:
    """Image files and folders as raw pixels `(N, H, W, C)` float32 in [0, 255]: converted to
    the model's channels (grayscale or RGB) and resized (bilinear) to its input.

    Raises:
        FileNotFoundError, ValueError: a missing path, an empty folder, a file that is not an
            image.
    """
    from PIL import Image, UnidentifiedImageError

    height, width, channels = input_shape
    files, images = _image_files(sources), []
    for file in files:
        try:
            with Image.open(file) as image:
                image = image.convert("L" if channels == 1 else "RGB")
                image = image.resize((width, height), Image.BILINEAR)
                images.append(np.asarray(image, np.float32).reshape(height, width, channels))
        except (UnidentifiedImageError, OSError) as error:
            raise ValueError(f"{file} is not a readable image ({error})") from None
    return files, np.stack(images)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def predict(
    predictor: Predictor, images: Sequence[str | os.PathLike], top_k: int = 5
) -> list[dict[str, Any]]:
    """Top-k labels with probabilities (softmax of the logits) for each image file.

    Returns:
        One dict per image: `{"file", "top": [(label, probability), ...]}`; reconstruction
        models give `{"file", "output_range": (min, max)}` instead.
    """
    if predictor.task != "classification":
        files, x = load_images(images, predictor.input_shape)
        out = predictor.run(x)
        return [{"file": str(f), "output_range": (float(o.min()), float(o.max()))}
                for f, o in zip(files, out, strict=True)]  # fmt: skip
    files, x = load_images(images, predictor.input_shape)
    probabilities = _softmax(predictor.run(x).reshape(len(x), -1))
    k = min(top_k, probabilities.shape[1])
    rows = []
    for file, p in zip(files, probabilities, strict=True):
        top = [(predictor.class_names[i], float(p[i])) for i in np.argsort(-p)[:k]]
        rows.append({"file": str(file), "top": top})
    return rows


def evaluate(
    predictor: Predictor,
    dataset: str,
    split: str = "test",
    limit: int | None = None,
    data_dir: str | None = None,
) -> dict[str, Any]:
    """The training run's figures for `predictor` on a data set split.

    Returns:
        Classifiers: `{split}_accuracy`, `{split}_loss`, `per_class_accuracy`,
        `confusion_matrix` (as `training.evaluation`); reconstruction models: `{split}_mse`,
        `{split}_psnr_db`. Plus `{split}_size`.
    """
    from training.data import load_dataset
    from training.evaluation import psnr_db, score_logits

    data = load_dataset(dataset, data_dir)
    x, y = (data.x_test, data.y_test) if split == "test" else (data.x_train, data.y_train)
    x, y = x[:limit].astype(np.float32), y[:limit]
    if tuple(x.shape[1:]) != tuple(predictor.input_shape):
        raise ValueError(
            f"{dataset} images are {tuple(x.shape[1:])}, the model takes "
            f"{predictor.input_shape}; use the data set the model was trained on"
        )
    outputs = predictor.run(x)
    if predictor.task == "classification":
        scores = score_logits(outputs.reshape(len(x), -1), y, predictor.class_names, split)
    else:
        mse = float(np.mean((outputs.astype(np.float64) - x) ** 2))
        scores = {f"{split}_mse": mse, f"{split}_psnr_db": psnr_db(mse)}
    return {**scores, f"{split}_size": len(y)}


def build_parser() -> OneLineErrorParser:
    parser = OneLineErrorParser(
        prog="python -m export.predict",
        description="Run a trained or exported model on image files/folders (top-k labels) "
        "or on a data set split (accuracy, per-class accuracy, confusion matrix).",
    )
    parser.add_argument(
        "model", help="run directory, .keras, .tflite, .onnx, or the zoo's MODEL:DATASET"
    )
    parser.add_argument("images", nargs="*", help="image files or folders")
    parser.add_argument("--dataset", help="score a data set split instead (e.g. fashion_mnist)")
    parser.add_argument("--split", default="test", choices=("test", "train"))
    parser.add_argument("--data-dir", default=None, help="where the data set's files are")
    parser.add_argument("--limit", type=int, default=None, help="first N images of the split")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--out", default=None, help="directory for predictions/metrics files")
    return parser


def _check_arguments(parser, args) -> None:
    if bool(args.images) == bool(args.dataset):
        parser.error("give image files/folders or --dataset, one of the two")
    if args.top_k < 1 or (args.limit is not None and args.limit < 1):
        parser.error(f"--top-k and --limit must be positive, got {args.top_k}, {args.limit}")


def _write_predictions(out: Path, rows: list[dict[str, Any]]) -> None:
    from training.atomic import atomic_write_json, atomic_write_text

    atomic_write_json(out / "predictions.json", rows)
    lines = ["file,rank,label,probability"]
    for row in rows:
        for rank, (label, p) in enumerate(row.get("top", []), start=1):
            lines.append(f"{json.dumps(row['file'])},{rank},{json.dumps(label)},{p:.6f}")
    atomic_write_text(out / "predictions.csv", "\n".join(lines) + "\n")


def _print_predictions(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        if "top" in row:
            top = ", ".join(f"{label} {100 * p:.1f} %" for label, p in row["top"])
        else:
            top = "output range [{:.1f}, {:.1f}]".format(*row["output_range"])
        print(f"{row['file']}: {top}")


def _report_split(predictor: Predictor, metrics: dict[str, Any], args) -> None:
    split = args.split
    if predictor.task == "classification":
        print(f"{split} accuracy {100 * metrics[f'{split}_accuracy']:.2f} %, loss "
              f"{metrics[f'{split}_loss']:.4f} on {metrics[f'{split}_size']} images")  # fmt: skip
        for name, accuracy in metrics["per_class_accuracy"].items():
            print(f"  {name:>20s} {100 * accuracy:6.2f} %")
    else:
        psnr, mse = metrics[f"{split}_psnr_db"], metrics[f"{split}_mse"]
        print(f"{split} PSNR {psnr:.2f} dB, MSE {mse:.2f}")
    if args.out:
        from training.artifacts import plot_confusion
        from training.atomic import atomic_write_json

        atomic_write_json(Path(args.out) / "metrics.json", metrics)
        if "confusion_matrix" in metrics:
            title = f"{Path(predictor.path).name} on {args.dataset} {split}"
            plot_confusion(np.asarray(metrics["confusion_matrix"]), predictor.class_names,
                           Path(args.out) / "confusion.png", title=title)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_arguments(parser, args)
    try:
        import layers  # noqa: F401  (first: imports TensorFlow without its native start-up logs)

        predictor = Predictor.load(args.model)
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
        if args.dataset:
            metrics = evaluate(predictor, args.dataset, args.split, args.limit, args.data_dir)
            _report_split(predictor, metrics, args)
            return 0
        rows = predict(predictor, args.images, args.top_k)
    except (ValueError, FileNotFoundError, PermissionError) as error:
        print(f"python -m export.predict: error: {error}", file=sys.stderr)
        return 2
    _print_predictions(rows)
    if args.out:
        _write_predictions(Path(args.out), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
