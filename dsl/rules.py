"""The language's fixed vocabulary: gates, observables, functions, initialisers, argument
types, options, base functions and reserved names.

One table per concept. The checker, the formatter, the compiler (its op enum, lowering and
``verify``) and the backends (base functions, readouts) derive theirs from these; a word the
language gains is added here first.
"""

from __future__ import annotations

#: gate name -> number of angle arguments
GATES: dict[str, int] = {
    "h": 0,
    "x": 0,
    "y": 0,
    "z": 0,
    "s": 0,
    "sdg": 0,
    "t": 0,
    "tdg": 0,
    "sx": 0,
    "rx": 1,
    "ry": 1,
    "rz": 1,
    "phase": 1,
    "u3": 3,
}
#: the axes of ``encode(angle, axis)`` and the values of an ``axis`` argument
AXES = ("x", "y", "z")
#: readouts of ``measure``; ``inspired`` is the simulator-only |alpha| - |beta|
OBSERVABLES = ("z", "x", "y", "inspired")
#: scalar functions of expressions (angles and compile-time values), each of one argument
FUNCTIONS = ("sin", "cos", "tan", "asin", "acos", "atan", "exp", "log", "sqrt", "tanh")
#: binary operators of expressions
OPERATORS = ("+", "-", "*", "/", "**")
#: random initialiser -> its arguments (``~ normal(mu, sigma)``)
INITIALISERS: dict[str, tuple[str, ...]] = {"normal": ("mu", "sigma"), "uniform": ("a", "b"), "xavier": ()}
#: argument types of ansätze and models
ARG_TYPES = ("int", "float", "axis")
#: kan-layer options, and those whose values are words (``base silu``) not expressions (``group 3``)
OPTIONS = ("base", "postact", "group")
WORD_OPTIONS = ("base", "postact")
#: values of ``base`` (the residual branch's function); the default of a kan layer is silu
BASES = ("silu", "gelu", "tanh", "relu", "identity", "none")
DEFAULT_BASE = "silu"
#: values of ``postact``
POSTACTS = ("weight", "bias")
#: arrays the compiler adds to a kan layer, in parameter-table order after the ansatz's own
KAN_ARRAYS = ("postact_weight", "postact_bias", "base_weight", "mask")
#: arrays of a linear layer
LINEAR_ARRAYS = ("weight", "bias")
#: per-layer array names an ansatz may not declare
RESERVED = KAN_ARRAYS + LINEAR_ARRAYS
#: words the grammar uses as keywords
KEYWORDS = frozenset(
    {
        "ansatz",
        "model",
        "import",
        "param",
        "const",
        "grow",
        "encode",
        "for",
        "in",
        "measure",
        "noise",
        "input",
        "kan",
        "linear",
        "using",
    }
)


def option_hint() -> str:
    """The one-line summary of the kan-layer options, as help text shows it."""
    return f"options: base {'|'.join(BASES)}, postact {' '.join(POSTACTS)} (either or both), group G"
