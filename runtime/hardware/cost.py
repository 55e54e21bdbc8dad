r"""What a forward pass costs on hardware, and how many shots a target precision needs.

Counts (per forward pass of one sample): circuits and jobs (programs) per layer, qubits per
program, native gates by name and depth per circuit, from the same plan the export writes.

Shot noise. With ``S`` shots a circuit's estimate of ``z = <P>`` (P the measured Pauli) has
variance ``(1 - z^2) / S``; circuits are independent (packed qubits share shots but are in a
product state, so their outcomes are independent too). To first order in the estimation
errors ``e_c`` the network output moves by ``sum_c G_c e_c``, where ``G_c`` is the derivative
of the output with respect to circuit ``c``'s value — the sum over the edges it serves of
``d out / d phi_oi = (d out / d y_o) a_oi m_oi``, whose first factor is the Jacobian of every
later layer. So

.. math::

    \mathrm{Var}\, y_k \approx \frac{1}{S} \sum_c G_{kc}^2 \,(1 - z_c^2),

which for one layer is :math:`\sum_i a_{ki}^2 m_{ki}^2 (1 - z_{ki}^2) / S`. ``S`` for a
target standard deviation ``eps`` is ``ceil(max V / eps^2)`` over outputs and samples.

Everything is computed from the plan's own circuits in numpy: each circuit's ``z`` by a
2 x 2 state-vector product over its native gates, ``dz/dx`` by central differences
(step 1e-6), and a kan layer's input Jacobian
``dy_o/dx_i = m_oi (a_oi dphi_oi/dx_i + beta_oi base'(x_i))``; no JAX compilation.
"""

from __future__ import annotations

import math

import numpy as np

from qvaf.compiler.emit import EdgeCircuit
from qvaf.compiler.emit.native import FIXED_SU2
from qvaf.compiler.expr import evaluate
from qvaf.compiler.backends import _common
from qvaf.compiler.ir import KanNode, Op

from .plan import LayerPlan

_OPS = {op.value: op for op in Op}
_OPS["p"] = Op.PHASE
_STEP = 1e-6


def _matrices(op: Op, angles: list[np.ndarray], shape) -> np.ndarray:
    """``[..., 2, 2]`` unitaries of one gate for arrays of angles (up to global phase)."""
    if not angles:
        return np.broadcast_to(FIXED_SU2[op], shape + (2, 2))
    if op == Op.U3:
        t, p, l = angles
        return _matrices(Op.RZ, [p], shape) @ _matrices(Op.RY, [t], shape) @ _matrices(Op.RZ, [l], shape)
    t = angles[0]
    c, s = np.cos(t / 2), np.sin(t / 2)
    u = np.zeros(shape + (2, 2), complex)
    if op == Op.RX:
        u[..., 0, 0] = u[..., 1, 1] = c
        u[..., 0, 1] = u[..., 1, 0] = -1j * s
    elif op == Op.RY:
        u[..., 0, 0] = u[..., 1, 1] = c
        u[..., 0, 1], u[..., 1, 0] = -s, s
    else:  # rz, p
        u[..., 0, 0], u[..., 1, 1] = np.exp(-0.5j * t), np.exp(0.5j * t)
    return u


def circuit_values(ec: EdgeCircuit, x: np.ndarray) -> np.ndarray:
    """``<Z>`` at the end of ``ec`` for every edge input in ``x`` (numpy, float64)."""
    x = np.asarray(x, np.float64)
    psi = np.zeros(x.shape + (2,), complex)
    psi[..., 0] = 1
    params = dict(ec.params)
    with np.errstate(invalid="ignore"):
        for g in ec.gates:
            angles = [np.broadcast_to(np.asarray(evaluate(a, x, params, np), np.float64), x.shape) for a in g.angles]
            psi = np.einsum("...ij,...j->...i", _matrices(_OPS[g.name], angles, x.shape), psi)
    return np.abs(psi[..., 0]) ** 2 - np.abs(psi[..., 1]) ** 2


