"""Layer extension: grow the number of data re-uploads of a trained network in place.

``extend(model, params, new_reps)`` recompiles the model with ``reps = new_reps`` and maps
every array onto the new shapes as the reference package's ``QKAN.refine()`` does. The
compiler records which axes of an array have size ``reps + k`` (``ParamSpec.reps_axes``);
along them an entry whose index lies inside the old shape keeps its value and index (the
old final rotation ``theta[reps]`` included), and every new slot after them takes the
array's ``grow`` value::

    old theta:  [t0, t1, t2, tf]           (reps 3: slots 0..3)
    new theta:  [t0, t1, t2, tf, g, g]     (reps 5, g = grow value, 0 for theta)

Whether that keeps the network's function is decided from the circuits, before any number
is computed (:func:`qvaf.compiler.growth.check_growth`): the grown circuit must be the old
one followed by gates that are the identity with the grow values or commute with the
observable. For ``pz`` from reps R the appended gates are ``rz(x)``, then
``rz(0) ry(0) rz(x)`` per new slot and ``rz(0) ry(0)``: Z rotations and identities, which
commute with ``measure z`` (and the ``inspired`` readout, a function of <Z>), so pz grows
exactly even with its fixed data rotations, as do ``rpz`` and ``daruan``. ``mix`` appends
``ry(x)`` and ``real`` appends ``x``: refused, naming that gate. As a second line of
defence both networks are evaluated on random inputs and compared (float64: to 1e-10;
float32: to 1e-5 relative to the output scale, the resolution of single precision).

The optimizer state does not carry over: training re-initialises it at an extension.

Example::

    model2, params2 = qvaf.extend(model, params, 5)
"""

from __future__ import annotations

import os

import numpy as np

from qvaf.dsl.errors import QvafError

GROWABLE_HINT = ("pz, rpz and daruan (specs/ansatz/) grow without changing the function: what they "
                 "append is the identity or commutes with the readout")


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

    overrides = _grown_overrides(model, targets, new_reps, layers == "*")
    model2 = qvaf.compile(model.program, model.model_name, args=model.model_args or None,
                          ansatz_overrides=overrides, backend=model.backend, dtype=model.dtype)
    _prove(model, overrides, targets)
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


def _grown_overrides(model, targets, new_reps: int, every: bool) -> dict:
    """The model's ansatz overrides with ``reps = new_reps`` for the ``targets``."""
    old_over = {k: dict(v) for k, v in (model.ansatz_overrides or {}).items()}
    if every:
        overrides = {k: ({**v, "reps": new_reps} if "reps" in v else v) for k, v in old_over.items()}
        overrides["*"] = {**old_over.get("*", {}), "reps": new_reps}
        return overrides
    overrides = dict(old_over)
    for lid in targets:
        overrides[lid] = {**old_over.get(lid, {}), "reps": new_reps}
    return overrides


def _prove(model, overrides: dict, targets) -> None:
    """Refuse, naming the gate, unless the compiler proves every target layer's growth keeps
    its function (:func:`qvaf.compiler.growth.check_growth` on the lowered circuits)."""
    from qvaf.compiler.growth import check_growth
    from qvaf.compiler.lower import lower_model

    before = lower_model(model.program, model.model_name, model.model_args or None, model.ansatz_overrides or None)
    after = lower_model(model.program, model.model_name, model.model_args or None, overrides)
    grow = {}
    for spec in after.graph["params"]:
        grow.setdefault(spec.owner, {})[spec.name] = spec.grow
    for lid in targets:
        old, new = before.nodes[lid]["op"], after.nodes[lid]["op"]
        verdict = check_growth(old.kernel, new.kernel, grow.get(lid, {}))
        if not verdict.ok:
            reps = (dict(old.ansatz_args).get("reps"), dict(new.ansatz_args).get("reps"))
            raise ExtendError(f"cannot extend {lid} (ansatz '{old.ansatz}', reps {reps[0]} -> {reps[1]}) without "
                              f"changing its function: {verdict.reason}; {GROWABLE_HINT}")


