"""PNG plots of a saved run (matplotlib, Agg backend, no display needed).

* ``activations_LAYER.png`` per kan layer (``what="raw"``): each edge's raw activation
  phi_oi(x_i), the circuit's readout alone, in [-1, 1].
* ``contributions_LAYER.png`` (``what="edge"``): each edge's full term of the layer output,
  m_oi [(phi_oi(x_i) + c_oi) a_oi + beta_oi base(x_i)] (post-activation scale and shift, base
  branch and mask included); a layer's output is the sum of these terms over its inputs.

  Both are drawn against the edge's actual inputs on training samples pushed through the
  network, so deeper layers are shown on the values they see. A layer with at most
  ``FULL_GRID`` outputs and inputs gets one panel per edge (rows = outputs, columns =
  inputs); a larger one gets a heatmap of every edge's strength (the spread of its
  contribution over the samples) and panels for the ``STRONGEST`` strongest edges.
* ``curves.png``: the per-step training loss and the validation loss and metric of each
  evaluation, on log axes with labelled ticks.
"""

from __future__ import annotations

import math
import os

import numpy as np

#: a layer with at most this many outputs and inputs is drawn edge by edge
FULL_GRID = 8
#: how many of the strongest edges a larger layer shows
STRONGEST = 18
#: the two views of an edge: file prefix, y label, what the title says
VIEWS = {
    "raw": ("activations", r"$\varphi(x)$",
            r"raw activation $\varphi(x)$: the circuit's readout alone (no post-activation scale or shift, "
            r"no base branch)"),
    "edge": ("contributions", "edge term",
             r"edge term $m\,[(\varphi(x) + c)\,a + \beta\,\mathrm{base}(x)]$: post-activation and base branch "
             r"included; the layer output is their sum over inputs"),
}
_FONT = {"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
         "legend.fontsize": 8, "figure.titlesize": 11}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _layer_label(node) -> str:
    from qvaf.compiler.report import ansatz_label

    return f"{ansatz_label(node)}, {node.in_width} -> {node.out_width}, base {node.base}"


def _edge_panel(ax, h, y, ylim, title=None):
    order = np.argsort(h)
    ax.plot(h[order], y[order], lw=1.3, color="C0")
    ax.set_ylim(*ylim)
    ax.grid(alpha=0.3, lw=0.5)
    ax.tick_params(length=2)
    if title:
        ax.set_title(title, pad=3)


def _limits(values: np.ndarray, raw: bool) -> tuple[float, float]:
    if raw:
        return -1.08, 1.08
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    pad = 0.06 * max(hi - lo, 1e-6)
    return lo - pad, hi + pad


def _full_grid(plt, layer_id, node, h, y, ylabel, raw):
    n_out, n_in = node.out_width, node.in_width
    fig, axes = plt.subplots(n_out, n_in, figsize=(max(2.2 * n_in + 0.9, 6.0), 1.7 * n_out + 1.3),
                             squeeze=False, sharex="col", sharey=True)
    ylim = _limits(y, raw)
    for o in range(n_out):
        for i in range(n_in):
            ax = axes[o][i]
            _edge_panel(ax, h[:, i], y[:, o, i], ylim, f"in {i}" if o == 0 else None)
            if i == 0:
                ax.set_ylabel(f"out {o}: {ylabel}")
            if o == n_out - 1:
                ax.set_xlabel(f"$x_{{{i}}}$ (input {i})")
    return fig


