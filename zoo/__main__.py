"""`python -m zoo <name>`: print a model's per-layer summary, optionally draw it.

    python -m zoo                       # list the registered models and their shipped weights
    python -m zoo lenet5_modern         # its citation, keywords, weights manifest and layers
    python -m zoo alexnet --input-shape 64,64,3 --num-classes 10 --plot alexnet.png

User errors (unknown model, bad shape, an input too small) print one line on stderr and
exit with status 2.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import textwrap
from collections.abc import Sequence

from zoo.cli import OneLineErrorParser


def _parse_shape(text: str) -> tuple[int, ...]:
    parts = text.replace("x", ",").split(",")
    try:
        shape = tuple(int(p) for p in parts if p.strip())
    except ValueError:
        shape = ()
    if len(shape) != 3:
        raise argparse.ArgumentTypeError(f"expected H,W,C such as 28,28,1, got {text!r}")
    return shape


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="python -m zoo",
        description="Print a zoo model's layers: output shape, parameters, receptive field, "
        "multiply-adds. Without a name, list the models.",
    )
    parser.add_argument("name", nargs="?", help="registered model name")
    parser.add_argument("--input-shape", type=_parse_shape, help="H,W,C (default: the model's)")
    parser.add_argument("--num-classes", type=int, help="number of classes (default: the model's)")
    parser.add_argument("--plot", metavar="PNG", help="also draw the model to this PNG file")
    return parser


def short_citation(paper: str) -> str:
    """ "LeCun et al. 1998" from "Y. LeCun, L. Bottou, ... Proceedings of the IEEE, 1998."."""
    surname = re.search(r"\b[A-Z][a-z]*[A-Z]?[a-z]+\b(?!\.)", paper)
    year = re.search(r"\b(19|20)\d\d\b", paper)
    return " ".join(part for part in (surname and f"{surname[0]} et al.", year and year[0]) if part)


def _weights_column(name: str) -> str:
    from zoo import list_pretrained, weights_manifest

    cells = []
    for tag in list_pretrained(name):
        dataset = tag.partition(":")[2]
        cells.append(f"{dataset} {_headline(weights_manifest(name, dataset)['run']['metrics'])}")
    return ", ".join(cells) or "-"


def _headline(metrics: dict) -> str:
    if "test_accuracy" in metrics:
        return f"{100 * metrics['test_accuracy']:.2f} %"
    return f"{metrics['test_psnr_db']:.2f} dB PSNR"


def print_models() -> None:
    from zoo import get_model_info, list_models

    print(f"{'model':22s} {'task':15s} {'input':10s} {'weights (test)':28s} paper")
    for name in list_models():
        info = get_model_info(name)
        shape = "x".join(map(str, info.input_shape))
        paper = short_citation(info.paper)
        print(f"{name:22s} {info.task:15s} {shape:10s} {_weights_column(name):28s} {paper}")
    print(
        "\npython -m zoo NAME: a model's keywords, weights and layers; "
        "create_model(NAME, pretrained=True) loads its weights"
    )


def _keywords(info) -> list[str]:
    rows = []
    for parameter in list(inspect.signature(info.builder).parameters.values())[2:]:
        if parameter.kind is parameter.VAR_KEYWORD:
            continue
        annotation = parameter.annotation if isinstance(parameter.annotation, str) else ""
        rows.append(f"  {parameter.name}: {annotation} = {parameter.default!r}")
    return rows


def _manifest_lines(name: str) -> list[str]:
    from zoo import list_pretrained, weights_manifest
    from zoo.pretrained import WEIGHTS_DIR

    lines = []
    for tag in list_pretrained(name):
        manifest = weights_manifest(name, tag.partition(":")[2])
        weights, trained, run = manifest["weights"], manifest["trained"], manifest["run"]
        lines += [
            f"  {tag}: {WEIGHTS_DIR / weights['file']} ({weights['bytes'] / 1024:.0f} KB, "
            f"sha256 {weights['sha256'][:16]}...)",
            f"    test: {_headline(run['metrics'])} on {run['dataset']}, input "
            f"{'x'.join(map(str, run['input_shape']))}, {len(run['class_names'])} classes",
            f"    trained {trained['date']} in {trained['wall_seconds']:.0f} s at commit "
            f"{trained['commit'][:10]}{' (modified)' if trained['dirty'] else ''}, TensorFlow "
            f"{run['versions']['tensorflow']}, Keras {run['versions']['keras']}",
            f"    by: {trained['command']}",
            f"    load: create_model({name!r}, pretrained={tag.partition(':')[2]!r})",
        ]
    return lines or ["  none shipped: train it with python -m training --model " + name]


def print_model_card(name: str) -> None:
    from zoo import get_model_info

    info = get_model_info(name)
    print(f"{name}: {info.task}, default input {'x'.join(map(str, info.input_shape))}")
    print(textwrap.fill(f"paper: {info.paper}", width=100, subsequent_indent="  "))
    print("keywords (create_model(name, **keywords)):", *_keywords(info), sep="\n")
    print("pretrained weights:", *_manifest_lines(name), sep="\n")
    print()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from zoo import create_model, summary

    try:
        if args.name is None:
            print_models()
            return 0
        model = create_model(args.name, num_classes=args.num_classes, input_shape=args.input_shape)
        print_model_card(args.name)
        summary(model, plot_to=args.plot)
    except (ValueError, FileNotFoundError, OSError) as error:
        print(f"python -m zoo: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
