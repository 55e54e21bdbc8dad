"""The qvaf compiler: lowering (AST -> IR graph), passes, verification and analyses.

Pipeline stages, each in its own module::

    lower.py     lower_model / lower_ansatz: checked AST -> networkx graph of IR records (ir.py)
    passes.py    PIPELINE of pure graph -> graph passes, run_pipeline
    verify.py    verify(graph): the IR's invariants
    analysis.py  stats (per-layer counts, frequency spectrum), unused_params
    growth.py    check_growth: whether layer extension keeps the function (from the circuit)
    spectrum.py  network_spectra: the exact Fourier series of every edge activation
    options.py   CompileOptions: every option of qvaf.compile; the precision rule
    backends/    executors of the IR (jax, reference, ...)
    emit/        OpenQASM 3 and 2 programs of edge circuits in native gate sets

The names below load with their module on first use, so that importing one stage (the
options, say) does not import them all.
"""

import importlib

#: public name -> module defining it
_LAZY = {
    "CompileError": ".errors",
    "IRError": ".errors",
    "LayerStats": ".analysis",
    "UnusedParam": ".analysis",
    "stats": ".analysis",
    "unused_params": ".analysis",
    "lower_ansatz": ".lower",
    "lower_model": ".lower",
    "PIPELINE": ".passes",
    "run_pipeline": ".passes",
    "format_graph": ".printer",
    "verify": ".verify",
    "CompileOptions": ".options",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'qvaf.compiler' has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