def _strongest(plt, layer_id, node, h, y, strength, ylabel, raw):
    n_show = min(STRONGEST, strength.size)
    cols = 6
    rows = math.ceil(n_show / cols)
    fig = plt.figure(figsize=(2.3 * cols + 0.8, 1.9 * rows + 3.4))
    grid = fig.add_gridspec(rows + 1, cols, height_ratios=[2.4] + [1.0] * rows, hspace=0.65, wspace=0.3)
    top = fig.add_subplot(grid[0, :])
    image = top.imshow(strength, aspect="auto", cmap="viridis", interpolation="nearest")
    top.set_xlabel("input i")
    top.set_ylabel("output o")
    top.set_title("strength of every edge: spread (std over the samples) of its term in the layer output")
    fig.colorbar(image, ax=top, fraction=0.025, pad=0.01)
    edges = strongest_edges(strength, n_show)
    ylim = _limits(np.stack([y[:, o, i] for o, i in edges]), raw)
    for k, (o, i) in enumerate(edges):
        ax = fig.add_subplot(grid[1 + k // cols, k % cols])
        _edge_panel(ax, h[:, i], y[:, o, i], ylim, f"in {i} -> out {o}")
        top.add_patch(_marker(plt, i, o))
        if k % cols == 0:
            ax.set_ylabel(ylabel)
        else:
            ax.tick_params(labelleft=False)
        if k // cols == rows - 1 or k + cols >= n_show:
            ax.set_xlabel("edge input $x_i$")
    fig.text(0.5, 0.005, f"panels: the {n_show} strongest of {strength.size} edges (boxed in the heatmap)",
             ha="center", fontsize=8)
    return fig


def strongest_edges(strength: np.ndarray, n: int) -> list[tuple[int, int]]:
    """The ``n`` edges ``(o, i)`` of largest ``strength[o, i]``, strongest first (ties: lower
    index first)."""
    flat = np.argsort(-strength, axis=None, kind="stable")[:n]
    return [tuple(int(v) for v in np.unravel_index(k, strength.shape)) for k in flat]


def _wrap(text: str, width: int) -> str:
    """Wrap a caption at spaces outside math (``$...$``) to about ``width`` characters."""
    lines, line, in_math = [], "", False
    for word in text.split(" "):
        if line and not in_math and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
        in_math ^= word.count("$") % 2 == 1
    return "\n".join(lines + [line])


def _marker(plt, i, o):
    return plt.Rectangle((i - 0.5, o - 0.5), 1, 1, fill=False, ec="white", lw=0.8)


def plot_activations(model, params, x: np.ndarray, out_dir: str, what: str = "raw") -> list[str]:
    """One PNG per kan layer of ``model`` with its edges' activations over the samples ``x``.

    Args:
        what: ``"raw"`` (the circuits' phi) or ``"edge"`` (each edge's full term of the
            layer output; see the module docstring).
    """
    import jax.numpy as jnp

    from qvaf.compiler.backends._common import edge_terms
    from qvaf.compiler.ir import KanNode

    if what not in VIEWS:
        raise ValueError(f"what must be one of {', '.join(VIEWS)}, got {what!r}")
    plt = _pyplot()
    prefix, ylabel, caption = VIEWS[what]
    xs = jnp.asarray(x, jnp.dtype(getattr(model, "dtype", "float32")))
    inputs = model.layer_inputs(params, xs)
    files = []
    with plt.rc_context(_FONT):
        for layer_id in model.layers:
            node = model.ir.nodes[layer_id]["op"]
            if not isinstance(node, KanNode):
                continue
            h = np.asarray(inputs[layer_id])
            phi = np.asarray(model.edge_values(params, xs, layer_id))
            layer_params = {k: np.asarray(v) for k, v in params[layer_id].items()}
            terms = edge_terms(node, layer_params, h, phi, np)  # what Compiled.edge_contributions gives
            y = phi if what == "raw" else terms
            full = node.out_width <= FULL_GRID and node.in_width <= FULL_GRID
            if full:
                fig = _full_grid(plt, layer_id, node, h, y, ylabel, what == "raw")
            else:
                fig = _strongest(plt, layer_id, node, h, y, terms.std(axis=0), ylabel, what == "raw")
            width_chars = int(fig.get_figwidth() * 11)
            fig.suptitle(f"{layer_id}: {_layer_label(node)}\n" + _wrap(caption, width_chars))
            if full:
                fig.tight_layout(rect=(0, 0.02, 1, 1))
            else:  # a gridspec with a colorbar: place it by hand
                fig.subplots_adjust(left=0.06, right=0.97, top=0.88, bottom=0.08)
            path = os.path.join(out_dir, f"{prefix}_{layer_id}.png")
            fig.savefig(path, dpi=100)
            plt.close(fig)
            files.append(path)
    return files


def _log_ticks(ax, values) -> None:
    """Log scale with labelled ticks at 1, 2 and 5 times powers of ten (every decade, or
    finer when the data span less than a decade), written as plain numbers."""
    from matplotlib import ticker

    values = np.asarray([v for v in values if np.isfinite(v) and v > 0])
    ax.set_yscale("log")
    if not len(values):
        return
    span = math.log10(values.max() / values.min()) if values.min() > 0 else 10
    subs = (1.0, 2.0, 5.0) if span < 3 else (1.0,)
    if span < 0.5:
        subs = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0)
    ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
    ax.yaxis.set_minor_locator(ticker.LogLocator(base=10, subs=np.arange(1, 10)))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:.3g}"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())


