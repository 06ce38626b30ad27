"""Fits the polynomial coefficients used by csrc/math/activation_avx2.h.

Near-minimax fits of *relative* error by Lawson's iteratively re-weighted
least squares, in 60-digit mpmath arithmetic, on a dense Chebyshev-spaced
grid. Then the coefficients are rounded to the target precision and the
error of evaluating the rounded polynomial (Horner in that precision) is
measured against mpmath. Rerun to reproduce the tables in the header:

    python tools/fit_activation_polys.py
"""
from __future__ import annotations

import sys

import mpmath as mp
import numpy as np

mp.mp.dps = 60


def cheb_grid(a, b, n):
    return [mp.mpf(a) + (mp.mpf(b) - a) * (1 - mp.cos(mp.pi * (i + 0.5) / n)) / 2 for i in range(n)]


def lawson_fit(var_points, targets, degree, iters=40):
    """Minimises max |p(v_i) - y_i| / |y_i| over monomials of degree <= degree."""
    n = len(var_points)
    w = [mp.mpf(1)] * n
    coeffs = None
    for _ in range(iters):
        m = degree + 1
        ata = mp.zeros(m, m)
        atb = mp.zeros(m, 1)
        for v, y, wi in zip(var_points, targets, w):
            s = mp.sqrt(wi) / abs(y)
            row = [s * v**k for k in range(m)]
            for i in range(m):
                atb[i] += row[i] * s * y
                for j in range(i, m):
                    ata[i, j] += row[i] * row[j]
        for i in range(m):
            for j in range(i):
                ata[i, j] = ata[j, i]
        coeffs = mp.lu_solve(ata, atb)
        errs = [abs(mp.polyval(list(reversed(list(coeffs))), v) - y) / abs(y) for v, y in zip(var_points, targets)]
        tot = mp.fsum(wi * e for wi, e in zip(w, errs))
        w = [wi * e / tot for wi, e in zip(w, errs)]
    return [coeffs[i] for i in range(degree + 1)], max(errs)


def horner(coeffs, v, dtype):
    acc = dtype(coeffs[-1])
    for c in reversed(coeffs[:-1]):
        acc = dtype(acc * v + dtype(c))
    return acc


def report(name, coeffs, dtype, check):
    """check(var) -> (target mp value, var as dtype) on a test grid."""
    cs = [dtype(float(c)) for c in coeffs]
    worst = 0.0
    for var_mp, y in check:
        got = horner(cs, dtype(float(var_mp)), dtype)
        worst = max(worst, float(abs((mp.mpf(float(got)) - y) / y)))
    eps = float(np.finfo(dtype).eps)
    print(f"// {name} ({np.dtype(dtype).name}), degree {len(cs) - 1}: max rel err of Horner in "
          f"{np.dtype(dtype).name} {worst:.3g} = {worst / eps:.2f} eps")
    suffix = "f" if dtype is np.float32 else ""
    for c in cs:
        print(f"    {float(c)!r:>26}{suffix},")
    return cs


def fit(name, f, lo, hi, degree, dtype, n=300):
    pts = cheb_grid(lo, hi, n)
    ys = [f(p) for p in pts]
    coeffs, err = lawson_fit(pts, ys, degree)
    print(f"// fit {name}: minimax-ish rel err {float(err):.3g}", file=sys.stderr)
    check_pts = cheb_grid(lo, hi, 4 * n)
    return report(name, coeffs, dtype, [(p, f(p)) for p in check_pts])


def main(which):
    sqrt_half = mp.sqrt(mp.mpf(0.5))
    # exp(r) = 1 + r + r^2 P(r) on |r| <= ln2/2
    ln2h = mp.log(2) / 2
    expP = lambda r: (mp.exp(r) - 1 - r) / r**2 if r != 0 else mp.mpf(0.5)
    # tanh(x) = x + x^3 P(x^2) on [0, x0]
    tanhP = lambda w: (mp.tanh(mp.sqrt(w)) - mp.sqrt(w)) / mp.sqrt(w) ** 3
    # Phi(z) = 1/2 + z Q(z^2) on |z| <= z0: Q(w) = erf(sqrt(w/2)) / (2 sqrt(w))
    phiQ = lambda w: mp.erf(mp.sqrt(w) * sqrt_half) / (2 * mp.sqrt(w))
    for dtype, exp_deg, tanh_x0, tanh_deg, z0, q_deg in ((np.float32, 5, 0.625, 4, 0.75, 5),
                                                         (np.float64, 10, 0.625, 9, 0.75, 10)):
        if which not in ("all", np.dtype(dtype).name):
            continue
        fit("exp P(r)", expP, -ln2h, ln2h, exp_deg, dtype)
        fit("tanh P(x^2)", tanhP, mp.mpf(1e-30), mp.mpf(tanh_x0) ** 2, tanh_deg, dtype)
        fit("Phi Q(z^2)", phiQ, mp.mpf(1e-30), mp.mpf(z0) ** 2, q_deg, dtype)


def tail(dtype, a, zmax, deg, z0=0.75, n=300):
    """0.5 erfc(z/sqrt2) = exp(-z^2/2) t G(t), t = 1/(1 + a z), z in [z0, zmax]."""
    a = mp.mpf(a)
    def G(t):
        z = (1 / t - 1) / a
        return mp.erfc(z / mp.sqrt(2)) / 2 * mp.exp(z * z / 2) / t
    tlo, thi = 1 / (1 + a * zmax), 1 / (1 + a * z0)
    return fit(f"Phi tail G(t), a={a}", G, tlo, thi, deg, dtype, n)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "tail":
        tail(np.float32 if sys.argv[2] == "f32" else np.float64, float(sys.argv[3]), float(sys.argv[4]),
             int(sys.argv[5]), *(float(x) for x in sys.argv[6:7]))
    elif len(sys.argv) > 1 and sys.argv[1] == "tanh64":
        tanhP = lambda w: (mp.tanh(mp.sqrt(w)) - mp.sqrt(w)) / mp.sqrt(w) ** 3
        fit("tanh P(x^2)", tanhP, mp.mpf(1e-30), mp.mpf(0.625) ** 2, int(sys.argv[2]), np.float64)
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else "all")
