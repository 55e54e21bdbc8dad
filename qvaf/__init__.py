"""qvaf: a differentiable compiler for quantum variational activation functions.

Public API (heavy dependencies are imported only when used)::

    import qvaf
    spec = qvaf.load("specs/models/regression.qvaf")
    model = qvaf.compile(spec, model="regression")
    params = model.init(jax.random.PRNGKey(0))
    y = model.apply(params, x)
"""

from qvaf.dsl.errors import QvafError

__version__ = "0.1.0"

__all__ = ["QvafError", "__version__"]
