"""Exact formulas: trained activations as trigonometric polynomials, networks as sympy.

Every edge activation with affine data angles is a finite trigonometric polynomial
(:mod:`qvaf.compiler.spectrum`); written in real form::

    phi(h) = a_0 + sum_k [ a_k cos(omega_k h) + b_k sin(omega_k h) ]

and the KAN layer formula around it (mask m, post-activation weight a and bias c, base
weight beta) gives each layer output in closed form::

    y_j = sum_i m_ji [ a_ji (phi_ji(h_i) + c_ji) + beta_ji base(h_i) ]

with ``base`` written symbolically (``silu(h) = h / (1 + e^{-h})``, ``gelu(h) =
h (1 + erf(h / sqrt 2)) / 2``, ``tanh``, ``relu(h) = max(h, 0)``, ``identity``), and linear
layers as ``W h + b``. Chaining the layers gives the network as one sympy expression of its
inputs ``x0, x1, ...``; its numbers are the float64 parameters exactly, so the lambdified
expression reproduces the model to round-off.

Truncation drops every term whose amplitude ``sqrt(a_k^2 + b_k^2)`` is below a threshold.
The error it causes is reported two ways: the bound ``sum of |m a| x dropped amplitudes``
per edge (valid for every input), and the largest difference measured on the data range
(a dense grid over each edge's inputs; and the network output on the data itself).

Example::

    f = network_formula(model, params, threshold=1e-3, x=data.x_train)
    print(f.text())            # layer by layer
    y = f.lambdify()(x)        # [N, out], numpy
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qvaf.dsl.errors import QvafError

#: terms with an amplitude below this are round-off of exact zeros: dropped unless asked otherwise
ROUND_OFF = 1e-12


class FormulaError(QvafError):
    """A network that has no closed-form formula (see :class:`~qvaf.compiler.spectrum.SpectrumError`)."""


def _sympy():
    try:
        import sympy
    except ModuleNotFoundError:  # pragma: no cover - pinned dependency
        raise FormulaError("formulas need sympy; install it with: pip install 'sympy==1.14.0'") from None
    return sympy


def _num(v: float):
    return _sympy().Float(float(v))


def _freq(omega: float):
    """An integer frequency as a sympy Integer (``cos(2*x)``), any other as a Float."""
    k = round(omega)
    return _sympy().Integer(int(k)) if abs(omega - k) <= 1e-12 else _num(omega)


def base_expression(name: str, h):
    """The symbolic base function of a KAN layer (None for ``base none``)."""
    sp = _sympy()
    table = {
        "silu": lambda: h / (1 + sp.exp(-h)),
        "gelu": lambda: h * (1 + sp.erf(h / sp.sqrt(2))) / 2,
        "tanh": lambda: sp.tanh(h),
        "relu": lambda: sp.Max(h, 0),
        "identity": lambda: h,
        "none": lambda: None,
    }
    if name not in table:
        raise FormulaError(f"no symbolic form for base function {name!r}")
    return table[name]()


def edge_expression(spectrum, h, *, threshold: float = ROUND_OFF, weight: float = 1.0):
    """``weight * phi(h)`` as a sympy expression in the real form, truncated below ``threshold``.

    Returns:
        ``(expression, kept_terms, dropped_terms, bound)`` where ``bound`` is ``|weight|``
        times the sum of the dropped amplitudes (a bound on the error for every ``h``).
    """
    sp = _sympy()
    omega, a, b = spectrum.real_form()
    amp = np.hypot(a, b)
    keep = amp >= threshold
    terms = []
    for w, ak, bk in zip(omega[keep], a[keep], b[keep]):
        if w == 0:
            terms.append(_num(weight * ak))
            continue
        f = _freq(w)
        if ak != 0:
            terms.append(_num(weight * ak) * sp.cos(f * h))
        if bk != 0:
            terms.append(_num(weight * bk) * sp.sin(f * h))
    return sp.Add(*terms), int(keep.sum()), int((~keep).sum()), float(abs(weight) * amp[~keep].sum())


@dataclass
class NetworkFormula:
    """A network as sympy expressions, layer by layer.

    Attributes:
        inputs: the input symbols ``x0, x1, ...``.
        layers: per layer ``(layer_id, description, [(symbol, expression), ...])``; each
            expression reads the previous layer's symbols (the inputs for the first layer).
        threshold: the truncation threshold used.
        edges: per kan edge ``{"layer", "edge", "kept", "dropped", "bound", "max_error"}``;
            ``max_error`` (None without data) is measured on a grid over the edge's data range.
        max_error: the largest ``|formula - model|`` over the network outputs on the data
            (None without data).
    """

    inputs: tuple
    layers: list
    threshold: float
    edges: list = field(default_factory=list)
    max_error: float | None = None

    @property
    def outputs(self) -> tuple:
        """The outputs as expressions of the inputs alone (every layer substituted)."""
        env: dict = {}
        out = ()
        for _, _, rows in self.layers:
            out = tuple(e.xreplace(env) for _, e in rows)
            env = {s: e for (s, _), e in zip(rows, out)}
        return out

    def lambdify(self):
        """A numpy function ``x [N, in] -> [N, out]`` (float64) evaluating the formula layer by
        layer: each layer's expressions lambdified in the previous layer's symbols (the same
        arithmetic as :attr:`outputs`, without building the substituted expression)."""
        sp = _sympy()
        fns, args = [], self.inputs
        for _, _, rows in self.layers:
            fns.append(sp.lambdify(args, [e for _, e in rows], modules=["scipy", "numpy"]))
            args = tuple(s for s, _ in rows)

        def call(x):
            h = np.asarray(x, np.float64)
            for fn in fns:
                cols = fn(*(h[:, i] for i in range(h.shape[1])))
                h = np.stack([np.broadcast_to(np.asarray(c, np.float64), h.shape[:1]) for c in cols], axis=1)
            return h

        return call

    @property
    def term_counts(self) -> tuple[int, int]:
        """(kept, dropped) trigonometric terms over all edges."""
        return sum(e["kept"] for e in self.edges), sum(e["dropped"] for e in self.edges)

    def text(self, digits: int = 6, latex: bool = False) -> str:
        """The formula layer by layer, numbers rounded to ``digits`` significant digits."""
        sp = _sympy()
        lines = ["inputs: " + ", ".join(map(str, self.inputs))]
        for _, desc, rows in self.layers:
            lines.append(desc + ":")
            for sym, expr in rows:
                shown = rounded(expr, digits)
                lines.append(f"  {sp.latex(sym)} = {sp.latex(shown)}" if latex else f"  {sym} = {shown}")
        return "\n".join(lines)

    def to_json(self, digits: int = 17) -> dict:
        return {"inputs": [str(s) for s in self.inputs],
                "layers": [{"layer": lid, "description": desc,
                            "assignments": {str(s): str(rounded(e, digits)) for s, e in rows}}
                           for lid, desc, rows in self.layers],
                "threshold": self.threshold, "terms_kept": self.term_counts[0],
                "terms_dropped": self.term_counts[1], "max_error": self.max_error, "edges": self.edges}


def rounded(expr, digits: int):
    """``expr`` with every number rounded to ``digits`` significant digits (integers kept)."""
    sp = _sympy()
    return expr.xreplace({n: sp.Float(n, digits) for n in expr.atoms(sp.Float)})


def _layer_description(lid, rec) -> str:
    from qvaf.compiler.ir import KanNode

    if not isinstance(rec, KanNode):
        return f"{lid} (linear, {rec.in_width} -> {rec.out_width})"
    args = ", ".join(f"{k}={v}" for k, v in rec.ansatz_args)
    extra = [f"base {rec.base}"] + (["postact weight"] if rec.postact_weight else []) + \
            (["postact bias"] if rec.postact_bias else [])
    return f"{lid} (kan {rec.ansatz}({args}), {rec.in_width} -> {rec.out_width}; {', '.join(extra)})"


def network_formula(model, params, *, threshold: float = ROUND_OFF, x=None) -> NetworkFormula:
    """The network ``model`` with ``params`` as sympy expressions.

    Args:
        model: a :class:`qvaf.Compiled` (kan and linear layers).
        params: its parameters (any float dtype; read as float64).
        threshold: drop trigonometric terms whose amplitude is below this (the default keeps
            everything above round-off).
        x: data inputs ``[N, in]``: each truncated edge's error is then measured on its input
            range, and the formula's largest output error on ``x``.

    Raises:
        FormulaError: when an activation has no exact spectrum (non-affine data angle,
            ``inspired`` readout), naming the layer and why.
    """
    sp = _sympy()
    from qvaf.compiler.backends._common import layer_order
    from qvaf.compiler.ir import LinearNode
    from qvaf.compiler.spectrum import SpectrumError, network_spectra

    if threshold < 0:
        raise FormulaError(f"the threshold must be >= 0, got {threshold}")
    p64 = {lid: {k: np.asarray(v, np.float64) for k, v in layer.items()} for lid, layer in params.items()}
    try:
        spectra = network_spectra(model.ir, p64)
    except SpectrumError as exc:
        raise FormulaError(f"no closed form: {exc}") from None
    inputs_data = None
    if x is not None:
        x = np.asarray(x, np.float64)
        inputs_data = {k: np.asarray(v, np.float64) for k, v in model.layer_inputs(params, x).items()}
    order = [(lid, rec) for lid, rec in layer_order(model.ir)[1:-1]]
    inputs = tuple(sp.Symbol(f"x{i}", real=True) for i in range(model.in_width))
    prev = inputs
    layers, edges = [], []
    for k, (lid, rec) in enumerate(order):
        layer = p64[lid]
        last = k == len(order) - 1
        out_syms = tuple(sp.Symbol(f"y{j}" if last else f"h{k}_{j}", real=True) for j in range(rec.out_width))
        rows = []
        for j in range(rec.out_width):
            if isinstance(rec, LinearNode):
                expr = sp.Add(_num(layer["bias"][j]), *(_num(layer["weight"][j, i]) * prev[i]
                                                        for i in range(rec.in_width)))
            else:
                expr = _kan_output(rec, layer, spectra[lid], j, prev, threshold, edges, lid, inputs_data)
            rows.append((out_syms[j], expr))
        layers.append((lid, _layer_description(lid, rec), rows))
        prev = tuple(out_syms)
    formula = NetworkFormula(inputs, layers, threshold, edges)
    if x is not None and len(x):
        y = np.asarray(model.apply(params, x), np.float64)
        formula.max_error = float(np.max(np.abs(formula.lambdify()(x) - y)))
    return formula


def _kan_output(rec, layer, spectra, j, prev, threshold, edges, lid, inputs_data):
    """Output ``j`` of a kan layer as an expression of the previous layer's symbols."""
    sp = _sympy()
    mask = layer["mask"]
    terms = []
    for i in range(rec.in_width):
        m = float(mask[j, i])
        if m == 0.0:
            continue
        a = float(layer["postact_weight"][j, i]) if rec.postact_weight else 1.0
        c = float(layer["postact_bias"][j, i]) if rec.postact_bias else 0.0
        s = spectra[(j, i)]
        term, kept, dropped, bound = edge_expression(s, prev[i], threshold=threshold, weight=m * a)
        terms.append(term)
        if c:
            terms.append(_num(m * a * c))
        base = base_expression(rec.base, prev[i])
        if base is not None:
            terms.append(_num(m * layer["base_weight"][j, i]) * base)
        record = {"layer": lid, "edge": [j, i], "kept": kept, "dropped": dropped, "bound": bound, "max_error": None}
        if inputs_data is not None and dropped:
            h = inputs_data[lid][:, i]
            grid = np.linspace(h.min(), h.max(), 2001) if h.size else np.zeros(0)
            t, _ = s.truncated(threshold)
            record["max_error"] = float(abs(m * a) * np.max(np.abs(s(grid) - t(grid)))) if grid.size else 0.0
        elif inputs_data is not None:
            record["max_error"] = 0.0
        edges.append(record)
    return sp.Add(*terms)
