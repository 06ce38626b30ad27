"""TrainStep, fit, predict and Predictor on chains with BatchNorm1d, LayerNorm
and Dropout: the compiled step equals the eager loop (same masks, same
running statistics) and PyTorch."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import fusedprop as fp
from fusedprop import nn, optim

F64 = np.float64


def _model(dtype=F64, p=0.2, seed=0, affine=True, momentum=0.1):
    fp.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(7, 16, bias=False, dtype=dtype), nn.BatchNorm1d(16, affine=affine, momentum=momentum, dtype=dtype), nn.ReLU(),
        nn.Dropout(p), nn.Linear(16, 12, dtype=dtype), nn.LayerNorm(12, elementwise_affine=affine, dtype=dtype),
        nn.GELU(), nn.Dropout(p), nn.Linear(12, 3, dtype=dtype))


def _eager_step(model, criterion, opt, x, y):
    opt.zero_grad()
    loss = criterion(model(x), y)
    loss.backward()
    opt.step()
    return float(loss.item())


def _assert_same_state(a, b, tol):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        np.testing.assert_allclose(sb[k], sa[k], err_msg=k, **tol)


OPTIMIZERS = {
    "sgd_momentum": lambda p: optim.SGD(p, lr=0.05, momentum=0.9),
    "adamw": lambda p: optim.AdamW(p, lr=1e-2),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opt", OPTIMIZERS)
@pytest.mark.parametrize("p", [0.0, 0.3])
def test_compiled_step_equals_eager_loop(backend, dtype, opt, p):
    eager, compiled = _model(dtype, p), _model(dtype, p)
    crit = nn.CrossEntropyLoss()
    opt_e, opt_c = OPTIMIZERS[opt](eager.parameters()), OPTIMIZERS[opt](compiled.parameters())
    step = fp.TrainStep(compiled, crit, opt_c)
    # No bias before the BatchNorm: its gradient is analytically zero, rounding
    # noise that Adam (dividing by sqrt(v)) would amplify into real steps.
    tol = {"rtol": 1e-9, "atol": 1e-11} if dtype == F64 else {"rtol": 2e-4, "atol": 2e-5}
    rng = np.random.default_rng(0)
    for n in (16, 16, 5, 32, 2):
        x, y = rng.standard_normal((n, 7)).astype(dtype), rng.integers(0, 3, n)
        np.testing.assert_allclose(step(x, y), _eager_step(eager, crit, opt_e, x, y), **tol)
    _assert_same_state(eager, compiled, tol)
    for pe, pc in zip(eager.parameters(), compiled.parameters()):
        np.testing.assert_allclose(pc.grad, pe.grad, **tol)
    assert int(compiled[1].num_batches_tracked) == 5


def test_compiled_step_matches_torch_in_float64(backend):
    torch = pytest.importorskip("torch")
    model = _model(F64, p=0.0, momentum=None)
    tm = model.to_torch()
    step = fp.TrainStep(model, nn.BCEWithLogitsLoss(), optim.SGD(model.parameters(), lr=0.05, momentum=0.9))
    topt = torch.optim.SGD(tm.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(1)
    for _ in range(6):
        x, y = rng.standard_normal((24, 7)), (rng.random((24, 3)) > 0.5).astype(F64)
        topt.zero_grad()
        tloss = torch.nn.BCEWithLogitsLoss()(tm(torch.from_numpy(x)), torch.from_numpy(y))
        tloss.backward()
        topt.step()
        np.testing.assert_allclose(step(x, y), tloss.item(), rtol=1e-11)
    for k, v in tm.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[k], v.numpy(), rtol=1e-9, atol=1e-11, err_msg=k)
    model.eval(), tm.eval()
    x = rng.standard_normal((9, 7))
    want = tm(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(fp.Predictor(model)(x), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fp.predict(model, x, batch_size=4), want, rtol=1e-10, atol=1e-12)


def test_compiled_dropout_same_bits_for_every_thread_count(threads):
    results = []
    for n in (1, 2, 3):
        threads(n)
        model = _model(np.float32, p=0.5)
        step = fp.TrainStep(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1))
        rng = np.random.default_rng(0)
        for _ in range(3):
            step(rng.standard_normal((300, 7)).astype(np.float32), rng.standard_normal((300, 3)).astype(np.float32))
        results.append(model.state_dict())
    for other in results[1:]:
        for k in results[0]:
            np.testing.assert_array_equal(other[k], results[0][k], err_msg=k)


def test_dropout_in_the_gemm_same_bits_for_every_thread_count(cpp_only, threads):
    """Linear -> ReLU -> Dropout with a GEMM large enough to split over threads (rows and columns):
    the mask, applied block by block inside it, gives the bits of the unfused ops at 1, 2 and 3 threads."""
    results = []
    for n, fuse in ((1, False), (1, True), (2, True), (3, True)):
        threads(n)
        fp.manual_seed(5)
        model = nn.Sequential(nn.Linear(96, 520, dtype=np.float32), nn.ReLU(), nn.Dropout(0.4),
                              nn.Linear(520, 3, dtype=np.float32))
        step = fp.TrainStep(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.05))
        step._fuse_elementwise = fuse
        rng = np.random.default_rng(2)
        for batch in (300, 100):  # split by rows, then by columns
            step(rng.standard_normal((batch, 96)).astype(np.float32), rng.standard_normal((batch, 3)).astype(np.float32))
        results.append(model.state_dict())
    for other in results[1:]:
        for k in results[0]:
            np.testing.assert_array_equal(other[k], results[0][k], err_msg=k)


def test_compiled_dropout_differs_per_step_and_repeats_with_seed(backend):
    def run(seed):
        model = _model(F64, p=0.5, seed=seed)
        step = fp.TrainStep(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.0))
        x, y = np.ones((8, 7)), np.zeros((8, 3))
        return [step(x, y) for _ in range(3)]
    a, b = run(0), run(0)
    assert a == b
    assert len(set(a)) == 3  # lr=0: only the masks change the loss


@pytest.mark.parametrize("affine", [True, False])
def test_standalone_activations_and_no_affine(backend, affine):
    fp.manual_seed(0)
    model = nn.Sequential(nn.LayerNorm(5, elementwise_affine=affine, dtype=F64), nn.Tanh(),
                          nn.Linear(5, 8, dtype=F64), nn.ReLU(), nn.Sigmoid(),
                          nn.BatchNorm1d(8, affine=affine, track_running_stats=False, dtype=F64), nn.Linear(8, 2, dtype=F64))
    eager = copy.deepcopy(model)
    crit = nn.MSELoss()
    step = fp.TrainStep(model, crit, optim.SGD(model.parameters(), lr=0.1))
    opt_e = optim.SGD(eager.parameters(), lr=0.1)
    rng = np.random.default_rng(2)
    for _ in range(3):
        x = rng.standard_normal((10, 5))[:, ::-1]  # non-contiguous input
        y = rng.standard_normal((10, 2))
        np.testing.assert_allclose(step(x, y), _eager_step(eager, crit, opt_e, x, y), rtol=1e-12)
    _assert_same_state(eager, model, {"rtol": 1e-11, "atol": 1e-13})
    x = rng.standard_normal((4, 5))
    np.testing.assert_allclose(fp.Predictor(model)(x), eager.eval()(x).numpy(), rtol=1e-12, atol=1e-13)


def test_fit_and_predictor_snapshot(backend):
    model = _model(np.float32, p=0.1)
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((64, 7)).astype(np.float32), rng.integers(0, 3, 64)
    hist = fp.fit(model, X, y, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-2), epochs=3,
                  batch_size=16, validation_data=(X, y), progress=False)
    assert len(hist["val_loss"]) == 3 and int(model[1].num_batches_tracked) == 12
    model.eval()
    pred = fp.Predictor(model)
    np.testing.assert_allclose(pred(X), model(X).numpy(), rtol=1e-5, atol=1e-6)
    before = pred(X)
    model[1].running_mean += 1  # the snapshot holds its own running statistics
    np.testing.assert_array_equal(pred(X), before)
    assert not np.allclose(pred.refresh()(X), before)
    with pytest.raises(ValueError, match="BatchNorm1d reads 3-D input"):
        pred(X.reshape(4, 16, 7))


def test_batch_of_one_and_errors(backend):
    model = _model(F64)
    step = fp.TrainStep(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        step(np.zeros((1, 7)), np.zeros((1, 3)))
    with pytest.raises(TypeError, match=r"LayerNorm\(2, 6\)"):
        nn_model = nn.Sequential(nn.Linear(3, 12), nn.LayerNorm((2, 6)))
        fp.TrainStep(nn_model, nn.MSELoss(), optim.SGD(nn_model.parameters(), lr=0.1))
    wrong = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(5))
    with pytest.raises(ValueError, match="takes 5 features but gets 4"):
        fp.TrainStep(wrong, nn.MSELoss(), optim.SGD(wrong.parameters(), lr=0.1))
    mixed = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, dtype=F64))
    with pytest.raises(TypeError, match="one dtype"):
        fp.TrainStep(mixed, nn.MSELoss(), optim.SGD(mixed.parameters(), lr=0.1))
    with pytest.raises(TypeError, match=r"cannot compile module 1 \(L1Loss\)"):
        fp.Predictor(nn.Sequential(nn.Linear(3, 4), nn.L1Loss()))


def test_clip_grad_norm_with_norms(backend):
    a, b = _model(F64, p=0.2), _model(F64, p=0.2)
    step = fp.TrainStep(b, nn.CrossEntropyLoss(), optim.SGD(b.parameters(), lr=0.1), clip_grad_norm=0.5)
    opt_a = optim.SGD(a.parameters(), lr=0.1)
    rng = np.random.default_rng(4)
    for _ in range(3):
        x, y = rng.standard_normal((16, 7)), rng.integers(0, 3, 16)
        opt_a.zero_grad()
        nn.CrossEntropyLoss()(a(x), y).backward()
        nn.utils.clip_grad_norm_(a.parameters(), 0.5)
        opt_a.step()
        step(x, y)
    _assert_same_state(a, b, {"rtol": 1e-10, "atol": 1e-12})


def test_predictor_packs_each_linear_once_and_checks_the_packing(cpp_only):
    """A Predictor of a chain with norms keeps W^T packed per Linear (a call packs no weights): the bits
    of the plan packing per call; a packed weight that does not match its op is refused."""
    pred = fp.Predictor(_model(np.float32).eval())
    ops, _, params, _, plan, packed, extras, _ = pred._snapshot
    assert [p is not None for p in packed] == [op.kind == "linear" for op in ops]
    x = np.random.default_rng(3).standard_normal((70, 7)).astype(np.float32)
    with_packed, per_call = np.empty((70, 3), np.float32), np.empty((70, 3), np.float32)
    plan.forward(x, params, extras, with_packed, packed)
    plan.forward(x, params, extras, per_call)
    np.testing.assert_array_equal(with_packed, per_call)
    np.testing.assert_array_equal(pred(x), per_call)
    linears = [i for i, op in enumerate(ops) if op.kind == "linear"]
    swapped = list(packed)
    swapped[linears[0]], swapped[linears[1]] = packed[linears[1]], packed[linears[0]]
    with pytest.raises(ValueError, match="packed weight of op 0 does not match"):
        plan.forward(x, params, extras, per_call, swapped)
    with pytest.raises(ValueError, match="one packed slot per op"):
        plan.forward(x, params, extras, per_call, packed[:-1])


CHAINS = {
    "bn_relu_dropout": lambda d: [nn.Linear(9, 40, bias=False, dtype=d), nn.BatchNorm1d(40, dtype=d), nn.ReLU(),
                                  nn.Dropout(0.3), nn.Linear(40, 3, dtype=d)],
    "bn_gelu_dropout": lambda d: [nn.Linear(9, 33, dtype=d), nn.BatchNorm1d(33, affine=False, dtype=d), nn.GELU(),
                                  nn.Dropout(0.5), nn.Linear(33, 3, dtype=d)],
    "bn_batch_stats_relu": lambda d: [nn.Linear(9, 24, dtype=d), nn.BatchNorm1d(24, track_running_stats=False, dtype=d),
                                      nn.ReLU(), nn.Linear(24, 3, dtype=d)],
    "bn_tanh": lambda d: [nn.Linear(9, 64, dtype=d), nn.BatchNorm1d(64, momentum=None, dtype=d), nn.Tanh(),
                          nn.Linear(64, 3, dtype=d)],
    "ln_silu_dropout": lambda d: [nn.Linear(9, 17, dtype=d), nn.LayerNorm(17, dtype=d), nn.SiLU(), nn.Dropout(0.2),
                                  nn.Linear(17, 3, dtype=d)],
    "leading_relu_dropout": lambda d: [nn.ReLU(), nn.Dropout(0.25), nn.Linear(9, 3, dtype=d)],
    "leaky_dropout_twice": lambda d: [nn.Linear(9, 32, dtype=d), nn.BatchNorm1d(32, dtype=d),
                                      nn.LeakyReLU(0.2), nn.Dropout(0.1), nn.Linear(32, 32, dtype=d),
                                      nn.Sigmoid(), nn.Dropout(0.4), nn.Linear(32, 3, dtype=d)],
    "dropout_first_and_last": lambda d: [nn.Dropout(0.2), nn.Linear(9, 3, dtype=d), nn.Dropout(0.1)],
    # Linear (+ activation) -> Dropout: the mask applied inside the GEMM, block by block. Widths off
    # and on the 32-element groups, past a 256-column slab and a column edge; relu keeps its output
    # for the backward, gelu its pre-activation, identity nothing (the dropout then runs in place).
    "linear_relu_dropout": lambda d: [nn.Linear(9, 300, dtype=d), nn.ReLU(), nn.Dropout(0.3),
                                      nn.Linear(300, 3, dtype=d)],
    "linear_gelu_dropout": lambda d: [nn.Linear(9, 37, dtype=d), nn.GELU(), nn.Dropout(0.5), nn.Linear(37, 3, dtype=d)],
    "linear_dropout": lambda d: [nn.Linear(9, 64, bias=False, dtype=d), nn.Dropout(0.2), nn.Tanh(),
                                 nn.Linear(64, 3, dtype=d)],
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chain", CHAINS)
def test_fused_elementwise_runs_give_the_bits_of_the_ops_alone(cpp_only, chain, dtype):
    """SequencePlan walks BatchNorm -> activation -> Dropout (and activation -> Dropout) block by block,
    and applies a Dropout after a Linear inside its GEMM;
    against the same plan with each op in its own pass: losses, parameters, gradients and running
    statistics bitwise equal over Adam steps, at batches whose rows start off and on 32-element dropout
    groups and one above the walk's block."""
    def run(fuse):
        fp.manual_seed(3)
        model = nn.Sequential(*CHAINS[chain](dtype))
        step = fp.TrainStep(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-2))
        step._fuse_elementwise = fuse
        rng = np.random.default_rng(1)
        losses = [step(rng.standard_normal((n, 9)).astype(dtype) * 2, rng.integers(0, 3, n))
                  for n in (16, 7, 2, 300, 33)]
        grads = [p.grad.copy() for p in model.parameters()]
        # Eval: Dropout is the identity (the plan skips it, no copy), BatchNorm on its running statistics,
        # a norm and its activation in one walk: the bits of the eager ops, one by one.
        model.eval()
        for n in (5, 300):
            x = rng.standard_normal((n, 9)).astype(dtype)
            np.testing.assert_array_equal(fp.Predictor(model)(x), model(x).numpy())
        return losses, model.state_dict(), grads
    fused, alone = run(True), run(False)
    assert fused[0] == alone[0]
    for k in fused[1]:
        np.testing.assert_array_equal(fused[1][k], alone[1][k], err_msg=k)
    for a, b in zip(fused[2], alone[2]):
        np.testing.assert_array_equal(a, b)
