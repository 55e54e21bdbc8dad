"""A corpus of the usual mistakes, run against the CLI and the Python API.

Every case must end in a message that names the problem (the fragment below), a non-zero
exit status (2 for bad input, 1 for specs with errors in ``qvaf check``), and no traceback.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import qvaf
from qvaf import QvafError
from qvaf.runtime.cli import main
from qvaf.runtime.run import specs_dir

SPECS = specs_dir()
REGRESSION = os.path.join(SPECS, "models", "regression.qvaf")
DIGITS = os.path.join(SPECS, "models", "digits.qvaf")
HQKAN = os.path.join(SPECS, "models", "hqkan.qvaf")
PZ = os.path.join(SPECS, "ansatz", "pz.qvaf")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A folder of bad inputs next to one good training run (and damaged copies of it)."""
    root = tmp_path_factory.mktemp("mistakes")
    (root / "empty.qvaf").write_text("# nothing here\n")
    (root / "syntax.qvaf").write_text("ansatz a {\n    rz(x\n    measure z\n}\n")
    (root / "noisearg.qvaf").write_text("ansatz a {\n    rz(x)\n    noise(0.1)\n    measure z\n}\n")
    (root / "binary.qvaf").write_bytes(bytes(range(128, 256)) * 3)
    (root / "noarg.qvaf").write_text(f'import "{PZ}"\nmodel m(n: int) {{ input n; kan 1 using pz }}\n')
    (root / "missing_ansatz.qvaf").write_text("model m {\n    input 2\n    kan 1 using rpzz\n}\n")
    (root / "two.qvaf").write_text(f'import "{REGRESSION}"\nmodel a {{ input 2; kan 1 using pz }}\n'
                                   "model b { input 2; kan 1 using pz }\n")
    (root / "adir").mkdir()
    (root / "emptydir").mkdir()
    (root / "bad.csv").write_text("a,b,c\n1,2,3\nx,y,z\n")
    (root / "header.csv").write_text("a,b,c\n")
    (root / "notnpz.npz").write_text("hello\n")
    run = str(root / "run")
    small = root / "small.qvaf"  # one layer: quick to compile
    small.write_text(f'import "{PZ}"\nmodel small {{ input 2; kan 1 using pz(reps = 3) }}\n')
    assert main(["train", str(small), "--task", "toy_sin2", "--n-train", "30", "--batch", "0", "--steps", "4",
                 "--eval-every", "2", "--out", run, "--quiet"]) == 0
    for name in ("corrupt", "nomanifest", "badlatest", "badconfig"):
        shutil.copytree(run, root / name)
    step = (root / "run" / "checkpoints" / "latest").read_text().strip()  # step-00000004
    weights = root / "corrupt" / "checkpoints" / step / "weights.npz"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    (root / "nomanifest" / "checkpoints" / step / "manifest.json").unlink()
    (root / "badlatest" / "checkpoints" / "latest").write_text("step-99999999\n")
    (root / "badconfig" / "checkpoints" / step / "config.json").write_text("{not json")
    old = os.getcwd()
    os.chdir(root)
    yield root
    os.chdir(old)


