"""PNG plots of a saved run (matplotlib, Agg backend, no display needed).

* ``activations_LAYER.png`` per kan layer: a grid with one panel per edge (rows = outputs,
  columns = inputs) showing the learned raw activation phi_oi against that edge's input,
  evaluated on training samples pushed through the network (so deeper layers are shown on
  the inputs they actually see).
* ``curves.png``: the per-step training loss and the validation loss and metric of each
  evaluation (from the checkpoint's losses and ``metrics.jsonl``).
"""

from __future__ import annotations

import os

import numpy as np

#: at most this many rows / columns of edge panels per layer figure
MAX_GRID = 16


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_activations(model, params, x: np.ndarray, out_dir: str) -> list[str]:
    """One PNG per kan layer of ``model`` with every edge's activation over the samples ``x``."""
    import jax.numpy as jnp

    from qvaf.compiler.ir import KanNode

    plt = _pyplot()
    dtype = jnp.dtype(getattr(model, "dtype", "float32"))
    xs = jnp.asarray(x, dtype)
    inputs = model.layer_inputs(params, xs)
    files = []
    for layer_id in model.layers:
        node = model.ir.nodes[layer_id]["op"]
        if not isinstance(node, KanNode):
            continue
        h = np.asarray(inputs[layer_id])
        phi = np.asarray(model.edge_values(params, xs, layer_id))
        n_out, n_in = min(node.out_width, MAX_GRID), min(node.in_width, MAX_GRID)
        fig, axes = plt.subplots(n_out, n_in, figsize=(1.6 * n_in + 0.6, 1.2 * n_out + 0.8),
                                 squeeze=False, sharex="col")
        for o in range(n_out):
            for i in range(n_in):
                order = np.argsort(h[:, i])
                ax = axes[o][i]
                ax.plot(h[order, i], phi[order, o, i], lw=1.0, color="C0")
                ax.set_ylim(-1.05, 1.05)
                ax.tick_params(labelsize=5, length=2)
                if o == 0:
                    ax.set_title(f"in {i}", fontsize=6)
                if i == 0:
                    ax.set_ylabel(f"out {o}", fontsize=6)
        shown = "" if (n_out, n_in) == (node.out_width, node.in_width) else \
            f" (first {n_out}x{n_in} of {node.out_width}x{node.in_width} edges)"
        fig.suptitle(f"{layer_id}: {node.ansatz} activations phi(x){shown}", fontsize=8)
        fig.tight_layout()
        path = os.path.join(out_dir, f"activations_{layer_id}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path)
    return files


def plot_curves(losses: np.ndarray, history: list[dict], out_path: str, metric: str | None = None) -> str:
    """Training loss per step and validation loss / metric per evaluation, log scale."""
    plt = _pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    steps = np.arange(1, len(losses) + 1)
    if len(losses):
        ax[0].plot(steps, np.maximum(losses, 1e-300), lw=0.8, label="train loss (per step)")
    ev = [r for r in history if "val_loss" in r]
    if ev:
        ax[0].plot([r["step"] for r in ev], [float(r["val_loss"]) for r in ev], "o-", ms=3, label="validation loss")
    ax[0].set_yscale("log")
    ax[0].set_xlabel("step")
    ax[0].legend(fontsize=7)
    ax[0].set_title("loss", fontsize=9)
    if metric is None:
        metric = next((m for m in ("rmse", "accuracy") if ev and f"val_{m}" in ev[0]), None)
    if metric and ev:
        ax[1].plot([r["step"] for r in ev], [float(r[f"val_{metric}"]) for r in ev], "o-", ms=3, color="C1")
        if metric == "rmse":
            ax[1].set_yscale("log")
        ax[1].set_title(f"validation {metric}", fontsize=9)
        ax[1].set_xlabel("step")
    else:
        ax[1].set_axis_off()
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path


def plot_run(path: str, out_dir: str | None = None, *, samples: int = 512) -> list[str]:
    """Write every plot of the run (or checkpoint) at ``path``; returns the file paths.

    Args:
        path: a run directory or checkpoint directory.
        out_dir: where the PNGs go (default: ``RUN/plots``).
        samples: training samples used to trace the activations.
    """
    from .run import load_run, task_from_config

    model, params, ck = load_run(path)
    if out_dir is None:
        run_dir = os.path.dirname(os.path.dirname(ck.path))
        out_dir = os.path.join(run_dir, "plots")
    os.makedirs(out_dir, exist_ok=True)
    ds = task_from_config(ck.config["task"])
    x = ds.x_train[:samples]
    files = plot_activations(model, params, x, out_dir)
    files.append(plot_curves(np.asarray(ck.extra["losses"]), ck.history, os.path.join(out_dir, "curves.png")))
    return files
