"""The functional API on every backend, against the NumPy reference in float64."""

from __future__ import annotations

import numpy as np
import pytest

import fusedprop as fp
from fusedprop import functional as F
from conftest import ALL_ACTIVATIONS, reference, tolerance
from helpers import LAYOUTS, f64, make

DTYPES = (np.float32, np.float64)


def _close(actual, expected, dtype, k=1):
    tol = tolerance(dtype)
    # float32 error grows with the length of the dot products.
    scale = max(1.0, np.sqrt(k)) if np.dtype(dtype) == np.float32 else 1.0
    np.testing.assert_allclose(actual, expected, rtol=tol["rtol"] * scale, atol=tol["atol"] * scale)


# --------------------------------------------------------------------- matmul

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", [(0, 3, 4), (3, 0, 4), (3, 4, 0), (1, 1, 1), (7, 13, 5), (17, 31, 29), (64, 65, 66)])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_matmul_matches_float64_oracle(backend, rng, dtype, m, k, n, layout):
    a = make(rng, (m, k), dtype, layout)
    b = make(rng, (n, k), dtype, layout).T  # a transposed view, as W.T in a layer
    c = F.matmul(a, b)
    assert c.shape == (m, n) and c.dtype == dtype
    _close(c, f64(a)[0] @ f64(b)[0], dtype, k)


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_writes_into_strided_out(backend, rng, dtype):
    a, b = make(rng, (9, 11), dtype), make(rng, (11, 10), dtype)
    buf = np.full((18, 20), 7.0, dtype=dtype)
    out = buf[::2, ::2]
    result = F.matmul(a, b, out=out)
    assert result is out or np.shares_memory(result, buf)
    _close(out, f64(a)[0] @ f64(b)[0], dtype, 11)
    assert np.all(buf[1::2] == 7.0), "matmul wrote outside out"


# --------------------------------------------------------------------- linear

