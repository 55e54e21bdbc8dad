"""The public API: :func:`load`, :func:`compile` and the :class:`Compiled` network.

Example::

    import jax, qvaf
    jax.config.update("jax_enable_x64", True)   # float64 needs 64-bit mode, set by the program
    model = qvaf.compile("specs/models/regression.qvaf", dtype="float64")
    params = model.init(jax.random.PRNGKey(0))
    y = model.apply(params, x)                                  # [B, out]
    g = jax.grad(lambda p: (model.apply(p, x) ** 2).sum())(params)
"""

from __future__ import annotations

import collections
import dataclasses
import math
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from qvaf.dsl.errors import QvafError

if TYPE_CHECKING:
    from qvaf.compiler.options import CompileOptions

#: most jitted functions (apply, training runners) one Compiled keeps
MEMO_SIZE = 16


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
    options: "CompileOptions | None" = None,
    backend: str | None = None,
    dtype: Any = None,
    optimize: bool | None = None,
    passes: tuple | None = None,
    verify_each: bool | None = None,
    keep_ir: bool | None = None,
    unroll_limit: Any = "default",
    noise=None,
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
        options: a :class:`~qvaf.compiler.options.CompileOptions`; the keyword arguments
            below, where given, replace its fields (and without it build one).
        backend, dtype, optimize, passes, verify_each, keep_ir, unroll_limit: the fields of
            :class:`~qvaf.compiler.options.CompileOptions` (backend "jax", dtype "float32",
            every pass, verified after each, at most 256 ops per edge circuit; None: no
            limit). ``dtype`` takes "float32"/"float64",
            ``numpy.float32``, ``jnp.float64``, ``np.dtype(...)``; float64 needs JAX's 64-bit
            mode on (qvaf never turns it on itself).
        noise: a :class:`~qvaf.NoiseModel` (or its ``"name=value,..."`` text or JSON dict):
            the network then runs every edge circuit under that noise (:meth:`Compiled.with_noise`).

    Raises:
        QvafError: unknown backend, dtype, option, model or ansatz (listing the valid
            choices), float64 without 64-bit mode, or any error of the spec itself.
    """
    from qvaf._specs import check_compile_options
    from qvaf.compiler.options import CompileOptions, require_precision

    check_compile_options(args, ansatz_overrides)
    given = {"backend": backend, "dtype": dtype, "optimize": optimize, "passes": passes,
             "verify_each": verify_each, "keep_ir": keep_ir}
    given = {k: v for k, v in given.items() if v is not None}
    if unroll_limit != "default":
        given["unroll_limit"] = unroll_limit
    opts = CompileOptions(**given) if options is None else dataclasses.replace(options, **given) if given else options
    require_precision(opts.dtype)
    if ansatz_overrides is not None and ansatz is not None:
        raise QvafError("ansatz_overrides apply to models; pass the ansatz's arguments with args=")
    program, model_name, graph = _lower(spec_or_path, model, ansatz, args, ansatz_overrides)
    if graph is None:  # a spec with one ansatz and no model: compile the ansatz
        return compile(program, ansatz=next(iter(program.ansatze)), args=args, options=opts)
    graph, stages = _optimise(graph, opts)
    from qvaf.compiler import backends

    fns = backends.get_backend(opts.backend).build(graph, opts.dtype)
    model = Compiled(graph, fns, options=opts, program=program, model_name=model_name,
                     ansatz_overrides=ansatz_overrides, stages=stages)
    return model if noise is None else model.with_noise(noise)


def _lower(spec_or_path, model, ansatz, args, ansatz_overrides):
    """``(program, model name, lowered graph)``; the graph is None when the spec has a single
    ansatz and no model and nothing was named."""
    if _is_graph(spec_or_path):
        return None, spec_or_path.graph.get("name"), spec_or_path
    program = spec_or_path if hasattr(spec_or_path, "models") else load(spec_or_path)
    from qvaf.compiler.lower import lower_ansatz, lower_model

    if ansatz is not None:
        if model is not None:
            raise QvafError("pass either model= or ansatz=, not both")
        _check_choice("ansatz", ansatz, program.ansatze, program)
        return program, ansatz, lower_ansatz(program, ansatz, dict(args) if args else None)
    from qvaf._specs import pick_model

    model = pick_model(program, model)
    if model is None:  # no model at all: a single ansatz compiles alone
        if len(program.ansatze) != 1:
            raise QvafError(_choose_message(program))
        return program, None, None
    overrides = {k: dict(v) for k, v in ansatz_overrides.items()} if ansatz_overrides else None
    return program, model, lower_model(program, model, dict(args) if args else None, overrides)


def _optimise(graph, opts):
    """The graph after the options' passes, and the kept stages (empty unless ``keep_ir``)."""
    from qvaf.compiler.passes import run_pipeline
    from qvaf.compiler.verify import verify

    stages = [("lowering", graph)] if opts.keep_ir else None
    pipeline = opts.pipeline()
    if pipeline:
        dump = (lambda name, g: stages.append((name, g))) if stages is not None else None
        graph = run_pipeline(graph, pipeline, dump, verify_each=opts.verify_each)
    elif opts.verify_each:
        verify(graph)
    _check_size(graph, opts.unroll_limit)
    return graph, tuple(stages or ())


