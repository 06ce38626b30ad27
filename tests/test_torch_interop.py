"""fp.from_torch and Module.to_torch: same outputs as PyTorch, weights copied exactly."""

from __future__ import annotations

import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest

import fusedprop as fp
from fusedprop import nn

from conftest import ALL_ACTIVATIONS

torch = pytest.importorskip("torch")
tnn = torch.nn

TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}
TOL = {np.float32: dict(rtol=1e-6, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}

TORCH_ACTIVATIONS = {
    "identity": lambda: tnn.Identity(),
    "relu": lambda: tnn.ReLU(),
    "leaky_relu": lambda: tnn.LeakyReLU(0.2),
    "sigmoid": lambda: tnn.Sigmoid(),
    "tanh": lambda: tnn.Tanh(),
    "gelu": lambda: tnn.GELU(),
    "gelu_tanh": lambda: tnn.GELU(approximate="tanh"),
    "silu": lambda: tnn.SiLU(),
}


def torch_out(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def fp_out(model, x):
    return np.asarray(model(x))


def data(dtype, batch=7, n=5, seed=0):
    return (2 * np.random.default_rng(seed).standard_normal((batch, n))).astype(dtype)


def assert_same_state(fp_model, torch_model):
    ours, theirs = fp_model.state_dict(), torch_model.state_dict()
    assert list(ours) == list(theirs)
    for k in ours:
        assert ours[k].dtype == theirs[k].numpy().dtype
        np.testing.assert_array_equal(ours[k], theirs[k].numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
def test_from_torch_matches_torch(backend, activation, bias, dtype):
    torch.manual_seed(0)
    tm = tnn.Sequential(tnn.Linear(5, 16, bias=bias), TORCH_ACTIVATIONS[activation](), tnn.Dropout(0.0),
                        tnn.Linear(16, 3, bias=bias)).to(TORCH_DTYPE[dtype])
    model = fp.from_torch(tm)
    assert isinstance(model, nn.Sequential) and len(model) == 4
    assert isinstance(model[2], nn.Dropout) and model[2].p == 0
    assert_same_state(model, tm)
    x = data(dtype)
    np.testing.assert_allclose(fp_out(model, x), torch_out(tm, x), **TOL[dtype])
    assert fp_out(model, x).dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
def test_to_torch_matches_fusedprop(backend, activation, dtype):
    fp.manual_seed(0)
    acts = {"identity": nn.Identity(), "relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(0.2),
            "sigmoid": nn.Sigmoid(), "tanh": nn.Tanh(), "gelu": nn.GELU(), "gelu_tanh": nn.GELU("tanh"),
            "silu": nn.SiLU()}
    model = nn.Sequential(nn.Linear(5, 16, dtype=dtype), acts[activation], nn.Linear(16, 3, bias=False, dtype=dtype))
    tm = model.to_torch()
    assert isinstance(tm, tnn.Sequential) and type(tm[1]).__name__ == type(acts[activation]).__name__
    assert_same_state(model, tm)
    x = data(dtype)
    np.testing.assert_allclose(torch_out(tm, x), fp_out(model, x), **TOL[dtype])
    if activation == "leaky_relu":
        assert tm[1].negative_slope == 0.2
    if activation.startswith("gelu"):
        assert tm[1].approximate == ("none" if activation == "gelu" else "tanh")


@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
def test_fused_linear_becomes_linear_plus_activation(activation):
    fp.manual_seed(3)
    model = nn.Sequential(nn.Linear(5, 4, activation=activation, negative_slope=0.3), nn.Linear(4, 2))
    tm = model.to_torch()
    expected_first = tnn.Linear if activation == "identity" else tnn.Sequential
    assert type(tm[0]) is expected_first
    x = data(np.float32)
    np.testing.assert_allclose(torch_out(tm, x), fp_out(model, x), **TOL[np.float32])
    back = fp.from_torch(tm)  # a Sequential(Linear, activation): the same fused kernel
    np.testing.assert_allclose(fp_out(back, x), fp_out(model, x), **TOL[np.float32])
    if activation != "identity":
        assert list(tm.state_dict())[:2] == ["0.linear.weight", "0.linear.bias"]
        assert back.state_dict().keys() == tm.state_dict().keys()


def test_round_trips_are_exact_and_keep_structure():
    torch.manual_seed(1)
    tm = tnn.Sequential(OrderedDict(
        encoder=tnn.Sequential(tnn.Linear(5, 8), tnn.GELU(approximate="tanh"),
                               tnn.Sequential(tnn.Linear(8, 8).double().float(), tnn.SiLU())),
        head=tnn.Linear(8, 2, bias=False)))
    model = fp.from_torch(tm)
    assert list(model._modules) == ["encoder", "head"]
    assert isinstance(model.encoder[2], nn.Sequential)
    back = model.to_torch()
    assert repr(back) == repr(tm)
    assert_same_state(model, back)
    assert_same_state(fp.from_torch(back), tm)
    x = data(np.float32)
    np.testing.assert_array_equal(torch_out(back, x), torch_out(tm, x))  # the very same weights and modules


def test_single_modules():
    lin = tnn.Linear(3, 2).double()
    ours = fp.from_torch(lin)
    assert type(ours) is nn.Linear and ours.weight.data.dtype == np.float64
    x = data(np.float64, n=3)
    np.testing.assert_allclose(fp_out(ours, x), torch_out(lin, x), **TOL[np.float64])
    assert type(fp.from_torch(tnn.LeakyReLU(0.5))) is nn.LeakyReLU
    assert fp.from_torch(tnn.LeakyReLU(0.5)).negative_slope == 0.5
    assert type(nn.Tanh().to_torch()) is tnn.Tanh
    assert type(nn.Linear(2, 2).to_torch()) is tnn.Linear


def test_weights_are_copies_and_flags_carry_over():
    tm = tnn.Sequential(tnn.Linear(3, 2))
    tm[0].bias.requires_grad_(False)
    tm.eval()
    model = fp.from_torch(tm)
    assert model.training is False and model[0].training is False
    assert model[0].weight.requires_grad and not model[0].bias.requires_grad
    before = model[0].weight.data.copy()
    with torch.no_grad():
        tm[0].weight.add_(1.0)
    np.testing.assert_array_equal(model[0].weight.data, before)

    back = model.to_torch()
    assert back.training is False and not back[0].bias.requires_grad and back[0].weight.requires_grad
    model[0].weight.data += 1.0
    np.testing.assert_array_equal(back[0].weight.detach().numpy(), before)


def test_to_torch_leaves_torch_rng_alone():
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))
    state = torch.get_rng_state()
    model.to_torch()
    assert torch.equal(torch.get_rng_state(), state)


def test_trained_fusedprop_model_predicts_the_same_in_torch():
    fp.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 4)).astype(np.float32), rng.integers(0, 3, 64)
    fp.fit(model, X, y, nn.CrossEntropyLoss(), fp.optim.Adam(model.parameters(), lr=1e-2), epochs=2,
           batch_size=16, progress=False)
    np.testing.assert_allclose(torch_out(model.to_torch(), X), fp_out(model.eval(), X), **TOL[np.float32])


