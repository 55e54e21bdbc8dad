"""Layer extension: grow the number of data re-uploads of a trained network in place.

``extend(model, params, new_reps)`` recompiles the model with ``reps = new_reps`` and maps
every array onto the new shapes. The compiler records which axes of an array have size
``reps + k`` (``ParamSpec.reps_axes``); along each, the first ``old_reps`` slots are copied,
the last ``k`` slots (the final rotation after the last re-upload, for ``theta[reps + 1, 2]``)
are copied to the end, and the new slots in between take the ansatz's ``grow`` value::

    old theta:  [t0, t1, t2 | tf]          (reps 3, k = 1)
    new theta:  [t0, t1, t2, g, g | tf]    (reps 5, g = grow value)

The result must compute the same function: both networks are evaluated on random inputs
and compared (float64: to 1e-6; float32: to 1e-5 relative to the output scale, the
resolution of single precision). When an ansatz has no function-preserving growth (its new
slots are not the identity, e.g. ``pz`` re-uploads ``RZ(x)`` with a fixed ``w = 1``) the
extension is refused; ``daruan`` grows exactly (new theta = 0, w = 0, b = 0).

The optimizer state does not carry over: training re-initialises it at an extension.

Example::

    model2, params2 = qvaf.extend(model, params, 5)
"""

from __future__ import annotations

import itertools

import numpy as np

from qvaf.dsl.errors import QvafError

GROWABLE_HINT = ("the 'daruan' ansatz (specs/ansatz/daruan.qvaf: trainable w, b with `grow` values) "
                 "grows without changing the function")


class ExtendError(QvafError):
    """The network cannot be extended as asked."""


def kan_reps(model) -> dict[str, int | None]:
    """``{layer_id: reps}`` for every kan layer (None where the ansatz has no int ``reps``)."""
    from qvaf.compiler.ir import KanNode

    out = {}
    for lid in model.layers:
        node = model.ir.nodes[lid]["op"]
        if isinstance(node, KanNode):
            r = dict(node.ansatz_args).get("reps")
            out[lid] = r if isinstance(r, int) and not isinstance(r, bool) else None
    return out


def extend(model, params, new_reps: int, layers="*", *, check_inputs: np.ndarray | None = None):
    """Grow kan layers to ``new_reps`` re-uploads, keeping the network's function.

    Args:
        model: a :class:`qvaf.Compiled` compiled from a spec (it needs ``model.program``).
        params: its parameters.
        new_reps: the new number of re-uploads (>= the current one).
        layers: ``"*"`` (every kan layer), a layer id or a list of layer ids.
        check_inputs: inputs ``[B, in]`` for the equality check (default: 64 random rows
            uniform on [-2, 2]).

    Returns:
        ``(model2, params2)``; the same objects when nothing changes.

    Raises:
        ExtendError: no ``reps`` argument, shrinking, an array without a ``grow`` value, a
            reps-dependent dimension not of the form ``reps + k``, or growth that changes
            the function.
    """
    import jax
    import jax.numpy as jnp

    import qvaf

    if not isinstance(new_reps, int) or isinstance(new_reps, bool) or new_reps < 1:
        raise ExtendError(f"new_reps must be a positive integer, got {new_reps!r}")
    if getattr(model, "program", None) is None:
        raise ExtendError("extension recompiles the model from its spec; this model was compiled from an IR graph")
    current = kan_reps(model)
    targets = list(current) if layers == "*" else [layers] if isinstance(layers, str) else list(layers)
    for lid in targets:
        if lid not in current:
            raise ExtendError(f"'{lid}' is not a kan layer; kan layers: {', '.join(current) or 'none'}")
        node = model.ir.nodes[lid]["op"]
        if current[lid] is None:
            raise ExtendError(f"cannot extend {lid}: ansatz '{node.ansatz}' has no integer argument 'reps'")
        if new_reps < current[lid]:
            raise ExtendError(f"cannot shrink {lid} from reps {current[lid]} to {new_reps}; extension only grows")
    if all(current[lid] == new_reps for lid in targets):
        return model, params

    old_over = {k: dict(v) for k, v in (model.ansatz_overrides or {}).items()}
    if layers == "*":
        overrides = {k: ({**v, "reps": new_reps} if "reps" in v else v) for k, v in old_over.items()}
        overrides["*"] = {**old_over.get("*", {}), "reps": new_reps}
    else:
        overrides = dict(old_over)
        for lid in targets:
            overrides[lid] = {**old_over.get(lid, {}), "reps": new_reps}
    model2 = qvaf.compile(model.program, model.model_name, args=model.model_args or None,
                          ansatz_overrides=overrides, backend=model.backend, dtype=model.dtype)
    old_specs = {s.path: s for s in model.param_table}
    fresh = model2.init(jax.random.PRNGKey(0))
    params2 = {}
    for spec in model2.param_table:
        old = old_specs.get(spec.path)
        if old is None:
            raise ExtendError(f"extending adds the array {spec.path}, which has no counterpart to copy from")
        value = np.asarray(params[spec.owner][spec.name])
        if tuple(old.shape) != tuple(spec.shape):
            node = model.ir.nodes[spec.owner]["op"]
            value = _grow(value, spec, current[spec.owner], new_reps, node.ansatz)
        params2.setdefault(spec.owner, {})[spec.name] = jnp.asarray(value, fresh[spec.owner][spec.name].dtype)
    _verify(model, params, model2, params2, check_inputs)
    return model2, params2


