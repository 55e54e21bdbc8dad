"""Compiled programs kept between runs of the ``qvaf`` command: JAX's persistent compilation cache.

A fit's start-up is mostly XLA compiling its training program (one to a few seconds on a CPU);
with the cache, the second ``qvaf train`` of a spec or a resumed run loads the program
instead (an ``eval`` compiles only small programs and gains little). The cache is keyed by the program and the JAX/XLA versions and
flags, so a loaded executable is the one a fresh compilation would build: results are the same
bit for bit.

``QVAF_COMPILE_CACHE`` chooses the folder: unset, ``$XDG_CACHE_HOME/qvaf/xla`` (or
``~/.cache/qvaf/xla``); ``off``, no cache. A ``JAX_COMPILATION_CACHE_DIR`` the user has set wins
over both. Programs that compile in under :data:`MIN_COMPILE_SECONDS` are not kept. Past
:data:`LIMIT_BYTES` a command starts by deleting the oldest entries, down to half of it
("oldest" by when they were written: JAX does not touch a file it reads).

Only the command line turns this on (it owns its process; it does so through JAX's environment
variables, before JAX is imported); the library never does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import MutableMapping

#: the cache folder's size past which the oldest entries are deleted (down to half of it)
LIMIT_BYTES = 1 << 30
#: programs that compile faster than this are not worth a file
MIN_COMPILE_SECONDS = 0.25


def default_folder(environ: MutableMapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME/qvaf/xla``, or ``~/.cache/qvaf/xla`` without it."""
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "qvaf" / "xla"


def configure(environ: MutableMapping[str, str] = os.environ, limit: int = LIMIT_BYTES) -> Path | None:
    """Point JAX at the compilation cache through ``environ`` (read when JAX is imported) and
    trim it; a minimum compile time already in ``environ`` is kept. Returns the folder, or None
    when the cache is off or its folder cannot be written (commands then compile as usual)."""
    if environ.get("JAX_COMPILATION_CACHE_DIR"):
        return Path(environ["JAX_COMPILATION_CACHE_DIR"])
    choice = environ.get("QVAF_COMPILE_CACHE", "").strip()
    if choice.lower() == "off":
        return None
    folder = Path(choice) if choice else default_folder(environ)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK | os.X_OK):
            return None
    except OSError:  # a file in its place, a read-only home
        return None
    trim(folder, limit)
    environ["JAX_COMPILATION_CACHE_DIR"] = str(folder)
    environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", str(MIN_COMPILE_SECONDS))
    return folder


def trim(folder: Path, limit: int) -> None:
    """Delete the oldest files of ``folder`` (by modification time) down to ``limit // 2`` bytes,
    when it holds more than ``limit``."""
    try:
        files = [e for e in Path(folder).iterdir() if e.is_file()]
        entries = sorted((e.stat().st_mtime, e.stat().st_size, e) for e in files)
    except OSError:  # no folder yet, or one that cannot be listed
        return
    total = sum(size for _, size, _ in entries)
    if total <= limit:
        return
    for _, size, entry in entries:
        if total <= limit // 2:
            break
        try:
            entry.unlink()
        except OSError:  # gone already (another process trimmed it) or not ours to delete
            pass
        total -= size
