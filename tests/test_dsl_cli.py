"""``qvaf check`` on good, bad and pathological input: a message and an exit status, never a traceback."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest

from qvaf.runtime.cli import main

SPEC_DIR = os.path.join(os.path.dirname(__file__), "..", "specs")


def run(capsys, *argv):
    code = main(["check", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_check_specs_directory_is_clean(capsys):
    code, text = run(capsys, SPEC_DIR)
    assert code == 0
    *shown, summary = text.strip().splitlines()
    assert summary == "checked 9 files: 0 errors, 1 warning"
    assert shown[0].endswith("px.qvaf:10:5: warning: theta[3] is never read by the optimised circuit of "
                             "px(reps=3): it cannot affect the output")  # px's last RZ before measure z


def test_check_warns_about_parameters_the_optimised_circuit_never_reads(tmp_path, capsys):
    """What only ``qvaf inspect`` reported before: a rotation the passes drop (here the last
    rz before ``measure z``) leaves its parameter unread, in a model and in an ansatz alone."""
    path = tmp_path / "u.qvaf"
    path.write_text("ansatz a {\n    param t[2] = 0.1\n    ry(x)\n    rx(t[0])\n    rz(t[1])\n    measure z\n}\n"
                    "model m {\n    input 2\n    kan 1 using a\n}\n")
    code, text = run(capsys, path)
    assert code == 0
    assert (f"{path}:2:5: warning: t[1] is never read by the optimised circuit of a in model m, layer0: "
            "it cannot affect the output") in text
    assert text.strip().endswith("checked 1 file: 0 errors, 1 warning")


def test_warnings_alone_exit_zero(tmp_path, capsys):
    path = tmp_path / "w.qvaf"
    path.write_text("ansatz a {\n    param t = 1.0\n    rz(x)\n    measure z\n}\n")
    code, text = run(capsys, path)
    assert code == 0
    assert f"{path}:2:5: warning: 't' is declared but never used" in text
    assert text.strip().endswith("checked 1 file: 0 errors, 1 warning")


def test_errors_exit_one_with_all_diagnostics(tmp_path, capsys):
    path = tmp_path / "e.qvaf"
    path.write_text("ansatz a {\n    rzz(x)\n    rz(y)\n}\n")
    code, text = run(capsys, path)
    assert code == 1
    assert f"{path}:2:5: error: unknown gate 'rzz'; did you mean 'rz'?" in text
    assert f"{path}:3:8: error: unknown name 'y'" in text
    assert f"{path}:1:1: error: ansatz 'a' has no 'measure'" in text
    assert text.strip().endswith("checked 1 file: 3 errors, 0 warnings")
    code, text = run(capsys, "--quiet", path)
    assert text.strip() == "checked 1 file: 3 errors, 0 warnings"


def test_diagnostics_of_a_shared_import_are_printed_once(tmp_path, capsys):
    (tmp_path / "lib.qvaf").write_text("ansatz a {\n    rzz(x)\n    measure z\n}\n")
    (tmp_path / "m1.qvaf").write_text('import "lib.qvaf"\n')
    (tmp_path / "m2.qvaf").write_text('import "lib.qvaf"\n')
    code, text = run(capsys, tmp_path)
    assert code == 1
    assert text.count("unknown gate 'rzz'") == 1
    assert text.strip().endswith("checked 3 files: 1 error, 0 warnings")


PATHOLOGICAL = {
    "random bytes": (lambda rng: bytes(rng.randrange(256) for _ in range(4096)), "is not valid UTF-8"),
    "invalid utf-8": (lambda rng: b"ansatz a {\n    rz(\xc3\x28)\n}\n", "is not valid UTF-8 (byte 0xc3 at offset 18)"),
    "random ascii": (lambda rng: bytes(rng.randrange(32, 127) for _ in range(4096)), "error: "),
    "truncated": (lambda rng: open(os.path.join(SPEC_DIR, "ansatz", "pz.qvaf"), "rb").read()[:-40],
                  "this '{' is never closed"),
    "10 000 nested parentheses": (
        lambda rng: b"ansatz a {\n    rz(" + b"(" * 10_000 + b"x" + b")" * 10_000 + b")\n    measure z\n}\n",
        "nesting deeper than 100 levels of brackets or blocks"),
    "10 000 nested blocks": (
        lambda rng: b"ansatz a {\n" + b"for i in 0..1 {\n" * 10_000 + b"}\n" * 10_000 + b"}\n",
        "nesting deeper than 100 levels of brackets or blocks"),
    "long unary chain": (lambda rng: b"ansatz a {\n    rz(" + b"-" * 100_000 + b"x)\n    measure z\n}\n",
                         "expression nested deeper than 200 levels"),
    "10 MB file": (lambda rng: b"# " + b"a" * 10_000_000 + b"\n",
                   "is 10000003 bytes; the limit for a spec is 1000000 bytes"),
    "huge integer": (lambda rng: b"ansatz a {\n    rz(" + b"9" * 5000 + b" * x)\n    measure z\n}\n",
                     "numeric literal longer than 100 characters"),
    "huge constant": (lambda rng: b"ansatz a {\n    param t[2 ** 2 ** 2 ** 2 ** 2] = 0.0\n    rz(t[0] * x)\n    measure z\n}\n",
                      "integer constant 2 ** 65536 is too large (limit 2**62)"),
    "NUL bytes": (lambda rng: b"ansatz a {\x00}\n", "unexpected character '\\x00'"),
}


@pytest.mark.parametrize("name", list(PATHOLOGICAL))
def test_pathological_input(name, tmp_path, capsys):
    make, expected = PATHOLOGICAL[name]
    path = tmp_path / "p.qvaf"
    path.write_bytes(make(random.Random(7)))
    code, text = run(capsys, path)
    assert code == 1
    assert expected in text
    assert "Traceback" not in text
    assert all(len(line) < 400 for line in text.splitlines())  # long lines are windowed


def test_directory_without_specs_missing_file_and_directory_as_import(tmp_path, capsys):
    code, text = run(capsys, tmp_path)
    assert code == 1 and f"error: no .qvaf files under '{tmp_path}'" in text
    code, text = run(capsys, tmp_path / "nope.qvaf")
    assert code == 1 and f"error: cannot read '{tmp_path / 'nope.qvaf'}': no such file" in text
    (tmp_path / "d.qvaf").mkdir()
    (tmp_path / "i.qvaf").write_text('import "d.qvaf"\n')
    code, text = run(capsys, tmp_path / "i.qvaf")
    assert code == 1 and "imported file 'd.qvaf' is a directory, not a .qvaf file" in text


def test_device_file_is_refused(capsys):
    code, text = run(capsys, "/dev/zero")
    assert code == 1 and "error: '/dev/zero' is not a regular file" in text


def test_unreadable_file(tmp_path, capsys, monkeypatch):
    from qvaf.dsl import program

    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    path = tmp_path / "locked.qvaf"
    path.write_text("ansatz a { rz(x); measure z }\n")
    monkeypatch.setattr(program, "open", deny, raising=False)
    code, text = run(capsys, path)
    assert code == 1 and f"error: cannot read '{path}': permission denied" in text


def test_console_script_prints_no_traceback(tmp_path):
    path = tmp_path / "deep.qvaf"
    path.write_bytes(b"ansatz a { rz(" + b"(" * 10_000 + b"\xff")
    result = subprocess.run(
        [sys.executable, "-m", "qvaf.runtime.cli", "check", str(path), str(tmp_path / "missing.qvaf")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "not valid UTF-8" in result.stdout and "no such file" in result.stdout
