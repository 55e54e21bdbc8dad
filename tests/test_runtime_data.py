"""Datasets: formula tasks, the Feynman catalogue, digits, IDX files, CSV and NPZ, and the
errors for bad names and bad files."""

from __future__ import annotations

import gzip
import math
import struct

import numpy as np
import pytest

from qvaf import QvafError
from qvaf.runtime import data as D
from qvaf.runtime.feynman import FEYNMAN, FORMULAS


def test_toy_functions_take_known_values():
    f = FORMULAS["toy_expsin"]
    x = np.array([[0.5, 0.0], [0.0, 1.0], [-0.5, 0.5]])
    np.testing.assert_allclose(f(x), [math.e, math.e, math.exp(-1 + 0.25)], rtol=1e-14)
    b = FORMULAS["toy_bessel"]
    # J0(0) = 1; first zero of J0 at 2.404825557695773
    np.testing.assert_allclose(b(np.array([[0.0], [2.404825557695773 / 20]])), [1.0, 0.0], atol=1e-12)
    assert FORMULAS["toy_mul"](np.array([[0.3, -0.5]]))[0] == pytest.approx(-0.15)


@pytest.mark.parametrize("formula", FEYNMAN, ids=lambda f: f.name)
def test_feynman_formulas_are_finite_on_their_ranges(formula):
    ds = D.load_task(formula.name, n_train=200, n_test=50)
    assert ds.kind == "regression" and ds.in_width == formula.dim
    lo = np.array([v[1] for v in formula.variables])
    hi = np.array([v[2] for v in formula.variables])
    assert np.all(ds.x_train >= lo) and np.all(ds.x_train <= hi)
    assert np.all(np.isfinite(ds.y_train)) and np.all(np.isfinite(ds.y_test))
    assert np.std(ds.y_train) > 0


def test_feynman_spot_values():
    def at(name, *values):
        return float(FORMULAS[name](np.array([values], dtype=float))[0])

    # relativistic velocity addition: u + v at u = v = c gives c
    assert at("feynman:I.16.6", 3.0, 3.0, 3.0) == pytest.approx(3.0)
    # Snell-like arcsin(n sin t) at n = 1 is t on [0, pi/2]
    assert at("feynman:I.26.2", 1.0, 1.2) == pytest.approx(1.2)
    # law of cosines with theta1 = theta2 gives |x1 - x2|
    assert at("feynman:I.29.16", 4.0, 1.5, 2.0, 2.0) == pytest.approx(2.5)
    # the normal density at 0 with sigma 1: 1/sqrt(2 pi); I.6.2a at theta = 1
    assert at("feynman:I.6.2a", 1.0) == pytest.approx(math.exp(-0.5) / math.sqrt(2 * math.pi))
    # III.9.52 at omega = omega0 is the limit p E t / h (sinc(0) = 1)
    assert at("feynman:III.9.52", 2.0, 3.0, 1.5, 4.0, 2.0, 2.0) == pytest.approx(2 * 3 * 1.5 / 4)
    # I.30.3 with n = 1 is Int_0
    assert at("feynman:I.30.3", 2.5, 1.3, 1.0) == pytest.approx(2.5)


def test_formula_tasks_are_deterministic_in_the_data_seed():
    a, b = D.load_task("toy_expsin"), D.load_task("toy_expsin")
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert a.sizes() == {"train": 1000, "val": 200, "test": 1000}
    c = D.load_task("toy_expsin", data_seed=1)
    assert not np.array_equal(a.x_train, c.x_train)
    d = D.load_task("toy_mul", n_train=300, n_test=100)
    assert d.sizes()["train"] == 300 and d.sizes()["test"] == 100


def test_digits_split_is_80_20_and_scaled():
    ds = D.load_task("digits")
    n = sum(ds.sizes().values())
    assert n == 1797
    assert ds.sizes()["test"] == round(0.2 * 1797)
    assert ds.x_train.min() >= 0 and ds.x_train.max() <= 1 and ds.x_train.max() == 1
    assert ds.kind == "classification" and ds.n_classes == 10 and ds.out_width == 10
    again = D.load_task("digits")
    assert np.array_equal(ds.x_test, again.x_test)
    # train, val and test are disjoint: no test image appears in train (digits has few duplicates)
    train_rows = {r.tobytes() for r in ds.x_train}
    overlap = sum(r.tobytes() in train_rows for r in ds.x_test)
    assert overlap <= 3


