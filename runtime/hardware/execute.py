"""Run an exported network through an executor, layer by layer (``qvaf.hardware.run``).

For each kan layer and each sample the runner computes every program's inputs from the
layer's input (the network input or the previous layer's output; derived inputs with the
expressions the manifest records), hands all the jobs of the layer to the executor at once,
scatters each qubit's ``<Z>`` to the edges it computes, and applies the classical
post-processing of the KAN layer formula

.. math::

    y_j = \\sum_i m_{ji} \\left[ (\\phi_{ji} + c_{ji})\\, a_{ji} + \\beta_{ji}\\, \\mathrm{base}(x_i) \\right]

before the next layer; linear layers are ``y = x W^T + b``. Masked edges have no circuit and
contribute nothing.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from qvaf.compiler.backends._common import kan_combine

from .executors import Executor, ExecutorError, Job, get_executor
from .manifest import Export, ExportLayer, load_export
from .plan import HardwareError


def _executor(executor, shots, seed) -> Executor:
    if isinstance(executor, str):
        return get_executor(executor, **({"seed": seed} if seed is not None else {}))
    if not callable(executor):
        raise HardwareError(f"executor must be a name or a function of a list of jobs, got {type(executor).__name__}")
    return executor


def _kan_layer(layer: ExportLayer, h: np.ndarray, run, shots) -> tuple[np.ndarray, np.ndarray]:
    batch = h.shape[0]
    jobs, where = [], []
    for b in range(batch):
        for prog in layer.programs:
            xs = [h[b, pl.input] for pl in prog.placements]
            values = prog.program.values(xs)
            bad = [name for name, v in values.items() if not np.isfinite(v)]
            if bad:
                raise HardwareError(f"{layer.id}, sample {b}: input {bad[0]} of {prog.file} is {values[bad[0]]} at edge "
                                    f"inputs {[float(v) for v in xs]} (outside the encoding's domain?)")
            text, inputs = prog.program.bind(values)
            jobs.append(Job(text, inputs, shots))
            where.append((b, prog))
    results = list(run(jobs)) if jobs else []
    if len(results) != len(jobs):
        raise ExecutorError(f"the executor returned {len(results)} results for {len(jobs)} jobs")
    phi = np.zeros((batch, layer.out_width, layer.in_width))
    for (b, prog), values in zip(where, results):
        values = np.asarray(values, np.float64).reshape(-1)
        if values.shape != (prog.program.qubits,) or not np.all(np.isfinite(values)):
            raise ExecutorError(f"the executor returned {values.tolist()!r} for {prog.file}; expected "
                                f"{prog.program.qubits} finite expectation values")
        for pl in prog.placements:
            for o, i in pl.edges:
                phi[b, o, i] = values[pl.qubit]
    record = SimpleNamespace(postact_weight=layer.postact_weight, postact_bias=layer.postact_bias, base=layer.base)
    return kan_combine(record, layer.arrays, h, phi, np), phi


def run(export, x, executor="statevector", *, shots: int | None = None, seed: int | None = None,
        return_edges: bool = False):
    """The network output for inputs ``x`` computed by running the exported programs.

    Args:
        export: an export directory, its ``manifest.json``, or a loaded :class:`Export`.
        x: inputs ``[B, in]`` (or one sample ``[in]``).
        executor: an executor name (``"statevector"``, ``"aer"``, ``"braket-local"``) or a
            function ``executor(jobs) -> values`` (see :mod:`qvaf.runtime.hardware.executors`).
        shots: shots per job (None: exact where the executor can).
        seed: seed for a named sampling executor.
        return_edges: also return every kan layer's measured edge values ``{layer: [B, out, in]}``.

    Returns:
        ``[B, out]`` (``[out]`` for one sample), and the edge values with ``return_edges``.
    """
    ex = export if isinstance(export, Export) else load_export(export)
    fn = _executor(executor, shots, seed)
    x = np.asarray(x, np.float64)
    single = x.ndim == 1
    if single:
        x = x[None]
    if x.ndim != 2 or x.shape[1] != ex.in_width:
        raise HardwareError(f"inputs must have shape [batch, {ex.in_width}], got {list(x.shape)}")
    if not np.all(np.isfinite(x)):
        raise HardwareError("inputs hold non-finite values")
    h, edges = x, {}
    for layer in ex.layers:
        if layer.kind == "linear":
            h = h @ layer.arrays["weight"].T + layer.arrays["bias"]
        else:
            h, edges[layer.id] = _kan_layer(layer, h, fn, shots)
    y = h[0] if single else h
    return (y, edges) if return_edges else y


def jax_model(export):
    """The JAX model and parameters an export was made from (from its ``source/`` copy)."""
    import jax

    from .. import checkpoint as C
    from ..run import compile_model

    ex = export if isinstance(export, Export) else load_export(export)
    m = ex.manifest["model"]
    if not m.get("spec"):
        raise HardwareError(f"{ex.path}: the export holds no spec source, so there is no JAX model to compare with")
    import os

    model = compile_model(os.path.join(ex.path, m["spec"]),
                          {"model": m["name"], "args": m["args"], "ansatz_overrides": m["ansatz_overrides"],
                           "dtype": m["dtype"]})
    template = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), jax.eval_shape(model.init, jax.random.PRNGKey(0)))
    arrays = C._read_npz(os.path.join(ex.path, m["params"]))
    return model, C.fill_named(template, arrays, ex.path)
