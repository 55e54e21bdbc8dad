"""qvaf: a differentiable compiler for quantum variational activation functions.

Public API (heavy dependencies are imported only when used)::

    import jax, qvaf
    spec = qvaf.load("specs/models/regression.qvaf")
    model = qvaf.compile(spec, model="regression")
    params = model.init(jax.random.PRNGKey(0))
    y = model.apply(params, x)

Compile options: ``qvaf.CompileOptions``. Training and layer extension: ``qvaf.fit``,
``qvaf.TrainConfig``, ``qvaf.evaluate``, noise models ``qvaf.NoiseModel``, ``qvaf.load_task``, ``qvaf.extend``; hybrid blocks:
``qvaf.hqkan``; saving: ``qvaf.save(dir, model, params)`` and ``model, params =
qvaf.restore(dir)``; OpenQASM export and execution: ``qvaf.hardware``. Exploring designs: exact
spectra ``qvaf.network_spectra`` (``qvaf.Spectrum``), formulas ``qvaf.network_formula``,
attribution and pruning ``qvaf.attribute``, ``qvaf.prune_run``, comparison ``qvaf.compare``.
Flax NNX and Equinox modules: :mod:`qvaf.nnx`, :mod:`qvaf.eqx`.
"""

import importlib

from qvaf.dsl.errors import QvafError

__version__ = "0.1.0"

#: public name -> module defining it, imported on first access (keeps ``import qvaf`` light)
_LAZY = {
    "load": "qvaf._api",
    "compile": "qvaf._api",
    "Compiled": "qvaf._api",
    "CompileOptions": "qvaf.compiler.options",
    "NoiseModel": "qvaf.compiler.noise",
    "extend": "qvaf.runtime.extend",
    "hqkan": "qvaf.runtime.hqkan",
    "HQKAN": "qvaf.runtime.hqkan",
    "fit": "qvaf.runtime.train",
    "TrainConfig": "qvaf.runtime.train",
    "evaluate": "qvaf.runtime.train",
    "load_task": "qvaf.runtime.data",
    "save": "qvaf.runtime.saving",
    "restore": "qvaf.runtime.saving",
    "Spectrum": "qvaf.compiler.spectrum",
    "network_spectra": "qvaf.compiler.spectrum",
    "network_formula": "qvaf.runtime.formula",
    "attribute": "qvaf.runtime.prune",
    "prune_run": "qvaf.runtime.prune",
    "compare": "qvaf.runtime.compare",
}

#: public submodules, imported on first access
_SUBMODULES = ("hardware",)

__all__ = ["QvafError", "__version__", *_LAZY, *_SUBMODULES]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"qvaf.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'qvaf' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))
