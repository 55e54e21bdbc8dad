"""``qvaf check`` and ``qvaf fmt``: the DSL's command-line tools.

``qvaf check PATH...`` checks spec files (directories are searched recursively for ``*.qvaf``)
with their imports, prints every diagnostic and a summary line, and exits 0 when there are no
errors (warnings allowed), 1 otherwise.

``qvaf fmt FILE...`` prints the canonical text of each file; ``--check`` instead lists the
files that are not canonical (exit 1 if any), ``--write`` rewrites them in place atomically
(temporary file in the same folder, fsync, rename).
"""

from __future__ import annotations

import os
import sys
import tempfile

from qvaf.dsl.errors import Diagnostic, QvafError, SpecError

#: the most files one ``qvaf check`` visits in a directory tree
MAX_FILES = 10_000


class PathError(QvafError):
    """A command-line path that cannot be used (missing, unreadable, nothing to check)."""


def add_parser(subparsers) -> None:
    """Register ``check`` and ``fmt``."""
    check = subparsers.add_parser(
        "check",
        help="check .qvaf specs and report every error",
        description="Parse and check spec files and their imports. Directories are searched "
        "recursively for *.qvaf. Exit status 0 when there are no errors (warnings allowed), "
        "1 when there are.",
    )
    check.add_argument("paths", nargs="+", metavar="PATH", help="a .qvaf file or a directory")
    check.add_argument("-q", "--quiet", action="store_true", help="print only the summary line")
    check.set_defaults(run=run_check)

    fmt = subparsers.add_parser(
        "fmt",
        help="print or rewrite specs in canonical layout",
        description="Print the canonical text of each spec file (comments are kept).",
    )
    fmt.add_argument("paths", nargs="+", metavar="FILE", help="a .qvaf file")
    mode = fmt.add_mutually_exclusive_group()
    mode.add_argument(
        "--check", action="store_true", help="exit 1 and list the files that are not canonical"
    )
    mode.add_argument("--write", action="store_true", help="rewrite the files in place")
    fmt.set_defaults(run=run_fmt)


def collect_files(paths) -> tuple[list[str], list[Diagnostic]]:
    """Expand directories into their ``*.qvaf`` files (sorted); report missing paths."""
    files: list[str] = []
    problems: list[Diagnostic] = []
    for path in paths:
        if os.path.isdir(path):
            found = []
            for root, dirs, names in os.walk(path):
                dirs.sort()
                for name in sorted(names):
                    if name.endswith(".qvaf"):
                        found.append(os.path.join(root, name))
                if len(found) > MAX_FILES:
                    raise PathError(f"more than {MAX_FILES} .qvaf files under '{path}'")
            if not found:
                problems.append(Diagnostic("error", f"no .qvaf files under '{path}'", None))
            files.extend(found)
        elif os.path.exists(path):
            files.append(path)
        else:
            problems.append(Diagnostic("error", f"cannot read '{path}': no such file", None))
    return files, problems


def _decl_span(ansatz, name: str):
    for stmt in ansatz.body:
        if getattr(stmt, "name", None) == name and hasattr(stmt, "init"):
            return stmt.span
    return ansatz.span


def _unread_message(u, label: str, where: str) -> str:
    if len(u.indices) == u.total:
        what = f"'{u.name}' (all {u.total} entries per edge) is"
    else:
        shown = ", ".join(f"{u.name}[{', '.join(map(str, i))}]" for i in u.indices[:6])
        what = shown + (f" and {len(u.indices) - 6} more" if len(u.indices) > 6 else "") + \
            (" are" if len(u.indices) > 1 else " is")
    return f"{what} never read by the optimised circuit of {label}{where}: it cannot affect the output"


def circuit_diagnostics(path: str) -> list[Diagnostic]:
    """What compiling a clean file shows beyond the checker: parameters the optimised circuits
    never read (the analysis ``qvaf inspect`` runs), and errors lowering finds.

    The file's own models are lowered with their default arguments, and its own ansätze that
    none of them uses are lowered alone; definitions with arguments that have no default are
    skipped (they cannot be compiled without values).
    """
    from qvaf.compiler.analysis import unused_params
    from qvaf.compiler.errors import CompileError
    from qvaf.compiler.lower import lower_ansatz, lower_model
    from qvaf.compiler.passes import run_pipeline
    from qvaf.compiler.report import ansatz_label
    from qvaf.dsl import load_program
    from qvaf.dsl.parser import source_line
    from qvaf.dsl.program import read_source

    program = load_program(path)
    own = {a for a, node in program.ansatze.items() if node.span is not None and node.span.file == program.path}
    targets, used = [], set()
    for name, model in program.models.items():
        if model.span is None or model.span.file != program.path:
            continue
        used |= {layer.ansatz for layer in model.body if hasattr(layer, "ansatz")}
        if all(a.default is not None for a in model.args):
            targets.append(("model", name))
    targets += [("ansatz", a) for a in sorted(own - used)
                if all(arg.default is not None for arg in program.ansatze[a].args)]
    out: list[Diagnostic] = []
    for kind, name in targets:
        try:
            graph = lower_model(program, name) if kind == "model" else lower_ansatz(program, name)
            optimized = run_pipeline(graph)
        except CompileError as exc:
            out.append(exc.diagnostic)
            continue
        except SpecError as exc:
            out.extend(exc.diagnostics)
            continue
        out += _size_diagnostics(program, kind, name, optimized)
        for u in unused_params(optimized):
            node = optimized.nodes[u.layer]["op"]
            ansatz = program.ansatze[node.ansatz]
            span = _decl_span(ansatz, u.name)
            where = f" in model {name}, {u.layer}" if kind == "model" else ""
            text = program.sources.get(span.file) if span is not None else None
            if text is None and span is not None:
                text = read_source(span.file)
            line = source_line(text, span.line) if span is not None and text is not None else None
            out.append(Diagnostic("warning", _unread_message(u, ansatz_label(node), where), span, line))
    return out


