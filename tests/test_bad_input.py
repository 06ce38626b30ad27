"""Bad input gets a clear Python exception on every backend — never a crash,
a hang or a silently wrong answer (DESIGN.md, Errors)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fusedprop import functional as F

f32, f64 = np.float32, np.float64
X = np.ones((3, 4), f32)
W = np.ones((5, 4), f32)
B = np.ones(5, f32)
GY = np.ones((3, 5), f32)


def _readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


# (id, call, exception type, message fragment)
CASES = [
    # types
    ("x-list", lambda: F.linear(X.tolist(), W), TypeError, "x must be a numpy.ndarray"),
    ("weight-none", lambda: F.linear(X, None), TypeError, "weight must be a numpy.ndarray"),
    ("bias-list", lambda: F.linear(X, W, [1.0] * 5), TypeError, "bias must be a numpy.ndarray"),
    ("out-list", lambda: F.linear(X, W, out=[[0.0] * 5] * 3), TypeError, "out must be a numpy.ndarray"),
    ("activation-int", lambda: F.linear(X, W, None, 3), TypeError, "activation must be a str"),
    ("slope-str", lambda: F.linear(X, W, None, "leaky_relu", negative_slope="a"), TypeError, "negative_slope"),
    # dtypes
    ("x-int", lambda: F.linear(X.astype(np.int32), W), TypeError, "x must have dtype float32 or float64"),
    ("x-f16", lambda: F.linear(X.astype(np.float16), W), TypeError, "float32 or float64"),
    ("x-complex", lambda: F.linear(X.astype(np.complex64), W), TypeError, "float32 or float64"),
    ("mixed-weight", lambda: F.linear(X, W.astype(f64)), TypeError, "weight has dtype float64"),
    ("mixed-bias", lambda: F.linear(X, W, B.astype(f64)), TypeError, "bias has dtype float64"),
    ("out-dtype", lambda: F.linear(X, W, out=np.empty((3, 5), f64)), TypeError, "out must have dtype float32"),
    ("matmul-mixed", lambda: F.matmul(X, W.T.astype(f64)), TypeError, "b has dtype float64"),
    ("grad-dtype", lambda: F.linear_backward(GY.astype(f64), X, W, None, "identity"), TypeError, "grad_y has dtype"),
    ("saved-dtype", lambda: F.linear_backward(GY, X, W, GY.astype(f64), "relu"), TypeError, "saved must have dtype"),
    # ndim and shapes
    ("x-0d", lambda: F.linear(np.ones((), f32), W), ValueError, "at least 1 dimension"),
    ("weight-1d", lambda: F.linear(X, W[0]), ValueError, "weight must be 2-D"),
    ("weight-3d", lambda: F.linear(X, W[None]), ValueError, "weight must be 2-D"),
    ("in-features", lambda: F.linear(X, W[:, :3]), ValueError, r"x.shape\[-1\] \(4\) must equal weight.shape\[1\]"),
    ("bias-shape", lambda: F.linear(X, W, B[:4]), ValueError, r"bias must have shape \(5,\)"),
    ("bias-2d", lambda: F.linear(X, W, B[None]), ValueError, "bias must have shape"),
    ("out-shape", lambda: F.linear(X, W, out=np.empty((3, 4), f32)), ValueError, r"out must have shape \(3, 5\)"),
    ("matmul-1d", lambda: F.matmul(X[0], W.T), ValueError, "a must be 2-D"),
    ("matmul-inner", lambda: F.matmul(X, W), ValueError, r"a.shape\[1\] \(4\) must equal b.shape\[0\] \(5\)"),
    ("grad-shape", lambda: F.linear_backward(GY[:, :4], X, W, None, "identity"), ValueError, "grad_y must have shape"),
    ("saved-shape", lambda: F.linear_backward(GY, X, W, GY[:2], "relu"), ValueError, "saved must have shape"),
    ("saved-missing", lambda: F.linear_backward(GY, X, W, None, "gelu"), ValueError, "needs saved"),
    ("act-grad-shape", lambda: F.activation_grad(GY, X, "tanh"), ValueError, "saved must have shape"),
    # names and values
    ("activation-name", lambda: F.linear(X, W, None, "Relu"), ValueError, "unknown activation 'Relu'"),
    ("activation-fn-name", lambda: F.activation(X, "softmax"), ValueError, "unknown activation 'softmax'"),
    ("slope-negative", lambda: F.linear(X, W, None, "leaky_relu", negative_slope=-1.0), ValueError, "negative_slope"),
    ("slope-nan", lambda: F.linear(X, W, None, "leaky_relu", negative_slope=float("nan")), ValueError, "negative_slope"),
    # out=
    ("out-readonly", lambda: F.linear(X, W, out=_readonly(np.empty((3, 5), f32))), ValueError, "read-only"),
    ("matmul-out-readonly", lambda: F.matmul(X, W.T, out=_readonly(np.empty((3, 5), f32))), ValueError, "read-only"),
    ("activation-out-readonly", lambda: F.activation(X, "relu", out=_readonly(X)), ValueError, "read-only"),
    ("activation-out-overlap", lambda: F.activation(X, "relu", out=X), ValueError, "overlaps"),
]


def _overlap_case():
    buf = np.ones((3, 9), f32)
    return F.linear(buf[:, :4], W, out=buf[:, 4:])  # out is disjoint: allowed


@pytest.mark.parametrize("call,exc,match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises(backend, call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_disjoint_out_in_the_same_buffer_is_allowed(backend):
    y = _overlap_case()
    np.testing.assert_allclose(y, np.full((3, 5), 4.0))


@pytest.mark.parametrize("which", ["x", "weight", "bias"])
def test_out_overlapping_any_input_is_refused(backend, which):
    buf = np.ones(64, f32)
    x, w, b = X.copy(), W.copy(), B.copy()
    out = buf[:15].reshape(3, 5)
    if which == "x":
        x = buf[10:22].reshape(3, 4)
    elif which == "weight":
        w = buf[:20].reshape(5, 4)
    else:
        b = buf[5:10]
    with pytest.raises(ValueError, match="overlaps"):
        F.linear(x, w, b, out=out)


def test_zero_strides_are_read_correctly(backend):
    x = np.lib.stride_tricks.as_strided(np.array([2.0], f64), shape=(6, 4), strides=(0, 0))
    w = np.lib.stride_tricks.as_strided(np.array([0.5], f64), shape=(3, 4), strides=(0, 0))
    np.testing.assert_allclose(F.linear(x, w, None, "relu"), np.full((6, 3), 4.0))
    _, gw, gb = F.linear_backward(np.ones((6, 3)), x, w, None, "identity")
    np.testing.assert_allclose(gw, np.full((3, 4), 12.0))
    np.testing.assert_allclose(gb, np.full(3, 6.0))


def test_empty_batches_work(backend):
    x = np.empty((0, 4), f32)
    y, saved = F.linear_forward(x, W, B, "relu")
    assert y.shape == (0, 5) and saved.shape == (0, 5)
    gx, gw, gb = F.linear_backward(np.empty((0, 5), f32), x, W, saved, "relu")
    assert gx.shape == (0, 4)
    np.testing.assert_array_equal(gw, np.zeros((5, 4)))
    np.testing.assert_array_equal(gb, np.zeros(5))


@pytest.mark.parametrize("name", ["matmul", "linear", "activation"])
def test_sizes_that_overflow_fail_cleanly(backend, name):
    """Virtual arrays of 2**60 elements: an exception, never a crash or a hang.
    Run in a subprocess so that a crash fails this test instead of the run."""
    code = textwrap.dedent(f"""
        import numpy as np, fusedprop as fp
        from fusedprop import functional as F
        fp.set_backend({backend!r})
        big = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), shape=(2**30, 2**30), strides=(0, 0))
        try:
            if {name!r} == "matmul":
                F.matmul(big, big)
            elif {name!r} == "linear":
                F.linear(big, big)
            else:
                F.activation(big, "relu")
        except (ValueError, MemoryError) as exc:
            print("raised", type(exc).__name__, exc)
        else:
            print("no exception")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"crashed with {proc.returncode}: {proc.stderr[-2000:]}"
    assert proc.stdout.startswith("raised"), proc.stdout + proc.stderr
