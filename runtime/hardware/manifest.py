"""Load and validate an export directory (its ``manifest.json`` and every file it lists).

Nothing in an export runs as code: the manifest is JSON checked field by field against
:data:`SCHEMA`, arrays come from ``np.load(allow_pickle=False)``, expressions are rebuilt
node by node from their JSON form. Every problem is a :class:`ManifestError` naming the file
and the field, e.g. ``manifest.json: layers[0].programs[2].placement[0].edges[1]: edge (7, 1)
is outside the layer's 5 x 2 edges``.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass

import numpy as np

from qvaf.compiler.backends._common import BASES as BASE_FUNCTIONS
from qvaf.compiler.emit import BASES, EMITTERS, LEVELS, PARAM_MODES, Program, ProgramInput
from qvaf.compiler.emit import text as T

from .. import checkpoint as C
from .export import FORMAT, VERSION
from .plan import HardwareError, Placement

_INT, _STR, _BOOL, _LIST, _DICT = int, str, bool, list, dict
_OPT_STR = (str, type(None))

#: required fields and their JSON types, per kind of object
SCHEMA = {
    "manifest": {"format": _STR, "version": _INT, "target": _STR, "basis": _STR, "level": _STR,
                 "functions": _STR, "pack": _INT, "physical_qubits": _BOOL, "model": _DICT, "arrays": _DICT,
                 "layers": _LIST, "files": _DICT},
    "model": {"name": _OPT_STR, "in_width": _INT, "out_width": _INT, "dtype": _STR, "args": _DICT,
              "ansatz_overrides": _DICT, "spec": _OPT_STR, "params": _STR, "origin": _STR},
    "arrays": {"file": _STR, "entries": _DICT},
    "kan": {"id": _STR, "kind": _STR, "in_width": _INT, "out_width": _INT, "source": _STR, "ansatz": _STR,
            "observable": _STR, "measured": _STR, "base": _STR, "mask": _STR, "base_weight": _OPT_STR,
            "postact_weight": _OPT_STR, "postact_bias": _OPT_STR, "programs": _LIST},
    "linear": {"id": _STR, "kind": _STR, "in_width": _INT, "out_width": _INT, "source": _STR,
               "weight": _STR, "bias": _STR},
    "program": {"file": _STR, "qubits": _INT, "depth": _INT, "inputs": _LIST, "placement": _LIST},
    "input": {"name": _STR, "qubit": _INT, "kind": _STR, "expr": (int, float, str, dict)},
    "placement": {"qubit": _INT, "input": _DICT, "edges": _LIST, "gates": _DICT},
    "file": {"sha256": _STR, "bytes": _INT},
}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ManifestError(HardwareError):
    """An export directory is missing, damaged, tampered with, or not one this qvaf reads."""


@dataclass(frozen=True)
class ExportProgram:
    file: str
    program: Program
    placements: tuple[Placement, ...]


@dataclass(frozen=True)
class ExportLayer:
    id: str
    kind: str
    in_width: int
    out_width: int
    source: str
    base: str = "none"
    observable: str = "z"
    postact_weight: bool = False
    postact_bias: bool = False
    arrays: dict | None = None  # name -> array (mask, base_weight, postact_*, weight, bias)
    programs: tuple[ExportProgram, ...] = ()


@dataclass(frozen=True)
class Export:
    """A validated export: its directory, manifest and layers in order."""

    path: str
    manifest: dict
    layers: tuple[ExportLayer, ...]

    @property
    def target(self) -> str:
        return self.manifest["target"]

    @property
    def in_width(self) -> int:
        return self.manifest["model"]["in_width"]

    @property
    def jobs_per_sample(self) -> int:
        return sum(len(layer.programs) for layer in self.layers)


def _fields(obj, kind: str, where: str, mpath: str) -> dict:
    if not isinstance(obj, dict):
        raise ManifestError(f"{mpath}: {where}: expected an object, got {type(obj).__name__}")
    for key, typ in SCHEMA[kind].items():
        if key not in obj:
            raise ManifestError(f"{mpath}: {where}: missing field '{key}'")
        value = obj[key]
        bad = isinstance(value, bool) and typ in (_INT, (int, float, str, dict))
        if bad or not isinstance(value, typ):
            raise ManifestError(f"{mpath}: {where}.{key}: {type(value).__name__} is not the expected type")
    return obj


def _choice(value, choices, where: str, mpath: str) -> None:
    if value not in choices:
        raise ManifestError(f"{mpath}: {where}: {value!r} is not one of {', '.join(map(str, choices))}")


def load_export(path: str) -> Export:
    """Read and validate an export (its directory, or its ``manifest.json``).

    Raises:
        ManifestError: a missing or damaged file, a wrong version, a missing or mistyped
            field, a checksum mismatch, arrays of the wrong shape, inconsistent placements.
    """
    path = os.fspath(path)
    root = os.path.dirname(path) if os.path.basename(path) == "manifest.json" else path
    mpath = os.path.join(root, "manifest.json")
    if not os.path.isfile(mpath):
        raise ManifestError(f"{root}: not an export directory (no manifest.json)")
    try:
        m = C._read_json(mpath)
    except C.CheckpointError as exc:
        raise ManifestError(str(exc)) from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ManifestError(f"{mpath}: not a qvaf hardware export manifest (format {FORMAT!r} expected)")
    if m.get("version") != VERSION:
        raise ManifestError(f"{mpath}: manifest version {m.get('version')!r}; this qvaf reads version {VERSION}")
    _fields(m, "manifest", "manifest", mpath)
    _choice(m["target"], list(EMITTERS), "target", mpath)
    _choice(m["basis"], list(BASES), "basis", mpath)
    _choice(m["level"], LEVELS, "level", mpath)
    _choice(m["functions"], ("hoist", "inline"), "functions", mpath)
    _choice(m.setdefault("params", "literal"), PARAM_MODES, "params", mpath)  # absent before params= existed
    if m["pack"] < 1:
        raise ManifestError(f"{mpath}: pack: {m['pack']} is not a positive integer")
    _check_files(root, m, mpath)
    model = _fields(m["model"], "model", "model", mpath)
    arrays = _load_arrays(root, m, mpath)
    layers, width, prev = [], model["in_width"], "input"
    if not m["layers"]:
        raise ManifestError(f"{mpath}: layers: empty")
    for n, entry in enumerate(m["layers"]):
        where = f"layers[{n}]"
        kind = entry.get("kind") if isinstance(entry, dict) else None
        _choice(kind, ("kan", "linear"), f"{where}.kind", mpath)
        _fields(entry, kind, where, mpath)
        if entry["source"] != prev or entry["in_width"] != width:
            raise ManifestError(f"{mpath}: {where}: takes {entry['in_width']} inputs from {entry['source']!r}, but "
                                f"{prev!r} gives {width}")
        layer = (_kan if kind == "kan" else _linear)(root, entry, arrays, m, where, mpath)
        layers.append(layer)
        width, prev = entry["out_width"], entry["id"]
    if width != model["out_width"]:
        raise ManifestError(f"{mpath}: model.out_width is {model['out_width']}, the last layer gives {width}")
    return Export(root, m, tuple(layers))


def _check_files(root: str, m: dict, mpath: str) -> None:
    for rel, info in m["files"].items():
        where = f"files[{rel!r}]"
        _fields(info, "file", where, mpath)
        p = os.path.normpath(os.path.join(root, rel))
        if not p.startswith(os.path.abspath(root) + os.sep) and not p.startswith(root + os.sep):
            raise ManifestError(f"{mpath}: {where}: the path leaves the export directory")
        if not os.path.isfile(p):
            raise ManifestError(f"{p}: missing (listed in the manifest)")
        if os.path.getsize(p) != info["bytes"] or C._sha256(p) != info["sha256"]:
            raise ManifestError(f"{p}: checksum mismatch; the file is damaged or was modified")
    needed = [m["arrays"].get("file") if isinstance(m["arrays"], dict) else None,
              m["model"].get("params") if isinstance(m["model"], dict) else None]
    needed += [prog.get("file") for layer in m["layers"] if isinstance(layer, dict)
               for prog in (layer.get("programs") or []) if isinstance(prog, dict)]
    for rel in needed:
        if rel is not None and rel not in m["files"]:
            raise ManifestError(f"{mpath}: {rel!r} is used but not listed (with its checksum) in 'files'")


def _load_arrays(root: str, m: dict, mpath: str) -> dict[str, np.ndarray]:
    spec = _fields(m["arrays"], "arrays", "arrays", mpath)
    p = os.path.join(root, spec["file"])
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ManifestError(f"{p}: unreadable ({exc})") from None
    for key, info in spec["entries"].items():
        if key not in arrays:
            raise ManifestError(f"{p}: missing array '{key}' (listed in the manifest)")
        if not isinstance(info, dict) or list(arrays[key].shape) != info.get("shape") or str(arrays[key].dtype) != info.get("dtype"):
            raise ManifestError(f"{p}: array '{key}' is {arrays[key].dtype}{list(arrays[key].shape)}, the manifest "
                                f"says {info}")
    extra = set(arrays) - set(spec["entries"])
    if extra:
        raise ManifestError(f"{p}: arrays {sorted(extra)} are not listed in the manifest")
    return arrays


def _array(arrays, key, shape, where, mpath) -> np.ndarray:
    if key not in arrays:
        raise ManifestError(f"{mpath}: {where}: array {key!r} is not in the arrays file")
    a = arrays[key]
    if a.shape != tuple(shape):
        raise ManifestError(f"{mpath}: {where}: array {key!r} has shape {list(a.shape)}, the layer needs {list(shape)}")
    if not np.all(np.isfinite(a)):
        raise ManifestError(f"{mpath}: {where}: array {key!r} holds non-finite values")
    return a


def _linear(root, entry, arrays, m, where, mpath) -> ExportLayer:
    out, inp = entry["out_width"], entry["in_width"]
    w = _array(arrays, entry["weight"], (out, inp), f"{where}.weight", mpath)
    b = _array(arrays, entry["bias"], (out,), f"{where}.bias", mpath)
    return ExportLayer(entry["id"], "linear", inp, out, entry["source"], arrays={"weight": w, "bias": b})


def _kan(root, entry, arrays, m, where, mpath) -> ExportLayer:
    out, inp = entry["out_width"], entry["in_width"]
    _choice(entry["observable"], ("z", "x", "y"), f"{where}.observable", mpath)
    _choice(entry["base"], BASE_FUNCTIONS, f"{where}.base", mpath)
    layer_arrays = {"mask": _array(arrays, entry["mask"], (out, inp), f"{where}.mask", mpath)}
    for name in ("base_weight", "postact_weight", "postact_bias"):
        if entry[name] is not None:
            layer_arrays[name] = _array(arrays, entry[name], (out, inp), f"{where}.{name}", mpath)
    if (entry["base"] != "none") != ("base_weight" in layer_arrays):
        raise ManifestError(f"{mpath}: {where}: base {entry['base']!r} and base_weight {entry['base_weight']!r} disagree")
    covered: dict[tuple[int, int], str] = {}
    programs = []
    for j, prog in enumerate(entry["programs"]):
        programs.append(_program(root, prog, entry, m, f"{where}.programs[{j}]", mpath, covered))
    live = {(o, i) for o in range(out) for i in range(inp) if layer_arrays["mask"][o, i] != 0}
    missing = sorted(live - set(covered))
    if missing:
        raise ManifestError(f"{mpath}: {where}: edges {missing[:5]} have a non-zero mask but no circuit")
    return ExportLayer(entry["id"], "kan", inp, out, entry["source"], entry["base"], entry["observable"],
                       "postact_weight" in layer_arrays, "postact_bias" in layer_arrays, layer_arrays, tuple(programs))


def _program(root, prog, layer, m, where, mpath, covered) -> ExportProgram:
    _fields(prog, "program", where, mpath)
    n = prog["qubits"]
    if not 1 <= n <= m["pack"]:
        raise ManifestError(f"{mpath}: {where}.qubits: {n} is not between 1 and pack = {m['pack']}")
    with open(os.path.join(root, prog["file"]), encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    inputs, names = [], set()
    for k, item in enumerate(prog["inputs"]):
        w = f"{where}.inputs[{k}]"
        _fields(item, "input", w, mpath)
        _choice(item["kind"], ("data", "derived", "param"), f"{w}.kind", mpath)
        if not _IDENT.match(item["name"]) or item["name"] in names or not 0 <= item["qubit"] < n:
            raise ManifestError(f"{mpath}: {w}: bad or repeated name {item['name']!r} or qubit {item['qubit']}")
        try:
            expr = T.from_json(item["expr"], f"{w}.expr")
        except ValueError as exc:
            raise ManifestError(f"{mpath}: {exc}") from None
        names.add(item["name"])
        inputs.append(ProgramInput(item["name"], item["qubit"], item["kind"], expr))
    _check_text(text, m["target"], names, where, mpath)
    placements, counts = [], []
    for k, pl in enumerate(prog["placement"]):
        w = f"{where}.placement[{k}]"
        _fields(pl, "placement", w, mpath)
        src = pl["input"]
        if pl["qubit"] != k or src.get("source") != layer["source"] or not isinstance(src.get("index"), int) \
                or isinstance(src.get("index"), bool) or not 0 <= src["index"] < layer["in_width"]:
            raise ManifestError(f"{mpath}: {w}: qubit {pl['qubit']} / input {src} does not fit (qubit {k}, "
                                f"an index into the {layer['in_width']} outputs of {layer['source']!r})")
        edges = []
        for e, edge in enumerate(pl["edges"]):
            ok = isinstance(edge, list) and len(edge) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in edge)
            if not ok or not 0 <= edge[0] < layer["out_width"] or edge[1] != src["index"]:
                raise ManifestError(f"{mpath}: {w}.edges[{e}]: edge {edge} is outside the layer's "
                                    f"{layer['out_width']} x {layer['in_width']} edges or not fed by input {src['index']}")
            if tuple(edge) in covered:
                raise ManifestError(f"{mpath}: {w}.edges[{e}]: edge {edge} is also computed by {covered[tuple(edge)]}")
            covered[tuple(edge)] = w
            edges.append(tuple(edge))
        placements.append(Placement(k, src["index"], tuple(edges)))
        counts.append(dict(pl["gates"]))
    if len(placements) != n:
        raise ManifestError(f"{mpath}: {where}: {len(placements)} placements for {n} qubits")
    program = Program(text, m["target"], n, tuple(inputs), tuple(counts))
    return ExportProgram(prog["file"], program, tuple(placements))


def _check_text(text: str, target: str, names: set, where: str, mpath: str) -> None:
    if target == "qasm3":
        declared = set(re.findall(r"^input float\[64\] ([A-Za-z_][A-Za-z0-9_]*);$", text, re.M))
        head = "OPENQASM 3.0;"
    else:
        declared = set(re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", text))
        head = "OPENQASM 2.0;"
    if not text.startswith(head):
        raise ManifestError(f"{mpath}: {where}: the program file is not {head.split(';')[0]}")
    if declared != names:
        raise ManifestError(f"{mpath}: {where}: the program's inputs {sorted(declared)} differ from the manifest's "
                            f"{sorted(names)}")
