"""Saving and restoring a model with its parameters from Python: :func:`save`, :func:`restore`.

A saved model is a checkpoint of :mod:`qvaf.runtime.checkpoint`, the format training writes
(atomic, checksummed, loaded without pickle), holding the parameters, the spec files the
model was compiled from and its compile options — no optimizer state or task::

    qvaf.save("models/expsin", model, params)
    model, params = qvaf.restore("models/expsin")      # the same network, the same bits

:func:`restore` also reads a training run directory (``qvaf train --out RUN``): it returns
the model and parameters of the run's latest checkpoint. An HQKAN block comes back as one.
"""

from __future__ import annotations

import os

from qvaf.dsl.errors import QvafError

from . import checkpoint as C


def _folder(directory) -> str:
    if not isinstance(directory, (str, os.PathLike)) or not os.fspath(directory):
        raise QvafError(f"a saved model lives in a folder: pass its path, not {directory!r}")
    return os.fspath(directory)


def _compiled(model):
    """The :class:`qvaf.Compiled` behind a model (an HQKAN block wraps one)."""
    from qvaf._api import Compiled

    inner = getattr(model, "compiled", model)
    if not isinstance(inner, Compiled):
        raise QvafError(f"qvaf.save takes a model from qvaf.compile or qvaf.hqkan, not {type(model).__name__}")
    if inner.program is None:
        raise QvafError("qvaf.save needs a model compiled from a spec (this one was compiled from an IR graph, "
                        "so there is no source to save with it)")
    return inner


def model_part(compiled, spec_rel: str) -> dict:
    """The ``model`` part of a checkpoint's configuration for ``compiled``."""
    part = {"spec": spec_rel, "args": dict(compiled.model_args),
            "ansatz_overrides": {k: dict(v) for k, v in (compiled.ansatz_overrides or {}).items()},
            "dtype": compiled.dtype, "backend": compiled.backend}
    if compiled.model_name in compiled.program.models:
        part["model"] = compiled.model_name
    else:  # an ansatz compiled alone
        part["ansatz"] = compiled.model_name
        part["args"] = dict(compiled.ir.nodes["layer0"]["op"].ansatz_args)
    return part


def save(directory, model, params) -> str:
    """Write ``model`` and ``params`` to ``directory`` as a checkpoint; returns its path.

    Args:
        directory: a folder (created if needed). Saving again to the same folder replaces
            the saved model atomically; a folder holding a training run is refused.
        model: a :class:`qvaf.Compiled` compiled from a spec, or an HQKAN block.
        params: its parameters, structured as ``model.init`` returns them.

    Raises:
        QvafError: a model without a spec, parameters that do not fit the model (the message
            names the array), or a folder that holds a training run.
    """
    import jax

    from .run import spec_sources
    from .train_state import RunLog, TrainState

    compiled = _compiled(model)
    directory = _folder(directory)
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise QvafError(f"cannot save to '{directory}': it is a file, not a folder")
    try:
        existing = C.load(directory)
    except C.CheckpointError:
        existing = None
    if existing is not None and "train" in existing.config:
        raise QvafError(f"'{directory}' holds a training run; save the model to another folder")
    try:
        params = C.fill_named(param_template(compiled), C.flatten_named(params), "for this model")
    except C.CheckpointError as exc:
        raise QvafError("qvaf.save: " + str(exc).replace("incompatible checkpoint for this model: ",
                                                         "params do not fit the model: ")) from None
    except (TypeError, ValueError) as exc:
        raise QvafError(f"qvaf.save: params do not have the structure of model.init(key): {exc}") from None
    sources, main_rel = spec_sources(compiled.program)
    config = {"model": model_part(compiled, main_rel)}
    if hasattr(model, "compiled"):
        config["model"]["block"] = {"kind": "hqkan", "d": model.d, "hidden": model.hidden}
    state = TrainState(step=0, params=params, opt_state=(), key=jax.random.PRNGKey(0), phase_start=0,
                       best_params={}, best_metric=None, best_step=0, stale=0)
    try:
        return C.save(directory, state, RunLog(), config, sources, keep=1)
    except OSError as exc:
        raise QvafError(f"cannot save to '{directory}': {exc.strerror or exc}") from None


def compile_saved(ck, backend: str | None = None):
    """Compile the model a checkpoint's configuration describes (its own spec copy), on its
    saved backend or on ``backend``."""
    import qvaf

    part = ck.config.get("model") if isinstance(ck.config, dict) else None
    if not isinstance(part, dict) or not isinstance(part.get("spec"), str):
        raise C.CheckpointError(f"{ck.path}/config.json: no 'model' part naming its spec file")
    spec = os.path.normpath(os.path.join(ck.spec_dir, part["spec"]))
    if not spec.startswith(os.path.join(ck.spec_dir, "")) or not os.path.isfile(spec):
        raise C.CheckpointError(f"{ck.path}: the spec file '{part['spec']}' is not inside its spec/ folder")
    args = part.get("args") or None
    options = dict(dtype=part.get("dtype", "float32"), backend=backend or part.get("backend", "jax"))
    if part.get("ansatz"):
        compiled = qvaf.compile(spec, ansatz=part["ansatz"], args=args, **options)
    else:
        compiled = qvaf.compile(spec, part.get("model"), args=args,
                                ansatz_overrides=part.get("ansatz_overrides") or None, **options)
    block = part.get("block")
    if isinstance(block, dict) and block.get("kind") == "hqkan":
        from .hqkan import HQKAN

        with open(spec, encoding="utf-8") as fh:
            return HQKAN(compiled, fh.read(), int(block["d"]), int(block["hidden"]))
    return compiled


def restore(directory):
    """The ``(model, params)`` saved in ``directory`` by :func:`save`, or of the latest
    checkpoint of a training run directory.

    Raises:
        CheckpointError: a missing folder, a damaged file (checksums), or arrays that do not
            fit the saved model.
    """
    ck = C.load(_folder(directory))
    model = compile_saved(ck)
    return model, C.fill_named(param_template(getattr(model, "compiled", model)), ck.weights, ck.path)


def param_template(compiled):
    """Zero arrays with the structure, shapes and dtypes of ``compiled.init(key)``."""
    import jax
    import numpy as np

    shapes = jax.eval_shape(compiled.init, jax.random.PRNGKey(0))
    return jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), shapes)