def _idx_bytes(array: np.ndarray) -> bytes:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">f4"): 0x0D}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def _write_mnist(directory, n_train=30, n_test=10, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    files = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 4, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        for kind, arr in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
            name = f"{prefix}-{kind}" + (".gz" if gz else "")
            raw = _idx_bytes(arr)
            (directory / name).write_bytes(gzip.compress(raw) if gz else raw)
            files[(prefix, kind)] = arr
    return files


@pytest.mark.parametrize("gz", [True, False])
def test_idx_reader_round_trip(tmp_path, gz):
    files = _write_mnist(tmp_path, gz=gz)
    ds = D.load_task(f"idx:{tmp_path}", val_fraction=0.2)
    assert ds.sizes() == {"train": 24, "val": 6, "test": 10}
    assert ds.in_width == 12
    np.testing.assert_allclose(ds.x_test, files[("t10k", "images-idx3-ubyte")].reshape(10, 12) / 255.0)
    np.testing.assert_array_equal(ds.y_test, files[("t10k", "labels-idx1-ubyte")])
    whole = np.concatenate([ds.x_train, ds.x_val])
    ref = files[("train", "images-idx3-ubyte")].reshape(30, 12) / 255.0
    assert sorted(map(bytes, (whole * 255).round().astype(np.uint8))) == sorted(map(bytes, (ref * 255).round().astype(np.uint8)))
    f32 = np.arange(6, dtype=">f4").reshape(2, 3)
    (tmp_path / "f.idx").write_bytes(_idx_bytes(f32))
    np.testing.assert_array_equal(D.read_idx(tmp_path / "f.idx"), f32)


def test_idx_errors_name_the_file(tmp_path):
    _write_mnist(tmp_path, gz=False)
    p = tmp_path / "train-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-5])
    with pytest.raises(QvafError, match="train-images-idx3-ubyte: IDX header says"):
        D.load_task(f"idx:{tmp_path}")
    p.write_bytes(b"\x12\x34\x08\x01garbage")
    with pytest.raises(QvafError, match="train-images-idx3-ubyte: not an IDX file"):
        D.load_task(f"idx:{tmp_path}")
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    _write_mnist(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(QvafError, match="missing IDX file 't10k-labels-idx1-ubyte'"):
        D.load_task(f"idx:{tmp_path}")
    with pytest.raises(QvafError, match="not a directory"):
        D.load_task(f"idx:{tmp_path}/nope")
    # labels that do not match the images
    _write_mnist(tmp_path, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(7, np.uint8)))
    with pytest.raises(QvafError, match=r"30 images .* do not match"):
        D.load_task(f"idx:{tmp_path}")
    # a corrupt gzip
    (tmp_path / "x.gz").write_bytes(b"not gzip")
    with pytest.raises(QvafError, match="x.gz: cannot read IDX file"):
        D.read_idx(tmp_path / "x.gz")


def test_csv_task_with_header_and_target_column(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    y = x[:, 0] * 2 - x[:, 2]
    p = tmp_path / "d.csv"
    rows = ["a,b,target,c"] + [f"{r[0]},{r[1]},{t},{r[2]}" for r, t in zip(x, y)]
    p.write_text("\n".join(rows) + "\n")
    ds = D.load_task(f"csv:{p}", target_col=2)
    assert ds.in_width == 3 and ds.kind == "regression" and sum(ds.sizes().values()) == 50
    allx = np.concatenate([ds.x_train, ds.x_val, ds.x_test])
    ally = np.concatenate([ds.y_train, ds.y_val, ds.y_test])[:, 0]
    np.testing.assert_allclose(ally, allx[:, 0] * 2 - allx[:, 2], atol=1e-12)
    labels = tmp_path / "l.csv"
    labels.write_text("\n".join(f"{a},{b},{int(a > 0)}" for a, b in rng.normal(size=(40, 2))))
    ds = D.load_task(f"csv:{labels}", classify=True)
    assert ds.kind == "classification" and ds.n_classes == 2


@pytest.mark.parametrize("content, msg", [
    ("1,2,3\n4,5\n", "data row 2 has 2 columns, expected 3"),
    ("1,2,3\n4,x,6\n", "data row 2 holds a non-numeric value"),
    ("a,b\n", "no data rows"),
    ("1\n2\n3\n", "need at least two columns"),
])
def test_malformed_csv_names_the_file(tmp_path, content, msg):
    p = tmp_path / "bad.csv"
    p.write_text(content)
    with pytest.raises(QvafError, match=f"bad.csv: {msg}"):
        D.load_task(f"csv:{p}")


def test_npz_task_and_its_errors(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "d.npz"
    np.savez(p, x=rng.normal(size=(40, 5)), y=rng.integers(0, 3, 40))
    ds = D.load_task(f"npz:{p}")
    assert ds.kind == "classification" and ds.n_classes <= 3 and ds.in_width == 5
    np.savez(p, x=rng.normal(size=(40, 5)), y=rng.normal(size=(40, 2)))
    ds = D.load_task(f"npz:{p}")
    assert ds.kind == "regression" and ds.out_width == 2
    np.savez(p, x=rng.normal(size=(40, 5)), y=rng.normal(size=39))
    with pytest.raises(QvafError, match="d.npz: 40 samples in x but 39 in y"):
        D.load_task(f"npz:{p}")
    np.savez(p, inputs=rng.normal(size=(4, 5)))
    with pytest.raises(QvafError, match=r"d.npz: missing array\(s\) \['x', 'y'\]"):
        D.load_task(f"npz:{p}")
    p.write_bytes(b"garbage")
    with pytest.raises(QvafError, match="d.npz: not a readable .npz file"):
        D.load_task(f"npz:{p}")
    np.savez(p, x=np.array([object()] * 4, dtype=object), y=np.zeros(4))
    with pytest.raises(QvafError, match="d.npz"):
        D.load_task(f"npz:{p}")
    with pytest.raises(QvafError, match="nope.npz: no such file"):
        D.load_task(f"npz:{tmp_path}/nope.npz")
    with pytest.raises(QvafError, match="nope.csv: no such file"):
        D.load_task(f"csv:{tmp_path}/nope.csv")


def test_unknown_task_lists_the_choices():
    with pytest.raises(QvafError, match=r"unknown task 'toy_expsn'\. Did you mean toy_expsin.*Choices: .*digits.*csv:PATH"):
        D.load_task("toy_expsn")
    names = dict(D.describe_tasks())
    assert "feynman:I.6.2" in names and "digits" in names and "idx:DIR" in names
    assert len(FEYNMAN) >= 20
