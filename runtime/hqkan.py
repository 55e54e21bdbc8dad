"""Hybrid QKAN (HQKAN): a drop-in replacement for a transformer-style MLP block.

.. math::

    \\mathrm{HQKAN}(x) = W_2 \\, \\mathrm{QKAN}(W_1 x + b_1) + b_2, \\qquad
    W_1 \\in \\mathbb{R}^{h \\times d},\\; W_2 \\in \\mathbb{R}^{d \\times h},\\;
    h = \\lceil \\log_2 d \\rceil \\cdot k

The block is not a second implementation: :func:`hqkan` writes the DSL text of the model,
compiles it with :func:`qvaf.compile`, and wraps the result so it accepts any leading batch
shape. The same network as a spec file is ``specs/models/hqkan.qvaf``.

Example::

    block = qvaf.hqkan(d=64)                 # Linear(64 -> 12) -> QKAN(12 -> 12) -> Linear(12 -> 64)
    params = block.init(jax.random.PRNGKey(0))
    y = block.apply(params, x)               # x: [..., 64] -> y: [..., 64]
    print(block.param_count, mlp_param_count(64))   # 2,600-ish vs 33,088
"""

from __future__ import annotations

import math
import os
import re

from qvaf.dsl.errors import QvafError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class HQKANError(QvafError):
    """Bad HQKAN block options."""


def default_hidden(d: int, k: int = 2) -> int:
    """The bottleneck width ``ceil(log2 d) * k`` (at least ``k``)."""
    return max(1, math.ceil(math.log2(d))) * k if d > 1 else k


def mlp_param_count(d: int, ratio: int = 4) -> int:
    """Parameters of the MLP block an HQKAN replaces: Linear(d -> ratio d) -> Linear(-> d)."""
    h = ratio * d
    return d * h + h + h * d + d


def hqkan_source(d: int, hidden: int, *, reps: int = 1, ansatz: str = "pz", group: int | None = None,
                 base: str = "silu", postact: bool = True, ansatz_file: str | None = None) -> str:
    """The DSL text of an HQKAN block model named ``hqkan_block``."""
    for name, v in (("d", d), ("hidden", hidden), ("reps", reps)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise HQKANError(f"hqkan: {name} must be a positive integer, got {v!r}")
    if group is not None and (not isinstance(group, int) or group < 1 or group > hidden):
        raise HQKANError(f"hqkan: group must be an integer in 1..hidden ({hidden}), got {group!r}")
    if not _IDENT.match(str(ansatz)) or not _IDENT.match(str(base)):
        raise HQKANError(f"hqkan: ansatz and base must be plain names, got {ansatz!r}, {base!r}")
    if ansatz_file is None:
        from .run import specs_dir

        ansatz_file = os.path.join(specs_dir(), "ansatz", f"{ansatz}.qvaf")
        if not os.path.isfile(ansatz_file):
            have = sorted(f[:-5] for f in os.listdir(os.path.dirname(ansatz_file)) if f.endswith(".qvaf"))
            raise HQKANError(f"hqkan: no bundled ansatz '{ansatz}'; bundled: {', '.join(have)} "
                             f"(or pass ansatz_file= with your own spec)")
    path = os.path.abspath(ansatz_file)
    if '"' in path or "\n" in path:
        raise HQKANError(f"hqkan: cannot import a spec path containing quotes or newlines: {path!r}")
    options = [f"base {base}"] + ([f"group {group}"] if group else []) + (["postact weight bias"] if postact else [])
    return (f'import "{path}"\n\n'
            f"model hqkan_block {{\n"
            f"    input {d}\n"
            f"    linear {hidden}\n"
            f"    kan {hidden} using {ansatz}(reps = {reps}) {{ {'; '.join(options)} }}\n"
            f"    linear {d}\n"
            f"}}\n")


class HQKAN:
    """A compiled HQKAN block with the model protocol (``init``, ``apply``, ``trainable``).

    Attributes:
        d, hidden: outer and bottleneck widths.
        compiled: the underlying :class:`qvaf.Compiled` (its IR, parameter table, QASM...).
        source: the DSL text it was compiled from.
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

    def __repr__(self) -> str:
        return (f"HQKAN(d={self.d}, hidden={self.hidden}, params={self.param_count}; "
                f"MLP(d, 4d, d) has {self.mlp_param_count()})")


def hqkan(d: int, hidden: int | None = None, *, k: int = 2, reps: int = 1, ansatz: str = "pz",
          group: int | None = None, base: str = "silu", postact: bool = True, ansatz_file: str | None = None,
          dtype: str = "float32") -> HQKAN:
    """Build an HQKAN block: Linear(d -> hidden) -> QKAN(hidden -> hidden) -> Linear(hidden -> d).

    Args:
        d: the model width (input and output).
        hidden: bottleneck width; default ``ceil(log2 d) * k``.
        k: bottleneck multiplier for the default ``hidden``.
        reps: data re-uploads of the QKAN layer's ansatz.
        ansatz: a bundled ansatz name (``pz``, ``rpz``, ``daruan``, ...) or, with
            ``ansatz_file``, the name of an ansatz defined in that file.
        group: share circuits over this many input groups (edge (o, i) uses i mod group).
        base: base function of the kan layer (``silu`` or ``none``).
        postact: trainable post-activation weight and bias per edge.
        dtype: ``float32`` or ``float64``.
    """
    import qvaf
    from qvaf.dsl import program_from_text

    hidden = default_hidden(d, k) if hidden is None else hidden
    text = hqkan_source(d, hidden, reps=reps, ansatz=ansatz, group=group, base=base, postact=postact,
                        ansatz_file=ansatz_file)
    program = program_from_text(text, filename="<hqkan>")
    compiled = qvaf.compile(program, "hqkan_block", dtype=dtype)
    return HQKAN(compiled, text, d, hidden)