class MyLinear(tnn.Linear):
    def forward(self, x):
        return super().forward(x) * 2


@pytest.mark.parametrize("module, error, match", [
    (tnn.Sequential(tnn.Linear(3, 3), tnn.Dropout(1.0)), TypeError,
     r"module 1 \(Dropout\(p=1.0\)\): fusedprop's Dropout needs p in \[0, 1\)"),
    (tnn.Sequential(tnn.Linear(3, 3), tnn.Sequential(tnn.ReLU(), tnn.BatchNorm2d(3))), TypeError,
     r"module 1\.1 \(BatchNorm2d\)"),
    (tnn.Conv1d(1, 1, 3), TypeError, r"\(Conv1d\)"),
    (tnn.Sequential(MyLinear(3, 3)), TypeError, r"module 0 \(MyLinear\)"),
    (tnn.Sequential(tnn.Linear(3, 3).half()), TypeError, r"0\.weight must be float32 or float64, got torch.float16"),
    (tnn.LeakyReLU(-0.1), ValueError, "negative_slope"),
    (np.zeros(3), TypeError, "must be a torch.nn.Module, got ndarray"),
])
def test_from_torch_errors(module, error, match):
    with pytest.raises(error, match=match):
        fp.from_torch(module)


def test_to_torch_errors():
    with pytest.raises(TypeError, match=r"module 1 \(MSELoss\)"):
        nn.Sequential(nn.Linear(2, 2), nn.MSELoss()).to_torch()

    class Custom(nn.Module):
        def forward(self, x):
            return x
    with pytest.raises(TypeError, match=r"cannot convert \(Custom\)"):
        Custom().to_torch()


def test_missing_torch_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="pip install torch"):
        nn.Linear(2, 2).to_torch()
    with pytest.raises(ImportError, match="pip install torch"):
        fp.from_torch(object())


def test_import_fusedprop_does_not_import_torch():
    code = "import sys, fusedprop; fusedprop.from_torch; fusedprop.nn.Linear(2, 2); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]
    assert "from_torch" in fp.__all__
