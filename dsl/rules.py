"""The language's fixed vocabulary: gates, observables, initialisers, options, reserved names.

One table per concept, shared by the checker, the formatter and the compiler.
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
#: readouts of ``measure``; ``inspired`` is the simulator-only |alpha| - |beta|
OBSERVABLES = ("z", "x", "y", "inspired")
#: random initialiser -> number of arguments (``~ normal(mu, sigma)``)
INITIALISERS: dict[str, int] = {"normal": 2, "uniform": 2, "xavier": 0}
#: argument types
ARG_TYPES = ("int", "float", "axis")
#: kan-layer options
OPTIONS = ("base", "postact", "group")
#: values of ``base``
BASES = ("silu", "gelu", "tanh", "relu", "identity", "none")
#: values of ``postact``
POSTACTS = ("weight", "bias")
#: per-layer array names the compiler adds; an ansatz may not declare them
RESERVED = ("postact_weight", "postact_bias", "base_weight", "mask", "weight", "bias")
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
        "input",
        "kan",
        "linear",
        "using",
    }
)
