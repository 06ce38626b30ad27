"""Fused optimizer updates, NumPy reference (the contract every backend follows).

    sgd_step(param, grad, momentum_buffer, lr, momentum, dampening,
             weight_decay, nesterov, first_step) -> None
    adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr,
              beta1, beta2, eps, weight_decay, decoupled) -> None

Every array is C-contiguous, of one dtype (float32 or float64) and one shape;
``param`` and the state arrays are updated in place, ``grad`` is read only.
``momentum_buffer`` is None when ``momentum == 0``; on ``first_step`` it is
filled with the (weight-decayed) gradient, as PyTorch's ``clone``.
``max_exp_avg_sq`` is None unless AMSGrad. ``step`` is the step number after
the increment (1 on the first call). ``decoupled`` selects AdamW's weight decay.

The arithmetic is PyTorch's single-tensor path (torch/optim/sgd.py, adam.py),
operation for operation; scalars are rounded to the arrays' dtype. One
difference: the stored state (momentum buffer, both Adam averages) is
flushed to zero where it would be subnormal, as XLA's flush-to-zero does.
A decaying moment (a dead unit's) otherwise spends many steps subnormal,
each operation on it ~70x slower on x86 (csrc/optim/flush.h), and moves its
weight by less than lr * the smallest normal number.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["sgd_step", "adam_step", "check_optim_arrays"]


def check_optim_arrays(fn: str, param, **arrays) -> None:
    if not isinstance(param, np.ndarray):
        raise TypeError(f"{fn}: param must be a numpy.ndarray, got {type(param).__name__}")
    if param.dtype not in (np.float32, np.float64):
        raise TypeError(f"{fn}: param must have dtype float32 or float64, got {param.dtype}")
    if not param.flags.c_contiguous or not param.flags.writeable:
        raise ValueError(f"{fn}: param must be a writeable C-contiguous array")
    for name, a in arrays.items():
        if a is None:
            continue
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(a).__name__}")
        if a.dtype != param.dtype:
            raise TypeError(f"{fn}: {name} has dtype {a.dtype} but param has dtype {param.dtype}")
        if a.shape != param.shape:
            raise ValueError(f"{fn}: {name} has shape {a.shape} but param has shape {param.shape}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{fn}: {name} must be C-contiguous")
        if name != "grad" and not a.flags.writeable:
            raise ValueError(f"{fn}: {name} is read-only")


def _flush_subnormal(a) -> None:
    """Subnormal entries of a state array to +0, in place (NaN and Inf stay)."""
    np.copyto(a, 0, where=np.abs(a) < np.finfo(a.dtype).tiny)


def sgd_step(param, grad, momentum_buffer, lr, momentum, dampening, weight_decay, nesterov, first_step):
    check_optim_arrays("sgd_step", param, grad=grad, momentum_buffer=momentum_buffer)
    dt = param.dtype.type
    d_p = grad
    if weight_decay != 0:
        d_p = grad + dt(weight_decay) * param
    if momentum != 0:
        if momentum_buffer is None:
            raise ValueError("sgd_step: momentum_buffer is required when momentum != 0")
        buf = momentum_buffer
        if first_step:
            np.copyto(buf, d_p)
        else:
            buf *= dt(momentum)
            buf += dt(1 - dampening) * d_p
        _flush_subnormal(buf)
        d_p = d_p + dt(momentum) * buf if nesterov else buf
    param -= dt(lr) * d_p


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
              decoupled):
    check_optim_arrays("adam_step", param, grad=grad, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq,
                       max_exp_avg_sq=max_exp_avg_sq)
    dt = param.dtype.type
    g = grad
    if weight_decay != 0:
        if decoupled:
            param *= dt(1 - lr * weight_decay)
        else:
            g = grad + dt(weight_decay) * param
    # exp_avg.lerp_(g, 1 - beta1): PyTorch's lerp picks its formula by the weight
    w = 1 - beta1
    if abs(w) < 0.5:
        exp_avg += dt(w) * (g - exp_avg)
    else:
        exp_avg[...] = g - (g - exp_avg) * dt(1 - w)
    _flush_subnormal(exp_avg)
    exp_avg_sq *= dt(beta2)
    exp_avg_sq += dt(1 - beta2) * g * g
    _flush_subnormal(exp_avg_sq)
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    inv_bias_correction2_sqrt = 1 / math.sqrt(bias_correction2)  # a product, not PyTorch's quotient: csrc/optim/adam.h
    if max_exp_avg_sq is not None:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        denom = np.sqrt(max_exp_avg_sq) * dt(inv_bias_correction2_sqrt) + dt(eps)
    else:
        denom = np.sqrt(exp_avg_sq) * dt(inv_bias_correction2_sqrt) + dt(eps)
    param += dt(-step_size) * (exp_avg / denom)
