r"""Kan layers whose re-uploads share one encoding, as a matrix product of Fourier features.

When every data re-upload of an edge's circuit rotates by the same angle ``g(x)`` and that
angle reads no per-edge parameter (the reference's fixed pre-activations: ``g(x) = x``; the
``px`` ansatz: ``g(x) = acos(x)``), each rotation's SO(3) matrix has entries in
span{1, cos g, sin g}, so with L re-uploads and a linear readout (``x``, ``y``, ``z``) the
edge function is a trigonometric polynomial of degree L in g:

.. math::

    \varphi_{oi}(x) = a_{0,oi} + \sum_{k=1}^{L} \left( a_{k,oi} \cos k g(x) + b_{k,oi} \sin k g(x) \right).

Its 2L + 1 coefficients follow exactly from the circuit at the 2L + 1 equally spaced angles
``t_j = 2 pi j / (2L + 1)`` (a discrete Fourier transform without aliasing: no frequency
exceeds L), computed per edge, never per sample. The layer output

.. math::

    y_{bo} = \sum_i w_{oi} (\varphi_{oi}(x_{bi}) + c_{oi}) + \ldots
           = \sum_{i,k} F_{bik} (w A)_{koi} + \ldots

is then one matrix product of the per-sample features ``F = [1, cos g, sin g, ..., sin Lg]``
(``[B, in, 2L+1]``, shared by every output) with the weighted coefficients, and its gradient
is two more. Nothing of shape ``[B, out, in]`` is formed, forward or backward; JAX
differentiates all of it (the circuit at the nodes is a short chain of per-edge products,
:func:`.jax_backend.at_nodes`).
"""

from __future__ import annotations

import math

import numpy as np

from . import _common


def dft_matrix(degree: int) -> np.ndarray:
    """``D`` with ``coeffs = D @ values``: rows ``a_0, a_1, b_1, ..., a_L, b_L`` from the values
    at ``nodes(degree)`` (float64)."""
    n = 2 * degree + 1
    t = nodes(degree)
    rows = [np.full(n, 1.0 / n)]
    for k in range(1, degree + 1):
        rows.append(2.0 / n * np.cos(k * t))
        rows.append(2.0 / n * np.sin(k * t))
    return np.stack(rows)


def nodes(degree: int) -> np.ndarray:
    """The ``2 degree + 1`` equally spaced angles in [0, 2 pi) (float64)."""
    n = 2 * degree + 1
    return 2.0 * math.pi * np.arange(n) / n


def harmonics(g, degree: int, xp, sincos=None):
    """``[..., 2 degree + 1]``: ``1, cos g, sin g, ..., cos(degree g), sin(degree g)``.

    One cos/sin of ``g`` (by ``sincos(g) -> (cos, sin)`` where given); the higher harmonics
    by the angle-addition recurrence (``cos (k+1)g = cos kg cos g - sin kg sin g``, error
    growing linearly in k).
    """
    c1, s1 = sincos(g) if sincos is not None else (xp.cos(g), xp.sin(g))
    out = [xp.ones_like(g), c1, s1]
    c, s = c1, s1
    for _ in range(degree - 1):
        c, s = c * c1 - s * s1, s * c1 + c * s1
        out += [c, s]
    return xp.stack(out, axis=-1)


def combine(node, layer_params, x, feats, coeffs, xp):
    """The kan layer formula (:func:`._common.kan_combine`) on the Fourier form of its edges.

    Args:
        feats: ``[B, in, K]`` features of the layer input.
        coeffs: ``[K, out, in]`` coefficients of every edge (rows as in :func:`dft_matrix`).
    """
    mask = layer_params.get("mask")
    w = mask
    if node.postact_weight:
        a = layer_params["postact_weight"]
        w = a if w is None else w * a
    weighted = coeffs if w is None else coeffs * w
    batch, width, k = feats.shape
    out = node.out_width
    y = feats.reshape(batch, width * k) @ xp.transpose(weighted, (2, 0, 1)).reshape(width * k, out)
    if node.postact_bias:
        c = layer_params["postact_bias"]
        y = y + (c if w is None else c * w).sum(axis=-1)
    return y + _common.base_term(node, layer_params, x, xp)
