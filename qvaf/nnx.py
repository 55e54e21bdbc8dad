"""qvaf networks as Flax NNX modules: :class:`QKAN` (any compiled spec) and :class:`HQKAN`
(the hybrid block of :func:`qvaf.hqkan`).

The module holds the network's arrays as NNX variables: trainable ones as ``nnx.Param``,
fixed ones (masks, fixed pre-processing, random ``const`` arrays) as :class:`Fixed`, which
``nnx.grad`` and ``nnx.Optimizer(..., wrt=nnx.Param)`` leave alone. The forward pass is the
compiled network's own ``apply``: the module adds no mathematics. Requires ``flax`` (the
``qvaf[nn]`` extra); ``import qvaf`` does not load it.

Example::

    from flax import nnx
    import optax, qvaf.nnx

    class Hybrid(nnx.Module):
        def __init__(self, rngs):
            self.features = nnx.Linear(64, 16, rngs=rngs)
            self.head = qvaf.nnx.QKAN("digits_head.qvaf", rngs=rngs)   # 16 -> 10
        def __call__(self, x):
            return self.head(nnx.tanh(self.features(x)))

    model = Hybrid(nnx.Rngs(0))
    opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
    opt.update(model, grads)
"""

from __future__ import annotations

from typing import Any

try:
    from flax import nnx
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("qvaf.nnx needs flax: pip install 'qvaf[nn]' (or flax==0.12.0)") from exc

from ._adapters import build_model, check_params, hqkan_model

__all__ = ["Fixed", "QKAN", "HQKAN"]


class Fixed(nnx.Variable):
    """A fixed array of a qvaf network (``trainable`` False): not a parameter, never trained."""


class QKAN(nnx.Module):
    """A compiled qvaf network as an NNX module.

    Args:
        model: a :class:`qvaf.Compiled`, an HQKAN block, or a spec (path or bundled name)
            compiled with ``name``, ``args`` and ``dtype``.
        rngs: draws the initialisation key (``rngs.params()``); or pass ``key``.
        params: start from these parameters instead of ``model.init(key)``.

    Attributes:
        model: the compiled network (its ``summary()``, IR, ``param_count``).
        arrays: ``arrays[layer][name]``, an ``nnx.Param`` or :class:`Fixed` per array.
    """

    def __init__(self, model, *, rngs: nnx.Rngs | None = None, key=None, params=None, name: str | None = None,
                 args: dict | None = None, dtype: str = "float32"):
        self.model = build_model(model, name=name, args=args, dtype=dtype)
        params = check_params(self.model, params, rngs.params() if rngs is not None and key is None else key)
        trainable = self.model.trainable
        self.arrays = nnx.data({
            layer: {k: (nnx.Param(v) if trainable[layer][k] else Fixed(v)) for k, v in arrays.items()}
            for layer, arrays in params.items()})

    def params(self) -> dict[str, dict[str, Any]]:
        """The current values as the plain ``params[layer][name]`` dict of ``qvaf`` (for
        ``model.apply``, ``qvaf.save``)."""
        return {layer: {k: v[...] for k, v in arrays.items()} for layer, arrays in self.arrays.items()}

    def __call__(self, x):
        """``[B, in] -> [B, out]`` (an HQKAN block: ``[..., d] -> [..., d]``)."""
        return self.model.apply(self.params(), x)


class HQKAN(QKAN):
    """The hybrid block of :func:`qvaf.hqkan` (``Linear -> QKAN -> Linear``) as an NNX module.

    ``HQKAN(d, rngs=rngs, hidden=..., k=..., reps=..., group=..., spec=..., dtype=...)``; the
    options are those of :func:`qvaf.hqkan`.
    """

    def __init__(self, d: int, *, rngs: nnx.Rngs | None = None, key=None, params=None, **options):
        super().__init__(hqkan_model(d, options), rngs=rngs, key=key, params=params)
