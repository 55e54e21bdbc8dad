"""qvaf networks as Equinox modules: :class:`QKAN` (any compiled spec) and :class:`HQKAN`
(the hybrid block of :func:`qvaf.hqkan`).

The module is a pytree whose leaves are the network's *trainable* arrays (``module.params``);
the fixed ones (masks, fixed pre-processing, random ``const`` arrays) and the compiled
network are static fields, so ``eqx.filter(module, eqx.is_inexact_array)``,
``eqx.filter_grad`` and an optax optimizer see exactly what training should change. The
forward pass is the compiled network's own ``apply``. Requires ``equinox`` (the ``qvaf[nn]``
extra); ``import qvaf`` does not load it.

Example::

    import equinox as eqx, jax, optax, qvaf.eqx

    head = qvaf.eqx.QKAN("regression", key=jax.random.PRNGKey(0))       # 2 -> 1
    opt = optax.adam(1e-2)
    state = opt.init(eqx.filter(head, eqx.is_inexact_array))

    @eqx.filter_jit
    def step(head, state, x, y):
        loss, grads = eqx.filter_value_and_grad(lambda m: ((m(x) - y) ** 2).mean())(head)
        updates, state = opt.update(grads, state)
        return eqx.apply_updates(head, updates), state, loss
"""

from __future__ import annotations

from typing import Any

try:
    import equinox as eqx
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("qvaf.eqx needs equinox: pip install 'qvaf[nn]' (or equinox==0.13.0)") from exc

from ._adapters import build_model, check_params, hqkan_model

__all__ = ["QKAN", "HQKAN"]


class _Constants:
    """The fixed arrays, held as a static field (compared by identity, so hashable)."""

    def __init__(self, arrays: dict[str, dict[str, Any]]):
        self.arrays = arrays

    def __repr__(self) -> str:
        n = sum(len(v) for v in self.arrays.values())
        return f"<{n} fixed arrays>"


class QKAN(eqx.Module):
    """A compiled qvaf network as an Equinox module.

    Args:
        model: a :class:`qvaf.Compiled`, an HQKAN block, or a spec (path or bundled name)
            compiled with ``name``, ``args`` and ``dtype``.
        key: the initialisation key (``jax.random.PRNGKey``) or an int seed.
        params: start from these parameters instead of ``model.init(key)``.

    Attributes:
        params: the trainable arrays, ``params[layer][name]``.
        model: the compiled network (static).
    """

    params: dict
    model: Any = eqx.field(static=True)
    constants: _Constants = eqx.field(static=True)

    def __init__(self, model, *, key=None, params=None, name: str | None = None, args: dict | None = None,
                 dtype: str = "float32"):
        self.model = build_model(model, name=name, args=args, dtype=dtype)
        values = check_params(self.model, params, key)
        trainable = self.model.trainable
        self.params = {layer: {k: v for k, v in arrays.items() if trainable[layer][k]} for layer, arrays in values.items()}
        self.constants = _Constants({layer: {k: v for k, v in arrays.items() if not trainable[layer][k]}
                                     for layer, arrays in values.items()})

    def all_params(self) -> dict[str, dict[str, Any]]:
        """Trainable and fixed arrays together, the plain ``params[layer][name]`` dict of
        ``qvaf`` (for ``model.apply``, ``qvaf.save``)."""
        fixed = self.constants.arrays
        return {layer: {**self.params.get(layer, {}), **fixed.get(layer, {})}
                for layer in dict.fromkeys([*self.params, *fixed])}

    def __call__(self, x):
        """``[B, in] -> [B, out]`` or one sample ``[in] -> [out]`` (an HQKAN block:
        ``[..., d] -> [..., d]``)."""
        return self.model.apply(self.all_params(), x)


class HQKAN(QKAN):
    """The hybrid block of :func:`qvaf.hqkan` (``Linear -> QKAN -> Linear``) as an Equinox module.

    ``HQKAN(d, key=key, hidden=..., k=..., reps=..., group=..., spec=..., dtype=...)``; the
    options are those of :func:`qvaf.hqkan`.
    """

    def __init__(self, d: int, *, key=None, params=None, **options):
        super().__init__(hqkan_model(d, options), key=key, params=params)
