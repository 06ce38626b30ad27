"""TrainStep with gradient clipping and learning-rate schedulers, and fit(scheduler=...):
equal to the eager loop doing the same, and to PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import fusedprop as fp
from fusedprop import nn, optim
from fusedprop.optim import lr_scheduler
from fusedprop.train import _evaluate

from test_train import LOSSES, OPTIMIZERS, _data, _model


def _tol(backend, dtype):
    """Where today's tests find the compiled step bitwise equal to the eager loop (numpy, numba), ask for
    that; the C++ step's kernels differ from the eager ones in the last bits (see test_train.py)."""
    if backend != "cpp":
        return {"rtol": 0, "atol": 0}
    return {"rtol": 1e-10, "atol": 1e-12} if dtype == np.float64 else {"rtol": 2e-5, "atol": 2e-6}


def _eager_clipped_step(model, criterion, opt, x, y, max_norm):
    opt.zero_grad()
    loss = criterion(model(x), y)
    loss.backward()
    norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    opt.step()
    return float(loss.item()), float(norm)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_clipped_train_step_equals_the_eager_loop_with_clip_grad_norm(backend, rng, dtype, loss, opt):
    eager, compiled = _model(dtype), _model(dtype)
    crit = LOSSES[loss]()
    opt_e, opt_c = OPTIMIZERS[opt](eager.parameters()), OPTIMIZERS[opt](compiled.parameters())
    step = fp.TrainStep(compiled, crit, opt_c, clip_grad_norm=0.25)
    tol = _tol(backend, dtype)
    norms = []
    for n in (8, 13, 5, 16):
        x, y = _data(rng, n, loss, dtype)
        want, norm = _eager_clipped_step(eager, crit, opt_e, x, y, 0.25)
        norms.append(norm)
        np.testing.assert_allclose(step(x, y), want, **tol)
    assert max(norms) > 0.25  # the clip did act
    for (name, pe), pc in zip(eager.named_parameters(), compiled.parameters()):
        np.testing.assert_allclose(pc.data, pe.data, err_msg=name, **tol)
        np.testing.assert_allclose(pc.grad, pe.grad, err_msg=name, **tol)  # the clipped gradients
    total = np.sqrt(sum(float(np.sum(p.grad.astype(np.float64) ** 2)) for p in compiled.parameters()))
    assert total <= 0.25 * (1 + 1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opt", ["sgd_momentum_wd", "adam_amsgrad_wd"])
def test_a_clip_that_never_acts_equals_the_one_call_step_bitwise(backend, rng, dtype, opt):
    """Gradients-only C++ step + optimizer.step() is the fused step, bit for bit."""
    a, b = _model(dtype), _model(dtype)
    crit = nn.CrossEntropyLoss()
    step_a = fp.TrainStep(a, crit, OPTIMIZERS[opt](a.parameters()))
    step_b = fp.TrainStep(b, crit, OPTIMIZERS[opt](b.parameters()), clip_grad_norm=1e30)
    for _ in range(4):
        x, y = _data(rng, 10, "cross_entropy", dtype)
        assert step_a(x, y) == step_b(x, y)
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(pb.data, pa.data)
        np.testing.assert_array_equal(pb.grad, pa.grad)


@pytest.mark.parametrize("opt", ["sgd_momentum_wd", "adam"])
def test_clipped_train_step_matches_pytorch_in_float64(backend, rng, opt):
    torch = pytest.importorskip("torch")
    model = _model(np.float64)
    tmodel = torch.nn.Sequential(torch.nn.Linear(7, 16), torch.nn.ReLU(), torch.nn.Linear(16, 12), torch.nn.GELU(),
                                 torch.nn.Linear(12, 5, bias=False), torch.nn.Tanh(), torch.nn.Linear(5, 3)).double()
    tmodel.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})
    topt = {"sgd_momentum_wd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
            "adam": lambda p: torch.optim.Adam(p, lr=1e-2)}[opt](tmodel.parameters())
    step = fp.TrainStep(model, nn.CrossEntropyLoss(), OPTIMIZERS[opt](model.parameters()), clip_grad_norm=0.1)
    tcrit = torch.nn.CrossEntropyLoss()
    norms = []
    for _ in range(5):
        x, y = _data(rng, 12, "cross_entropy", np.float64)
        topt.zero_grad()
        tloss = tcrit(tmodel(torch.tensor(x)), torch.tensor(y))
        tloss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_(tmodel.parameters(), 0.1).item())
        topt.step()
        np.testing.assert_allclose(step(x, y), tloss.item(), rtol=1e-9)
    assert max(norms) > 0.1  # the clip did act
    for (name, p), tp in zip(model.named_parameters(), tmodel.parameters()):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("value,error", [(-1.0, ValueError), (float("nan"), ValueError), ("1", TypeError),
                                         (True, TypeError)])