def _check_size(graph, limit) -> None:
    from qvaf.compiler.analysis import unroll_problems
    from qvaf.compiler.errors import CompileError

    errors, _ = unroll_problems(graph, limit)
    if errors:
        raise CompileError("; ".join(errors), hint="lower reps, or compile from Python with "
                           "qvaf.compile(..., unroll_limit=N) to wait for it")


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


def _has_noise_marks(graph) -> bool:
    from qvaf.compiler.backends._common import flatten_ops
    from qvaf.compiler.ir import KanNode, NoiseOp

    return any(isinstance(op, NoiseOp) for _, data in graph.nodes(data=True) if isinstance(data.get("op"), KanNode)
               for op, _ in flatten_ops(data["op"].kernel, marks=True))


# ----------------------------------------------------------------------------- the compiled network


class Compiled:
    """A compiled network: its IR, its parameter table and pure functions of ``(params, x)``.

    ``params`` is a plain dict of dicts, ``params[layer_id][name]``, e.g.
    ``params["layer0"]["theta"]``; :meth:`init` builds it and :attr:`trainable` marks which
    arrays training updates. The others (``mask``, random ``const`` arrays) are fixed: the
    network functions treat them as constants (``jax.lax.stop_gradient``), so their gradient
    is exactly zero and a hand-written optax loop cannot move them.

    The jitted functions derived from a model (its jitted ``apply``, training runners) are
    kept on the model itself (:meth:`cached`, at most :data:`MEMO_SIZE`) and go when it goes.
    """

    def __init__(self, graph, fns, *, options, program=None, model_name=None, ansatz_overrides=None, stages=()):
        from qvaf.compiler.backends._common import layer_order

        self.ir = graph
        self._fns = fns
        self.options = options
        self.program = program
        self.model_name = model_name
        self.model_args = dict(graph.graph.get("model_args", {}) or {})
        self.ansatz_overrides = dict(ansatz_overrides) if ansatz_overrides else {}
        self.param_table = tuple(graph.graph.get("params", ()))
        self.stages = tuple(stages)
        order = layer_order(graph)
        self.in_width = order[0][1].width
        self.out_width = order[-1][1].width
        self.layers = tuple(nid for nid, _ in order[1:-1])
        self._fixed = frozenset((s.owner, s.name) for s in self.param_table if not s.trainable)
        self._memo: collections.OrderedDict = collections.OrderedDict()
        self.noise = getattr(fns, "noise", None)

    @property
    def backend(self) -> str:
        return self.options.backend

    @property
    def dtype(self) -> str:
        """``"float32"`` or ``"float64"``."""
        return self.options.dtype

    # -- parameters

    def init(self, key) -> dict[str, dict[str, Any]]:
        """Fresh parameters (trainable and fixed) from the table's initialisers.

        Args:
            key: a ``jax.random`` key or an int seed. Each array's values depend on the key
                and its name ``layer.name`` only, and are the same in float32 and float64 up
                to rounding (they are drawn in float64 on the host, see :mod:`qvaf._init`).
        """
        from qvaf._init import init_params
        from qvaf.compiler.options import require_precision

        from qvaf._specs import check_key

        check_key(key)
        require_precision(self.dtype)
        return init_params(self.ir, self.param_table, self.dtype, key)

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

    def apply(self, params, x, *, key=None, shots=None):
        """The network output ``[B, out]`` for inputs ``x`` ``[B, in]`` (a single ``[in]``
        sample gives ``[out]``). Pure: works under ``jax.jit``, ``grad`` and ``vmap``; fixed
        arrays get zero gradient.

        With ``shots=S`` (and a ``jax.random`` ``key``) every edge's expectation is replaced
        by its estimate from S measurements, ``2 Binomial(S, (1 + <Z>)/2) / S - 1``, drawn from
        ``key`` (same key, same samples); gradients are those of the expectation
        (straight-through, docs/noise.md).
        """
        from qvaf._specs import check_input
        from qvaf.compiler.noise import check_shots

        check_input(x)
        check_shots(shots, key)
        if shots is None:
            return self._fns.apply(self._constants(params), x)
        import inspect

        if "shots" not in inspect.signature(self._fns.apply).parameters:
            raise QvafError(f"the {self.backend!r} backend does not sample shots; use backend='jax'")
        return self._fns.apply(self._constants(params), x, key=key, shots=int(shots))

    def with_noise(self, noise) -> "Compiled":
        """This network with every edge circuit run under ``noise`` (None: without noise).

        ``noise`` is a :class:`~qvaf.NoiseModel`, its ``"name=value,..."`` text or its JSON
        dict. The noisy functions run the circuits as written (loops unrolled, constants
        inlined, no gate merged or dropped), so "after every gate" counts the gates of the
        spec, the same gates the QASM emitter's ``written`` level writes. The parameters are
        those of this model.

        Raises:
            QvafError: a bad noise model, or a backend without noise support.
        """
        from qvaf.compiler.noise import as_noise_model

        noise = as_noise_model(noise)
        return self.cached(("with_noise", noise), lambda: self._build_with_noise(noise))

    def _build_with_noise(self, noise) -> "Compiled":
        import inspect

        from qvaf.compiler import backends
        from qvaf.compiler.passes import run_pipeline

        backend = backends.get_backend(self.backend)
        if noise is None:
            fns = backend.build(self.ir, self.dtype)
        else:
            if "noise" not in inspect.signature(backend.build).parameters:
                raise QvafError(f"the {self.backend!r} backend does not simulate noise; use backend='jax'")
            kind = "ansatz" if self.program is not None and self.model_name not in self.program.models \
                and self.model_name in self.program.ansatze else "model"
            written = run_pipeline(self._lowered(kind), ["unroll_loops", "inline_constants"])
            if noise.where == "spec" and noise.has_channel and not _has_noise_marks(written):
                raise QvafError(f"noise where=spec applies at the ansatz's 'noise' statements, and "
                                f"{self.model_name!r} has none; add 'noise' after the gates it should follow, "
                                "or use where=gate / where=upload")
            fns = backend.build(written, self.dtype, noise=noise)
        return Compiled(self.ir, fns, options=self.options, program=self.program, model_name=self.model_name,
                        ansatz_overrides=self.ansatz_overrides or None, stages=self.stages)

    def edge_values(self, params, x, layer_id: str | int):
        """Raw activations ``phi_oi(x_i)`` of every edge of a kan layer: ``[B, out, in]``.

        ``layer_id`` is a layer name (``"layer0"``) or its position in :attr:`layers` (``0``;
        negative counts from the end).
        """
        return self._fns.edge_values(self._constants(params), x, layer_id=self.layer_name(layer_id))

    def layer_inputs(self, params, x) -> dict[str, Any]:
        """The input of every layer, ``{layer_id: [B, width]}``."""
        return self._fns.layer_inputs(self._constants(params), x)

    def __call__(self, params, x):
        return self.apply(params, x)

    def _constants(self, params):
        """``params`` with every fixed array that is being traced behind ``stop_gradient``
        (concrete arrays pass untouched: there is no gradient to stop)."""
        from qvaf.compiler.options import require_precision

        require_precision(self.dtype)
        if not self._fixed or not isinstance(params, Mapping):
            return params
        import jax

        out = dict(params)
        for owner, name in self._fixed:
            layer = params.get(owner)
            if isinstance(layer, Mapping) and isinstance(layer.get(name), jax.core.Tracer):
                out[owner] = {**out[owner], name: jax.lax.stop_gradient(layer[name])}
        return out

    # -- derived functions, kept on the model

    def cached(self, key, build):
        """``build()``, computed once per ``key`` for this model (the least recently used of
        more than :data:`MEMO_SIZE` entries is dropped). For jitted functions derived from the
        model, so that they live exactly as long as it does."""
        if key in self._memo:
            self._memo.move_to_end(key)
            return self._memo[key]
        value = build()
        self._memo[key] = value
        while len(self._memo) > MEMO_SIZE:
            self._memo.popitem(last=False)
        return value

    @property
    def jitted_apply(self):
        """``jax.jit(self.apply)``, made once per model."""
        import jax

        return self.cached("jitted_apply", lambda: jax.jit(self.apply))

    def __repr__(self) -> str:
        name = self.model_name or "network"
        return (f"Compiled({name!r}, {self.in_width} -> {self.out_width}, layers={list(self.layers)}, "
                f"params={self.param_count} trainable + {self.fixed_count} fixed, backend={self.backend!r}, "
                f"dtype={self.dtype!r}" + (f", noise={self.noise.describe()!r}" if self.noise else "") + ")")

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
