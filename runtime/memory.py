"""How much memory one training step of a compiled network needs, known before it runs.

A kan layer of width ``out`` on ``in`` inputs holds, per sample and per edge, the Bloch
vector components and the cos/sin of every data re-upload for the backward pass. XLA's own
memory analysis of the jitted ``value_and_grad`` (CPU, float32, widths 100-400, 1-4
re-uploads) measures about ``9 + 5 (U - 1)`` numbers per sample and edge for ``U`` uploads;
the estimate uses ``6 + 4 U``, a little above it. A layer the JAX backend runs as Fourier
features (every re-upload shares one encoding: fixed pre-activations) forms no per-sample edge
arrays: its circuit runs at ``T = 2U + 1`` nodes per edge, and per sample it holds ``T``
features per input, so it counts ``T · out · in · (2 + 2 U) + B · (T · in + 2 · out)``
instead of the first term below::

    bytes ≈ itemsize · [ Σ_kan B · out · in · (6 + 4 U)      per-sample edge work
                       + Σ_linear 3 · B · out                 activations
                       + 4 · P                                parameters, gradients, 2 Adam moments
                       + F + N · in ]                         fixed arrays, the training inputs

:func:`check_train_memory` runs before training: above :data:`WARN_BYTES` it warns (a
:class:`MemoryWarning` naming the widest layer), above the memory of the device (physical
RAM on a CPU, the allocator's limit on an accelerator) it refuses with a
:class:`~qvaf.runtime.steps.TrainError` that names the layer, its widths and the batch.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass

#: estimated bytes of a train step above which training warns
WARN_BYTES = 2 * 2**30


class MemoryWarning(UserWarning):
    """A training step is estimated to need a lot of memory."""


@dataclass(frozen=True)
class LayerMemory:
    """One layer's share of a train step's memory."""

    layer: str
    kind: str
    in_width: int
    out_width: int
    bytes: int


def estimate_layers(graph, batch: int, itemsize: int) -> list[LayerMemory]:
    """Per-layer estimate of the per-sample work (see the module docstring)."""
    from qvaf.compiler.analysis import stats

    rows = []
    for r in stats(graph, graph):
        uploads = r.reuploads or 0
        if r.kind != "kan":
            numbers = batch * 3 * r.out_width
        elif _fourier_form(graph.nodes[r.layer]["op"]):
            terms = 2 * uploads + 1  # the circuit at 2U + 1 nodes per edge; features per sample and input
            numbers = terms * r.edges * (2 + 2 * uploads) + batch * (terms * r.in_width + 2 * r.out_width)
        else:
            numbers = batch * r.edges * (6 + 4 * uploads)
        rows.append(LayerMemory(r.layer, r.kind, r.in_width, r.out_width, numbers * itemsize))
    return rows


def _fourier_form(node) -> bool:
    """Whether the JAX backend runs this kan layer as Fourier features (no [B, out, in] arrays)."""
    from qvaf.compiler.backends import jax_backend
    from qvaf.compiler.backends._common import BackendError

    try:
        return jax_backend.shared_encoding(node, jax_backend.expand(node.kernel)) is not None
    except BackendError:
        return False


def estimate_step_bytes(model, batch: int, n_train: int = 0) -> tuple[int, list[LayerMemory]]:
    """(total bytes, per-layer share) of one training step of ``model`` at ``batch`` samples.

    ``model`` is a :class:`qvaf.Compiled` or anything wrapping one as ``.compiled``.
    """
    compiled = getattr(model, "compiled", model)
    itemsize = 8 if compiled.dtype == "float64" else 4
    layers = estimate_layers(compiled.ir, batch, itemsize)
    params = 4 * compiled.param_count + compiled.fixed_count + n_train * compiled.in_width
    return sum(l.bytes for l in layers) + params * itemsize, layers


def device_memory_bytes() -> int | None:
    """Memory available to JAX's default device: the allocator's limit on an accelerator,
    physical RAM on a CPU; None when unknown."""
    try:
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        if stats.get("bytes_limit"):
            return int(stats["bytes_limit"])
    except Exception:  # noqa: BLE001 - a backend without memory statistics
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def check_train_memory(model, batch: int, n_train: int, *, limit: int | None = None) -> int | None:
    """Warn or refuse before a train step that will not fit; returns the estimate in bytes.

    Args:
        model: a compiled network (models without an IR, e.g. plain JAX functions, are skipped).
        batch: samples per step.
        n_train: training samples (they live on the device too).
        limit: refuse above this many bytes (default: :func:`device_memory_bytes`).

    Raises:
        TrainError: the estimate exceeds the device's memory.
    """
    compiled = getattr(model, "compiled", model)
    if getattr(compiled, "ir", None) is None or not hasattr(compiled, "param_count"):
        return None
    total, layers = estimate_step_bytes(compiled, batch, n_train)
    if total <= WARN_BYTES:
        return total
    widest = max(layers, key=lambda l: l.bytes)
    what = (f"{widest.layer} ({widest.kind} {widest.in_width} -> {widest.out_width}) takes "
            f"{_gb(widest.bytes)} at batch {batch}")
    limit = device_memory_bytes() if limit is None else limit
    if limit is not None and total > limit:
        from .steps import TrainError

        smaller = max(1, math.floor(batch * limit / total / 2))
        raise TrainError(f"a train step needs about {_gb(total)} of memory, more than the {_gb(limit)} this device "
                         f"has: {what}. Use a narrower layer or a smaller batch (--batch {smaller} or less)")
    warnings.warn(f"a train step needs about {_gb(total)} of memory: {what}", MemoryWarning, stacklevel=3)
    return total
