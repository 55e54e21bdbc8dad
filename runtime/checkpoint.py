"""Checkpoints: plain files a reader can inspect, written atomically, loaded without pickle.

A run directory holds::

    RUN/checkpoints/step-00000200/   one complete checkpoint
        manifest.json     format, step, every array's shape and dtype, sha256 of every file
        config.json       the resolved run configuration (model, task, training options)
        weights.npz       parameters, one array per "layer0/theta"-style name
        optimizer.npz     the optax state's leaves in flattening order ("leaf_00000", ...)
        state.npz         batch-order key, per-step losses, early-stopping best parameters
        metrics.jsonl     the evaluation history, one JSON record per line
        spec/...          the spec source file(s) the model was compiled from
    RUN/checkpoints/latest            the name of the newest complete checkpoint

Writing goes to a temporary directory next to the final one; every file and the directory
are fsynced, the directory is renamed into place, and only then is ``latest`` replaced
(write, fsync, ``os.replace``). A crash at any point leaves the previous checkpoint intact
and ``latest`` pointing at it. Loading uses ``np.load(allow_pickle=False)`` and checks the
checksums, so a checkpoint cannot run code and a damaged one is reported, not half-read.

The optimizer state is restored by building a fresh state for the same model and phase and
filling its leaves, after checking their count, shapes and dtypes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass

import numpy as np

from qvaf.dsl.errors import QvafError

FORMAT = "qvaf-checkpoint"
VERSION = 1
_ARRAY_FILES = ("weights.npz", "optimizer.npz", "state.npz")


class CheckpointError(QvafError):
    """A checkpoint is missing, damaged, or does not fit the model it is loaded into."""


# ----------------------------------------------------------------------------- helpers


def flatten_named(tree, prefix: str = "") -> dict[str, np.ndarray]:
    """``{"layer0/theta": array, ...}`` from a pytree (dict keys joined with '/')."""
    import jax

    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        parts = []
        for k in path:
            parts.append(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))))
        out[prefix + "/".join(parts)] = np.asarray(leaf)
    return out


def fill_named(template, arrays: dict[str, np.ndarray], where: str, prefix: str = ""):
    """A pytree shaped like ``template`` with leaves taken from ``arrays`` by name.

    Raises:
        CheckpointError: a missing array, or a shape / dtype different from the template.
    """
    import jax
    import jax.numpy as jnp

    names = list(flatten_named(template, prefix))
    leaves, treedef = jax.tree_util.tree_flatten(template)
    filled = []
    for name, leaf in zip(names, leaves):
        if name not in arrays:
            raise CheckpointError(f"incompatible checkpoint {where}: no array '{name}' "
                                  f"(it holds {sorted(arrays)[:8]}{'...' if len(arrays) > 8 else ''})")
        a = arrays[name]
        if tuple(a.shape) != tuple(np.shape(leaf)) or a.dtype != np.asarray(leaf).dtype:
            raise CheckpointError(f"incompatible checkpoint {where}: '{name}' is {a.dtype}{list(a.shape)}, "
                                  f"the model needs {np.asarray(leaf).dtype}{list(np.shape(leaf))}")
        filled.append(jnp.asarray(a))
    extra = set(k for k in arrays if k.startswith(prefix)) - set(names)
    if extra:
        raise CheckpointError(f"incompatible checkpoint {where}: arrays {sorted(extra)} do not belong to the model")
    return treedef.unflatten(filled)


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_file(path: str, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _json_safe(value):
    """JSON cannot hold NaN/inf: store them as strings."""
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


# ----------------------------------------------------------------------------- saving


def save(run_dir: str, state, log, run_config: dict, sources: dict[str, str] | None = None, *, keep: int = 2) -> str:
    """Write the checkpoint of ``state`` (a :class:`~qvaf.runtime.train_state.TrainState`) atomically.

    Args:
        run_dir: the run directory (created if needed).
        state: the training state to save.
        log: the :class:`~qvaf.runtime.train_state.RunLog` (losses and history).
        run_config: JSON-serialisable resolved configuration (model, task, training options).
        sources: spec files, relative path inside ``spec/`` -> text.
        keep: how many complete checkpoints to keep (the newest ones).

    Returns:
        The path of the new checkpoint directory.
    """
    import jax

    ckdir = os.path.join(run_dir, "checkpoints")
    os.makedirs(ckdir, exist_ok=True)
    for stale in os.listdir(ckdir):  # leftovers of an interrupted save
        if stale.startswith(".tmp-"):
            shutil.rmtree(os.path.join(ckdir, stale), ignore_errors=True)
    name = f"step-{state.step:08d}"
    tmp = tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=ckdir)
    try:
        weights = flatten_named(state.params)
        opt = {f"leaf_{i:05d}": np.asarray(x) for i, x in enumerate(jax.tree_util.tree_leaves(state.opt_state))}
        extra = {"key": np.asarray(state.key), "losses": np.asarray(log.losses, np.float64)}
        extra.update(flatten_named(state.best_params, "best/"))
        payload = {"weights.npz": weights, "optimizer.npz": opt, "state.npz": extra}
        files = {}
        for fname, arrays in payload.items():
            _write_file(os.path.join(tmp, fname), _npz_bytes(arrays))
        _write_file(os.path.join(tmp, "config.json"), json.dumps(_json_safe(run_config), indent=2).encode())
        _write_file(os.path.join(tmp, "metrics.jsonl"),
                    "".join(json.dumps(_json_safe(r)) + "\n" for r in log.history).encode())
        for rel, text in (sources or {}).items():
            dest = os.path.normpath(os.path.join(tmp, "spec", rel))
            if not dest.startswith(os.path.join(tmp, "spec") + os.sep):
                raise CheckpointError(f"spec file name '{rel}' escapes the checkpoint directory")
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            _write_file(dest, text.encode())
        for root, _, fnames in os.walk(tmp):
            for f in fnames:
                p = os.path.join(root, f)
                files[os.path.relpath(p, tmp)] = {"sha256": _sha256(p), "bytes": os.path.getsize(p)}
        manifest = {
            "format": FORMAT, "version": VERSION, "step": int(state.step),
            "phase_start": int(state.phase_start), "best_metric": _json_safe(state.best_metric),
            "best_step": int(state.best_step), "stale": int(state.stale),
            "arrays": {f"{fname}:{k}": {"shape": list(a.shape), "dtype": str(a.dtype)}
                       for fname, arrays in payload.items() for k, a in arrays.items()},
            "files": files,
        }
        _write_file(os.path.join(tmp, "manifest.json"), json.dumps(manifest, indent=1).encode())
        for root, dirs, _ in os.walk(tmp, topdown=False):
            for d in dirs:
                _fsync_dir(os.path.join(root, d))
        _fsync_dir(tmp)
        final = os.path.join(ckdir, name)
        if os.path.exists(final):  # same step saved again (e.g. best params after early stopping)
            old = tempfile.mkdtemp(prefix=f".tmp-old-{name}-", dir=ckdir)
            os.rename(final, os.path.join(old, name))
        os.rename(tmp, final)
        _fsync_dir(ckdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pointer = os.path.join(ckdir, "latest")
    _write_file(pointer + ".tmp", (name + "\n").encode())
    os.replace(pointer + ".tmp", pointer)
    _fsync_dir(ckdir)
    _prune(ckdir, name, keep)
    return final


def _prune(ckdir: str, current: str, keep: int) -> None:
    steps = sorted(d for d in os.listdir(ckdir) if d.startswith("step-"))
    for d in steps[:-max(1, keep)]:
        if d != current:
            shutil.rmtree(os.path.join(ckdir, d), ignore_errors=True)
    for d in os.listdir(ckdir):
        if d.startswith(".tmp-old-"):
            shutil.rmtree(os.path.join(ckdir, d), ignore_errors=True)


# ----------------------------------------------------------------------------- loading


@dataclass
class Checkpoint:
    """A loaded checkpoint: raw arrays and metadata (turn it into a state with :func:`restore`)."""

    path: str
    manifest: dict
    config: dict
    weights: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray]
    extra: dict[str, np.ndarray]
    history: list[dict]

    @property
    def step(self) -> int:
        return int(self.manifest["step"])

    @property
    def spec_dir(self) -> str:
        return os.path.join(self.path, "spec")


def resolve(path: str) -> str:
    """The checkpoint directory ``path`` names: a checkpoint itself, a run directory (its
    latest checkpoint) or a run's ``checkpoints`` folder."""
    path = os.fspath(path)
    if os.path.isfile(os.path.join(path, "manifest.json")):
        return path
    for ckdir in (os.path.join(path, "checkpoints"), path):
        pointer = os.path.join(ckdir, "latest")
        if os.path.isfile(pointer):
            with open(pointer) as fh:
                name = fh.read().strip()
            target = os.path.join(ckdir, name)
            if not name.startswith("step-") or not os.path.isdir(target):
                raise CheckpointError(f"{pointer}: names '{name}', which is not a checkpoint directory")
            return target
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such checkpoint or run directory")
    raise CheckpointError(f"{path}: not a checkpoint (no manifest.json) and no checkpoints/latest inside")


