"""Acceptance benchmark: 8x8 digits with a QKAN classifier vs an MLP of similar size.

Both models train with the same loop, optimizer, schedule, batch size, steps and seeds
(qvaf.runtime.train.fit) on the same 80/20 split (fixed data seed 0, 10% of the train part
held out for validation). The QKAN is ``specs/models/digits.qvaf`` (64 -> 8 -> 10, pz with 2
re-uploads); the MLP is 64 -> H -> 10 with tanh, H chosen so its parameter count is closest
to the QKAN's.

Run::

    python benchmarks/digits.py                # 3 seeds, prints a markdown table
    python benchmarks/digits.py --seeds 0 --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


class MLP:
    """64 -> hidden -> 10 with tanh; the model protocol of qvaf.runtime.train (pure JAX)."""

    def __init__(self, d_in: int, hidden: int, d_out: int):
        self.sizes = (d_in, hidden, d_out)
        self.in_width = d_in

    def init(self, key):
        import jax
        import jax.numpy as jnp

        k1, k2 = jax.random.split(key)
        a, h, o = self.sizes
        lim1, lim2 = np.sqrt(6 / (a + h)), np.sqrt(6 / (h + o))  # Glorot uniform, like `linear`
        return {"layer0": {"weight": jax.random.uniform(k1, (h, a), jnp.float32, -lim1, lim1),
                           "bias": jnp.zeros((h,), jnp.float32)},
                "layer1": {"weight": jax.random.uniform(k2, (o, h), jnp.float32, -lim2, lim2),
                           "bias": jnp.zeros((o,), jnp.float32)}}

    @property
    def trainable(self):
        return {"layer0": {"weight": True, "bias": True}, "layer1": {"weight": True, "bias": True}}

    @property
    def param_count(self) -> int:
        a, h, o = self.sizes
        return a * h + h + h * o + o

    def apply(self, params, x):
        import jax.numpy as jnp

        h = jnp.tanh(x @ params["layer0"]["weight"].T + params["layer0"]["bias"])
        return h @ params["layer1"]["weight"].T + params["layer1"]["bias"]


def run(seeds, steps: int, batch: int, lr: float) -> list[dict]:
    import jax

    import qvaf
    from qvaf.runtime.data import load_task
    from qvaf.runtime.run import find_spec
    from qvaf.runtime.train import TrainConfig, evaluate, fit

    ds = load_task("digits")
    qkan = qvaf.compile(find_spec("digits"), "digits")
    hidden = min(range(4, 200), key=lambda h: abs(MLP(64, h, 10).param_count - qkan.param_count))
    mlp = MLP(64, hidden, 10)
    rows = []
    for name, model in (("QKAN digits.qvaf (64 -> 8 -> 10, pz reps 2)", qkan), (f"MLP 64 -> {hidden} -> 10 (tanh)", mlp)):
        for seed in seeds:
            config = TrainConfig(steps=steps, batch_size=batch, lr=lr, schedule="cosine", eval_every=steps, seed=seed)
            t0 = time.perf_counter()
            result = fit(model, model.init(jax.random.PRNGKey(seed)), ds, config)
            seconds = time.perf_counter() - t0
            test = evaluate(model, result.params, ds.x_test, ds.y_test, ds.kind)
            rows.append({"model": name, "params": model.param_count, "seed": seed, "test_accuracy": test["accuracy"],
                         "test_loss": test["loss"], "seconds": seconds, "steps": steps})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = run([int(s) for s in args.seeds.split(",")], args.steps, args.batch, args.lr)
    if args.json:
        print(json.dumps(rows))
        return 0
    print("| model | trainable params | test accuracy (per seed) | mean | train time per run |")
    print("|---|---|---|---|---|")
    for name in dict.fromkeys(r["model"] for r in rows):
        rs = [r for r in rows if r["model"] == name]
        accs = ", ".join(f"{100 * r['test_accuracy']:.2f}%" for r in rs)
        print(f"| {name} | {rs[0]['params']} | {accs} | {100 * np.mean([r['test_accuracy'] for r in rs]):.2f}% "
              f"| {np.mean([r['seconds'] for r in rs]):.0f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
