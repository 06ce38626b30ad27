"""Fused optimizer updates under Numba (the same contract as ``optim_numpy``).

Imported lazily by the numba backend (``from .optim_numba import sgd_step,
adam_step``): importing it imports Numba; each kernel compiles on first use
and is cached on disk (``cache=True``).
"""

from __future__ import annotations

import math

import numpy as np

from numba import njit

from .optim_numpy import check_optim_arrays

__all__ = ["sgd_step", "adam_step"]


@njit(cache=True, nogil=True)
def _sgd_kernel(p, g, b, has_buf, lr, wd, mom, one_minus_damp, nesterov, first, tiny):
    for i in range(p.size):
        d = g[i]
        if wd != 0:
            d = d + wd * p[i]
        if has_buf:
            if first:
                buf = d
            else:
                buf = b[i] * mom + one_minus_damp * d
            if abs(buf) < tiny:  # subnormal state is flushed (optim_numpy.py)
                buf = p.dtype.type(0.0)
            b[i] = buf
            if nesterov:
                d = d + mom * buf
            else:
                d = buf
        p[i] = p[i] - lr * d


@njit(cache=True, nogil=True)
def _adam_kernel(p, g, m, v, vmax, amsgrad, decay_mode, decay, w, lerp_low, b2, omb2, inv_bc2s, eps, nss, tiny):
    one_minus_w = p.dtype.type(1.0) - w
    for i in range(p.size):
        pi = p[i]
        gi = g[i]
        if decay_mode == 2:
            pi = pi * decay
        elif decay_mode == 1:
            gi = gi + decay * pi
        mi = m[i]
        if lerp_low:
            mi = mi + w * (gi - mi)
        else:
            mi = gi - (gi - mi) * one_minus_w
        if abs(mi) < tiny:  # subnormal state is flushed (optim_numpy.py)
            mi = p.dtype.type(0.0)
        m[i] = mi
        vi = v[i] * b2 + omb2 * gi * gi
        if abs(vi) < tiny:
            vi = p.dtype.type(0.0)
        v[i] = vi
        if amsgrad:
            vm = vmax[i]
            if vi > vm or vi != vi:
                vm = vi
            vmax[i] = vm
            vi = vm
        denom = math.sqrt(vi) * inv_bc2s + eps  # as csrc/optim/adam.h
        p[i] = pi + nss * (mi / denom)


def sgd_step(param, grad, momentum_buffer, lr, momentum, dampening, weight_decay, nesterov, first_step):
    check_optim_arrays("sgd_step", param, grad=grad, momentum_buffer=momentum_buffer)
    if momentum != 0 and momentum_buffer is None:
        raise ValueError("sgd_step: momentum_buffer is required when momentum != 0")
    dt = param.dtype.type
    has_buf = momentum != 0
    buf = momentum_buffer.reshape(-1) if has_buf else param.reshape(-1)[:0]
    _sgd_kernel(param.reshape(-1), grad.reshape(-1), buf, has_buf, dt(lr), dt(weight_decay), dt(momentum),
                dt(1 - dampening), bool(nesterov), bool(first_step), dt(np.finfo(dt).tiny))


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
              decoupled):
    check_optim_arrays("adam_step", param, grad=grad, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq,
                       max_exp_avg_sq=max_exp_avg_sq)
    dt = param.dtype.type
    if weight_decay == 0:
        mode, decay = 0, 0.0
    elif decoupled:
        mode, decay = 2, 1 - lr * weight_decay
    else:
        mode, decay = 1, weight_decay
    w = 1 - beta1
    bc1 = 1 - beta1 ** step
    bc2 = 1 - beta2 ** step
    amsgrad = max_exp_avg_sq is not None
    flat = param.reshape(-1)
    vmax = max_exp_avg_sq.reshape(-1) if amsgrad else flat[:0]
    _adam_kernel(flat, grad.reshape(-1), exp_avg.reshape(-1), exp_avg_sq.reshape(-1), vmax, amsgrad, mode,
                 dt(decay), dt(w), abs(w) < 0.5, dt(beta2), dt(1 - beta2), dt(1 / math.sqrt(bc2)), dt(eps),
                 dt(-(lr / bc1)), dt(np.finfo(dt).tiny))
