"""The reference side of ``compare_qkan.py``: timings of the ``qkan`` package (PyTorch, CPU).

Runs inside ``benchmarks/.venv-qkan`` (torch 2.13.0 CPU build, qkan 0.2.3), never imports
qvaf. Protocol: one JSON request per line on stdin, one JSON answer per line on stdout.

* ``{"op": "info"}`` -> versions and thread count;
* ``{"op": "bench", "batch": B, "widths": [...], "reps": L, "preact_trainable": bool,
  "repeats": n}`` -> forward and train-step medians (ms) and the train step's peak memory
  for each solver (exact, cutn) and readout (fast_measure True/False).

Train step: ``opt.zero_grad(); loss = mse(model(x), y); loss.backward(); opt.step()`` with
``torch.optim.Adam`` (lr 1e-3). Memory: the torch profiler's allocation events
(``profile_memory=True``) over one step, summed in time order; the peak of that running sum is
the most the step held above what was live before it. Its start-up chatter goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
from _timing import median_ms  # noqa: E402 - benchmarks/ is the script directory

THREADS = 2
SOLVERS = ("exact", "cutn")
READOUTS = {"fast": True, "z": False}


def step_peak_bytes(step) -> int:
    """Peak of the bytes allocated (and not yet freed) during ``step()``: the profiler's
    allocation records (sizes, negative for frees) summed in time order."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    allocations = []

    def walk(node):
        if node.tag == _EventType.Allocation:
            allocations.append((node.start_time_ns, node.extra_fields.alloc_size))
        for child in node.children:
            walk(child)

    for root in prof.profiler.kineto_results.experimental_event_tree():
        walk(root)
    live = peak = 0
    for _, size in sorted(allocations):
        live += size
        peak = max(peak, live)
    return int(peak)


def bench(req: dict) -> dict:
    import torch
    from qkan import QKAN

    batch, widths, reps = req["batch"], req["widths"], req["reps"]
    repeats = req["repeats"]
    g = torch.Generator().manual_seed(0)
    x = torch.rand((batch, widths[0]), generator=g, dtype=torch.float32) * 2 - 1
    y = torch.rand((batch, widths[-1]), generator=g, dtype=torch.float32) * 2 - 1
    variants = {}
    for solver in SOLVERS:
        for readout, fast in READOUTS.items():
            name = f"{solver}/{readout}"
            try:
                model = QKAN(list(widths), reps=reps, solver=solver, fast_measure=fast,
                             preact_trainable=req["preact_trainable"], ba_trainable=req["preact_trainable"],
                             device="cpu", seed=0, p_dtype=torch.float32, c_dtype=torch.complex64)
                opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)

                def forward():
                    with torch.no_grad():
                        model(x)

                def step():
                    opt.zero_grad(set_to_none=True)
                    loss = torch.mean((model(x) - y) ** 2)
                    loss.backward()
                    opt.step()

                fwd = median_ms(forward, repeats)
                train = median_ms(step, repeats)
                variants[name] = {"forward_ms": fwd, "train_ms": train, "step_peak_bytes": step_peak_bytes(step),
                                  "params": sum(p.numel() for p in model.parameters() if p.requires_grad)}
            except Exception as exc:  # a solver that cannot run this configuration
                variants[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return {"variants": variants}


def info() -> dict:
    import importlib.metadata as md

    import torch

    return {"torch": torch.__version__, "qkan": md.version("qkan"), "threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available()}


def main() -> None:
    # answers go to the original stdout; anything native code prints goes to stderr
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    import torch

    torch.set_num_threads(THREADS)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            answer = info() if req["op"] == "info" else bench(req)
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
