r"""Noise models as data: single-qubit channels in closed form on the Bloch vector.

Every channel here maps the Bloch vector affinely, ``r -> D r + c`` with ``D`` diagonal and
``c`` along z, so a whole noise step is four numbers ``(d_x, d_y, d_z, c_z)``:

.. math::

    \text{Pauli}(p_x, p_y, p_z):\; \rho \mapsto (1 - p_x - p_y - p_z)\rho + p_x X\rho X + p_y Y\rho Y + p_z Z\rho Z,
    \quad D = \mathrm{diag}(1 - 2(p_y + p_z),\, 1 - 2(p_x + p_z),\, 1 - 2(p_x + p_y))

    \text{depolarizing}(p):\; \rho \mapsto (1 - p)\rho + p\, I/2, \quad D = (1 - p) I

    \text{phase damping}(\lambda):\; K_0 = \mathrm{diag}(1, \sqrt{1-\lambda}),\, K_1 = \mathrm{diag}(0, \sqrt\lambda),
    \quad D = \mathrm{diag}(\sqrt{1-\lambda}, \sqrt{1-\lambda}, 1)

    \text{amplitude damping}(\gamma):\; K_0 = \mathrm{diag}(1, \sqrt{1-\gamma}),\, K_1 = \sqrt\gamma\,|0\rangle\langle 1|,
    \quad D = \mathrm{diag}(\sqrt{1-\gamma}, \sqrt{1-\gamma}, 1-\gamma),\; c_z = \gamma

One noise step applies them in this order (the unital ones commute with each other;
amplitude damping, which has an offset, comes last). Readout error acts on the measured
bit: with ``p01 = p(0|1)`` and ``p10 = p(1|0)`` the measured expectation is

.. math::

    \langle Z\rangle_{\text{read}} = (1 - p_{01} - p_{10})\,\langle Z\rangle + (p_{01} - p_{10}).

Placement (``where``): ``"gate"`` applies a noise step after every gate of the circuit as
written (loops unrolled, each gate of the spec one gate, the same gates the ``written``
level of the QASM emitter writes); ``"upload"`` applies it after every data re-upload only;
``"spec"`` applies it where the ansatz says, at every ``noise`` statement (inside a loop: once
per iteration), and nowhere else.

From a device's calibration (:meth:`NoiseModel.from_calibration`): T1, T2 and the gate time t
give amplitude damping ``gamma = 1 - exp(-t/T1)`` and phase damping
``lambda = 1 - exp(-2 t / T_phi)`` with the pure dephasing rate ``1/T_phi = 1/T2 - 1/(2 T1)``
(together they decay the coherences by exactly ``exp(-t/T2)``); ``T2 > 2 T1`` is not physical
and is refused.

Example::

    noise = NoiseModel(depolarizing=0.01, readout=0.02, where="gate")
    noise = NoiseModel.parse("depolarizing=0.01,readout=0.02")
    noise = NoiseModel.from_calibration(t1=100e-6, t2=80e-6, gate_time=50e-9, readout=0.02)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from qvaf.dsl.errors import QvafError

#: where a noise step is applied
PLACEMENTS = ("gate", "upload", "spec")
#: the channel fields of :class:`NoiseModel`, in application order, with how many numbers each takes
CHANNELS = {"pauli": 3, "depolarizing": 1, "phase_damping": 1, "amplitude_damping": 1, "readout": 2}
#: calibration keys :meth:`NoiseModel.parse` also takes (they must come together)
CALIBRATION = ("t1", "t2", "gate_time")


class NoiseError(QvafError):
    """A noise model that is not well formed (unknown channel, a probability outside [0, 1])."""


def _number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise NoiseError(f"noise {name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise NoiseError(f"noise {name} must be a finite number, got {value!r}")
    return v


def _probability(name: str, value) -> float:
    v = _number(name, value)
    if not 0.0 <= v <= 1.0:
        raise NoiseError(f"noise {name} is a probability in [0, 1], got {v}")
    return v


@dataclass(frozen=True)
class NoiseModel:
    """Single-qubit noise on every edge circuit: the channels' parameters and where they act.

    Attributes:
        depolarizing: p of ``rho -> (1 - p) rho + p I/2``, in [0, 1].
        pauli: ``(p_x, p_y, p_z)`` of the Pauli channel (sum at most 1); a single number
            means the same for all three.
        phase_damping: lambda of the phase damping channel, in [0, 1].
        amplitude_damping: gamma of the amplitude damping channel (decay to |0>), in [0, 1].
        readout: ``(p(0|1), p(1|0))`` of the final measurement; a single number is symmetric.
        where: ``"gate"`` (after every gate, as written), ``"upload"`` (after every data
            re-upload) or ``"spec"`` (at every ``noise`` statement of the ansatz).
    """

    depolarizing: float = 0.0
    pauli: tuple[float, float, float] = (0.0, 0.0, 0.0)
    phase_damping: float = 0.0
    amplitude_damping: float = 0.0
    readout: tuple[float, float] = (0.0, 0.0)
    where: str = "gate"

    def __post_init__(self):
        def tuple_of(name, value, n):
            if isinstance(value, (list, tuple)):
                if len(value) != n:
                    raise NoiseError(f"noise {name} takes {n} numbers, got {len(value)}: {list(value)}")
                return tuple(_probability(name, v) for v in value)
            return (_probability(name, value),) * n

        object.__setattr__(self, "pauli", tuple_of("pauli", self.pauli, 3))
        object.__setattr__(self, "readout", tuple_of("readout", self.readout, 2))
        for name in ("depolarizing", "phase_damping", "amplitude_damping"):
            object.__setattr__(self, name, _probability(name, getattr(self, name)))
        if sum(self.pauli) > 1.0 + 1e-12:
            raise NoiseError(f"noise pauli probabilities sum to {sum(self.pauli):.6g}, more than 1")
        if self.where not in PLACEMENTS:
            raise NoiseError(f"noise where={self.where!r} is not a placement; choices: {', '.join(PLACEMENTS)}")

    # -- the maps

    @property
    def has_channel(self) -> bool:
        """True when a noise step changes the state (some channel is non-zero)."""
        return self.step_map() != (1.0, 1.0, 1.0, 0.0)

    @property
    def is_noiseless(self) -> bool:
        return not self.has_channel and self.readout == (0.0, 0.0)

    def step_map(self) -> tuple[float, float, float, float]:
        """``(d_x, d_y, d_z, c_z)`` of one noise step, ``r -> diag(d) r + c_z e_z`` (module docstring)."""
        px, py, pz = self.pauli
        d = [1.0 - 2.0 * (py + pz), 1.0 - 2.0 * (px + pz), 1.0 - 2.0 * (px + py)]
        d = [v * (1.0 - self.depolarizing) for v in d]
        pd = math.sqrt(1.0 - self.phase_damping)
        d = [d[0] * pd, d[1] * pd, d[2]]
        g = self.amplitude_damping
        ad = math.sqrt(1.0 - g)
        return d[0] * ad, d[1] * ad, d[2] * (1.0 - g), g

    def readout_map(self) -> tuple[float, float]:
        """``(a, b)`` of the measured expectation ``a <Z> + b``."""
        p01, p10 = self.readout
        return 1.0 - p01 - p10, p01 - p10

    # -- construction

    @classmethod
    def from_calibration(cls, *, t1: float, t2: float, gate_time: float, readout=0.0, where: str = "gate",
                         depolarizing: float = 0.0) -> "NoiseModel":
        """Amplitude and phase damping of one gate of duration ``gate_time`` on a qubit with
        relaxation time ``t1`` and coherence time ``t2`` (same unit), plus readout error.

        Raises:
            NoiseError: a non-positive time, or ``t2 > 2 t1`` (no physical qubit has it).
        """
        t1, t2, t = (_number(n, v) for n, v in (("t1", t1), ("t2", t2), ("gate_time", gate_time)))
        if t1 <= 0 or t2 <= 0:
            raise NoiseError(f"noise t1 and t2 must be positive times, got t1={t1:g}, t2={t2:g}")
        if t < 0:
            raise NoiseError(f"noise gate_time must be >= 0, got {t:g}")
        if t2 > 2 * t1 * (1 + 1e-12):
            raise NoiseError(f"noise t2={t2:g} exceeds 2*t1={2 * t1:g}: coherences cannot outlive twice the "
                             "relaxation time (T2 <= 2 T1); check the calibration numbers and their units")
        gamma = 1.0 - math.exp(-t / t1)
        rate = max(1.0 / t2 - 1.0 / (2.0 * t1), 0.0)  # 1 / T_phi
        lam = 1.0 - math.exp(-2.0 * t * rate)
        return cls(amplitude_damping=gamma, phase_damping=lam, readout=readout, where=where,
                   depolarizing=depolarizing)

    @classmethod
    def parse(cls, text: str) -> "NoiseModel":
        """A noise model from ``"name=value,..."`` (the CLI's ``--noise``).

        Names: ``depolarizing``, ``phase_damping``, ``amplitude_damping``, ``pauli``
        (``px/py/pz`` or one number), ``readout`` (``p01/p10`` or one number), ``where``
        (``gate``, ``upload`` or ``spec``), and the calibration ``t1``, ``t2``, ``gate_time`` (all
        three, in one unit), which give the damping channels.
        """
        import difflib

        names = [*CHANNELS, "where", *CALIBRATION]
        values: dict = {}
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            name, eq, value = part.partition("=")
            name, value = name.strip().replace("-", "_"), value.strip()
            if not eq or not name or not value:
                raise NoiseError(f"bad noise entry {part!r} in {text!r}: expected NAME=VALUE, "
                                 f"e.g. depolarizing=0.01,readout=0.02")
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
                hint = f"; did you mean '{close[0]}'?" if close else f"; names: {', '.join(names)}"
                raise NoiseError(f"unknown noise channel {name!r} in {text!r}{hint}")
            if name in values:
                raise NoiseError(f"noise {name} given twice in {text!r}")
            if name == "where":
                values[name] = value
                continue
            try:
                numbers = tuple(float(v) for v in value.split("/"))
            except ValueError:
                raise NoiseError(f"noise {name}={value!r} is not a number (tuples as a/b/c)") from None
            want = CHANNELS.get(name, 1)
            if len(numbers) not in (1, want):
                raise NoiseError(f"noise {name} takes {want} numbers (a/b{'/c' if want == 3 else ''}) or one, "
                                 f"got {value!r}")
            values[name] = numbers[0] if len(numbers) == 1 else numbers
        if not values:
            raise NoiseError(f"empty noise model {text!r}; e.g. depolarizing=0.01,readout=0.02")
        calib = [k for k in CALIBRATION if k in values]
        if calib:
            missing = [k for k in CALIBRATION if k not in values]
            if missing:
                raise NoiseError(f"noise calibration needs t1, t2 and gate_time together; missing {', '.join(missing)}")
            clash = [k for k in ("amplitude_damping", "phase_damping") if k in values]
            if clash:
                raise NoiseError(f"noise {clash[0]} comes from t1/t2/gate_time here; give one or the other")
            if "pauli" in values:
                raise NoiseError("noise pauli cannot be combined with t1/t2/gate_time in one model")
            times = {k: values.pop(k) for k in CALIBRATION}
            return cls.from_calibration(**times, **values)
        return cls(**values)

    def to_json(self) -> dict:
        """Plain JSON data (lists for the tuples)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, data) -> "NoiseModel":
        if isinstance(data, NoiseModel):
            return data
        if isinstance(data, str):
            return cls.parse(data)
        if not isinstance(data, dict):
            raise NoiseError(f"a noise model is a dict of channels or a 'name=value,...' string, "
                             f"not {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise NoiseError(f"unknown noise field(s) {unknown}; fields: {', '.join(sorted(names))}")
        return cls(**data)

    def describe(self) -> str:
        """The model as ``parse`` reads it, non-zero channels only."""
        parts = []
        for name in CHANNELS:
            v = getattr(self, name)
            if isinstance(v, tuple):
                if any(v):
                    parts.append(f"{name}={'/'.join(f'{x:g}' for x in v)}")
            elif v:
                parts.append(f"{name}={v:g}")
        parts.append(f"where={self.where}")
        return ",".join(parts)


def as_noise_model(value) -> NoiseModel | None:
    """None for None, else a :class:`NoiseModel` from a model, a dict or a ``parse`` string."""
    return None if value is None else NoiseModel.from_json(value)


def check_shots(shots, key) -> None:
    """Raise unless ``shots`` is None or a positive int, with a key when it is given."""
    if shots is None:
        if key is not None:
            raise QvafError("key= seeds shot sampling; pass shots=S with it (or drop key=)")
        return
    import numbers

    if isinstance(shots, bool) or not isinstance(shots, numbers.Integral) or shots < 1:
        raise QvafError(f"shots must be a positive integer, got {shots!r}")
    if key is None:
        raise QvafError("shots= samples measurement outcomes: pass a key too, e.g. key=jax.random.PRNGKey(0)")
