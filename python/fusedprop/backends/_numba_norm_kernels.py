"""The Numba kernels behind ``norm_numba``: dropout's Philox mask, batch norm and layer norm.

The loops are the C++ kernels' (csrc/layers/{dropout,batch_norm,layer_norm}.cpp),
serial and in the input's dtype (constants come in as arrays of it); inputs
are C-contiguous (rows, features). Philox runs in uint64 with explicit
32-bit masks: Numba widens uint32 arithmetic.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_MASK = np.uint64(0xFFFFFFFF)
_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)
_S32 = np.uint64(32)


@njit(cache=True, nogil=True)
def dropout_kernel(x, out, threshold, scale, zero, seed, step, stream):
    """out[e] = x[e] * (e's Philox word >= threshold ? scale : 0), flat arrays (layout: _philox)."""
    n = x.size
    k0_init = np.uint64(seed) & _MASK
    k1_init = (np.uint64(seed) >> _S32) & _MASK
    words = np.empty((4, 8), np.uint64)
    for group in range((n + 31) // 32):
        for j in range(8):
            block = np.uint64(group * 8 + j)
            c0 = block & _MASK
            c1 = (block >> _S32) & _MASK
            c2 = np.uint64(step) & _MASK
            c3 = np.uint64(stream) & _MASK
            k0 = k0_init
            k1 = k1_init
            for _ in range(10):
                p0 = _M0 * c0
                p1 = _M1 * c2
                n0 = ((p1 >> _S32) ^ c1 ^ k0) & _MASK
                n2 = ((p0 >> _S32) ^ c3 ^ k1) & _MASK
                c1 = p1 & _MASK
                c3 = p0 & _MASK
                c0 = n0
                c2 = n2
                k0 = (k0 + _W0) & _MASK
                k1 = (k1 + _W1) & _MASK
            words[0, j] = c0
            words[1, j] = c1
            words[2, j] = c2
            words[3, j] = c3
        base = group * 32
        for i in range(min(32, n - base)):
            e = base + i
            out[e] = x[e] * (scale if words[i >> 3, i & 7] >= threshold else zero)


@njit(cache=True, nogil=True)
def bn_forward_kernel(x, eps, gamma, beta, has_gamma, has_beta, y, mean, invstd, var_u, nan):
    m, n = x.shape
    acc = np.zeros(n, x.dtype)
    for i in range(m):
        for j in range(n):
            acc[j] += x[i, j]
    mm = x.dtype.type(m)
    for j in range(n):
        mean[j] = acc[j] / mm
        acc[j] = 0
    for i in range(m):
        for j in range(n):
            d = x[i, j] - mean[j]
            acc[j] += d * d
    a = np.empty(n, x.dtype)
    c = np.empty(n, x.dtype)
    for j in range(n):
        invstd[j] = 1 / math.sqrt(acc[j] / mm + eps[0])
        var_u[j] = acc[j] / x.dtype.type(m - 1) if m > 1 else nan[0]
        a[j] = invstd[j] * gamma[j] if has_gamma else invstd[j]
        c[j] = (beta[j] if has_beta else 0) - mean[j] * a[j]
    for i in range(m):
        for j in range(n):
            y[i, j] = x[i, j] * a[j] + c[j]


@njit(cache=True, nogil=True)
def bn_eval_kernel(x, eps, rmean, rvar, gamma, beta, has_gamma, has_beta, y):
    m, n = x.shape
    a = np.empty(n, x.dtype)
    c = np.empty(n, x.dtype)
    for j in range(n):
        s = 1 / math.sqrt(rvar[j] + eps[0])
        a[j] = s * gamma[j] if has_gamma else s
        c[j] = (beta[j] if has_beta else 0) - rmean[j] * a[j]
    for i in range(m):
        for j in range(n):
            y[i, j] = x[i, j] * a[j] + c[j]


@njit(cache=True, nogil=True)
def bn_backward_kernel(dy, x, mean, invstd, gamma, has_gamma, dx, want_dx, dgamma, dbeta):
    m, n = x.shape
    sum_dy = np.zeros(n, x.dtype)
    dot = np.zeros(n, x.dtype)
    for i in range(m):
        for j in range(n):
            sum_dy[j] += dy[i, j]
            dot[j] += (x[i, j] - mean[j]) * dy[i, j]
    for j in range(n):
        dbeta[j] = sum_dy[j]
        dgamma[j] = dot[j] * invstd[j] if m > 0 else 0
    if not want_dx or m == 0:
        return
    inv_m = 1 / x.dtype.type(m)
    for j in range(n):
        sum_dy[j] = sum_dy[j] * inv_m                     # mean of dy
        dot[j] = dot[j] * invstd[j] * invstd[j] * inv_m   # k
    for i in range(m):
        for j in range(n):
            g = invstd[j] * gamma[j] if has_gamma else invstd[j]
            dx[i, j] = (dy[i, j] - sum_dy[j] - (x[i, j] - mean[j]) * dot[j]) * g


@njit(cache=True, nogil=True)
def ln_forward_kernel(x, eps, gamma, beta, has_gamma, has_beta, y, mean, rstd):
    m, d = x.shape
    dd = x.dtype.type(d)
    for i in range(m):
        s = x.dtype.type(0)
        for j in range(d):
            s += x[i, j]
        mu = s / dd
        s = x.dtype.type(0)
        for j in range(d):
            t = x[i, j] - mu
            s += t * t
        rs = 1 / math.sqrt(s / dd + eps[0])
        mean[i] = mu
        rstd[i] = rs
        for j in range(d):
            v = (x[i, j] - mu) * rs
            if has_gamma:
                v = v * gamma[j]
            if has_beta:
                v = v + beta[j]
            y[i, j] = v


@njit(cache=True, nogil=True)
def ln_backward_kernel(dy, x, mean, rstd, gamma, has_gamma, dx, want_dx, dgamma, dbeta):
    m, d = x.shape
    if want_dx and d > 0:
        inv_d = 1 / x.dtype.type(d)
        for i in range(m):
            mu = mean[i]
            rs = rstd[i]
            sg = x.dtype.type(0)
            sgx = x.dtype.type(0)
            for j in range(d):
                g = dy[i, j] * gamma[j] if has_gamma else dy[i, j]
                sg += g
                sgx += g * ((x[i, j] - mu) * rs)
            sg *= inv_d
            sgx *= inv_d
            for j in range(d):
                g = dy[i, j] * gamma[j] if has_gamma else dy[i, j]
                dx[i, j] = rs * (g - sg - ((x[i, j] - mu) * rs) * sgx)
    for j in range(d):
        dgamma[j] = 0
        dbeta[j] = 0
    for i in range(m):
        mu = mean[i]
        rs = rstd[i]
        for j in range(d):
            dgamma[j] += dy[i, j] * ((x[i, j] - mu) * rs)
            dbeta[j] += dy[i, j]
