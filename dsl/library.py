"""The bundled ansatz library, as the checker's hints see it.

The library's files live in ``specs/ansatz/`` next to this package (``qvaf/specs`` in a wheel,
``specs/`` in a checkout); each file ``NAME.qvaf`` defines the ansatz ``NAME``. A spec that
uses an ansatz it has not imported gets the import line to write.
"""

from __future__ import annotations

import difflib
import os


def library_dir() -> str | None:
    """The bundled ``specs/ansatz`` folder, or None when it is not installed."""
    folder = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "specs", "ansatz"))
    return folder if os.path.isdir(folder) else None


def bundled_ansatze() -> dict[str, str]:
    """Bundled ansatz name -> its file."""
    folder = library_dir()
    if folder is None:
        return {}
    return {f[:-5]: os.path.join(folder, f) for f in sorted(os.listdir(folder)) if f.endswith(".qvaf")}


def import_line(target: str, importing_file: str | None) -> str:
    """``import "../ansatz/pz.qvaf"``: relative to the importing file when that is short,
    absolute otherwise."""
    path = os.path.abspath(target)
    if importing_file and not importing_file.startswith("<"):
        here = os.path.dirname(os.path.abspath(importing_file))
        rel = os.path.relpath(path, here)
        if os.path.commonpath([path, here]) != os.sep and rel.split(os.sep).count(os.pardir) <= 2:
            path = rel
    return f'import "{path}"'


def missing_ansatz_hint(name: str, known, importing_file: str | None) -> tuple[str, str | None]:
    """(message suffix, hint) for a kan layer using an ansatz ``name`` no loaded file defines.

    The closest name among the ansätze already visible (``known``) and the bundled library
    wins; a bundled one comes with the import line that makes it visible.
    """
    bundled = bundled_ansatze()
    choices = sorted(set(known) | set(bundled))
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if close and close[0] in known:
        return f"; did you mean '{close[0]}'?", None
    if close:
        return (f"; did you mean '{close[0]}'?",
                f"'{close[0]}' is in the bundled library: {import_line(bundled[close[0]], importing_file)}")
    visible = f"known ansaetze: {', '.join(sorted(known))}; " if known else ""
    if not bundled:
        return "", (visible + "import the file that defines it") if visible else "import the file that defines it"
    example = "pz" if "pz" in bundled else next(iter(bundled))
    return "", (f"{visible}bundled: {', '.join(bundled)} (e.g. {import_line(bundled[example], importing_file)})")
