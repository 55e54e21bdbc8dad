"""Hybrid QKAN (HQKAN): a drop-in replacement for a transformer-style MLP block.

.. math::

    \\mathrm{HQKAN}(x) = W_2 \\, \\mathrm{QKAN}(W_1 x + b_1) + b_2, \\qquad
    W_1 \\in \\mathbb{R}^{h \\times d},\\; W_2 \\in \\mathbb{R}^{d \\times h},\\;
    h = \\lceil \\log_2 d \\rceil \\cdot k

The block is the bundled spec ``specs/models/hqkan.qvaf`` (model ``hqkan_ffn``): :func:`hqkan`
compiles that file with :func:`qvaf.compile`, setting its arguments ``d``, ``k``, ``hidden``,
``reps`` and ``group``, and wraps the result so it accepts any leading batch shape. A
different ansatz, base function or post-activation is a copy of that file with its ``kan``
line edited, passed as ``spec=``.

Example::

    block = qvaf.hqkan(d=64)                 # Linear(64 -> 12) -> QKAN(12 -> 12) -> Linear(12 -> 64)
    params = block.init(jax.random.PRNGKey(0))
    y = block.apply(params, x)               # x: [..., 64] -> y: [..., 64]
    print(block.param_count, mlp_param_count(64))   # 2056 vs 33088
"""

from __future__ import annotations

import math
import os

from qvaf.dsl.errors import QvafError

#: the bundled spec (relative to the specs folder) and its model
SPEC = os.path.join("models", "hqkan.qvaf")
MODEL = "hqkan_ffn"
#: groups of shared circuits in the QKAN layer when not given (capped at the bottleneck width)
DEFAULT_GROUP = 3


class HQKANError(QvafError):
    """Bad HQKAN block options."""


def default_hidden(d: int, k: int = 2) -> int:
    """The bottleneck width ``ceil(log2 d) * k`` (at least ``k``)."""
    return max(1, math.ceil(math.log2(d))) * k if d > 1 else k


def mlp_param_count(d: int, ratio: int = 4) -> int:
    """Parameters of the MLP block an HQKAN replaces: Linear(d -> ratio d) -> Linear(-> d)."""
    h = ratio * d
    return d * h + h + h * d + d


def _unknown_option(name: str):
    import difflib

    options = ["hidden", "k", "reps", "group", "spec", "dtype"]
    if name in ("ansatz", "base", "postact", "ansatz_file"):
        raise HQKANError(f"hqkan: the {name} is set in the spec: copy specs/models/hqkan.qvaf, edit its kan line, "
                         f"and pass it as spec=")
    close = difflib.get_close_matches(name, options, n=1)
    raise HQKANError(f"hqkan has no option '{name}'" + (f"; did you mean '{close[0]}'?" if close else
                                                        f"; options: {', '.join(options)}"))


def _positive(name: str, v) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise HQKANError(f"hqkan: {name} must be a positive integer, got {v!r}")
    return v


class HQKAN:
    """A compiled HQKAN block with the model protocol (``init``, ``apply``, ``trainable``).

    Attributes:
        d, hidden: outer and bottleneck widths.
        compiled: the underlying :class:`qvaf.Compiled` (its IR, parameter table, QASM...).
        source: the text of the spec file it was compiled from.
    """

    def __init__(self, compiled, source: str, d: int, hidden: int):
        self.compiled = compiled
        self.source = source
        self.d = d
        self.hidden = hidden

    # model protocol -------------------------------------------------------------
    def init(self, key):
        return self.compiled.init(key)

    @property
    def trainable(self):
        return self.compiled.trainable

    def apply(self, params, x):
        """``x`` of shape ``[..., d]`` to ``[..., d]``; pure, jit-, grad- and vmap-able."""
        import jax.numpy as jnp

        x = jnp.asarray(x)
        lead = x.shape[:-1]
        if x.shape[-1] != self.d:
            raise HQKANError(f"hqkan block expects inputs [..., {self.d}], got {tuple(x.shape)}")
        y = self.compiled.apply(params, x.reshape((-1, self.d)))
        return y.reshape(lead + (self.d,))

    __call__ = apply

    # reporting ------------------------------------------------------------------
    @property
    def param_count(self) -> int:
        return self.compiled.param_count

    @property
    def dtype(self) -> str:
        return self.compiled.dtype

    def mlp_param_count(self, ratio: int = 4) -> int:
        return mlp_param_count(self.d, ratio)

    def summary(self) -> str:
        """The per-layer table of the block (see :meth:`qvaf.Compiled.summary`)."""
        return self.compiled.summary() + f"\nthe MLP block it replaces, Linear({self.d} -> {4 * self.d}) -> " \
            f"Linear(-> {self.d}), has {self.mlp_param_count()} parameters"

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"HQKAN(d={self.d}, hidden={self.hidden}, params={self.param_count}; "
                f"MLP(d, 4d, d) has {self.mlp_param_count()})")


def hqkan(d: int, hidden: int | None = None, *, k: int = 2, reps: int = 1, group: int | None = None,
          spec: str | None = None, dtype: str = "float32", **unknown) -> HQKAN:
    """Build an HQKAN block: Linear(d -> hidden) -> QKAN(hidden -> hidden) -> Linear(hidden -> d).

    Args:
        d: the model width (input and output).
        hidden: bottleneck width; default ``ceil(log2 d) * k``.
        k: bottleneck multiplier for the default ``hidden``.
        reps: data re-uploads of the QKAN layer's ansatz.
        group: share circuits over this many input groups (edge (o, i) uses i mod group);
            default 3 (or ``hidden`` when smaller), as in the bundled spec.
        spec: a ``.qvaf`` file to use instead of the bundled ``specs/models/hqkan.qvaf``;
            its model's arguments among ``d``, ``k``, ``hidden``, ``reps``, ``group`` are set.
        dtype: ``float32`` or ``float64``.

    Raises:
        HQKANError: a width, ``reps`` or ``group`` that is not a positive integer, or a
            ``spec`` whose model does not take ``d`` and ``hidden``.
    """
    import qvaf
    from qvaf._specs import pick_model, specs_dir

    if unknown:
        _unknown_option(next(iter(unknown)))
    _positive("d", d)
    _positive("k", k)
    hidden = default_hidden(d, k) if hidden is None else _positive("hidden", hidden)
    _positive("reps", reps)
    group = min(DEFAULT_GROUP, hidden) if group is None else _positive("group", group)
    if group > hidden:
        raise HQKANError(f"hqkan: group must be an integer in 1..hidden ({hidden}), got {group}")
    path = spec if spec is not None else os.path.join(specs_dir(), SPEC)
    program = qvaf.load(path)
    name = MODEL if spec is None else pick_model(program, None)
    if name is None:
        raise HQKANError(f"hqkan: {path} defines no model")
    declared = {a.name for a in program.models[name].args}
    if not {"d", "hidden"} <= declared:
        raise HQKANError(f"hqkan: model {name} of {path} must take the arguments d and hidden "
                         f"(it takes {', '.join(sorted(declared)) or 'none'})")
    given = {"d": d, "k": k, "hidden": hidden, "reps": reps, "group": group}
    compiled = qvaf.compile(program, name, args={a: v for a, v in given.items() if a in declared}, dtype=dtype)
    return HQKAN(compiled, program.sources[program.path], d, hidden)
