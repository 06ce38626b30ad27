"""Learning-rate schedulers against PyTorch's, step by step, on the same parameter groups."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

import fusedprop as fp
from fusedprop import nn, optim
from fusedprop.optim import lr_scheduler as fsched

torch = pytest.importorskip("torch")
tsched = torch.optim.lr_scheduler

STEPS = 50


class Warmup:
    """A callable object: LambdaLR's state dict keeps its __dict__."""

    def __init__(self, n):
        self.n = n

    def __call__(self, epoch):
        return min(1.0, (epoch + 1) / self.n)


CASES = {
    "step": ("StepLR", dict(step_size=7, gamma=0.5)),
    "step_default_gamma": ("StepLR", dict(step_size=3)),
    "multistep_repeated": ("MultiStepLR", dict(milestones=[5, 12, 12, 30], gamma=0.3)),
    "exponential": ("ExponentialLR", dict(gamma=0.93)),
    "cosine_restarts": ("CosineAnnealingLR", dict(T_max=10, eta_min=1e-4)),
    "cosine_whole_run": ("CosineAnnealingLR", dict(T_max=STEPS)),
    "linear": ("LinearLR", dict(start_factor=0.25, end_factor=0.9, total_iters=20)),
    "linear_default": ("LinearLR", dict()),
    "linear_decay_to_zero": ("LinearLR", dict(start_factor=1.0, end_factor=0.0, total_iters=30)),
    "onecycle": ("OneCycleLR", dict(max_lr=[0.5, 0.2], total_steps=STEPS)),
    "onecycle_three_phase_linear": ("OneCycleLR", dict(max_lr=0.4, epochs=5, steps_per_epoch=10,
                                                       anneal_strategy="linear", three_phase=True, pct_start=0.25,
                                                       base_momentum=[0.8, 0.7], max_momentum=0.9)),
    "onecycle_no_momentum": ("OneCycleLR", dict(max_lr=0.3, total_steps=STEPS + 5, cycle_momentum=False,
                                                div_factor=10.0, final_div_factor=100.0)),
    "lambda": ("LambdaLR", dict(lr_lambda=lambda e: 0.95 ** e)),
    "lambda_per_group": ("LambdaLR", dict(lr_lambda=[lambda e: 1.0 / (1 + e), Warmup(8)])),
}
OPTIMIZERS = {
    "sgd_momentum": (lambda g: optim.SGD(g, lr=0.03, momentum=0.9), lambda g: torch.optim.SGD(g, lr=0.03,
                                                                                               momentum=0.9)),
    "adam": (lambda g: optim.Adam(g, lr=1e-3, betas=(0.8, 0.99)),
             lambda g: torch.optim.Adam(g, lr=1e-3, betas=(0.8, 0.99))),
}


def _pair(opt: str):
    """The same two parameter groups (the first with its own lr) in fusedprop and PyTorch."""
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    tmodel = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    make_f, make_t = OPTIMIZERS[opt]
    fopt = make_f([{"params": model[0].parameters(), "lr": 0.1}, {"params": model[1].parameters()}])
    topt = make_t([{"params": tmodel[0].parameters(), "lr": 0.1}, {"params": tmodel[1].parameters()}])
    return fopt, topt


def _groups(opt) -> list:
    """What a scheduler may change in the groups: lr, momentum, betas."""
    keys = ("lr", "momentum", "betas", "initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum")
    return [{k: (tuple(float(b) for b in g[k]) if k == "betas" else float(g[k])) for k in keys if k in g}
            for g in opt.param_groups]


def _torch_step(topt, sched, *args):
    topt.step()  # no gradients: nothing moves, but PyTorch wants optimizer.step() first
    sched.step(*args)


def _make(name, kwargs, fopt, topt, **extra):
    return getattr(fsched, name)(fopt, **kwargs, **extra), getattr(tsched, name)(topt, **kwargs, **extra)


@pytest.mark.parametrize("opt", OPTIMIZERS)
@pytest.mark.parametrize("case", CASES)
def test_every_step_equals_pytorch(case, opt):
    name, kwargs = CASES[case]
    fopt, topt = _pair(opt)
    f, t = _make(name, kwargs, fopt, topt)
    assert _groups(fopt) == _groups(topt)  # the constructor's initial step
    assert f.get_last_lr() == t.get_last_lr()
    for _ in range(STEPS - 1):
        f.step()
        _torch_step(topt, t)
        assert f.get_last_lr() == t.get_last_lr()
        assert _groups(fopt) == _groups(topt)
    assert f.last_epoch == t.last_epoch and f._step_count == t._step_count
    assert set(f.state_dict()) == set(t.state_dict())