#: (command line, exit status, fragment of the message); {R} is the regression spec
CLI = [
    # top level and option spelling
    ("bogus", 2, "invalid choice: 'bogus'"),
    ("--bogus", 2, "unknown option '--bogus'"),
    ("train {R} --task toy_sin2 --optimiser adam", 2, "unknown option '--optimiser'; did you mean '--optimizer'?"),
    ("train {R} --task toy_sin2 --stpes 3", 2, "did you mean '--steps'?"),
    ("inspect {R} --dumpir", 2, "did you mean '--dump-ir'?"),
    ("tasks extra", 2, "unexpected argument 'extra'"),
    # check / fmt
    ("check", 2, "the following arguments are required: PATH"),
    ("check nothere.qvaf", 1, "cannot read 'nothere.qvaf': no such file"),
    ("check emptydir", 1, "no .qvaf files under 'emptydir'"),
    ("check binary.qvaf", 1, "is not valid UTF-8"),
    ("check syntax.qvaf", 1, "error:"),
    ("check noisearg.qvaf", 1, "'noise' takes no arguments: it marks where a noise model given with where=spec"),
    ("check empty.qvaf", 1, "'empty.qvaf' is empty: it defines no ansatz or model"),
    ("check missing_ansatz.qvaf", 1, "unknown ansatz 'rpzz'; did you mean 'rpz'?"),
    ("check noarg.qvaf adir", 1, "no .qvaf files under 'adir'"),
    # hardware export
    ("export run --params input --target qasm2 --out q2", 2, "parameters as program inputs need a target with inputs"),
    ("export run --params numbers --out q3", 2, "invalid choice: 'numbers'"),
    ("fmt adir", 1, "'adir' is a directory, not a .qvaf file"),
    ("fmt nothere.qvaf", 1, "no such file"),
    ("fmt --write --check {R}", 2, "not allowed with argument"),
    # inspect
    ("inspect nothere.qvaf", 2, "no spec file 'nothere.qvaf'"),
    ("inspect regresion", 2, "did you mean 'regression'?"),
    ("inspect adir", 2, "'adir' is a directory"),
    ("inspect empty.qvaf", 2, "no model or ansatz to inspect"),
    ("inspect {R} --arg d", 2, "--arg expects K=V, got 'd'"),
    ("inspect {R} --arg q=1", 2, "unknown argument 'q'"),
    ("inspect {H} --arg d=abc", 2, "argument 'd' is an int, got the text 'abc'"),
    ("inspect {H} --arg d=0", 2, "must be at least 1, got 0"),
    ("inspect {R} --model nope", 2, "unknown model 'nope'"),
    ("inspect {R} --ansatz-arg layer9:reps=2", 2, "'layer9', not a kan layer"),
    ("inspect {R} --ansatz-arg layer0:reps=2 --ansatz-arg layer0:reps=3", 2, "given twice"),
    ("inspect {R} --backend jax", 2, "the 'jax' backend compiles no program per circuit to show"),
    ("inspect {R} --backend torch", 2, "--backend: unknown backend 'torch'"),
    ("inspect noarg.qvaf", 2, "missing argument 'n'"),
    # train: spec, task and data
    ("train", 2, "train needs a SPEC"),
    ("train {R}", 2, "train needs --task NAME"),
    ("train {R} --task toy_sin", 2, "unknown task 'toy_sin'. Did you mean toy_sin2"),
    ("train {R} --task csv:missing.csv --out o", 2, "missing.csv: no such file"),
    ("train {R} --task csv:bad.csv --out o", 2, "non-numeric value"),
    ("train {R} --task csv:header.csv --out o", 2, "no data rows"),
    ("train {R} --task csv:adir --out o", 2, "Is a directory"),
    ("train {R} --task npz:notnpz.npz --out o", 2, "not a readable .npz file"),
    ("train {R} --task idx:emptydir --out o", 2, "missing IDX file"),
    ("train {R} --task toy_sin2 --n-train 0 --out o", 2, "n_train must be an integer >= 1, got 0"),
    ("train {R} --task toy_sin2 --data-seed -1 --out o", 2, "data_seed must be an integer >= 0"),
    ("train {R} --task digits --n-train 100 --out o", 2, "apply to formula tasks"),
    ("train {R} --task toy_sin2 --classify --out o", 2, "classify applies to csv: and npz: tasks"),
    ("train {R} --task toy_sin2 --target-col 1 --out o", 2, "target_col applies to csv: tasks"),
    ("train {R} --task digits --out o", 2, "the model takes 2 inputs but task 'digits' has 64"),
    ("train adir --task toy_sin2", 2, "'adir' is a directory"),
    ("train binary.qvaf --task toy_sin2", 2, "not valid UTF-8"),
    ("train empty.qvaf --task toy_sin2", 2, "defines no model or ansatz"),
    ("train syntax.qvaf --task toy_sin2", 2, "error:"),
    ("train noarg.qvaf --task toy_sin2", 2, "missing argument 'n'"),
    ("train two.qvaf --task toy_sin2", 2, "defines several models (a, b); choose one with --model NAME"),
    ("train {R} --task toy_sin2 --model nope", 2, "no model named 'nope'"),
    ("train {D} --task digits --arg hidden=abc", 2, "got the text 'abc'"),
    ("train {D} --task digits --arg hidden", 2, "bad --arg 'hidden': expected NAME=VALUE"),
    ("train {D} --task digits --arg nope=1", 2, "unknown argument 'nope'"),
    ("train {D} --task digits --arg hidden=3 --arg hidden=4", 2, "--arg hidden given twice"),
    # train: training options
    ("train {R} --task toy_sin2 --steps abc", 2, "invalid int value: 'abc'"),
    ("train {R} --task toy_sin2 --steps 0", 2, "--steps must be a positive integer, got 0"),
    ("train {R} --task toy_sin2 --steps 3000000000", 2, "--steps must be less than 2**31"),
    ("train {R} --task toy_sin2 --batch -3", 2, "--batch must be >= 0 (0 = full batch), got -3"),
    ("train {R} --task toy_sin2 --lr 0", 2, "--lr must be > 0"),
    ("train {R} --task toy_sin2 --lr nan", 2, "--lr must be > 0"),
    ("train {R} --task toy_sin2 --optimizer sgd", 2, "unknown optimizer 'sgd'"),
    ("train {R} --task toy_sin2 --optimizer lbfgs --lr 0.1", 2, "lbfgs and lm choose their own step size"),
    ("train {R} --task toy_sin2 --optimizer lm --batch 16", 2, "--batch: lm always trains on the full batch"),
    ("train {R} --task toy_sin2 --weight-decay 0.1", 2, "--weight-decay applies to --optimizer adamw"),
    ("train {R} --task toy_sin2 --lbfgs-memory 5", 2, "--lbfgs-memory applies to --optimizer lbfgs"),
    ("train {R} --task toy_sin2 --schedule linear", 2, "unknown schedule 'linear'"),
    ("train {R} --task toy_sin2 --warmup 10", 2, "--warmup applies to the warmup_cosine schedule"),
    ("train {R} --task toy_sin2 --schedule warmup_cosine --warmup 50 --steps 10", 2,
     "--warmup (50) must be less than steps (10)"),
    ("train {R} --task toy_sin2 --eval-every 0", 2, "--eval-every must be >= 1"),
    ("train {R} --task toy_sin2 --patience 0", 2, "--patience must be >= 1"),
    ("train {R} --task toy_sin2 --shots 0", 2, "--shots must be a positive integer, got 0"),
    ("train {R} --task toy_sin2 --shots 10 --optimizer lbfgs", 2, "lbfgs and lm need a deterministic one"),
    ("train {R} --task toy_sin2 --noise depolarising=0.1", 2, "did you mean 'depolarizing'?"),
    ("train {R} --task toy_sin2 --noise depolarizing=2", 2, "is a probability in [0, 1], got 2.0"),
    ("train {R} --task toy_sin2 --noise readout=x", 2, "noise readout='x' is not a number"),
    ("train {R} --task toy_sin2 --noise t1=10,t2=30,gate_time=1", 2, "exceeds 2*t1=20"),
    ("train {R} --task toy_sin2 --noise t1=10,t2=5", 2, "needs t1, t2 and gate_time together"),
    ("train {R} --task toy_sin2 --noise where=sometimes", 2, "'sometimes' is not a placement"),
    ("train {R} --task toy_sin2 --noise depolarizing=0.01,where=spec --out o", 2,
     "'regression' has none; add 'noise' after the gates"),
    ("train {R} --task toy_sin2 --clip -1", 2, "--clip must be > 0"),
    ("train {R} --task toy_sin2 --extend x", 2, "bad extension schedule entry 'x'"),
    ("train {R} --task toy_sin2 --extend 0:0", 2, "reps must be >= 1"),
    ("train {R} --task toy_sin2 --dtype float16", 2, "invalid choice: 'float16'"),
    ("train {R} --task toy_sin2 --devices 0", 2, "--devices must be a positive integer (the number of devices), got 0"),
    ("train {R} --task toy_sin2 --devices 4096", 2, "--devices 4096: JAX sees"),
    ("train {R} --task toy_sin2 --devices 4096", 2, "XLA_FLAGS=--xla_force_host_platform_device_count=4096"),
    ("train {R} --task toy_sin2 --devices two", 2, "invalid int value: 'two'"),
    ("train --resume --out run --devices 4096", 2, "--devices 4096: JAX sees"),
    ("train {R} --task toy_sin2 --backend torch", 2, "invalid choice: 'torch'"),
    ("train {R} --task toy_sin2 --backend reference --out refrun", 2, "computes in float64 only"),
    ("train {R} --task toy_sin2 --out {R}", 2, "cannot use"),
    ("train {R} --task toy_sin2 --out /proc/qvaf-nope/run", 2, "cannot create the run directory"),
    ("train {R} --task toy_sin2 --out run", 2, "already holds a run; pass --resume"),
    # resume
    ("train --resume", 2, "--resume needs --out RUN_DIR"),
    ("train --resume --out nothere", 2, "no such checkpoint or run directory"),
    ("train --resume --out run --lr 1", 2, "drop --lr"),
    ("train --resume --out run --backend catalyst --steps 8", 2, "drop --backend"),
    ("train --resume --out run", 2, "already reached step 4"),
    ("train --resume --out corrupt --steps 10", 2, "checksum mismatch"),
    ("train --resume --out nomanifest --steps 10", 2, "manifest.json: missing"),
    ("train --resume --out badlatest --steps 10", 2, "which is not a checkpoint directory"),
    ("train --resume --out emptydir --steps 10", 2, "not a checkpoint"),
    ("train --resume --out {R} --steps 10", 2, "not a checkpoint"),
    # eval / plot / demo
    ("eval", 2, "the following arguments are required: checkpoint"),
    ("eval nothere", 2, "no such checkpoint or run directory"),
    ("eval {R}", 2, "not a checkpoint"),
    ("eval corrupt", 2, "checksum mismatch"),
    ("eval badconfig", 2, "checksum mismatch"),
    ("eval run --task digits", 2, "task 'digits' has 64 inputs; the model"),
    ("eval run --backend torch", 2, "invalid choice: 'torch'"),
    ("eval run --backend reference", 2, "computes in float64 only"),
    ("eval run --task nope", 2, "unknown task 'nope'"),
    ("eval run --split bogus", 2, "invalid choice: 'bogus'"),
    ("eval run --shots 0", 2, "--shots must be a positive integer, got 0"),
    ("eval run --noise pauli=0.1/0.2", 2, "noise pauli takes 3 numbers"),
    ("plot nothere", 2, "no such checkpoint or run directory"),
    ("plot corrupt", 2, "checksum mismatch"),
    ("plot run --out {R}", 2, "cannot write plots to"),
    ("plot run --what phi", 2, "invalid choice: 'phi'"),
    ("demo --steps 0", 2, "--steps must be a positive integer, got 0"),
    ("demo --out run", 2, "already holds a run"),
    ("demo --out {R}", 2, "cannot use"),
    # extend
    ("extend run", 2, "the following arguments are required: --reps, --out"),
    ("extend run --reps 5", 2, "the following arguments are required: --out"),
    ("extend nothere --reps 5 --out grown", 2, "no such checkpoint or run directory"),
    ("extend corrupt --reps 5 --out grown", 2, "checksum mismatch"),
    ("extend run --reps abc --out grown", 2, "invalid int value: 'abc'"),
    ("extend run --reps 0 --out grown", 2, "--reps must be a positive integer, got 0"),
    ("extend run --reps 2 --out grown", 2, "cannot shrink layer0 from reps 3 to 2"),
    ("extend run --reps 5 --layer layer7 --out grown", 2, "'layer7' is not a kan layer"),
    ("extend run --reps 5 --out run", 2, "'run' already holds a run or a saved model; choose another --out"),
    ("extend run --reps 5 --out {R}", 2, "it is a file, not a folder"),
]


