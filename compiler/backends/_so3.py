"""Symbolic 3x3 algebra for the Bloch-vector kernels, folded at trace time.

A 3x3 matrix is a tuple of rows whose entries are Python floats (known while tracing) or
arrays (per edge ``[O', in]``); Bloch components are floats or arrays (``[B, O', in]``).
Products and sums with the constants 0 and +-1 are folded while tracing, so a fixed gate
costs nothing at run time and a rotation touches only its four non-trivial entries.
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import Op


def mul(a, b):
    """``a * b`` with 0 and +-1 folded."""
    if isinstance(a, float):
        if a == 0.0:
            return 0.0
        if a == 1.0:
            return b
        if a == -1.0:
            return -b
        if isinstance(b, float):
            return a * b
    if isinstance(b, float):
        if b == 0.0:
            return 0.0
        if b == 1.0:
            return a
        if b == -1.0:
            return -a
    return a * b


def add(*terms):
    """The sum of ``terms`` with zeros folded."""
    total = 0.0
    for t in terms:
        if isinstance(t, float) and t == 0.0:
            continue
        if isinstance(total, float) and total == 0.0:
            total = t
        else:
            total = total + t
    return total


def matmul(a, b):
    """``a @ b`` for symbolic 3x3 matrices."""
    return tuple(tuple(add(*(mul(a[i][k], b[k][j]) for k in range(3))) for j in range(3)) for i in range(3))


def apply(m, r, rows=(0, 1, 2)):
    """Components ``rows`` of ``m @ r``."""
    return tuple(add(*(mul(m[i][k], r[k]) for k in range(3))) for i in rows)


def const_matrix(mat: np.ndarray):
    """A numeric 3x3 as a symbolic one, snapping round-off around 0 and +-1 to exact values."""
    def snap(v):
        v = float(v)
        for exact in (0.0, 1.0, -1.0):
            if abs(v - exact) < 1e-15:
                return exact
        return v

    return tuple(tuple(snap(v) for v in row) for row in mat)


def rot_matrix(axis: str, c, s):
    """The symbolic rotation about ``axis`` with cos/sin arrays ``c``, ``s``."""
    ms = -s
    if axis == "x":
        return ((1.0, 0.0, 0.0), (0.0, c, ms), (0.0, s, c))
    if axis == "y":
        return ((c, 0.0, s), (0.0, 1.0, 0.0), (ms, 0.0, c))
    return ((c, ms, 0.0), (s, c, 0.0), (0.0, 0.0, 1.0))


def rotate(axis: str, r, c, s):
    """Rotate Bloch components ``r = (rx, ry, rz)`` about ``axis`` (c, s broadcast with r)."""
    rx, ry, rz = r
    if axis == "x":
        return rx, add(mul(c, ry), -mul(s, rz)), add(mul(s, ry), mul(c, rz))
    if axis == "y":
        return add(mul(c, rx), mul(s, rz)), ry, add(mul(c, rz), -mul(s, rx))
    return add(mul(c, rx), -mul(s, ry)), add(mul(s, rx), mul(c, ry)), rz


def transpose(m):
    """The transpose of a symbolic 3x3 (the inverse of a rotation)."""
    return tuple(tuple(m[j][i] for j in range(3)) for i in range(3))


def split(tree):
    """Separate a nested tuple/list structure into a hashable template and its arrays.

    Leaves that are Python floats, strings or None stay in the template; every other leaf
    (an array) is replaced by its index into the returned list of arrays.
    """
    arrays: list = []

    def walk(node):
        if isinstance(node, (tuple, list)):
            return ("T", tuple(walk(n) for n in node))
        if node is None or isinstance(node, (float, str)):
            return ("c", node)
        arrays.append(node)
        return ("a", len(arrays) - 1)

    return walk(tree), arrays


def join(template, arrays):
    """Inverse of :func:`split` (lists come back as tuples)."""
    kind, v = template
    if kind == "T":
        return tuple(join(t, arrays) for t in v)
    return v if kind == "c" else arrays[v]


def materialise(fn, operands, probe):
    """``fn(*operands)`` computed as a block of its own.

    XLA fuses cheap-looking producers into their consumers, even transcendental ones whose
    result a consumer reads many times: left alone it evaluates the per-edge cos/sin of the
    fused matrices once per *sample* and the hoisted data-angle cos/sin once per *output*,
    and re-derives a chain of states inside every consumer of it. A conditional is a fusion
    boundary: ``fn`` runs as its branch under a predicate that is always true but opaque to
    XLA (``v == v or v != v`` for a runtime value ``v`` of ``probe``), so the other branch (NaN
    arrays of the same shapes, cheap to compile) never runs. Array-free leaves of the result
    (trace-time constants) are passed around the conditional. Op by op (``jax.disable_jit``)
    there is no fusion to prevent and ``fn`` is called directly.
    """
    import jax
    import jax.numpy as jnp

    if probe is None or jax.config.jax_disable_jit:
        return fn(*operands)
    in_template, in_arrays = split(operands)
    templates = []

    def branch(*arrays):
        template, out = split(fn(*join(in_template, arrays)))
        templates.append(template)
        return tuple(out)

    shapes = jax.eval_shape(branch, *in_arrays)

    def poisoned(*arrays):
        return tuple(jnp.full(s.shape, jnp.nan, s.dtype) for s in shapes)

    first = probe.ravel()[0]
    flat = jax.lax.cond((first == first) | (first != first), branch, poisoned, *in_arrays)
    return join(templates[0], flat)


# ----------------------------------------------------------------------------- fast float32 sincos

#: Cody-Waite split of pi/4 (the first two parts exact in few bits, so ``k * part`` is exact
#: for the octant counts that occur) and the minimax coefficients of sin and cos on
#: [-pi/4, pi/4] (the classic single-precision set of Cephes' sinf/cosf).
_PIO4_PARTS = (0.78515625, 2.4187564849853515625e-4, 3.77489497744594108e-8)
_SIN_COEFFS = (-1.6666654611e-1, 8.3321608736e-3, -1.9515295891e-4)
_COS_COEFFS = (4.166664568298827e-2, -1.388731625493765e-3, 2.443315711809948e-5)
#: angles up to this size keep the stated accuracy (absolute error <= 2e-7); beyond it the
#: range reduction loses bits as in any float32 Cody-Waite scheme
SINCOS_RANGE = 8192.0
_SINCOS = {}


def _sincos_f32(x):
    """cos and sin of a float32 array: octant reduction and two short polynomials, all
    elementwise (XLA vectorises it; its own sin and cos do not vectorise on CPU)."""
    import jax.numpy as jnp

    f = jnp.float32
    j = jnp.floor(x * f(4 / np.pi))
    j = j + (j - f(2) * jnp.floor(j * f(0.5)))  # round the octant up to even
    r = x
    for part in _PIO4_PARTS:
        r = r - j * f(part)
    z = r * r
    s1, s2, s3 = (f(v) for v in _SIN_COEFFS)
    c1, c2, c3 = (f(v) for v in _COS_COEFFS)
    sin_r = r + r * z * (s1 + z * (s2 + z * s3))
    cos_r = f(1) - f(0.5) * z + z * z * (c1 + z * (c2 + z * c3))
    quadrant = j * f(0.5) - f(4) * jnp.floor(j * f(0.125))  # 0, 1, 2, 3
    odd = (quadrant == f(1)) | (quadrant == f(3))
    s = jnp.where(odd, cos_r, sin_r)
    c = jnp.where(odd, sin_r, cos_r)
    s = jnp.where(quadrant >= f(2), -s, s)
    c = jnp.where((quadrant == f(1)) | (quadrant == f(2)), -c, c)
    return c, s


def _sincos_f32_fn():
    """The differentiable float32 sincos (its derivative uses the computed values:
    d cos = -sin dx, d sin = cos dx), built once."""
    fn = _SINCOS.get("f32")
    if fn is None:
        import jax

        @jax.custom_jvp
        def sincos_f32(x):
            return _sincos_f32(x)

        @sincos_f32.defjvp
        def _jvp(primals, tangents):
            (x,), (dx,) = primals, tangents
            c, s = _sincos_f32(x)
            return (c, s), (-s * dx, c * dx)

        fn = _SINCOS["f32"] = sincos_f32
    return fn


def sincos(angle):
    """``(cos angle, sin angle)`` of a JAX array: the fused polynomial for float32 (absolute
    error <= 2e-7 for |angle| <= SINCOS_RANGE), XLA's cos and sin for float64."""
    import jax.numpy as jnp

    if angle.dtype == jnp.float32:
        return _sincos_f32_fn()(angle)
    return jnp.cos(angle), jnp.sin(angle)


# ----------------------------------------------------------------------------- the fixed gates


def rotation_np(axis: str, t: float) -> np.ndarray:
    """The SO(3) matrix of a rotation by ``t`` about ``axis`` (float64, numpy)."""
    c, s = math.cos(t), math.sin(t)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


#: SO(3) action of the fixed named gates (global phase dropped).
FIXED_GATES = {
    Op.H: np.array([[0.0, 0, 1], [0, -1, 0], [1, 0, 0]]),  # x <-> z, y -> -y
    Op.X: np.diag([1.0, -1, -1]),
    Op.Y: np.diag([-1.0, 1, -1]),
    Op.Z: np.diag([-1.0, -1, 1]),
    Op.S: rotation_np("z", math.pi / 2),
    Op.SDG: rotation_np("z", -math.pi / 2),
    Op.T: rotation_np("z", math.pi / 4),
    Op.TDG: rotation_np("z", -math.pi / 4),
    Op.SX: rotation_np("x", math.pi / 2),
}