def load(path: str) -> Checkpoint:
    """Read and verify a checkpoint (see :func:`resolve` for what ``path`` may name).

    Raises:
        CheckpointError: missing files, bad JSON, checksum mismatch, unreadable arrays.
    """
    path = resolve(path)
    mpath = os.path.join(path, "manifest.json")
    manifest = _read_json(mpath)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{mpath}: not a qvaf checkpoint manifest")
    if manifest.get("version") != VERSION:
        raise CheckpointError(f"{mpath}: checkpoint format version {manifest.get('version')}, "
                              f"this qvaf reads version {VERSION}")
    for key in ("step", "phase_start", "arrays", "files"):
        if key not in manifest:
            raise CheckpointError(f"{mpath}: missing field '{key}'")
    for rel, info in manifest["files"].items():
        p = os.path.join(path, rel)
        if not os.path.isfile(p):
            raise CheckpointError(f"{p}: missing (listed in the manifest)")
        if os.path.getsize(p) != info.get("bytes") or _sha256(p) != info.get("sha256"):
            raise CheckpointError(f"{p}: checksum mismatch; the file is damaged or was modified")
    arrays = {f: _read_npz(os.path.join(path, f)) for f in _ARRAY_FILES}
    for name, info in manifest["arrays"].items():
        fname, _, key = name.partition(":")
        a = arrays.get(fname, {}).get(key)
        if a is None:
            raise CheckpointError(f"{os.path.join(path, fname)}: missing array '{key}'")
        if list(a.shape) != info["shape"] or str(a.dtype) != info["dtype"]:
            raise CheckpointError(f"{os.path.join(path, fname)}: array '{key}' is {a.dtype}{list(a.shape)}, "
                                  f"the manifest says {info['dtype']}{info['shape']}")
    config = _read_json(os.path.join(path, "config.json"))
    history = []
    mfile = os.path.join(path, "metrics.jsonl")
    with open(mfile) as fh:
        for i, line in enumerate(fh, 1):
            if line.strip():
                try:
                    history.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise CheckpointError(f"{mfile}:{i}: not valid JSON ({exc.msg})") from None
    return Checkpoint(path, manifest, config, arrays["weights.npz"], arrays["optimizer.npz"],
                      arrays["state.npz"], history)


