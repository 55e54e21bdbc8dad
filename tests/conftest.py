"""Test-session setup.

The suite computes float64 models throughout, so JAX's 64-bit mode is turned on once, here,
before any test runs (qvaf's library code never touches JAX's configuration; a program that
wants float64 does what this does). Tests of behaviour without 64-bit mode run in fresh
subprocesses or inside ``jax.experimental.disable_x64()``.

Hypothesis runs derandomised (one fixed sequence of examples) so a run cannot flake; set
``HYPOTHESIS_PROFILE=explore`` locally for fresh random examples.
"""

from __future__ import annotations

import os

import jax
from hypothesis import settings

jax.config.update("jax_enable_x64", True)

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