def test_bad_clip_grad_norm_is_named(value, error):
    model = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(error, match="clip_grad_norm"):
        fp.TrainStep(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), clip_grad_norm=value)


SCHEDULES = {
    "step": (lambda o: optim.SGD(o, lr=0.1, momentum=0.9), lambda o: lr_scheduler.StepLR(o, 2, gamma=0.5)),
    "onecycle_sgd": (lambda o: optim.SGD(o, lr=0.1, momentum=0.9),
                     lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.2, total_steps=8)),
    "onecycle_adamw": (lambda o: optim.AdamW(o, lr=1e-2), lambda o: lr_scheduler.OneCycleLR(o, 0.05, total_steps=8)),
}


@pytest.mark.parametrize("case", SCHEDULES)
@pytest.mark.parametrize("clip", [None, 0.5])
def test_schedules_reach_the_compiled_step(backend, rng, case, clip):
    """lr, SGD momentum and Adam's beta1 changed by a scheduler between steps are what the next step uses."""
    make_opt, make_sched = SCHEDULES[case]
    eager, compiled = _model(np.float64), _model(np.float64)
    opt_e, opt_c = make_opt(eager.parameters()), make_opt(compiled.parameters())
    sched_e, sched_c = make_sched(opt_e), make_sched(opt_c)
    crit = nn.CrossEntropyLoss()
    step = fp.TrainStep(compiled, crit, opt_c, clip_grad_norm=clip)
    tol = _tol(backend, np.float64)
    for _ in range(8):
        x, y = _data(rng, 10, "cross_entropy", np.float64)
        if clip is None:
            opt_e.zero_grad()
            crit(eager(x), y).backward()
            opt_e.step()
        else:
            _eager_clipped_step(eager, crit, opt_e, x, y, clip)
        step(x, y)
        sched_e.step()
        sched_c.step()
    assert sched_c.get_last_lr() == sched_e.get_last_lr()
    for pe, pc in zip(eager.parameters(), compiled.parameters()):
        np.testing.assert_allclose(pc.data, pe.data, **tol)


# ------------------------------------------------------------------- fit

def _fit_data(rng, n=40):
    x = rng.standard_normal((n, 7))
    return x, rng.integers(0, 3, n)


def _manual_fit(model, opt, sched, X, y, epochs, batch_size, val=None):
    """fit's documented rule, written out: OneCycleLR per batch, ReduceLROnPlateau per epoch on the
    validation loss (training loss without validation data), the others per epoch."""
    crit = nn.CrossEntropyLoss()
    step = fp.TrainStep(model, crit, opt)
    lrs = []
    for _ in range(epochs):
        order = fp._runtime.generator().permutation(len(X))
        total = 0.0
        for start in range(0, len(X), batch_size):
            idx = order[start:start + batch_size]
            total += step(X[idx], y[idx]) * len(idx)
            if sched.interval == "batch":
                sched.step()
        if isinstance(sched, lr_scheduler.ReduceLROnPlateau):
            if val is None:
                sched.step(total / len(X))
            else:
                sched.step(_evaluate(step, *val)[0])  # fit's validation loss
        elif sched.interval == "epoch":
            sched.step()
        lrs.append(sched.get_last_lr())
    return lrs


FIT_SCHEDULES = {
    "cosine": lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=4),
    "onecycle": lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.3, epochs=5, steps_per_epoch=4),
    "plateau": lambda o: lr_scheduler.ReduceLROnPlateau(o, patience=0, factor=0.5, threshold=0.05),
    "lambda_per_batch": lambda o: lr_scheduler.LambdaLR(o, lambda k: 1.0 / (1 + k)),
}


@pytest.mark.parametrize("validation", [False, True])
@pytest.mark.parametrize("case", FIT_SCHEDULES)
def test_fit_steps_the_scheduler_as_documented(backend, rng, case, validation):
    X, y = _fit_data(rng)
    val = _fit_data(rng, 15) if validation else None
    runs = []
    for manual in (False, True):
        model = _model(np.float64)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        sched = FIT_SCHEDULES[case](opt)
        if case == "lambda_per_batch":
            sched.interval = "batch"  # the user's mark
        fp.manual_seed(5)
        if manual:
            lrs = _manual_fit(model, opt, sched, X, y, 5, 10, val)
        else:
            lrs = []
            fp.fit(model, X, y, nn.CrossEntropyLoss(), opt, epochs=5, batch_size=10, validation_data=val,
                   progress=False, scheduler=sched)
        runs.append((model, opt, sched, lrs))
    (m1, o1, s1, _), (m2, o2, s2, lrs) = runs
    assert s1.get_last_lr() == s2.get_last_lr() == lrs[-1]
    assert len({tuple(v) for v in lrs}) > 1  # the schedule moved
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_array_equal(p1.data, p2.data)


