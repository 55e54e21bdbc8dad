"""Backends, registered by name.

Each backend is a module exposing ``build(graph, dtype) -> functions`` where ``functions``
has ``apply(params, x)``, ``layer_inputs(params, x)`` and ``edge_values(params, x, layer_id)``.
Modules are imported on first use, so heavy optional dependencies (PennyLane for the
reference backend) load only when that backend is asked for; a missing one raises a
:class:`~qvaf.QvafError` with the install hint.
"""

from __future__ import annotations

import importlib
import importlib.util

from qvaf.dsl.errors import QvafError

#: backend name -> module implementing it
BACKENDS = {
    "jax": "qvaf.compiler.backends.jax_backend",
    "reference": "qvaf.compiler.backends.reference",
}

#: top-level packages a backend needs -> how to install them
INSTALL_HINTS = {
    "jax": "pip install 'jax==0.7.1' 'jaxlib==0.7.1'",
    "jaxlib": "pip install 'jaxlib==0.7.1'",
    "pennylane": "pip install 'pennylane==0.45.1'",
    "catalyst": "pip install 'pennylane-catalyst==0.15.0'",
    "qiskit": "pip install 'qiskit==2.6.2'",
}

#: packages each backend imports when it runs (checked by :func:`get_backend`)
REQUIRES = {
    "jax": ("jax",),
    "reference": ("jax", "pennylane"),
}


def get_backend(name: str):
    """The backend module registered as ``name``.

    Raises:
        QvafError: for an unknown name (listing the valid ones) or a missing dependency
            (naming the package and how to install it).
    """
    if name not in BACKENDS:
        raise QvafError(f"unknown backend {name!r}; available backends: {', '.join(BACKENDS)}")
    for package in REQUIRES.get(name, ()):
        if importlib.util.find_spec(package) is None:
            hint = INSTALL_HINTS.get(package, f"pip install {package}")
            raise QvafError(f"the {name!r} backend needs the package {package!r}; install it with: {hint}")
    try:
        return importlib.import_module(BACKENDS[name])
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top in INSTALL_HINTS:
            raise QvafError(
                f"the {name!r} backend needs the package {top!r}; install it with: {INSTALL_HINTS[top]}"
            ) from exc
        raise


__all__ = ["BACKENDS", "INSTALL_HINTS", "get_backend"]
