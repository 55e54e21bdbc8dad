"""The fused float32 sincos of the JAX kernels (compiler/backends/_so3.py) against numpy float64:
absolute error <= 2e-7 on the ranges a layer's angles take (|angle| <= SINCOS_RANGE), exact
derivatives (d cos = -sin, d sin = cos of the same values), NaN in -> NaN out, float64 left
to XLA, and the same bits with JAX's 64-bit mode on and off.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import disable_x64

from qvaf.compiler.backends import _so3


@pytest.mark.parametrize("bound", [1.0, 3.5, 40.0, _so3.SINCOS_RANGE])
def test_fused_sincos_error_against_float64(bound):
    rng = np.random.default_rng(int(bound))
    v = rng.uniform(-bound, bound, 100_000).astype(np.float32)
    # the octant boundaries, where the polynomials hand over
    v = np.concatenate([v, (np.arange(-64, 65) * np.pi / 4).astype(np.float32), np.float32([0, -0.0, 1e-30])])
    c, s = (np.asarray(t, np.float64) for t in jax.jit(_so3.sincos)(jnp.asarray(v)))
    exact = v.astype(np.float64)
    assert np.abs(c - np.cos(exact)).max() <= 2e-7
    assert np.abs(s - np.sin(exact)).max() <= 2e-7


def test_fused_sincos_derivative_and_nan():
    v = jnp.asarray(np.linspace(-7, 7, 57), jnp.float32)
    c, s = _so3.sincos(v)
    dc = jax.vmap(jax.grad(lambda t: _so3.sincos(t)[0]))(v)
    ds = jax.vmap(jax.grad(lambda t: _so3.sincos(t)[1]))(v)
    np.testing.assert_array_equal(dc, -s)
    np.testing.assert_array_equal(ds, c)
    cn, sn = _so3.sincos(jnp.asarray([np.nan, np.inf], jnp.float32))
    assert np.isnan(np.asarray(cn)).all() and np.isnan(np.asarray(sn)).all()


def test_float64_is_xla_and_float32_bits_do_not_depend_on_x64():
    v64 = jnp.asarray(np.linspace(-3, 3, 11))
    c, s = _so3.sincos(v64)
    np.testing.assert_array_equal(c, jnp.cos(v64))
    np.testing.assert_array_equal(s, jnp.sin(v64))
    v = np.random.default_rng(0).uniform(-9, 9, 1000).astype(np.float32)
    on = [np.asarray(t) for t in jax.jit(_so3.sincos)(jnp.asarray(v))]
    with disable_x64():
        off = [np.asarray(t) for t in jax.jit(_so3.sincos)(jnp.asarray(v))]
    for a, b in zip(on, off):
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_array_equal(a, b)
