"""Attribution scores and pruning: find the edges and nodes a trained network does not need,
mask them, and cut the network down to a smaller one that is a normal checkpoint.

**Contribution.** Edge (j, i) of a layer adds to output j the term

    e_ji(h) = m_ji [ a_ji (phi_ji(h_i) + c_ji) + beta_ji base(h_i) ]     (kan)
    e_ji(h) = W_ji h_i                                                    (linear)

and its *magnitude* on data is ``E_ji = mean_n |e_ji(h_n)|``.

**Attribution.** Scores flow back from the outputs, each of which scores 1. An edge gets the
share of its output node's score that its magnitude holds among that node's edges, and a
node scores the sum over its outgoing edges::

    s_ji = S_j * E_ji / sum_i' E_ji'          S_i = sum_j s_ji

so every layer's edge scores sum to the number of outputs; a score is the fraction of the
network's output that flows through that edge or node (the backward scheme of KAN tools such
as pykan's ``attribute``, on mean absolute contributions).

**Pruning.** Kan edges scoring below a threshold are masked (``mask = 0``; a masked edge
contributes exactly nothing, both its quantum and its base term). A hidden node is then dead
when every kan edge into it, or every kan edge out of it, is masked; its remaining edges are
masked too, repeatedly until nothing changes. (A node whose inputs are all pruned is 0, so
its outgoing kan edges would add the constants ``e(0)``; dropping it removes them, which
fine-tuning absorbs.) Dead nodes are removed: the model is regenerated as a spec with the
remaining widths and every array is sliced, so the result compiles, trains, evaluates and
exports like any model. A grouped kan layer (``group G``) keeps all its inputs: dropping one
would move the others to different groups.

Example::

    scores = attribute(model, params, data.x_train)
    plan = plan_pruning(model, params, scores, threshold=1e-2)
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np

from qvaf.dsl.errors import QvafError

#: attribution runs on at most this many training samples
MAX_SAMPLES = 1024


class PruneError(QvafError):
    """A network that cannot be pruned as asked."""


# ----------------------------------------------------------------------------- attribution


def _order(model):
    from qvaf.compiler.backends._common import layer_order

    return layer_order(model.ir)[1:-1]


def contributions(model, params, x) -> dict[str, np.ndarray]:
    """Every edge's term ``e_ji`` on the samples ``x``: ``{layer_id: [N, out, in]}`` (float64)."""
    from qvaf.compiler.backends._common import base_function
    from qvaf.compiler.ir import KanNode

    x = np.asarray(x)
    inputs = {k: np.asarray(v, np.float64) for k, v in model.layer_inputs(params, x).items()}
    out = {}
    for lid, rec in _order(model):
        h = inputs[lid]
        layer = {k: np.asarray(v, np.float64) for k, v in params[lid].items()}
        if not isinstance(rec, KanNode):
            out[lid] = layer["weight"][None] * h[:, None, :]
            continue
        phi = np.asarray(model.edge_values(params, x, lid), np.float64)
        if rec.postact_bias:
            phi = phi + layer["postact_bias"]
        if rec.postact_weight:
            phi = phi * layer["postact_weight"]
        base = base_function(rec.base, np)
        if base is not None:
            phi = phi + layer["base_weight"] * base(h)[:, None, :]
        out[lid] = layer["mask"] * phi
    return out


@dataclass(frozen=True)
class Attribution:
    """Scores of a network on data (see the module docstring).

    Attributes:
        magnitude: ``{layer_id: E [out, in]}``, mean absolute contribution of each edge.
        edge: ``{layer_id: s [out, in]}``, attribution score of each edge.
        node: ``{layer_id: S [in]}``, score of each input node of the layer.
    """

    magnitude: dict
    edge: dict
    node: dict


def attribute(model, params, x) -> Attribution:
    """Edge and node attribution scores of ``model`` on the samples ``x`` (at most
    :data:`MAX_SAMPLES` of them are used, the first ones)."""
    x = np.asarray(x)[:MAX_SAMPLES]
    if len(x) == 0:
        raise PruneError("attribution needs at least one data sample")
    contrib = contributions(model, params, x)
    magnitude = {lid: np.mean(np.abs(e), axis=0) for lid, e in contrib.items()}
    edge, node = {}, {}
    score = np.ones(model.out_width)
    for lid, _ in reversed(_order(model)):
        e = magnitude[lid]
        total = e.sum(axis=1, keepdims=True)
        share = np.divide(e, total, out=np.zeros_like(e), where=total > 0)
        edge[lid] = score[:, None] * share
        node[lid] = edge[lid].sum(axis=0)
        score = node[lid]
    ids = [lid for lid, _ in _order(model)]
    return Attribution(magnitude, {k: edge[k] for k in ids}, {k: node[k] for k in ids})


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class PrunePlan:
    """What pruning removes from a network.

    Attributes:
        masks: ``{kan layer_id: new mask [out, in]}`` on the original network.
        keep: per hidden boundary (between consecutive layers) the indices of the nodes kept.
        widths: the network's widths before and after, ``([in, ..., out], [in, ..., out])``.
    """

    masks: dict
    keep: tuple
    widths: tuple

    def masked_params(self, params):
        """``params`` with the plan's masks (the pruned function on the original network)."""
        out = {lid: dict(layer) for lid, layer in params.items()}
        for lid, m in self.masks.items():
            out[lid]["mask"] = np.asarray(m, np.asarray(params[lid]["mask"]).dtype)
        return out


