"""The ``qvaf`` command line.

Each subcommand lives in its own module exposing ``add_parser(subparsers)`` and ``run(args)``;
this table is the only place that lists them. Modules are imported when their command runs,
so ``qvaf --help`` stays fast. Every :class:`~qvaf.QvafError` ends in a message and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: command name -> module (relative to this package) implementing it
COMMANDS = {
    "check": ".cmd_dsl",
    "fmt": ".cmd_dsl",
    "inspect": ".cmd_inspect",
    "train": ".cmd_train",
    "eval": ".cmd_train",
    "plot": ".cmd_train",
    "demo": ".cmd_train",
    "tasks": ".cmd_train",
    "spectrum": ".cmd_explore",
    "formula": ".cmd_explore",
    "prune": ".cmd_explore",
    "compare": ".cmd_explore",
}


def _version() -> str:
    from qvaf import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qvaf",
        description="qvaf: a differentiable compiler for quantum variational activation functions.",
    )
    parser.add_argument("--version", action="version", version=f"qvaf {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in dict.fromkeys(COMMANDS.values()):
        importlib.import_module(module_name, __package__).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from qvaf import QvafError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.run(args) or 0)
    except QvafError as exc:
        print(f"qvaf {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"qvaf {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
