"""`python -m training`: train a zoo model; with no arguments, LeNet-5 on Fashion-MNIST.

Every option (see `--help`) is also a key of `--config file.json|yaml`; explicit flags win
over the file, the file over the defaults. Errors are one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from zoo.cli import OneLineErrorParser


def build_parser() -> argparse.ArgumentParser:
    from training.config import fields

    parser = OneLineErrorParser(
        prog="python -m training",
        description=(
            "Train a convzoo model. With no arguments: LeNet-5 on Fashion-MNIST into "
            "runs/lenet5-fashion_mnist. Rerunning the same command resumes an interrupted run."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for f in fields():
        if f.metadata.get("cli") is False:
            continue
        flag = "--" + f.name.replace("_", "-")
        kwargs = {k: v for k, v in f.metadata.items() if k != "help"}
        default = f.default
        shown = "auto" if default is None else default
        help_text = f.metadata["help"] + f" (default: {shown})"
        parser.add_argument(flag, dest=f.name, default=argparse.SUPPRESS, help=help_text, **kwargs)
    parser.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help="JSON or YAML file of option keys (default: none)",
    )
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        default=argparse.SUPPRESS,
        help="continue the run in RUN_DIR with its stored configuration; with --epochs N, "
        "lengthen it (a finished one too) to N epochs (default: none)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        default=argparse.SUPPRESS,
        help="replace an existing run directory with a different configuration (default: False)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # ArgumentDefaultsHelpFormatter would print "(default: ==SUPPRESS==)": defaults are in the
    # help texts instead.
    parser.formatter_class = argparse.HelpFormatter
    args = vars(parser.parse_args(argv))
    config_path = args.pop("config", None)
    resume = args.pop("resume", None)
    overwrite = bool(args.pop("overwrite", False))
    try:
        from training.config import check_keys, load_config_file

        options: dict[str, Any] = {}
        if config_path:
            options = load_config_file(config_path)
            check_keys(options, f"--config {config_path}")
        options.update(args)
        if resume is not None:
            semantic = sorted(k for k in args if k not in ("verbose", "epochs"))
            if semantic or config_path:
                raise ValueError(
                    f"--resume {resume} continues the stored configuration (only --epochs may "
                    f"lengthen it); drop "
                    f"{['--' + k.replace('_', '-') for k in semantic] or ['--config']}"
                )
        import layers  # noqa: F401  (first: imports TensorFlow without its native start-up logs)
        from training.trainer import train

        result = train(
            overwrite=overwrite,
            resume=resume,
            **(
                {k: options[k] for k in ("verbose", "epochs") if k in options}
                if resume is not None
                else {}
            ),
            **({} if resume is not None else options),
        )
    except (ValueError, FileNotFoundError, PermissionError) as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        sys.stderr.write(f"python -m training: error: {message}\n")
        return 2
    except FloatingPointError as e:
        sys.stderr.write(f"python -m training: error: {e}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(
            "python -m training: interrupted; rerun the same command to continue from the last "
            "completed epoch\n"
        )
        return 130
    return 1 if result.status == "diverged" else 0


if __name__ == "__main__":
    sys.exit(main())
