"""The autograd tape: finite differences, accumulation, shared tensors, no_grad/eval, Tensor basics."""

from __future__ import annotations

import numpy as np
import pytest

import fusedprop as fp
import fusedprop.nn as nn
from conftest import ALL_ACTIVATIONS


def _numeric_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        hi = f()
        x[i] = old - eps
        lo = f()
        x[i] = old
        g[i] = (hi - lo) / (2 * eps)
    return g


LOSS_CASES = [
    ("mse", lambda r: nn.MSELoss(reduction=r), "real"),
    ("l1", lambda r: nn.L1Loss(reduction=r), "real"),
    ("bce", lambda r: nn.BCELoss(reduction=r), "prob"),
    ("bcelogits", lambda r: nn.BCEWithLogitsLoss(reduction=r), "prob"),
    ("ce", lambda r: nn.CrossEntropyLoss(reduction=r), "index"),
    ("ce-smooth", lambda r: nn.CrossEntropyLoss(reduction=r, label_smoothing=0.2), "index"),
    ("ce-probs", lambda r: nn.CrossEntropyLoss(reduction=r, label_smoothing=0.1), "simplex"),
]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name,make,kind", LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_loss_gradients_match_finite_differences(backend, rng, name, make, kind, reduction):
    n, c = 4, 3
    if kind == "prob":
        x = rng.uniform(0.1, 0.9, (n, c)) if name == "bce" else rng.standard_normal((n, c))
        y = rng.uniform(0, 1, (n, c))
    elif kind == "index":
        x, y = rng.standard_normal((n, c)), rng.integers(0, c, n)
    elif kind == "simplex":
        x, y = rng.standard_normal((n, c)), rng.dirichlet(np.ones(c), n)
    else:
        x, y = rng.standard_normal((n, c)), rng.standard_normal((n, c))
    crit = make(reduction)
    out_shape = crit(fp.tensor(x), y).shape
    weights = rng.standard_normal(out_shape)  # a random projection of 'none' losses

    def value():
        return float(np.sum(crit(fp.tensor(x), y).numpy() * weights))

    t = fp.tensor(x, requires_grad=True)
    out = crit(t, y)
    assert out.dtype == np.float64 and out.grad_fn is not None
    out.backward(weights if out.ndim else weights * np.ones(()))
    np.testing.assert_allclose(t.grad, _numeric_grad(value, x), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
def test_network_parameter_gradients_match_finite_differences(backend, rng, activation):
    fp.manual_seed(3)
    mods = [nn.Linear(4, 5, dtype=np.float64)]
    if activation != "identity":
        mods.append({"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
                     "gelu": nn.GELU, "gelu_tanh": lambda: nn.GELU("tanh"), "silu": nn.SiLU}[activation]())
    mods += [nn.Linear(5, 3, dtype=np.float64)]
    model = nn.Sequential(*mods)
    x, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    crit = nn.CrossEntropyLoss()
    crit(model(x), y).backward()
    for name, p in model.named_parameters():
        numeric = _numeric_grad(lambda: crit(model(x), y).item(), p.data)
        np.testing.assert_allclose(p.grad, numeric, rtol=1e-6, atol=1e-8, err_msg=name)


def test_gradients_accumulate_until_zero_grad(backend, rng):
    model = nn.Sequential(nn.Linear(3, 4, dtype=np.float64), nn.Tanh(), nn.Linear(4, 2, dtype=np.float64))
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    crit = nn.MSELoss()
    crit(model(x), y).backward()
    first = [p.grad.copy() for p in model.parameters()]
    crit(model(x), y).backward()
    for g1, p in zip(first, model.parameters()):
        np.testing.assert_allclose(p.grad, 2 * g1, rtol=1e-14)
    model.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    crit(model(x), y).backward()
    for g1, p in zip(first, model.parameters()):
        np.testing.assert_allclose(p.grad, g1, rtol=1e-14)


def test_tensor_used_twice_gets_both_gradients(backend, rng):
    lin = nn.Linear(3, 3, dtype=np.float64)
    x = fp.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    h = lin(x)
    out = lin(h) + h * 3.0  # h feeds two ops; lin's weight is used twice
    out.sum().backward()

    def value():
        return float((lin(lin(x.numpy())) + lin(x.numpy()) * 3.0).sum().item())

    np.testing.assert_allclose(lin.weight.grad, _numeric_grad(value, lin.weight.data), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(lin.bias.grad, _numeric_grad(value, lin.bias.data), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(x.grad, _numeric_grad(value, x.data), rtol=1e-6, atol=1e-8)


def test_diamond_graph_and_elementwise_ops(rng):
    a = fp.tensor(rng.standard_normal(4), requires_grad=True)
    b = fp.tensor(rng.standard_normal(4), requires_grad=True)
    c = a * b
    d = (c + a) - (c * 2.0) + 1.0 - b
    e = (-d).mean()
    e.backward()
    # e = -mean(a + ab - 2ab + 1 - b) = -mean(a - ab + 1 - b)
    np.testing.assert_allclose(a.grad, -(1 - b.numpy()) / 4, rtol=1e-6)
    np.testing.assert_allclose(b.grad, -(-a.numpy() - 1) / 4, rtol=1e-6)
    assert a.grad.dtype == np.float64  # NumPy float64 input stays float64


def test_no_grad_and_eval_record_nothing(backend, rng):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = rng.standard_normal((5, 3)).astype(np.float32)
    trained = model(x)
    assert trained.requires_grad and trained.grad_fn is not None
    with fp.no_grad():
        out = model(x)
        loss = nn.CrossEntropyLoss()(out, np.zeros(5, dtype=np.int64))
    assert fp.is_grad_enabled()  # restored on exit
    for t in (out, loss):
        assert t.grad_fn is None and not t.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        loss.backward()
    model.eval()
    assert not any(m.training for m in model.modules())
    evaluated = model(x)
    assert evaluated.grad_fn is None and not evaluated.requires_grad
    np.testing.assert_allclose(evaluated.numpy(), trained.numpy(), rtol=1e-6)
    model.train()
    assert model(x).grad_fn is not None

    @fp.no_grad()
    def predict(inp):
        return model(inp)

    assert predict(x).grad_fn is None and fp.is_grad_enabled()


def test_sequential_fuses_linear_with_following_activation(backend, monkeypatch):
    model = nn.Sequential(nn.Linear(3, 4), nn.GELU(approximate="tanh"), nn.Linear(4, 4), nn.Linear(4, 2),
                          nn.LeakyReLU(0.3), nn.Sigmoid())
    assert model.fused == [(0, 1, "gelu_tanh"), (3, 4, "leaky_relu")]
    text = repr(model)
    assert "(0): Linear(in_features=3, out_features=4, bias=True)  # fused with (1)" in text
    assert "(5): Sigmoid()" in text and "(2): Linear(in_features=4, out_features=4, bias=True)\n" in text
    from fusedprop import backends
    calls = []
    real_forward, real_backward = backends.current.linear_forward, backends.current.linear_backward

    def spy_forward(x, w, b, act, slope):
        calls.append(("forward", act, slope))
        return real_forward(x, w, b, act, slope)

    def spy_backward(g, x, w, saved, act, slope, needs):
        calls.append(("backward", act, needs))
        return real_backward(g, x, w, saved, act, slope, needs)

    monkeypatch.setattr(backends.current, "linear_forward", spy_forward)
    monkeypatch.setattr(backends.current, "linear_backward", spy_backward)
    out = model(np.ones((2, 3), dtype=np.float32))
    out.sum().backward()
    assert calls == [("forward", "gelu_tanh", 0.01), ("forward", "identity", 0.01), ("forward", "leaky_relu", 0.3),
                     ("backward", "leaky_relu", True), ("backward", "identity", True),
                     ("backward", "gelu_tanh", False)]
    model.append(nn.Linear(2, 2))
    model.append(nn.Tanh())
    assert model.fused[-1] == (6, 7, "tanh")  # the plan is rebuilt after a mutation


def test_input_dtype_conversion(backend, rng):
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    x64 = fp.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    out = model(x64)
    assert out.dtype == np.float32
    out.sum().backward()
    assert x64.grad.dtype == np.float64 and x64.grad.shape == (4, 3)
    assert model(np.ones((1, 3), dtype=np.float16)).dtype == np.float32
    with pytest.raises(TypeError, match="floating-point"):
        model(np.ones((2, 3), dtype=np.int64))
    with pytest.raises(TypeError, match="floating-point"):
        model(fp.tensor([[1, 2, 3]]))


def test_tensor_factories_and_basics():
    t = fp.tensor([[1.0, 2.0]])
    assert t.dtype == np.float32 and t.shape == (1, 2) and t.ndim == 2
    assert fp.tensor(np.zeros(2)).dtype == np.float64
    assert fp.tensor([1, 2]).dtype == np.int64
    assert fp.tensor([1.0], dtype=np.float64).dtype == np.float64
    assert fp.tensor(3.5).item() == 3.5
    assert np.asarray(t).dtype == np.float32 and np.asarray(t, dtype=np.float64).dtype == np.float64
    assert repr(t) == "tensor([[1., 2.]])"
    with pytest.raises(TypeError):
        fp.tensor([1, 2], requires_grad=True)
    with pytest.raises(ValueError, match="one-element"):
        t.item()
    fp.manual_seed(7)
    a = fp.randn(3, 4)
    fp.manual_seed(7)
    b = fp.randn((3, 4))
    assert a.dtype == np.float32 and a.shape == (3, 4)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert fp.randn(2, dtype=np.float64).dtype == np.float64
    z = fp.zeros(2, 3, requires_grad=True)
    assert not z.numpy().any() and z.requires_grad and "requires_grad=True" in repr(z)
    y = (z * 2.0).sum()
    assert "grad_fn=<SumBackward0>" in repr(y)
    d = y.detach()
    assert d.grad_fn is None and not d.requires_grad
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (z * 2.0).backward()
    with pytest.raises(ValueError, match="shape"):
        (z * 2.0).backward(np.ones(3))


def test_loss_errors_name_the_problem():
    x = fp.tensor(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"class index 4 is out of range \[0, 4\)"):
        nn.CrossEntropyLoss()(x, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="out of range"):
        nn.CrossEntropyLoss()(x, np.array([0, -1, 1]))
    with pytest.raises(ValueError, match="must have shape"):
        nn.CrossEntropyLoss()(x, np.array([0, 1]))
    with pytest.raises(ValueError, match="input's shape"):
        nn.CrossEntropyLoss()(x, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="target shape"):
        nn.MSELoss()(x, np.zeros((3, 1)))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        nn.BCELoss()(fp.tensor(np.full((2,), 1.5)), np.ones(2))
    with pytest.raises(ValueError, match="reduction"):
        nn.L1Loss(reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        nn.CrossEntropyLoss(label_smoothing=1.5)


def test_cross_entropy_single_sample_and_empty_batch(backend):
    logits = fp.tensor(np.array([1.0, 2.0, 0.5]), requires_grad=True)
    loss = nn.CrossEntropyLoss()(logits, np.array(1))
    assert loss.shape == ()
    loss.backward()
    p = np.exp([1.0, 2.0, 0.5]) / np.exp([1.0, 2.0, 0.5]).sum()
    np.testing.assert_allclose(logits.grad, p - np.array([0, 1, 0]), rtol=1e-12)
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    out = model(np.zeros((0, 3), dtype=np.float32))
    assert out.shape == (0, 2)
    nn.MSELoss(reduction="sum")(out, np.zeros((0, 2))).backward()
    assert not model[0].weight.grad.any()


def test_grad_mode_is_per_thread_and_decorates(backend):
    import threading

    @fp.no_grad
    def bare():
        return fp.is_grad_enabled()

    assert bare() is False and fp.is_grad_enabled()
    seen = []
    with fp.no_grad():
        worker = threading.Thread(target=lambda: seen.append(fp.is_grad_enabled()))
        worker.start()
        worker.join()
        with fp.enable_grad():
            assert fp.is_grad_enabled()
        assert not fp.is_grad_enabled()
    assert seen == [True] and fp.is_grad_enabled()


def test_amsgrad_switched_on_later_gets_its_state():
    lin = nn.Linear(2, 2)
    opt = fp.optim.Adam(lin.parameters())
    lin.weight.grad = np.ones((2, 2), np.float32)
    opt.step()
    opt.param_groups[0]["amsgrad"] = True
    opt.step()
    assert opt.state[lin.weight]["max_exp_avg_sq"].shape == (2, 2)