@pytest.mark.parametrize("line, status, fragment", CLI, ids=[c[0] for c in CLI])
def test_cli_mistake(work, capsys, line, status, fragment):
    argv = line.replace("{R}", REGRESSION).replace("{D}", DIGITS).replace("{H}", HQKAN).split()
    code = main(argv)
    out, err = capsys.readouterr()
    text = out + err
    assert code == status, text
    assert fragment in text, text
    assert "Traceback" not in text


def _model():
    return qvaf.compile("regression")


def _catalyst_apply(**kw):
    from qvaf.compiler.backends import get_backend

    model = _model()
    return get_backend("catalyst").build(model.ir, "float32").apply(model.init(0), np.zeros((2, 2)), **kw)


#: (name, call, fragment): each call must raise a QvafError whose message holds the fragment
API = [
    ("load(int)", lambda: qvaf.load(123), "a spec is a path or a bundled model name, not int"),
    ("load('')", lambda: qvaf.load(""), "empty spec path"),
    ("load(dir)", lambda: qvaf.load("adir"), "is a directory"),
    ("load(misspelled)", lambda: qvaf.load("regresion"), "did you mean 'regression'?"),
    ("compile(dtype)", lambda: qvaf.compile("regression", dtype="float16"), "unknown dtype 'float16'"),
    ("compile(backend)", lambda: qvaf.compile("regression", backend="torch"), "unknown backend 'torch'"),
    ("compile(model)", lambda: qvaf.compile("regression", model="nope"), "no model named 'nope'"),
    ("compile(several)", lambda: qvaf.compile("two.qvaf"), "choose one with model=NAME"),
    ("compile(args str)", lambda: qvaf.compile("digits", args="hidden=3"), "args must be a dict"),
    ("compile(args text)", lambda: qvaf.compile("digits", args={"hidden": "3"}), "got the text '3'"),
    ("compile(overrides)", lambda: qvaf.compile("regression", ansatz_overrides={"*": 3}),
     "ansatz_overrides must map a kan layer id"),
    ("compile(reps 0)", lambda: qvaf.compile("regression", ansatz_overrides={"*": {"reps": 0}}), "'w'"),
    ("init(str)", lambda: _model().init("seed"), "init takes a jax.random key"),
    ("init(float)", lambda: _model().init(1.5), "init takes a jax.random key"),
    ("apply(str)", lambda: _model().apply(_model().init(0), "x"), "apply takes inputs as an array"),
    ("apply(shape)", lambda: _model().apply(_model().init(0), np.zeros((3, 5))), "input must have shape [batch, 2]"),
    ("apply(params)", lambda: _model().apply({}, np.zeros((3, 2))), "params is missing layer0.theta"),
    ("edge_values(index)", lambda: _model().edge_values(_model().init(0), np.zeros((1, 2)), 7),
     "layer index 7 is out of range"),
    ("TrainConfig(step)", lambda: qvaf.TrainConfig(step=100), "did you mean 'steps'?"),
    ("TrainConfig(lr str)", lambda: qvaf.TrainConfig(lr="0.1"), "write lr=0.1"),
    ("TrainConfig(noise)", lambda: qvaf.TrainConfig(noise={"depolarising": 0.1}), "unknown noise field"),
    ("TrainConfig(shots)", lambda: qvaf.TrainConfig(shots=1.5), "shots must be an integer"),
    ("NoiseModel(p)", lambda: qvaf.NoiseModel(amplitude_damping=-0.1), "is a probability in [0, 1]"),
    ("NoiseModel(where)", lambda: qvaf.NoiseModel(where="everywhere"), "not a placement"),
    ("calibration(T2)", lambda: qvaf.NoiseModel.from_calibration(t1=1, t2=3, gate_time=0.1), "T2 <= 2 T1"),
    ("apply(shots key)", lambda: _model().apply(_model().init(0), np.zeros((3, 2)), shots=100), "pass a key too"),
    ("with_noise(bad)", lambda: _model().with_noise(3), "a noise model is a dict"),
    ("with_noise(reference)", lambda: qvaf.compile("regression", backend="reference", dtype="float64")
     .with_noise("depolarizing=0.1"), "does not simulate noise"),
    ("fit(model str)", lambda: qvaf.fit("regression", None, "toy_sin2"), "fit trains a model with apply"),
    ("fit(no params)", lambda: qvaf.fit(_model(), None, "toy_sin2"), "fit needs the model's parameters"),
    ("fit(dataset)", lambda: qvaf.fit(_model(), _model().init(0), 42), "fit trains on a Dataset"),
    ("fit(config)", lambda: qvaf.fit(_model(), _model().init(0), "toy_sin2", 3), "config must be a TrainConfig"),
    ("TrainConfig(devices)", lambda: qvaf.TrainConfig(devices=4), "pass it to fit(..., devices=N)"),
    ("fit(devices 0)", lambda: qvaf.fit(_model(), _model().init(0), "toy_sin2", devices=0),
     "devices must be a positive integer (the number of devices), got 0"),
    ("fit(devices str)", lambda: qvaf.fit(_model(), _model().init(0), "toy_sin2", devices="4"),
     "devices must be a positive integer (the number of devices), got '4'"),
    ("fit(devices many)", lambda: qvaf.fit(_model(), _model().init(0), "toy_sin2", devices=4096),
     "devices 4096: JAX sees"),
    ("load_task(name)", lambda: qvaf.load_task("nope"), "unknown task 'nope'"),
    ("load_task(n_train)", lambda: qvaf.load_task("toy_sin2", n_train="10"), "n_train must be an integer"),
    ("evaluate(kind)", lambda: qvaf.evaluate(_model(), _model().init(0), np.zeros((2, 2)), np.zeros((2, 1)),
                                             "regresion"), "unknown kind 'regresion'"),
    ("extend(0)", lambda: qvaf.extend(_model(), _model().init(0), 0), "new_reps must be a positive integer"),
    ("hqkan(d)", lambda: qvaf.hqkan(d="64"), "d must be a positive integer"),
    ("hqkan(ansatz)", lambda: qvaf.hqkan(d=64, ansatz="rpz"), "pass it as spec="),
    ("hqkan(typo)", lambda: qvaf.hqkan(d=64, hiden=4), "did you mean 'hidden'?"),
    ("save(dir None)", lambda: qvaf.save(None, _model(), _model().init(0)), "pass its path"),
    ("save(params)", lambda: qvaf.save("s1", _model(), None), "params do not fit the model"),
    ("save(run)", lambda: qvaf.save("run", _model(), _model().init(0)), "holds a training run"),
    ("restore(None)", lambda: qvaf.restore(None), "pass its path"),
    ("restore(file)", lambda: qvaf.restore("empty.qvaf"), "not a checkpoint"),
    ("restore(corrupt)", lambda: qvaf.restore("corrupt"), "checksum mismatch"),
    ("catalyst(shots=0)", lambda: _catalyst_apply(shots=0), "shots must be a positive integer, got 0"),
    ("catalyst(shots=1.5)", lambda: _catalyst_apply(shots=1.5), "shots must be a positive integer"),
    ("catalyst(key only)", lambda: _catalyst_apply(key=np.zeros(2, np.uint32)), "pass shots=S with it"),
]


@pytest.mark.parametrize("name, call, fragment", API, ids=[c[0] for c in API])
def test_api_mistake(work, name, call, fragment):
    with pytest.raises(QvafError) as info:
        call()
    assert fragment in str(info.value)
