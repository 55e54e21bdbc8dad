"""Executors: the contract between qvaf and whatever runs the programs.

An executor is a function ``executor(jobs) -> values``: ``jobs`` is a list of
:class:`Job` ``(program, inputs, shots)`` — the program text, its input bindings (name ->
float; empty for QASM 2, whose numbers are written in) and the shot count (None: exact, where
the executor can) — and ``values[j]`` holds ``<Z_k>`` for every qubit ``k`` of job ``j``'s
program, the marginal expectation of its measured bit: ``P(c[k] = 0) - P(c[k] = 1)``.

Built in (:data:`EXECUTORS`; each entry builds one):

* ``statevector`` — qiskit's ``Statevector``: exact, shots ignored.
* ``aer`` — qiskit-aer's ``AerSimulator``: samples ``shots``; optional ``noise_model``,
  ``method`` (``"density_matrix"`` for noise) or a whole ``simulator``.
* ``braket-local`` — the Amazon Braket SDK's ``LocalSimulator``, fed the program in Braket's
  dialect (:func:`qvaf.compiler.emit.to_braket`) with its inputs; exact with ``shots=None``
  (result types), sampled otherwise.

Programs are parsed once per distinct text and bound per job. A device executor is the same
ten lines around its own client (docs/hardware.md shows one for IBM Runtime's EstimatorV2).
"""

from __future__ import annotations

import importlib.util
from typing import Callable, Mapping, NamedTuple, Sequence

import numpy as np

from .plan import HardwareError


class Job(NamedTuple):
    """One program run: its text, input bindings and shots (None: exact)."""

    program: str
    inputs: Mapping[str, float]
    shots: int | None


Executor = Callable[[Sequence[Job]], Sequence[Sequence[float]]]


class ExecutorError(HardwareError):
    """An executor cannot run a job (missing package, a program it rejects, no shots)."""


# ----------------------------------------------------------------------------- qiskit helpers


def load_circuit(text: str):
    """The qiskit ``QuantumCircuit`` of a program (QASM 3 inputs become ``Parameter``\\ s)."""
    try:
        if text.startswith("OPENQASM 2"):
            from qiskit import qasm2

            return qasm2.loads(text)
        from qiskit import qasm3

        return qasm3.loads(text)
    except Exception as exc:  # qiskit raises several unrelated types for a bad program
        hint = ("; qiskit reads no QASM 3 function calls: export with --functions hoist"
                if "FunctionCall" in str(exc) else "")
        raise ExecutorError(f"qiskit cannot load the program: {exc}{hint}") from None


def bind_circuit(circuit, inputs: Mapping[str, float]):
    """``circuit`` with every parameter bound by name; every binding must be used."""
    params = {p.name: p for p in circuit.parameters}
    if set(params) != set(inputs):
        raise ExecutorError(f"the program's inputs are {sorted(params)}, the job binds {sorted(inputs)}")
    if not params:
        return circuit
    return circuit.assign_parameters({params[n]: float(v) for n, v in inputs.items()})


def z_from_probabilities(p: np.ndarray, n: int) -> np.ndarray:
    """``<Z_k>`` of every qubit from the 2^n basis-state probabilities (qubit k = bit k)."""
    idx = np.arange(len(p))
    return np.array([np.sum(p * (1 - 2 * ((idx >> k) & 1))) for k in range(n)])


def z_from_counts(counts: Mapping[str, int], n: int, *, little_endian: bool = True) -> np.ndarray:
    """``<Z_k>`` from bitstring counts; qiskit writes bit 0 rightmost (``little_endian``),
    Braket leftmost."""
    total = sum(counts.values())
    z = np.zeros(n)
    for bits, c in counts.items():
        bits = bits.replace(" ", "")
        for k in range(n):
            b = bits[len(bits) - 1 - k] if little_endian else bits[k]
            z[k] += c if b == "0" else -c
    return z / total


def _need(package: str, executor: str, hint: str) -> None:
    if importlib.util.find_spec(package) is None:
        raise ExecutorError(f"the {executor!r} executor needs the package {package!r}; install it with: {hint}")


# ----------------------------------------------------------------------------- executors


