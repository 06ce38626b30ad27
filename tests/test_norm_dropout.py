"""nn.Dropout, nn.BatchNorm1d, nn.LayerNorm: PyTorch parity, masks, buffers, bad input (eager)."""

from __future__ import annotations

import numpy as np
import pytest

import fusedprop as fp
from fusedprop import nn, optim
from fusedprop.backends import _philox, numpy_backend

F64 = np.float64


def _torch():
    return pytest.importorskip("torch")


# ------------------------------------------------------------------ Philox

def test_philox_known_answers():
    # Random123's kat_vectors for philox4x32_10.
    cases = [((0, 0, 0, 0, 0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
             ((0xFFFFFFFF,) * 6, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
             ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344, 0xA4093822, 0x299F31D0),
              (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1))]
    for args, expected in cases:
        assert tuple(int(v) for v in _philox.philox4x32_10(*args)) == expected


# ------------------------------------------------------------------ dropout

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 15, 17, 31, 32, 33, 64, 65, 1000, 70001])
def test_dropout_kernel_matches_numpy_oracle_bitwise(backend, dtype, n):
    x = np.random.default_rng(n).standard_normal(n).astype(dtype)
    got = fp.backends.current.dropout(x, 0.3, 2**40 + 7, 3, 9)
    want = numpy_backend.dropout(x, 0.3, 2**40 + 7, 3, 9)
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_array_equal(got, want)


def test_dropout_mask_rate_and_scaling(backend):
    fp.manual_seed(1)
    d = nn.Dropout(0.25)
    x = np.ones((400, 500), np.float64)
    y = d(x).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.005  # 200k draws: 5 sigma is 0.005
    np.testing.assert_array_equal(y[kept], 1 / 0.75)
    # Each row and column keeps about as often: no structure in the counter layout.
    assert np.abs(kept.mean(axis=1) - 0.75).max() < 0.1


def test_dropout_p0_and_eval_are_identity(backend):
    x = fp.tensor(np.random.default_rng(0).standard_normal((7, 9)), requires_grad=True)
    assert nn.Dropout(0.0)(x) is x
    d = nn.Dropout(0.6).eval()
    assert d(x) is x


def test_dropout_reproducible_with_seed_and_different_per_step(backend):
    x = np.random.default_rng(0).standard_normal((33, 65)).astype(np.float32)
    fp.manual_seed(5)
    d = nn.Dropout(0.5)
    a1, a2 = d(x).numpy(), d(x).numpy()
    assert not np.array_equal(a1, a2)
    fp.manual_seed(5)
    d2 = nn.Dropout(0.5)
    np.testing.assert_array_equal(d2(x).numpy(), a1)
    np.testing.assert_array_equal(d2(x).numpy(), a2)
    fp.manual_seed(6)
    assert not np.array_equal(nn.Dropout(0.5)(x).numpy(), a1)
    # Two modules built after one seed draw different masks.
    fp.manual_seed(5)
    first, second = nn.Dropout(0.5), nn.Dropout(0.5)
    assert not np.array_equal(first(x).numpy(), second(x).numpy())


def test_dropout_same_bits_for_every_thread_count(threads):
    x = np.random.default_rng(0).standard_normal((600, 700)).astype(np.float32)
    results = []
    for n in (1, 2, 3):
        threads(n)
        results.append(fp.backends.current.dropout(x, 0.1, 42, 1, 2))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_dropout_gradient_uses_the_forward_mask(backend):
    fp.manual_seed(3)
    x = fp.tensor(np.random.default_rng(1).standard_normal((20, 30)), requires_grad=True)
    d = nn.Dropout(0.4)
    y = d(x)
    g = np.random.default_rng(2).standard_normal((20, 30))
    y.backward(g)
    mask = (y.numpy() != 0)
    np.testing.assert_array_equal(x.grad, np.where(mask, g / 0.6, 0.0))
    np.testing.assert_array_equal(y.numpy(), np.where(mask, x.numpy() / 0.6, 0.0))
    assert y.grad_fn.name == "NativeDropoutBackward0"