SHAPES = [  # (batch shape, in_features, out_features)
    ((0,), 5, 3), ((1,), 1, 1), ((3,), 4, 5), ((7,), 13, 17), ((33,), 65, 31), ((2, 3), 7, 6), ((), 9, 4), ((4, 0, 2), 3, 2),
    ((5,), 0, 3), ((5,), 3, 0),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
@pytest.mark.parametrize("batch,n_in,n_out", SHAPES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_forward_matches_oracle(backend, rng, dtype, activation, batch, n_in, n_out, with_bias):
    x = make(rng, batch + (n_in,), dtype)
    w = make(rng, (n_out, n_in), dtype, scale=0.5)
    b = make(rng, (n_out,), dtype) if with_bias else None
    expected = reference().linear(*f64(x, w, b), activation, 0.01, None)

    y = F.linear(x, w, b, activation)
    assert y.shape == batch + (n_out,) and y.dtype == dtype
    _close(y, expected, dtype, n_in)

    y2, saved = F.linear_forward(x, w, b, activation)
    _close(y2, expected, dtype, n_in)
    if activation == "identity":
        assert saved is None
    else:
        assert saved.shape == y2.shape and saved.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
@pytest.mark.parametrize("batch,n_in,n_out", SHAPES)
def test_linear_backward_matches_oracle(backend, rng, dtype, activation, batch, n_in, n_out):
    x = make(rng, batch + (n_in,), dtype)
    w = make(rng, (n_out, n_in), dtype, scale=0.5)
    b = make(rng, (n_out,), dtype)
    y, saved = F.linear_forward(x, w, b, activation)
    gy = make(rng, y.shape, dtype)

    gx, gw, gb = F.linear_backward(gy, x, w, saved, activation)
    # The oracle recomputes its own saved tensor in float64.
    _, saved64 = reference().linear_forward(*f64(x, w, b), activation, 0.01)
    ex, ew, eb = reference().linear_backward(*f64(gy, x, w), saved64, activation, 0.01, True)
    rows = int(np.prod(batch))
    assert gx.shape == x.shape and gw.shape == w.shape and gb.shape == (n_out,)
    _close(gx, ex, dtype, n_out)
    _close(gw, ew, dtype, rows)
    _close(gb, eb, dtype, rows)

    none_x, gw2, gb2 = F.linear_backward(gy, x, w, saved, activation, needs_input_grad=False)
    assert none_x is None
    np.testing.assert_array_equal(gw2, gw)
    np.testing.assert_array_equal(gb2, gb)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_linear_any_strides(backend, rng, dtype, layout, activation):
    x = make(rng, (19, 23), dtype, layout)
    w = make(rng, (29, 23), dtype, layout)
    b = make(rng, (29,), dtype, layout)
    y, saved = F.linear_forward(x, w, b, activation)
    _close(y, reference().linear(*f64(x, w, b), activation, 0.01, None), dtype, 23)
    gy = make(rng, y.shape, dtype, layout)
    gx, gw, gb = F.linear_backward(gy, x, w, saved, activation)
    _, s64 = reference().linear_forward(*f64(x, w, b), activation, 0.01)
    ex, ew, eb = reference().linear_backward(*f64(gy, x, w), s64, activation, 0.01, True)
    _close(gx, ex, dtype, 29)
    _close(gw, ew, dtype, 19)
    _close(gb, eb, dtype, 19)


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_out_is_filled_and_returned(backend, rng, dtype):
    x, w, b = make(rng, (6, 5), dtype), make(rng, (4, 5), dtype), make(rng, (4,), dtype)
    out = np.empty((6, 4), dtype)
    y = F.linear(x, w, b, "tanh", out=out)
    assert y is out
    _close(out, reference().linear(*f64(x, w, b), "tanh", 0.01, None), dtype, 5)


@pytest.mark.parametrize("slope", [0.0, 0.2, 3.0])
def test_leaky_relu_slope_is_used_forward_and_backward(backend, rng, slope):
    x, w = make(rng, (8, 6), np.float64), make(rng, (5, 6), np.float64)
    y, saved = F.linear_forward(x, w, None, "leaky_relu", negative_slope=slope)
    np.testing.assert_allclose(y, reference().linear(x, w, None, "leaky_relu", slope, None), rtol=1e-12)
    gy = make(rng, y.shape, np.float64)
    got = F.linear_backward(gy, x, w, saved, "leaky_relu", negative_slope=slope)
    want = reference().linear_backward(gy, x, w, saved, "leaky_relu", slope, True)
    for g, e in zip(got, want):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- activation

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
@pytest.mark.parametrize("shape", [(0,), (1,), (7,), (33, 9), (2, 3, 5), ()])
def test_activation_and_grad_match_oracle(backend, rng, dtype, name, shape):
    x = make(rng, shape, dtype, scale=3.0)
    y = F.activation(x, name)
    _close(y, reference().activation(*f64(x), name, 0.01, None), dtype)
    saved = None if name == "identity" else (y if name in ("relu", "leaky_relu", "sigmoid", "tanh") else x)
    gy = make(rng, shape, dtype)
    g = F.activation_grad(gy, saved, name)
    _close(g, reference().activation_grad(*f64(gy, saved), name, 0.01), dtype)


def test_special_values_follow_pytorch(backend):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30], dtype=np.float32)
    relu = F.activation(x, "relu")
    assert np.isnan(relu[0]) and relu[1] == np.inf and relu[2] == 0
    sig = F.activation(x, "sigmoid")
    assert np.isnan(sig[0]) and sig[1] == 1 and sig[2] == 0 and sig[5] == 1 and sig[6] == 0
    tanh = F.activation(x, "tanh")
    assert np.isnan(tanh[0]) and tanh[1] == 1 and tanh[2] == -1
    # relu's gradient is a select: Inf upstream at Y == 0 gives 0, NaN at Y passes dY.
    gy = np.array([np.inf, 2.0, 3.0], dtype=np.float32)
    g = F.activation_grad(gy, np.array([0.0, np.nan, 1.0], np.float32), "relu")
    np.testing.assert_array_equal(g, [0.0, 2.0, 3.0])


# -------------------------------------------------- finite differences (f64)