def _grow(old: np.ndarray, spec, old_reps: int, new_reps: int, ansatz: str) -> np.ndarray:
    """Map ``old`` onto ``spec.shape``: copy the first ``old_reps`` and last ``k`` slots of
    every reps-dependent dimension, fill the rest with ``spec.grow``."""
    if spec.grow is None:
        raise ExtendError(f"cannot extend ansatz '{ansatz}': its {'param' if spec.trainable else 'const'} "
                          f"'{spec.name}' ({spec.path}, shape {list(old.shape)} -> {list(spec.shape)}) has no "
                          f"grow value, so its new slots have no function-preserving fill; {GROWABLE_HINT}")
    if len(old.shape) != len(spec.shape):
        raise ExtendError(f"cannot extend {spec.path}: its rank changes with reps ({list(old.shape)} -> {list(spec.shape)})")
    pairs = []  # per dimension: list of (old slice, new slice)
    reps_axes = dict(spec.reps_axes)
    for d, (a, b) in enumerate(zip(old.shape, spec.shape)):
        if a == b:
            pairs.append([(slice(None), slice(None))])
            continue
        k = reps_axes.get(d)
        if k is None or a - old_reps != k or b - new_reps != k:
            raise ExtendError(f"cannot extend {spec.path}: dimension {d} has size {a} at reps {old_reps} and {b} "
                              f"at reps {new_reps}, not reps + k; only [reps + k] dimensions can grow")
        pairs.append([(slice(0, old_reps), slice(0, old_reps))] + ([(slice(a - k, a), slice(b - k, b))] if k else []))
    new = np.full(spec.shape, spec.grow, dtype=old.dtype)
    for combo in itertools.product(*pairs):
        new[tuple(n for _, n in combo)] = old[tuple(o for o, _ in combo)]
    return new


def _verify(model, params, model2, params2, check_inputs) -> None:
    import jax.numpy as jnp

    dtype = jnp.dtype(model.dtype)
    if check_inputs is None:
        check_inputs = np.random.default_rng(0).uniform(-2.0, 2.0, (64, model.in_width))
    x = jnp.asarray(check_inputs, dtype)
    y1 = np.asarray(model.apply(params, x), np.float64)
    y2 = np.asarray(model2.apply(params2, x), np.float64)
    diff = float(np.max(np.abs(y1 - y2))) if y1.size else 0.0
    scale = max(1.0, float(np.max(np.abs(y1)))) if y1.size else 1.0
    tol = 1e-6 if dtype == jnp.float64 else 1e-5 * scale
    if not diff <= tol:
        ansatze = sorted({model.ir.nodes[lid]["op"].ansatz for lid in kan_reps(model)})
        raise ExtendError(f"extending ansatz {', '.join(repr(a) for a in ansatze)} changes the network's function "
                          f"(outputs differ by up to {diff:.3g} on random inputs, tolerance {tol:.1g}): its new "
                          f"slots are not the identity, so there is no function-preserving growth; {GROWABLE_HINT}")
