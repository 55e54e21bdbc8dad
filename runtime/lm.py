"""Levenberg-Marquardt for small least-squares fits (``--optimizer lm``).

For a mean-squared-error loss over residuals ``r(theta)`` (N samples x K outputs) each step
solves the damped Gauss-Newton system with Marquardt's diagonal scaling

.. math::

    (J^\\top J + \\lambda\\,(\\operatorname{diag}(J^\\top J) + \\epsilon I))\\,\\delta = -J^\\top r,
    \\qquad J = \\partial r / \\partial \\theta \\in \\mathbb{R}^{NK \\times P}

and accepts ``theta + delta`` only when it lowers the loss; the damping shrinks by 3 after an
accepted step and doubles after a rejected one. The Jacobian is built from per-sample
gradients (``vmap`` of ``jacrev``), so it works with custom-VJP kernels; it holds N*K*P
numbers, which is what limits the method to small problems (function fitting with a few
hundred parameters, where it converges in far fewer steps than L-BFGS).
"""

from __future__ import annotations

from typing import NamedTuple

#: refuse Jacobians larger than this many entries (about 400 MB in float64)
MAX_JACOBIAN = 50_000_000
EPS = 1e-9


class LMState(NamedTuple):
    """``damping``: the current lambda; ``count``: steps taken in this phase."""

    damping: object
    count: object


def init(dtype, damping: float = 1e-3) -> LMState:
    import jax.numpy as jnp

    return LMState(jnp.asarray(damping, dtype), jnp.asarray(0, jnp.int32))


def step(flat_params, state: LMState, predict_one, predict, x, y):
    """One Levenberg-Marquardt step on flat parameters.

    Args:
        flat_params: the trainable parameters as one vector [P].
        state: the :class:`LMState`.
        predict_one: ``predict_one(flat, x_row) -> [K]`` for one sample.
        predict: ``predict(flat, x) -> [N, K]`` for the batch.
        x, y: inputs [N, d] and targets [N, K].

    Returns:
        ``(new_flat, new_state, loss)`` where ``loss`` is the mean squared error at
        ``flat_params`` (before the step).
    """
    import jax
    import jax.numpy as jnp
    import jax.scipy.linalg

    r = (predict(flat_params, x) - y).reshape(-1)
    jac = jax.vmap(jax.jacrev(predict_one), in_axes=(None, 0))(flat_params, x)  # [N, K, P]
    jac = jac.reshape(r.shape[0], -1)
    a = jac.T @ jac
    g = jac.T @ r
    damp = state.damping * (jnp.diag(jnp.diag(a)) + EPS * jnp.eye(a.shape[0], dtype=a.dtype))
    # the damped matrix is symmetric positive definite: Cholesky (LU solves are ~400x slower
    # on CPU here)
    delta = jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(a + damp), -g)
    trial = flat_params + delta
    r2 = (predict(trial, x) - y).reshape(-1)
    loss, loss2 = jnp.mean(r * r), jnp.mean(r2 * r2)
    ok = jnp.isfinite(loss2) & (loss2 < loss)
    new = jnp.where(ok, trial, flat_params)
    damping = jnp.where(ok, state.damping / 3.0, state.damping * 2.0)
    damping = jnp.clip(damping, 1e-12, 1e12).astype(state.damping.dtype)
    return new, LMState(damping, state.count + 1), loss
