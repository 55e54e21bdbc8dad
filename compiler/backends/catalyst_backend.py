r"""The catalyst backend: every edge circuit as a PennyLane program compiled by Catalyst
(``qml.qjit``) for ``lightning.qubit``, the fidelity path.

Each kan layer's circuit is written gate by gate from the IR as PennyLane operations (the
reference backend's gate catalogue) and measured with ``qml.expval``. Catalyst compiles one
program per circuit *signature* (the gate sequence and the readout), batched over rows

.. math::

    v = (\alpha_1, \dots, \alpha_A) \in \mathbb{R}^A,

one row per (sample, edge): the circuit's gate angles in gate order, which JAX evaluates from
the edge's own parameters and input (with ``group g`` edge (o, i) reads row ``i mod g``). The
rows run in a ``catalyst.for_loop`` whose length is a dynamic dimension (``abstracted_axes``),
so one compilation serves every batch size; parameters are arguments, so new values never
recompile, and layers (or models) with equal signatures share one program. The programs:

* ``value``: ``<O>`` per row, analytic; with ``shots=S`` the mean of S measurements on a
  device with that many shots (one program per S);
* ``value_and_grad``: ``catalyst.value_and_grad`` of the circuit per row (adjoint method),
  giving ``<O>`` and ``d<O>/dv``.

The chain rule is assembled in JAX, outside Catalyst: a ``jax.custom_vjp`` maps the output
cotangent to the angles, :math:`\bar v_{boi} = \bar\varphi_{boi}\, \partial\varphi_{boi}/\partial v`,
and JAX's own autodiff of the angle expressions (``w x + b``, ``acos(x)``, ...) carries it to
the parameters and the layer input. (Under qjit, ``jax.grad`` and ``jax.vmap`` do not apply,
a gradient of a batched loss does not compile, and Catalyst's differentiator has no rule for
some elementary functions (``acos`` lowers to ``atan2``); a per-row gradient of the bare
circuit in a loop compiles.) The programs run on the host through ``jax.pure_callback``, so
the network functions work under ``jax.jit``, ``jax.grad``, ``jax.vmap`` and inside the
training loop's ``lax.fori_loop``, like the JAX backend's.

Precision: lightning.qubit computes in complex128, so the programs compute in float64; a
float32 model receives their results rounded to float32. Importing catalyst (this module does
it when a model is built, never before) turns JAX's 64-bit mode on for the process; every
other qvaf model keeps its explicit dtypes, so float32 results elsewhere are unchanged.

Shots: the gradient under shots is the analytic gradient of the expectation (the estimate is
unbiased, and its gradient is that of the expectation; a shot-based gradient estimate would
only add noise). Catalyst seeds sampling per compiled program (``qjit(seed=...)``), so a
``key`` selects a program compiled with a seed derived from it: the same key gives the same
samples, and every new key costs one compilation (seconds). Without a key the device draws
fresh samples on every call.

Readouts ``z``, ``x``, ``y`` are ``PauliZ``/``PauliX``/``PauliY`` expectations; ``inspired``
is derived from ``<Z>`` as the JAX backend derives it.
"""

from __future__ import annotations

import collections
import hashlib
import threading
from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np

from ..expr import evaluate
from ..ir import Circuit, KanNode
from . import _common
from ._common import BackendError

NAME = "catalyst"
DTYPES = ("float32", "float64")
#: the device every program runs on
DEVICE = "lightning.qubit"

#: compiled programs, keyed by ``(signature, kind, shots, seed)`` (:func:`signature`: a value,
#: so equal gate sequences of any layer or model share one program). At most
#: ``_PROGRAM_LIMIT`` are kept; the least recently used goes first.
_PROGRAMS: "collections.OrderedDict[tuple, EdgeProgram]" = collections.OrderedDict()
_PROGRAM_LIMIT = 64
_COMPILES = {"count": 0}
#: held while a program is looked up, compiled or run: XLA may call two host callbacks at once
#: (a sampled value and its gradient), and Catalyst's tracing and runtime are not re-entrant
_LOCK = threading.RLock()


def compile_count() -> int:
    """How many times Catalyst has traced (and compiled) a program of this backend."""
    return _COMPILES["count"]


# ----------------------------------------------------------------------------- one edge circuit


def signature(kernel: Circuit) -> tuple:
    """What a compiled program depends on: the gate sequence (loops unrolled, fused blocks
    opened) and the readout. Circuits that differ only in their angle expressions share it."""
    return tuple(gate.op for gate, _env in _common.flatten_ops(kernel)), kernel.observable


def _arity(op) -> int:
    """How many angles a gate of the catalogue takes."""
    import inspect

    from .reference import gate_table

    return len(inspect.signature(gate_table()[op]).parameters)


