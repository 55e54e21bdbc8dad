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


def set_precision(args) -> None:
    """Set JAX's 64-bit mode for this process, once, before the command runs (the library
    never does): on when the command computes in float64, that is ``--dtype float64``, or a
    saved run whose model is float64 (``train --resume``, ``eval``, ``plot``)."""
    dtype = getattr(args, "dtype", None)
    if dtype is None and (getattr(args, "resume", False) or args.command in ("eval", "plot")):
        from .run import saved_dtype

        dtype = saved_dtype(args.out if args.command == "train" else args.checkpoint)
    if dtype == "float64":
        import jax

        jax.config.update("jax_enable_x64", True)


def main(argv: list[str] | None = None) -> int:
    from qvaf import QvafError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    set_precision(args)
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