_DERIVATIVES = {
    "silu": lambda v: (s := 1 / (1 + np.exp(-v))) * (1 + v * (1 - s)),
    "tanh": lambda v: 1 - np.tanh(v) ** 2,
    "relu": lambda v: (v > 0).astype(np.float64),
    "identity": lambda v: np.ones_like(v),
    "gelu": lambda v: 0.5 * (1 + _erf(v / math.sqrt(2))) + v * np.exp(-v * v / 2) / math.sqrt(2 * math.pi),
}


def _erf(v):
    from scipy.special import erf

    return erf(v)


def _kan_step(plan: LayerPlan, layer: dict, h: np.ndarray):
    """``(y, dy/dh [N, out, in], z per placement)`` of a kan layer at inputs ``h``."""
    node: KanNode = plan.record
    n = h.shape[0]
    phi = np.zeros((n, node.out_width, node.in_width))
    dphi = np.zeros_like(phi)
    z = []
    for prog in plan.programs:
        for pl, ec in zip(prog.placements, prog.circuits):
            xi = h[:, pl.input]
            v = circuit_values(ec, xi)
            d = (circuit_values(ec, xi + _STEP) - circuit_values(ec, xi - _STEP)) / (2 * _STEP)
            for o, i in pl.edges:
                phi[:, o, i], dphi[:, o, i] = v, d
            z.append(v)
    arrays = {k: np.asarray(v, np.float64) for k, v in layer.items()}
    y = _common.kan_combine(node, arrays, h, phi, np)
    a = arrays.get("postact_weight", 1.0) if node.postact_weight else 1.0
    jac = arrays["mask"] * a * dphi
    if node.base != "none":
        jac = jac + arrays["mask"] * arrays["base_weight"] * _DERIVATIVES[node.base](h)[:, None, :]
    return y, jac, z


def _sensitivities(model, params, plans: list[LayerPlan], x):
    """Per kan layer: ``G [N, out_net, out, in] = d out / d phi`` and ``z`` per placement."""
    h = np.asarray(x, np.float64)
    steps = []
    for plan in plans:
        layer = params[plan.id]
        if isinstance(plan.record, KanNode):
            h, jac, z = _kan_step(plan, layer, h)
            weight = np.asarray(layer["mask"], np.float64)
            if plan.record.postact_weight:
                weight = weight * np.asarray(layer["postact_weight"], np.float64)
            steps.append((plan, jac, z, weight))
        else:
            w = np.asarray(layer["weight"], np.float64)
            steps.append((plan, np.broadcast_to(w, (h.shape[0],) + w.shape), None, None))
            h = h @ w.T + np.asarray(layer["bias"], np.float64)
    R = np.broadcast_to(np.eye(h.shape[1]), (h.shape[0], h.shape[1], h.shape[1]))  # d out / d y, last layer
    out = []
    for plan, jac, z, weight in reversed(steps):
        if z is not None:
            out.append((plan, R[:, :, :, None] * weight[None, None], z))
        R = np.einsum("nko,noi->nki", R, jac)
    return out, h


def readout_variance(model, params, plans: list[LayerPlan], x) -> np.ndarray:
    """``V[n, k]`` with ``Var y_k = V / S`` at sample ``x[n]`` (see the module docstring)."""
    x = np.atleast_2d(np.asarray(x, np.float64))
    V = np.zeros((x.shape[0], model.out_width))
    for plan, G, z in _sensitivities(model, params, plans, x)[0]:
        placements = [pl for prog in plan.programs for pl in prog.placements]
        for pl, zc in zip(placements, z):
            s = sum(G[:, :, o, i] for o, i in pl.edges)  # [N, out_net]: shared measurement, summed first
            V += s ** 2 * (1 - zc[:, None] ** 2)
    return V


def predicted_std(model, params, plans, x, shots: int) -> np.ndarray:
    """Predicted standard deviation ``[N, out]`` of the network output with ``shots`` per circuit."""
    return np.sqrt(readout_variance(model, params, plans, x) / shots)