def plot_curves(losses: np.ndarray, history: list[dict], out_path: str, metric: str | None = None) -> str:
    """Training loss per step and validation loss / metric per evaluation, log scale."""
    plt = _pyplot()
    ev = [r for r in history if "val_loss" in r]
    if metric is None:
        metric = next((m for m in ("rmse", "accuracy") if ev and f"val_{m}" in ev[0]), None)
    with plt.rc_context(_FONT):
        fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
        steps = np.arange(1, len(losses) + 1)
        shown = list(np.asarray(losses, float))
        if len(losses):
            ax[0].plot(steps, np.maximum(losses, 1e-300), lw=0.9, label="train loss (per step)")
        if ev:
            val = [float(r["val_loss"]) for r in ev]
            shown += val
            ax[0].plot([r["step"] for r in ev], val, "o-", ms=3.5, label="validation loss")
        _log_ticks(ax[0], shown)
        ax[0].set_xlabel("step")
        ax[0].set_ylabel("loss")
        ax[0].grid(alpha=0.35, lw=0.5)
        ax[0].grid(alpha=0.12, which="minor", lw=0.5)
        if len(losses) or ev:
            ax[0].legend()
        ax[0].set_title("training and validation loss")
        if metric and ev:
            vals = [float(r[f"val_{metric}"]) for r in ev]
            ax[1].plot([r["step"] for r in ev], vals, "o-", ms=3.5, color="C1")
            if metric == "rmse":
                _log_ticks(ax[1], vals)
            ax[1].set_title(f"validation {metric}")
            ax[1].set_xlabel("step")
            ax[1].set_ylabel(metric)
            ax[1].grid(alpha=0.35, lw=0.5)
        else:
            ax[1].set_axis_off()
        fig.tight_layout()
        fig.savefig(out_path, dpi=100)
        plt.close(fig)
    return out_path


def plot_run(path: str, out_dir: str | None = None, *, samples: int = 512, what: str = "raw") -> list[str]:
    """Write every plot of the run (or checkpoint, or saved model) at ``path``; returns the files.

    Args:
        path: a run directory, a checkpoint directory or a folder written by :func:`qvaf.save`.
        out_dir: where the PNGs go (default: ``RUN/plots``).
        samples: training samples used to trace the activations (a saved model without a
            task uses points spread uniformly over [-1, 1] per input).
        what: ``"raw"``, ``"edge"`` or ``"both"`` (see the module docstring).
    """
    from .run import RunError, load_run, task_from_config

    views = list(VIEWS) if what == "both" else [what]
    if any(v not in VIEWS for v in views):
        raise RunError(f"unknown plot kind {what!r}; choices: raw, edge, both")
    model, params, ck = load_run(path)
    if out_dir is None:
        out_dir = os.path.join(os.path.dirname(os.path.dirname(ck.path)), "plots")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot write plots to '{out_dir}': {exc.strerror or exc}") from None
    if isinstance(ck.config.get("task"), dict):
        x = task_from_config(ck.config["task"]).x_train[:samples]
    else:
        x = np.random.default_rng(0).uniform(-1, 1, (samples, model.in_width))
    files = []
    for view in views:
        files += plot_activations(model, params, x, out_dir, view)
    if "train" in ck.config:
        files.append(plot_curves(np.asarray(ck.extra["losses"]), ck.history, os.path.join(out_dir, "curves.png")))
    return files
