"""The argument parser shared by the command lines (`python -m zoo`, `training`, `export`).

A user mistake on any of them is one line on stderr and exit status 2, never argparse's usage
block: `OneLineErrorParser` prints `<prog>: error: <message>`, and for an unknown option adds
the closest accepted one and where to find the rest.

Example:

>>> parser = OneLineErrorParser(prog="python -m training")
>>> _ = parser.add_argument("--epochs", type=int)
>>> parser.parse_args(["--epoch", "3"])  # doctest: +SKIP
python -m training: error: unrecognized arguments: --epoch 3; did you mean --epochs? ...
"""

from __future__ import annotations

import argparse
import difflib
import sys
from typing import NoReturn


class OneLineErrorParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments"):
            known = [s for a in self._actions for s in a.option_strings if s.startswith("--")]
            unknown = [w.split("=")[0] for w in message.split(":", 1)[1].split()]
            close = [m for w in unknown for m in difflib.get_close_matches(w, known, n=1)]
            hint = f"did you mean {', '.join(close)}? " if close else ""
            message += f"; {hint}accepted options: see {self.prog} --help"
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)
