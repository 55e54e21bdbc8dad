"""Initial parameter values, drawn on the host in float64 and then cast.

Each array's values depend on the key and the array's name (``layer0.theta``) only: the key's
words and the CRC-32 of the name seed a NumPy generator (PCG64) for that array. The draw is
in float64 whatever the model's dtype, so a float32 model starts from the float64 model's
values rounded to float32; nothing here depends on JAX's 64-bit mode.

Kinds (:class:`~qvaf.compiler.ir.Init`): ``constant(v)``, ``zeros()``, ``ones()``,
``normal(mu, sigma)``, ``uniform(a, b)`` and ``xavier()``, Glorot's uniform
U(-a, a) with a = sqrt(6 / (fan_in + fan_out)), so that the variance is 2 / (fan_in + fan_out).
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from qvaf.dsl.errors import QvafError


def key_words(key) -> tuple[int, ...]:
    """The integers a key stands for: the data of a ``jax.random`` key (an int seed ``s``
    stands for ``jax.random.PRNGKey(s)``)."""
    import jax

    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        if not 0 <= int(key) < 2**32:
            raise QvafError(f"a seed must be an integer in [0, 2**32), got {int(key)}")
        key = jax.random.PRNGKey(int(key))

    try:
        if jax.dtypes.issubdtype(getattr(key, "dtype", None), jax.dtypes.prng_key):
            key = jax.random.key_data(key)
        words = np.asarray(key)
    except (TypeError, ValueError):
        words = None
    if words is None or words.dtype.kind not in "ui" or words.ndim != 1 or not words.size:
        raise QvafError(f"expected an int seed or a jax.random key, got {type(key).__name__}")
    return tuple(int(w) for w in words.astype(np.uint64))


def fans(shape, edges: tuple[int, int, int | None] | None = None) -> tuple[int, int]:
    """Glorot fans of an array.

    A per-edge array of a kan layer is seen as ``[out, in, *shape]`` (also when ``group g``
    stores it as ``[g, *shape]``): fan_in = in * prod(shape), fan_out = out * prod(shape).
    Any other array ``[out, in, *rest]`` likewise; a vector uses its length for both.
    """
    shape = tuple(shape)
    if edges is not None:
        out, inp, group = edges
        per_edge = math.prod(shape[1:] if group is not None else shape[2:])
        return inp * per_edge, out * per_edge
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    rest = math.prod(shape[2:])
    return shape[1] * rest, shape[0] * rest


def draw(spec, words: tuple[int, ...], edges: tuple[int, int, int | None] | None = None) -> np.ndarray:
    """The float64 values of one row of the parameter table (``edges`` = (out, in, group)
    marks a per-edge array of a kan layer, for the Glorot fans)."""
    shape = tuple(spec.shape)
    kind, a = spec.init.kind, tuple(spec.init.args)
    if kind == "constant":
        return np.full(shape, a[0], np.float64)
    if kind == "zeros":
        return np.zeros(shape, np.float64)
    if kind == "ones":
        return np.ones(shape, np.float64)
    rng = np.random.default_rng([*words, zlib.crc32(spec.path.encode())])
    if kind == "normal":
        return a[0] + a[1] * rng.standard_normal(shape)
    if kind == "uniform":
        return rng.uniform(a[0], a[1], shape)
    if kind == "xavier":
        fan_in, fan_out = fans(shape, edges)
        lim = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-lim, lim, shape)
    raise QvafError(f"unknown initialiser {kind!r} for {spec.path}")


def init_params(graph, table, dtype: str, key) -> dict[str, dict[str, object]]:
    """Every array of ``table`` drawn for ``key``, as ``{layer: {name: jax array of dtype}}``.

    A traced key (``jax.jit``, ``vmap``, ``eval_shape`` of ``init``) draws through
    ``jax.pure_callback``: the same host draw, run with the key's value when the program runs.
    """
    import jax
    import jax.numpy as jnp

    edges = _edge_shapes(graph, table)
    if isinstance(key, jax.core.Tracer):
        if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.key_data(key)
        shapes = [jax.ShapeDtypeStruct(tuple(spec.shape), jnp.dtype(dtype)) for spec in table]

        def host(words):
            return [draw(spec, key_words(words), edges.get(spec.path)).astype(dtype) for spec in table]

        values = jax.pure_callback(host, shapes, key, vmap_method="sequential")
    else:
        words = key_words(key)
        values = [jnp.asarray(draw(spec, words, edges.get(spec.path)).astype(dtype), dtype) for spec in table]
    out: dict[str, dict[str, object]] = {}
    for spec, value in zip(table, values):
        out.setdefault(spec.owner, {})[spec.name] = value
    return out


def _edge_shapes(graph, table) -> dict[str, tuple[int, int, int | None]]:
    """``path -> (out, in, group)`` for the per-edge arrays of the kan layers."""
    from qvaf.compiler.ir import KanNode, layer_arrays

    edges = {}
    for node in {spec.owner for spec in table}:
        rec = graph.nodes[node].get("op") if node in graph else None
        if isinstance(rec, KanNode):
            for arr in layer_arrays(rec):
                if arr.per_edge:
                    edges[f"{node}.{arr.name}"] = (rec.out_width, rec.in_width, rec.group)
    return edges