def test_onecycle_cycles_sgd_momentum_and_adam_beta1():
    fopt, topt = _pair("adam")
    f, t = _make("OneCycleLR", dict(max_lr=0.5, total_steps=20), fopt, topt)
    seen = set()
    for _ in range(19):
        f.step()
        _torch_step(topt, t)
        seen.add(fopt.param_groups[0]["betas"][0])
        assert fopt.param_groups[1]["betas"] == topt.param_groups[1]["betas"]
        assert fopt.param_groups[0]["betas"][1] == 0.99
    assert min(seen) == pytest.approx(0.85) and max(seen) == pytest.approx(0.95)
    with pytest.raises(ValueError, match="total steps is 20"):
        f.step()
        f.step()


REDUCE = {
    "min_rel": dict(),
    "min_abs_cooldown": dict(mode="min", factor=0.5, patience=2, threshold=0.05, threshold_mode="abs", cooldown=3),
    "max_rel_min_lr": dict(mode="max", factor=0.3, patience=1, threshold=0.01, min_lr=[0.004, 1e-4]),
    "max_abs_eps": dict(mode="max", factor=0.9, patience=0, threshold_mode="abs", eps=5e-3, min_lr=1e-3),
}


@pytest.mark.parametrize("case", REDUCE)
def test_reduce_on_plateau_equals_pytorch(case, rng):
    fopt, topt = _pair("sgd_momentum")
    f, t = fsched.ReduceLROnPlateau(fopt, **REDUCE[case]), tsched.ReduceLROnPlateau(topt, **REDUCE[case])
    # A loss that improves, stalls, then wanders: every branch is taken.
    metrics = np.concatenate([np.linspace(1.0, 0.5, 10), np.full(15, 0.5), 0.5 + 0.05 * rng.standard_normal(40)])
    for m in metrics:
        f.step(m)
        _torch_step(topt, t, float(m))
        assert f.get_last_lr() == t.get_last_lr()
        assert (f.best, f.num_bad_epochs, f.cooldown_counter) == (t.best, t.num_bad_epochs, t.cooldown_counter)
    assert len(set(f.get_last_lr())) >= 1 and f.get_last_lr() != [0.1, 0.03]  # it did reduce
    assert set(f.state_dict()) == set(t.state_dict())
    # A PyTorch state dict loads here and continues the same.
    g = fsched.ReduceLROnPlateau(fopt)
    g.load_state_dict(t.state_dict())
    for m in (0.7, 0.2, 0.9, 0.9):
        g.step(m)
        _torch_step(topt, t, m)
        assert g.get_last_lr() == t.get_last_lr()


@pytest.mark.parametrize("case", ["step", "multistep_repeated", "exponential", "cosine_restarts", "linear"])
def test_step_with_an_epoch_uses_the_closed_form(case):
    name, kwargs = CASES[case]
    fopt, topt = _pair("sgd_momentum")
    f, t = _make(name, kwargs, fopt, topt)
    for epoch in (3, 7, 12, 30, 11, 45):
        with pytest.warns(UserWarning, match="epoch parameter"):
            f.step(epoch)
        with pytest.warns(UserWarning, match="epoch parameter"):
            _torch_step(topt, t, epoch)
        assert f.get_last_lr() == t.get_last_lr()


@pytest.mark.parametrize("case", ["step", "multistep_repeated", "exponential", "cosine_restarts", "linear",
                                  "onecycle", "lambda"])
def test_resuming_with_last_epoch_equals_pytorch(case):
    name, kwargs = CASES[case]
    fopt, topt = _pair("sgd_momentum")
    f, t = _make(name, kwargs, fopt, topt)
    for _ in range(13):
        f.step()
        _torch_step(topt, t)
    # A new scheduler on the same optimizer, resuming at epoch 13 (the constructor steps once more).
    f, t = _make(name, kwargs, fopt, topt, last_epoch=13)
    for _ in range(20):
        assert f.get_last_lr() == t.get_last_lr()
        assert _groups(fopt) == _groups(topt)
        f.step()
        _torch_step(topt, t)


