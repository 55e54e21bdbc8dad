"""Exact Fourier spectra of edge activations, in closed form.

A single-qubit circuit whose data angles are affine in the edge input ``x`` computes a
finite trigonometric polynomial of ``x``, with frequencies that need not be integers::

    phi(x) = sum_k c_k exp(i omega_k x),      c_{-omega} = conj(c_omega)

This module computes the ``omega_k`` and ``c_k`` exactly (to round-off) by propagating the
Bloch vector through the circuit as such a polynomial, never by sampling. Each component of
r(x) in R^3 is a map ``omega -> coefficient``; the start is ``e_z`` (frequency 0 only).

* A data-free stretch is one numeric SO(3) matrix per edge: it mixes the components and
  leaves the frequencies alone.
* A data rotation about axis ``a`` by ``w x + b`` turns the plane ``(u, v)`` of the two other
  components (cyclic order: z -> (x, y), x -> (y, z), y -> (z, x)) by that angle::

      u + i v  ->  e^{i b} e^{i w x} (u + i v)        (frequencies shift by +w)
      u - i v  ->  e^{-i b} e^{-i w x} (u - i v)      (frequencies shift by -w)

  and ``u' = (p' + q') / 2``, ``v' = (p' - q') / (2i)`` with ``p = u + iv``, ``q = u - iv``;
  the axis component keeps its frequencies.

After L data rotations with weights w_1..w_L the frequencies lie in
``{sum_l s_l w_l : s_l in {-1, 0, 1}}``: at most ``2L + 1`` values when every w_l = 1,
and up to ``3^L`` when they differ (w_l = 3^(l-1) gives every integer in
``[-(3^L - 1)/2, (3^L - 1)/2]``). Frequencies equal to a relative tolerance are merged,
coefficients below 1e-15 (on a unit Bloch vector) are dropped during propagation, and a
term limit refuses circuits whose spectrum would be unreasonably large.

Refused, with the reason: data angles that are not affine in ``x`` (``acos(x)``,
``exp(x)``, ``x * x``), and the ``inspired`` readout ``|alpha| - |beta|``, a square root of a
trigonometric polynomial rather than one.

Example::

    model = qvaf.compile("specs/ansatz/pz.qvaf")
    params = model.init(0)
    s = network_spectra(model, params)["layer0"][(0, 0)]
    s.support()            # array([0., 1., 2., 3.])
    s(np.linspace(-1, 1, 5))   # phi(x), equal to model.apply to round-off
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from qvaf.dsl.errors import QvafError

from .backends._common import edge_params, flatten_ops, layer_order
from .expr import Binary, Unary, depends_on_input, evaluate, to_str, walk
from .ir import ROTATIONS, KanNode
from .passes import canonicalize, unroll_loops
from .simplify import affine_in_x

__all__ = ["Spectrum", "SpectrumError", "network_spectra", "layer_spectra", "spectrum_obstacle", "MAX_TERMS",
           "FREQ_TOL", "ZERO_TOL"]

#: refuse an edge whose Bloch vector needs more distinct frequencies than this
MAX_TERMS = 20000
#: frequencies closer than FREQ_TOL * max(1, |omega|) are one frequency
FREQ_TOL = 1e-12
#: a coefficient below this is "zero" when counting frequencies
ZERO_TOL = 1e-12
#: coefficients below this (on a unit Bloch vector) are dropped while propagating
_DROP = 1e-15

#: rotation axis -> (u, v, axis) component indices of the plane it turns (cyclic order)
_PLANE = {"z": (0, 1, 2), "x": (1, 2, 0), "y": (2, 0, 1)}


class SpectrumError(QvafError):
    """An activation has no exact finite spectrum (non-affine data angle, ``inspired``
    readout) or one larger than the term limit."""


# ----------------------------------------------------------------------------- the result


@dataclass(frozen=True, eq=False)
class Spectrum:
    """One activation as a trigonometric polynomial: ``phi(x) = sum_k c_k e^{i omega_k x}``.

    Attributes:
        frequencies: ``omega_k``, ascending and symmetric about 0 (float64 ``[K]``).
        coefficients: ``c_k`` (complex128 ``[K]``) with ``c(-omega) = conj(c(omega))``.

    The real form is ``a_0 + sum_{omega > 0} a cos(omega x) + b sin(omega x)`` with
    ``a_0 = c_0``, ``a = 2 Re c_omega``, ``b = -2 Im c_omega`` (:meth:`real_form`).
    """

    frequencies: np.ndarray
    coefficients: np.ndarray

    def __call__(self, x) -> np.ndarray:
        """``phi(x)`` for an array ``x`` (float64, same shape)."""
        x = np.asarray(x, np.float64)
        omega, a, b = self.real_form()
        t = np.multiply.outer(x, omega)
        return np.cos(t) @ a + np.sin(t) @ b

    def real_form(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(omega, a, b)`` over the frequencies ``omega >= 0`` (``omega[0] = 0`` when
        present, with ``b[0] = 0``): ``phi = sum a cos(omega x) + b sin(omega x)``."""
        f, c = self.frequencies, self.coefficients
        keep = f >= 0
        omega, c = f[keep], c[keep]
        scale = np.where(omega > 0, 2.0, 1.0)
        a = scale * c.real
        b = np.where(omega > 0, -2.0 * c.imag, 0.0)
        return omega, a, b

    def magnitudes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(omega, |c_omega|)`` for ``omega >= 0``."""
        keep = self.frequencies >= 0
        return self.frequencies[keep], np.abs(self.coefficients[keep])

    def support(self, tol: float = ZERO_TOL) -> np.ndarray:
        """The frequencies ``omega >= 0`` whose coefficient exceeds ``tol`` in magnitude."""
        omega, mag = self.magnitudes()
        return omega[mag > tol]

    def count(self, tol: float = ZERO_TOL) -> int:
        """The number of distinct non-zero frequencies ``omega > 0`` with ``|c| > tol``."""
        return int(np.sum(self.support(tol) > 0))

    def highest_frequency(self, tol: float = ZERO_TOL) -> float:
        """The largest ``omega`` with ``|c_omega| > tol`` (0 for a constant)."""
        s = self.support(tol)
        return float(s.max()) if s.size else 0.0

    def scaled(self, weight: float, bias: float = 0.0) -> "Spectrum":
        """The spectrum of ``weight * (phi(x) + bias)`` (a post-activation)."""
        f = self.frequencies
        c = weight * self.coefficients.astype(np.complex128)
        zero = np.flatnonzero(f == 0.0)
        if bias:
            if zero.size:
                c[zero[0]] += weight * bias
            else:
                i = int(np.searchsorted(f, 0.0))
                f = np.insert(f, i, 0.0)
                c = np.insert(c, i, weight * bias)
        return Spectrum(f, c)

    def truncated(self, threshold: float) -> tuple["Spectrum", float]:
        """Drop every frequency whose real-form amplitude ``sqrt(a^2 + b^2)`` is below
        ``threshold`` (the constant counts with ``|a_0|``).

        Returns:
            the truncated spectrum and the bound ``sum of dropped amplitudes`` on
            ``max_x |phi(x) - phi_truncated(x)|`` (for every real x).
        """
        f, c = self.frequencies, self.coefficients
        amp = np.where(f == 0, np.abs(c), 2.0 * np.abs(c))
        keep = amp >= threshold
        bound = float(np.sum(amp[~keep & (f >= 0)]))
        return Spectrum(f[keep], c[keep]), bound

    def to_json(self, tol: float = 0.0) -> dict:
        """``{"frequencies": [...], "coefficients": [[re, im], ...]}`` over ``omega >= 0``
        with ``|c| > tol``."""
        keep = (self.frequencies >= 0) & (np.abs(self.coefficients) > tol)
        return {"frequencies": self.frequencies[keep].tolist(),
                "coefficients": [[float(z.real), float(z.imag)] for z in self.coefficients[keep]]}


# ----------------------------------------------------------------------------- obstacles


def _non_affine_reason(angle) -> str:
    """Name the sub-expression that makes a data angle non-affine in x."""
    for node in walk(angle):
        if isinstance(node, Unary) and node.fn != "neg" and depends_on_input(node.arg):
            return f"{node.fn} of x"
        if isinstance(node, Binary) and depends_on_input(node.left) and depends_on_input(node.right) \
                and node.op in ("*", "/", "**"):
            return {"*": "a product of two terms in x", "/": "a quotient of two terms in x",
                    "**": "a power of x"}[node.op]
        if isinstance(node, Binary) and node.op == "/" and depends_on_input(node.right):
            return "x in a denominator"
        if isinstance(node, Binary) and node.op == "**" and depends_on_input(node):
            return "a power of x"
    return "not of the form w * x + b"


def spectrum_obstacle(node: KanNode, where: str | None = None) -> str | None:
    """Why the activations of kan layer ``node`` have no exact finite spectrum, or None.

    Looks at the readout and at every data-dependent angle (loops and fused blocks included).
    """
    where = where or node.name
    label = f"{where} ({node.ansatz})"
    if node.kernel.observable == "inspired":
        return (f"{label}: the 'inspired' readout |alpha| - |beta| = sqrt((1 + <Z>)/2) - sqrt((1 - <Z>)/2) "
                f"is not a trigonometric polynomial in x; only measure z, x or y have an exact spectrum")
    for gate, _env in flatten_ops(node.kernel):
        for angle in gate.angles:
            if depends_on_input(angle) and affine_in_x(angle) is None:
                return (f"{label}: the data angle {to_str(angle)} of {gate.op.value} is not affine in x "
                        f"({_non_affine_reason(angle)}); the activation is not a finite Fourier series in x, "
                        f"so it has no exact spectrum")
    return None


# ----------------------------------------------------------------------------- propagation


def _rotation(axis: str, t: np.ndarray) -> np.ndarray:
    """SO(3) rotations about ``axis`` by angles ``t`` [...] as [..., 3, 3]."""
    c, s = np.cos(t), np.sin(t)
    o, z = np.ones_like(t), np.zeros_like(t)
    rows = {
        "x": ((o, z, z), (z, c, -s), (z, s, c)),
        "y": ((c, z, s), (z, o, z), (-s, z, c)),
        "z": ((c, -s, z), (s, c, z), (z, z, o)),
    }[axis]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def _merge(f: np.ndarray, coef: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Sort frequencies and sum the coefficients of those equal within ``tol * max(1, |f|)``."""
    order = np.argsort(f, kind="stable")
    f, coef = f[order], coef[..., order]
    if f.size < 2:
        return f, coef
    gap = np.diff(f) > tol * np.maximum(1.0, np.abs(f[1:]))
    starts = np.concatenate([[0], np.flatnonzero(gap) + 1])
    return f[starts], np.add.reduceat(coef, starts, axis=-1)