def _grow(old: np.ndarray, spec, old_reps: int, new_reps: int, ansatz: str) -> np.ndarray:
    """Map ``old`` onto ``spec.shape`` as ``refine()`` does: every old entry keeps its index,
    the new slots of every reps-dependent dimension (``spec.reps_axes``) take ``spec.grow``."""
    if spec.grow is None:
        raise ExtendError(f"cannot extend ansatz '{ansatz}': its {'param' if spec.trainable else 'const'} "
                          f"'{spec.name}' ({spec.path}, shape {list(old.shape)} -> {list(spec.shape)}) has no "
                          f"grow value, so its new slots have no function-preserving fill; {GROWABLE_HINT}")
    if len(old.shape) != len(spec.shape):
        raise ExtendError(f"cannot extend {spec.path}: its rank changes with reps ({list(old.shape)} -> {list(spec.shape)})")
    reps_axes = dict(spec.reps_axes)
    for d, (a, b) in enumerate(zip(old.shape, spec.shape)):
        k = reps_axes.get(d)
        if a != b and (k is None or a - old_reps != k or b - new_reps != k):
            raise ExtendError(f"cannot extend {spec.path}: dimension {d} has size {a} at reps {old_reps} and {b} "
                              f"at reps {new_reps}, not reps + k; only [reps + k] dimensions can grow")
    new = np.full(spec.shape, spec.grow, dtype=old.dtype)
    new[tuple(slice(0, a) for a in old.shape)] = old
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
    tol = 1e-10 * scale if dtype == jnp.float64 else 1e-5 * scale
    if not diff <= tol:
        ansatze = sorted({model.ir.nodes[lid]["op"].ansatz for lid in kan_reps(model)})
        raise ExtendError(f"extending ansatz {', '.join(repr(a) for a in ansatze)} changes the network's function "
                          f"(outputs differ by up to {diff:.3g} on random inputs, tolerance {tol:.1g}) although the "
                          f"compiler found the appended gates harmless; please report this spec")


# ----------------------------------------------------------------------------- a saved model


def extend_saved(path: str, new_reps: int, out: str, layers="*") -> dict:
    """Grow the model saved at ``path`` (a run, a checkpoint or a :func:`qvaf.save` folder) to
    ``new_reps`` re-uploads and save the result in ``out`` as a model checkpoint (the format
    of :func:`qvaf.save`, plus the run's task so that ``qvaf eval OUT`` needs no ``--task``).
    The write is atomic: ``out`` holds either nothing new or the whole checkpoint.

    Returns:
        A report: the layers grown with their reps before and after, parameter counts, the
        largest output change on the check inputs, the checkpoint written.

    Raises:
        ExtendError: an ``out`` that already holds a run or saved model (or is a file), a
            checkpoint of an ansatz compiled alone, or growth that would change the function.
        CheckpointError: a missing or damaged checkpoint.
    """
    import jax

    from . import checkpoint as C
    from .run import _read_sources, load_run
    from .saving import model_part
    from .train_state import RunLog, TrainState

    if os.path.exists(out) and not os.path.isdir(out):
        raise ExtendError(f"cannot save to '{out}': it is a file, not a folder")
    try:
        C.resolve(out)
    except C.CheckpointError:
        pass
    else:
        raise ExtendError(f"'{out}' already holds a run or a saved model; choose another --out")
    model, params, ck = load_run(path)
    part = ck.config["model"]
    if part.get("ansatz"):
        raise ExtendError(f"{ck.path} holds the ansatz '{part['ansatz']}' compiled alone; extension grows the kan "
                          f"layers of a model")
    before = kan_reps(model)
    model2, params2 = extend(model, params, new_reps, layers)
    x = np.random.default_rng(1).uniform(-1.0, 1.0, (64, model.in_width))
    change = float(np.max(np.abs(np.asarray(model2.apply(params2, x), np.float64)
                                 - np.asarray(model.apply(params, x), np.float64))))
    config = {"model": {**model_part(model2, part["spec"]), **({"block": part["block"]} if "block" in part else {})},
              "extended_from": {"checkpoint": os.path.abspath(ck.path), "reps": before}}
    if isinstance(ck.config.get("task"), dict):
        config["task"] = ck.config["task"]
    state = TrainState(step=0, params=params2, opt_state=(), key=jax.random.PRNGKey(0), phase_start=0,
                       best_params={}, best_metric=None, best_step=0, stale=0)
    try:
        saved = C.save(out, state, RunLog(), config, _read_sources(ck.spec_dir), keep=1)
    except OSError as exc:
        raise ExtendError(f"cannot save to '{out}': {exc.strerror or exc}") from None
    after = kan_reps(model2)
    return {"event": "extend", "checkpoint": ck.path, "out": out, "saved": saved,
            "layers": {lid: {"before": before[lid], "after": after[lid]} for lid in after if after[lid] != before[lid]},
            "params": {"before": model.param_count, "after": model2.param_count}, "max_output_change": change}
