"""The qvaf compiler: lowering (AST -> IR graph), passes, verification and analyses.

Pipeline stages, each in its own module::

    lower.py     lower_model / lower_ansatz: checked AST -> networkx graph of IR records (ir.py)
    passes.py    PIPELINE of pure graph -> graph passes, run_pipeline
    verify.py    verify(graph): the IR's invariants
    analysis.py  stats (per-layer counts, frequency spectrum), unused_params
    spectrum.py  network_spectra: the exact Fourier series of every edge activation
    backends/    executors of the IR (jax, reference, ...)
    emit/        OpenQASM 3 and 2 programs of edge circuits in native gate sets
"""

from .analysis import LayerStats, UnusedParam, stats, unused_params
from .errors import CompileError, IRError
from .lower import lower_ansatz, lower_model
from .passes import PIPELINE, run_pipeline
from .printer import format_graph
from .verify import verify

__all__ = [
    "CompileError",
    "IRError",
    "LayerStats",
    "PIPELINE",
    "UnusedParam",
    "format_graph",
    "lower_ansatz",
    "lower_model",
    "run_pipeline",
    "stats",
    "unused_params",
    "verify",
]
