"""How the exact spectrum of one edge grows with the number of re-uploads L.

Four designs, each with random circuit angles theta ~ U(-pi, pi) (seed 0):

* pz (fixed pre-processing weights w_l = 1);
* daruan, the paper's DARUAN with trainable weights, set to w_l = 3^(l-1);
* daruan with generic (random, non-integer) trained weights;
* ternary (docs/tutorial/ternary.qvaf), the weights 3^(l-1) fixed in the ansatz.

It prints the table and writes docs/img/tutorial_spectrum_growth.png:

    python docs/tutorial/spectrum_growth.py [--max-reps 6] [--out docs/img/tutorial_spectrum_growth.png]
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import qvaf
from qvaf.runtime.design_plots import plot_spectrum_growth

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def count(path: str, reps: int, weights=None) -> tuple[int, float]:
    """(distinct non-zero frequencies, highest frequency) of the ansatz at ``path``, random angles."""
    model = qvaf.compile(path, args={"reps": reps})
    layer = dict(model.init(0)["layer0"])
    layer["theta"] = np.random.default_rng(reps).uniform(-np.pi, np.pi, np.shape(layer["theta"]))
    if weights is not None:
        layer["w"] = np.asarray(weights, np.float64).reshape(1, 1, -1)
    s = qvaf.network_spectra(model, {"layer0": layer})["layer0"][(0, 0)]
    return s.count(1e-12), s.highest_frequency(1e-12)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-reps", type=int, default=6)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "img", "tutorial_spectrum_growth.png"))
    args = ap.parse_args(argv)
    pz = os.path.join(ROOT, "specs", "ansatz", "pz.qvaf")
    daruan = os.path.join(ROOT, "specs", "ansatz", "daruan.qvaf")
    ternary = os.path.join(HERE, "ternary.qvaf")
    generic = np.random.default_rng(0).uniform(0.5, 2.5, args.max_reps)  # trained weights, first L used
    rows = {"pz (fixed w = 1)": [], "daruan, trained w = 3^(l-1)": [], "daruan, generic trained w": [],
            "ternary (fixed w = 3^(l-1))": []}
    print("distinct non-zero frequencies (highest frequency) of one edge")
    print(f"{'L':>2}  {'pz':>8}  {'daruan 3^(l-1)':>14}  {'daruan generic':>14}  {'ternary':>10}  {'(3^L-1)/2':>9}")
    for L in range(1, args.max_reps + 1):
        n = [count(pz, L), count(daruan, L, 3.0 ** np.arange(L)), count(daruan, L, generic[:L]),
             count(ternary, L)]
        for (label, pts), (v, top) in zip(rows.items(), n):
            pts.append((L, v, top))
        cells = [f"{v} ({top:.3g})" for v, top in n]
        print(f"{L:>2}  {cells[0]:>8}  {cells[1]:>14}  {cells[2]:>14}  {cells[3]:>10}  {(3 ** L - 1) // 2:>9}")
    print(os.path.relpath(plot_spectrum_growth(rows, args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
