"""Every option of :func:`qvaf.compile`, in one frozen dataclass, and the precision rule.

Precision: qvaf never changes JAX's global configuration. A float32 model computes in float32
with explicit dtypes throughout, so its results are the same bit for bit whether JAX's 64-bit
mode (``jax_enable_x64``) is on or off. A float64 model needs that mode on, and asking for one
while it is off is an error that says how to turn it on, at the start of the program::

    import jax
    jax.config.update("jax_enable_x64", True)     # or run with JAX_ENABLE_X64=1

Example::

    options = CompileOptions(dtype=jnp.float64, passes=("unroll_loops", "inline_constants"))
    model = qvaf.compile("specs/models/regression.qvaf", options=options)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qvaf.dsl.errors import QvafError

#: the dtypes a model computes in
DTYPES = ("float32", "float64")

X64_FIX = ("turn JAX's 64-bit mode on once at the start of the program with "
           "jax.config.update('jax_enable_x64', True), or run it with JAX_ENABLE_X64=1")


def canonical_dtype(dtype) -> str:
    """``"float32"`` or ``"float64"`` for any spelling of them: the strings, NumPy's and
    JAX's scalar types (``np.float64``, ``jnp.float32``) and ``np.dtype`` objects.

    Raises:
        QvafError: for any other dtype, naming the two that work.
    """
    name = None
    for candidate in (dtype, getattr(dtype, "dtype", None)):  # jnp.float32 is not a NumPy type
        try:
            name = np.dtype(candidate).name if candidate is not None else None
        except TypeError:
            continue
        break
    if name not in DTYPES:
        raise QvafError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)} "
                        f"(a string, a NumPy or JAX scalar type, or a numpy.dtype)")
    return name


def require_precision(dtype: str) -> None:
    """Raise unless JAX can compute in ``dtype`` in this process (float64 needs 64-bit mode).

    Raises:
        QvafError: float64 while ``jax_enable_x64`` is off, with the fix.
    """
    if dtype == "float64":
        import jax

        if not jax.config.jax_enable_x64:
            raise QvafError(f"dtype float64 needs JAX's 64-bit mode, which is off in this process: {X64_FIX} "
                            "(qvaf does not change JAX's global configuration)")


@dataclass(frozen=True)
class CompileOptions:
    """How :func:`qvaf.compile` turns a spec into a runnable network.

    Attributes:
        backend: the executor, a name of :data:`qvaf.compiler.backends.BACKENDS`: ``"jax"``
            (the Bloch-vector kernels; training), ``"catalyst"`` (Catalyst-compiled PennyLane
            programs on ``lightning.qubit``, analytic or with shots; the fidelity path, slow;
            importing catalyst turns JAX's 64-bit mode on) or ``"reference"`` (PennyLane
            ``default.qubit`` edge by edge, float64 only; an independent second opinion).
        dtype: ``"float32"`` or ``"float64"``, or any spelling :func:`canonical_dtype` takes;
            stored as the string. float64 needs JAX's 64-bit mode (see the module docstring).
        optimize: run the optimisation passes. False compiles the lowered IR as it is.
        passes: which passes of :data:`qvaf.compiler.passes.PIPELINE` to run, in order (names,
            or ``(name, function)`` pairs for experiments); None runs the whole pipeline.
            Giving passes with ``optimize=False`` is an error.
        verify_each: run :func:`qvaf.compiler.verify.verify` on the lowered IR and after every
            pass; a pass that breaks an invariant is named in the error. On by default.
        keep_ir: keep the IR after every pass on the result, as ``Compiled.stages``
            (``(name, graph)`` pairs starting with ``("lowering", graph)``).
        unroll_limit: the most top-level ops one edge circuit may unroll into after the passes
            (pz with reps R has 2R + 1). Backends trace every op, so compile time grows with
            it: about a minute and a half at 200 ops on 2 cores; a larger circuit is refused up
            front rather than compiled for an hour. None lifts the limit.
    """

    backend: str = "jax"
    dtype: str = "float32"
    optimize: bool = True
    passes: tuple | None = None
    verify_each: bool = True
    keep_ir: bool = False
    unroll_limit: int | None = 256

    def __post_init__(self):
        from . import backends

        object.__setattr__(self, "dtype", canonical_dtype(self.dtype))
        if self.backend not in backends.BACKENDS:
            raise QvafError(f"unknown backend {self.backend!r}; available backends: {', '.join(backends.BACKENDS)}")
        for name in ("optimize", "verify_each", "keep_ir"):
            if not isinstance(getattr(self, name), bool):
                raise QvafError(f"compile option {name} takes True or False, got {getattr(self, name)!r}")
        limit = self.unroll_limit
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise QvafError(f"compile option unroll_limit takes a positive int or None, got {limit!r}")
        if self.passes is not None:
            if isinstance(self.passes, str):
                raise QvafError(f"passes takes a sequence of pass names, got the string {self.passes!r}")
            if not self.optimize:
                raise QvafError("passes= chooses which optimisation passes run; it cannot go with optimize=False")
            object.__setattr__(self, "passes", tuple(self.passes))
            self.pipeline()  # unknown pass names fail here, not at compile time

    def pipeline(self) -> list:
        """The ``(name, pass)`` pairs to run, in order."""
        from .passes import PIPELINE, resolve_passes

        if not self.optimize:
            return []
        return resolve_passes(self.passes) if self.passes is not None else list(PIPELINE)
