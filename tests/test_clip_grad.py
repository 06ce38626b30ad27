"""nn.utils.clip_grad_norm_ and clip_grad_value_ against PyTorch's."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fusedprop as fp
from fusedprop import nn

torch = pytest.importorskip("torch")
TOL = {np.float32: dict(rtol=2e-6, atol=0), np.float64: dict(rtol=1e-13, atol=0)}


def _pair(rng, dtype, shapes=((4, 3), (4,), (2, 4), (2,)), scale=3.0, none_at=()):
    """fusedprop and PyTorch parameters with the same gradients (None at the given indices)."""
    fps, tps = [], []
    for i, shape in enumerate(shapes):
        p = nn.Parameter(rng.standard_normal(shape).astype(dtype))
        t = torch.nn.Parameter(torch.tensor(p.data))
        if i not in none_at:
            g = (scale * rng.standard_normal(shape)).astype(dtype)
            p.grad, t.grad = g, torch.tensor(g.copy())
        fps.append(p)
        tps.append(t)
    return fps, tps


def _assert_grads(fps, tps, dtype):
    for p, t in zip(fps, tps):
        if t.grad is None:
            assert p.grad is None
        else:
            assert p.grad.dtype == dtype
            np.testing.assert_allclose(p.grad, t.grad.numpy(), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm_type", [1, 2.0, math.inf, 3.5, -math.inf, 0, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_equals_pytorch(rng, dtype, norm_type, max_norm):
    fps, tps = _pair(rng, dtype, none_at=(1,))
    before = [None if p.grad is None else p.grad.copy() for p in fps]
    got = nn.utils.clip_grad_norm_(fps, max_norm, norm_type=norm_type)
    want = torch.nn.utils.clip_grad_norm_(tps, max_norm, norm_type=norm_type)
    assert isinstance(got, np.generic) and got.dtype == dtype and np.ndim(got) == 0
    np.testing.assert_allclose(float(got), want.item(), **TOL[dtype])
    _assert_grads(fps, tps, dtype)
    if max_norm == 1e6:  # coefficient 1: the gradients are left bit for bit
        for p, b in zip(fps, before):
            if b is not None:
                np.testing.assert_array_equal(p.grad, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_norm_of_one_parameter_and_of_a_generator(rng, dtype):
    fps, tps = _pair(rng, dtype, shapes=((5, 6),))
    np.testing.assert_allclose(float(nn.utils.clip_grad_norm_(fps[0], 0.1)),
                               torch.nn.utils.clip_grad_norm_(tps[0], 0.1).item(), **TOL[dtype])
    _assert_grads(fps, tps, dtype)
    fps, tps = _pair(rng, dtype)
    np.testing.assert_allclose(float(nn.utils.clip_grad_norm_((p for p in fps), 2.0)),
                               torch.nn.utils.clip_grad_norm_((t for t in tps), 2.0).item(), **TOL[dtype])
    _assert_grads(fps, tps, dtype)


def test_mixed_dtypes_promote_as_pytorch(rng):
    f32, t32 = _pair(rng, np.float32, shapes=((3, 3),))
    f64, t64 = _pair(rng, np.float64, shapes=((4,),))
    got = nn.utils.clip_grad_norm_(f32 + f64, 0.3)
    want = torch.nn.utils.clip_grad_norm_(t32 + t64, 0.3)
    assert got.dtype == np.float64 and want.dtype == torch.float64
    np.testing.assert_allclose(got, want.item(), rtol=1e-13)
    _assert_grads(f32, t32, np.float32)
    _assert_grads(f64, t64, np.float64)


def test_no_gradients_give_a_zero_norm(rng):
    assert nn.utils.clip_grad_norm_([], 1.0) == torch.nn.utils.clip_grad_norm_([], 1.0).item() == 0.0
    fps, tps = _pair(rng, np.float64, none_at=(0, 1, 2, 3))
    got = nn.utils.clip_grad_norm_(fps, 1.0)
    assert got == torch.nn.utils.clip_grad_norm_(tps, 1.0).item() == 0.0 and got.dtype == np.float32
    assert all(p.grad is None for p in fps)
    with pytest.warns(UserWarning, match="empty generator"):
        nn.utils.clip_grad_norm_((p for p in []), 1.0)


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_nonfinite_norms_as_pytorch(rng, bad):
    fps, tps = _pair(rng, np.float64)
    fps[0].grad[0, 0] = bad
    tps[0].grad[0, 0] = bad
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(fps, 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match="non-finite"):
        torch.nn.utils.clip_grad_norm_(tps, 1.0, error_if_nonfinite=True)
    got = nn.utils.clip_grad_norm_(fps, 1.0)
    want = torch.nn.utils.clip_grad_norm_(tps, 1.0)
    np.testing.assert_equal(float(got), want.item())
    for p, t in zip(fps, tps):
        np.testing.assert_array_equal(p.grad, t.grad.numpy())  # NaN where PyTorch has NaN, 0 where it has 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_value_equals_pytorch(rng, dtype):
    fps, tps = _pair(rng, dtype, none_at=(2,))
    fps[0].grad[1, 1] = np.nan
    tps[0].grad[1, 1] = float("nan")
    assert nn.utils.clip_grad_value_(fps, 1.25) is None
    torch.nn.utils.clip_grad_value_(tps, 1.25)
    for p, t in zip(fps, tps):
        if t.grad is None:
            assert p.grad is None
        else:
            np.testing.assert_array_equal(p.grad, t.grad.numpy())
    assert np.nanmax(np.abs(fps[0].grad)) == dtype(1.25)


def test_clipping_is_in_place_and_works_on_read_only_gradients(rng):
    fps, tps = _pair(rng, np.float64)
    held = fps[0].grad
    nn.utils.clip_grad_norm_(fps, 0.5)
    assert fps[0].grad is held
    fps, tps = _pair(rng, np.float64)
    for p in fps:
        p.grad.flags.writeable = False
    nn.utils.clip_grad_norm_(fps, 0.5)
    torch.nn.utils.clip_grad_norm_(tps, 0.5)
    _assert_grads(fps, tps, np.float64)
    nn.utils.clip_grad_value_(fps, 0.01)
    torch.nn.utils.clip_grad_value_(tps, 0.01)
    _assert_grads(fps, tps, np.float64)


@pytest.mark.parametrize("call,error,match", [
    (lambda ps: nn.utils.clip_grad_norm_(ps, -1.0), ValueError, "max_norm"),
    (lambda ps: nn.utils.clip_grad_norm_(ps, float("nan")), ValueError, "max_norm"),
    (lambda ps: nn.utils.clip_grad_norm_(ps, "1"), TypeError, "max_norm"),
    (lambda ps: nn.utils.clip_grad_norm_(ps, 1.0, norm_type="two"), ValueError, "norm_type"),
    (lambda ps: nn.utils.clip_grad_norm_(ps, 1.0, norm_type=None), TypeError, "norm_type"),
    (lambda ps: nn.utils.clip_grad_norm_(ps, 1.0, foreach="yes"), TypeError, "foreach"),
    (lambda ps: nn.utils.clip_grad_norm_(np.ones(3), 1.0), TypeError, "parameters"),
    (lambda ps: nn.utils.clip_grad_norm_([ps[0], 3.0], 1.0), TypeError, r"parameters\[1\]"),
    (lambda ps: nn.utils.clip_grad_value_(ps, -0.5), ValueError, "clip_value"),
    (lambda ps: nn.utils.clip_grad_value_(ps, None), TypeError, "clip_value"),
    (lambda ps: nn.utils.clip_grad_value_(5, 1.0), TypeError, "parameters"),
])
def test_bad_arguments_are_named(rng, call, error, match):
    fps, _ = _pair(rng, np.float32)
    before = [p.grad.copy() for p in fps]
    with pytest.raises(error, match=match):
        call(fps)
    for p, b in zip(fps, before):
        np.testing.assert_array_equal(p.grad, b)  # nothing half-clipped


def test_reachable_as_fp_nn_utils():
    assert fp.nn.utils.clip_grad_norm_ is nn.utils.clip_grad_norm_
    assert "utils" in fp.nn.__all__
