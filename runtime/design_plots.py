"""PNG plots of the design tools (matplotlib, Agg backend): an edge's exact spectrum, the
growth of the spectrum with the number of re-uploads, a network's attribution and pruning,
and a design comparison. Each figure is written to a temporary file and renamed into place.
"""

from __future__ import annotations

import os

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> str:
    import tempfile

    from qvaf.dsl.errors import QvafError

    plt = _pyplot()
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".qvaf-", suffix=os.path.splitext(path)[1] or ".png", dir=folder)
        os.close(fd)
        fig.savefig(tmp, dpi=120)
        os.replace(tmp, path)
    except OSError as exc:
        raise QvafError(f"cannot write '{path}': {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return path


def plot_spectrum(spectrum, path: str, *, title: str, x_range=(-np.pi, np.pi), points=None,
                  tol: float = 1e-12) -> str:
    """Two panels: phi(x) from the series over ``x_range`` (with ``points = (x, phi)`` from
    the compiled model as dots), and the coefficient magnitudes |c_omega| against omega."""
    plt = _pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(9.5, 3.4))
    x = np.linspace(*x_range, 800)
    ax[0].plot(x, spectrum(x), lw=1.2, label="exact series")
    if points is not None:
        ax[0].plot(points[0], points[1], "o", ms=3, color="C1", label="compiled circuit")
        ax[0].legend(fontsize=7)
    ax[0].set_xlabel("edge input x")
    ax[0].set_ylabel("φ(x)")
    ax[0].set_title("activation", fontsize=9)
    omega, mag = spectrum.magnitudes()
    keep = mag > tol
    floor = float(mag[keep].min(initial=1.0)) / 5
    ax[1].vlines(omega[keep], floor, mag[keep], lw=1.5)
    ax[1].plot(omega[keep], mag[keep], "o", ms=4)
    ax[1].set_yscale("log")
    ax[1].set_ylim(floor, float(mag[keep].max(initial=1.0)) * 2)
    from matplotlib.ticker import NullFormatter

    ax[1].yaxis.set_minor_formatter(NullFormatter())
    ax[1].set_xlabel("frequency ω")
    ax[1].set_ylabel("|c_ω|")
    ax[1].set_title(f"{int(np.sum(omega[keep] > 0))} non-zero frequencies, highest {omega[keep].max(initial=0):.4g}",
                    fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_spectrum_growth(rows, path: str) -> str:
    """The spectrum of one edge against the number of re-uploads L, one line per design:
    distinct non-zero frequencies (left) and the highest frequency (right).

    Args:
        rows: ``{label: [(L, count, highest), ...]}``.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.9))
    styles = [("o", 9, "-"), ("s", 7, "--"), ("^", 5, "-."), ("x", 6, ":")]
    for k, (label, pts) in enumerate(rows.items()):
        L, n, top = zip(*pts)
        marker, size, line = styles[k % len(styles)]
        for a, v in ((ax[0], n), (ax[1], top)):
            a.plot(L, v, marker=marker, ms=size, ls=line, color=f"C{k}", mfc="none", label=label)
    Ls = sorted({p[0] for pts in rows.values() for p in pts})
    for a in ax:
        a.plot(Ls, [(3 ** L - 1) // 2 for L in Ls], color="0.6", lw=3, alpha=0.35, zorder=0, label="(3^L − 1)/2")
        a.plot(Ls, Ls, color="0.3", lw=0.8, ls=(0, (1, 3)), zorder=0, label="L")
        a.set_yscale("log")
        a.set_xlabel("re-uploads L")
        a.set_xticks(Ls)
    ax[0].set_ylabel("distinct non-zero frequencies")
    ax[0].set_title("how many frequencies one edge has", fontsize=9)
    ax[1].set_ylabel("highest frequency")
    ax[1].set_title("how high they reach", fontsize=9)
    ax[0].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def plot_network(widths, scores: dict, masks: dict, kept_nodes, path: str, *, title: str) -> str:
    """The network as a layered graph: edges drawn with a width and darkness growing with
    their attribution score, pruned edges as faint dotted lines, dropped nodes hollow.

    Args:
        widths: the original widths ``[in, ..., out]``.
        scores: per layer (in order) the edge scores ``[out, in]``.
        masks: per layer the mask after pruning ``[out, in]`` (None for linear layers).
        kept_nodes: per hidden boundary the indices of the nodes kept.
    """
    plt = _pyplot()
    depth = len(widths)
    fig, ax = plt.subplots(figsize=(2.0 + 1.8 * depth, 1.2 + 0.32 * max(widths)))

    def ypos(n):
        return np.linspace(0.5, -0.5, n) * (n - 1) / max(1, max(widths) - 1) if n > 1 else np.zeros(1)

    top = max(float(np.max(s)) for s in scores.values()) or 1.0
    for k, (s, m) in enumerate(zip(scores.values(), masks.values())):
        y0, y1 = ypos(widths[k]), ypos(widths[k + 1])
        for j in range(s.shape[0]):
            for i in range(s.shape[1]):
                alive = m is None or m[j, i] != 0
                v = float(s[j, i]) / top
                if alive:
                    ax.plot([k, k + 1], [y0[i], y1[j]], color=(0.1, 0.2, 0.6), alpha=0.25 + 0.75 * v,
                            lw=0.4 + 3.2 * v, zorder=1)
                else:
                    ax.plot([k, k + 1], [y0[i], y1[j]], color="0.75", lw=0.5, ls=":", zorder=0)
    for k, n in enumerate(widths):
        kept = set(range(n)) if k in (0, depth - 1) else set(int(v) for v in kept_nodes[k - 1])
        for i, y in enumerate(ypos(n)):
            face = "white" if i not in kept else ("0.85" if k in (0, depth - 1) else (0.95, 0.75, 0.3))
            ax.scatter([k], [y], s=90, facecolor=face, edgecolor="0.2" if i in kept else "0.7", zorder=3)
        label = "inputs" if k == 0 else ("outputs" if k == depth - 1 else f"hidden {k}")
        ax.text(k, 0.62, f"{label}\n{len(kept)} of {n}", ha="center", va="bottom", fontsize=7)
    ax.set_xlim(-0.4, depth - 0.6)
    ax.set_ylim(-0.62, 0.85)
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    fig.text(0.5, 0.01, "line width and darkness: attribution score; dotted: pruned edge; hollow: removed node",
             ha="center", va="bottom", fontsize=7, color="0.3")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return _save(fig, path)


def plot_compare(result: dict, path: str) -> str:
    """One panel per task: each candidate's test metric (mean ± std over seeds), with its
    parameter count and mean training time as labels."""
    plt = _pyplot()
    tasks = [t for t in result["settings"]["tasks"] if any(r["task"] == t for r in result["rows"])]
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.4 * len(tasks), max(2.6, 1.1 + 0.5 * max(
        sum(r["task"] == t for r in result["rows"]) for t in tasks))), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        rows = [r for r in result["rows"] if r["task"] == task]
        metric = rows[0]["metric"]
        scale = 100.0 if metric == "accuracy" else 1.0
        y = np.arange(len(rows))[::-1]
        means = np.array([r["mean"] for r in rows]) * scale
        stds = np.array([r["std"] for r in rows]) * scale
        colors = ["0.55" if r["candidate"].startswith("MLP") else f"C{k}" for k, r in enumerate(rows)]
        ax.barh(y, means, xerr=stds, color=colors, alpha=0.85, capsize=3)
        ax.set_yticks(y, [r["candidate"] for r in rows], fontsize=8)
        for yi, r, mval, sval in zip(y, rows, means, stds):
            at = (mval + sval) * 1.08 if metric == "rmse" else mval + sval + 1.5
            ax.text(at, yi, f"{r['params']:,} params, {r['mean_seconds']:.0f} s", va="center", fontsize=7)
        if metric == "rmse":
            ax.set_xscale("log")
            ax.set_xlabel("test RMSE (lower is better)")
        else:
            ax.set_xlabel("test accuracy, % (higher is better)")
            ax.set_xlim(0, 118)
        ax.set_title(f"{task}: mean ± std over {rows[0]['seeds']} seeds", fontsize=9)
        lo, hi = ax.get_xlim()
        if metric == "rmse":
            ax.set_xlim(lo, hi * 6)
    fig.tight_layout()
    return _save(fig, path)
