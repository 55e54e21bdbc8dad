"""Every model and ansatz in specs/ as pytest parameters ``(path, kind, name)``, shared by the
tests that check a backend against another on every spec."""

from __future__ import annotations

from pathlib import Path

import pytest

import qvaf

SPECS = Path(__file__).resolve().parents[1] / "specs"

#: smaller instances of the bigger models keep the runs short
MODEL_ARGS = {"hqkan_ffn": {"d": 8, "k": 1}, "digits": {"hidden": 3}}


def spec_targets() -> list:
    out = []
    for path in sorted(SPECS.glob("*/*.qvaf")):
        program = qvaf.load(path)
        if program.models:
            out += [pytest.param(path, "model", m, id=f"{path.stem}:{m}") for m in sorted(program.models)]
        else:
            out += [pytest.param(path, "ansatz", a, id=f"{path.stem}:{a}") for a in sorted(program.ansatze)]
    return out


TARGETS = spec_targets()
