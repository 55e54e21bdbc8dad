"""Datasets, all offline: formula regression, 8x8 digits, IDX (MNIST-style) files, CSV and NPZ.

A task name selects one (``qvaf tasks`` lists them)::

    toy_expsin, toy_mul, toy_bessel, ...   KAN-paper toy functions (inputs on [-1, 1])
    feynman:I.6.2, feynman:II.11.27, ...   the Feynman equations (see qvaf.runtime.feynman)
    digits                                 scikit-learn's bundled 8x8 digits, 80/20 split
    idx:DIR                                MNIST / Fashion-MNIST IDX files in DIR (.gz or not)
    csv:PATH                               a CSV of numbers; the target column by --target-col
    npz:PATH                               an .npz with arrays ``x`` [N, d] and ``y`` [N] or [N, k]

Every task returns a :class:`Dataset` with train/validation/test splits as numpy arrays.
Splits are deterministic functions of ``data_seed``, independent of the training seed.
"""

from __future__ import annotations

import csv
import gzip
import os
import struct
import zipfile
from dataclasses import dataclass, replace

import numpy as np

from qvaf.dsl.errors import QvafError

from .feynman import FORMULAS


class DataError(QvafError):
    """A task name, data file or split is unusable."""


@dataclass(frozen=True)
class Dataset:
    """Train/validation/test arrays of one task.

    ``kind`` is ``"regression"`` (``y`` float [N, out]) or ``"classification"`` (``y`` int
    labels [N], ``n_classes`` classes). ``x`` arrays are float64 [N, in].
    """

    name: str
    kind: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int | None = None
    description: str = ""

    @property
    def in_width(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def out_width(self) -> int:
        """Width the model's output must have: classes, or regression targets."""
        return int(self.n_classes) if self.kind == "classification" else int(self.y_train.shape[1])

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.x_train), "val": len(self.x_val), "test": len(self.x_test)}


# ----------------------------------------------------------------------------- splitting


def split(name: str, kind: str, x: np.ndarray, y: np.ndarray, *, test_fraction: float,
          val_fraction: float, seed: int, n_classes: int | None = None, description: str = "") -> Dataset:
    """Shuffle with ``seed`` and cut into train / validation / test.

    The test part is ``test_fraction`` of all samples; the validation part is
    ``val_fraction`` of what remains (so the train/test ratio stays as asked).
    """
    n = len(x)
    if not 0 < test_fraction < 1 or not 0 <= val_fraction < 1:
        raise DataError(f"{name}: split fractions must lie in (0, 1); got test {test_fraction}, val {val_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    n_val = int(round((n - n_test) * val_fraction))
    n_train = n - n_test - n_val
    if n_train < 1 or n_test < 1:
        raise DataError(f"{name}: {n} samples are too few to split (train {n_train}, test {n_test})")
    tr, va, te = perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:]
    return Dataset(name, kind, x[tr], y[tr], x[va], y[va], x[te], y[te], n_classes, description)


def _carve_val(ds: Dataset, val_fraction: float, seed: int) -> Dataset:
    """Take a validation part out of an existing train split (IDX files come pre-split)."""
    n = len(ds.x_train)
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    tr, va = perm[n_val:], perm[:n_val]
    return replace(ds, x_train=ds.x_train[tr], y_train=ds.y_train[tr],
                   x_val=ds.x_train[va], y_val=ds.y_train[va])


# ----------------------------------------------------------------------------- formula tasks


