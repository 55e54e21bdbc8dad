"""The qvaf intermediate representation.

Two levels, one op enum:

* the **network graph**: a ``networkx.DiGraph`` whose nodes carry immutable records
  (:class:`InputNode`, :class:`KanNode`, :class:`LinearNode`, :class:`OutputNode`) under the
  node attribute ``"op"``, chained input -> layers -> output; the graph attribute
  ``"params"`` holds the :class:`ParamSpec` table and ``"name"`` the model's name.
* the **circuit IR** inside each :class:`KanNode`: a :class:`Circuit` of single-qubit
  :class:`GateOp` records whose angles are symbolic :mod:`~qvaf.compiler.expr` expressions of
  the edge's parameters and of the edge input ``x``, possibly wrapped in :class:`LoopOp`
  (before unrolling) or gathered into :class:`FusedOp` blocks (data-free stretches), with
  :class:`NoiseOp` marks where the spec places noise (until ``drop_noise_marks``).

networkx is only the container: every record is a frozen dataclass, passes build new records.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Union

from qvaf.dsl import rules

from .expr import Expr


class Op(enum.Enum):
    """Every operation the IR knows, graph nodes and gates alike."""

    # network graph
    INPUT = "input"
    KAN = "kan"
    LINEAR = "linear"
    OUTPUT = "output"
    # circuit structure
    LOOP = "loop"
    FUSED = "fused"
    NOISE = "noise"
    # named gates (canonicalised away into rotations by a pass)
    H = "h"
    X = "x"
    Y = "y"
    Z = "z"
    S = "s"
    SDG = "sdg"
    T = "t"
    TDG = "tdg"
    SX = "sx"
    PHASE = "phase"
    U3 = "u3"
    # rotations exp(-i angle sigma / 2): what every gate becomes, up to global phase
    RX = "rx"
    RY = "ry"
    RZ = "rz"


#: Number of angle arguments each gate takes (the language's gate table, dsl/rules.py).
GATE_ARITY = {Op(name): arity for name, arity in rules.GATES.items()}
ROTATIONS = {Op.RX: "x", Op.RY: "y", Op.RZ: "z"}
ROTATION_OF_AXIS = {axis: op for op, axis in ROTATIONS.items()}
#: Readouts: Pauli expectations, and the reference's non-physical |alpha| - |beta|.
OBSERVABLES = rules.OBSERVABLES


@dataclass(frozen=True)
class GateOp:
    """One gate; ``angles`` has ``GATE_ARITY[op]`` expressions."""

    op: Op
    angles: tuple[Expr, ...] = ()
    span: object = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class LoopOp:
    """``for var in start..stop { body }`` with integer bounds known at compile time."""

    var: str
    start: int
    stop: int
    body: tuple["CircuitOp", ...]
    op: Op = field(default=Op.LOOP, init=False)


@dataclass(frozen=True)
class FusedOp:
    """A data-free stretch of rotations applied as one SO(3) matrix per edge.

    The matrix depends only on parameters: backends compute it once per call per edge.
    """

    gates: tuple[GateOp, ...]
    op: Op = field(default=Op.FUSED, init=False)


@dataclass(frozen=True)
class NoiseOp:
    """A ``noise`` statement: where a noise model placed ``where="spec"`` applies one step.

    It is no gate: the state passes unchanged without such a model. The ``drop_noise_marks``
    pass removes it, so it lives in the circuits as written (what noisy simulation runs) and
    never reaches the optimised kernels.
    """

    span: object = field(default=None, compare=False, repr=False)
    op: Op = field(default=Op.NOISE, init=False)


CircuitOp = Union[GateOp, LoopOp, FusedOp, NoiseOp]


@dataclass(frozen=True)
class Circuit:
    """A single-qubit circuit started in |0>, applied left to right, then read out.

    ``params`` names the per-edge tensors the angles refer to (keys into the owning kan
    node's parameter dict) with their per-edge shapes.

    ``constants`` holds the ansatz's compile-time constants (``const w[reps] = 1.0``): name
    and value, a float for a scalar or nested tuples of floats with the declared shape
    (``numpy.asarray(value)`` gives the array). Angles refer to them with :class:`ParamRef`
    like to parameters, but they are not arrays of the network: the ``inline_constants`` pass
    replaces every reference by its value. A backend that runs a circuit before that pass can
    also look them up with :meth:`constant_arrays`.
    """

    ops: tuple[CircuitOp, ...]
    observable: str = "z"
    params: tuple[tuple[str, tuple[int, ...]], ...] = ()
    constants: tuple[tuple[str, object], ...] = ()

    def constant_arrays(self) -> dict:
        """The compile-time constants as float64 numpy arrays, keyed by name."""
        import numpy as np

        return {name: np.asarray(value, dtype=np.float64) for name, value in self.constants}


@dataclass(frozen=True)
class Init:
    """A parameter initialiser: ``constant(v)``, ``normal(mu, sigma)``, ``uniform(a, b)``,
    ``xavier()``, ``zeros()``, ``ones()``."""

    kind: str
    args: tuple[float, ...] = ()


#: initialiser kind -> number of arguments: the language's random ones and the compiler's own
INIT_KINDS = {"constant": 1, "zeros": 0, "ones": 0, **{k: len(v) for k, v in rules.INITIALISERS.items()}}


@dataclass(frozen=True)
class ParamSpec:
    """One row of the parameter table.

    ``owner`` is the graph node that reads it (``"layer0"``); ``name`` is its key in that
    layer's dict (``"theta"``, ``"postact_weight"``, ``"weight"``). ``shape`` is the full
    array shape (per-edge tensors carry the leading ``[out, in]`` or ``[groups]`` axes).
    ``grow`` is the fill value for slots added by layer extension (None: cannot grow).
    ``reps_axes`` records, for an ansatz with an int argument ``reps``, the axes of ``shape``
    whose size is ``reps + k`` as ``(axis, k)`` pairs (``theta[reps + 1, 2]`` on ``[out, in]``
    edges: ``((2, 1),)``); layer extension grows exactly these.
    """

    owner: str
    name: str
    shape: tuple[int, ...]
    init: Init
    trainable: bool
    grow: float | None = None
    reps_axes: tuple[tuple[int, int], ...] = ()

    @property
    def path(self) -> str:
        return f"{self.owner}.{self.name}"


@dataclass(frozen=True)
class InputNode:
    width: int
    op: Op = field(default=Op.INPUT, init=False)


@dataclass(frozen=True)
class KanNode:
    """A KAN layer: ``out * in`` edges, each a copy of ``kernel`` with its own parameters
    (or, with ``group = g``, edge (o, i) reading group ``i mod g``).

    Layer output, with mask m, post-activation weight a and bias c, base weight beta::

        y_j = sum_i m_ji [ (phi_ji(x_i) + c_ji) a_ji + beta_ji base(x_i) ]

    ``postact_weight``/``postact_bias`` False drop a (= 1) or c (= 0); ``base`` "none" drops
    the base term.
    """

    name: str
    in_width: int
    out_width: int
    kernel: Circuit
    ansatz: str
    ansatz_args: tuple[tuple[str, object], ...]
    base: str = rules.DEFAULT_BASE
    postact_weight: bool = False
    postact_bias: bool = False
    group: int | None = None
    op: Op = field(default=Op.KAN, init=False)

    @property
    def edges(self) -> int:
        return self.in_width * self.out_width


@dataclass(frozen=True)
class LinearNode:
    """``y = x W^T + b`` with ``weight`` of shape [out, in] and ``bias`` of shape [out]."""

    name: str
    in_width: int
    out_width: int
    op: Op = field(default=Op.LINEAR, init=False)


@dataclass(frozen=True)
class OutputNode:
    width: int
    op: Op = field(default=Op.OUTPUT, init=False)


GraphNode = Union[InputNode, KanNode, LinearNode, OutputNode]


# ----------------------------------------------------------------------------- layer arrays


@dataclass(frozen=True)
class LayerArray:
    """One array of a layer's parameter dict, as the layer's structure fixes it.

    ``per_edge`` marks a copy of one of the ansatz's arrays for every edge (``[out, in,
    *shape]``) or every group (``[G, *shape]``); its initialiser, trainability and growth
    come from the ansatz's declaration, so ``init`` and ``trainable`` are None. The arrays
    the compiler adds carry their own ``init`` and ``trainable``.
    """

    name: str
    shape: tuple[int, ...]
    per_edge: bool
    init: Init | None = None
    trainable: bool | None = None


_POSTACT_WEIGHT, _POSTACT_BIAS, _BASE_WEIGHT, _MASK = rules.KAN_ARRAYS
_WEIGHT, _BIAS = rules.LINEAR_ARRAYS


def layer_arrays(rec: "KanNode | LinearNode") -> tuple[LayerArray, ...]:
    """Every array a layer reads, in parameter-table order: the one statement of which
    arrays a layer has and their shapes (lowering, ``verify`` and initialisation use it).

    Per kan layer (``E = [out, in]`` edges, or ``[G]`` rows with ``group G``)::

        <each per-edge array of the kernel>  E + shape  the ansatz's initialiser
        postact_weight                       [out, in]  with `postact weight`; trainable, ones
        postact_bias                         [out, in]  with `postact bias`;   trainable, zeros
        base_weight                          [out, in]  unless `base none`;    trainable, normal(0, 1/sqrt(in))
        mask                                 [out, in]  fixed, ones

    and per linear layer ``weight [out, in]`` (trainable, xavier) and ``bias [out]``
    (trainable, zeros).
    """
    eo = (rec.out_width, rec.in_width)
    if isinstance(rec, LinearNode):
        return (LayerArray(_WEIGHT, eo, False, Init("xavier"), True),
                LayerArray(_BIAS, (rec.out_width,), False, Init("zeros"), True))
    lead = (rec.group,) if rec.group is not None else eo
    rows = [LayerArray(name, lead + tuple(shape), True) for name, shape in rec.kernel.params]
    if rec.postact_weight:
        rows.append(LayerArray(_POSTACT_WEIGHT, eo, False, Init("ones"), True))
    if rec.postact_bias:
        rows.append(LayerArray(_POSTACT_BIAS, eo, False, Init("zeros"), True))
    if rec.base != "none":
        rows.append(LayerArray(_BASE_WEIGHT, eo, False, Init("normal", (0.0, 1.0 / math.sqrt(rec.in_width))), True))
    rows.append(LayerArray(_MASK, eo, False, Init("ones"), False))
    return tuple(rows)
