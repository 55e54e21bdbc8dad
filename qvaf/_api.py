"""The public API: :func:`load`, :func:`compile` and the :class:`Compiled` network.

Example::

    import jax, qvaf
    model = qvaf.compile("specs/models/regression.qvaf", dtype="float64")
    params = model.init(jax.random.PRNGKey(0))
    y = model.apply(params, x)                                  # [B, out]
    g = jax.grad(lambda p: (model.apply(p, x) ** 2).sum())(params)
"""

from __future__ import annotations

import math
import zlib
from typing import Any, Mapping

import numpy as np

from qvaf.dsl.errors import QvafError

DTYPES = ("float32", "float64")


def load(path) -> Any:
    """Parse and check a ``.qvaf`` file and its imports.

    Args:
        path: a ``.qvaf`` file, or the name of a bundled spec (``"regression"``).

    Returns:
        The :class:`qvaf.dsl.program.Program` (``ansatze``, ``models``, ``warnings``, ...).

    Raises:
        SpecError: with every diagnostic when the spec has errors.
        QvafError: when there is no such file or bundled spec, or it cannot be read.
    """
    from qvaf._specs import find_spec
    from qvaf.dsl import load_program

    return load_program(find_spec(path))


def _is_graph(obj) -> bool:
    import networkx as nx

    return isinstance(obj, nx.DiGraph)


def compile(  # noqa: A001 - the public name is qvaf.compile
    spec_or_path,
    model: str | None = None,
    *,
    ansatz: str | None = None,
    args: Mapping[str, Any] | None = None,
    ansatz_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    backend: str = "jax",
    dtype: str = "float32",
    optimize: bool = True,
) -> "Compiled":
    """Compile a model (or a single ansatz) of a spec into a runnable network.

    Args:
        spec_or_path: a ``Program`` from :func:`load`, a path to a ``.qvaf`` file, the name
            of a bundled spec (``"regression"``, ``"digits"``, ``"hqkan"``), or an IR
            graph already lowered (``networkx.DiGraph``; ``model``/``ansatz`` then unused).
        model: the model to compile; None picks the only model the spec's own file defines.
        ansatz: compile this ansatz alone as a 1 -> 1 network (its raw activation phi(x)).
        args: model (or ansatz) arguments, e.g. ``{"d": 16}``.
        ansatz_overrides: ansatz-argument overrides per kan layer id, or ``"*"`` for all
            kan layers, e.g. ``{"*": {"reps": 5}}``.
        backend: a name from :data:`qvaf.compiler.backends.BACKENDS` ("jax", "reference").
        dtype: "float32" or "float64" (float64 turns on ``jax_enable_x64``).
        optimize: run the pass pipeline (False keeps the lowered IR as is).

    Raises:
        QvafError: unknown backend, dtype, model or ansatz (listing the valid choices), or
            any error of the spec itself.
    """
    from qvaf._specs import check_compile_options
    from qvaf.compiler import backends

    check_compile_options(args, ansatz_overrides)
    if dtype not in DTYPES:
        raise QvafError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    if backend not in backends.BACKENDS:
        raise QvafError(f"unknown backend {backend!r}; available backends: {', '.join(backends.BACKENDS)}")
    if ansatz_overrides is not None and ansatz is not None:
        raise QvafError("ansatz_overrides apply to models; pass the ansatz's arguments with args=")

    program = None
    model_name = None
    if _is_graph(spec_or_path):
        graph = spec_or_path
        model_name = graph.graph.get("name")
    else:
        program = spec_or_path if hasattr(spec_or_path, "models") else load(spec_or_path)
        from qvaf.compiler.lower import lower_ansatz, lower_model

        if ansatz is not None:
            if model is not None:
                raise QvafError("pass either model= or ansatz=, not both")
            _check_choice("ansatz", ansatz, program.ansatze, program)
            graph = lower_ansatz(program, ansatz, dict(args) if args else None)
            model_name = ansatz
        else:
            from qvaf._specs import pick_model

            model = pick_model(program, model)
            if model is None:
                if len(program.ansatze) != 1:
                    raise QvafError(_choose_message(program))
                return compile(program, ansatz=next(iter(program.ansatze)), args=args,
                               backend=backend, dtype=dtype, optimize=optimize)
            graph = lower_model(program, model, dict(args) if args else None,
                                {k: dict(v) for k, v in ansatz_overrides.items()} if ansatz_overrides else None)
            model_name = model
    if optimize:
        from qvaf.compiler.passes import run_pipeline

        graph = run_pipeline(graph)
    if dtype == "float64":
        import jax

        jax.config.update("jax_enable_x64", True)
    fns = backends.get_backend(backend).build(graph, dtype)
    return Compiled(graph, fns, backend=backend, dtype=dtype, program=program, model_name=model_name,
                    ansatz_overrides=ansatz_overrides)