def test_fit_refuses_schedulers_it_cannot_step(rng, tmp_path):
    X, y = _fit_data(rng)
    model = _model(np.float64)
    opt = optim.SGD(model.parameters(), lr=0.1)
    other = optim.SGD(_model(np.float64).parameters(), lr=0.1)
    fit = lambda **kw: fp.fit(model, X, y, nn.CrossEntropyLoss(), opt, epochs=1, progress=False, **kw)  # noqa: E731
    with pytest.raises(TypeError, match="scheduler must be an fp.optim.lr_scheduler"):
        fit(scheduler="cosine")
    with pytest.raises(ValueError, match="scheduler must schedule the optimizer given to fit"):
        fit(scheduler=lr_scheduler.StepLR(other, 2))
    sched = lr_scheduler.StepLR(opt, 2)
    sched.interval = "step"
    with pytest.raises(ValueError, match="scheduler.interval must be 'batch' or 'epoch', got 'step'"):
        fit(scheduler=sched)
    with pytest.raises(ValueError, match="total steps is 3"):  # as PyTorch: a 1cycle shorter than the run
        fit(scheduler=lr_scheduler.OneCycleLR(opt, 0.1, total_steps=3), batch_size=8)


class _Interrupt(Exception):
    pass


RESUME_SCHEDULES = {
    "onecycle": lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.2, total_steps=24),
    "multistep": lambda o: lr_scheduler.MultiStepLR(o, milestones=[1, 3, 3], gamma=0.5),
    "plateau": lambda o: lr_scheduler.ReduceLROnPlateau(o, patience=0, factor=0.5, threshold=0.2),
    "lambda_object": lambda o: lr_scheduler.LambdaLR(o, _Decay(0.7)),
}


class _Decay:
    def __init__(self, rate):
        self.rate = rate

    def __call__(self, epoch):
        return self.rate ** epoch


def _checkpointed_fit(monkeypatch, case, stop_after=None, seed=0, **kw):
    """fit for 4 epochs of 6 steps; with stop_after it is interrupted when step stop_after + 1 starts.
    Returns the model's, optimizer's and scheduler's state and the history (None when interrupted)."""
    fp.manual_seed(seed)
    model = nn.Sequential(nn.Linear(7, 10), nn.Tanh(), nn.Linear(10, 3))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = RESUME_SCHEDULES[case](opt)
    X, y = _fit_data(np.random.default_rng(3), 45)
    real, calls = fp.TrainStep.__call__, [0]

    def counted(self, x, t):
        calls[0] += 1
        if stop_after is not None and calls[0] > stop_after:
            raise _Interrupt
        return real(self, x, t)

    monkeypatch.setattr(fp.TrainStep, "__call__", counted)
    try:
        history = fp.fit(model, X.astype(np.float32), y, nn.CrossEntropyLoss(), opt, epochs=4, batch_size=8,
                         progress=False, scheduler=sched, validation_data=(X[:10], y[:10]), **kw)
    except _Interrupt:
        return None
    finally:
        monkeypatch.undo()
    return model.state_dict(), opt.state_dict(), sched.state_dict(), history


@pytest.mark.parametrize("case", RESUME_SCHEDULES)
def test_interrupted_fit_with_a_scheduler_resumes_bitwise(backend, tmp_path, monkeypatch, case):
    from test_checkpoint import _assert_bitwise

    plain = _checkpointed_fit(monkeypatch, case)
    for i, stop in enumerate([5, 4, 1, 6]):  # mid-epoch, right after a checkpoint, one step on, at an epoch's end
        assert _checkpointed_fit(monkeypatch, case, stop, seed=100 + i if i else 0, checkpoint=tmp_path,
                                 checkpoint_every=4, resume=True) is None
    resumed = _checkpointed_fit(monkeypatch, case, seed=7, checkpoint=tmp_path, checkpoint_every=4, resume=True)
    assert plain[2]["_last_lr"] != [0.1]  # the schedule moved
    _assert_bitwise(plain, resumed)


def test_a_checkpoint_with_another_scheduler_is_refused(tmp_path, monkeypatch):
    assert _checkpointed_fit(monkeypatch, "onecycle", 8, checkpoint=tmp_path, checkpoint_every=4) is None
    with pytest.raises(ValueError, match="scheduler 'OneCycleLR' there, 'MultiStepLR' here"):
        _checkpointed_fit(monkeypatch, "multistep", checkpoint=tmp_path, resume=True)
    with pytest.raises(ValueError, match="scheduler 'OneCycleLR' there, None here"):
        model, X, y, crit, opt = _plain_fit_args()
        fp.fit(model, X, y, crit, opt, epochs=4, batch_size=8, progress=False, validation_data=(X[:10], y[:10]),
               checkpoint=tmp_path, resume=True)


def _plain_fit_args():
    fp.manual_seed(0)
    model = nn.Sequential(nn.Linear(7, 10), nn.Tanh(), nn.Linear(10, 3))
    X, y = _fit_data(np.random.default_rng(3), 45)
    X = X.astype(np.float32)
    return model, X, y, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
