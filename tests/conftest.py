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
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import tomllib
from pathlib import Path

import jax
from hypothesis import settings

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
