"""Test-session setup.

The suite computes float64 models throughout, so JAX's 64-bit mode is turned on once, here,
before any test runs (qvaf's library code never touches JAX's configuration; a program that
wants float64 does what this does). Tests of behaviour without 64-bit mode run in fresh
subprocesses or inside ``jax.experimental.disable_x64()``.

Hypothesis runs derandomised (one fixed sequence of examples) so a run cannot flake; set
``HYPOTHESIS_PROFILE=explore`` locally for fresh random examples. Hypothesis also draws some
values from the constants in the local modules imported so far, so which tests ran earlier in
a worker would change the examples; every module of qvaf is imported here, first, so the
sequence is the same whatever the order, the selection or the number of workers.

Compiled XLA programs are kept in JAX's persistent compilation cache, in
``.pytest_cache/d/jax-compilation-cache``: the two workers and every subprocess a test starts
share it through the environment, so a program compiles once per run, and a second run of an
unchanged tree skips most of its compilations. The cache is keyed by the program and the
JAX/XLA versions and flags, so an executable loaded from it is the one a fresh compilation
would build. ``pytest --cache-clear`` empties it with the rest of pytest's cache; past
``qvaf.runtime.compile_cache.LIMIT_BYTES`` a run starts by deleting its oldest entries.
``QVAF_TEST_COMPILE_CACHE=off`` runs without it (a cold measurement), a path puts it elsewhere.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import tomllib
from pathlib import Path


def _share_a_compilation_cache() -> None:
    """Point JAX (this process and every subprocess, the ``qvaf`` command included) at the test
    session's compilation cache, through JAX's environment variables, before JAX is imported."""
    from qvaf.runtime import compile_cache

    folder = os.environ.get("QVAF_TEST_COMPILE_CACHE")
    if folder == "off":
        return
    root = Path(__file__).resolve().parents[1]
    folder = folder or str(root / ".pytest_cache" / "d" / "jax-compilation-cache")
    # every program is kept: the suite compiles thousands of small ones
    environ = {"QVAF_COMPILE_CACHE": folder, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    if os.environ.get("PYTEST_XDIST_WORKER", "gw0") != "gw0":  # one process of the run trims it
        environ["JAX_COMPILATION_CACHE_DIR"] = folder
    compile_cache.configure(environ)
    for name in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"):
        if name in environ:
            os.environ.setdefault(name, environ[name])


_share_a_compilation_cache()

import jax  # noqa: E402 - after the cache's environment is set
from hypothesis import settings  # noqa: E402

jax.config.update("jax_enable_x64", True)


def _import_every_module() -> None:
    root = Path(__file__).resolve().parents[1]
    with open(root / "pyproject.toml", "rb") as fh:
        folders = tomllib.load(fh)["tool"]["setuptools"]["package-dir"]  # package -> its folder
    for package, folder in folders.items():
        if not (root / folder / "__init__.py").is_file():  # data only (qvaf.specs)
            continue
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, package + "."):
            if info.name.rsplit(".", 1)[-1] == "__main__":
                continue
            try:
                importlib.import_module(info.name)
            except ImportError:  # an optional dependency is missing: the same in every worker
                pass


_import_every_module()

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
