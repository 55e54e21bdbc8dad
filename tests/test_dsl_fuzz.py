"""Fuzzing: mutated specs end in success or a QvafError, never in another exception.

Mutations (deterministic seed): byte flips, byte insertions and deletions, truncation, line
shuffles, token shuffles, token duplication and deletion, and splices of two specs. Every
mutant goes through ``parse`` and the full ``check`` (imports resolved next to the original).
Whatever parses must also survive a formatter round trip, and whatever checks without an
error must compile (``qvaf check`` and ``qvaf.compile`` agree): every model, or every ansatz
of a file without models.
"""

from __future__ import annotations

import glob
import os
import random
import re

import pytest

import qvaf
from qvaf.dsl import QvafError, SpecError, check, load_program, parse
from qvaf.dsl.fmt import format_module

SPEC_DIR = os.path.join(os.path.dirname(__file__), "..", "specs")
SPECS = sorted(glob.glob(os.path.join(SPEC_DIR, "**", "*.qvaf"), recursive=True))
TOKEN = re.compile(r"\s+|[A-Za-z_][A-Za-z0-9_]*|[0-9.]+(?:[eE][+-]?[0-9]+)?|\.\.|\*\*|\S")
ALPHABET = b"(){}[];,=~.*+-/#\"\n x0123456789abcdefghijklmnopqrstuvwxyz_\t\xff\xc3"


def _tokens(text):
    return TOKEN.findall(text)


def mutate(rng: random.Random, data: bytes, other: bytes) -> bytes:
    kind = rng.randrange(9)
    if kind == 0 and data:  # flip bits of a few bytes
        out = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        return bytes(out)
    if kind == 1:  # insert syntax-looking bytes
        i = rng.randrange(len(data) + 1)
        junk = bytes(rng.choice(ALPHABET) for _ in range(rng.randint(1, 6)))
        return data[:i] + junk + data[i:]
    if kind == 2 and data:  # delete a range
        i = rng.randrange(len(data))
        return data[:i] + data[i + rng.randint(1, 20):]
    if kind == 3:  # truncate
        return data[: rng.randrange(len(data) + 1)]
    text = data.decode("utf-8", errors="replace")
    if kind == 4:  # shuffle some lines
        lines = text.splitlines(keepends=True)
        if len(lines) > 1:
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        return "".join(lines).encode()
    tokens = _tokens(text)
    if not tokens:
        return data
    if kind == 5:  # swap two tokens
        i, j = rng.randrange(len(tokens)), rng.randrange(len(tokens))
        tokens[i], tokens[j] = tokens[j], tokens[i]
    elif kind == 6:  # duplicate a token
        i = rng.randrange(len(tokens))
        tokens.insert(i, tokens[i])
    elif kind == 7:  # delete a token
        del tokens[rng.randrange(len(tokens))]
    else:  # splice: head of one spec, tail of another
        tail = _tokens(other.decode("utf-8", errors="replace"))
        tokens = tokens[: rng.randrange(len(tokens) + 1)] + tail[rng.randrange(len(tail) + 1):]
    return "".join(tokens).encode()


def compile_all(path: str) -> int:
    """Compile every model of a spec that checked clean (every ansatz when it has no model)."""
    program = load_program(path)
    targets = [{"model": m} for m in program.models] or [{"ansatz": a} for a in program.ansatze]
    for target in targets:
        try:
            qvaf.compile(program, **target)
        except QvafError as exc:
            raise AssertionError(f"{path} checks clean but {target} does not compile:\n{exc}") from None
    return len(targets)


def _exercise(path: str, data: bytes) -> str:
    """Run parse, check, the formatter and (when it checks clean) compile on one mutant;
    return how it ended."""
    with open(path, "wb") as handle:
        handle.write(data)
    diagnostics = check(path)  # never raises for bad input
    for d in diagnostics:
        assert d.severity in ("error", "warning") and d.message
        d.render()
    clean = not any(d.severity == "error" for d in diagnostics)
    if clean:
        compile_all(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "not utf-8"
    try:
        module = parse(text, path)
    except SpecError as exc:
        assert exc.diagnostics and str(exc)
        return "syntax error"
    except QvafError:
        return "other error"
    assert parse(format_module(module)) == module
    return "compiled" if clean else "parsed"


@pytest.mark.parametrize("seed", range(4))
def test_mutated_specs_never_crash(seed, tmp_path):
    rng = random.Random(1234 + seed)
    originals = [open(p, "rb").read() for p in SPECS]
    for spec, data in zip(SPECS, originals):
        folder = tmp_path / os.path.basename(os.path.dirname(spec))
        folder.mkdir(exist_ok=True)
        (folder / os.path.basename(spec)).write_bytes(data)
    outcomes: dict[str, int] = {}
    for case in range(800):
        index = rng.randrange(len(SPECS))
        data = originals[index]
        for _ in range(rng.randint(1, 3)):
            data = mutate(rng, data, rng.choice(originals))
        # written into a copy of specs/ so that relative imports still resolve
        folder = tmp_path / os.path.basename(os.path.dirname(SPECS[index]))
        path = str(folder / f"m{case}.qvaf")
        outcome = _exercise(path, data)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        os.unlink(path)
    # the mutations reach the parser's error paths, the checker's and the compiler
    assert outcomes.get("syntax error", 0) > 50
    assert outcomes.get("parsed", 0) > 20
    assert outcomes.get("compiled", 0) > 50


def test_random_bytes_never_crash(tmp_path):
    rng = random.Random(99)
    for case in range(300):
        data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
        if rng.random() < 0.5:
            data = bytes(rng.choice(ALPHABET) for _ in range(rng.randint(0, 200)))
        _exercise(str(tmp_path / "r.qvaf"), data)


@pytest.mark.parametrize("spec", SPECS, ids=[os.path.relpath(p, SPEC_DIR) for p in SPECS])
def test_every_spec_checks_clean_and_compiles(spec):
    assert [d for d in check(spec) if d.severity == "error"] == []
    assert compile_all(spec) >= 1


def test_what_compile_refuses_check_reports_at_the_call(tmp_path):
    """``reps = 0`` empties pz's ``w[reps]``: check reports it at the model line, and compile
    (which loads through the checker) refuses it with the same diagnostic."""
    ansatz = tmp_path / "ansatz"
    ansatz.mkdir()
    (ansatz / "pz.qvaf").write_bytes(open(os.path.join(SPEC_DIR, "ansatz", "pz.qvaf"), "rb").read())
    model = tmp_path / "m.qvaf"
    model.write_text('import "ansatz/pz.qvaf"\nmodel m {\n    input 2\n    kan 1 using pz(reps = 0)\n}\n')
    errors = [d for d in check(str(model)) if d.severity == "error"]
    assert [(e.span.file, e.span.line, e.span.col) for e in errors] == [(str(model), 4, 20)] * 2
    assert ["reps = 0: shape of 'w' has size 0" in errors[0].message,
            "reps = 0: shape of 'b' has size 0" in errors[1].message] == [True, True]
    d = errors[0]
    assert d.render().splitlines()[1:] == ["        kan 1 using pz(reps = 0)", "                       ^~~~~~~~"]
    with pytest.raises(SpecError) as info:
        qvaf.compile(str(model))
    assert info.value.diagnostics[0] == d