def _layer_steps(node: KanNode, layer_params: Mapping[str, object], where: str):
    """The kernel of every edge as ``(r0, steps)``: the start vector [O, I, 3] and a list of
    ``("fixed", M [O, I, 3, 3])`` / ``("data", axis, w [O, I], b [O, I])`` in order."""
    shape = (node.out_width, node.in_width)
    p = edge_params(node, {k: np.asarray(v, np.float64) for k, v in layer_params.items()}, np, np.float64)

    def value(e, env):
        v = np.asarray(evaluate(e, None, p, np, env), np.float64)
        return np.broadcast_to(v, shape)

    pending = None
    r0 = None
    steps = []
    for gate, env in flatten_ops(node.kernel):
        if gate.op not in ROTATIONS or len(gate.angles) != 1:
            raise SpectrumError(f"{where}: gate {gate.op.value} is not a rotation (canonicalize the circuit first)")
        axis, angle = ROTATIONS[gate.op], gate.angles[0]
        if not depends_on_input(angle):
            m = _rotation(axis, value(angle, env))
            pending = m if pending is None else m @ pending
            continue
        w, b = affine_in_x(angle)
        if r0 is None:
            r0 = pending[..., :, 2] if pending is not None else np.broadcast_to([0.0, 0.0, 1.0], shape + (3,))
        elif pending is not None:
            steps.append(("fixed", pending))
        pending = None
        steps.append(("data", axis, value(w, env), value(b, env)))
    if r0 is None:  # no data rotation: a constant
        r0 = pending[..., :, 2] if pending is not None else np.broadcast_to([0.0, 0.0, 1.0], shape + (3,))
    elif pending is not None:
        steps.append(("fixed", pending))
    arrays = [r0] + [a for s in steps for a in s[1:] if isinstance(a, np.ndarray)]
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise SpectrumError(f"{where}: the parameters give a non-finite angle (NaN or inf)")
    return r0, steps