def statevector() -> Executor:
    """Exact ``<Z_k>`` from qiskit's ``Statevector`` (shots are ignored)."""
    _need("qiskit", "statevector", "pip install 'qiskit==2.6.2' 'qiskit-qasm3-import==0.6.0'")
    from qiskit.quantum_info import Statevector

    cache: dict[str, object] = {}

    def run(jobs: Sequence[Job]):
        out = []
        for job in jobs:
            program, inputs, _ = job
            circ = cache.get(program)
            if circ is None:
                circ = cache[program] = load_circuit(program).remove_final_measurements(inplace=False)
            p = Statevector(bind_circuit(circ, inputs)).probabilities()
            out.append(z_from_probabilities(p, circ.num_qubits))
        return out

    return run


def aer(*, shots: int | None = None, seed: int | None = None, noise_model=None, method: str = "automatic",
        simulator=None) -> Executor:
    """Sampled ``<Z_k>`` from qiskit-aer.

    Args:
        shots: shots per job when a job says None.
        seed: seeds the simulator (one draw per batch), so a run is reproducible.
        noise_model: a ``qiskit_aer.noise.NoiseModel`` applied to the programs' gates (their
            names are the basis' gates: ``rz``, ``sx``, ``x`` in ``ibm``).
        method: AerSimulator's method (``"density_matrix"`` for noise without sampling error
            in the state).
        simulator: a ready ``AerSimulator`` (e.g. ``AerSimulator.from_backend(...)``).
    """
    _need("qiskit_aer", "aer", "pip install 'qiskit-aer==0.18.2'")
    from qiskit_aer import AerSimulator

    sim = simulator if simulator is not None else AerSimulator(method=method, noise_model=noise_model)
    rng = np.random.default_rng(seed)
    cache: dict[str, object] = {}

    def run(jobs: Sequence[Job]):
        out: list = [None] * len(jobs)
        groups: dict[tuple, list[int]] = {}
        for j, (program, _, s) in enumerate(jobs):
            s = s if s is not None else shots
            if s is None or s < 1:
                raise ExecutorError("the aer executor samples: give a positive shot count")
            groups.setdefault((program, int(s)), []).append(j)
        for (program, s), idx in groups.items():
            circ = cache.get(program)
            if circ is None:
                circ = cache[program] = load_circuit(program)
            params = {p.name: p for p in circ.parameters}
            for j in idx:
                if set(jobs[j][1]) != set(params):
                    raise ExecutorError(f"the program's inputs are {sorted(params)}, the job binds {sorted(jobs[j][1])}")
            binds = [{params[n]: [float(jobs[j][1][n]) for j in idx] for n in params}] if params else None
            result = sim.run(circ if params else [circ] * len(idx), shots=s, parameter_binds=binds,
                             seed_simulator=int(rng.integers(2**31))).result()
            for r, j in enumerate(idx):
                out[j] = z_from_counts(result.get_counts(r), circ.num_qubits)
        return out

    return run


def braket_local(*, seed: int | None = None) -> Executor:
    """``<Z_k>`` from the Amazon Braket SDK's local state-vector simulator: exact for jobs with
    ``shots=None``, sampled otherwise. Runs QASM 3 programs only. ``seed`` is accepted like
    the other sampling executors' but unused: the local simulator takes no seed."""
    _need("braket", "braket-local", "pip install 'amazon-braket-sdk==1.127.5'")
    from braket.devices import LocalSimulator
    from braket.ir.openqasm import Program as BraketProgram

    from qvaf.compiler.emit import to_braket

    device = LocalSimulator()
    del seed  # the local simulator draws its own samples

    def run(jobs: Sequence[Job]):
        out = []
        for program, inputs, shots in jobs:
            if not program.startswith("OPENQASM 3"):
                raise ExecutorError("the braket-local executor runs OpenQASM 3 programs; export with --target qasm3")
            exact = shots is None
            source = to_braket(program, exact=exact)
            task = device.run(BraketProgram(source=source, inputs=dict(inputs)), shots=0 if exact else int(shots))
            result = task.result()
            if exact:
                out.append(np.asarray(result.values, float))
            else:
                n = len(result.measured_qubits)
                out.append(z_from_counts(dict(result.measurement_counts), n, little_endian=False))
        return out

    return run


#: executor name -> function building one (keyword options as documented on each)
EXECUTORS: dict[str, Callable[..., Executor]] = {
    "statevector": statevector,
    "aer": aer,
    "braket-local": braket_local,
}


def get_executor(name: str, **options) -> Executor:
    """Build the executor registered as ``name`` with ``options``."""
    if name not in EXECUTORS:
        raise ExecutorError(f"unknown executor {name!r}; executors: {', '.join(EXECUTORS)}")
    if name == "statevector":
        options.pop("shots", None)
        options.pop("seed", None)
    return EXECUTORS[name](**options)
