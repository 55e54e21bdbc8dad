"""Small trained runs shared by the design-tool tests (formula, prune), trained once per
test process into a temporary folder removed at exit."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile


@functools.lru_cache(maxsize=None)
def regression_run() -> str:
    """A [2, 5, 1] pz QKAN trained in float64 for 60 full-batch Adam steps on toy_expsin
    (200 training samples); returns its run directory."""
    from qvaf.runtime.run import train_run
    from qvaf.runtime.train import TrainConfig

    root = tempfile.mkdtemp(prefix="qvaf-test-runs-")
    atexit.register(shutil.rmtree, root, True)
    out = os.path.join(root, "regression")
    train_run("regression", {"name": "toy_expsin", "n_train": 200}, TrainConfig(steps=60, batch_size=None,
              eval_every=60), out=out, dtype="float64")
    return out
