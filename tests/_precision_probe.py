"""Run float32 and float64 models in a fresh process and save every float32 result.

    python tests/_precision_probe.py OUT.npz --x64 on|off --order 32,64,32 [--catalyst] [--optimizers adam,lbfgs,lm]

``--x64 on`` turns JAX's 64-bit mode on at start-up (what a program that wants float64 does);
``--catalyst`` imports catalyst first, which turns that mode on by itself. ``--order`` lists
the dtypes of the models to build and run, in turn, in this one process; ``c`` builds the
model on the catalyst backend (float32) instead, and runs and trains it (saved under
``N_catalyst_``). Each model gives
its output and the gradients of a fixed loss on fixed inputs, and its training losses with
Adam (warmup-cosine schedule, clipping; the first float32 model also with the other
``--optimizers`` and under noise with shots), its output under noise and with shots, saved under ``N_DTYPE_`` for the N-th model. Without 64-bit mode a float64
compilation must fail; its message is saved instead.
"""

from __future__ import annotations

import argparse
import sys

SPEC = """
ansatz pz(reps: int = 1) {
    param theta[reps + 1, 2] ~ xavier()
    h
    for l in 0..reps {
        rz(theta[l, 0]); ry(theta[l, 1])
        rz(x)
    }
    rz(theta[reps, 0]); ry(theta[reps, 1])
    measure z
}
model probe {
    input 2
    kan 3 using pz { postact weight bias }
    linear 1
}
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--x64", choices=["on", "off"], required=True)
    ap.add_argument("--order", default="32")
    ap.add_argument("--catalyst", action="store_true")
    ap.add_argument("--optimizers", default="adam")
    args = ap.parse_args(argv)
    if args.catalyst:
        import catalyst  # noqa: F401 - switches JAX to 64-bit mode as a side effect
    import jax

    if args.x64 == "on":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np

    import qvaf
    from qvaf.dsl import program_from_text
    from qvaf.runtime.data import Dataset
    from qvaf.runtime.train import TrainConfig, fit

    rng = np.random.default_rng(0)
    x, w = rng.uniform(-1, 1, (8, 2)), rng.normal(size=(8, 1))
    xt = rng.uniform(-1, 1, (48, 2))
    data = Dataset("probe", "regression", xt, np.sin(xt[:, :1]) * xt[:, 1:], xt[:8], xt[:8, :1], xt[:8], xt[:8, :1])
    configs = {
        "adam": TrainConfig(steps=6, batch_size=16, lr=3e-2, schedule="warmup_cosine", warmup_steps=2,
                            clip_norm=1.0, eval_every=6, log_every=6, seed=3),
        "lbfgs": TrainConfig(steps=8, batch_size=None, optimizer="lbfgs", eval_every=8, log_every=8),
        "lm": TrainConfig(steps=4, batch_size=None, optimizer="lm", eval_every=4, log_every=4),
    }
    program = program_from_text(SPEC)
    saved = {"x64_after": np.array(bool(jax.config.jax_enable_x64))}
    trained = False
    for n, bits in enumerate(args.order.split(",")):
        if bits == "c":
            model = qvaf.compile(program, backend="catalyst", dtype="float32")
            params = model.init(jax.random.PRNGKey(1))
            saved[f"{n}_catalyst_output"] = np.asarray(model.apply(params, x))
            saved[f"{n}_catalyst_losses_adam"] = np.asarray(fit(model, params, data, configs["adam"]).log.losses,
                                                            np.float64)
            saved[f"{n}_catalyst_x64_after"] = np.array(bool(jax.config.jax_enable_x64))
            continue
        dtype = {"32": "float32", "64": "float64"}[bits]
        key = f"{n}_{dtype}"
        try:
            model = qvaf.compile(program, dtype=dtype)
        except qvaf.QvafError as exc:
            saved[f"{key}_error"] = np.array(str(exc))
            continue
        params = model.init(jax.random.PRNGKey(1))
        y = model.apply(params, x)
        grads = jax.grad(lambda p: jnp.sum(jnp.asarray(w, y.dtype) * model.apply(p, x)))(params)
        saved[f"{key}_output"] = np.asarray(y)
        for layer in sorted(grads):
            for name in sorted(grads[layer]):
                saved[f"{key}_grad_{layer}.{name}"] = np.asarray(grads[layer][name])
        noisy = model.with_noise("depolarizing=0.03,amplitude_damping=0.02,readout=0.01")
        saved[f"{key}_noisy_output"] = np.asarray(noisy.apply(params, x))
        saved[f"{key}_shots_output"] = np.asarray(noisy.apply(params, x, key=jax.random.PRNGKey(2), shots=100))
        first = dtype == "float32" and not trained
        if first:  # noise-aware training on shot estimates
            result = fit(model, params, data, TrainConfig(steps=4, batch_size=16, eval_every=4, log_every=4,
                                                          noise="depolarizing=0.03,readout=0.01", shots=50))
            saved[f"{key}_losses_noise_shots"] = np.asarray(result.log.losses, np.float64)
        for opt in args.optimizers.split(",") if first else ["adam"]:
            result = fit(model, params, data, configs[opt])
            saved[f"{key}_losses_{opt}"] = np.asarray(result.log.losses, np.float64)
            saved[f"{key}_theta_{opt}"] = np.asarray(result.params["layer0"]["theta"])
        trained = trained or dtype == "float32"
    np.savez(args.out, **saved)
    return 0


if __name__ == "__main__":
    sys.exit(main())