def width(sig: tuple) -> int:
    """The number of gate angles of a program, the length of its rows (at least 1: a circuit
    without angles reads one unused entry)."""
    return max(1, sum(_arity(op) for op in sig[0]))


def _check_gates(kernel: Circuit) -> None:
    from .reference import gate_table

    table = gate_table()
    for gate, _env in _common.flatten_ops(kernel):
        if gate.op not in table:
            raise BackendError(f"the catalyst backend cannot run gate {gate.op.value!r}")


def _qnode(sig: tuple, shots: int | None):
    """The circuit as a QNode of one row ``v`` of gate angles, in gate order."""
    import pennylane as qml

    from .reference import gate_table

    table = gate_table()
    ops, readout = sig
    arity = [_arity(op) for op in ops]
    observable = {"x": qml.PauliX, "y": qml.PauliY, "z": qml.PauliZ, "inspired": qml.PauliZ}[readout]

    def circuit(v):
        k = 0
        for op, n in zip(ops, arity):
            table[op](*(v[k + j] for j in range(n)))
            k += n
        return qml.expval(observable(0))

    device = qml.device(DEVICE, wires=1)
    if shots is None:
        return qml.qnode(device, diff_method="adjoint")(circuit)
    return qml.set_shots(qml.qnode(device, diff_method=None)(circuit), shots=shots)


def _compile(sig: tuple, kind: str, shots: int | None, seed: int | None):
    """The qjit object of one program: rows ``V [n, A]`` -> ``values [n]`` (and
    ``grads [n, A]`` for ``value_and_grad``), ``n`` dynamic."""
    import catalyst
    import jax.numpy as jnp
    import pennylane as qml

    qnode = _qnode(sig, shots)
    per_row = catalyst.value_and_grad(qnode) if kind == "value_and_grad" else qnode

    def rows(V):
        _COMPILES["count"] += 1  # runs when Catalyst traces the program, not per call
        n = V.shape[0]
        values = jnp.zeros((n,), jnp.float64)
        start = (values, jnp.zeros_like(V)) if kind == "value_and_grad" else values

        @catalyst.for_loop(0, n, 1)
        def loop(i, acc):
            if kind == "value_and_grad":
                value, grad = per_row(V[i])
                return acc[0].at[i].set(value), acc[1].at[i].set(grad)
            return acc.at[i].set(per_row(V[i]))

        return loop(start)

    rows.__name__ = f"edge_{kind}" + (f"_shots{shots}" if shots else "")
    return qml.qjit(rows, abstracted_axes={0: "n"}, seed=seed)


@dataclass
class EdgeProgram:
    """One compiled edge circuit (a :func:`signature`): ``kind`` ``"value"`` or
    ``"value_and_grad"``, with ``shots`` (None: analytic) and the sampling ``seed`` (None:
    the device's)."""

    signature: tuple
    kind: str
    shots: int | None
    seed: int | None
    qjit: object

    def __call__(self, rows: np.ndarray):
        import jax.numpy as jnp

        if rows.shape[0] == 0:
            empty = np.zeros((0,), np.float64)
            return (empty, np.zeros(rows.shape, np.float64)) if self.kind == "value_and_grad" else empty
        out = self.qjit(jnp.asarray(rows, jnp.float64))
        if self.kind == "value_and_grad":
            return np.asarray(out[0], np.float64), np.asarray(out[1], np.float64)
        return np.asarray(out, np.float64)

    @property
    def width(self) -> int:
        return width(self.signature)

    def compile(self) -> "EdgeProgram":
        """Compile now (a call on one row of zeros) if no call has yet."""
        with _LOCK:
            if getattr(self.qjit, "compiled_function", None) is None:
                self(np.zeros((1, self.width), np.float64))
        return self

    @property
    def mlir(self) -> str:
        """The MLIR Catalyst compiled (after canonicalisation), compiling first if needed."""
        self.compile()
        return self.qjit.mlir


def program(sig: tuple, kind: str = "value", shots: int | None = None, seed: int | None = None) -> EdgeProgram:
    """The compiled program of a circuit :func:`signature` (compiled on its first call)."""
    key = (sig, kind, shots, seed)
    hit = _PROGRAMS.get(key)
    if hit is not None:
        _PROGRAMS.move_to_end(key)
        return hit
    made = EdgeProgram(sig, kind, shots, seed, _compile(sig, kind, shots, seed))
    _PROGRAMS[key] = made
    while len(_PROGRAMS) > _PROGRAM_LIMIT:
        _PROGRAMS.popitem(last=False)
    return made


# ----------------------------------------------------------------------------- host side


def seed_of(key_data) -> int:
    """An unsigned 32-bit sampling seed from a key's raw data (a hash: equal keys, equal seeds)."""
    data = np.ascontiguousarray(np.asarray(key_data, np.uint32)).tobytes()
    return int.from_bytes(hashlib.blake2b(data, digest_size=4).digest(), "little")


