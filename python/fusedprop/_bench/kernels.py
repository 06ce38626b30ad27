"""Cases of the kernel groups: gemm, linear_fwd, linear_fwd_bwd, optim_update."""

from __future__ import annotations

import math
import zlib

import numpy as np

from fusedprop import functional as F
from fusedprop.backends import numpy_backend as oracle

from .common import (Case, Contender, fusedprop_backend_contenders, missing_api, optional, rel_err, rel_err_all,
                     tol_for, torch_contender)

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _rng(*key):
    return np.random.default_rng([20261128, zlib.crc32(repr(key).encode())])


def _erf():
    special, _ = optional("scipy.special")
    if special is not None:
        return special.erf
    return np.vectorize(math.erf, otypes=[np.float64])  # slow, but right


def _layer_inputs(rng, batch, n_in, n_out, dtype):
    x = rng.standard_normal((batch, n_in)).astype(dtype)
    w = (rng.standard_normal((n_out, n_in)) / math.sqrt(n_in)).astype(dtype)
    b = (0.1 * rng.standard_normal(n_out)).astype(dtype)
    return x, w, b


def _f64(*arrays):
    return [np.asarray(a, dtype=np.float64) for a in arrays]


# ------------------------------------------------------------------------ gemm

def gemm_case(m, k, n, dtype="float32", layer=False):
    """``a @ b``; a layer shape (batch, in, out) runs as x · Wᵀ with W (out, in)."""
    rng = _rng("gemm", m, k, n, dtype)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((n, k)).astype(dtype).T if layer else rng.standard_normal((k, n)).astype(dtype)
    a64, b64 = _f64(a, b)
    ref = a64 @ b64

    def fp_factory():
        return (lambda: F.matmul(a, b)), None

    def np_factory():
        return (lambda: a @ b), None

    def torch_factory():
        import torch
        ta, tb = torch.from_numpy(a), torch.from_numpy(np.ascontiguousarray(b.T)).T if layer else torch.from_numpy(b)
        return (lambda: torch.mm(ta, tb)), (lambda r: r.numpy())

    contenders = fusedprop_backend_contenders(fp_factory) + [
        Contender("numpy", "numpy", np_factory), torch_contender("torch", torch_factory)]
    label = f"({m},{k},{n}) x·Wᵀ" if layer else f"{m}x{k}x{n}"
    err = lambda r: (rel_err(r, ref), "")  # noqa: E731
    return Case("gemm", f"{label} {_short(dtype)}", dtype, 2.0 * m * k * n, contenders, err, tol_for(dtype),
                params={"m": m, "k": k, "n": n, "layer": layer})


def _short(dtype):
    return {"float32": "f32", "float64": "f64"}[str(np.dtype(dtype))]


# ------------------------------------------------------------------ linear fwd

def _numpy_act(z, act, erf):
    if act == "relu":
        return np.maximum(z, 0, out=z)
    return 0.5 * z * (1 + erf(z * z.dtype.type(_SQRT_HALF)).astype(z.dtype, copy=False))


def _torch_act(torch, act):
    return torch.nn.functional.relu if act == "relu" else torch.nn.functional.gelu


def linear_fwd_case(batch, n_in, n_out, act, dtype="float32"):
    x, w, b = _layer_inputs(_rng("fwd", batch, n_in, n_out, act), batch, n_in, n_out, dtype)
    ref = oracle.linear(*_f64(x, w, b), act, 0.01, None)
    erf = _erf()

    def fp_factory():
        return (lambda: F.linear(x, w, b, act)), None

    def np_factory():
        return (lambda: _numpy_act(x @ w.T + b, act, erf)), None

    def torch_factory():
        import torch
        tx, tw, tb = (torch.from_numpy(t) for t in (x, w, b))
        f = _torch_act(torch, act)

        def run():
            with torch.no_grad():
                return f(torch.nn.functional.linear(tx, tw, tb))
        return run, (lambda r: r.numpy())

    contenders = fusedprop_backend_contenders(fp_factory) + [
        Contender("numpy", "numpy", np_factory), torch_contender("torch", torch_factory)]
    return Case("linear_fwd", f"({batch},{n_in},{n_out}) {act}", dtype, 2.0 * batch * n_in * n_out, contenders,
                lambda r: (rel_err(r, ref), ""), tol_for(dtype),
                params={"batch": batch, "in": n_in, "out": n_out, "activation": act,
                        "weight_bytes": w.nbytes if batch == 1 else None})


# -------------------------------------------------------------- linear fwd+bwd

