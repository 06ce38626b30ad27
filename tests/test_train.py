"""TrainStep, fit and predict on every backend: the compiled step equals the
eager PyTorch-style loop and PyTorch itself."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import fusedprop as fp
from fusedprop import nn, optim
from helpers import activation_isas

LOSSES = {
    "cross_entropy": lambda: nn.CrossEntropyLoss(),
    "cross_entropy_smoothed_sum": lambda: nn.CrossEntropyLoss(label_smoothing=0.1, reduction="sum"),
    "mse": lambda: nn.MSELoss(),
    "bce_with_logits": lambda: nn.BCEWithLogitsLoss(),
}
OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.05),
    "sgd_momentum_wd": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "sgd_nesterov": lambda p: optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True),
    "adam": lambda p: optim.Adam(p, lr=1e-2),
    "adam_amsgrad_wd": lambda p: optim.Adam(p, lr=1e-2, weight_decay=1e-2, amsgrad=True),
    "adamw": lambda p: optim.AdamW(p, lr=1e-2),
}


def _model(dtype, seed=0):
    fp.manual_seed(seed)
    return nn.Sequential(nn.Linear(7, 16, dtype=dtype), nn.ReLU(), nn.Linear(16, 12, dtype=dtype), nn.GELU(),
                         nn.Linear(12, 5, bias=False, dtype=dtype), nn.Tanh(), nn.Linear(5, 3, dtype=dtype))


def _data(rng, n, loss, dtype):
    x = rng.standard_normal((n, 7)).astype(dtype)
    if loss.startswith("cross_entropy"):
        return x, rng.integers(0, 3, n)
    if loss == "bce_with_logits":
        return x, (rng.random((n, 3)) > 0.5).astype(dtype)
    return x, rng.standard_normal((n, 3)).astype(dtype)


def _eager_step(model, criterion, opt, x, y):
    opt.zero_grad()
    loss = criterion(model(x), y)
    loss.backward()
    opt.step()
    return float(loss.item())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_train_step_equals_the_eager_loop(backend, rng, dtype, loss, opt):
    eager, compiled = _model(dtype), _model(dtype)
    crit = LOSSES[loss]()
    opt_e, opt_c = OPTIMIZERS[opt](eager.parameters()), OPTIMIZERS[opt](compiled.parameters())
    step = fp.TrainStep(compiled, crit, opt_c)
    tol = {"rtol": 1e-10, "atol": 1e-12} if dtype == np.float64 else {"rtol": 2e-5, "atol": 2e-6}
    for n in (8, 8, 5, 16, 1):  # the batch size changes: workspaces must follow
        x, y = _data(rng, n, loss, dtype)
        np.testing.assert_allclose(step(x, y), _eager_step(eager, crit, opt_e, x, y), **tol)
    for (name, pe), pc in zip(eager.named_parameters(), compiled.parameters()):
        np.testing.assert_allclose(pc.data, pe.data, err_msg=name, **tol)
        np.testing.assert_allclose(pc.grad, pe.grad, err_msg=name, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_step_reports_the_weights_sum_of_squares_before_its_update(rng, dtype):
    # fusedprop.sklearn's L2 loss term comes from here instead of a pass from Python
    if "cpp" not in fp.available_backends():
        pytest.skip("the compiled core is not built")
    model = _model(dtype)
    step = fp.TrainStep(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-1))
    x, y = _data(rng, 9, "cross_entropy", dtype)
    y = np.asarray(y, dtype=np.int64)
    weights = [m.weight.data for m in model if isinstance(m, nn.Linear)]

    def sum_sq():
        return sum(float(np.sum(w.astype(np.float64) ** 2)) for w in weights)

    sq = np.full(1, np.nan)
    with fp.use_backend("cpp"):
        for _ in range(3):
            before = sum_sq()
            step._compiled_step(x, y, sq)
            assert abs(sum_sq() - before) > 1e-6  # the update moved the weights: the value is the one before it
            np.testing.assert_allclose(sq[0], before, rtol=1e-13)
        with pytest.raises(ValueError, match="weight_sq"):
            step._compiled_step(x, y, np.zeros(2))


@pytest.mark.parametrize("act_isa", activation_isas())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("smoothing, reduction", [(0.0, "mean"), (0.1, "mean"), (0.2, "sum")])
def test_compiled_cross_entropy_matches_the_float64_reference_on_wide_logits(rng, act_isa, dtype, smoothing,
                                                                             reduction):
    # The compiled loss takes its exps from the activation kernels (vectorised on AVX2). Logits spread
    # over about +-150 drive exp(z - max) to underflow; class counts around the vector widths (8 lanes
    # f32, 4 f64, two vectors a step) and batches of 1-33 reach every tail. With x the identity the
    # layer's output is W^T and W.grad is dZ^T, both exactly, so the loss kernel is seen alone.
    core = fp.backends.core_module()
    core._set_activation_isa(act_isa)
    try:
        for classes in (1, 3, 4, 5, 8, 9, 16, 17):
            for n in (1, 7, 33):
                logits = (rng.standard_normal((n, classes)) * 50).astype(dtype)
                y = rng.integers(0, classes, n)
                layer = nn.Linear(n, classes, bias=False, dtype=dtype)
                layer.weight.data[...] = logits.T
                step = fp.TrainStep(nn.Sequential(layer), nn.CrossEntropyLoss(reduction=reduction,
                                                                              label_smoothing=smoothing),
                                    optim.SGD(layer.parameters(), lr=0.0))
                with fp.use_backend("cpp"):
                    loss = step(np.eye(n, dtype=dtype), y)

                z = logits.astype(np.float64)
                log_p = z - (np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1))[:, None]
                target = np.full((n, classes), smoothing / classes)
                target[np.arange(n), y] += 1 - smoothing
                scale = 1.0 / n if reduction == "mean" else 1.0
                f64 = dtype == np.float64
                loss_tol = {"rtol": 1e-12, "atol": 1e-14} if f64 else {"rtol": 1e-6, "atol": 1e-5}
                grad_tol = {"rtol": 1e-12, "atol": 1e-14} if f64 else {"rtol": 1e-5, "atol": 1e-7}
                where = f"{classes} classes, batch {n}"
                np.testing.assert_allclose(loss, -(target * log_p).sum() * scale, err_msg=where, **loss_tol)
                np.testing.assert_allclose(layer.weight.grad.T, (np.exp(log_p) - target) * scale, err_msg=where,
                                           **grad_tol)
    finally:
        core._set_activation_isa("auto")


def test_eager_and_compiled_steps_can_alternate(backend, rng):
    a, b = _model(np.float64), _model(np.float64)
    crit = nn.CrossEntropyLoss()
    opt_a, opt_b = optim.Adam(a.parameters(), lr=1e-2), optim.Adam(b.parameters(), lr=1e-2)
    step_b = fp.TrainStep(b, crit, opt_b)
    for i in range(6):
        x, y = _data(rng, 10, "cross_entropy", np.float64)
        _eager_step(a, crit, opt_a, x, y)
        if i % 2:
            step_b(x, y)
        else:
            _eager_step(b, crit, opt_b, x, y)
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(pb.data, pa.data, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("opt", ["sgd_momentum_wd", "adam"])
def test_train_step_matches_pytorch_in_float64(backend, rng, opt):
    torch = pytest.importorskip("torch")
    model = _model(np.float64)
    tmodel = torch.nn.Sequential(torch.nn.Linear(7, 16), torch.nn.ReLU(), torch.nn.Linear(16, 12), torch.nn.GELU(),
                                 torch.nn.Linear(12, 5, bias=False), torch.nn.Tanh(), torch.nn.Linear(5, 3)).double()
    tmodel.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})
    topt = {"sgd_momentum_wd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
            "adam": lambda p: torch.optim.Adam(p, lr=1e-2)}[opt](tmodel.parameters())
    step = fp.TrainStep(model, nn.CrossEntropyLoss(), OPTIMIZERS[opt](model.parameters()))
    tcrit = torch.nn.CrossEntropyLoss()
    for _ in range(5):
        x, y = _data(rng, 12, "cross_entropy", np.float64)
        topt.zero_grad()
        tloss = tcrit(tmodel(torch.tensor(x)), torch.tensor(y))
        tloss.backward()
        topt.step()
        np.testing.assert_allclose(step(x, y), tloss.item(), rtol=1e-9)
    for (name, p), tp in zip(model.named_parameters(), tmodel.parameters()):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


def test_unsupported_models_are_named(backend):
    opt = lambda m: optim.SGD(m.parameters(), lr=0.1)  # noqa: E731
    bad = nn.Sequential(nn.Linear(3, 2), nn.MSELoss())
    with pytest.raises(TypeError, match=r"cannot compile module 1 \(MSELoss\)"):
        fp.TrainStep(bad, nn.MSELoss(), opt(bad))
    nested = nn.Sequential(nn.Linear(3, 2), nn.Sequential(nn.ReLU(), nn.L1Loss()))
    with pytest.raises(TypeError, match=r"module 1.1 \(L1Loss\)"):
        fp.TrainStep(nested, nn.MSELoss(), opt(nested))
    no_linear = nn.Sequential(nn.ReLU(), nn.LayerNorm(3))
    with pytest.raises(TypeError, match="no Linear layer"):
        fp.TrainStep(no_linear, nn.MSELoss(), opt(no_linear))
    good = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(TypeError, match="cannot compile loss L1Loss"):
        fp.TrainStep(good, nn.L1Loss(), opt(good))
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum'"):
        fp.TrainStep(good, nn.MSELoss(reduction="none"), opt(good))
    other = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="not in the optimizer"):
        fp.TrainStep(good, nn.MSELoss(), optim.SGD(other.parameters(), lr=0.1))
    with pytest.raises(TypeError, match="model must be an nn.Sequential"):
        fp.TrainStep(nn.MSELoss(), nn.MSELoss(), opt(good))


def test_bad_batches_are_refused(backend):
    model = nn.Sequential(nn.Linear(3, 4))
    step = fp.TrainStep(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1))
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="out of range"):
        step(x, np.array([0, 4]))
    with pytest.raises(ValueError, match=r"y must have shape \(2,\)"):
        step(x, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="integer class indices"):
        step(x, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 3\)"):
        step(np.ones((2, 5), np.float32), np.array([0, 1]))
    with pytest.raises(TypeError, match="floating-point"):
        step(np.ones((2, 3), np.int64), np.array([0, 1]))


def test_fit_history_and_reproducible_shuffling(backend, rng):
    x = rng.standard_normal((50, 7)).astype(np.float32)
    y = rng.integers(0, 3, 50)

    def run():
        model = _model(np.float32, seed=3)
        opt = optim.Adam(model.parameters(), lr=1e-2)
        fp.manual_seed(11)
        hist = fp.fit(model, x, y, nn.CrossEntropyLoss(), opt, epochs=4, batch_size=16,
                      validation_data=(x, y), progress=False)
        return hist, model

    h1, m1 = run()
    h2, m2 = run()
    assert set(h1) == {"loss", "val_loss", "val_accuracy"} and len(h1["loss"]) == 4
    assert h1 == h2
    assert h1["loss"][-1] < h1["loss"][0]
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_array_equal(p1.data, p2.data)
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        fp.fit(m1, x, y, nn.CrossEntropyLoss(), optim.SGD(m1.parameters(), lr=0.1), epochs=0)


def test_predict_equals_the_eval_forward(backend, rng):
    model = _model(np.float32)
    x = rng.standard_normal((37, 7)).astype(np.float32)
    model.eval()
    with fp.no_grad():
        expected = model(x).numpy()
    model.train()
    np.testing.assert_allclose(fp.predict(model, x, batch_size=8), expected, rtol=1e-6, atol=1e-6)
    assert model.training


def test_train_step_leaves_the_model_as_eager_training_would(backend, rng):
    """state_dict and optimizer state after compiled steps load into a fresh eager copy."""
    model = _model(np.float32)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    step = fp.TrainStep(model, nn.MSELoss(), opt)
    x, y = _data(rng, 8, "mse", np.float32)
    step(x, y)
    clone = copy.deepcopy(model)
    opt2 = optim.SGD(clone.parameters(), lr=0.1, momentum=0.9)
    opt2.load_state_dict(opt.state_dict())
    _eager_step(model, nn.MSELoss(), opt, x, y)
    _eager_step(clone, nn.MSELoss(), opt2, x, y)
    for p1, p2 in zip(model.parameters(), clone.parameters()):
        np.testing.assert_array_equal(p1.data, p2.data)


def test_unpickled_and_memory_mapped_arrays_are_accepted(backend, tmp_path):
    """An array that went through pickle or a memmap has a dtype equal to
    NumPy's own but another object: the compiled step, the optimizers and the
    Predictor compare dtypes by value."""
    import pickle

    fp.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7, dtype=np.float64), nn.ReLU(), nn.Linear(7, 3, dtype=np.float64))
    model = pickle.loads(pickle.dumps(model))
    rng = np.random.default_rng(0)
    x = pickle.loads(pickle.dumps(rng.standard_normal((6, 5))))
    y = pickle.loads(pickle.dumps(rng.integers(0, 3, 6)))
    path = tmp_path / "x.npy"
    np.save(path, x)
    x_mapped = np.load(path, mmap_mode="r")
    opt = optim.Adam(model.parameters(), lr=1e-2)
    step = fp.TrainStep(model, nn.CrossEntropyLoss(), opt)
    assert np.isfinite(step(x, y)) and np.isfinite(step(x_mapped, y))
    opt.step()  # the eager update on the same unpickled parameters
    pred = fp.Predictor(model)
    with fp.no_grad():
        np.testing.assert_array_equal(pred(x_mapped), model(x).numpy())
    np.testing.assert_array_equal(fp.predict(model, x_mapped), pred(x))
