"""``qvaf export``, ``qvaf run`` and ``qvaf cost``: the hardware path from the command line.

Examples::

    qvaf export runs/demo --target qasm3 --basis ibm --pack 4 --out runs/demo/export
    qvaf run runs/demo/export --task toy_sin2 --executor aer --shots 4000
    qvaf cost runs/demo --basis ibm --precision 0.01 --task toy_sin2
"""

from __future__ import annotations

import json
import os
import time

from qvaf.dsl.errors import QvafError


def _network_flags(p) -> None:
    p.add_argument("source", metavar="SPEC|CKPT", help="a .qvaf file or bundled model (fresh parameters), or a "
                                                       "run / checkpoint directory (trained parameters)")
    p.add_argument("--model", help="model of the spec (default: its only model)")
    p.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE", help="model argument (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed for a SPEC (default 0)")
    p.add_argument("--basis", default="stdgates", help="native gate set: stdgates, ibm, rz-rx90, clifford "
                                                       "(default stdgates)")
    p.add_argument("--pack", type=int, default=1, help="edge circuits per program, one per qubit (default 1)")
    p.add_argument("--level", default="optimised", choices=["optimised", "written"],
                   help="circuits after the pass pipeline (default) or as written")


def _data_flags(p, required: bool) -> None:
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--task", help="a task name (`qvaf tasks`): its test split")
    g.add_argument("--data", metavar="FILE", help="an .npz with arrays x and y, or a .csv (target in the last column)")
    p.add_argument("--samples", type=int, default=32, help="how many samples to run (default 32)")


def add_parser(subparsers) -> None:
    """Register ``export``, ``run`` and ``cost``."""
    p = subparsers.add_parser("export", help="compile a network to OpenQASM programs plus a manifest",
                              description="Write a network's circuits as OpenQASM programs, a manifest.json and "
                                          "the classical post-processing arrays to --out.")
    _network_flags(p)
    p.add_argument("--target", default="qasm3", choices=["qasm3", "qasm2"], help="program format (default qasm3)")
    p.add_argument("--functions", default="hoist", choices=["hoist", "inline"],
                   help="non-arithmetic data angles: computed classically into inputs (hoist, default; what "
                        "qiskit loads) or written as QASM 3 built-ins (inline; openqasm3, Braket)")
    p.add_argument("--physical-qubits", action="store_true", help="address $0, $1, ... (QASM 3)")
    p.add_argument("--params", default="literal", choices=["literal", "input"],
                   help="trained parameters as numbers in the programs (literal, default) or as "
                        "'input float[64]' declarations bound at run time (input; QASM 3, parametric compilation)")
    p.add_argument("--out", required=True, help="export directory (must not exist)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(run=run_export)

    p = subparsers.add_parser("run", help="run an export through an executor and compare with the JAX model",
                              description="Evaluate an exported network on data through an executor, layer by "
                                          "layer, and print its metric next to the JAX model's.")
    p.add_argument("export", metavar="EXPORT_DIR")
    _data_flags(p, required=True)
    p.add_argument("--executor", default="statevector", choices=["statevector", "aer", "braket-local"])
    p.add_argument("--shots", type=int, help="shots per job (default: exact for statevector, 1024 otherwise; "
                                             "0: exact, for braket-local too)")
    p.add_argument("--seed", type=int, default=0, help="seed of a sampling executor (default 0)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_run)

    p = subparsers.add_parser("cost", help="circuits, jobs, gates and shots per forward pass on hardware",
                              description="Per forward pass of one sample: circuits, jobs, qubits, native gates "
                                          "and depth, and the shots for a target output precision (or the "
                                          "precision a shot count gives).")
    _network_flags(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--shots", type=int, help="report the output standard deviation with this many shots per circuit")
    g.add_argument("--precision", type=float, help="report the shots per circuit for this output standard deviation "
                                                   "(default 0.01)")
    _data_flags(p, required=False)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_cost)


# ----------------------------------------------------------------------------- helpers


def _network(args):
    from .cmd_train import _model_args
    from .hardware import load_network

    return load_network(args.source, model_name=args.model, args=_model_args(args.arg), seed=args.seed)


def _dataset(args):
    from .data import DataError, load_task

    import numpy as np

    if args.samples < 1:
        raise QvafError(f"--samples must be at least 1, got {args.samples}")
    if args.task:
        ds = load_task(args.task)
        x, y, label = ds.x_test, ds.y_test, f"test samples of {ds.name}"
    else:
        path = args.data
        kind = "npz" if path.endswith(".npz") else "csv" if path.endswith(".csv") else None
        if kind is None:
            raise DataError(f"--data {path}: expected a .npz (arrays x, y) or a .csv file")
        ds = load_task(f"{kind}:{path}")  # every sample of the file, whatever split it fell in
        x = np.concatenate([ds.x_train, ds.x_val, ds.x_test])
        y = np.concatenate([ds.y_train, ds.y_val, ds.y_test])
        label = f"samples of {os.path.basename(path)}"
    n = min(args.samples, len(x))
    return ds, x[:n], y[:n], label


# ----------------------------------------------------------------------------- commands


def run_export(args) -> int:
    from .hardware import export, load_export

    t0 = time.perf_counter()
    net = _network(args)
    export(net, None, args.out, target=args.target, basis=args.basis, level=args.level, pack=args.pack,
           functions=args.functions, physical_qubits=args.physical_qubits, param_mode=args.params)
    ex = load_export(args.out)
    programs = ex.jobs_per_sample
    summary = {"event": "export", "out": args.out, "target": args.target, "basis": args.basis, "pack": args.pack,
               "programs": programs, "seconds": time.perf_counter() - t0}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"exported {net.model.model_name or 'network'} from {net.origin} to {args.out}: {programs} "
              f"{args.target} programs in basis {args.basis} (pack {args.pack}), manifest {args.out}/manifest.json")
    return 0


def run_run(args) -> int:
    import numpy as np

    from . import metrics as M
    from .hardware import load_export
    from .hardware import run as hw_run
    from .hardware.execute import jax_model
    from .steps import predict

    ex = load_export(args.export)
    ds, x, y, label = _dataset(args)
    if x.shape[1] != ex.in_width:
        raise QvafError(f"{label} has {x.shape[1]} inputs; the exported network takes {ex.in_width}")
    shots = args.shots
    if shots is not None and shots < 0:
        raise QvafError(f"--shots must be 0 (exact) or positive, got {shots}")
    if shots is None and args.executor != "statevector":
        shots = 1024
    if shots == 0:
        shots = None
    t0 = time.perf_counter()
    y_hw = hw_run(ex, x, args.executor, shots=shots, seed=args.seed)
    seconds = time.perf_counter() - t0
    model, params = jax_model(ex)
    y_jax = predict(model, params, x)
    metric = M.METRIC_OF_KIND[ds.kind][0]
    m_hw = M.metrics_for(ds.kind, y_hw, y)[metric]
    m_jax = M.metrics_for(ds.kind, y_jax, y)[metric]
    diff = float(np.max(np.abs(y_hw - y_jax)))
    record = {"event": "run", "export": args.export, "executor": args.executor, "shots": shots, "samples": len(x),
              "data": label, "metric": metric, "hardware": m_hw, "jax": m_jax, "max_abs_diff": diff,
              "jobs": ex.jobs_per_sample * len(x), "seconds": seconds}
    if args.json:
        print(json.dumps(record))
    else:
        how = "exact" if shots is None else f"{shots} shots per job"
        print(f"{len(x)} {label} through {args.executor} ({how}; {record['jobs']} jobs, {seconds:.1f} s)")
        print(f"  {metric}: {m_hw:.6g} (executor)   {m_jax:.6g} (JAX model)   max |difference| {diff:.3g}")
    return 0


def run_cost(args) -> int:
    import numpy as np

    from .hardware import cost_report, format_report, plan_network

    net = _network(args)
    plans = plan_network(net.model, net.params, basis=args.basis, level=args.level, pack=args.pack)
    if args.task or args.data:
        _, x, _, label = _dataset(args)
    else:
        x = np.random.default_rng(0).uniform(-1, 1, (min(args.samples, 16), net.model.in_width))
        label = "random (uniform on [-1, 1], seed 0; pass --task or --data for real)"
    report = cost_report(net.model, net.params, plans, x, shots=args.shots, precision=args.precision,
                         basis=args.basis, pack=args.pack, inputs=label)
    if args.json:
        print(json.dumps({"event": "cost", **report}))
    else:
        print("\n".join(format_report(report)))
    return 0


def demo_hardware(run_dir: str, task: dict, samples: int = 16) -> dict:
    """What ``qvaf demo`` adds after training: export the run to QASM 3 in the ibm basis, run
    ``samples`` test inputs through the statevector executor, compare with the JAX model,
    and cost a forward pass."""
    import numpy as np

    from .data import load_task
    from .hardware import cost_report, export, load_network, plan_network
    from .hardware import run as hw_run
    from .steps import predict

    net = load_network(run_dir)
    out = os.path.join(run_dir, "export")
    export(net, None, out, target="qasm3", basis="ibm")
    x = load_task(**task).x_test[:samples]
    diff = float(np.max(np.abs(hw_run(out, x, "statevector") - predict(net.model, net.params, x))))
    plans = plan_network(net.model, net.params, basis="ibm")
    cost = cost_report(net.model, net.params, plans, x, precision=0.01, basis="ibm", inputs="test")
    gates = max(layer.get("depth_max", 0) for layer in cost["layers"])
    line = (f"{cost['circuits_per_sample']} circuits in {cost['jobs_per_sample']} jobs per sample, at most {gates} "
            f"native gates (rz, sx, x) each; {cost['shots_needed']} shots per circuit for output std <= 0.01")
    return {"export": out, "samples": int(len(x)), "max_abs_diff": diff, "dtype": net.model.dtype,
            "cost": line}
