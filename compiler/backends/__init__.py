"""Backends, registered by name.

Each backend is a module exposing ``build(graph, dtype) -> functions`` where ``functions``
has ``apply(params, x)``, ``layer_inputs(params, x)`` and ``edge_values(params, x, layer_id)``.
Modules are imported on first use, so heavy optional dependencies (PennyLane for the
reference backend) load only when that backend is asked for; a missing one raises a
:class:`~qvaf.QvafError` with the install command.

A new backend is one row in each table: its module in :data:`BACKENDS`, and in
:data:`REQUIRES` the packages it imports with the pinned requirement that provides each.
"""

from __future__ import annotations

import importlib
import importlib.util

from qvaf.dsl.errors import QvafError

#: backend name -> module implementing it
BACKENDS = {
    "jax": "qvaf.compiler.backends.jax_backend",
    "reference": "qvaf.compiler.backends.reference",
    "catalyst": "qvaf.compiler.backends.catalyst_backend",
}

#: backend name -> {top-level package it imports: the pip requirement that installs it}
REQUIRES = {
    "jax": {"jax": "jax==0.7.1"},
    "reference": {"jax": "jax==0.7.1", "pennylane": "pennylane==0.45.1"},
    "catalyst": {"jax": "jax==0.7.1", "pennylane": "pennylane==0.45.1", "catalyst": "pennylane-catalyst==0.15.0",
                 "pennylane_lightning": "pennylane-lightning==0.45.0"},
}


def _missing(name: str, package: str) -> QvafError:
    requirement = REQUIRES.get(name, {}).get(package, package)
    return QvafError(f"the {name!r} backend needs the package {package!r}; install it with: pip install '{requirement}'")


def get_backend(name: str):
    """The backend module registered as ``name``.

    Raises:
        QvafError: for an unknown name (listing the valid ones) or a missing dependency
            (naming the package and how to install it).
    """
    if name not in BACKENDS:
        raise QvafError(f"unknown backend {name!r}; available backends: {', '.join(BACKENDS)}")
    for package in REQUIRES.get(name, {}):
        if importlib.util.find_spec(package) is None:
            raise _missing(name, package)
    try:
        return importlib.import_module(BACKENDS[name])
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top in REQUIRES.get(name, {}):
            raise _missing(name, top) from exc
        raise


__all__ = ["BACKENDS", "REQUIRES", "get_backend"]
