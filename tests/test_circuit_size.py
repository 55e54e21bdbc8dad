"""Many re-uploads: a documented limit checked up front, a warning where compiling is slow, a
progress line before the first step, and a way past the limit from Python."""

from __future__ import annotations

import os

import pytest

import qvaf
from qvaf.compiler.analysis import UNROLL_WARN, unrolled_ops
from qvaf.compiler.options import CompileOptions
from qvaf.dsl.errors import QvafError
from qvaf.runtime.cli import main

PZ = os.path.join(os.path.dirname(__file__), "..", "specs", "ansatz", "pz.qvaf")


def spec(tmp_path, reps: int):
    path = tmp_path / f"big{reps}.qvaf"
    path.write_text(f'import "{PZ}"\n\nmodel big {{\n    input 2\n    kan 1 using pz(reps = {reps})\n}}\n')
    return path


def test_ops_per_edge_circuit_is_two_per_upload_plus_one(tmp_path):
    for reps in (3, 40):
        assert unrolled_ops(qvaf.compile(spec(tmp_path, reps)).ir) == {"layer0": 2 * reps + 1}


def test_compile_refuses_a_circuit_above_the_limit_naming_layer_size_and_fix(tmp_path):
    with pytest.raises(QvafError) as exc:
        qvaf.compile(spec(tmp_path, 10000))
    text = str(exc.value)
    assert "layer0 (pz(reps=10000)) unrolls into 20001 ops per edge circuit, above the limit of 256" in text
    assert "unroll_limit=N" in text


def test_the_limit_is_an_option_and_none_lifts_it(tmp_path):
    assert CompileOptions().unroll_limit == 256
    model = qvaf.compile(spec(tmp_path, 200), unroll_limit=None)  # compiling is lazy: no XLA work here
    assert unrolled_ops(model.ir) == {"layer0": 401}
    with pytest.raises(QvafError, match="above the limit of 300"):
        qvaf.compile(spec(tmp_path, 200), unroll_limit=300)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(QvafError, match="unroll_limit takes a positive int or None"):
            CompileOptions(unroll_limit=bad)


def test_check_reports_the_limit_at_the_layer_and_warns_when_slow(tmp_path, capsys):
    code = main(["check", str(spec(tmp_path, 10000))])
    text = capsys.readouterr()
    assert code == 1
    assert "big10000.qvaf:5:5: error: layer0 (pz(reps=10000)) unrolls into 20001 ops" in text.out + text.err
    reps = UNROLL_WARN // 2 + 8
    code = main(["check", str(spec(tmp_path, reps))])
    text = capsys.readouterr()
    assert code == 0
    assert f"warning: layer0 (pz(reps={reps})) unrolls into {2 * reps + 1} ops per edge circuit: compiling" \
        in text.out + text.err
    assert main(["check", str(spec(tmp_path, 3))]) == 0
    assert "0 errors, 0 warnings" in capsys.readouterr().out


def test_train_refuses_before_any_work_and_prints_a_compiling_line_otherwise(tmp_path, capsys):
    code = main(["train", str(spec(tmp_path, 10000)), "--task", "toy_expsin", "--steps", "1",
                 "--out", str(tmp_path / "r1")])
    assert code == 2
    assert "above the limit of 256" in capsys.readouterr().err
    assert not (tmp_path / "r1").exists()
    code = main(["train", str(spec(tmp_path, 2)), "--task", "toy_expsin", "--steps", "1", "--out", str(tmp_path / "r2")])
    err = capsys.readouterr().err
    assert code == 0
    assert "compiling big (" in err and "edge circuits of up to 5 ops) ..." in err