def shots_for(V: np.ndarray, precision: float) -> int:
    """Shots per circuit so that every output's standard deviation is at most ``precision``."""
    return max(1, int(math.ceil(float(np.max(V)) / precision ** 2)))


def _layer_counts(plan: LayerPlan) -> dict:
    gates: dict[str, int] = {}
    depths = []
    for prog in plan.programs:
        for k, c in enumerate(prog.program.counts):
            depths.append(sum(c.values()))
            for name, n in c.items():
                gates[name] = gates.get(name, 0) + n
    circuits = plan.circuits
    return {"layer": plan.id, "kind": "kan", "edges": plan.record.edges, "circuits": circuits,
            "jobs": len(plan.programs), "qubits_per_program": max((p.program.qubits for p in plan.programs), default=0),
            "gates_per_circuit": {k: round(v / max(circuits, 1), 2) for k, v in sorted(gates.items())},
            "depth_max": max(depths, default=0), "depth_mean": round(float(np.mean(depths)), 2) if depths else 0.0}


def cost_report(model, params, plans: list[LayerPlan], x=None, *, shots: int | None = None,
                precision: float | None = None, basis: str = "", pack: int = 1, inputs: str = "") -> dict:
    """The cost of one forward pass; with inputs ``x`` also the shot-noise figures.

    With ``shots`` it reports the output standard deviation that many shots give (mean and
    worst over outputs and samples); with ``precision`` (default 0.01 when neither is given)
    the shots per circuit that keep every output's standard deviation below it.
    """
    layers = [_layer_counts(p) if p.programs or isinstance(p.record, KanNode)
              else {"layer": p.id, "kind": "linear", "circuits": 0, "jobs": 0} for p in plans]
    report = {"basis": basis, "pack": pack, "layers": layers,
              "circuits_per_sample": sum(r["circuits"] for r in layers),
              "jobs_per_sample": sum(r["jobs"] for r in layers),
              "qubits_per_program": max((r.get("qubits_per_program", 0) for r in layers), default=0)}
    if x is None:
        return report
    V = readout_variance(model, params, plans, x)
    report["samples"] = int(V.shape[0])
    report["inputs"] = inputs
    report["variance_x_shots"] = {"mean": float(V.mean()), "max": float(V.max())}
    if shots is not None:
        std = np.sqrt(V / shots)
        report["shots"] = int(shots)
        report["std"] = {"mean": float(std.mean()), "max": float(std.max())}
    else:
        eps = 0.01 if precision is None else float(precision)
        report["precision"] = eps
        report["shots_needed"] = shots_for(V, eps)
        report["shots_total_per_sample"] = report["shots_needed"] * report["jobs_per_sample"]
    return report


def format_report(r: dict) -> list[str]:
    """The report as text lines."""
    lines = [f"basis {r['basis']}, pack {r['pack']}: per sample {r['circuits_per_sample']} circuits in "
             f"{r['jobs_per_sample']} jobs, up to {r['qubits_per_program']} qubits per program"]
    for layer in r["layers"]:
        if layer["kind"] == "linear":
            lines.append(f"  {layer['layer']}: linear (classical)")
            continue
        gates = ", ".join(f"{k} {v:g}" for k, v in layer["gates_per_circuit"].items()) or "none"
        lines.append(f"  {layer['layer']}: {layer['edges']} edges -> {layer['circuits']} circuits in {layer['jobs']} "
                     f"jobs; per circuit: {gates}; depth {layer['depth_mean']:g} mean, {layer['depth_max']} max")
    if "shots" in r:
        lines.append(f"shot noise over {r['samples']} samples ({r['inputs']}): {r['shots']} shots per circuit give an "
                     f"output standard deviation of {r['std']['mean']:.3g} mean, {r['std']['max']:.3g} worst")
    elif "shots_needed" in r:
        lines.append(f"shot noise over {r['samples']} samples ({r['inputs']}): {r['shots_needed']} shots per circuit keep "
                     f"every output's standard deviation <= {r['precision']:g} ({r['shots_total_per_sample']} shots "
                     f"per sample)")
    return lines