def test_resuming_without_initial_lr_names_it():
    fopt, topt = _pair("sgd_momentum")
    with pytest.raises(KeyError, match="initial_lr"):
        tsched.StepLR(topt, 3, last_epoch=4)
    for error in (KeyError, ValueError):  # PyTorch's class, fusedprop's policy
        with pytest.raises(error, match=r"initial_lr.*last_epoch=4"):
            fsched.StepLR(fopt, 3, last_epoch=4)


@pytest.mark.parametrize("case", CASES)
def test_state_dict_round_trip_continues_the_same(case):
    name, kwargs = CASES[case]
    fopt, _ = _pair("sgd_momentum")
    f = getattr(fsched, name)(fopt, **kwargs)
    for _ in range(17):
        f.step()
    saved_sched, saved_opt = copy.deepcopy(f.state_dict()), fopt.state_dict()
    expected = []
    for _ in range(20):
        f.step()
        expected.append((f.get_last_lr(), _groups(fopt)))
    fopt2, _ = _pair("sgd_momentum")
    g = getattr(fsched, name)(fopt2, **kwargs)
    fopt2.load_state_dict(saved_opt)
    g.load_state_dict(saved_sched)
    for lrs, groups in expected:
        g.step()
        assert (g.get_last_lr(), _groups(fopt2)) == (lrs, groups)


@pytest.mark.parametrize("case", CASES)
def test_pytorch_state_dict_loads_and_continues_the_same(case):
    name, kwargs = CASES[case]
    fopt, topt = _pair("sgd_momentum")
    f, t = _make(name, kwargs, fopt, topt)
    for _ in range(11):
        _torch_step(topt, t)
    fopt.load_state_dict({"state": {}, "param_groups": topt.state_dict()["param_groups"]})
    f.load_state_dict(t.state_dict())
    for _ in range(25):
        f.step()
        _torch_step(topt, t)
        assert f.get_last_lr() == t.get_last_lr()
        assert _groups(fopt) == _groups(topt)


def test_lambda_state_dict_keeps_callable_objects_only():
    fopt, _ = _pair("sgd_momentum")
    warm = Warmup(8)
    f = fsched.LambdaLR(fopt, [lambda e: 1.0, warm])
    state = f.state_dict()
    assert state["lr_lambdas"] == [None, {"n": 8}]
    state["lr_lambdas"][1] = {"n": 3}
    f.load_state_dict(state)
    assert warm.n == 3 and "lr_lambdas" in state


def test_get_lr_outside_step_warns_as_pytorch():
    fopt, topt = _pair("sgd_momentum")
    f, t = _make("StepLR", dict(step_size=2), fopt, topt)
    with pytest.warns(UserWarning, match="get_last_lr"):
        t.get_lr()
    with pytest.warns(UserWarning, match="get_last_lr"):
        f.get_lr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f.step()  # no warning from inside step()


