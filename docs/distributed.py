"""Data-parallel training across processes: two processes on this machine, two CPU devices each.

    python docs/distributed.py     # start both workers, compare with one process

    # or start each worker yourself, in two shells:
    export XLA_FLAGS=--xla_force_host_platform_device_count=2
    python docs/distributed.py --worker 0 --coordinator localhost:12355
    python docs/distributed.py --worker 1 --coordinator localhost:12355

Each worker calls ``jax.distributed.initialize`` before anything else touches JAX, so that
``jax.devices()`` lists the four devices of both processes; then both run the very same
``qvaf.fit(..., devices=4)``: same model, same seed, same data. Every process holds a full
copy of parameters and data; each device computes the model and its gradient on a quarter
of every minibatch, and XLA sums the gradients across processes (Gloo on CPU). On several
machines, the same program runs once per machine with ``--coordinator HOST:PORT`` naming
machine 0 and one ``--worker`` index each; only one process (here worker 0) should write
checkpoints.

Without ``--worker`` this script is the launcher: it starts the two workers with
``XLA_FLAGS=--xla_force_host_platform_device_count=2``, trains the same configuration in
its own single-device process, and checks that the three runs' losses agree. It prints one
JSON line: the final losses and the largest relative difference.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys

STEPS, BATCH = 30, 64


def train(devices: int) -> list[float]:
    import jax

    import qvaf
    from qvaf.runtime.train import TrainConfig

    model = qvaf.compile(os.path.join(os.path.dirname(__file__), "..", "specs", "models", "regression.qvaf"))
    config = TrainConfig(steps=STEPS, batch_size=BATCH, lr=2e-2, eval_every=STEPS, log_every=10, seed=3)
    result = qvaf.fit(model, model.init(jax.random.PRNGKey(3)), "toy_expsin", config, devices=devices)
    return result.log.losses


def worker(index: int, coordinator: str, processes: int) -> None:
    import jax

    jax.distributed.initialize(coordinator_address=coordinator, num_processes=processes, process_id=index,
                               initialization_timeout=60)
    losses = train(len(jax.devices()))
    print(json.dumps({"process": jax.process_index(), "devices": len(jax.devices()),
                      "local_devices": len(jax.local_devices()), "losses": losses}), flush=True)
    jax.distributed.shutdown()


def launch(timeout: float = 240) -> dict:
    with socket.socket() as s:  # a free port for the coordinator
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(i), "--coordinator", f"localhost:{port}"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outs = []
    try:
        reference = train(1)  # the same run on one device, while the workers run
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            if p.returncode != 0:
                raise SystemExit(f"worker failed (exit {p.returncode}):\n{err[-3000:]}")
            outs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    worst = max(abs(a - b) / max(abs(b), 1e-12) for o in outs for a, b in zip(o["losses"], reference))
    return {"event": "distributed", "processes": len(outs), "devices": outs[0]["devices"],
            "local_devices": outs[0]["local_devices"], "final_loss": [o["losses"][-1] for o in outs],
            "final_loss_one_device": reference[-1], "max_rel_diff": worst,
            "same_on_every_process": all(o["losses"] == outs[0]["losses"] for o in outs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", type=int, help="this process's index (omit to launch both)")
    parser.add_argument("--coordinator", default="localhost:12355", help="HOST:PORT of process 0")
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    if args.worker is None:
        print(json.dumps(launch()))
    else:
        worker(args.worker, args.coordinator, args.processes)


if __name__ == "__main__":
    main()
