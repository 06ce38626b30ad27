"""Module and optimizer state dicts: round trips, strictness, PyTorch checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

import fusedprop as fp
import fusedprop.nn as nn
from fusedprop import optim


def _model(dtype=np.float64):
    return nn.Sequential(nn.Linear(4, 6, dtype=dtype), nn.ReLU(), nn.Linear(6, 3, bias=False, dtype=dtype))


def test_module_state_dict_keys_and_round_trip(rng):
    fp.manual_seed(1)
    a = _model()
    sd = a.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "2.weight"]
    assert sd["0.weight"].shape == (6, 4)
    assert not np.shares_memory(sd["0.weight"], a[0].weight.data)  # copies
    b = _model()
    result = b.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    x = rng.standard_normal((5, 4))
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    weight = b[0].weight.data
    b.load_state_dict(a.state_dict())
    assert b[0].weight.data is weight  # loaded in place: optimizers keep their references


def test_load_state_dict_strictness_and_shape_errors():
    m = _model()
    sd = m.state_dict()
    del sd["0.bias"]
    sd["extra"] = np.zeros(1)
    with pytest.raises(RuntimeError, match=r"missing key\(s\): '0.bias'.*unexpected key\(s\): 'extra'"):
        m.load_state_dict(sd)
    result = m.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["0.bias"] and result.unexpected_keys == ["extra"]
    bad = m.state_dict()
    bad["2.weight"] = np.zeros((3, 7))
    before = m[0].weight.data.copy()
    bad["0.weight"] = before + 1
    with pytest.raises(ValueError, match=r"size mismatch for '2.weight'.*\(3, 7\).*\(3, 6\)"):
        m.load_state_dict(bad)
    np.testing.assert_array_equal(m[0].weight.data, before)  # nothing written


def test_loads_a_pytorch_state_dict_directly(rng):
    torch = pytest.importorskip("torch")
    tm = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3, bias=False))
    m = _model(np.float32)
    m.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})  # converted to NumPy
    x = rng.standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(m(x).numpy(), tm(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    m2 = _model(np.float32)
    m2.load_state_dict(tm.state_dict())  # torch tensors as they are
    np.testing.assert_array_equal(m2[0].weight.data, m[0].weight.data)


def test_module_api_names_and_repr():
    m = _model()
    assert [n for n, _ in m.named_parameters()] == ["0.weight", "0.bias", "2.weight"]
    assert len(list(m.parameters())) == 3 and len(list(m.children())) == 3
    assert repr(nn.Linear(2, 3)) == "Linear(in_features=2, out_features=3, bias=True)"
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.GELU("tanh")) == "GELU(approximate='tanh')"
    assert repr(nn.MSELoss(reduction="sum")) == "MSELoss(reduction='sum')"

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = _model()
            self.scale = nn.Parameter(np.ones(1))

        def forward(self, x):
            return self.body(x) * self.scale

    net = Net()
    assert list(net.state_dict()) == ["scale", "body.0.weight", "body.0.bias", "body.2.weight"]
    assert net(np.ones((2, 4))).shape == (2, 3)
    assert repr(net).startswith("Net(\n  (body): Sequential(\n    (0): Linear")


def _train(model, opt, rng, steps):
    crit = nn.CrossEntropyLoss()
    for _ in range(steps):
        x, y = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
        opt.zero_grad()
        crit(model(x), y).backward()
        opt.step()


@pytest.mark.parametrize("make_opt", [
    lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    lambda p: optim.Adam(p, lr=1e-2, amsgrad=True),
    lambda p: optim.AdamW(p, lr=1e-2),
], ids=["sgd", "adam", "adamw"])
def test_optimizer_state_dict_round_trip(backend, make_opt):
    fp.manual_seed(0)
    a = _model()
    opt_a = make_opt(a.parameters())
    _train(a, opt_a, np.random.default_rng(1), 2)
    model_sd, opt_sd = a.state_dict(), opt_a.state_dict()
    assert sorted(opt_sd["state"]) == [0, 1, 2] and opt_sd["param_groups"][0]["params"] == [0, 1, 2]
    _train(a, opt_a, np.random.default_rng(2), 3)

    fp.manual_seed(5)
    b = _model()
    opt_b = make_opt(b.parameters())
    b.load_state_dict(model_sd)
    opt_b.load_state_dict(opt_sd)
    _train(b, opt_b, np.random.default_rng(2), 3)
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(pa.data, pb.data)


def test_optimizer_load_state_dict_checks_groups():
    opt = optim.SGD(_model().parameters(), lr=0.1)
    other = optim.SGD(list(_model().parameters())[:2], lr=0.1)
    with pytest.raises(ValueError, match="group 0 has 2 parameters"):
        opt.load_state_dict(other.state_dict())


def test_optimizer_loads_pytorch_adam_state():
    torch = pytest.importorskip("torch")
    tm = torch.nn.Linear(3, 2)
    topt = torch.optim.Adam(tm.parameters(), lr=1e-2)
    tm(torch.randn(4, 3)).sum().backward()
    topt.step()
    m = nn.Linear(3, 2)
    m.load_state_dict(tm.state_dict())
    opt = optim.Adam(m.parameters(), lr=1e-2)
    opt.load_state_dict(topt.state_dict())
    assert opt.state[m.weight]["step"] == 1.0
    np.testing.assert_array_equal(opt.state[m.weight]["exp_avg"], topt.state[tm.weight]["exp_avg"].numpy())
