"""Finding specs by name, and choosing the model of a spec.

The bundled library (``specs/`` in a checkout, ``qvaf/specs`` in a wheel) is addressed by
name wherever a spec path is accepted: ``qvaf.compile("regression")`` and
``qvaf train regression`` both mean ``specs/models/regression.qvaf``.

A spec's *own* models are those written in the file itself; imported files contribute
ansätze and models to the namespace, but "the spec's only model" and the list of models to
choose from mean the file's own (``specs/models/hqkan.qvaf`` imports ``pz.qvaf``; a file that
imports ``regression.qvaf`` to reuse it does not also offer ``regression``).
"""

from __future__ import annotations

import difflib
import os

from qvaf.dsl.errors import QvafError


class SpecNotFoundError(QvafError):
    """No spec file at the given path and no bundled spec of that name."""


def specs_dir() -> str:
    """The bundled ``specs/`` folder (inside the installed package or at the repository root)."""
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in (os.path.join(here, "specs"), os.path.join(os.path.dirname(here), "specs")):
        if os.path.isdir(os.path.join(cand, "models")):
            return cand
    raise SpecNotFoundError("cannot find the bundled specs/ folder; pass the path of a .qvaf file instead")


def bundled_models() -> list[str]:
    """Names of the bundled models (``regression``, ``digits``, ``hqkan``)."""
    folder = os.path.join(specs_dir(), "models")
    return sorted(f[:-5] for f in os.listdir(folder) if f.endswith(".qvaf"))


def find_spec(spec) -> str:
    """The path a spec argument names: the path itself when something exists there, else a
    bundled spec by name (``regression`` -> ``specs/models/regression.qvaf``, ``ansatz/pz``
    -> ``specs/ansatz/pz.qvaf``).

    Raises:
        SpecNotFoundError: nothing at the path and no bundled spec of that name (the message
            lists the bundled models).
    """
    if not isinstance(spec, (str, os.PathLike)):
        raise SpecNotFoundError(f"a spec is a path or a bundled model name, not {type(spec).__name__}")
    spec = os.fspath(spec)
    if not spec.strip():
        raise SpecNotFoundError("empty spec path")
    if os.path.exists(spec):
        return spec
    base = specs_dir()
    name = spec if spec.endswith(".qvaf") else spec + ".qvaf"
    if not os.path.isabs(spec) and ".." not in spec.split("/"):
        for cand in (os.path.join(base, "models", name), os.path.join(base, name)):
            if os.path.isfile(cand):
                return cand
    if os.sep in spec or (os.altsep and os.altsep in spec):
        parent = os.path.dirname(spec)
        where = "" if os.path.isdir(parent) else f" (no folder '{parent}')"
        raise SpecNotFoundError(f"no spec file '{spec}': no such file{where}")
    bundled = bundled_models()
    close = difflib.get_close_matches(os.path.basename(spec).removesuffix(".qvaf"), bundled, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise SpecNotFoundError(f"no spec file '{spec}' (and no bundled model of that name; bundled: "
                            f"{', '.join(bundled)}){hint}")


def own_models(program) -> list[str]:
    """The models defined in the program's main file (not in the files it imports)."""
    main = getattr(program, "path", None)
    return [name for name, m in program.models.items() if m.span is None or main is None or m.span.file == main]


def pick_model(program, model: str | None, *, how: str = "model=NAME") -> str | None:
    """The model to compile: ``model`` itself (checked), or the main file's only model.

    Args:
        program: a loaded :class:`qvaf.dsl.Program`.
        model: the requested name, or None.
        how: how the caller names the choice in messages (``model=NAME`` from Python,
            ``--model NAME`` on the command line).

    Returns:
        The model name, or None when the spec has no model at all (only ansätze).

    Raises:
        QvafError: an unknown name, or several models and none chosen; both list the main
            file's models.
    """
    where = getattr(program, "path", "the spec")
    own = own_models(program)
    if model is not None:
        if model not in program.models:
            shown = sorted(own or program.models)
            raise QvafError(f"no model named {model!r} in {where}; models: {', '.join(shown) or 'none'}")
        return model
    if len(own) == 1:
        return own[0]
    if not own and len(program.models) == 1:
        return next(iter(program.models))
    if not program.models:
        return None
    shown = sorted(own or program.models)
    raise QvafError(f"{where} defines several models ({', '.join(shown)}); choose one with {how}")


# ----------------------------------------------------------------------------- argument checks


def check_compile_options(args, ansatz_overrides) -> None:
    """``args`` is a mapping of names to values, ``ansatz_overrides`` a mapping of layer ids
    (or ``"*"``) to such mappings; anything else is a :class:`QvafError` showing the form."""
    from collections.abc import Mapping

    if args is not None and not isinstance(args, Mapping):
        raise QvafError(f"args must be a dict of argument values, e.g. args={{'hidden': 16}}; got {args!r}")
    if ansatz_overrides is not None:
        if not isinstance(ansatz_overrides, Mapping) or not all(
                isinstance(k, str) and isinstance(v, Mapping) for k, v in ansatz_overrides.items()):
            raise QvafError("ansatz_overrides must map a kan layer id (or '*' for all) to ansatz arguments, "
                            f"e.g. {{'*': {{'reps': 5}}}}; got {ansatz_overrides!r}")


def check_key(key) -> None:
    """A ``jax.random`` key or an int seed; anything else is a :class:`QvafError`."""
    import numpy as np

    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
        return
    dtype = getattr(key, "dtype", None)
    if dtype is not None and (str(dtype).startswith("key<") or (np.dtype(dtype) == np.uint32 and key.shape[-1:] == (2,))):
        return
    raise QvafError(f"init takes a jax.random key (jax.random.PRNGKey(0)) or an int seed, got {key!r}")


def check_input(x) -> None:
    """Inputs are an array-like of numbers; a string, dict or None is a :class:`QvafError`."""
    if x is None or isinstance(x, (str, bytes, dict)):
        raise QvafError(f"apply takes inputs as an array [B, in] (or one sample [in]), got {type(x).__name__}")
