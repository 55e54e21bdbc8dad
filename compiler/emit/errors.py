"""The emitter's error: a circuit that cannot be written for the chosen target or basis."""

from __future__ import annotations

from qvaf.dsl.errors import QvafError


class EmitError(QvafError):
    """A circuit has no exact program for the target: a non-observable readout (``measure
    inspired``), a gate with no exact lowering in the basis, an angle that is not a real number,
    or an expression the target cannot write."""