def _size_diagnostics(program, kind: str, name: str, optimized) -> list[Diagnostic]:
    """Errors for edge circuits above the compile limit, warnings for slow ones, at the layer
    statement of the model (at the ansatz for an ansatz alone)."""
    from qvaf.compiler.analysis import unroll_problems
    from qvaf.compiler.options import CompileOptions
    from qvaf.dsl import ast

    errors, warnings = unroll_problems(optimized, CompileOptions().unroll_limit)
    if kind == "model":
        layers = [st for st in program.models[name].body if isinstance(st, (ast.KanLayer, ast.LinearLayer))]
        spans = {f"layer{k}": st.span for k, st in enumerate(layers)}
    else:
        spans = {}
    out = []
    for severity, messages in (("error", errors), ("warning", warnings)):
        for text in messages:
            span = spans.get(text.split(" ", 1)[0], program.ansatze[name].span if kind == "ansatz" else None)
            line = _line_of(program, span)
            hint = "lower reps, or compile from Python with unroll_limit=N" if severity == "error" else None
            out.append(Diagnostic(severity, text, span, line, hint))
    return out


def _line_of(program, span):
    from qvaf.dsl.parser import source_line
    from qvaf.dsl.program import read_source

    if span is None:
        return None
    text = program.sources.get(span.file) or read_source(span.file)
    return source_line(text, span.line) if text is not None else None


def _is_empty(path: str) -> bool:
    """True when a (readable, parseable) spec holds nothing but comments and blank lines."""
    from qvaf.dsl import ast
    from qvaf.dsl.parser import parse
    from qvaf.dsl.program import read_source

    try:
        module = parse(read_source(path), path)
    except SpecError:
        return False
    return all(isinstance(item, ast.Comment) for item in module.items)


def run_check(args) -> int:
    from qvaf.dsl.program import check

    files, diagnostics = collect_files(args.paths)
    seen: set[tuple] = set()
    unique: list[Diagnostic] = list(diagnostics)
    for path in files:
        found = list(check(path))
        if not any(d.severity == "error" for d in found) and _is_empty(path):
            found.append(Diagnostic("error", f"'{path}' is empty: it defines no ansatz or model and imports nothing",
                                    None))
        if not any(d.severity == "error" for d in found):
            flagged = {d.span for d in found}  # a declaration the checker already calls unused
            found += [d for d in circuit_diagnostics(path) if d.severity == "error" or d.span not in flagged]
        for d in found:
            key = (d.severity, d.message, str(d.span) if d.span else None)
            if key not in seen:  # an imported file checked twice reports once
                seen.add(key)
                unique.append(d)
    errors = sum(d.severity == "error" for d in unique)
    warnings = len(unique) - errors
    if not args.quiet:
        for d in unique:
            print(d.render())
    noun = "file" if len(files) == 1 else "files"
    print(
        f"checked {len(files)} {noun}: {errors} error{'s' if errors != 1 else ''}, "
        f"{warnings} warning{'s' if warnings != 1 else ''}"
    )
    return 1 if errors else 0


def write_atomic(path: str, text: str) -> None:
    """Replace ``path`` with ``text``: temporary file in the same folder, fsync, os.replace."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        mode = os.stat(path).st_mode & 0o777
        fd, tmp = tempfile.mkstemp(prefix=".qvaf-fmt-", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise PathError(f"cannot write '{path}': {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise PathError(f"cannot write '{path}': {exc.strerror or exc}") from None


def run_fmt(args) -> int:
    from qvaf.dsl.fmt import format_module
    from qvaf.dsl.parser import parse
    from qvaf.dsl.program import read_source

    failed = False
    changed = []
    for path in args.paths:
        try:
            text = read_source(path)
            formatted = format_module(parse(text, path))
        except SpecError as exc:
            print("\n".join(d.render() for d in exc.diagnostics), file=sys.stderr)
            failed = True
            continue
        if args.check:
            if formatted != text:
                changed.append(path)
                print(f"would reformat {path}")
        elif args.write:
            if formatted != text:
                write_atomic(path, formatted)
                changed.append(path)
                print(f"reformatted {path}")
        else:
            sys.stdout.write(formatted)
    if args.check and not failed:
        total = len(args.paths)
        print(f"{len(changed)} of {total} file{'s' if total != 1 else ''} would be reformatted")
    return 1 if failed or (args.check and changed) else 0
