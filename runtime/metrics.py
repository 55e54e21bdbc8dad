"""Losses and metrics for regression and classification.

Regression: mean squared error (the training loss) and its root (RMSE, the reported metric).
Classification: softmax cross-entropy on logits (the loss), top-1 accuracy (the metric) and
top-k accuracy.

.. math::

    \\mathrm{MSE} = \\frac{1}{N\\,K} \\sum_{n,k} (\\hat y_{nk} - y_{nk})^2, \\qquad
    \\mathrm{CE} = -\\frac{1}{N} \\sum_n \\log \\operatorname{softmax}(z_n)_{y_n}
"""

from __future__ import annotations

import numpy as np

from qvaf.dsl.errors import QvafError

#: loss name -> dataset kind it applies to
LOSSES = {"mse": "regression", "cross_entropy": "classification"}
#: the metric reported (and early-stopped on) for each kind, and whether larger is better
METRIC_OF_KIND = {"regression": ("rmse", False), "classification": ("accuracy", True)}


def loss_function(name: str):
    """The jnp loss ``f(pred, y) -> scalar`` called ``name`` (``"mse"`` or ``"cross_entropy"``)."""
    import jax.numpy as jnp
    import optax

    if name == "mse":
        def mse(pred, y):
            return jnp.mean((pred - y) ** 2)
        return mse
    if name == "cross_entropy":
        def cross_entropy(logits, labels):
            return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
        return cross_entropy
    raise QvafError(f"unknown loss '{name}'; choices: {', '.join(LOSSES)}")


def default_loss(kind: str) -> str:
    return "mse" if kind == "regression" else "cross_entropy"


def regression_metrics(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """``mse``, ``rmse`` and ``max_abs_error`` of predictions [N, K] against targets [N, K]."""
    err = np.asarray(pred, np.float64) - np.asarray(y, np.float64)
    mse = float(np.mean(err**2)) if err.size else float("nan")
    return {"loss": mse, "mse": mse, "rmse": float(np.sqrt(mse)),
            "max_abs_error": float(np.max(np.abs(err))) if err.size else float("nan")}


def classification_metrics(logits: np.ndarray, labels: np.ndarray, top_k: int = 5) -> dict[str, float]:
    """``loss`` (cross-entropy), ``accuracy`` (top-1) and ``top{k}_accuracy`` (when the number
    of classes exceeds k) of logits [N, C] against integer labels [N]."""
    z = np.asarray(logits, np.float64)
    labels = np.asarray(labels)
    if len(z) == 0:
        return {"loss": float("nan"), "accuracy": float("nan")}
    zmax = z.max(axis=1, keepdims=True)
    logp = z - zmax - np.log(np.exp(z - zmax).sum(axis=1, keepdims=True))
    out = {"loss": float(-np.mean(logp[np.arange(len(z)), labels])),
           "accuracy": float(np.mean(z.argmax(axis=1) == labels))}
    if z.shape[1] > top_k:
        # rank of the true class: how many classes score strictly higher
        true = z[np.arange(len(z)), labels][:, None]
        out[f"top{top_k}_accuracy"] = float(np.mean((z > true).sum(axis=1) < top_k))
    return out


def metrics_for(kind: str, pred: np.ndarray, y: np.ndarray, top_k: int = 5) -> dict[str, float]:
    """Every metric of a dataset kind (``"regression"`` or ``"classification"``)."""
    if kind not in METRIC_OF_KIND:
        raise QvafError(f"unknown kind {kind!r}; expected one of {', '.join(METRIC_OF_KIND)}")
    if kind == "regression":
        return regression_metrics(pred, y)
    return classification_metrics(pred, y, top_k)


def is_better(kind: str, new: float, best: float | None) -> bool:
    """Whether ``new`` improves on ``best`` for the kind's reported metric."""
    if best is None or not np.isfinite(best):
        return bool(np.isfinite(new))
    larger = METRIC_OF_KIND[kind][1]
    return bool(new > best) if larger else bool(new < best)
