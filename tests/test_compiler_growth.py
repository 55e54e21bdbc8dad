"""The growth analysis (compiler/growth.py) on lowered circuits: which appended gates it
accepts, which it names, and that an accepted growth keeps the readout (checked numerically
with 2x2 matrices, independent of the backends)."""

from __future__ import annotations

import numpy as np
import pytest

from qvaf.compiler.growth import check_growth, new_slot
from qvaf.compiler.lower import lower_model
from qvaf.dsl import program_from_text
from qvaf.runtime.run import specs_dir


def _kernels(ansatz_text, name, reps, new_reps):
    text = ansatz_text + f"\nmodel m {{\n    input 1\n    kan 1 using {name}(reps = {reps})\n}}\n"
    program = program_from_text(text, filename=f"<{name}>")
    old = lower_model(program, "m").nodes["layer0"]["op"]
    new = lower_model(program, "m", ansatz_overrides={"*": {"reps": new_reps}})
    grow = {s.name: s.grow for s in new.graph["params"] if s.owner == "layer0"}
    return old.kernel, new.nodes["layer0"]["op"].kernel, grow


def _spec(name):
    with open(f"{specs_dir()}/ansatz/{name}.qvaf", encoding="utf-8") as fh:
        return fh.read()


def test_pz_growth_appends_z_rotations_and_identities():
    old, new, grow = _kernels(_spec("pz"), "pz", 2, 4)
    v = check_growth(old, new, grow)
    # appended: rz(x) | rz(0) ry(0) rz(x) | rz(0) ry(0) rz(x) ... ry(0): 1 + 3 + 2 = 6 gates, 4 of them identities
    assert v.ok and v.appended == 6 and v.identity == 4


@pytest.mark.parametrize("name, gate", [("mix", "ry(x)"), ("px", "rx(acos(x))"), ("real", "x")])
def test_refusals_name_the_first_breaking_gate(name, gate):
    old, new, grow = _kernels(_spec(name), name, 1, 2)
    v = check_growth(old, new, grow)
    assert not v.ok and v.gate.startswith(gate + " (") and f"<{name}>:" in v.gate
    assert "does not commute with measure z" in v.reason


def test_the_readout_decides_what_commutes():
    """rx(x) appended before measure x commutes; before measure z it does not."""
    body = ("ansatz a(reps: int = 1) {{\n    param t[reps + 1] = 0.3 grow 0\n    h\n    for l in 0..reps {{\n"
            "        ry(t[l])\n        rx(x)\n    }}\n    ry(t[reps])\n    measure {obs}\n}}\n")
    assert check_growth(*_kernels(body.format(obs="x"), "a", 1, 3)).ok
    v = check_growth(*_kernels(body.format(obs="z"), "a", 1, 3))
    assert not v.ok and v.gate.startswith("rx(x)")


def test_a_changed_old_gate_is_refused():
    """A reps-dependent angle changes the old circuit itself: not an appending growth."""
    text = ("ansatz a(reps: int = 1) {\n    param t[reps + 1] = 0.3 grow 0\n    h\n    for l in 0..reps {\n"
            "        ry(t[l])\n        rz(x / reps)\n    }\n    ry(t[reps])\n    measure z\n}\n")
    v = check_growth(*_kernels(text, "a", 1, 2))
    assert not v.ok and "gate 3 of the old circuit, rz(x)" in v.reason and "becomes rz(x / 2)" in v.reason


def test_a_gate_reading_an_unfilled_slot_is_accepted_only_if_it_commutes_whatever_its_angle():
    text = ("ansatz a(reps: int = 1) {{\n    param t[reps + 1] = 0.3\n    h\n    for l in 0..reps {{\n"
            "        {g}(t[l])\n        rz(x)\n    }}\n    {g}(t[reps])\n    measure z\n}}\n")
    assert check_growth(*_kernels(text.format(g="rz"), "a", 1, 2)).ok
    assert check_growth(*_kernels(text.format(g="ry"), "a", 1, 2)).gate.startswith("ry(t[2])")


def test_new_slot():
    assert not new_slot((1, 1), (2, 2)) and new_slot((2, 0), (2, 2)) and new_slot((0, 5), (3, 2))


def _readout(gates, x, obs="z"):
    paulis = {"x": np.array([[0, 1], [1, 0]], complex), "y": np.array([[0, -1j], [1j, 0]]),
              "z": np.diag([1.0 + 0j, -1.0])}
    psi = np.array([1.0 + 0j, 0.0])
    for axis, angle in gates:
        a = angle(x)
        psi = (np.cos(a / 2) * np.eye(2) - 1j * np.sin(a / 2) * paulis[axis]) @ psi
    return float(np.real(np.conj(psi) @ paulis[obs] @ psi))


def test_accepted_pz_growth_keeps_the_readout_numerically():
    """pz reps 2 with random theta vs the same theta followed by what growth to 4 appends."""
    rng = np.random.default_rng(0)
    th = rng.normal(size=(3, 2))
    old = [("z", lambda x: np.pi), ("y", lambda x: np.pi / 2)]  # h
    for t0, t1 in th[:2]:
        old += [("z", lambda x, t=t0: t), ("y", lambda x, t=t1: t), ("z", lambda x: x)]
    old += [("z", lambda x: th[2, 0]), ("y", lambda x: th[2, 1])]
    appended = [("z", lambda x: x)] + [("z", lambda x: 0.0), ("y", lambda x: 0.0), ("z", lambda x: x)] \
        + [("z", lambda x: 0.0), ("y", lambda x: 0.0)]
    for x in rng.uniform(-3, 3, 20):
        assert abs(_readout(old + appended, x) - _readout(old, x)) < 1e-14
    # whereas ry(x) appended (mix's growth) moves it
    assert max(abs(_readout(old + [("y", lambda x: x)], x) - _readout(old, x)) for x in (0.5, 1.0, 2.0)) > 1e-3