def _check_choice(kind: str, name: str, table: Mapping, program) -> None:
    if name not in table:
        have = ", ".join(sorted(table)) or "none"
        raise QvafError(f"no {kind} named {name!r} in {getattr(program, 'path', 'the spec')}; {kind}s: {have}")


def _choose_message(program) -> str:
    where = getattr(program, "path", "the spec")
    if not program.models and not program.ansatze:
        return f"{where} defines no model or ansatz to compile"
    return (f"{where} defines no model; compile one of its ansätze with ansatz=NAME "
            f"({', '.join(sorted(program.ansatze))})")


# ----------------------------------------------------------------------------- initialisers


def _key_for(key, path: str):
    """A key derived from ``key`` and the array's name, so names (not order) fix the values."""
    import jax

    if isinstance(key, (int, np.integer)):
        key = jax.random.PRNGKey(int(key))
    return jax.random.fold_in(key, zlib.crc32(path.encode()) & 0x7FFFFFFF)


def _fans(shape, edges: tuple[int, int, int | None] | None = None) -> tuple[int, int]:
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


def init_array(spec, key, dtype, edges: tuple[int, int, int | None] | None = None):
    """Draw one array of the parameter table from its initialiser.

    Kinds: ``constant(v)``, ``zeros()``, ``ones()``, ``normal(mu, sigma)``, ``uniform(a, b)``,
    ``xavier(gain=1)`` (Glorot uniform: U(-g a, g a), a = sqrt(6 / (fan_in + fan_out)), so the
    variance is g^2 * 2 / (fan_in + fan_out)). ``edges`` = (out, in, group) marks a per-edge
    array of a kan layer (see :func:`_fans`).
    """
    import jax
    import jax.numpy as jnp

    shape = tuple(spec.shape)
    kind, a = spec.init.kind, tuple(spec.init.args)
    if kind == "constant":
        return jnp.full(shape, a[0], dtype)
    if kind == "zeros":
        return jnp.zeros(shape, dtype)
    if kind == "ones":
        return jnp.ones(shape, dtype)
    k = _key_for(key, spec.path)
    if kind == "normal":
        mu = a[0] if a else 0.0
        sigma = a[1] if len(a) > 1 else 1.0
        return mu + sigma * jax.random.normal(k, shape, dtype)
    if kind == "uniform":
        lo, hi = a[:2] if len(a) >= 2 else (0.0, 1.0)
        return jax.random.uniform(k, shape, dtype, lo, hi)
    if kind == "xavier":
        gain = a[0] if a else 1.0
        fan_in, fan_out = _fans(shape, edges)
        lim = gain * math.sqrt(6.0 / (fan_in + fan_out))
        return jax.random.uniform(k, shape, dtype, -lim, lim)
    raise QvafError(f"unknown initialiser {kind!r} for {spec.path}")


_INIT_CACHE: dict[tuple, Any] = {}


