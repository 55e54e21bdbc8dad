"""Taking a trained network to a device: ``qvaf.hardware``.

Example::

    import qvaf, qvaf.hardware as hw
    hw.export(model, params, "export/", target="qasm3", basis="ibm", pack=4)
    y = hw.run("export/", x, "statevector")          # or "aer" (shots=...), "braket-local",
                                                      # or your own executor(jobs) -> values
    text = hw.edge_program(kernel, {"theta": theta[o, i]}, basis="ibm")   # one edge's QASM

``import qvaf.hardware`` loads neither qiskit nor the Braket SDK; an executor imports its
simulator when it is built. See docs/hardware.md for the manifest schema and the executor
contract.
"""

from qvaf.compiler.emit import BASES, EMITTERS, edge_program, to_braket
from qvaf.runtime.hardware import (
    EXECUTORS,
    Executor,
    ExecutorError,
    Export,
    HardwareError,
    Job,
    ManifestError,
    cost_report,
    export,
    format_report,
    get_executor,
    jax_model,
    load_circuit,
    load_export,
    load_network,
    plan_network,
    predicted_std,
    run,
)

__all__ = [
    "BASES", "EMITTERS", "EXECUTORS", "Executor", "ExecutorError", "Export", "HardwareError", "Job",
    "ManifestError", "cost_report", "edge_program", "export", "format_report", "get_executor", "jax_model", "load_circuit",
    "load_export", "load_network", "plan_network", "predicted_std", "run", "to_braket",
]