# (scheduler, arguments, error, what the message names, whether PyTorch's constructor refuses them too)
BAD = [
    ("StepLR", dict(step_size=0), ValueError, "step_size", False),
    ("StepLR", dict(step_size=2.5), TypeError, "step_size", False),
    ("StepLR", dict(step_size=2, gamma="x"), TypeError, "gamma", False),
    ("MultiStepLR", dict(milestones=3), TypeError, "milestones", True),
    ("MultiStepLR", dict(milestones=[2, -1]), ValueError, r"milestones\[1\]", False),
    ("ExponentialLR", dict(gamma=None), TypeError, "gamma", False),
    ("CosineAnnealingLR", dict(T_max=0), ValueError, "T_max", False),
    ("CosineAnnealingLR", dict(T_max=10, eta_min=float("nan")), ValueError, "eta_min", False),
    ("LinearLR", dict(start_factor=0.0), ValueError, "start_factor", True),
    ("LinearLR", dict(start_factor=1.5), ValueError, "start_factor", True),
    ("LinearLR", dict(end_factor=-0.1), ValueError, "end_factor", True),
    ("LinearLR", dict(total_iters=0), ValueError, "total_iters", False),
    ("OneCycleLR", dict(max_lr=0.1), ValueError, "total_steps", True),
    ("OneCycleLR", dict(max_lr=0.1, total_steps=0), ValueError, "total_steps", True),
    ("OneCycleLR", dict(max_lr=0.1, epochs=0, steps_per_epoch=3), ValueError, "epochs", True),
    ("OneCycleLR", dict(max_lr=0.1, epochs=2, steps_per_epoch=1.5), ValueError, "steps_per_epoch", True),
    ("OneCycleLR", dict(max_lr=0.1, total_steps=10, pct_start=1.5), ValueError, "pct_start", True),
    ("OneCycleLR", dict(max_lr=0.1, total_steps=10, anneal_strategy="exp"), ValueError, "anneal_strategy", True),
    ("OneCycleLR", dict(max_lr=[0.1], total_steps=10), ValueError, "max_lr", True),
    ("OneCycleLR", dict(max_lr=0.1, total_steps=10, max_momentum=[0.9] * 3), ValueError, "max_momentum", True),
    ("OneCycleLR", dict(max_lr=0.1, total_steps=10, div_factor=0.0), ValueError, "div_factor", False),
    ("LambdaLR", dict(lr_lambda=[lambda e: 1.0]), ValueError, "lr_lambdas", True),
    ("LambdaLR", dict(lr_lambda=0.5), TypeError, "lr_lambda", True),
    ("ReduceLROnPlateau", dict(factor=1.0), ValueError, "factor", True),
    ("ReduceLROnPlateau", dict(mode="middle"), ValueError, "mode", True),
    ("ReduceLROnPlateau", dict(threshold_mode="pct"), ValueError, "threshold mode", True),
    ("ReduceLROnPlateau", dict(min_lr=[0.1]), ValueError, "min_lrs", True),
    ("ReduceLROnPlateau", dict(patience=-1), ValueError, "patience", False),
    ("ReduceLROnPlateau", dict(cooldown=1.5), TypeError, "cooldown", False),
]


@pytest.mark.parametrize("name,kwargs,error,match,torch_too", BAD,
                         ids=[f"{b[0]}-{'-'.join(b[1])}-{i}" for i, b in enumerate(BAD)])
def test_bad_arguments_are_named(name, kwargs, error, match, torch_too):
    fopt, topt = _pair("sgd_momentum")
    with pytest.raises(error, match=match):
        getattr(fsched, name)(fopt, **kwargs)
    if torch_too:  # the same class as PyTorch's
        with pytest.raises(error):
            getattr(tsched, name)(topt, **kwargs)


def test_an_optimizer_is_required():
    for cls in (fsched.StepLR, fsched.LambdaLR):
        with pytest.raises(TypeError, match="is not an Optimizer"):
            cls([1, 2], 3)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        fsched.ReduceLROnPlateau("sgd")
    with pytest.raises(TypeError, match="is not an Optimizer"):
        fsched.OneCycleLR(None, max_lr=0.1, total_steps=3)


def test_onecycle_needs_momentum_or_betas():
    class Plain(optim.Optimizer):
        def __init__(self, params):
            super().__init__(params, dict(lr=0.1))
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="momentum or beta1"):
        fsched.OneCycleLR(Plain(model.parameters()), max_lr=0.1, total_steps=5)
    fsched.OneCycleLR(Plain(model.parameters()), max_lr=0.1, total_steps=5, cycle_momentum=False)


def test_reachable_as_fp_optim_lr_scheduler():
    assert fp.optim.lr_scheduler.OneCycleLR is fsched.OneCycleLR
    assert fsched.OneCycleLR.interval == "batch"
    assert {getattr(fsched, n).interval for n in fsched.__all__ if n != "OneCycleLR"} == {"epoch"}


def test_reduce_on_plateau_takes_a_loss_tensor_and_refuses_other_metrics():
    fopt, topt = _pair("sgd_momentum")
    f, t = fsched.ReduceLROnPlateau(fopt, patience=0), tsched.ReduceLROnPlateau(topt, patience=0)
    for m in (0.5, 0.6, 0.7):
        f.step(fp.tensor(m))
        _torch_step(topt, t, torch.tensor(m))
        assert f.get_last_lr() == t.get_last_lr()
    with pytest.raises(TypeError, match="metrics must be a number, got str"):
        f.step("low")
