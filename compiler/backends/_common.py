"""Pieces every numerical backend shares: walking the network graph and the circuit IR,
per-edge parameter views, the KAN layer formula, and input/parameter validation.

None of this simulates a circuit: that is each backend's own business (the JAX backend on
the Bloch vector, the reference backend through PennyLane), so the two stay independent
where it matters.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from qvaf.dsl import rules
from qvaf.dsl.errors import QvafError

from ..expr import depends_on_input, param_refs
from ..ir import Circuit, FusedOp, GateOp, InputNode, KanNode, LinearNode, LoopOp, NoiseOp, OutputNode

#: dtype names a backend accepts.
DTYPES = ("float32", "float64")
#: base functions of a KAN layer's residual term (the language's list).
BASES = rules.BASES


class BackendError(QvafError):
    """A graph or a call a backend cannot execute (bad shapes, unknown names)."""


def layer_order(graph) -> list[tuple[str, object]]:
    """The graph's nodes from ``"input"`` to ``"output"`` as ``(node_id, record)`` pairs.

    Raises:
        BackendError: when the graph is not a single chain input -> layers -> output.
    """
    if "input" not in graph:
        raise BackendError("the network graph has no 'input' node")
    order = []
    node = "input"
    seen = set()
    while True:
        if node in seen:
            raise BackendError(f"the network graph has a cycle through {node!r}")
        seen.add(node)
        record = graph.nodes[node].get("op")
        if record is None:
            raise BackendError(f"graph node {node!r} carries no 'op' record")
        order.append((node, record))
        succ = list(graph.successors(node))
        if not succ:
            break
        if len(succ) > 1:
            raise BackendError(f"graph node {node!r} has {len(succ)} successors; expected a chain")
        node = succ[0]
    if not isinstance(order[0][1], InputNode) or not isinstance(order[-1][1], OutputNode):
        raise BackendError("the network graph must run from an input node to an output node")
    if len(order) != graph.number_of_nodes():
        raise BackendError("the network graph has nodes outside the input -> output chain")
    return order


def structural_key(graph) -> tuple:
    """A hashable key that is equal for structurally equal graphs (same records, same table)."""
    return (tuple(layer_order(graph)), tuple(graph.graph.get("params", ())))


def flatten_ops(circuit: Circuit, marks: bool = False) -> list[tuple[GateOp | NoiseOp, Mapping[str, int]]]:
    """The circuit's gates in application order, each with the loop variables bound around it.

    ``LoopOp`` bodies are repeated for ``var`` in ``start .. stop - 1`` and ``FusedOp`` blocks
    are opened, so a backend can run a graph at any stage of the pass pipeline. ``noise``
    marks (``NoiseOp``) are listed where they stand with ``marks=True``, else skipped.
    """
    out: list[tuple[GateOp | NoiseOp, Mapping[str, int]]] = []

    def visit(ops, env):
        for op in ops:
            if isinstance(op, GateOp) or marks and isinstance(op, NoiseOp):
                out.append((op, env))
            elif isinstance(op, NoiseOp):
                continue
            elif isinstance(op, FusedOp):
                visit(op.gates, env)
            elif isinstance(op, LoopOp):
                for value in range(op.start, op.stop):
                    visit(op.body, {**env, op.var: value})
            else:
                raise BackendError(f"unknown circuit op {op!r}")

    visit(circuit.ops, {})
    return out


def edge_params(node: KanNode, layer_params: Mapping[str, object], xp, dtype=None) -> dict[str, object]:
    """The arrays a kernel's angles read: per-edge ones with leading axes ``[O', I]``.

    Without grouping a per-edge array is ``[out, in, *shape]`` and is returned as is. With
    ``group g`` it is ``[g, *shape]`` and edge (o, i) reads row ``i mod g``: the rows are
    gathered to ``[1, in, *shape]``, shared by every output. The circuit's compile-time
    constants (present until the ``inline_constants`` pass) are added as arrays of ``dtype``
    with no edge axes.
    """
    out = {name: xp.asarray(arr, dtype) for name, arr in node.kernel.constant_arrays().items()}
    for name, _shape in node.kernel.params:
        arr = layer_params[name]
        if node.group is not None:
            rows = np.arange(node.in_width) % node.group
            arr = xp.take(arr, rows, axis=0)[None]
        out[name] = arr
    return out


def is_constant(angle, constants: Mapping[str, object]) -> bool:
    """True when ``angle`` reads neither ``x`` nor a per-edge array (only literals,
    loop variables and compile-time constants)."""
    return not depends_on_input(angle) and all(r.name in constants for r in param_refs(angle))


def base_function(name: str, xp) -> Callable | None:
    """The residual base function ``base(x)`` (None for ``base none``)."""
    if name == "none":
        return None
    if name == "silu":
        return lambda v: v / (1 + xp.exp(-v))
    if name == "tanh":
        return xp.tanh
    if name == "relu":
        return lambda v: xp.maximum(v, 0)
    if name == "identity":
        return lambda v: v
    if name == "gelu":
        # exact (erf) GELU, as torch.nn.GELU() computes it
        if xp is np:
            from scipy.special import erf
        else:
            from jax.scipy.special import erf
        return lambda v: 0.5 * v * (1 + erf(v / np.sqrt(2.0)))
    raise BackendError(f"unknown base function {name!r}; expected one of {', '.join(BASES)}")


def check_params(table, params) -> None:
    """Raise a clear error when ``params`` misses an array of ``table`` or has a wrong shape."""
    if not isinstance(params, Mapping):
        raise BackendError(f"params must be a dict of layer dicts, got {type(params).__name__}")
    for spec in table:
        layer = params.get(spec.owner)
        if not isinstance(layer, Mapping) or spec.name not in layer:
            raise BackendError(f"params is missing {spec.path} (shape {list(spec.shape)})")
        shape = tuple(np.shape(layer[spec.name]))
        if shape != tuple(spec.shape):
            raise BackendError(f"params {spec.path} has shape {list(shape)}, expected {list(spec.shape)}")


def check_input(x, in_width: int) -> None:
    """Raise unless ``x`` is ``[B, in_width]``."""
    shape = tuple(np.shape(x))
    if len(shape) != 2 or shape[1] != in_width:
        raise BackendError(f"input must have shape [batch, {in_width}], got {list(shape)}")


def kan_combine(node: KanNode, layer_params: Mapping[str, object], x, phi, xp):
    """The KAN layer formula on raw edge values ``phi`` [B, out, in]:

    .. math::

        y_{bj} = \\sum_i m_{ji} \\left[ (\\phi_{bji} + c_{ji}) a_{ji} + \\beta_{ji}\\,\\mathrm{base}(x_{bi}) \\right]
    """
    mask = layer_params.get("mask")
    w = mask if mask is not None else None
    if node.postact_bias:
        phi = phi + layer_params["postact_bias"]
    if node.postact_weight:
        a = layer_params["postact_weight"]
        w = a if w is None else w * a
    if w is None:
        y = phi.sum(axis=-1)
    else:
        y = xp.einsum("boi,oi->bo", phi, w)
    return y + base_term(node, layer_params, x, xp)


def base_term(node: KanNode, layer_params: Mapping[str, object], x, xp):
    """The residual branch of a kan layer, ``sum_i m_ji beta_ji base(x_bi)`` (0.0 without one)."""
    base = base_function(node.base, xp)
    if base is None:
        return 0.0
    beta = layer_params["base_weight"]
    mask = layer_params.get("mask")
    if mask is not None:
        beta = beta * mask
    return base(x) @ beta.T


def edge_terms(node: KanNode, layer_params: Mapping[str, object], x, phi, xp):
    """Each edge's term of the KAN layer output (:func:`kan_combine` is their sum over ``i``):

    .. math::

        e_{bji} = m_{ji} \\left[ (\\phi_{bji} + c_{ji}) a_{ji} + \\beta_{ji}\\,\\mathrm{base}(x_{bi}) \\right]

    ``phi`` is ``[..., out, in]`` and ``x`` ``[..., in]``; the result has the shape of ``phi``.
    """
    terms = phi
    if node.postact_bias:
        terms = terms + layer_params["postact_bias"]
    if node.postact_weight:
        terms = terms * layer_params["postact_weight"]
    base = base_function(node.base, xp)
    if base is not None:
        terms = terms + layer_params["base_weight"] * base(x)[..., None, :]
    mask = layer_params.get("mask")
    return terms if mask is None else terms * mask


def forward(order, params, x, edge_fn, xp, collect: dict | None = None, stop_at: str | None = None,
            layer_fn: Callable | None = None):
    """Run the network; ``edge_fn(node, layer_params, x) -> [B, out, in]`` evaluates a kan layer.

    ``collect`` (if given) receives each layer's input under its node id. With ``stop_at`` the
    raw edge values of that kan layer are returned instead of the network output.
    ``layer_fn(node, layer_params, x)`` (if given) may compute a kan layer's output ``[B, out]``
    directly, without its edge values; where it returns None the layer goes through
    ``edge_fn`` and :func:`kan_combine`.
    """
    h = x
    for node_id, record in order:
        if isinstance(record, (InputNode, OutputNode)):
            continue
        if collect is not None:
            collect[node_id] = h
        layer = params[node_id]
        if isinstance(record, KanNode):
            y = layer_fn(record, layer, h) if layer_fn is not None and stop_at != node_id else None
            if y is None:
                phi = edge_fn(record, layer, h)
                if stop_at == node_id:
                    return phi
                y = kan_combine(record, layer, h, phi, xp)
            h = y
        elif isinstance(record, LinearNode):
            h = h @ layer["weight"].T + layer["bias"]
        else:
            raise BackendError(f"unknown graph node {node_id!r}: {type(record).__name__}")
    if stop_at is not None:
        raise BackendError(f"{stop_at!r} is not a kan layer of this network")
    return h


def kan_layer_ids(order) -> list[str]:
    return [nid for nid, rec in order if isinstance(rec, KanNode)]


# ----------------------------------------------------------------------------- building the functions


def prepare(table, in_width: int, dtype, params, x):
    """``(params, x, single)``: parameters checked against the table and cast to ``dtype``,
    ``x`` checked and made a batch (``single`` when one sample was given)."""
    import jax
    import jax.numpy as jnp

    check_params(table, params)
    x = jnp.asarray(x)
    single = x.ndim == 1
    if single:
        x = x[None]
    check_input(x, in_width)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params)
    return params, x.astype(dtype), single


def cached(cache: dict, limit: int, key, make: Callable):
    """``cache[key]``, built by ``make()`` on a miss; the oldest entry goes past ``limit``. A key
    that cannot be hashed (an unhashable record field) builds without caching."""
    try:
        hit = cache.get(key)
    except TypeError:
        return make()
    if hit is None:
        hit = make()
        while len(cache) >= limit:
            cache.pop(next(iter(cache)))
        cache[key] = hit
    return hit


def network_functions(graph, dtype, edge_fn: Callable, sampled: Callable, *, layer_fn: Callable | None = None,
                      on_trace: Callable[[], None] = lambda: None) -> dict:
    """The jitted ``apply``, ``layer_inputs`` and ``edge_values`` of a kernel backend.

    ``edge_fn(node, layer_params, h) -> [B, out, in]`` evaluates a kan layer's edges;
    ``sampled(edge_fn, key, shots)`` is the same with S-shot estimates (``apply(..., key=,
    shots=)``; shots take the per-edge path); ``layer_fn`` may compute a layer's output directly
    (see :func:`forward`). ``on_trace`` is called whenever one of them is traced.
    """
    import jax
    import jax.numpy as jnp

    order = layer_order(graph)
    table = tuple(graph.graph.get("params", ()))
    in_width = order[0][1].width
    kan_ids = kan_layer_ids(order)

    def apply(params, x, key=None, shots=None):
        on_trace()
        params, x, single = prepare(table, in_width, dtype, params, x)
        if shots is None:
            y = forward(order, params, x, edge_fn, jnp, layer_fn=layer_fn)
        else:
            y = forward(order, params, x, sampled(edge_fn, key, shots), jnp)
        return y[0] if single else y

    def layer_inputs(params, x):
        on_trace()
        params, x, single = prepare(table, in_width, dtype, params, x)
        out = {}
        forward(order, params, x, edge_fn, jnp, collect=out, layer_fn=layer_fn)
        return {k: (v[0] if single else v) for k, v in out.items()}

    def edges(params, x, layer_id):
        on_trace()
        if layer_id not in kan_ids:
            raise BackendError(f"{layer_id!r} is not a kan layer; kan layers: {', '.join(kan_ids) or 'none'}")
        params, x, single = prepare(table, in_width, dtype, params, x)
        phi = forward(order, params, x, edge_fn, jnp, stop_at=layer_id, layer_fn=layer_fn)
        return phi[0] if single else phi

    return {"apply": jax.jit(apply, static_argnames="shots"), "layer_inputs": jax.jit(layer_inputs),
            "edge_values": jax.jit(edges, static_argnames="layer_id")}
