"""The persistent compilation cache of the ``qvaf`` command (runtime/compile_cache.py) and of the
test session (tests/conftest.py): where it goes, when it is off, how it is trimmed, and that
a run loading its programs from the cache computes the same numbers bit for bit."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax

from qvaf.runtime import compile_cache as C

from _runtime_models import TINY


def test_the_folder_follows_the_environment(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert C.configure(env) == tmp_path / "xdg" / "qvaf" / "xla"
    assert env["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "xdg" / "qvaf" / "xla")
    assert float(env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]) == C.MIN_COMPILE_SECONDS
    env = {"QVAF_COMPILE_CACHE": str(tmp_path / "mine"), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    assert C.configure(env) == tmp_path / "mine" and (tmp_path / "mine").is_dir()
    assert env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"  # the user's choice stays
    env = {"JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax"), "QVAF_COMPILE_CACHE": str(tmp_path / "other")}
    assert C.configure(env) == tmp_path / "jax" and not (tmp_path / "other").exists()
    env = {"QVAF_COMPILE_CACHE": "  ", "XDG_CACHE_HOME": str(tmp_path / "blank")}  # blank: the default
    assert C.configure(env) == tmp_path / "blank" / "qvaf" / "xla"
    for off in ("off", "OFF", " off "):
        env = {"QVAF_COMPILE_CACHE": off, "XDG_CACHE_HOME": str(tmp_path / "never")}
        assert C.configure(env) is None and "JAX_COMPILATION_CACHE_DIR" not in env
    assert not (tmp_path / "never").exists()


def test_a_folder_that_cannot_be_made_turns_the_cache_off(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    env = {"QVAF_COMPILE_CACHE": str(blocker / "xla")}
    assert C.configure(env) is None and "JAX_COMPILATION_CACHE_DIR" not in env


def test_trim_deletes_the_oldest_files_down_to_half_the_limit(tmp_path):
    for age in range(10):  # entry k is the k-th oldest, 100 bytes each
        f = tmp_path / f"entry{age}"
        f.write_bytes(b"x" * 100)
        os.utime(f, (1000 + age, 1000 + age))
    C.trim(tmp_path, 1000)  # at the limit: untouched
    assert len(list(tmp_path.iterdir())) == 10
    C.trim(tmp_path, 900)  # past it: the oldest go until 450 bytes or less remain
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"entry{k}" for k in range(6, 10)]
    C.trim(tmp_path / "missing", 10)  # no folder yet: nothing to do


def test_the_test_session_shares_one_cache_with_its_subprocesses():
    if os.environ.get("QVAF_TEST_COMPILE_CACHE") == "off":
        assert jax.config.jax_compilation_cache_dir in (None, os.environ.get("JAX_COMPILATION_CACHE_DIR"))
        return
    assert jax.config.jax_compilation_cache_dir == os.environ["JAX_COMPILATION_CACHE_DIR"]
    assert os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"


def _train(out, cache):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env["QVAF_COMPILE_CACHE"] = str(cache)
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # keep every program, however fast the machine
    done = subprocess.run([sys.executable, "-m", "qvaf", "train", TINY, "--task", "toy_sin2", "--n-train", "40",
                           "--batch", "0", "--steps", "3", "--eval-every", "1", "--json", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def _numbers(records):
    keep = ("train_loss", "val_loss", "final_train_loss", "test")
    return [{k: r[k] for k in keep if k in r} for r in records]


def test_the_command_keeps_its_programs_and_computes_the_same_with_them(tmp_path):
    cache = tmp_path / "xla"
    cold = _train(tmp_path / "a", cache)
    entries = sorted(p.name for p in cache.iterdir())
    assert any(name.endswith("-cache") for name in entries), entries  # the training program is kept
    warm = _train(tmp_path / "b", cache)
    off = _train(tmp_path / "c", "off")
    assert _numbers(warm) == _numbers(cold) == _numbers(off)  # bit for bit (JSON floats round-trip)
    assert sorted(p.name for p in cache.iterdir()) == entries  # nothing new compiled the second time
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder would go")
    assert _numbers(_train(tmp_path / "d", blocked / "xla")) == _numbers(cold)