def test_dropout_non_contiguous_input(backend):
    x = np.random.default_rng(0).standard_normal((40, 30))[::2, ::3]
    fp.manual_seed(0)
    a = nn.Dropout(0.5)(x).numpy()
    fp.manual_seed(0)
    b = nn.Dropout(0.5)(np.ascontiguousarray(x)).numpy()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("p, error", [(-0.1, ValueError), (1.0, ValueError), (1.5, ValueError),
                                      (float("nan"), ValueError), ("0.5", TypeError), (True, TypeError)])
def test_dropout_bad_p(p, error):
    with pytest.raises(error, match="Dropout: p"):
        nn.Dropout(p)


def test_dropout_kernel_bad_input(backend):
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        fp.backends.current.dropout(np.zeros(3), 1.0, 0, 0, 0)
    with pytest.raises(TypeError, match="float32 or float64"):
        fp.backends.current.dropout(np.zeros(3, np.int64), 0.5, 0, 0, 0)


# --------------------------------------------------------------- batch norm

def _torch_bn(torch, m):
    return m.to_torch()


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", [(16, 7), (9, 7, 5), (2, 7)])
def test_batch_norm_matches_torch_over_steps(backend, momentum, affine, shape):
    torch = _torch()
    fp.manual_seed(0)
    bn = nn.BatchNorm1d(7, momentum=momentum, affine=affine, dtype=F64)
    if affine:
        bn.weight.data[...] = np.linspace(0.5, 2, 7)
        bn.bias.data[...] = np.linspace(-1, 1, 7)
    tbn = bn.to_torch()
    params = list(bn.parameters())
    opt = optim.SGD(params, lr=0.1, momentum=0.9) if params else None
    topt = torch.optim.SGD(tbn.parameters(), lr=0.1, momentum=0.9) if params else None
    rng = np.random.default_rng(1)
    for _ in range(4):
        x = rng.standard_normal(shape) * 3 + 2
        g = rng.standard_normal(shape)
        xt = fp.tensor(x, requires_grad=True)
        y = bn(xt)
        y.backward(g)
        tx = torch.tensor(x, requires_grad=True)
        ty = tbn(tx)
        ty.backward(torch.from_numpy(g))
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(xt.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
        if opt:
            opt.step(), topt.step(), opt.zero_grad(), topt.zero_grad()
    for k, v in tbn.state_dict().items():
        np.testing.assert_allclose(bn.state_dict()[k], v.numpy(), rtol=1e-12, atol=1e-12, err_msg=k)
    bn.eval(), tbn.eval()
    x = rng.standard_normal(shape)
    np.testing.assert_allclose(bn(x).numpy(), tbn(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-12)


def test_batch_norm_float32_matches_float64_reference(backend):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 33)).astype(np.float32) * 5 + 3
    bn32, bn64 = nn.BatchNorm1d(33), nn.BatchNorm1d(33, dtype=F64)
    xt = fp.tensor(x, requires_grad=True)
    y = bn32(xt)
    y.backward(np.ones_like(x) * np.arange(33, dtype=np.float32))
    x64 = fp.tensor(x.astype(F64), requires_grad=True)
    y64 = bn64(x64)
    y64.backward(np.ones((64, 33)) * np.arange(33))
    np.testing.assert_allclose(y.numpy(), y64.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(xt.grad, x64.grad, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(bn32.running_var, bn64.running_var, rtol=1e-5)


def test_batch_norm_no_running_stats_uses_batch_in_eval(backend):
    torch = _torch()
    bn = nn.BatchNorm1d(4, track_running_stats=False, dtype=F64).eval()
    assert bn.running_mean is None and "running_mean" not in bn.state_dict()
    x = np.random.default_rng(0).standard_normal((10, 4))
    tbn = torch.nn.BatchNorm1d(4, track_running_stats=False).double().eval()
    np.testing.assert_allclose(bn(x).numpy(), tbn(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-12)


def test_batch_norm_batch_edges(backend):
    bn = nn.BatchNorm1d(3, dtype=F64)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(np.zeros((1, 3, 1)))
    bn2 = nn.BatchNorm1d(3, dtype=F64)
    y = bn2(fp.tensor(np.zeros((0, 3)), requires_grad=True))
    assert y.shape == (0, 3)
    np.testing.assert_array_equal(bn2.running_mean, 0)
    np.testing.assert_array_equal(bn2.running_var, 1)
    assert int(bn2.num_batches_tracked) == 1
    bn2.eval()
    assert bn2(np.zeros((1, 3))).shape == (1, 3)  # eval takes one sample
    assert bn2(np.zeros((0, 3))).shape == (0, 3)


@pytest.mark.parametrize("n", [2, 3, 8, 15, 16, 17, 63, 64, 65, 130])
def test_batch_norm_sizes_around_simd_width(backend, n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((5, n))
    ref = numpy_backend.batch_norm_forward(x, np.ones(n), np.zeros(n), 1e-5)
    got = fp.backends.current.batch_norm_forward(x, np.ones(n), np.zeros(n), 1e-5)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_batch_norm_same_bits_for_every_thread_count(threads):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 300)).astype(np.float32)
    g = rng.standard_normal((512, 300)).astype(np.float32)
    w, b = rng.standard_normal(300).astype(np.float32), rng.standard_normal(300).astype(np.float32)
    outs = []
    for n in (1, 2, 3):
        threads(n)
        y, mean, invstd, var = fp.backends.current.batch_norm_forward(x, w, b, 1e-5)
        outs.append((y, mean, invstd, var, *fp.backends.current.batch_norm_backward(g, x, mean, invstd, w, True)))
    for other in outs[1:]:
        for a, b_ in zip(outs[0], other):
            np.testing.assert_array_equal(a, b_)


def test_batch_norm_non_contiguous_and_converted_input(backend):
    x = np.random.default_rng(0).standard_normal((20, 12))[::2, ::2]
    a = nn.BatchNorm1d(6, dtype=F64)(x).numpy()
    b = nn.BatchNorm1d(6, dtype=F64)(np.ascontiguousarray(x)).numpy()
    np.testing.assert_array_equal(a, b)
    xt = fp.tensor(x, requires_grad=True)
    y = nn.BatchNorm1d(6)(xt)  # float64 input into a float32 layer
    assert y.dtype == np.float32
    y.backward(np.ones(y.shape, np.float32))
    assert xt.grad.dtype == np.float64


@pytest.mark.parametrize("kwargs, error, match", [
    ({"num_features": 0}, ValueError, "num_features must be positive"),
    ({"num_features": 2.0}, TypeError, "num_features must be an int"),
    ({"num_features": 3, "momentum": 1.5}, ValueError, "momentum"),
    ({"num_features": 3, "momentum": "x"}, TypeError, "momentum"),
    ({"num_features": 3, "eps": -1.0}, ValueError, "eps"),
    ({"num_features": 3, "dtype": np.int32}, TypeError, "dtype"),
])
def test_batch_norm_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        nn.BatchNorm1d(**kwargs)


def test_batch_norm_bad_input(backend):
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        bn(np.zeros((2, 3, 4, 5), np.float32))
    with pytest.raises(ValueError, match="channels"):
        bn(np.zeros((4, 5), np.float32))
    with pytest.raises(TypeError, match="floating-point"):
        bn(np.zeros((4, 3), np.int64))
    with pytest.raises(ValueError, match="2-D"):
        fp.backends.current.batch_norm_forward(np.zeros(3), None, None, 1e-5)
    with pytest.raises(TypeError, match="dtype"):
        fp.backends.current.batch_norm_forward(np.zeros((2, 3)), np.ones(3, np.float32), None, 1e-5)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        fp.backends.current.batch_norm_forward(np.zeros((2, 3)), np.ones(4), None, 1e-5)
    with pytest.raises(TypeError, match="eps must be a float"):
        fp.backends.current.batch_norm_forward(np.zeros((2, 3)), None, None, "1e-5")
    with pytest.raises(ValueError, match="eps must be a finite number"):
        fp.backends.current.layer_norm_forward(np.zeros((2, 3)), None, None, -1.0)
    y, *_ = fp.backends.current.batch_norm_forward(np.ones((2, 3)), None, None, np.float32(1e-5))  # NumPy scalars too
    np.testing.assert_array_equal(y, 0)


# --------------------------------------------------------------- layer norm

@pytest.mark.parametrize("affine, bias", [(True, True), (True, False), (False, False)])
@pytest.mark.parametrize("shape, normalized", [((8, 6), 6), ((3, 4, 5), (4, 5)), ((2, 3, 7), (7,)), ((6,), 6)])
def test_layer_norm_matches_torch_over_steps(backend, affine, bias, shape, normalized):
    torch = _torch()
    ln = nn.LayerNorm(normalized, elementwise_affine=affine, bias=bias, dtype=F64)
    rng = np.random.default_rng(3)
    if affine:
        ln.weight.data[...] = rng.uniform(0.5, 2, ln.weight.shape)
        if bias:
            ln.bias.data[...] = rng.standard_normal(ln.bias.shape)
    tln = ln.to_torch()
    params = list(ln.parameters())
    opt = optim.SGD(params, lr=0.1) if params else None
    topt = torch.optim.SGD(tln.parameters(), lr=0.1) if params else None
    for _ in range(4):
        x = rng.standard_normal(shape) * 2 + 1
        g = rng.standard_normal(shape)
        xt = fp.tensor(x, requires_grad=True)
        y = ln(xt)
        y.backward(g)
        tx = torch.tensor(x, requires_grad=True)
        ty = tln(tx)
        ty.backward(torch.from_numpy(g))
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(xt.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
        if opt:
            opt.step(), topt.step(), opt.zero_grad(), topt.zero_grad()
    assert list(ln.state_dict()) == list(tln.state_dict())
    for k, v in tln.state_dict().items():
        np.testing.assert_allclose(ln.state_dict()[k], v.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("d", [1, 7, 8, 9, 16, 31, 64, 65, 1000])
def test_layer_norm_sizes_and_batch_edges(backend, d):
    rng = np.random.default_rng(d)
    for rows in (0, 1, 5):
        x = rng.standard_normal((rows, d))
        ln = nn.LayerNorm(d, dtype=F64)
        xt = fp.tensor(x, requires_grad=True)
        y = ln(xt)
        ref, _, _ = numpy_backend.layer_norm_forward(x, np.ones(d), np.zeros(d), 1e-5)
        np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12, atol=1e-12)
        y.backward(np.ones_like(x))
        assert xt.grad.shape == x.shape and ln.weight.grad.shape == (d,)


def test_layer_norm_same_bits_for_every_thread_count(threads):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((700, 257)).astype(np.float32)
    g = rng.standard_normal((700, 257)).astype(np.float32)
    w, b = rng.standard_normal(257).astype(np.float32), rng.standard_normal(257).astype(np.float32)
    outs = []
    for n in (1, 2, 3):
        threads(n)
        y, mean, rstd = fp.backends.current.layer_norm_forward(x, w, b, 1e-5)
        outs.append((y, mean, rstd, *fp.backends.current.layer_norm_backward(g, x, mean, rstd, w, True, True)))
    for other in outs[1:]:
        for a, b_ in zip(outs[0], other):
            np.testing.assert_array_equal(a, b_)


def test_layer_norm_non_contiguous_input(backend):
    x = np.random.default_rng(0).standard_normal((10, 24))[::2, ::3]
    ln = nn.LayerNorm(8, dtype=F64)
    np.testing.assert_array_equal(ln(x).numpy(), ln(np.ascontiguousarray(x)).numpy())


@pytest.mark.parametrize("args, error, match", [
    ((0,), ValueError, "positive sizes"),
    (((),), ValueError, "positive sizes"),
    (("4",), TypeError, "normalized_shape"),
    (((2, 2.0),), TypeError, "normalized_shape"),
    ((4, -1e-5), ValueError, "eps"),
    ((4, float("inf")), ValueError, "eps"),
])
def test_layer_norm_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        nn.LayerNorm(*args)


def test_layer_norm_wrong_input_shape(backend):
    with pytest.raises(ValueError, match=r"normalized_shape=\[4\]"):
        nn.LayerNorm(4)(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"normalized_shape=\[2, 3\]"):
        nn.LayerNorm((2, 3))(np.zeros((3,), np.float32))


# ------------------------------------------------------------- whole models

def _mlp(dtype=F64, p=0.0):
    return nn.Sequential(nn.Linear(6, 16, dtype=dtype), nn.BatchNorm1d(16, dtype=dtype), nn.ReLU(), nn.Dropout(p),
                         nn.Linear(16, 12, dtype=dtype), nn.LayerNorm(12, dtype=dtype), nn.GELU(), nn.Dropout(p),
                         nn.Linear(12, 3, dtype=dtype))


def test_state_dict_has_torch_names_and_round_trips(tmp_path):
    torch = _torch()
    fp.manual_seed(0)
    model = _mlp()
    model(np.random.default_rng(0).standard_normal((8, 6)))  # move the running stats
    tm = model.to_torch()
    assert list(model.state_dict()) == list(tm.state_dict())
    assert model.state_dict()["1.num_batches_tracked"].dtype == np.int64
    fp.save(model.state_dict(), tmp_path / "m.safetensors")
    other = _mlp()
    other.load_state_dict(fp.load(tmp_path / "m.safetensors"))
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[k], v)
    back = fp.from_torch(tm)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[k], v)
    fresh = _mlp()
    fresh.load_state_dict(tm.state_dict())  # torch tensors load too
    np.testing.assert_array_equal(fresh[1].running_var, model[1].running_var)
    with pytest.raises(RuntimeError, match="missing key.*1.running_mean"):
        _mlp().load_state_dict({k: v for k, v in model.state_dict().items() if k != "1.running_mean"})


def test_mlp_with_norms_matches_torch_eager(backend):
    torch = _torch()
    fp.manual_seed(0)
    model = _mlp()
    tm = model.to_torch()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    topt = torch.optim.SGD(tm.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(0)
    for _ in range(5):
        x, y = rng.standard_normal((32, 6)), rng.integers(0, 3, 32)
        opt.zero_grad()
        loss = nn.CrossEntropyLoss()(model(x), y)
        loss.backward()
        opt.step()
        topt.zero_grad()
        tloss = torch.nn.CrossEntropyLoss()(tm(torch.from_numpy(x)), torch.from_numpy(y))
        tloss.backward()
        topt.step()
        assert abs(loss.item() - tloss.item()) < 1e-12
    for k, v in tm.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[k], v.numpy(), rtol=1e-10, atol=1e-12, err_msg=k)


def test_repr_like_torch():
    assert repr(nn.Dropout(0.1)) == "Dropout(p=0.1, inplace=False)"
    assert repr(nn.BatchNorm1d(3, momentum=None)) == \
        "BatchNorm1d(3, eps=1e-05, momentum=None, affine=True, track_running_stats=True)"
    assert repr(nn.LayerNorm((3, 4), bias=False)) == "LayerNorm((3, 4), eps=1e-05, elementwise_affine=True, bias=False)"


def _run_child(code: str, isa: str) -> str:
    """The stdout of python -c code on the cpp backend with FUSEDPROP_ISA=isa ("auto": unset)."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, FUSEDPROP_BACKEND="cpp")
    if isa == "auto":
        env.pop("FUSEDPROP_ISA", None)
    else:
        env["FUSEDPROP_ISA"] = isa
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(fp.__file__)) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("isa", ["reference", "avx2", "auto"])
def test_dropout_same_bits_on_every_isa(isa, cpp_only):
    """FUSEDPROP_ISA picks the dropout kernel once per process: each in a child, against the NumPy oracle."""
    import hashlib
    code = ("import hashlib, numpy as np, fusedprop as fp\n"
            "for dt in (np.float32, np.float64):\n"
            "    x = np.random.default_rng(0).standard_normal(64 * 40 + 37).astype(dt)\n"
            "    x[5] = np.nan; x[6] = -np.inf; x[7] = -1.0\n"
            "    print(hashlib.sha256(fp.backends.current.dropout(x, 0.35, 2**63 + 5, 7, 11).tobytes()).hexdigest())\n")
    out = _run_child(code, isa)
    want = []
    for dt in (np.float32, np.float64):
        x = np.random.default_rng(0).standard_normal(64 * 40 + 37).astype(dt)
        x[5], x[6], x[7] = np.nan, -np.inf, -1.0
        want.append(hashlib.sha256(numpy_backend.dropout(x, 0.35, 2**63 + 5, 7, 11).tobytes()).hexdigest())
    assert out.split() == want


_GEMM_DROPOUT_CODE = """
import numpy as np, fusedprop as fp
from fusedprop import nn, optim
fp.set_num_threads({threads})
for dt in (np.float32, np.float64):
    states = []
    for fuse in (False, True):
        fp.manual_seed(1)
        model = nn.Sequential(nn.Linear(9, 37, dtype=dt), nn.ReLU(), nn.Dropout(0.3), nn.Linear(37, 300, dtype=dt),
                              nn.Dropout(0.6), nn.Linear(300, 300, dtype=dt), nn.GELU(), nn.Dropout(0.2),
                              nn.Linear(300, 3, dtype=dt))
        step = fp.TrainStep(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01))
        step._fuse_elementwise = fuse
        rng = np.random.default_rng(0)
        for n in (3, 45, 160):
            step(rng.standard_normal((n, 9)).astype(dt), rng.standard_normal((n, 3)).astype(dt))
        states.append(model.state_dict())
    print(all(np.array_equal(states[0][k], states[1][k]) for k in states[0]))