def _host_rows(angles) -> np.ndarray:
    """Rows ``[n, A]`` from the A angle arrays of one shape (``[B, out, in]``)."""
    return np.stack([np.asarray(a, np.float64) for a in angles], axis=-1).reshape(-1, len(angles))


def _host_values(sig, shots, seeded, dtype, key_hi, key_lo, *angles):
    seed = seed_of([key_hi, key_lo]) if seeded else None
    with _LOCK:
        values = program(sig, "value", shots, seed)(_host_rows(angles))
    return values.reshape(np.shape(angles[0])).astype(dtype), np.ones((), dtype)


def _host_value_and_grad(sig, dtype, *angles):
    with _LOCK:
        values, grads = program(sig, "value_and_grad")(_host_rows(angles))
    shape = np.shape(angles[0])
    return values.reshape(shape).astype(dtype), grads.reshape(*shape, len(angles)).astype(dtype), np.ones((), dtype)


# ----------------------------------------------------------------------------- the JAX side


def _edge_function(sig: tuple, dtype, shots: int | None, seeded: bool) -> Callable:
    """``phi(angles, key_data) -> [B, out, in]``: the circuit's readout for every (sample, edge)
    from its A gate angles (a tuple of A arrays ``[B, out, in]``), with a VJP in the angles.

    Two ways around XLA's CPU compiler (jaxlib 0.7.1), which aborts on some programs with
    host callbacks: the angles (and the key's two words) reach the host as separate operands,
    not stacked (it fails on an unfused concatenation feeding a callback), and every result
    leaves multiplied by a ``1`` the host returns with it, so that no program ends in a
    callback's output (it fails on one fed by another callback). ``v * 1`` is ``v`` exactly.
    """
    import jax

    one = jax.ShapeDtypeStruct((), dtype)

    def values(angles, key_data):
        out = (jax.ShapeDtypeStruct(angles[0].shape, dtype), one)
        value, unit = jax.pure_callback(partial(_host_values, sig, shots, seeded, dtype), out, key_data[0],
                                        key_data[1], *angles, vmap_method="sequential")
        return value * unit

    def value_and_grad(angles):
        shape = angles[0].shape
        out = (jax.ShapeDtypeStruct(shape, dtype), jax.ShapeDtypeStruct((*shape, len(angles)), dtype), one)
        value, grads, unit = jax.pure_callback(partial(_host_value_and_grad, sig, dtype), out, *angles,
                                               vmap_method="sequential")
        return value * unit, grads

    @jax.custom_vjp
    def phi(angles, key_data):
        return values(angles, key_data)

    def fwd(angles, key_data):
        value, grads = value_and_grad(angles)
        if shots is not None:  # sampled values, the expectation's gradient
            value = values(angles, key_data)
        return value, grads

    def bwd(grads, ct):
        return tuple(ct * grads[..., k] for k in range(grads.shape[-1])), None

    phi.defvjp(fwd, bwd)
    return phi


def _key_data(key, index: int):
    """The raw uint32 data of ``key`` folded with a layer's index (zeros without a key)."""
    import jax
    import jax.numpy as jnp

    if key is None:
        return jnp.zeros((2,), jnp.uint32)
    key = jax.random.fold_in(key, index)
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return jnp.asarray(key, jnp.uint32)


def gate_angles(node: KanNode, layer_params, x, dtype) -> tuple:
    """Every gate angle of every (sample, edge) circuit, in gate order: A arrays
    ``[B, out, in]``, the columns of the rows the programs read (with ``group g`` edge (o, i)
    reads row ``i mod g``). A circuit without angles gives one array of zeros."""
    import jax.numpy as jnp

    p = _common.edge_params(node, layer_params, jnp, dtype)
    xe = x[:, None, :]  # [B, 1, in]
    shape = (x.shape[0], node.out_width, node.in_width)
    angles = tuple(jnp.broadcast_to(jnp.asarray(evaluate(a, xe, p, jnp, env), dtype), shape)
                   for gate, env in _common.flatten_ops(node.kernel) for a in gate.angles)
    return angles or (jnp.zeros(shape, dtype),)


def edge_values(node: KanNode, layer_params, x, dtype, *, shots=None, key=None, index: int = 0):
    """Raw activations ``phi_oi(x_bi)`` of every edge of a kan layer, ``[B, out, in]``, from
    the layer's compiled program (the mean of ``shots`` measurements when given)."""
    import jax.numpy as jnp

    phi = _edge_function(signature(node.kernel), dtype, shots, key is not None)
    value = phi(gate_angles(node, layer_params, x, dtype), _key_data(key, index))
    if node.kernel.observable == "inspired":
        tiny = jnp.finfo(dtype).tiny
        value = jnp.sqrt(jnp.maximum((1 + value) / 2, tiny)) - jnp.sqrt(jnp.maximum((1 - value) / 2, tiny))
    return value


