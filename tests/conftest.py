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
import shutil
import tempfile

import jax
import pytest
from hypothesis import settings

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_compilation_cache_dir", None)  # the subprocesses' cache (below), not this process's

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# ----------------------------------------------------------------------------- subprocesses

_OWN_CACHE = []  # the folder this process made (the xdist controller, or a run without xdist)


def pytest_configure(config):
    """Command-line runs in subprocesses (``qvaf train`` under a closed pipe, probes, resume
    after SIGKILL) compile the same XLA programs many times over: they share JAX's persistent
    compilation cache, a fresh folder per test run (the xdist workers inherit the controller's).
    The cache hands back the executable XLA compiled for the identical program, so no result
    changes. Test processes themselves imported JAX already and keep their in-memory caches."""
    if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        _OWN_CACHE.append(tempfile.mkdtemp(prefix="qvaf-test-jax-cache-"))
        os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_CACHE[0]
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")


def pytest_unconfigure(config):
    for folder in _OWN_CACHE:
        shutil.rmtree(folder, ignore_errors=True)


# ----------------------------------------------------------------------------- scheduling

#: test files whose module fixtures are expensive (Catalyst's qjit programs, the precision
#: probes' processes, trained runs, exported programs): under ``--dist load`` each runs on one
#: worker, so its fixtures are made once instead of once per worker
GROUPED_FILES = ("tests/test_backend_catalyst.py", "tests/test_precision.py", "tests/test_runtime_cli.py",
                 "tests/test_user_errors.py", "tests/test_hardware.py", "tests/test_cli_pipe.py")


@pytest.hookimpl(optionalhook=True)  # a hook of xdist: unknown (and unused) under -p no:xdist
def pytest_xdist_make_scheduler(config, log):
    """``--dist load`` (what ``-n 2`` means), except that the tests of ``GROUPED_FILES`` go
    to one worker as one unit; other dist modes keep xdist's own scheduler."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class _GroupedLoad(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            path = nodeid.split("::", 1)[0]
            return path if path.endswith(GROUPED_FILES) else nodeid

    return _GroupedLoad(config, log)
