"""``qvaf inspect``: what the compiler makes of a spec, layer by layer.

    qvaf inspect SPEC [--model NAME | --ansatz NAME] [--arg K=V ...]
                      [--ansatz-arg [LAYER:]K=V ...] [--dump-ir] [--backend catalyst]

For every model of the spec (or the one chosen) it prints one row per layer: edges, gates
before and after the optimisation passes, kernel ops after fusion, data re-uploads, trainable
and fixed parameter counts, and the highest frequency the activation can contain. A spec
with no model inspects each ansatz as a 1 -> 1 network. ``--dump-ir`` first prints the IR as
lowered and after every pass. Parameters the optimised circuits never read are reported as
warnings on stderr, with the spec's own warnings. ``--backend catalyst`` also prints, for each
distinct edge circuit, the MLIR of the program Catalyst compiles for it (compiling it).
"""

from __future__ import annotations

import re
import sys

from qvaf.dsl.errors import QvafError

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="show per-layer statistics of a spec after compilation",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("spec", metavar="SPEC", help="a .qvaf file or a bundled model name")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", metavar="NAME", help="inspect only this model (default: every model)")
    which.add_argument("--ansatz", metavar="NAME", help="inspect this ansatz alone, as a 1 -> 1 network")
    p.add_argument("--arg", action="append", default=[], metavar="K=V",
                   help="model argument (ansatz argument with --ansatz); repeatable")
    p.add_argument("--ansatz-arg", action="append", default=[], metavar="[LAYER:]K=V",
                   help="override an ansatz argument of every kan layer, or of LAYER (e.g. layer1:reps=5)")
    p.add_argument("--dump-ir", action="store_true", help="print the IR as lowered and after each pass")
    p.add_argument("--backend", metavar="NAME",
                   help="also print the program this backend compiles for each distinct edge circuit "
                        "(catalyst: its MLIR; compiling takes seconds)")
    p.set_defaults(run=run)


def _value(text: str):
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if _NUMBER.fullmatch(text):
        return float(text)
    return text


def _pair(item: str, flag: str) -> tuple[str, object]:
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key or not value.strip():
        raise QvafError(f"{flag} expects K=V, got {item!r}")
    return key, _value(value.strip())


def parse_args(items, flag="--arg") -> dict:
    out = {}
    for item in items:
        k, v = _pair(item, flag)
        if k in out:
            raise QvafError(f"{flag} {k} given twice ({out[k]} and {v})")
        out[k] = v
    return out


def parse_overrides(items) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for item in items:
        layer, colon, rest = item.partition(":")
        if not colon or "=" in layer:
            layer, rest = "*", item
        k, v = _pair(rest, "--ansatz-arg")
        layer_args = out.setdefault(layer.strip(), {})
        if k in layer_args:
            raise QvafError(f"--ansatz-arg {item.partition('=')[0]} given twice ({layer_args[k]} and {v})")
        layer_args[k] = v
    return out


def _targets(program, opts) -> list[tuple[str, str]]:
    if opts.ansatz:
        return [("ansatz", opts.ansatz)]
    if opts.model:
        return [("model", opts.model)]
    if program.models:
        return [("model", m) for m in program.models]
    if program.ansatze:
        return [("ansatz", a) for a in program.ansatze]
    raise QvafError(f"{program.path}: no model or ansatz to inspect")


def run(opts, out=None, err=None) -> int:
    from qvaf.compiler.analysis import domain_limits, unused_params
    from qvaf.compiler.lower import lower_ansatz, lower_model
    from qvaf.compiler.passes import run_pipeline
    from qvaf.compiler.printer import format_graph
    from qvaf.compiler.report import LEGEND, format_table, layer_rows, title
    from qvaf._specs import find_spec
    from qvaf.dsl import load_program

    out = out or sys.stdout
    err = err or sys.stderr
    backend = getattr(opts, "backend", None)
    _check_backend(backend)
    program = load_program(find_spec(opts.spec))
    args = parse_args(opts.arg)
    overrides = parse_overrides(opts.ansatz_arg)
    if overrides and opts.ansatz:
        raise QvafError("--ansatz-arg applies to models; with --ansatz use --arg")
    for d in program.warnings:
        print(d.render(), file=err)
    first = True
    for kind, name in _targets(program, opts):
        if kind == "model":
            graph = lower_model(program, name, args, overrides)
        else:
            graph = lower_ansatz(program, name, args)
        if not first:
            print(file=out)
        first = False
        print(title(kind, name, graph), file=out)

        def dump(stage, g):
            print(f"--- IR after {stage} ---", file=out)
            print(format_graph(g), file=out)

        if opts.dump_ir:
            dump("lowering", graph)
        optimized = run_pipeline(graph, dump=dump if opts.dump_ir else None, verify_each=True)
        for line in format_table(layer_rows(graph, optimized)):
            print(line, file=out)
        for u in unused_params(optimized):
            print(f"warning: {kind} {name}: {u.message()}", file=err)
        for d in domain_limits(optimized):
            print(f"note: {kind} {name}: {d.message()}", file=err)
        if backend is not None:
            print_programs(optimized, out)
    print(LEGEND, file=out)
    return 0


#: backends whose compiled programs ``--backend`` can show
SHOWS_PROGRAMS = ("catalyst",)


def _check_backend(backend) -> None:
    if backend is None:
        return
    from qvaf.compiler.backends import BACKENDS

    if backend not in BACKENDS:
        raise QvafError(f"--backend: unknown backend {backend!r}; available backends: {', '.join(BACKENDS)}")
    if backend not in SHOWS_PROGRAMS:
        raise QvafError(f"--backend: the {backend!r} backend compiles no program per circuit to show; "
                        f"use --backend {' or '.join(SHOWS_PROGRAMS)}")


def print_programs(graph, out) -> None:
    """The MLIR Catalyst compiles for each distinct edge circuit of ``graph``."""
    from qvaf.compiler import backends
    fns = backends.get_backend("catalyst").build(graph, "float64")
    for layer_ids, prog in fns.programs():
        readout = {"inspired": "z"}.get(prog.signature[1], prog.signature[1])
        print(f"--- catalyst program for {', '.join(layer_ids)}: rows [n, {prog.width}] (gate angles) "
              f"-> <{readout}> [n] ---", file=out)
        print(prog.mlir.rstrip(), file=out)