def _init_function(graph, table, dtype: str):
    """A jitted ``key -> params`` for a parameter table (cached: one compilation per table)."""
    from qvaf.compiler.ir import KanNode

    edges = {}
    for spec in table:
        node = graph.nodes[spec.owner].get("op") if spec.owner in graph else None
        if isinstance(node, KanNode) and spec.name in dict(node.kernel.params):
            edges[spec.path] = (node.out_width, node.in_width, node.group)
    cache_key = (tuple(table), tuple(sorted(edges.items())), dtype)
    fn = _INIT_CACHE.get(cache_key)
    if fn is None:
        import jax
        import jax.numpy as jnp

        dt = jnp.dtype(dtype)

        def init(key):
            out: dict[str, dict[str, Any]] = {}
            for spec in table:
                out.setdefault(spec.owner, {})[spec.name] = init_array(spec, key, dt, edges.get(spec.path))
            return out

        fn = _INIT_CACHE[cache_key] = jax.jit(init)
    return fn


# ----------------------------------------------------------------------------- the compiled network


class Compiled:
    """A compiled network: its IR, its parameter table and pure functions of ``(params, x)``.

    ``params`` is a plain dict of dicts, ``params[layer_id][name]``, e.g.
    ``params["layer0"]["theta"]``; :meth:`init` builds it and :attr:`trainable` marks which
    arrays training updates (the others, like ``mask`` or random ``const`` arrays, are fixed).
    """

    def __init__(self, graph, fns, *, backend, dtype, program=None, model_name=None, ansatz_overrides=None):
        from qvaf.compiler.backends._common import layer_order

        self.ir = graph
        self._fns = fns
        self.backend = backend
        self.dtype = dtype
        self.program = program
        self.model_name = model_name
        self.model_args = dict(graph.graph.get("model_args", {}) or {})
        self.ansatz_overrides = dict(ansatz_overrides) if ansatz_overrides else {}
        self.param_table = tuple(graph.graph.get("params", ()))
        order = layer_order(graph)
        self.in_width = order[0][1].width
        self.out_width = order[-1][1].width
        self.layers = tuple(nid for nid, _ in order[1:-1])

    # -- parameters

    def init(self, key) -> dict[str, dict[str, Any]]:
        """Fresh parameters (trainable and fixed) from the table's initialisers.

        Args:
            key: a ``jax.random`` key or an int seed. Each array's values depend on the key
                and its name ``layer.name`` only.
        """
        import jax

        from qvaf._specs import check_key

        check_key(key)
        if isinstance(key, (int, np.integer)):
            key = jax.random.PRNGKey(int(key))
        return _init_function(self.ir, self.param_table, self.dtype)(key)

    @property
    def trainable(self) -> dict[str, dict[str, bool]]:
        """Same structure as :meth:`init`'s result, True where the array is trained."""
        out: dict[str, dict[str, bool]] = {}
        for spec in self.param_table:
            out.setdefault(spec.owner, {})[spec.name] = bool(spec.trainable)
        return out

    @property
    def param_count(self) -> int:
        """Number of trainable scalars."""
        return sum(math.prod(s.shape) for s in self.param_table if s.trainable)

    @property
    def fixed_count(self) -> int:
        """Number of fixed (non-trainable) scalars."""
        return sum(math.prod(s.shape) for s in self.param_table if not s.trainable)

    # -- functions

    def apply(self, params, x):
        """The network output ``[B, out]`` for inputs ``x`` ``[B, in]`` (a single ``[in]``
        sample gives ``[out]``). Pure: works under ``jax.jit``, ``grad`` and ``vmap``."""
        from qvaf._specs import check_input

        check_input(x)
        return self._fns.apply(params, x)

    def edge_values(self, params, x, layer_id: str | int):
        """Raw activations ``phi_oi(x_i)`` of every edge of a kan layer: ``[B, out, in]``.

        ``layer_id`` is a layer name (``"layer0"``) or its position in :attr:`layers` (``0``;
        negative counts from the end).
        """
        return self._fns.edge_values(params, x, layer_id=self.layer_name(layer_id))

    def layer_inputs(self, params, x) -> dict[str, Any]:
        """The input of every layer, ``{layer_id: [B, width]}``."""
        return self._fns.layer_inputs(params, x)

    def __call__(self, params, x):
        return self.apply(params, x)

    def __repr__(self) -> str:
        name = self.model_name or "network"
        return (f"Compiled({name!r}, {self.in_width} -> {self.out_width}, layers={list(self.layers)}, "
                f"params={self.param_count} trainable + {self.fixed_count} fixed, backend={self.backend!r}, "
                f"dtype={self.dtype!r})")

    def edge_contributions(self, params, x, layer: str | int):
        """Each edge's full term of its layer's output, ``[B, out, in]``: the raw activation
        with post-activation scaling, the base branch and the mask,

        .. math::

            e_{bji} = m_{ji} \\left[ (\\phi_{ji}(x_{bi}) + c_{ji}) a_{ji} + \\beta_{ji}\\,\\mathrm{base}(x_{bi}) \\right],

        so that summing over ``i`` gives the layer's output. ``layer`` as in :meth:`edge_values`.
        """
        import jax.numpy as jnp

        from qvaf.compiler.backends._common import edge_terms

        layer_id = self.layer_name(layer)
        phi = self.edge_values(params, x, layer_id)
        h = self.layer_inputs(params, x)[layer_id]
        return edge_terms(self.ir.nodes[layer_id]["op"], params[layer_id], h, phi, jnp)

    # -- names and summaries

    def layer_name(self, layer: str | int) -> str:
        """The id of a layer given by name or by position in :attr:`layers` (``0`` -> ``"layer0"``).

        Raises:
            QvafError: an index out of range or an unknown name, listing the layers.
        """
        listing = ", ".join(f"{i}: {nid}" for i, nid in enumerate(self.layers))
        if isinstance(layer, (int, np.integer)) and not isinstance(layer, (bool, np.bool_)):
            n = len(self.layers)
            if not -n <= int(layer) < n:
                raise QvafError(f"layer index {int(layer)} is out of range: the network has {n} layer"
                                f"{'s' if n != 1 else ''} ({listing})")
            return self.layers[int(layer)]
        if not isinstance(layer, str):
            raise QvafError(f"a layer is a name like 'layer0' or an index, not {type(layer).__name__}")
        if layer not in self.layers:
            raise QvafError(f"no layer {layer!r} (not a kan layer of this network); layers: {listing}")
        return layer

    def summary(self) -> str:
        """The per-layer table ``qvaf inspect`` prints: widths, ansatz, edges, gates before and
        after the passes, re-uploads, trainable and fixed parameters, highest frequency.
        ``print(model)`` shows the same."""
        from qvaf.compiler.report import LEGEND, format_table, layer_rows, title

        kind = "ansatz" if self.program is not None and self.model_name not in self.program.models \
            and self.model_name in self.program.ansatze else "model"
        lines = [title(kind, self.model_name or "network", self.ir)
                 + f" ({self.param_count} trainable + {self.fixed_count} fixed parameters; "
                   f"{self.backend}, {self.dtype})"]
        lines += format_table(layer_rows(self._lowered(kind), self.ir))
        return "\n".join(lines + [LEGEND])

    def __str__(self) -> str:
        return self.summary()

    def _lowered(self, kind: str):
        """The IR as lowered (the "before" gate counts), rebuilt from the spec when there is one."""
        if self.program is None:
            return self.ir
        from qvaf.compiler.lower import lower_ansatz, lower_model

        if kind == "ansatz":
            return lower_ansatz(self.program, self.model_name, dict(self.ir.nodes["layer0"]["op"].ansatz_args))
        return lower_model(self.program, self.model_name, self.model_args or None, self.ansatz_overrides or None)
