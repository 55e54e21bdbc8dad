"""The hardware path: export a network as programs plus a manifest, run them through an
executor and rebuild the network's output, and say what that costs.

    plan.py       which circuits each layer runs, deduplicated and packed onto programs
    export.py     the export directory (programs, manifest.json, npz arrays), written atomically
    manifest.py   loading and validating an export
    executors.py  the executor contract and the built-in statevector, aer, braket-local
    execute.py    run(export, x, executor): layer by layer with classical post-processing
    cost.py       circuits, jobs, gates, depth, and shots for a target precision
"""

from .cost import cost_report, format_report, predicted_std, readout_variance, shots_for
from .execute import jax_model, run
from .executors import EXECUTORS, Executor, ExecutorError, Job, get_executor, load_circuit
from .export import FORMAT, VERSION, Network, export, load_network, network_of
from .manifest import SCHEMA, Export, ManifestError, load_export
from .plan import HardwareError, plan_network

__all__ = [
    "EXECUTORS", "Executor", "ExecutorError", "Export", "FORMAT", "HardwareError", "Job", "ManifestError",
    "Network", "SCHEMA", "VERSION", "cost_report", "export", "format_report", "get_executor", "jax_model",
    "load_circuit", "load_export", "load_network", "network_of", "plan_network", "predicted_std", "readout_variance",
    "run", "shots_for",
]