# ----------------------------------------------------------------------------- network functions


def check_shots(shots, key) -> None:
    """Raise unless ``shots`` is None or a positive int; a ``key`` needs ``shots``."""
    if shots is None:
        if key is not None:
            raise BackendError("key= seeds shot sampling; pass shots=S with it (or drop key=)")
        return
    if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots < 1:
        raise BackendError(f"shots must be a positive integer, got {shots!r}")


def _check_mode() -> None:
    import jax

    if not jax.config.jax_enable_x64:
        raise BackendError("the catalyst backend needs JAX's 64-bit mode, which importing catalyst turns on; "
                           "it has been turned off since (leave jax_enable_x64 on in a process that uses catalyst)")


@dataclass(frozen=True)
class CatalystFunctions:
    """The network functions of one compiled graph, with the JAX backend's signatures plus
    shots: ``apply(params, x, *, key=None, shots=None)`` -> [B, out];
    ``layer_inputs(params, x)`` -> {layer_id: [B, width]};
    ``edge_values(params, x, layer_id, *, key=None, shots=None)`` -> [B, out, in].

    ``kernels`` lists each kan layer with its circuit; :meth:`programs` gives the compiled
    program of each distinct circuit. ``key`` without ``shots`` is an error; ``shots``
    without ``key`` samples from the device's own seed (fresh samples on every call).
    """

    apply: Callable
    layer_inputs: Callable
    edge_values: Callable
    kernels: tuple[tuple[str, Circuit], ...]

    def programs(self, kind: str = "value") -> list[tuple[tuple[str, ...], EdgeProgram]]:
        """``(layer ids, program)`` for every distinct edge circuit (:func:`signature`), in
        layer order."""
        groups: dict[tuple, list[str]] = {}
        for layer_id, kernel in self.kernels:
            groups.setdefault(signature(kernel), []).append(layer_id)
        return [(tuple(ids), program(sig, kind)) for sig, ids in groups.items()]


def build(graph, dtype: str) -> CatalystFunctions:
    """Network functions for ``graph`` in ``dtype`` ("float32" or "float64"; the circuits
    always compute in float64). Imports catalyst (which turns JAX's 64-bit mode on)."""
    if dtype not in DTYPES:
        raise BackendError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    import catalyst  # noqa: F401 - before anything is traced: it switches JAX to 64-bit mode
    import jax
    import jax.numpy as jnp

    order = _common.layer_order(graph)
    table = tuple(graph.graph.get("params", ()))
    jdtype = jnp.dtype(dtype)
    in_width = order[0][1].width
    kan_ids = _common.kan_layer_ids(order)
    kernels = tuple((nid, rec.kernel) for nid, rec in order if isinstance(rec, KanNode))
    for _, kernel in kernels:
        _check_gates(kernel)

    def prepare(params, x):
        _check_mode()
        return _common.prepare(table, in_width, jdtype, params, x)

    def edge_fn(key, shots):
        return lambda node, layer, h: edge_values(node, layer, h, jdtype, shots=shots, key=key,
                                                  index=kan_ids.index(node.name))

    def apply(params, x, key=None, shots=None):
        params, x, single = prepare(params, x)
        y = _common.forward(order, params, x, edge_fn(key, shots), jnp)
        return y[0] if single else y

    def layer_inputs(params, x):
        params, x, single = prepare(params, x)
        out = {}
        _common.forward(order, params, x, edge_fn(None, None), jnp, collect=out)
        return {k: (v[0] if single else v) for k, v in out.items()}

    def edges(params, x, layer_id, key=None, shots=None):
        if layer_id not in kan_ids:
            raise BackendError(f"{layer_id!r} is not a kan layer; kan layers: {', '.join(kan_ids) or 'none'}")
        params, x, single = prepare(params, x)
        phi = _common.forward(order, params, x, edge_fn(key, shots), jnp, stop_at=layer_id)
        return phi[0] if single else phi

    jit_apply = jax.jit(apply, static_argnames="shots")
    jit_edges = jax.jit(edges, static_argnames=("layer_id", "shots"))

    def checked_apply(params, x, *, key=None, shots=None):
        check_shots(shots, key)
        return jit_apply(params, x, key, shots)

    def checked_edges(params, x, layer_id, *, key=None, shots=None):
        check_shots(shots, key)
        return jit_edges(params, x, layer_id=layer_id, key=key, shots=shots)

    return CatalystFunctions(apply=checked_apply, layer_inputs=jax.jit(layer_inputs), edge_values=checked_edges,
                             kernels=kernels)