def formula_task(name: str, *, n_train: int = 1000, n_val: int = 200, n_test: int = 1000,
                 noise: float = 0.0, seed: int = 0) -> Dataset:
    """Samples of a catalogue formula (``qvaf.runtime.feynman.FORMULAS``), inputs uniform
    on each variable's range, targets exact (plus Gaussian ``noise`` on train/val only)."""
    f = FORMULAS[name]
    rng = np.random.default_rng(seed)
    lo = np.array([v[1] for v in f.variables], dtype=np.float64)
    hi = np.array([v[2] for v in f.variables], dtype=np.float64)

    def draw(n):
        x = lo + (hi - lo) * rng.random((n, f.dim))
        return x, f(x)[:, None]

    (xtr, ytr), (xva, yva), (xte, yte) = draw(n_train), draw(n_val), draw(n_test)
    if noise:
        ytr = ytr + noise * rng.standard_normal(ytr.shape)
        yva = yva + noise * rng.standard_normal(yva.shape)
    return Dataset(name, "regression", xtr, ytr, xva, yva, xte, yte,
                   description=f"y = {f.text}; " + ", ".join(f"{v} ~ U({a:g}, {b:g})" for v, a, b in f.variables))


# ----------------------------------------------------------------------------- digits


def digits_task(*, val_fraction: float = 0.1, seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 digits (1797 images, bundled, offline), pixels scaled to [0, 1],
    80/20 train/test split with a fixed seed; validation taken out of the train part."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.asarray(d.data, dtype=np.float64) / 16.0
    y = np.asarray(d.target, dtype=np.int32)
    return split("digits", "classification", x, y, test_fraction=0.2, val_fraction=val_fraction,
                 seed=seed, n_classes=10, description="8x8 digits (scikit-learn), pixels in [0, 1]")


# ----------------------------------------------------------------------------- IDX files


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (the MNIST format; ``.gz`` compressed or not) into an array."""
    path = os.fspath(path)
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    count = int(np.prod(shape)) if ndim else 1
    body = raw[4 + 4 * ndim:]
    if len(body) != count * dtype.itemsize:
        raise DataError(f"{path}: IDX header says {shape} ({count * dtype.itemsize} bytes of data) "
                        f"but the file holds {len(body)} bytes")
    return np.frombuffer(body, dtype=dtype).reshape(shape)


def _find_idx(directory: str, stem: str) -> str:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        p = os.path.join(directory, name)
        if os.path.exists(p):
            return p
    raise DataError(f"{directory}: missing IDX file '{stem}' (or '{stem}.gz')")


def idx_task(directory: str, *, val_fraction: float = 0.1, seed: int = 0, name: str | None = None) -> Dataset:
    """MNIST or Fashion-MNIST from ``directory`` holding the four standard files
    (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
    ``t10k-labels-idx1-ubyte``, each optionally ``.gz``). Pixels scaled to [0, 1] and images
    flattened; the test files are the test split."""
    if not os.path.isdir(directory):
        raise DataError(f"{directory}: not a directory (idx:DIR needs the folder with the IDX files)")
    parts = {}
    for split_name, prefix in (("train", "train"), ("test", "t10k")):
        ip = _find_idx(directory, f"{prefix}-images-idx3-ubyte")
        lp = _find_idx(directory, f"{prefix}-labels-idx1-ubyte")
        images, labels = read_idx(ip), read_idx(lp)
        if images.ndim < 2 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"{ip}: {len(images)} images of shape {images.shape[1:]} do not match "
                            f"{lp} ({labels.shape} labels)")
        x = images.reshape(len(images), -1).astype(np.float64)
        if images.dtype == np.uint8:
            x /= 255.0
        parts[split_name] = (x, labels.astype(np.int32))
    (xtr, ytr), (xte, yte) = parts["train"], parts["test"]
    if xtr.shape[1] != xte.shape[1]:
        raise DataError(f"{directory}: train images have {xtr.shape[1]} pixels, test images {xte.shape[1]}")
    n_classes = int(max(ytr.max(initial=0), yte.max(initial=0))) + 1
    empty = np.zeros((0, xtr.shape[1]))
    ds = Dataset(name or f"idx:{directory}", "classification", xtr, ytr, empty, ytr[:0], xte, yte,
                 n_classes, f"IDX images from {directory}")
    return _carve_val(ds, val_fraction, seed) if val_fraction else ds


# ----------------------------------------------------------------------------- user data


def _user_xy(path: str, x: np.ndarray, y: np.ndarray, *, classify: bool, val_fraction: float,
             test_fraction: float, seed: int, name: str) -> Dataset:
    if x.ndim != 2 or x.shape[0] == 0:
        raise DataError(f"{path}: x must be a non-empty 2-D array [samples, features]; got shape {x.shape}")
    if y.shape[0] != x.shape[0]:
        raise DataError(f"{path}: {x.shape[0]} samples in x but {y.shape[0]} in y")
    if not np.all(np.isfinite(x)):
        raise DataError(f"{path}: x holds NaN or infinite values")
    if classify:
        if y.ndim != 1 or not np.all(np.isfinite(y)) or np.any(y != np.round(y)) or y.min() < 0:
            raise DataError(f"{path}: classification targets must be non-negative integer labels")
        y = y.astype(np.int32)
        return split(name, "classification", x, y, test_fraction=test_fraction, val_fraction=val_fraction,
                     seed=seed, n_classes=int(y.max()) + 1, description=f"user data from {path}")
    y = y.reshape(len(y), -1).astype(np.float64)
    if not np.all(np.isfinite(y)):
        raise DataError(f"{path}: y holds NaN or infinite values")
    return split(name, "regression", x, y, test_fraction=test_fraction, val_fraction=val_fraction,
                 seed=seed, description=f"user data from {path}")


def csv_task(path: str, *, target_col: int = -1, classify: bool = False, val_fraction: float = 0.1,
             test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """A CSV of numbers (an optional header row of names is skipped); column ``target_col``
    (negative counts from the end) is the target, the others the inputs."""
    try:
        with open(path, newline="") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read CSV ({exc})") from None
    if rows:
        try:
            [float(c) for c in rows[0]]
        except ValueError:
            rows = rows[1:]  # header
    if not rows:
        raise DataError(f"{path}: no data rows")
    width = len(rows[0])
    values = []
    for lineno, r in enumerate(rows, 1):
        if len(r) != width:
            raise DataError(f"{path}: data row {lineno} has {len(r)} columns, expected {width}")
        try:
            values.append([float(c) for c in r])
        except ValueError:
            raise DataError(f"{path}: data row {lineno} holds a non-numeric value: {r}") from None
    table = np.array(values, dtype=np.float64)
    if width < 2:
        raise DataError(f"{path}: need at least two columns (inputs and a target)")
    if not -width <= target_col < width:
        raise DataError(f"{path}: target column {target_col} out of range for {width} columns")
    col = target_col % width
    x = np.delete(table, col, axis=1)
    return _user_xy(path, x, table[:, col], classify=classify, val_fraction=val_fraction,
                    test_fraction=test_fraction, seed=seed, name=f"csv:{path}")


def npz_task(path: str, *, classify: bool | None = None, val_fraction: float = 0.1,
             test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """An ``.npz`` with arrays ``x`` [N, d] and ``y`` [N] / [N, k]; integer ``y`` of shape [N]
    means classification unless ``classify`` says otherwise."""
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("x", "y") if k not in z.files]
            if missing:
                raise DataError(f"{path}: missing array(s) {missing}; an npz task needs 'x' and 'y' "
                                f"(found {sorted(z.files)})")
            x, y = np.asarray(z["x"]), np.asarray(z["y"])
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    if x.dtype.kind not in "biuf" or y.dtype.kind not in "biuf":
        raise DataError(f"{path}: x and y must be numeric arrays (got {x.dtype}, {y.dtype})")
    if classify is None:
        classify = y.ndim == 1 and y.dtype.kind in "biu"
    return _user_xy(path, x.astype(np.float64), y, classify=classify, val_fraction=val_fraction,
                    test_fraction=test_fraction, seed=seed, name=f"npz:{path}")


# ----------------------------------------------------------------------------- registry


def task_names() -> list[str]:
    """Every built-in task name (file-backed tasks are written ``idx:DIR``, ``csv:PATH``, ``npz:PATH``)."""
    return list(FORMULAS) + ["digits"]


def describe_tasks() -> list[tuple[str, str]]:
    """(name, one-line description) for ``qvaf tasks``."""
    out = [(f.name, f"regression, {f.dim} input{'s' if f.dim > 1 else ''}: y = {f.text}") for f in FORMULAS.values()]
    out.append(("digits", "classification, 64 inputs, 10 classes: scikit-learn 8x8 digits, 80/20 split"))
    out.append(("idx:DIR", "classification: MNIST / Fashion-MNIST IDX files (.gz ok) in DIR"))
    out.append(("csv:PATH", "a CSV of numbers; target column by --target-col (default last)"))
    out.append(("npz:PATH", "an .npz with arrays x [N, d] and y [N] (labels) or [N, k] (targets)"))
    return out


def load_task(name: str, *, data_seed: int = 0, n_train: int | None = None, n_test: int | None = None,
              val_fraction: float = 0.1, target_col: int = -1, classify: bool | None = None,
              noise: float = 0.0) -> Dataset:
    """Build the dataset a task name selects (see the module docstring).

    Raises:
        DataError: unknown task (the message lists the choices), missing or malformed files,
            or an option the task does not take.
    """
    _check_options(name, data_seed=data_seed, n_train=n_train, n_test=n_test, val_fraction=val_fraction,
                   target_col=target_col, classify=classify, noise=noise)
    if name in FORMULAS:
        kw = {}
        if n_train is not None:
            kw["n_train"] = n_train
            kw["n_val"] = max(1, int(round(n_train * val_fraction / max(1e-9, 1 - val_fraction))))
        if n_test is not None:
            kw["n_test"] = n_test
        return formula_task(name, noise=noise, seed=data_seed, **kw)
    if name == "digits":
        return digits_task(val_fraction=val_fraction, seed=data_seed)
    prefix, _, arg = name.partition(":")
    if arg and prefix == "idx":
        return idx_task(arg, val_fraction=val_fraction, seed=data_seed)
    if arg and prefix == "csv":
        return csv_task(arg, target_col=target_col, classify=bool(classify), val_fraction=val_fraction,
                        seed=data_seed)
    if arg and prefix == "npz":
        return npz_task(arg, classify=classify, val_fraction=val_fraction, seed=data_seed)
    import difflib

    close = difflib.get_close_matches(name, task_names(), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise DataError(f"unknown task '{name}'.{hint} Choices: {', '.join(task_names())}, "
                    f"idx:DIR, csv:PATH, npz:PATH (`qvaf tasks` describes them)")


def _check_options(name, *, data_seed, n_train, n_test, val_fraction, target_col, classify, noise) -> None:
    """Refuse options of the wrong type or range, and options the task would ignore."""
    if not isinstance(name, str):
        raise DataError(f"a task is named by a string (`qvaf tasks` lists them), not {type(name).__name__}")

    def integer(label, v, low):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < low:
            raise DataError(f"{label} must be an integer >= {low}, got {v!r}")

    integer("data_seed", data_seed, 0)
    for label, v in (("n_train", n_train), ("n_test", n_test)):
        if v is not None:
            integer(label, v, 1)
    if not isinstance(val_fraction, (int, float)) or not 0 <= val_fraction < 1:
        raise DataError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    if not isinstance(noise, (int, float)) or not noise >= 0:
        raise DataError(f"noise must be >= 0, got {noise!r}")
    integer("target_col", target_col, -(2**31))
    formula = name in FORMULAS
    kind = name.partition(":")[0] if ":" in name else name
    if not formula and (n_train is not None or n_test is not None or noise):
        raise DataError(f"n_train, n_test and noise apply to formula tasks (toy_*, feynman:*), not '{name}'")
    if target_col != -1 and kind != "csv":
        raise DataError(f"target_col applies to csv: tasks, not '{name}'")
    if classify is not None and kind not in ("csv", "npz"):
        raise DataError(f"classify applies to csv: and npz: tasks, not '{name}'")
