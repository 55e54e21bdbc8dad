"""Formula-regression catalogue: the KAN papers' toy functions and the Feynman equations.

Every entry is data: a name, the formula as readable text (for listings only, never
evaluated), its variables with sampling ranges, and a numpy function of the variables in
that order. Samples are drawn uniformly from the ranges by :mod:`qvaf.runtime.data`.

The Feynman entries are the equations of the AI Feynman benchmark (Udrescu & Tegmark 2020),
the set the KAN paper (Liu et al. 2024, Table 2) and the QKAN paper evaluate on, written with
their original variables. The ranges follow the AI Feynman equation table (most variables
uniform on [1, 5]); where a range would leave a formula undefined (a square root or arcsin of
an out-of-domain argument) the table keeps the dataset's narrower choice. This catalogue is
the definition the tasks here use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Formula:
    """One regression target ``y = fn(*variables)``.

    Attributes:
        name: task name (``"toy_expsin"``, ``"feynman:I.6.2"``).
        text: the formula for humans, e.g. ``"exp(sin(pi*x) + y**2)"``.
        variables: ``(name, low, high)`` per input, sampled uniformly.
        fn: numpy function of the variables (positional, in order) returning ``y``.
    """

    name: str
    text: str
    variables: tuple[tuple[str, float, float], ...]
    fn: Callable[..., np.ndarray]

    @property
    def dim(self) -> int:
        return len(self.variables)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Evaluate on samples ``x`` of shape [N, dim]; returns [N]."""
        return np.asarray(self.fn(*(x[:, i] for i in range(self.dim))), dtype=np.float64)


def _u(*names: str, lo: float = 1.0, hi: float = 5.0) -> tuple[tuple[str, float, float], ...]:
    return tuple((n, lo, hi) for n in names)


def _bessel_j0(x):
    from scipy.special import j0

    return j0(x)


pi = np.pi
sq = np.sqrt

#: The toy functions of the KAN paper (section 3.1), inputs uniform on [-1, 1].
TOY: tuple[Formula, ...] = (
    Formula("toy_bessel", "J0(20*x)", _u("x", lo=-1, hi=1), lambda x: _bessel_j0(20 * x)),
    Formula("toy_expsin", "exp(sin(pi*x) + y**2)", _u("x", "y", lo=-1, hi=1),
            lambda x, y: np.exp(np.sin(pi * x) + y**2)),
    Formula("toy_mul", "x*y", _u("x", "y", lo=-1, hi=1), lambda x, y: x * y),
    Formula("toy_exp4", "exp((sin(pi*(x1**2+x2**2)) + sin(pi*(x3**2+x4**2)))/2)",
            _u("x1", "x2", "x3", "x4", lo=-1, hi=1),
            lambda a, b, c, d: np.exp(0.5 * (np.sin(pi * (a**2 + b**2)) + np.sin(pi * (c**2 + d**2))))),
    Formula("toy_sin2", "sin(pi*x)*cos(pi*y)", _u("x", "y", lo=-1, hi=1),
            lambda x, y: np.sin(pi * x) * np.cos(pi * y)),
)