def _propagate(r0: np.ndarray, steps, edge: tuple[int, int], readout: int, *, max_terms: int,
               freq_tol: float, where: str) -> Spectrum:
    """The spectrum of one edge's readout component."""
    o, i = edge
    f = np.zeros(1)
    coef = np.asarray(r0[o, i], np.complex128).reshape(3, 1)
    n_data = sum(1 for s in steps if s[0] == "data")
    done = 0
    for step in steps:
        if step[0] == "fixed":
            coef = step[1][o, i] @ coef
            continue
        _, axis, w, b = step
        done += 1
        iu, iv, ia = _PLANE[axis]
        w, b = float(w[o, i]), float(b[o, i])
        p = (coef[iu] + 1j * coef[iv]) * np.exp(1j * b)
        q = (coef[iu] - 1j * coef[iv]) * np.exp(-1j * b)
        k = f.size
        new = np.zeros((3, 3 * k), np.complex128)
        new[ia, :k] = coef[ia]
        new[iu, k:2 * k], new[iv, k:2 * k] = p / 2, p / 2j
        new[iu, 2 * k:], new[iv, 2 * k:] = q / 2, -q / 2j
        f, coef = _merge(np.concatenate([f, f + w, f - w]), new, freq_tol)
        alive = np.max(np.abs(coef), axis=0) > _DROP
        f, coef = f[alive], coef[:, alive]
        if f.size > max_terms:
            raise SpectrumError(
                f"{where}, edge ({o}, {i}): more than {max_terms} distinct frequencies after data rotation "
                f"{done} of {n_data} (frequencies are sums of +-w over the re-uploads, up to 3^L of them); "
                f"raise max_terms (qvaf spectrum --max-terms) to compute it anyway")
    c = coef[readout]
    # the readout is real: keep the Hermitian part, c(omega) and conj(c(-omega)) averaged
    f, c = _merge(np.concatenate([f, -f]), np.concatenate([c, np.conj(c)]) / 2, freq_tol)
    f = np.where(np.abs(f) <= freq_tol, 0.0, f)
    keep = np.abs(c) > 0
    return Spectrum(f[keep], c[keep])