def plan_pruning(model, params, attribution: Attribution, threshold: float) -> PrunePlan:
    """Mask kan edges scoring below ``threshold`` and find the dead hidden nodes."""
    from qvaf.compiler.ir import KanNode

    if not (threshold >= 0 and math.isfinite(threshold)):
        raise PruneError(f"the threshold must be a number >= 0, got {threshold}")
    order = _order(model)
    kan = {lid: rec for lid, rec in order if isinstance(rec, KanNode)}
    if not kan:
        raise PruneError("the network has no kan layer to prune")
    masks = {}
    for lid in kan:
        old = np.asarray(params[lid]["mask"], np.float64)
        masks[lid] = np.where(attribution.edge[lid] >= threshold, old, 0.0)
    alive = [np.ones(rec.out_width, bool) for _, rec in order[:-1]]
    changed = True
    while changed:
        changed = False
        for b in range(len(order) - 1):
            (left, _), (right, rrec) = order[b], order[b + 1]
            for k in np.flatnonzero(alive[b]):
                dead_in = left in kan and not masks[left][k, :].any()
                dead_out = right in kan and not masks[right][:, k].any()
                if not (dead_in or dead_out) or (right in kan and rrec.group is not None):
                    continue
                alive[b][k] = False
                changed = True
                if left in kan:
                    masks[left][k, :] = 0.0
                if right in kan:
                    masks[right][:, k] = 0.0
    keep = tuple(np.flatnonzero(a) for a in alive)
    before = [model.in_width] + [rec.out_width for _, rec in order]
    after = [model.in_width] + [len(k) for k in keep] + [model.out_width]
    if any(w == 0 for w in after):
        raise PruneError(f"threshold {threshold:g} prunes every node of a hidden layer (widths {after}); "
                         f"choose a smaller threshold")
    return PrunePlan(masks, keep, (before, after))


# ----------------------------------------------------------------------------- the smaller network


def _arg_text(v) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise PruneError(f"cannot write the ansatz argument {v!r} back into a spec")
    return str(v) if isinstance(v, int) else repr(float(v))


