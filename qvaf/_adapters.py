"""What the Flax NNX and Equinox modules share: building the network and its parameters."""

from __future__ import annotations

from qvaf.dsl.errors import QvafError


def build_model(model, *, name=None, args=None, dtype="float32"):
    """A compiled network from ``model``: itself when it already is one (a
    :class:`qvaf.Compiled` or an HQKAN block), else ``qvaf.compile(model, name, args=, dtype=)``."""
    import os

    import qvaf

    if hasattr(model, "apply") and hasattr(model, "init") and hasattr(model, "trainable"):
        if name is not None or args is not None:
            raise QvafError("name= and args= apply when the module compiles a spec, not to a compiled model")
        return model
    if isinstance(model, (str, os.PathLike)):
        return qvaf.compile(model, name, args=args, dtype=dtype)
    raise QvafError(f"a qvaf module wraps a spec path, a bundled name or a compiled model, not {type(model).__name__}")


def hqkan_model(d, options: dict):
    import qvaf

    known = {"hidden", "k", "reps", "group", "spec", "dtype"}
    unknown = sorted(set(options) - known)
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], sorted(known), n=1)
        raise QvafError(f"HQKAN has no option '{unknown[0]}'" + (f"; did you mean '{close[0]}'?" if close else
                                                               f"; options: {', '.join(sorted(known))}"))
    return qvaf.hqkan(d, **options)


def check_params(model, params, key):
    """``params`` checked against the model's structure, shapes and dtypes, or fresh ones
    from ``model.init(key)``."""
    if params is None:
        if key is None:
            raise QvafError("pass rngs= (or key=) to initialise the parameters, or params=")
        return model.init(key)
    from qvaf.runtime import checkpoint as C
    from qvaf.runtime.saving import param_template

    compiled = getattr(model, "compiled", model)
    try:
        return C.fill_named(param_template(compiled), C.flatten_named(params), "for this model")
    except C.CheckpointError as exc:
        raise QvafError(str(exc).replace("incompatible checkpoint for this model: ", "params do not fit the model: "))\
            from None
