"""The ``qvaf`` command line.

Each subcommand lives in its own module exposing ``add_parser(subparsers)`` and ``run(args)``;
this table is the only place that lists them. Modules are imported when their command runs,
so ``qvaf --help`` stays fast. Every :class:`~qvaf.QvafError` ends in a message and exit
status 2, never a traceback; so does a misspelled option (with the closest real one).

At start-up, before JAX is imported, a command sets two things for its process: JAX's 64-bit
mode when it computes in float64 (:func:`set_precision`) and the persistent compilation cache
that keeps compiled programs between runs (:mod:`.compile_cache`, ``QVAF_COMPILE_CACHE=off``
turns it off).

When stdout is closed early (``qvaf tasks | head -2``) a command stops quietly with the exit
status of a process ended by SIGPIPE (128 + 13 = 141), as Unix tools do; Ctrl-C ends with 130.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import signal
import sys
import warnings

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
    "export": ".cmd_hardware",
    "run": ".cmd_hardware",
    "cost": ".cmd_hardware",
    "spectrum": ".cmd_explore",
    "formula": ".cmd_explore",
    "prune": ".cmd_explore",
    "compare": ".cmd_explore",
    "extend": ".cmd_extend",
}

#: exit status of a command whose output was closed (a process killed by SIGPIPE)
EXIT_PIPE = 128 + signal.SIGPIPE
#: exit status after Ctrl-C (a process killed by SIGINT)
EXIT_INTERRUPTED = 128 + signal.SIGINT


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
    parser.set_defaults(subcommands=sub.choices)
    return parser


def unknown_option_message(subparser: argparse.ArgumentParser, extras: list[str]) -> str:
    """What to say about arguments a subcommand does not take: the first one, with the
    closest option of that subcommand (difflib) when it looks like a misspelled flag."""
    first = extras[0]
    if not first.startswith("-") or first == "-":
        usage = " ".join(subparser.format_usage().split())
        return f"unexpected argument '{first}' ({usage})"
    name = first.split("=", 1)[0]
    options = sorted({s for a in subparser._actions for s in a.option_strings if s.startswith("--")})
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if close:
        return f"unknown option '{name}'; did you mean '{close[0]}'?"
    return f"unknown option '{name}'; options: {', '.join(options)}"


def _show_warning(message, category, filename, lineno, file=None, line=None, *, command: str = "qvaf"):
    print(f"qvaf {command}: warning: {message}", file=sys.stderr)


#: argument of each command that names a saved run, checkpoint or export directory
_SAVED_RUN_ARG = {"eval": "checkpoint", "plot": "checkpoint", "export": "source", "cost": "source",
                  "run": "export", "spectrum": "target", "formula": "checkpoint", "prune": "checkpoint",
                  "extend": "checkpoint"}


def set_precision(args) -> None:
    """Set JAX's 64-bit mode for this process, once, before the command runs (the library
    never does): on when the command computes in float64, that is ``--dtype float64``, or a
    saved run, checkpoint or hardware export whose model is float64."""
    dtype = getattr(args, "dtype", None)
    if dtype is None:
        if args.command == "train" and getattr(args, "resume", False):
            path = args.out
        else:
            path = getattr(args, _SAVED_RUN_ARG.get(args.command, ""), None)
        if isinstance(path, str) and os.path.isdir(path):
            from .run import saved_dtype

            dtype = saved_dtype(path)
    if dtype == "float64":
        import jax

        jax.config.update("jax_enable_x64", True)


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit status (0 ok, 1 check/fmt findings, 2 bad input)."""
    try:
        code = _main(argv)
        if sys.stdout is not None:  # None when the process started with stdout closed
            sys.stdout.flush()
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_PIPE
    except KeyboardInterrupt:  # before a command started (while importing its modules)
        print("qvaf: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv) -> int:
    from qvaf import QvafError

    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse has printed
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        if extras:
            print(f"qvaf: {unknown_option_message(parser, extras)}", file=sys.stderr)
            return 2
        parser.print_help()
        return 0
    if extras:
        message = unknown_option_message(args.subcommands[args.command], extras)
        print(f"qvaf {args.command}: {message}", file=sys.stderr)
        return 2
    if "jax" not in sys.modules:  # a fresh process (main() called from Python keeps its own JAX setup)
        from .compile_cache import configure

        configure()
    set_precision(args)
    with warnings.catch_warnings():
        warnings.showwarning = lambda *a, **k: _show_warning(*a, **k, command=args.command)
        try:
            return int(args.run(args) or 0)
        except QvafError as exc:
            print(f"qvaf {args.command}: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"qvaf {args.command}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            raise
        except OSError as exc:  # the file system said no: a full disk, a read-only folder
            where = f"{exc.filename}: " if exc.filename else ""
            print(f"qvaf {args.command}: {where}{exc.strerror or exc}", file=sys.stderr)
            return 2
        except MemoryError:
            print(f"qvaf {args.command}: out of memory; use a smaller model, batch or dataset", file=sys.stderr)
            return 2


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (tests capture it)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives until the process ends


if __name__ == "__main__":
    sys.exit(main())
