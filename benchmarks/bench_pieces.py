"""The pieces the train step's time went to (docs/performance.md), timed one by one.

* sin + cos of B·in·out·L float32 angles (the first configuration: 1024·16·16·3): XLA's
  ``jnp.sin``/``jnp.cos``, qvaf's fused polynomial (``_so3.sincos``) and numpy's vectorised
  ones, with the fused one's largest absolute error against numpy float64 on [-3, 3] and
  [-100, 100];
* nine per-edge reductions over the batch of [B, out, in] products (the matrix gradients of
  one re-upload): over the leading axis (layout [B, out, in]) and over the contiguous one
  (layout [out, in, B]).

Medians of 30, jitted and warm. Run::

    python benchmarks/bench_pieces.py
"""

from __future__ import annotations


import numpy as np
from _timing import median_ms  # noqa: E402 - benchmarks/ is the script directory


def main():
    import jax
    import jax.numpy as jnp

    from qvaf.compiler.backends import _so3

    n = 1024 * 16 * 16 * 3
    angles = np.random.default_rng(0).uniform(-3, 3, n).astype(np.float32)
    a = jnp.asarray(angles)
    xla = jax.jit(lambda v: (jnp.cos(v), jnp.sin(v)))
    fused = jax.jit(_so3.sincos)
    s, c = np.empty_like(angles), np.empty_like(angles)
    print(f"sin + cos of {n} float32 angles (ms):")
    print(f"  XLA jnp.cos + jnp.sin  {median_ms(lambda: jax.block_until_ready(xla(a)), 30):8.2f}")
    print(f"  qvaf fused polynomial  {median_ms(lambda: jax.block_until_ready(fused(a)), 30):8.2f}")
    print(f"  numpy np.sin + np.cos  {median_ms(lambda: (np.sin(angles, out=s), np.cos(angles, out=c)), 30):8.2f}")
    for bound in (3.0, 100.0):
        v = np.random.default_rng(1).uniform(-bound, bound, 200_000).astype(np.float32)
        cf, sf = (np.asarray(t, np.float64) for t in fused(jnp.asarray(v)))
        err = max(np.abs(cf - np.cos(v.astype(np.float64))).max(), np.abs(sf - np.sin(v.astype(np.float64))).max())
        print(f"  fused max abs error on [-{bound:g}, {bound:g}]: {err:.2e}")

    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.random((1024, 16, 16), np.float32))
    y = jnp.asarray(rng.random((1024, 16, 16), np.float32))
    lead = jax.jit(lambda p, q: [(p * q * k).sum(0) for k in range(9)])
    xt, yt = jnp.transpose(x, (1, 2, 0)), jnp.transpose(y, (1, 2, 0))
    minor = jax.jit(lambda p, q: [(p * q * k).sum(-1) for k in range(9)])
    print("nine reductions over the batch of [1024, 16, 16] products (ms):")
    print(f"  leading axis  {median_ms(lambda: jax.block_until_ready(lead(x, y)), 30):8.2f}")
    print(f"  minor axis    {median_ms(lambda: jax.block_until_ready(minor(xt, yt)), 30):8.2f}")


if __name__ == "__main__":
    main()
