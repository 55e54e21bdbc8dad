"""``qvaf spectrum``, ``qvaf formula``, ``qvaf prune`` and ``qvaf compare``: tools for
exploring QVAF designs (docs/explore.md; walk-through in docs/tutorial.md).

Examples::

    qvaf spectrum specs/ansatz/pz.qvaf --plot pz.png
    qvaf spectrum runs/expsin --edge layer0,2,1 --json
    qvaf formula runs/expsin --threshold 1e-3
    qvaf prune runs/expsin --threshold 0.02 --out runs/expsin-pruned
    qvaf compare my.qvaf pz rpz real --task toy_expsin --task digits
"""

from __future__ import annotations

import json
import os
import sys

from qvaf.dsl.errors import QvafError


def add_parser(subparsers) -> None:
    """Register ``spectrum``, ``formula``, ``prune`` and ``compare``."""
    p = subparsers.add_parser("spectrum", help="exact Fourier spectrum of edge activations",
                              description="The exact frequencies and coefficients of every edge activation "
                                          "phi(x) = sum c_w e^{iwx} of a spec (initial parameters) or a trained run.")
    p.add_argument("target", metavar="SPEC|CKPT", help="a .qvaf file, a bundled ansatz or model name, or a run")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", metavar="NAME", help="the spec's model (default: its only one)")
    which.add_argument("--ansatz", metavar="NAME", help="analyse this ansatz alone, as a 1 -> 1 network")
    p.add_argument("--arg", action="append", default=[], metavar="K=V", help="model or ansatz argument (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial parameters of a SPEC (default 0)")
    p.add_argument("--edge", metavar="LAYER,O,I", help="one edge, e.g. layer0,2,1 (output 2, input 1)")
    p.add_argument("--postact", action="store_true",
                   help="the edge's contribution m a (phi + c) instead of the raw phi")
    p.add_argument("--tol", type=float, default=1e-12, help="coefficients below this count as zero (default 1e-12)")
    p.add_argument("--max-terms", type=int, default=None,
                   help="refuse an edge with more distinct frequencies than this (default 20000)")
    p.add_argument("--plot", metavar="FILE", help="write a PNG of the edge's activation and coefficient magnitudes")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run_spectrum)

    p = subparsers.add_parser("formula", help="a trained network as an exact formula",
                              description="A trained network written out: every activation as its trigonometric "
                                          "polynomial, the layers as sympy expressions.")
    p.add_argument("checkpoint", metavar="CKPT", help="a run directory or a checkpoint directory")
    p.add_argument("--threshold", type=float, default=None,
                   help="drop terms whose amplitude is below this (default: keep all above round-off)")
    p.add_argument("--digits", type=int, default=6, help="significant digits shown (default 6; 17 is exact)")
    p.add_argument("--latex", action="store_true", help="print LaTeX")
    p.add_argument("--expand", action="store_true", help="print each output as one expression of the inputs")
    p.add_argument("--json", action="store_true", help="print JSON (numbers to 17 digits)")
    p.set_defaults(run=run_formula)

    p = subparsers.add_parser("prune", help="prune a trained network by attribution, shrink it, fine-tune",
                              description="Score every edge on data, mask those below --threshold, drop dead "
                                          "nodes, fine-tune the smaller network and save it as a new run.")
    p.add_argument("checkpoint", metavar="CKPT", help="a run directory or a checkpoint directory")
    p.add_argument("--task", help="task for scores, metrics and fine-tuning (default: the run's own)")
    p.add_argument("--threshold", type=float, default=1e-2,
                   help="edges whose attribution score is below this are pruned (default 0.01)")
    p.add_argument("--out", required=True, help="directory of the pruned run")
    p.add_argument("--steps", type=int, default=200, help="fine-tuning steps (default 200; 0: none)")
    p.add_argument("--lr", type=float, help="fine-tuning learning rate (default: the run's)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=run_prune)

    p = subparsers.add_parser("compare", help="compare ansätze (and an MLP) on tasks under one budget",
                              description="Train every candidate ansatz in a standard network, and an MLP of the "
                                          "same parameter count, under the same budget and seeds; write a table "
                                          "(markdown, JSON) and a plot.")
    p.add_argument("specs", nargs="+", metavar="SPEC",
                   help="an ansatz file (each ansatz it defines), FILE.qvaf:NAME, or a bundled ansatz name")
    p.add_argument("--task", action="append", default=[], help="a task (repeatable)")
    p.add_argument("--tasks", nargs="+", default=[], metavar="TASK", help="several tasks")
    p.add_argument("--seeds", type=int, default=None, help="seeds per candidate and task (default 3)")
    p.add_argument("--budget", default=None, help="steps per run (1000) or seconds (60s) (default 1000)")
    p.add_argument("--jobs", type=int, default=None, help="parallel processes (default: the cores available)")
    p.add_argument("--hidden", type=int, help="hidden width of the network (default 5 regression, 8 classification)")
    p.add_argument("--ansatz-arg", action="append", default=[], metavar="K=V",
                   help="argument for every candidate ansatz, e.g. reps=2 (repeatable)")
    p.add_argument("--no-mlp", action="store_true", help="leave out the MLP baseline")
    p.add_argument("--out", default=os.path.join("runs", "compare"), help="output folder (default runs/compare)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(run=run_compare)


# ----------------------------------------------------------------------------- spectrum


def _load_target(args):
    """(model, params, x samples, description) for a SPEC or a run directory."""
    import numpy as np

    from .cmd_inspect import parse_args

    if os.path.isdir(args.target):
        from .run import load_run, task_from_config

        model, params, ck = load_run(args.target)
        ds = task_from_config(ck.config["task"])
        return model, params, ds.x_train[:512], f"trained parameters of {ck.path}"
    import qvaf

    path = _spec_path(args.target)
    kw = {"args": parse_args(args.arg) or None}
    if args.ansatz:
        model = qvaf.compile(path, ansatz=args.ansatz, **kw)
    else:
        model = qvaf.compile(path, args.model, **kw)
    params = model.init(args.seed)
    x = np.random.default_rng(args.seed).uniform(-np.pi, np.pi, (256, model.in_width))
    return model, params, x, f"initial parameters (seed {args.seed}) of {path}"


def _spec_path(name: str) -> str:
    from .run import RunError, find_spec, specs_dir

    if os.path.isfile(name):
        return name
    bundled = os.path.join(specs_dir(), "ansatz", f"{name}.qvaf")
    if not name.endswith(".qvaf") and os.path.isfile(bundled):
        return bundled
    try:
        return find_spec(name)
    except QvafError:
        raise RunError(f"no spec file or run directory '{name}' (and no bundled ansatz or model of that name)") from None


def _parse_edge(text: str, model) -> tuple[str, int, int]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3:
        raise QvafError(f"--edge expects LAYER,O,I (e.g. layer0,2,1), got {text!r}")
    try:
        o, i = int(parts[1]), int(parts[2])
    except ValueError:
        raise QvafError(f"--edge expects LAYER,O,I with integer O and I, got {text!r}") from None
    if parts[0] not in model.layers:
        raise QvafError(f"--edge: no layer {parts[0]!r}; layers: {', '.join(model.layers)}")
    return parts[0], o, i


def _postact(model, params, lid, o, i) -> tuple[float, float]:
    """``(m a, c)`` of edge (o, i): its contribution is ``m a (phi + c)``."""
    import numpy as np

    node = model.ir.nodes[lid]["op"]
    layer = params[lid]
    a = float(np.asarray(layer["postact_weight"])[o, i]) if node.postact_weight else 1.0
    c = float(np.asarray(layer["postact_bias"])[o, i]) if node.postact_bias else 0.0
    return float(np.asarray(layer["mask"])[o, i]) * a, c


def run_spectrum(args) -> int:
    from qvaf.compiler.ir import KanNode
    from qvaf.compiler.spectrum import network_spectra

    model, params, x, source = _load_target(args)
    chosen = _parse_edge(args.edge, model) if args.edge else None
    if chosen and not isinstance(model.ir.nodes[chosen[0]]["op"], KanNode):
        raise QvafError(f"--edge: {chosen[0]} is a linear layer; only kan layers have activations")
    layers = [chosen[0]] if chosen else None
    from qvaf.compiler.spectrum import MAX_TERMS

    max_terms = MAX_TERMS if args.max_terms is None else args.max_terms
    if max_terms < 1:
        raise QvafError(f"--max-terms must be >= 1, got {max_terms}")
    spectra = network_spectra(model.ir, params, layers, edges=[chosen[1:]] if chosen else None, max_terms=max_terms)
    if args.postact:
        spectra = {lid: {e: s.scaled(*_postact(model, params, lid, *e)) for e, s in d.items()}
                   for lid, d in spectra.items()}
    tol = args.tol
    report = {"source": source, "quantity": "m a (phi + c)" if args.postact else "phi", "tol": tol, "layers": []}
    for lid, edges in spectra.items():
        node = model.ir.nodes[lid]["op"]
        counts = [s.count(tol) for s in edges.values()]
        report["layers"].append({
            "layer": lid, "ansatz": node.ansatz, "args": dict(node.ansatz_args), "in": node.in_width,
            "out": node.out_width, "highest_frequency": max(s.highest_frequency(tol) for s in edges.values()),
            "frequencies_per_edge": [min(counts), max(counts)],
            "edges": [{"edge": list(e), "highest_frequency": s.highest_frequency(tol), "nonzero_frequencies": s.count(tol),
                       **s.to_json(tol)} for e, s in edges.items()]})
    files = []
    if args.plot:
        files.append(_plot_edge(model, params, x, spectra, chosen, args))
        report["plot"] = files[0]
    if args.json:
        print(json.dumps(report))
        return 0
    total = sum(len(lay["edges"]) for lay in report["layers"])
    print(f"exact spectrum of {report['quantity']}, {source}")
    for lay in report["layers"]:
        lo, hi = lay["frequencies_per_edge"]
        per = f"{lo}" if lo == hi else f"{lo} to {hi}"
        args_text = ", ".join(f"{k}={v}" for k, v in lay["args"].items())
        print(f"{lay['layer']} ({lay['ansatz']}({args_text}), {lay['in']} -> {lay['out']}): {per} distinct non-zero "
              f"frequencies per edge, highest {lay['highest_frequency']:.6g}")
        if total <= 6 or chosen:
            for e in lay["edges"]:
                print(f"  edge ({e['edge'][0]}, {e['edge'][1]}): {e['nonzero_frequencies']} non-zero frequencies, "
                      f"highest {e['highest_frequency']:.6g}")
                print(f"    {'omega':>12}  {'|c_omega|':>12}  c_omega")
                for f, (re, im) in zip(e["frequencies"], e["coefficients"]):
                    print(f"    {f:>12.6g}  {abs(complex(re, im)):>12.6g}  {re:+.6g} {im:+.6g}i")
    if total > 6 and not chosen:
        print("per-edge coefficients: --edge LAYER,O,I (or --json)")
    print("phi(x) = sum over omega of c_omega e^{i omega x}, c_{-omega} = conj(c_omega)")
    for f in files:
        print(f"plot: {f}")
    return 0


def _plot_edge(model, params, x, spectra, chosen, args) -> str:
    import numpy as np

    from .design_plots import plot_spectrum

    if chosen:
        lid, o, i = chosen
    else:
        lid = next(iter(spectra))
        o, i = 0, 0
    s = spectra[lid][(o, i)]
    h = np.asarray(model.layer_inputs(params, x)[lid])[:, i]
    phi = np.asarray(model.edge_values(params, x, lid), np.float64)[:, o, i]
    if args.postact:
        weight, bias = _postact(model, params, lid, o, i)
        phi = weight * (phi + bias)
    pick = np.argsort(h)[:: max(1, len(h) // 40)]
    span = (float(h.min()), float(h.max())) if h.size and h.max() > h.min() else (-np.pi, np.pi)
    node = model.ir.nodes[lid]["op"]
    title = f"{node.ansatz} {lid} edge ({o}, {i}): {'m a (φ + c)' if args.postact else 'φ(x)'} as an exact series"
    return plot_spectrum(s, args.plot, title=title, x_range=span, points=(h[pick], phi[pick]), tol=args.tol)


# ----------------------------------------------------------------------------- formula


def run_formula(args) -> int:
    import numpy as np

    from .formula import ROUND_OFF, network_formula
    from .run import load_run, task_from_config

    if args.digits < 1:
        raise QvafError(f"--digits must be >= 1, got {args.digits}")
    model, params, ck = load_run(args.checkpoint)
    ds = task_from_config(ck.config["task"])
    x = np.concatenate([ds.x_train, ds.x_test])
    threshold = ROUND_OFF if args.threshold is None else args.threshold
    f = network_formula(model, params, threshold=threshold, x=x)
    kept, dropped = f.term_counts
    bound = max((e["bound"] for e in f.edges), default=0.0)
    edge_err = max((e["max_error"] or 0.0 for e in f.edges), default=0.0)
    if args.json:
        print(json.dumps({"event": "formula", "checkpoint": ck.path, **f.to_json()}))
        return 0
    if args.expand:
        import sympy

        from .formula import rounded

        for k, e in enumerate(f.outputs):
            shown = rounded(e, args.digits)
            print(f"y{k} = {sympy.latex(shown) if args.latex else shown}")
    else:
        print(f.text(args.digits, latex=args.latex))
    print(f"\n{kept} frequency terms (a constant or a cos/sin pair per frequency) kept, {dropped} dropped "
          f"below amplitude {threshold:g}; "
          f"per-edge error bound {bound:.3g}, measured on the data range {edge_err:.3g}; "
          f"largest |formula - model| on the {len(x)} samples of {ds.name}: {f.max_error:.3g}")
    return 0


# ----------------------------------------------------------------------------- prune


def run_prune(args) -> int:
    from .prune import prune_run

    from .compare import json_safe

    r = prune_run(args.checkpoint, threshold=args.threshold, out=args.out, task=args.task, steps=args.steps, lr=args.lr)
    if args.json:
        print(json.dumps(json_safe(r)))
        return 0
    metric = "rmse" if r["kind"] == "regression" else "accuracy"
    t = r["test"]
    p = r["params"]
    print(f"pruned {r['checkpoint']} at threshold {r['threshold']:g}: widths {r['widths']['before']} -> "
          f"{r['widths']['after']}, edges {r['edges']['before']} -> {r['edges']['after']}, parameters "
          f"{p['before']} -> {p['after']} (active {p['active_before']} -> {p['active_after']})")
    print(f"test {metric} on {r['task']}: before {t['before'][metric]:.6g}, pruned {t['pruned'][metric]:.6g}, "
          f"fine-tuned ({r['finetune_steps']} steps) {t['finetuned'][metric]:.6g}")
    print(f"checkpoint: {r['saved']}")
    for f in r["files"]:
        print(f)
    return 0


# ----------------------------------------------------------------------------- compare


def run_compare(args) -> int:
    from .cmd_inspect import parse_args
    from .compare import DEFAULT_BUDGET, DEFAULT_SEEDS, compare, json_safe, markdown, write_outputs

    tasks = list(args.task) + list(args.tasks)
    if not tasks:
        from .data import task_names

        raise QvafError(f"compare needs --task NAME; choices: {', '.join(task_names())}")

    def progress(rec, k, total):
        if not args.quiet:
            value = f"{rec['value']:.4g}" if rec["metric"] == "rmse" else f"{100 * rec['value']:.2f} %"
            print(f"[{k + 1}/{total}] {rec['label']} on {rec['task']}, seed {rec['seed']}: {rec['metric']} {value}, "
                  f"{rec['steps']} steps in {rec['seconds']:.1f} s", file=sys.stderr, flush=True)

    result = compare(args.specs, tasks, seeds=DEFAULT_SEEDS if args.seeds is None else args.seeds,
                     budget=DEFAULT_BUDGET if args.budget is None else args.budget,
                     jobs=args.jobs, hidden=args.hidden, ansatz_args=parse_args(args.ansatz_arg, "--ansatz-arg"),
                     mlp=not args.no_mlp, on_record=progress)
    files = write_outputs(result, args.out)
    if args.json:
        print(json.dumps(json_safe({**result, "files": files})))
        return 0
    print(markdown(result))
    for f in files:
        print(f)
    return 0
