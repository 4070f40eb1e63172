"""The `digitrec` command. Each subcommand lives in `digitrec/commands/<name>.py` with `register(subparsers)`;
user errors (DigitrecError, bad flags) become one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import __version__
from .errors import DigitrecError, as_missing_extra


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise DigitrecError(f"{self.prog}: {message}")


class _CommandParser(_Parser):
    """A subcommand's parser: options may stand anywhere among the positionals (`read M --json a.png b.png`)."""

    _intermixed = False

    def parse_known_args(self, args=None, namespace=None):
        if self._intermixed:  # parse_known_intermixed_args calls back into this method
            return super().parse_known_args(args, namespace)
        self._intermixed = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixed = False


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="digitrec", description="Handwritten digit recognition: train, evaluate, read digits.")
    parser.add_argument("--version", action="version", version=f"digitrec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_CommandParser)
    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except DigitrecError as e:
        print(f"digitrec: error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:  # an optional dependency a command reached for without checking first
        error = as_missing_extra(e, f"digitrec {getattr(args, 'command', '')}".strip())
        if error is None:
            raise
        print(f"digitrec: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("digitrec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
