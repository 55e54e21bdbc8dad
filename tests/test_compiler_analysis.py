"""Analyses: the frequency bound (checked by FFT of the circuit's readout), counts, unused params."""

from __future__ import annotations

import math

import numpy as np
import pytest

from _compiler_so3 import readout
from qvaf.compiler.analysis import frequency_bound, stats, unused_params
from qvaf.compiler.expr import Binary, Const, Input, LoopVar, ParamRef, Unary
from qvaf.compiler.ir import Circuit, GateOp, Init, LoopOp, Op
from qvaf.compiler.lower import kernel_graph
from qvaf.compiler.passes import run_pipeline

L = LoopVar("l")


def g(op, *angles):
    return GateOp(op, tuple(angles))


def ref(name, *idx):
    return ParamRef(name, tuple(i if not isinstance(i, int) else Const(i) for i in idx))


def encoded(coefs, observable="z"):
    """h, then per coefficient c: ry(t[l, 0]) rz(t[l, 1]) rx(c * x + 0.3) — readout ``observable``."""
    ops = [g(Op.H)]
    for l, c in enumerate(coefs):
        ops += [g(Op.RY, ref("t", l, 0)), g(Op.RZ, ref("t", l, 1)),
                g(Op.RX, Binary("+", Binary("*", Const(c), Input()), Const(0.3)))]
    ops += [g(Op.RY, ref("t", len(coefs), 0))]
    return Circuit(tuple(ops), observable, (("t", (len(coefs) + 1, 2)),))


def spectrum_top(circuit, params, n=64) -> int:
    """Highest integer frequency with a visible Fourier coefficient (2 pi periodic readout)."""
    xs = 2 * math.pi * np.arange(n) / n
    f = np.fft.rfft([readout(circuit, float(x), params) for x in xs]) / n
    return int(np.nonzero(np.abs(f) > 1e-9)[0].max())


@pytest.mark.parametrize("coefs, bound", [([1, 1, 1], 3), ([2, -1], 3), ([3], 3), ([1, 2, 1, 1], 5)])
def test_frequency_bound_matches_fft(coefs, bound):
    c = encoded(coefs)
    graph = run_pipeline(kernel_graph(c))
    row = stats(kernel_graph(c), graph)[0]
    assert (row.max_frequency, row.reuploads) == (bound, len(coefs))
    rng = np.random.default_rng(len(coefs))
    params = {"t": rng.normal(size=(len(coefs) + 1, 2))}
    assert spectrum_top(c, params) == bound  # reached for generic parameters, never exceeded


def test_frequency_bound_fractional_and_blocked():
    assert frequency_bound(encoded([0.5, 0.25]), {}) == (0.75, "")
    w = Circuit((g(Op.RY, Binary("*", ref("w", 0), Input())), g(Op.RY, Binary("*", ref("v", 0), Input()))),
                "z", (("w", (1,)), ("v", (1,))))
    assert frequency_bound(w, {"w": True, "v": False}) == (None, "depends on trainable w, fixed per-edge v")
    acos = Circuit((g(Op.RY, ref("t", 0)), g(Op.RX, Unary("acos", Input())), g(Op.RX, Unary("acos", Input()))),
                   "z", (("t", (1,)),))
    assert frequency_bound(acos, {})[1].startswith("degree <= 2 in the angle acos(.)")
    assert frequency_bound(encoded([1], "inspired"), {})[0] is None
    assert frequency_bound(Circuit((g(Op.RX, Binary("*", Input(), Input())),)), {}) == (
        None, "non-linear encoding: no finite spectrum")


def test_stats_counts_before_and_after():
    # h; for l<2 { rz(t[l,0]) ry(t[l,1]) rz(x) }; rz(t[2,0]) with constants folded in
    body = (g(Op.RZ, ref("t", L, 0)), g(Op.RY, ref("t", L, 1)), g(Op.RZ, Binary("*", ref("w", L), Input())))
    c = Circuit((g(Op.H), LoopOp("l", 0, 2, body), g(Op.RZ, ref("t", 2, 0))), "z", (("t", (3, 2)),),
                (("w", (1.0, 1.0)),))
    graph = kernel_graph(c, in_width=3, out_width=2, base="silu", postact_weight=True,
                         inits={"t": (Init("normal", (0.0, 1.0)), True)})
    row = stats(graph)[0]
    assert (row.edges, row.gates_before, row.gates_after, row.ops_after, row.fused_blocks, row.reuploads) == \
        (6, 8, 6, 3, 2, 1)
    # h -> ry(pi/2) (leading rz(pi) dropped); the trailing rz(t[2, 0]) and then the last data
    # rotation rz(x) commute with Z and are dropped: one re-upload is left, frequency 1
    assert (row.trainable, row.fixed) == (6 * 6 + 6 + 6, 6)  # t, postact_weight, base_weight; mask
    assert row.max_frequency == 1


def test_unused_params_names_entries_only_dropped_gates_read():
    # t[1] feeds only a trailing rz before measure z; s is multiplied by a zero constant; u is never read
    c = Circuit((g(Op.RY, ref("t", 0)), g(Op.RY, Binary("*", ref("k"), ref("s"))), g(Op.RZ, Input()),
                 g(Op.RX, ref("t", 2)), g(Op.RZ, ref("t", 1))),
                "z", (("t", (3,)), ("s", ()), ("u", (2,))), (("k", 0.0),))
    found = unused_params(run_pipeline(kernel_graph(c)))
    assert [(u.layer, u.name, u.indices) for u in found] == [
        ("layer0", "t", ((1,),)), ("layer0", "s", ((),)), ("layer0", "u", ((0,), (1,)))]
    assert "t[1] never read" in found[0].message()
    assert "layer0.u (all 2 entries per edge)" in found[2].message()
    # nothing is reported for the circuit as lowered: every entry is read there
    assert [u.name for u in unused_params(kernel_graph(c))] == ["u"]


def test_domain_limits_name_data_dependent_acos_log_sqrt_only():
    from qvaf.compiler.analysis import domain_limits

    xw = Binary("*", ref("w", 0), Input())
    c = Circuit((g(Op.RX, Unary("acos", xw)),                     # limited: reads x
                 g(Op.RY, Unary("acos", ref("t", 0))),            # data-free: not reported
                 g(Op.RZ, Unary("log", Binary("+", Input(), Const(2.0)))),
                 g(Op.RZ, Unary("sin", Input()))),                # sin is defined everywhere
                "z", (("w", (1,)), ("t", (1,))))
    found = domain_limits(kernel_graph(c))
    assert [(d.layer, d.expr, d.need) for d in found] == [
        ("layer0", "acos(w[0] * x)", "in [-1, 1]"), ("layer0", "log(x + 2)", "> 0")]
    assert "inputs outside give NaN" in found[0].message()
