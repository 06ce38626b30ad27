"""Array inputs: PyTorch CPU tensors, JAX arrays and DLPack objects work wherever
NumPy arrays do, as views; tensors NumPy cannot view raise TypeError."""

from __future__ import annotations

import numpy as np
import pytest

import fusedprop as fp
from fusedprop import functional as F
from fusedprop import nn
from fusedprop._arrays import as_array

torch = pytest.importorskip("torch")

DTYPES = [np.float32, np.float64]
TORCH = {np.float32: torch.float32, np.float64: torch.float64}


def torch_views(dtype, shape, seed=0):
    """The same values as a contiguous tensor, a transposed view and a strided slice."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(shape, generator=g, dtype=TORCH[dtype])
    big = torch.zeros((shape[0] * 2, shape[1] * 3), dtype=TORCH[dtype])
    big[::2, 1::3] = base
    return base.numpy().copy(), [base, base.t().contiguous().t(), big[::2, 1::3]]


class DLPackOnly:
    """Exposes memory through DLPack only (no __array__), as some libraries do."""

    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


def test_views_share_memory():
    t = torch.arange(24, dtype=torch.float32).reshape(4, 6)[:, ::2]
    a = as_array(t, "f", "x")
    assert a.shape == (4, 3) and not a.flags.c_contiguous
    assert np.shares_memory(a, t.numpy())
    t[0, 0] = 42.0
    assert a[0, 0] == 42.0  # a view, not a copy
    n = np.ones((2, 3))
    assert np.shares_memory(as_array(DLPackOnly(n), "f", "x"), n)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_functional_takes_torch_tensors(backend, dtype):
    xs, x_views = torch_views(dtype, (7, 5), 0)
    ws, w_views = torch_views(dtype, (4, 5), 1)
    bs = np.linspace(-1, 1, 4).astype(dtype)
    b = torch.from_numpy(bs)
    tol = {"rtol": 1e-6, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-14, "atol": 1e-14}
    for j, x in enumerate(x_views):
        for i, w in enumerate(w_views):
            # A product with few rows reads its operands where they lie
            # (csrc/gemm/skinny.h), so its bits follow their layouts: exact for
            # the contiguous views, within rounding for the others.
            same = np.testing.assert_array_equal if i == j == 0 else (
                lambda a, b: np.testing.assert_allclose(a, b, **tol))
            same(F.linear(x, w, b, "gelu"), F.linear(xs, ws, bs, "gelu"))
            y, saved = F.linear_forward(x, w, b, "tanh")
            y_ref, saved_ref = F.linear_forward(xs, ws, bs, "tanh")
            same(y, y_ref)
            got = F.linear_backward(torch.from_numpy(np.ones_like(y)), x, w, torch.from_numpy(saved), "tanh")
            ref = F.linear_backward(np.ones_like(y), xs, ws, saved_ref, "tanh")
            for g, r in zip(got, ref):
                same(g, r)
        np.testing.assert_array_equal(F.activation(x, "silu"), F.activation(xs, "silu"))
        np.testing.assert_array_equal(F.activation_grad(x, x, "sigmoid"), F.activation_grad(xs, xs, "sigmoid"))
        # the same layouts as NumPy arrays: the same path, the same bits
        np.testing.assert_array_equal(F.matmul(x, w_views[2].t()), F.matmul(x.numpy(), w_views[2].numpy().T))
        np.testing.assert_allclose(F.matmul(x, w_views[2].t()), F.matmul(xs, ws.T), **tol)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_model_forward_backward_on_torch_tensors(backend, dtype):
    xs, x_views = torch_views(dtype, (6, 5))
    for x in x_views:
        fp.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 8, dtype=dtype), nn.ReLU(), nn.Linear(8, 2, dtype=dtype))
        out = model(x)
        ref = model(xs)
        np.testing.assert_array_equal(np.asarray(out), np.asarray(ref))
        out.sum().backward()
        g_torch = model[0].weight.grad.copy()
        model.zero_grad()
        ref.sum().backward()
        np.testing.assert_array_equal(g_torch, model[0].weight.grad)
        np.testing.assert_array_equal(np.asarray(model.eval()(x)), np.asarray(ref))
    # float16 is converted to the layer's dtype, as NumPy float16 is (the documented conversion)
    half = torch.from_numpy(xs).half()
    np.testing.assert_array_equal(np.asarray(model(half)), np.asarray(model(half.numpy().astype(dtype))))


def test_losses_and_tensor_take_torch_tensors(backend):
    x = torch.randn(4, 3)
    y = torch.tensor([0, 2, 1, 1])
    ref = nn.CrossEntropyLoss()(fp.tensor(x.numpy()), y.numpy()).item()
    assert nn.CrossEntropyLoss()(fp.tensor(x.numpy()), y).item() == ref
    assert nn.MSELoss()(x, x).item() == 0.0
    t64 = fp.tensor(torch.ones(2, dtype=torch.float64))
    assert t64.dtype == np.float64  # kept, as torch.tensor(a float64 tensor) keeps it
    assert fp.tensor(torch.ones(2)).dtype == np.float32


def test_fit_predict_and_train_step_take_torch_tensors(backend):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 5)).astype(np.float32)
    y = rng.integers(0, 3, 40)

    def train(X_, y_):
        fp.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
        opt = fp.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        hist = fp.fit(model, X_, y_, nn.CrossEntropyLoss(), opt, epochs=2, batch_size=16, progress=False,
                      validation_data=(X_, y_))
        step = fp.TrainStep(model, nn.CrossEntropyLoss(), opt)
        loss = step(X_[:8], y_[:8])
        return hist, loss, fp.predict(model, X_, batch_size=16)

    ref = train(X, y)
    Xt = torch.from_numpy(np.asfortranarray(X))  # a non-C-contiguous tensor
    got = train(Xt, torch.from_numpy(y))
    assert got[0] == ref[0] and got[1] == ref[1]
    np.testing.assert_array_equal(got[2], ref[2])


BAD_TENSORS = {
    "requires_grad": (lambda: torch.ones(3, 5, requires_grad=True), "requires grad.*detach"),
    "non_cpu": (lambda: torch.ones(3, 5, device="meta"), "on device meta.*cpu"),
    "bfloat16": (lambda: torch.ones(3, 5, dtype=torch.bfloat16), "NumPy can view.*torch.Tensor.*BFloat16"),
    "neg_view": (lambda: torch.ones(3, 5)._neg_view(), "NumPy can view.*negative bit"),
}


@pytest.mark.parametrize("kind", list(BAD_TENSORS))
def test_tensors_numpy_cannot_view_raise_type_error(backend, kind):
    make, match = BAD_TENSORS[kind]
    w = np.ones((2, 5), np.float32)
    model = nn.Sequential(nn.Linear(5, 2))
    calls = {
        "F.linear": lambda x: F.linear(x, w),
        "F.activation": lambda x: F.activation(x, "relu"),
        "model": lambda x: model(x),
        "eval model": lambda x: model.eval()(x),
        "predict": lambda x: fp.predict(model, x),
        "fit": lambda x: fp.fit(model, x, np.zeros((3, 2), np.float32), nn.MSELoss(),
                                fp.optim.SGD(model.parameters(), lr=0.1), epochs=1, progress=False),
        "tensor": lambda x: fp.tensor(x),
    }
    for name, call in calls.items():
        with pytest.raises(TypeError, match=match):
            call(make())
        model.train()


def test_out_must_still_be_a_numpy_array(backend):
    x = np.ones((2, 3), np.float32)
    with pytest.raises(TypeError, match="out must be a numpy.ndarray"):
        F.activation(x, "relu", out=torch.empty(2, 3))


def test_dlpack_only_objects(backend):
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    w = np.ones((3, 5), np.float32)
    np.testing.assert_array_equal(F.linear(DLPackOnly(x), DLPackOnly(w)), F.linear(x, w))
    model = nn.Linear(5, 3)
    np.testing.assert_array_equal(np.asarray(model(DLPackOnly(x))), np.asarray(model(x)))


@pytest.fixture
def jnp():
    jax = pytest.importorskip("jax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)  # float64 arrays (JAX makes float32 ones otherwise)
    try:
        yield pytest.importorskip("jax.numpy")
    finally:
        jax.config.update("jax_enable_x64", previous)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_jax_arrays(backend, jnp, dtype):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((6, 5)).astype(dtype), rng.standard_normal((4, 5)).astype(dtype)
    xj, wj = jnp.asarray(x), jnp.asarray(w)
    assert xj.dtype == dtype
    np.testing.assert_array_equal(F.linear(xj, wj, None, "relu"), F.linear(x, w, None, "relu"))
    model = nn.Sequential(nn.Linear(5, 3, dtype=dtype), nn.GELU())
    np.testing.assert_array_equal(np.asarray(model(xj)), np.asarray(model(x)))
    np.testing.assert_array_equal(fp.predict(model, xj), fp.predict(model, x))
    y = rng.standard_normal((6, 3)).astype(dtype)

    def fit(X_, y_):
        fp.manual_seed(0)
        m = nn.Sequential(nn.Linear(5, 3, dtype=dtype), nn.GELU())
        return fp.fit(m, X_, y_, nn.MSELoss(), fp.optim.SGD(m.parameters(), lr=0.01), epochs=2, batch_size=4,
                      progress=False), m.state_dict()

    (h_ref, s_ref), (h, s) = fit(x, y), fit(xj, jnp.asarray(y))
    assert h == h_ref
    for k in s:
        np.testing.assert_array_equal(s[k], s_ref[k])
