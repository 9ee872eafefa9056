"""`python -m zoo <name>`: print a model's per-layer summary, optionally draw it.

    python -m zoo                       # list the registered models
    python -m zoo alexnet --input-shape 64,64,3 --num-classes 10 --plot alexnet.png

User errors (unknown model, bad shape, an input too small) print one line on stderr and
exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from zoo import create_model, get_model_info, list_models, summary

    if args.name is None:
        for name in list_models():
            info = get_model_info(name)
            shape = "x".join(map(str, info.input_shape))
            print(f"{name:22s} {info.task:15s} {shape:10s} {info.paper[:60]}...")
        return 0
    try:
        model = create_model(args.name, num_classes=args.num_classes, input_shape=args.input_shape)
        summary(model, plot_to=args.plot)
    except (ValueError, FileNotFoundError, OSError) as error:
        print(f"python -m zoo: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