def linear_fwd_bwd_case(batch, n_in, n_out, act, dtype="float32"):
    rng = _rng("fwdbwd", batch, n_in, n_out, act)
    x, w, b = _layer_inputs(rng, batch, n_in, n_out, dtype)
    gy = rng.standard_normal((batch, n_out)).astype(dtype)
    # Where Z is within rounding of a kink (ReLU at 0), float32 and float64 may
    # take different sides, and one such element moves dW by ~1/sqrt(batch*out)
    # of its norm: give those elements no gradient, so both sides agree.
    z64 = np.asarray(x, np.float64) @ np.asarray(w, np.float64).T + np.asarray(b, np.float64)
    gy[np.abs(z64) < 1e-3] = 0
    x64, w64, b64, gy64 = _f64(x, w, b, gy)
    y_ref, saved = oracle.linear_forward(x64, w64, b64, act, 0.01)
    ref = (y_ref, *oracle.linear_backward(gy64, x64, w64, saved, act, 0.01, True))
    erf = _erf()
    dt = np.dtype(dtype).type

    def fp_factory():
        def run():
            y, s = F.linear_forward(x, w, b, act)
            gx, gw, gb = F.linear_backward(gy, x, w, s, act)
            return y, gx, gw, gb
        return run, None

    def np_factory():
        def run():  # the hand-written NumPy backward
            z = x @ w.T + b
            if act == "relu":
                y = np.maximum(z, 0)
                dz = np.where(y > 0, gy, dt(0))
            else:
                cdf = dt(0.5) * (1 + erf(z * dt(_SQRT_HALF)).astype(z.dtype, copy=False))
                y = z * cdf
                dz = gy * (cdf + z * (dt(_INV_SQRT_2PI) * np.exp(dt(-0.5) * z * z)))
            return y, dz @ w, dz.T @ x, dz.sum(axis=0)
        return run, None

    def torch_factory():
        import torch
        tx, tw, tb = (torch.from_numpy(t.copy()).requires_grad_() for t in (x, w, b))
        tgy = torch.from_numpy(gy)
        f = _torch_act(torch, act)

        def run():
            y = f(torch.nn.functional.linear(tx, tw, tb))
            return (y.detach(), *torch.autograd.grad(y, (tx, tw, tb), tgy))
        return run, (lambda r: tuple(t.numpy() for t in r))

    contenders = fusedprop_backend_contenders(fp_factory) + [
        Contender("numpy", "numpy", np_factory), torch_contender("torch autograd", torch_factory)]
    return Case("linear_fwd_bwd", f"({batch},{n_in},{n_out}) {act}", dtype, 6.0 * batch * n_in * n_out, contenders,
                lambda r: (rel_err_all(r, ref), ""), tol_for(dtype),
                params={"batch": batch, "in": n_in, "out": n_out, "activation": act})


# ---------------------------------------------------------------- optim update

OPTIM_LR = {"sgd": 0.01, "adam": 1e-3}


def optim_case(kind, shape, dtype="float32"):
    """One SGD-momentum (0.9) or Adam step on one parameter with a fixed gradient."""
    from . import reference
    rng = _rng("optim", kind, *shape)
    p0 = (rng.standard_normal(shape) * 0.05).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    lr = OPTIM_LR[kind]
    p_ref = p0.astype(np.float64)
    reference.make_optimizer(kind, [p_ref], lr).step([g.astype(np.float64)])
    delta_ref = p_ref - p0

    def delta(p):
        return np.asarray(p, dtype=np.float64) - p0

    def fp_factory():
        from fusedprop import nn, optim
        p = nn.Parameter(p0.copy())
        p.grad = g.copy()
        opt = optim.SGD([p], lr=lr, momentum=0.9) if kind == "sgd" else optim.Adam([p], lr=lr)

        def run():
            opt.step()
            return p.data
        return run, delta

    def np_factory():
        p = p0.copy()
        if kind == "sgd":
            buf = np.zeros_like(p)
            tmp = np.empty_like(p)

            def run():
                nonlocal buf, p
                buf *= 0.9
                buf += g
                np.multiply(buf, lr, out=tmp)
                p -= tmp
                return p
        else:
            m, v, tmp = np.zeros_like(p), np.zeros_like(p), np.empty_like(p)
            t = [0]

            def run():
                nonlocal m, v, tmp, p
                t[0] += 1
                m *= 0.9
                m += 0.1 * g
                v *= 0.999
                np.multiply(g, g, out=tmp)
                tmp *= 0.001
                v += tmp
                np.sqrt(v, out=tmp)
                tmp /= math.sqrt(1 - 0.999 ** t[0])
                tmp += 1e-8
                np.divide(m, tmp, out=tmp)
                tmp *= lr / (1 - 0.9 ** t[0])
                p -= tmp
                return p
        return run, delta

    def torch_factory():
        import torch
        tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
        tp.grad = torch.from_numpy(g.copy())
        opt = (torch.optim.SGD([tp], lr=lr, momentum=0.9, foreach=False) if kind == "sgd"
               else torch.optim.Adam([tp], lr=lr, foreach=False))

        def run():
            opt.step()
            return tp
        return run, (lambda r: delta(r.detach().numpy()))

    reason = missing_api("nn.Parameter", "optim.SGD", "optim.Adam")
    name = {"sgd": "SGD momentum", "adam": "Adam"}[kind]
    contenders = [Contender(f"fusedprop optim.{'SGD' if kind == 'sgd' else 'Adam'}", "fusedprop",
                            None if reason else fp_factory, reason),
                  Contender("numpy", "numpy", np_factory),
                  torch_contender("torch (foreach=False)", torch_factory)]
    tol = 1e-3 if np.dtype(dtype) == np.float32 else 1e-9
    return Case("optim_update", f"{name} {shape[0]}x{shape[1]}", dtype, None, contenders,
                lambda r: (rel_err(r, delta_ref), ""), tol, stateful=True, params={"optimizer": kind, "shape": shape})