def model_source(name: str, model, widths, import_path: str) -> str:
    """The DSL text of a model like ``model`` with the given widths (``[in, ..., out]``),
    importing the file that defines its ansätze."""
    from qvaf.compiler.ir import KanNode

    if '"' in import_path or "\n" in import_path:
        raise PruneError(f"cannot import a spec path containing quotes or newlines: {import_path!r}")
    lines = [f'import "{import_path}"', "", f"model {name} {{", f"    input {widths[0]}"]
    for (lid, rec), w in zip(_order(model), widths[1:]):
        if isinstance(rec, KanNode):
            args = ", ".join(f"{k} = {_arg_text(v)}" for k, v in rec.ansatz_args)
            opts = [f"base {rec.base}"]
            post = [p for p, on in (("weight", rec.postact_weight), ("bias", rec.postact_bias)) if on]
            if post:
                opts.append("postact " + " ".join(post))
            if rec.group is not None:
                opts.append(f"group {rec.group}")
            lines.append(f"    kan {w} using {rec.ansatz}({args}) {{ {'; '.join(opts)} }}")
        else:
            lines.append(f"    linear {w}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def slice_params(model, params, plan: PrunePlan, new_model) -> dict:
    """The arrays of ``new_model`` cut out of ``params`` (with the plan's masks)."""
    from qvaf.compiler.ir import KanNode

    params = plan.masked_params(params)
    order = _order(model)
    ins = [np.arange(model.in_width)] + list(plan.keep)
    outs = list(plan.keep) + [np.arange(model.out_width)]
    out: dict = {}
    for spec in new_model.param_table:
        k = [lid for lid, _ in order].index(spec.owner)
        rec = order[k][1]
        arr = np.asarray(params[spec.owner][spec.name])
        grouped = isinstance(rec, KanNode) and rec.group is not None and spec.name in dict(rec.kernel.params)
        if spec.name == "bias" and not isinstance(rec, KanNode):
            arr = arr[outs[k]]
        elif not grouped:
            arr = arr[outs[k]][:, ins[k]]
        if tuple(arr.shape) != tuple(spec.shape):
            raise PruneError(f"internal: {spec.path} sliced to {list(arr.shape)}, the pruned model needs {list(spec.shape)}")
        out.setdefault(spec.owner, {})[spec.name] = arr
    return out


def active_param_count(model, params) -> int:
    """Trainable scalars that can change the output: those of unmasked kan edges (a grouped
    row counts when an unmasked edge reads it) and every linear-layer scalar."""
    from qvaf.compiler.ir import KanNode

    recs = dict(_order(model))
    n = 0
    for spec in model.param_table:
        if not spec.trainable:
            continue
        rec = recs[spec.owner]
        if not isinstance(rec, KanNode):
            n += math.prod(spec.shape)
            continue
        live = np.asarray(params[spec.owner]["mask"]) != 0
        if rec.group is not None and spec.name in dict(rec.kernel.params):
            rows = {i % rec.group for i in range(rec.in_width) if live[:, i].any()}
            n += len(rows) * math.prod(spec.shape[1:])
        else:
            n += int(live.sum()) * math.prod(spec.shape[2:])
    return n


def free_model_name(program, base: str) -> str:
    """``base``, or ``base_2``, ``base_3``, ... when the program already defines it."""
    taken = set(program.models) | set(program.ansatze)
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name


def compile_pruned(model, params, plan: PrunePlan, sources: dict[str, str], main_rel: str, workdir: str):
    """Write the spec files plus the pruned model's file into ``workdir`` and compile it.

    Returns:
        ``(new_model, new_params, new_rel, text)``: the compiled smaller network, its sliced
        arrays, the new file's path relative to ``workdir`` and its text.
    """
    import qvaf

    stem = os.path.splitext(os.path.basename(main_rel))[0]
    new_rel = os.path.join(os.path.dirname(main_rel), f"{stem}_pruned.qvaf")
    n = 1
    while new_rel in sources:
        n += 1
        new_rel = os.path.join(os.path.dirname(main_rel), f"{stem}_pruned_{n}.qvaf")
    name = free_model_name(model.program, f"{model.model_name or 'net'}_pruned") if model.program else "pruned"
    text = model_source(name, model, plan.widths[1], os.path.basename(main_rel))
    for rel, body in {**sources, new_rel: text}.items():
        dest = os.path.join(workdir, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "w", encoding="utf-8") as fh:
            fh.write(body)
    new_model = qvaf.compile(os.path.join(workdir, new_rel), name, dtype=model.dtype)
    new_params = slice_params(model, params, plan, new_model)
    return new_model, new_params, new_rel, text


# ----------------------------------------------------------------------------- a pruning run


def _metric(model, params, ds) -> dict:
    from .steps import evaluate

    return evaluate(model, params, ds.x_test, ds.y_test, ds.kind)


def _finetune_config(saved: dict, steps: int, lr: float | None):
    """The run's own training options for ``steps`` more steps: its first optimizer phase,
    no extension, no early stopping."""
    from .train_config import TrainConfig

    cfg = TrainConfig.from_json(saved)
    first = cfg.optimizer_phases()[0][1]
    fields = {**cfg.to_json(), "steps": max(1, steps), "optimizer": first, "extend": None, "patience": None,
              "checkpoint_every": None, "eval_every": max(1, min(cfg.eval_every, steps or 1))}
    if lr is not None:
        fields["lr"] = lr
    return TrainConfig.from_json(fields)


def prune_run(path: str, *, threshold: float, out: str, task: str | None = None, steps: int = 200,
              lr: float | None = None) -> dict:
    """Prune the saved run at ``path``, fine-tune the smaller network and save it in ``out``.

    Attribution uses the task's training inputs; metrics are on its test split. The result
    in ``out`` is a normal run directory (``qvaf eval/plot/train --resume`` read it).

    Args:
        path: a run or checkpoint directory.
        threshold: edges scoring below this are pruned (scores: see the module docstring).
        out: the new run directory (must not hold a run).
        task: the task for scores, metrics and fine-tuning (default: the run's own).
        steps: fine-tuning steps (0: none).
        lr: fine-tuning learning rate (default: the run's).

    Returns:
        The report: widths, edges, parameters and test metrics before pruning, after pruning
        (before fine-tuning) and after fine-tuning, the checkpoint written, the files.
    """
    import tempfile

    from . import checkpoint as C
    from .run import _read_sources, load_run, task_from_config
    from .train import fit
    from .train_state import init_state

    if steps < 0:
        raise PruneError(f"fine-tuning steps must be >= 0, got {steps}")
    if os.path.exists(os.path.join(out, "checkpoints", "latest")):
        raise PruneError(f"{out} already holds a run; choose another --out")
    model, params, ck = load_run(path)
    task_cfg = dict(ck.config["task"]) if task is None or task == ck.config["task"].get("name") else {"name": task}
    ds = task_from_config(task_cfg)
    if ds.in_width != model.in_width:
        raise PruneError(f"task '{ds.name}' has {ds.in_width} inputs; the model in {ck.path} takes {model.in_width}")
    scores = attribute(model, params, ds.x_train)
    plan = plan_pruning(model, params, scores, threshold)
    masked = plan.masked_params(params)
    sources = _read_sources(ck.spec_dir)
    main_rel = ck.config["model"]["spec"]
    with tempfile.TemporaryDirectory(prefix="qvaf-prune-") as work:
        new_model, new_params, new_rel, text = compile_pruned(model, params, plan, sources, main_rel, work)
    probe = ds.x_train[:256]
    want = np.asarray(model.apply(masked, probe), np.float64)
    got = np.asarray(new_model.apply(new_params, probe), np.float64)
    tol = (1e-10 if model.dtype == "float64" else 1e-4) * max(1.0, float(np.abs(want).max(initial=0)))
    if not np.allclose(got, want, rtol=0, atol=tol):
        raise PruneError(f"internal: the cut-down network differs from the masked one by "
                         f"{np.abs(got - want).max():.3g}")
    sources = {**sources, new_rel: text}
    model_cfg = {"spec": new_rel, "model": new_model.model_name, "args": {}, "ansatz_overrides": {},
                 "dtype": model.dtype}
    config = _finetune_config(ck.config["train"], steps, lr)
    run_config = {"model": model_cfg, "task": task_cfg, "train": config.to_json(),
                  "pruned_from": {"checkpoint": os.path.abspath(ck.path), "threshold": threshold}}

    def save(state, _model, log):
        C.save(out, state, log, run_config, sources)

    if steps:
        result = fit(new_model, new_params, ds, config, on_checkpoint=save)
        final = result.state.params
    else:
        from .train_state import RunLog

        final = new_params
        save(init_state(new_model, new_params, config), new_model, RunLog())
    n_edges = lambda m: int(sum(np.count_nonzero(v) for v in m.values()))  # noqa: E731
    old_masks = {lid: np.asarray(params[lid]["mask"]) for lid in plan.masks}
    report = {
        "event": "prune", "checkpoint": ck.path, "task": ds.name, "kind": ds.kind, "threshold": threshold,
        "widths": {"before": plan.widths[0], "after": plan.widths[1]},
        "edges": {"before": n_edges(old_masks), "after": n_edges(plan.masks)},
        "params": {"before": model.param_count, "after": new_model.param_count,
                   "active_before": active_param_count(model, params),
                   "active_after": active_param_count(new_model, final)},
        "test": {"before": _metric(model, params, ds), "pruned": _metric(new_model, new_params, ds),
                 "finetuned": _metric(new_model, final, ds)},
        "finetune_steps": steps, "spec": new_rel, "model": new_model.model_name, "out": out,
        "saved": C.resolve(out),
    }
    report["files"] = [os.path.join(out, "prune.json"), os.path.join(out, "pruned_network.png")]
    _plot(model, scores, plan, report, report["files"][1])
    from .compare import json_safe, write_atomic

    write_atomic(report["files"][0], json.dumps(json_safe(report), indent=1) + "\n")
    return report


def _plot(model, scores: Attribution, plan: PrunePlan, report: dict, path: str) -> str:
    from qvaf.compiler.ir import KanNode

    from .design_plots import plot_network

    masks = {lid: plan.masks.get(lid) if isinstance(rec, KanNode) else None for lid, rec in _order(model)}
    metric = "rmse" if report["kind"] == "regression" else "accuracy"
    t = report["test"]
    title = (f"threshold {report['threshold']:g}: widths {report['widths']['before']} -> {report['widths']['after']}, "
             f"edges {report['edges']['before']} -> {report['edges']['after']}, "
             f"params {report['params']['before']} -> {report['params']['after']}\n"
             f"test {metric} {t['before'][metric]:.4g} -> pruned {t['pruned'][metric]:.4g} -> "
             f"fine-tuned {t['finetuned'][metric]:.4g} ({report['finetune_steps']} steps)")
    return plot_network(plan.widths[0], scores.edge, masks, plan.keep, path, title=title)
