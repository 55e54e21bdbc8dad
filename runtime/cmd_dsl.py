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


def run_check(args) -> int:
    from qvaf.dsl.program import check

    files, diagnostics = collect_files(args.paths)
    seen: set[tuple] = set()
    unique: list[Diagnostic] = list(diagnostics)
    for path in files:
        for d in check(path):
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