_READ_ROW = {"x": 0, "y": 1, "z": 2}


def layer_spectra(node: KanNode, layer_params: Mapping[str, object], *, where: str | None = None,
                  edges=None, max_terms: int = MAX_TERMS, freq_tol: float = FREQ_TOL) -> dict[tuple[int, int], Spectrum]:
    """Spectra of the raw activations ``phi_oi`` of a kan layer with canonical gates.

    Args:
        node: the layer record; its kernel may hold loops and fused blocks but only
            ``rx``/``ry``/``rz`` gates (:func:`network_spectra` canonicalises first).
        layer_params: that layer's arrays (numpy or JAX; read as float64).
        where: the layer's name in messages (default ``node.name``).
        edges: the ``(o, i)`` pairs to compute (default all, row by row).
        max_terms: the term limit per edge.
        freq_tol: the relative tolerance under which two frequencies are one.

    Raises:
        SpectrumError: see :func:`spectrum_obstacle`, and past the term limit.
    """
    where = where or node.name
    reason = spectrum_obstacle(node, where)
    if reason:
        raise SpectrumError(reason)
    r0, steps = _layer_steps(node, layer_params, where)
    row = _READ_ROW[node.kernel.observable]
    if edges is None:
        edges = [(o, i) for o in range(node.out_width) for i in range(node.in_width)]
    out = {}
    for o, i in edges:
        if not (0 <= o < node.out_width and 0 <= i < node.in_width):
            raise SpectrumError(f"{where} has edges (0..{node.out_width - 1}, 0..{node.in_width - 1}); "
                                f"there is no edge ({o}, {i})")
        out[(o, i)] = _propagate(r0, steps, (o, i), row, max_terms=max_terms, freq_tol=freq_tol, where=where)
    return out


def network_spectra(graph, params, layers=None, *, edges=None, max_terms: int = MAX_TERMS,
                    freq_tol: float = FREQ_TOL) -> dict[str, dict[tuple[int, int], Spectrum]]:
    """Exact spectra of the kan layers of an IR graph for given parameters.

    Args:
        graph: a network graph at any stage of the pipeline, or a :class:`qvaf.Compiled`
            (its ``ir``).
        params: ``params[layer_id][name]`` arrays, as ``Compiled.init`` makes them.
        layers: kan layer ids to analyse (default all).
        edges: ``(o, i)`` pairs per layer (default all edges).
        max_terms, freq_tol: see :func:`layer_spectra`.

    Returns:
        ``{layer_id: {(o, i): Spectrum}}`` in network order.
    """
    graph = canonicalize(unroll_loops(getattr(graph, "ir", graph)))
    kan = {nid: rec for nid, rec in layer_order(graph) if isinstance(rec, KanNode)}
    if layers is None:
        layers = list(kan)
    for lid in layers:
        if lid not in kan:
            raise SpectrumError(f"{lid!r} is not a kan layer; kan layers: {', '.join(kan) or 'none'}")
    return {lid: layer_spectra(kan[lid], params[lid], where=lid, edges=edges, max_terms=max_terms,
                               freq_tol=freq_tol) for lid in layers}

