"""Plots: both views of an edge, the summary of a wide layer, readable log axes. Every PNG is
checked for its size; the figures were also looked at when this was written."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest

import qvaf
from qvaf.runtime import plots
from qvaf.runtime.cli import main


def _png_size(path):
    with open(path, "rb") as fh:
        head = fh.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_log_axes_label_at_least_three_ticks():
    plt = plots._pyplot()
    for lo, hi in [(0.028, 0.061), (2e-4, 3e-3), (1e-6, 1.0)]:
        fig, ax = plt.subplots()
        values = np.geomspace(lo, hi, 50)
        ax.plot(values)
        plots._log_ticks(ax, values)
        ax.set_ylim(lo, hi)
        fig.canvas.draw()
        shown = [t for t in ax.yaxis.get_majorticklocs() if lo <= t <= hi]
        labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        plt.close(fig)
        assert len(shown) >= 3, (lo, hi, shown)
        assert all("10^" not in s and "times" not in s for s in labels)


def test_strongest_edges_are_ranked_by_strength():
    strength = np.array([[0.1, 0.9, 0.3], [0.8, 0.2, 0.9]])
    assert plots.strongest_edges(strength, 3) == [(0, 1), (1, 2), (1, 0)]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A digits-shaped model (64 -> 3 -> 10) saved with qvaf.save: no task, inputs in [-1, 1]."""
    folder = tmp_path_factory.mktemp("plots") / "model"
    model = qvaf.compile("digits", args={"hidden": 3})
    qvaf.save(folder, model, model.init(0))
    return str(folder)


def test_wide_layers_get_a_heatmap_and_the_strongest_edges(saved, tmp_path, capsys):
    assert main(["plot", saved, "--out", str(tmp_path), "--what", "both"]) == 0
    files = capsys.readouterr().out.split()
    assert sorted(os.path.basename(f) for f in files) == [
        "activations_layer0.png", "activations_layer1.png", "contributions_layer0.png", "contributions_layer1.png"]
    for f in files:  # a saved model has no training curves
        width, height = _png_size(f)
        assert 600 <= width <= 1600 and 500 <= height <= 1000, (f, width, height)
        assert os.path.getsize(f) > 20_000


def test_small_layers_get_one_panel_per_edge(tmp_path):
    model = qvaf.compile("regression")
    files = plots.plot_activations(model, model.init(0), np.random.default_rng(0).uniform(-1, 1, (64, 2)),
                                   str(tmp_path), "edge")
    assert [os.path.basename(f) for f in files] == ["contributions_layer0.png", "contributions_layer1.png"]
    w0, h0 = _png_size(files[0])
    assert h0 > w0  # 5 rows x 2 columns of panels


def test_bad_plot_kind_is_a_clear_error(saved, capsys):
    assert main(["plot", saved, "--what", "phi"]) == 2
    assert "invalid choice: 'phi'" in capsys.readouterr().err