@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
def test_backward_matches_finite_differences(backend, rng, activation):
    x = rng.standard_normal((4, 3))
    w = rng.standard_normal((5, 3))
    b = rng.standard_normal(5)
    gy = rng.standard_normal((4, 5))

    def loss(x_, w_, b_):
        return float(np.sum(F.linear(x_, w_, b_, activation) * gy))

    y, saved = F.linear_forward(x, w, b, activation)
    gx, gw, gb = F.linear_backward(gy, x, w, saved, activation)
    eps = 1e-6
    for arr, grad in ((x, gx), (w, gw), (b, gb)):
        numeric = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            orig = arr[idx]
            arr[idx] = orig + eps
            up = loss(x, w, b)
            arr[idx] = orig - eps
            down = loss(x, w, b)
            arr[idx] = orig
            numeric[idx] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- PyTorch

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
def test_forward_and_backward_match_pytorch(backend, rng, dtype, activation):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    acts = {
        "identity": lambda z: z, "relu": tf.relu, "leaky_relu": lambda z: tf.leaky_relu(z, 0.01),
        "sigmoid": torch.sigmoid, "tanh": torch.tanh, "gelu": tf.gelu,
        "gelu_tanh": lambda z: tf.gelu(z, approximate="tanh"), "silu": tf.silu,
    }
    x, w, b = make(rng, (11, 7), dtype), make(rng, (6, 7), dtype), make(rng, (6,), dtype)
    gy = make(rng, (11, 6), dtype)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = acts[activation](tf.linear(tx, tw, tb))
    ty.backward(torch.tensor(gy))

    y, saved = F.linear_forward(x, w, b, activation)
    gx, gw, gb = F.linear_backward(gy, x, w, saved, activation)
    for ours, theirs in ((y, ty), (gx, tx.grad), (gw, tw.grad), (gb, tb.grad)):
        _close(ours, theirs.detach().numpy(), dtype, 7)


# ------------------------------------------------------------------ errors

def test_bad_input_raises_clear_errors(backend):
    x = np.ones((3, 4), np.float32)
    w = np.ones((5, 4), np.float32)
    with pytest.raises(TypeError, match="x must be a numpy.ndarray"):
        F.linear([[1.0] * 4], w)
    with pytest.raises(TypeError, match="float32 or float64"):
        F.linear(x.astype(np.int64), w)
    with pytest.raises(TypeError, match="dtype"):
        F.linear(x, w.astype(np.float64))
    with pytest.raises(ValueError, match=r"x.shape\[-1\] \(3\)"):
        F.linear(x[:, :3], w)
    with pytest.raises(ValueError, match="weight must be 2-D"):
        F.linear(x, w[0])
    with pytest.raises(ValueError, match="bias must have shape"):
        F.linear(x, w, np.ones(4, np.float32))
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        F.linear(x, w, None, "swish")
    with pytest.raises(ValueError, match="negative_slope"):
        F.linear(x, w, None, "leaky_relu", negative_slope=-0.1)
    out = np.empty((3, 5), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        F.linear(x, w, out=out)
    with pytest.raises(ValueError, match="out must have shape"):
        F.linear(x, w, out=np.empty((3, 4), np.float32))
    with pytest.raises(ValueError, match="overlaps"):
        buf = np.ones((3, 5), np.float32)
        F.linear(buf[:, :4], w, out=buf)
    with pytest.raises(ValueError, match="needs saved"):
        F.linear_backward(np.ones((3, 5), np.float32), x, w, None, "relu")
    with pytest.raises(ValueError, match="grad_y must have shape"):
        F.linear_backward(np.ones((3, 6), np.float32), x, w, None, "identity")
    with pytest.raises(ValueError, match=r"a.shape\[1\]"):
        F.matmul(x, x)
    with pytest.raises(ValueError, match="unknown activation"):
        F.activation(x, "nope")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nonfinite_products_propagate_without_warnings(backend, dtype):
    """inf * 0 in a product gives NaN and 1e38 * 1e38 gives inf, silently on
    every backend (the suite turns warnings into errors): the NumPy and Numba
    backends keep NumPy's floating-point warnings off around their BLAS calls,
    as the cpp backend never raises them."""
    import warnings

    big = np.finfo(dtype).max
    x = np.array([[np.inf, 1.0], [big, big]], dtype)
    w = np.array([[0.0, 1.0], [big, 0.0]], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # above the suite's ignores for OpenBLAS's stray flags
        y = F.linear(x, w, None, "identity")
        y2, saved = F.linear_forward(x, w, None, "relu")
        gx, gw, gb = F.linear_backward(np.ones_like(y2), x, w, saved, "relu")
        c = F.matmul(x, w.T)
    assert np.isnan(y[0, 0]) and y[0, 1] == np.inf and y[1, 1] == np.inf
    assert np.isinf(gw).any()
    np.testing.assert_array_equal(c, y)
