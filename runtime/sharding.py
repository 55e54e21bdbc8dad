"""Data-parallel training with :mod:`jax.sharding`: one mesh axis over the batch.

``fit(..., devices=N)`` trains on a :class:`jax.sharding.Mesh` of the first ``N`` devices
with one axis, ``"batch"``. Parameters, optimizer state and the training set are replicated
on every device; inside the jitted step the minibatch is constrained to be split by rows
over the mesh (:func:`split_rows`), so each device runs the model and its backward pass on
``B / N`` rows, and XLA's SPMD partitioner inserts the all-reduce that sums the per-device
gradients. The mathematics is that of one device: the same loss over the same rows, up to
the order of floating-point sums.

A batch that ``N`` does not divide is padded to the next multiple by repeating its first
rows; the model's outputs for the padded rows are dropped before the loss, so the loss,
its gradient and the optimizer see exactly the real batch. (Rows are repeated, not zeros,
so that the padded rows stay inside the domain of every ``acos``/``log`` of a kernel: a
NaN there would reach the gradient as ``0 * NaN``.)

Between jitted chunks the state lives on the host as ordinary single-device arrays
(:func:`on_mesh` moves it on and off), so evaluation, checkpoints and early stopping do
not change, a checkpoint holds unsharded arrays, and a run trained on 4 devices resumes on
1 or on 4.

Devices come from the environment, never from this library: GPUs as JAX finds them; on a
CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` set before JAX starts splits
the host into ``N`` devices (they share the host's cores); across processes or machines,
``jax.distributed.initialize`` called by the program before anything else makes
``jax.devices()`` list every process's devices (see docs/runtime.md).

Example::

    # XLA_FLAGS=--xla_force_host_platform_device_count=4 python train.py
    result = qvaf.fit(model, params, "toy_expsin", TrainConfig(steps=500, batch_size=256), devices=4)
"""

from __future__ import annotations

import numpy as np

from .steps import TrainError

#: the name of the mesh axis the batch is split over
BATCH = "batch"

#: optimizers that train on one device only, and why
SINGLE_DEVICE = {
    "lbfgs": "its line search, a loop whose trip count depends on loss values, stalls XLA's "
             "collectives across devices",
    "lm": "it builds and solves the full Jacobian system",
}

#: how to get more devices, by platform (said when too many are asked for)
_MORE_DEVICES = {
    "cpu": "on a CPU, split the host into {n} devices by setting "
           "XLA_FLAGS=--xla_force_host_platform_device_count={n} before Python starts",
}


def check_devices(devices, what: str = "devices") -> int:
    """``devices`` as an int after checking it is a positive count JAX can provide.

    Raises:
        TrainError: not a positive integer, or more devices than ``jax.devices()`` lists;
            the message starts with ``what`` (the CLI passes ``--devices``) and says how
            many exist and how to get more.
    """
    if isinstance(devices, (bool, np.bool_)) or not isinstance(devices, (int, np.integer)):
        raise TrainError(f"{what} must be a positive integer (the number of devices), got {devices!r}")
    devices = int(devices)
    if devices < 1:
        raise TrainError(f"{what} must be a positive integer (the number of devices), got {devices}")
    if devices == 1:
        return 1
    import jax

    found = jax.devices()
    if devices > len(found):
        platform = found[0].platform
        kinds = sorted({d.device_kind for d in found} - {platform})
        more = _MORE_DEVICES.get(platform, "").format(n=devices)
        raise TrainError(f"{what} {devices}: JAX sees {len(found)} {platform} device{'s' if len(found) != 1 else ''}"
                         + (f" ({', '.join(kinds)})" if kinds else "") + (f"; {more}" if more else "")
                         + "; devices of several processes or machines: jax.distributed.initialize "
                           "(docs/runtime.md, 'Several devices')")
    return devices


def batch_mesh(devices: int):
    """A one-axis :class:`jax.sharding.Mesh` named ``"batch"`` over the first ``devices``
    devices of ``jax.devices()`` (every process's, after ``jax.distributed.initialize``)."""
    import jax
    from jax.sharding import Mesh

    devices = check_devices(devices)
    return Mesh(np.array(jax.devices()[:devices]), (BATCH,))


def replicated(mesh):
    """The sharding that puts a whole copy of an array on every device of ``mesh``."""
    from jax.sharding import NamedSharding, PartitionSpec

    return NamedSharding(mesh, PartitionSpec())


def split_rows(apply, mesh):
    """``apply`` with the rows of its input split over the mesh's batch axis (inside jit).

    ``sharded(params, x)`` equals ``apply(params, x)``: a row count the mesh does not divide
    is padded by repeating the first rows, and the outputs of the padded rows are dropped.
    """
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding, PartitionSpec

    rows = NamedSharding(mesh, PartitionSpec(BATCH))
    size = mesh.size

    def sharded(params, x, **kwargs):  # kwargs: key=, shots= of a shot-sampled apply
        n = x.shape[0]
        pad = (-n) % size
        if pad:
            x = jnp.take(x, jnp.arange(n + pad) % n, axis=0)
        out = apply(params, jax.lax.with_sharding_constraint(x, rows), **kwargs)
        return out[:n] if pad else out

    return sharded


def to_mesh(tree, mesh):
    """Every array of ``tree`` replicated on ``mesh`` (arrays already there are kept).

    Every process passes the same values (same seed, same data), so each builds its own
    devices' copies without talking to the others.
    """
    import jax

    sharding = replicated(mesh)

    def place(a):
        if getattr(a, "sharding", None) == sharding:
            return a
        host = np.asarray(a)
        if sharding.is_fully_addressable:
            return jax.device_put(host, sharding)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree_util.tree_map(place, tree)


def to_host(tree):
    """Every (replicated) array of ``tree`` as an ordinary array on the default device,
    bit for bit."""
    import jax
    import jax.numpy as jnp

    return jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a)), tree)


def on_mesh(fn, mesh):
    """``jax.jit(fn)`` run on ``mesh``: its arguments are replicated there first, its outputs
    (replicated too) come back as ordinary arrays."""
    import jax

    jitted = jax.jit(fn, out_shardings=replicated(mesh))

    def run(*args):
        return to_host(jitted(*to_mesh(args, mesh)))

    return run