def _read_json(path: str):
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None


def _read_npz(path: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: np.asarray(z[k]) for k in z.files}
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path}: unreadable ({exc})") from None


def restore(ckpt: Checkpoint, model, config):
    """Rebuild the :class:`~qvaf.runtime.train_state.TrainState` and :class:`~qvaf.runtime.train_state.RunLog`
    of a checkpoint for ``model`` (compiled as the checkpoint's configuration says).

    The parameter and optimizer-state structures come from ``model`` and ``config``; the
    checkpoint fills their leaves after the count, shape and dtype of each are checked.
    """
    import jax
    import jax.numpy as jnp

    from .train_state import RunLog, TrainState, init_opt_state

    where = ckpt.path
    template = jax.eval_shape(model.init, jax.random.PRNGKey(0))
    template = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), template)
    params = fill_named(template, ckpt.weights, where)
    best = fill_named(template, ckpt.extra, where, prefix="best/") if any(
        k.startswith("best/") for k in ckpt.extra) else params
    # the saved optimizer state belongs to the phase that started at phase_start (a checkpoint
    # taken exactly at a phase boundary still holds the previous phase's state)
    fresh = init_opt_state(model, params, config, int(ckpt.manifest["phase_start"]))
    leaves, treedef = jax.tree_util.tree_flatten(fresh)
    saved = [ckpt.optimizer.get(f"leaf_{i:05d}") for i in range(len(ckpt.optimizer))]
    if len(saved) != len(leaves) or any(s is None for s in saved):
        raise CheckpointError(f"incompatible checkpoint {where}: the optimizer state has {len(ckpt.optimizer)} "
                              f"arrays, the configured optimizer needs {len(leaves)}")
    for i, (s, f) in enumerate(zip(saved, leaves)):
        f = np.asarray(f)
        if s.shape != f.shape or s.dtype != f.dtype:
            raise CheckpointError(f"incompatible checkpoint {where}: optimizer array {i} is {s.dtype}{list(s.shape)}, "
                                  f"the configured optimizer needs {f.dtype}{list(f.shape)}")
    opt_state = treedef.unflatten([jnp.asarray(s) for s in saved])
    m = ckpt.manifest
    best_metric = m.get("best_metric")
    best_metric = float(best_metric) if best_metric is not None else None
    if "key" not in ckpt.extra or "losses" not in ckpt.extra:
        raise CheckpointError(f"{where}/state.npz: missing 'key' or 'losses'")
    state = TrainState(ckpt.step, params, opt_state, jnp.asarray(ckpt.extra["key"]), int(m["phase_start"]),
                       best, best_metric, int(m.get("best_step", 0)), int(m.get("stale", 0)))
    log = RunLog(losses=[float(v) for v in ckpt.extra["losses"]], history=list(ckpt.history))
    if len(log.losses) != state.step:
        raise CheckpointError(f"{where}: {len(log.losses)} recorded losses for step {state.step}")
    return state, log