#: Equations of the AI Feynman benchmark with their variable ranges.
FEYNMAN: tuple[Formula, ...] = (
    Formula("feynman:I.6.2a", "exp(-theta**2/2)/sqrt(2*pi)", _u("theta", lo=1, hi=3),
            lambda t: np.exp(-t**2 / 2) / sq(2 * pi)),
    Formula("feynman:I.6.2", "exp(-(theta/sigma)**2/2)/(sqrt(2*pi)*sigma)", _u("sigma", "theta", lo=1, hi=3),
            lambda s, t: np.exp(-(t / s) ** 2 / 2) / (sq(2 * pi) * s)),
    Formula("feynman:I.6.2b", "exp(-((theta-theta1)/sigma)**2/2)/(sqrt(2*pi)*sigma)",
            _u("sigma", "theta", "theta1", lo=1, hi=3),
            lambda s, t, t1: np.exp(-((t - t1) / s) ** 2 / 2) / (sq(2 * pi) * s)),
    Formula("feynman:I.8.14", "sqrt((x2-x1)**2+(y2-y1)**2)", _u("x1", "x2", "y1", "y2"),
            lambda x1, x2, y1, y2: sq((x2 - x1) ** 2 + (y2 - y1) ** 2)),
    Formula("feynman:I.9.18", "G*m1*m2/((x2-x1)**2+(y2-y1)**2+(z2-z1)**2)",
            (("m1", 1, 2), ("m2", 1, 2), ("G", 1, 2), ("x1", 3, 4), ("x2", 1, 2),
             ("y1", 3, 4), ("y2", 1, 2), ("z1", 3, 4), ("z2", 1, 2)),
            lambda m1, m2, G, x1, x2, y1, y2, z1, z2:
            G * m1 * m2 / ((x2 - x1) ** 2 + (y2 - y1) ** 2 + (z2 - z1) ** 2)),
    Formula("feynman:I.10.7", "m0/sqrt(1-v**2/c**2)", (("m0", 1, 5), ("v", 1, 2), ("c", 3, 10)),
            lambda m0, v, c: m0 / sq(1 - v**2 / c**2)),
    Formula("feynman:I.11.19", "x1*y1+x2*y2+x3*y3", _u("x1", "x2", "x3", "y1", "y2", "y3"),
            lambda x1, x2, x3, y1, y2, y3: x1 * y1 + x2 * y2 + x3 * y3),
    Formula("feynman:I.12.2", "q1*q2/(4*pi*epsilon*r**2)", _u("q1", "q2", "epsilon", "r"),
            lambda q1, q2, e, r: q1 * q2 / (4 * pi * e * r**2)),
    Formula("feynman:I.12.11", "q*(Ef+B*v*sin(theta))", _u("q", "Ef", "B", "v", "theta"),
            lambda q, ef, b, v, t: q * (ef + b * v * np.sin(t))),
    Formula("feynman:I.13.12", "G*m1*m2*(1/r2-1/r1)", _u("m1", "m2", "r1", "r2", "G"),
            lambda m1, m2, r1, r2, G: G * m1 * m2 * (1 / r2 - 1 / r1)),
    Formula("feynman:I.14.4", "k_spring*x**2/2", _u("k_spring", "x"),
            lambda k, x: k * x**2 / 2),
    Formula("feynman:I.15.3x", "(x-u*t)/sqrt(1-u**2/c**2)",
            (("x", 5, 10), ("u", 1, 2), ("c", 3, 20), ("t", 1, 2)),
            lambda x, u, c, t: (x - u * t) / sq(1 - u**2 / c**2)),
    Formula("feynman:I.16.6", "(u+v)/(1+u*v/c**2)", _u("c", "v", "u"),
            lambda c, v, u: (u + v) / (1 + u * v / c**2)),
    Formula("feynman:I.18.4", "(m1*r1+m2*r2)/(m1+m2)", _u("m1", "m2", "r1", "r2"),
            lambda m1, m2, r1, r2: (m1 * r1 + m2 * r2) / (m1 + m2)),
    Formula("feynman:I.24.6", "m*(omega**2+omega_0**2)*x**2/4", _u("m", "omega", "omega_0", "x"),
            lambda m, w, w0, x: m * (w**2 + w0**2) * x**2 / 4),
    Formula("feynman:I.26.2", "arcsin(n*sin(theta2))", (("n", 0, 1), ("theta2", 1, 5)),
            lambda n, t2: np.arcsin(n * np.sin(t2))),
    Formula("feynman:I.27.6", "1/(1/d1+n/d2)", _u("d1", "d2", "n"),
            lambda d1, d2, n: 1 / (1 / d1 + n / d2)),
    Formula("feynman:I.29.16", "sqrt(x1**2+x2**2-2*x1*x2*cos(theta1-theta2))",
            _u("x1", "x2", "theta1", "theta2"),
            lambda x1, x2, t1, t2: sq(x1**2 + x2**2 - 2 * x1 * x2 * np.cos(t1 - t2))),
    Formula("feynman:I.30.3", "Int_0*sin(n*theta/2)**2/sin(theta/2)**2", _u("Int_0", "theta", "n"),
            lambda i0, t, n: i0 * np.sin(n * t / 2) ** 2 / np.sin(t / 2) ** 2),
    Formula("feynman:I.30.5", "arcsin(lambd/(n*d))", (("lambd", 1, 2), ("d", 2, 5), ("n", 1, 5)),
            lambda lam, d, n: np.arcsin(lam / (n * d))),
    Formula("feynman:I.37.4", "I1+I2+2*sqrt(I1*I2)*cos(delta)", _u("I1", "I2", "delta"),
            lambda i1, i2, d: i1 + i2 + 2 * sq(i1 * i2) * np.cos(d)),
    Formula("feynman:I.40.1", "n_0*exp(-m*g*x/(kb*T))", _u("n_0", "m", "x", "T", "g", "kb"),
            lambda n0, m, x, T, g, kb: n0 * np.exp(-m * g * x / (kb * T))),
    Formula("feynman:I.44.4", "n*kb*T*ln(V2/V1)", _u("n", "kb", "T", "V1", "V2"),
            lambda n, kb, T, v1, v2: n * kb * T * np.log(v2 / v1)),
    Formula("feynman:I.50.26", "x1*(cos(omega*t)+alpha*cos(omega*t)**2)", _u("x1", "omega", "t", "alpha", lo=1, hi=3),
            lambda x1, w, t, a: x1 * (np.cos(w * t) + a * np.cos(w * t) ** 2)),
    Formula("feynman:II.2.42", "kappa*(T2-T1)*A/d", _u("kappa", "T1", "T2", "A", "d"),
            lambda k, t1, t2, A, d: k * (t2 - t1) * A / d),
    Formula("feynman:II.6.15a", "p_d/(4*pi*epsilon)*3*z/r**5*sqrt(x**2+y**2)",
            _u("epsilon", "p_d", "r", "x", "y", "z"),
            lambda e, p, r, x, y, z: p / (4 * pi * e) * 3 * z / r**5 * sq(x**2 + y**2)),
    Formula("feynman:II.11.7", "n_0*(1+p_d*Ef*cos(theta)/(kb*T))", _u("n_0", "kb", "T", "theta", "p_d", "Ef"),
            lambda n0, kb, T, t, p, ef: n0 * (1 + p * ef * np.cos(t) / (kb * T))),
    Formula("feynman:II.11.27", "n*alpha/(1-n*alpha/3)*epsilon*Ef",
            (("n", 0, 1), ("alpha", 0, 1), ("epsilon", 1, 2), ("Ef", 1, 2)),
            lambda n, a, e, ef: n * a / (1 - n * a / 3) * e * ef),
    Formula("feynman:II.35.18", "n_0/(exp(mom*B/(kb*T))+exp(-mom*B/(kb*T)))", _u("n_0", "kb", "T", "mom", "B"),
            lambda n0, kb, T, m, B: n0 / (np.exp(m * B / (kb * T)) + np.exp(-m * B / (kb * T)))),
    Formula("feynman:II.36.38", "mom*H/(kb*T)+(mom*alpha)/(epsilon*c**2*kb*T)*M",
            _u("mom", "H", "kb", "T", "alpha", "epsilon", "c", "M"),
            lambda m, H, kb, T, a, e, c, M: m * H / (kb * T) + (m * a) / (e * c**2 * kb * T) * M),
    Formula("feynman:II.38.3", "Y*A*x/d", _u("Y", "A", "d", "x"),
            lambda Y, A, d, x: Y * A * x / d),
    Formula("feynman:III.9.52", "(p_d*Ef*t/h)*sin((omega-omega_0)*t/2)**2/((omega-omega_0)*t/2)**2",
            _u("p_d", "Ef", "t", "h", "omega", "omega_0"),
            lambda p, ef, t, h, w, w0: (p * ef * t / h) * np.sinc((w - w0) * t / (2 * pi)) ** 2),
    Formula("feynman:III.10.19", "mom*sqrt(Bx**2+By**2+Bz**2)", _u("mom", "Bx", "By", "Bz"),
            lambda m, bx, by, bz: m * sq(bx**2 + by**2 + bz**2)),
    Formula("feynman:III.17.37", "beta*(1+alpha*cos(theta))", _u("beta", "alpha", "theta"),
            lambda b, a, t: b * (1 + a * np.cos(t))),
)

#: name -> formula, toy functions first.
FORMULAS: dict[str, Formula] = {f.name: f for f in TOY + FEYNMAN}
