"""Export a network to a directory of programs plus a manifest (``qvaf export``).

The directory (schema: ``docs/hardware.md``)::

    OUT/manifest.json              format, version, target, basis, every layer, program, qubit
    OUT/programs/layer0/p0000.qasm one program per job (QASM 2: templates, see docs)
    OUT/postprocess.npz            masks, post-activation, base and linear weights (float64)
    OUT/source/params.npz          every parameter, in the model's dtype (to rebuild the JAX model)
    OUT/source/spec/...            the spec file(s) the model was compiled from

Writing goes to a temporary directory beside OUT, every file is fsynced, the manifest records
each file's size and sha256, and the directory is renamed into place: OUT is complete or absent.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field

import numpy as np

from qvaf.compiler.emit import text as T
from qvaf.compiler.ir import KanNode

from .. import checkpoint as C
from .plan import HardwareError, LayerPlan, plan_network

FORMAT = "qvaf-hardware-export"
VERSION = 1
ARRAYS_FILE = "postprocess.npz"
PARAMS_FILE = "source/params.npz"


@dataclass
class Network:
    """A compiled model with its parameters and where it came from."""

    model: object
    params: dict
    sources: dict[str, str] = field(default_factory=dict)  # spec files, relative path -> text
    main: str | None = None  # the main spec file among them
    origin: str = ""


# ----------------------------------------------------------------------------- loading a network


def _numpy(params) -> dict:
    return {layer: {k: np.asarray(v) for k, v in arrays.items()} for layer, arrays in params.items()}


def load_network(source: str, *, model_name: str | None = None, args: dict | None = None, seed: int = 0) -> Network:
    """A network from a spec (fresh parameters from ``seed``) or a checkpoint / run directory.

    Raises:
        HardwareError: a checkpoint whose spec no longer compiles (names the file and why).
        CheckpointError: a damaged checkpoint, or weights that do not fit its model.
    """
    from ..run import compile_model, find_spec, spec_sources

    if os.path.isdir(source):
        import jax

        from qvaf.dsl.errors import QvafError

        ck = C.load(source)
        cfg = ck.config.get("model") if isinstance(ck.config, dict) else None
        if not isinstance(cfg, dict) or not isinstance(cfg.get("spec"), str):
            raise C.CheckpointError(f"{ck.path}/config.json: no 'model' entry naming its spec")
        try:
            model = compile_model(os.path.join(ck.spec_dir, cfg["spec"]), cfg)
        except QvafError as exc:
            raise HardwareError(f"{ck.path}: the checkpoint's spec spec/{cfg['spec']} no longer compiles, so its "
                                f"weights have no network to export:\n{exc}") from None
        template = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype),
                                          jax.eval_shape(model.init, jax.random.PRNGKey(0)))
        params = _numpy(C.fill_named(template, ck.weights, ck.path))
        sources = {}
        for root, _, files in os.walk(ck.spec_dir):
            for f in files:
                p = os.path.join(root, f)
                with open(p, encoding="utf-8") as fh:
                    sources[os.path.relpath(p, ck.spec_dir)] = fh.read()
        return Network(model, params, sources, cfg["spec"], ck.path)
    import qvaf

    path = find_spec(source)
    program = qvaf.load(path)
    model = qvaf.compile(program, model_name, args=args or None)
    sources, main = spec_sources(program)
    return Network(model, _numpy(model.init(seed)), sources, main, path)


def network_of(model, params) -> Network:
    """A :class:`Network` for a compiled model and its parameters (sources from its program)."""
    from ..run import spec_sources

    program = getattr(model, "program", None)
    if program is None:
        return Network(model, _numpy(params))
    sources, main = spec_sources(program)
    return Network(model, _numpy(params), sources, main, getattr(program, "path", ""))


# ----------------------------------------------------------------------------- the manifest


def _kan_entry(plan: LayerPlan, net: Network, arrays: dict) -> dict:
    node: KanNode = plan.record
    layer = net.params[plan.id]
    keys = {}
    for name, present in (("mask", True), ("base_weight", node.base != "none"),
                          ("postact_weight", node.postact_weight), ("postact_bias", node.postact_bias)):
        if present:
            arrays[f"{plan.id}/{name}"] = np.asarray(layer[name], np.float64)
            keys[name] = f"{plan.id}/{name}"
        else:
            keys[name] = None
    programs = []
    for j, planned in enumerate(plan.programs):
        p = planned.program
        programs.append({
            "file": f"programs/{plan.id}/p{j:04d}.qasm",
            "qubits": p.qubits,
            "depth": p.depth,
            "inputs": [{"name": i.name, "qubit": i.qubit, "kind": i.kind, "expr": T.to_json(i.expr)} for i in p.inputs],
            "placement": [{"qubit": pl.qubit, "input": {"source": plan.source, "index": pl.input},
                           "edges": [list(e) for e in pl.edges], "gates": p.counts[pl.qubit]}
                          for pl in planned.placements],
        })
    return {"id": plan.id, "kind": "kan", "in_width": node.in_width, "out_width": node.out_width,
            "source": plan.source, "ansatz": node.ansatz, "observable": node.kernel.observable,
            "measured": "z", "base": node.base, **keys, "programs": programs}


def _linear_entry(plan: LayerPlan, net: Network, arrays: dict) -> dict:
    rec = plan.record
    for name in ("weight", "bias"):
        arrays[f"{plan.id}/{name}"] = np.asarray(net.params[plan.id][name], np.float64)
    return {"id": plan.id, "kind": "linear", "in_width": rec.in_width, "out_width": rec.out_width,
            "source": plan.source, "weight": f"{plan.id}/weight", "bias": f"{plan.id}/bias"}


def manifest_for(net: Network, plans: list[LayerPlan], options: dict) -> tuple[dict, dict, dict[str, bytes]]:
    """``(manifest without 'files', post-processing arrays, program files)``."""
    arrays: dict[str, np.ndarray] = {}
    layers = [(_kan_entry if isinstance(p.record, KanNode) else _linear_entry)(p, net, arrays) for p in plans]
    programs = {prog["file"]: planned.program.text.encode()
                for plan, entry in zip(plans, layers) if entry["kind"] == "kan"
                for prog, planned in zip(entry["programs"], plan.programs)}
    model = net.model
    manifest = {
        "format": FORMAT, "version": VERSION, **options,
        "model": {"name": getattr(model, "model_name", None), "in_width": model.in_width,
                  "out_width": model.out_width, "dtype": getattr(model, "dtype", "float32"),
                  "args": dict(getattr(model, "model_args", {}) or {}),
                  "ansatz_overrides": {k: dict(v) for k, v in (getattr(model, "ansatz_overrides", {}) or {}).items()},
                  "spec": f"source/spec/{net.main}" if net.main else None,
                  "params": PARAMS_FILE, "origin": str(net.origin)},
        "arrays": {"file": ARRAYS_FILE,
                   "entries": {k: {"shape": list(a.shape), "dtype": str(a.dtype)} for k, a in arrays.items()}},
        "layers": layers,
    }
    return manifest, arrays, programs


# ----------------------------------------------------------------------------- writing


def export(model, params, out: str, *, target: str = "qasm3", basis: str = "stdgates", level: str = "optimised",
           pack: int = 1, functions: str = "hoist", physical_qubits: bool = False,
           param_mode: str = "literal") -> str:
    """Write the export of ``model`` with ``params`` to ``out`` (see the module docstring).

    ``model`` may also be a :class:`Network` (``params`` then None). ``param_mode="input"`` writes
    parametric programs: the trained parameters become ``input float[64]`` declarations whose
    values the manifest records per program (QASM 3 only). Returns ``out``.

    Raises:
        HardwareError: ``out`` exists and is not empty; EmitError: a layer with no program.
    """
    net = model if isinstance(model, Network) else network_of(model, params)
    options = {"target": target, "basis": basis, "level": level, "functions": functions, "pack": pack,
               "physical_qubits": bool(physical_qubits), "params": param_mode}
    plans = plan_network(net.model, net.params, target=target, basis=basis, level=level, pack=pack,
                         functions=functions, physical_qubits=physical_qubits, param_mode=param_mode)
    manifest, arrays, programs = manifest_for(net, plans, options)
    files: dict[str, bytes] = dict(programs)
    files[ARRAYS_FILE] = C._npz_bytes(arrays)
    files[PARAMS_FILE] = C._npz_bytes(C.flatten_named(net.params))
    for rel, text in net.sources.items():
        files[f"source/spec/{rel}"] = text.encode()
    _write_dir(out, manifest, files)
    return out


def _write_dir(out: str, manifest: dict, files: dict[str, bytes]) -> None:
    out = os.path.abspath(out)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise HardwareError(f"{out} already exists; choose another --out or remove it")
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.tmp-", dir=parent)
    try:
        listed = {}
        for rel, data in sorted(files.items()):
            dest = os.path.normpath(os.path.join(tmp, rel))
            if not dest.startswith(tmp + os.sep):
                raise HardwareError(f"file name {rel!r} escapes the export directory")
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            C._write_file(dest, data)
            listed[rel] = {"sha256": C._sha256(dest), "bytes": len(data)}
        manifest = {**manifest, "files": listed}
        C._write_file(os.path.join(tmp, "manifest.json"), json.dumps(C._json_safe(manifest), indent=1).encode())
        for root, dirs, _ in os.walk(tmp, topdown=False):
            for d in dirs:
                C._fsync_dir(os.path.join(root, d))
        C._fsync_dir(tmp)
        if os.path.isdir(out):
            os.rmdir(out)  # empty (checked above)
        os.rename(tmp, out)
        C._fsync_dir(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