"""


@pytest.mark.parametrize("isa", ["reference", "avx2", "auto"])
def test_dropout_in_the_gemm_same_bits_as_alone_on_every_isa(isa, cpp_only):
    """Dropout applied inside a Linear's GEMM comes in row pieces that start and end off the 32-element
    groups (widths 37 and 300): on each ISA's kernels, and at 1 and 2 threads (the 300 x 300 layer split
    by rows at batch 160, by columns at 45), the bits of the ops alone."""
    for threads in (1, 2):
        assert _run_child(_GEMM_DROPOUT_CODE.format(threads=threads), isa).split() == ["True", "True"]


_NORM_CODE = """
import hashlib, numpy as np, fusedprop as fp
fp.set_num_threads({threads})
b = fp.backends.current
h = hashlib.sha256()
for dt in (np.float32, np.float64):
    rng = np.random.default_rng(0)
    for m, n in ((2, 1), (3, 5), (2, 17), (37, 16), (130, 33), (64, 512), (9, 1030), (300, 300)):
        x = rng.standard_normal((m, n)).astype(dt) * 3 + 1
        g = rng.standard_normal((m, n)).astype(dt)
        w, c = rng.standard_normal(n).astype(dt), rng.standard_normal(n).astype(dt)
        bn, ln, ln_plain = (b.batch_norm_forward(x, w, c, 1e-5), b.layer_norm_forward(x, w, c, 1e-5),
                            b.layer_norm_forward(x, None, None, 1e-5))
        mean, invstd = bn[1], bn[2]
        outs = [*bn, *ln, *ln_plain, *b.batch_norm_backward(g, x, mean, invstd, w),
                *b.batch_norm_backward(g, x, mean, invstd, None), b.batch_norm_eval(x, mean, bn[3], w, c, 1e-5),
                *b.layer_norm_backward(g, x, ln[1], ln[2], w, True),
                *b.layer_norm_backward(g, x, ln_plain[1], ln_plain[2], None, False)]
        for a in outs:
            if isinstance(a, np.ndarray):
                h.update(a.tobytes())
print(h.hexdigest())
"""


def test_norm_kernels_same_bits_on_every_isa_and_thread_count(cpp_only):
    """FUSEDPROP_ISA picks the BatchNorm/LayerNorm loops' copy once per process: each copy, at 1 and 2
    threads, in a child; every output of every shape (column counts below, at and above the vector
    widths and the 512-column block) hashes the same."""
    hashes = {}
    for isa in ("reference", "avx2", "auto"):
        for threads in (1, 2):
            hashes[isa, threads] = _run_child(_NORM_CODE.format(threads=threads), isa).strip()
    assert len(set(hashes.values())) == 1, hashes
