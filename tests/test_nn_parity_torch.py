"""Networks, losses and optimizers against PyTorch, from the same weights: the
loss and every parameter after five training steps agree (float64 ~1e-9
relative, float32 ~1e-5)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import fusedprop as fp
import fusedprop.nn as nn
from fusedprop import optim
from nn_helpers import ACTIVATIONS, twin_mlp

torch = pytest.importorskip("torch")

DTYPES = (np.float64, np.float32)
HIDDEN_ACTS = tuple(ACTIVATIONS)

# (label, fusedprop factory, torch factory, final activation, target kind)
LOSSES = []
for _red in ("mean", "sum", "none"):
    LOSSES += [
        (f"mse-{_red}", lambda r=_red: nn.MSELoss(reduction=r), lambda r=_red: torch.nn.MSELoss(reduction=r), None, "real"),
        (f"l1-{_red}", lambda r=_red: nn.L1Loss(reduction=r), lambda r=_red: torch.nn.L1Loss(reduction=r), None, "real"),
        (f"bce-{_red}", lambda r=_red: nn.BCELoss(reduction=r), lambda r=_red: torch.nn.BCELoss(reduction=r),
         "sigmoid", "prob"),
        (f"bcelogits-{_red}", lambda r=_red: nn.BCEWithLogitsLoss(reduction=r),
         lambda r=_red: torch.nn.BCEWithLogitsLoss(reduction=r), None, "prob"),
        (f"ce-{_red}", lambda r=_red: nn.CrossEntropyLoss(reduction=r),
         lambda r=_red: torch.nn.CrossEntropyLoss(reduction=r), None, "index"),
        (f"ce-smooth-{_red}", lambda r=_red: nn.CrossEntropyLoss(reduction=r, label_smoothing=0.1),
         lambda r=_red: torch.nn.CrossEntropyLoss(reduction=r, label_smoothing=0.1), None, "index"),
        (f"ce-probs-{_red}", lambda r=_red: nn.CrossEntropyLoss(reduction=r, label_smoothing=0.05),
         lambda r=_red: torch.nn.CrossEntropyLoss(reduction=r, label_smoothing=0.05), None, "simplex"),
    ]

OPTIMIZERS = {
    "sgd": (lambda p: optim.SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    "sgd-momentum": (lambda p: optim.SGD(p, lr=0.05, momentum=0.9),
                     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    "sgd-damp-wd": (lambda p: optim.SGD(p, lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01),
                    lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    "sgd-nesterov-wd": (lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
                        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    "adam": (lambda p: optim.Adam(p, lr=1e-2), lambda p: torch.optim.Adam(p, lr=1e-2)),
    "adam-amsgrad-wd": (lambda p: optim.Adam(p, lr=1e-2, betas=(0.8, 0.99), weight_decay=0.01, amsgrad=True),
                        lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.8, 0.99), weight_decay=0.01, amsgrad=True)),
    "adam-lerp-high": (lambda p: optim.Adam(p, lr=1e-2, betas=(0.3, 0.9), eps=1e-6),
                       lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.3, 0.9), eps=1e-6)),
    "adamw": (lambda p: optim.AdamW(p, lr=1e-2), lambda p: torch.optim.AdamW(p, lr=1e-2)),
    "adamw-amsgrad": (lambda p: optim.AdamW(p, lr=1e-2, weight_decay=0.1, amsgrad=True),
                      lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1, amsgrad=True)),
}


def _tol(dtype):
    return dict(rtol=1e-9, atol=1e-11) if dtype == np.float64 else dict(rtol=1e-5, atol=2e-6)


def _targets(rng, kind, n, c, dtype):
    if kind == "real":
        return rng.standard_normal((n, c)).astype(dtype)
    if kind == "prob":
        return rng.uniform(0, 1, (n, c)).astype(dtype)
    if kind == "index":
        return rng.integers(0, c, n)
    p = rng.uniform(0.1, 1, (n, c))
    return (p / p.sum(axis=1, keepdims=True)).astype(dtype)


def _train_both(rng, dtype, loss_cfg, opt_key, steps=5):
    _, fp_loss_f, t_loss_f, final, kind = loss_cfg
    depth = int(rng.integers(1, 4))
    widths = [int(w) for w in rng.integers(2, 12, depth + 1)]
    if kind in ("index", "simplex"):
        widths[-1] = max(widths[-1], 2)
    acts = [HIDDEN_ACTS[int(i)] for i in rng.integers(0, len(HIDDEN_ACTS), depth)]
    bias = bool(rng.integers(0, 2))
    model, tmodel = twin_mlp(torch, rng, widths, acts, bias, dtype, final=final)
    opt, topt = OPTIMIZERS[opt_key][0](model.parameters()), OPTIMIZERS[opt_key][1](tmodel.parameters())
    crit, tcrit = fp_loss_f(), t_loss_f()
    n = int(rng.integers(1, 9))
    for _ in range(steps):
        x = rng.standard_normal((n, widths[0])).astype(dtype)
        y = _targets(rng, kind, n, widths[-1], dtype)
        opt.zero_grad()
        loss = crit(model(fp.tensor(x)), fp.tensor(y))
        (loss.sum() if loss.ndim else loss).backward()
        opt.step()
        topt.zero_grad()
        tloss = tcrit(tmodel(torch.from_numpy(x)), torch.from_numpy(y))
        (tloss.sum() if tloss.ndim else tloss).backward()
        topt.step()
        np.testing.assert_allclose(loss.numpy(), tloss.detach().numpy(), **_tol(dtype))
    for (name, p), tp in zip(model.named_parameters(), tmodel.parameters()):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), **_tol(dtype), err_msg=name)
    return model


def _rng(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss_cfg", LOSSES, ids=[c[0] for c in LOSSES])
def test_each_loss_and_reduction_trains_like_pytorch(backend, dtype, loss_cfg):
    opt_key = list(OPTIMIZERS)[zlib.crc32(loss_cfg[0].encode()) % len(OPTIMIZERS)]
    _train_both(_rng(loss_cfg[0], np.dtype(dtype).name), dtype, loss_cfg, opt_key)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opt_key", list(OPTIMIZERS))
def test_each_optimizer_trains_like_pytorch(backend, dtype, opt_key):
    rng = _rng(opt_key, np.dtype(dtype).name)
    for cfg in (LOSSES[0], LOSSES[4]):  # MSE and cross-entropy, mean
        _train_both(rng, dtype, cfg, opt_key)


@pytest.mark.parametrize("seed", range(6))
def test_random_networks_float64(backend, seed):
    rng = _rng("random", seed)
    cfg = LOSSES[int(rng.integers(0, len(LOSSES)))]
    opt_key = list(OPTIMIZERS)[int(rng.integers(0, len(OPTIMIZERS)))]
    _train_both(rng, np.float64, cfg, opt_key)


@pytest.mark.parametrize("act", [a for a in HIDDEN_ACTS if a != "identity"])
def test_linear_with_own_activation_matches_torch_linear_then_activation(backend, act):
    rng = _rng("own", act)
    slope = 0.2 if act == "leaky_relu" else 0.01
    lin = nn.Linear(5, 4, activation=act, dtype=np.float64, negative_slope=slope)
    tlin = torch.nn.Linear(5, 4, dtype=torch.float64)
    with torch.no_grad():
        tlin.weight.copy_(torch.from_numpy(lin.weight.data))
        tlin.bias.copy_(torch.from_numpy(lin.bias.data))
    x = rng.standard_normal((3, 5))
    y = lin(fp.tensor(x))
    ty = ACTIVATIONS[act][1](torch)(tlin(torch.from_numpy(x)))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    g = rng.standard_normal((3, 4))
    y.backward(g)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(lin.weight.grad, tlin.weight.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(lin.bias.grad, tlin.bias.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_default_init_follows_pytorch_bounds():
    fp.manual_seed(0)
    lin = nn.Linear(50, 400)
    bound = 1 / np.sqrt(50)
    for p in (lin.weight.data, lin.bias.data):
        assert p.dtype == np.float32
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.9 * bound
    fp.manual_seed(0)
    again = nn.Linear(50, 400)
    np.testing.assert_array_equal(again.weight.data, lin.weight.data)


def test_bce_clamps_log_like_pytorch(backend):
    p = np.array([0.0, 1.0, 0.5, 1e-50], dtype=np.float64)
    y = np.array([1.0, 0.0, 1.0, 1.0])
    for red in ("none", "mean", "sum"):
        ours = nn.BCELoss(reduction=red)(fp.tensor(p), fp.tensor(y)).numpy()
        theirs = torch.nn.BCELoss(reduction=red)(torch.from_numpy(p), torch.from_numpy(y)).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_extreme_logits_stay_finite(backend):
    x = np.array([[1000.0, -1000.0, 0.0], [-800.0, 800.0, 5.0]])
    t = fp.tensor(x, requires_grad=True)
    for loss in (nn.CrossEntropyLoss()(t, np.array([1, 0])), nn.BCEWithLogitsLoss()(t, np.ones_like(x))):
        tt = torch.tensor(x, requires_grad=True)
        ref = (torch.nn.CrossEntropyLoss()(tt, torch.tensor([1, 0])) if "Nll" in loss.grad_fn.name
               else torch.nn.BCEWithLogitsLoss()(tt, torch.ones(2, 3, dtype=torch.float64)))
        t.grad = None
        loss.backward()
        ref.backward()
        assert np.isfinite(loss.item())
        np.testing.assert_allclose(loss.item(), ref.item(), rtol=1e-12)
        np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-12, atol=1e-300)
