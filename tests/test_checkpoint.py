"""Checkpointed fit: resuming after an interruption, a corrupt checkpoint or a
SIGKILL ends bitwise where the uninterrupted run ends."""

from __future__ import annotations

import os
import random
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

import fusedprop as fp
from fusedprop import nn, optim

OPTIMIZERS = {
    "sgd_momentum": lambda p: optim.SGD(p, lr=0.05, momentum=0.9),
    "adam_amsgrad": lambda p: optim.Adam(p, lr=1e-2, amsgrad=True),
    "adamw": lambda p: optim.AdamW(p, lr=1e-2),
}


class Interrupt(Exception):
    pass


def _data(dtype=np.float32):
    rng = np.random.default_rng(11)
    return rng.standard_normal((45, 6)).astype(dtype), rng.integers(0, 3, 45)


def _tanh_mlp(dtype):
    return nn.Sequential(nn.Linear(6, 10, dtype=dtype), nn.Tanh(), nn.Linear(10, 3, dtype=dtype))


def _norm_dropout_mlp(dtype):
    return nn.Sequential(nn.Linear(6, 10, bias=False, dtype=dtype), nn.BatchNorm1d(10, dtype=dtype), nn.ReLU(),
                         nn.Dropout(0.3), nn.Linear(10, 3, dtype=dtype))


def _run(monkeypatch=None, stop_after=None, seed=0, opt="adam_amsgrad", dtype=np.float32, counter=None,
         make=_tanh_mlp, **kw):
    """fit on a fresh model (seeded with ``seed``); with ``stop_after`` the
    run is interrupted when it starts step stop_after + 1. Returns the model's
    and optimizer's state dicts and the history, or None when interrupted."""
    fp.manual_seed(seed)
    model = make(dtype)
    opt_ = OPTIMIZERS[opt](model.parameters())
    X, y = _data(dtype)
    if monkeypatch is not None:
        real = fp.TrainStep.__call__
        calls = [0]

        def counted(self, x, t):
            calls[0] += 1
            if counter is not None:
                counter.append(1)
            if stop_after is not None and calls[0] > stop_after:
                raise Interrupt
            return real(self, x, t)

        monkeypatch.setattr(fp.TrainStep, "__call__", counted)
    kw.setdefault("validation_data", (X[:10], y[:10]))
    try:
        history = fp.fit(model, X, y, nn.CrossEntropyLoss(), opt_, epochs=kw.pop("epochs", 4), batch_size=8,
                         progress=False, **kw)
    except Interrupt:
        return None
    finally:
        if monkeypatch is not None:
            monkeypatch.undo()
    return model.state_dict(), opt_.state_dict(), history


def _assert_bitwise(a, b, where="run"):
    assert type(a) is type(b), where
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _assert_bitwise(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_bitwise(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert struct.pack("<d", a) == struct.pack("<d", b), f"{where}: {a!r} vs {b!r}"
    else:
        assert a == b, where


def _checkpoints(folder) -> list:
    return sorted(n for n in os.listdir(folder) if n.startswith("checkpoint-"))


# 45 rows in batches of 8: 6 steps an epoch, the last one short; 24 steps in 4 epochs.
STEPS = 24


@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_checkpoints_do_not_change_the_run_and_two_are_kept(backend, tmp_path, opt):
    plain = _run(opt=opt)
    _assert_bitwise(plain, _run(opt=opt, checkpoint=tmp_path, checkpoint_every=4))
    assert _checkpoints(tmp_path) == ["checkpoint-000000000020.safetensors", "checkpoint-000000000024.safetensors"]
    _assert_bitwise(plain, _run(opt=opt, checkpoint=tmp_path / "epochs only"))
    assert len(_checkpoints(tmp_path / "epochs only")) == 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opt", OPTIMIZERS)
@pytest.mark.parametrize("make", [_tanh_mlp, _norm_dropout_mlp], ids=["tanh", "batchnorm_dropout"])
def test_interrupted_runs_resume_bitwise(backend, tmp_path, monkeypatch, opt, dtype, make):
    kw = {"make": make}
    plain = _run(opt=opt, dtype=dtype, **kw)
    every = 4
    executed: list = []
    # Interrupted mid-epoch, right after a checkpoint, one step after resuming, after an epoch's end.
    for i, stop in enumerate([5, 4, 1, 6, 5]):
        # Each resumed process gets other initial weights and another seed: all must come from the checkpoint.
        out = _run(monkeypatch, stop_after=stop, seed=100 + i if i else 0, opt=opt, dtype=dtype, counter=executed,
                   checkpoint=tmp_path, checkpoint_every=every, resume=True, **kw)
        assert out is None
    resumed = _run(monkeypatch, seed=7, opt=opt, dtype=dtype, counter=executed, checkpoint=tmp_path,
                   checkpoint_every=every, resume=True, **kw)
    _assert_bitwise(plain, resumed)
    # Each interruption repeats at most `every` steps (plus the step it cut short).
    assert len(executed) <= STEPS + 5 * (every + 1)


def test_resume_restores_the_running_loss_total_of_a_partial_epoch(backend, tmp_path, monkeypatch):
    plain = _run(validation_data=None, shuffle=False)
    assert _run(monkeypatch, stop_after=9, checkpoint=tmp_path, checkpoint_every=2, validation_data=None,
                shuffle=False) is None
    # 6 steps an epoch: the checkpoint after step 8 is 2 steps into epoch 1.
    state = fp.load(tmp_path / "checkpoint-000000000008.safetensors")
    assert (state["epoch"], state["step"], state["order"]) == (1, 2, None)
    assert type(state["total"]) is float and state["total"] > 0
    assert state["history"] == {"loss": plain[2]["loss"][:1]}
    _assert_bitwise(plain, _run(seed=3, checkpoint=tmp_path, checkpoint_every=2, resume=True,
                                validation_data=None, shuffle=False))


def test_resume_with_a_missing_or_empty_folder_starts_fresh(tmp_path):
    plain = _run()
    _assert_bitwise(plain, _run(checkpoint=tmp_path / "missing", resume=True))
    (tmp_path / "empty").mkdir()
    _assert_bitwise(plain, _run(checkpoint=tmp_path / "empty", checkpoint_every=5, resume=True))


def test_a_finished_run_resumes_to_its_result_without_training(tmp_path, monkeypatch):
    plain = _run(checkpoint=tmp_path, checkpoint_every=5)
    executed: list = []
    _assert_bitwise(plain[2], _run(monkeypatch, seed=5, counter=executed, checkpoint=tmp_path, resume=True)[2])
    assert executed == []
    # More epochs continue the finished run exactly as a longer run.
    longer = _run(epochs=6)
    _assert_bitwise(longer, _run(seed=5, epochs=6, checkpoint=tmp_path, resume=True))


def _flip_a_data_bit(path) -> None:
    blob = bytearray(path.read_bytes())
    blob[-3] ^= 0x10
    path.write_bytes(bytes(blob))


def test_a_corrupt_newest_checkpoint_is_reported_and_the_previous_used(tmp_path, monkeypatch):
    plain = _run()
    assert _run(monkeypatch, stop_after=11, checkpoint=tmp_path, checkpoint_every=3) is None
    newest, previous = _checkpoints(tmp_path)[::-1]
    assert (newest, previous) == ("checkpoint-000000000009.safetensors", "checkpoint-000000000006.safetensors")
    _flip_a_data_bit(tmp_path / newest)
    with pytest.warns(RuntimeWarning, match=rf"unusable checkpoint .*{newest}.*SHA-256.*trying .*{previous}"):
        resumed = _run(seed=9, checkpoint=tmp_path, checkpoint_every=3, resume=True)
    _assert_bitwise(plain, resumed)
    assert len(_checkpoints(tmp_path)) == 2


def test_all_checkpoints_corrupt_is_an_error(tmp_path, monkeypatch):
    assert _run(monkeypatch, stop_after=8, checkpoint=tmp_path, checkpoint_every=3) is None
    names = _checkpoints(tmp_path)
    for name in names:
        _flip_a_data_bit(tmp_path / name)
    (tmp_path / "checkpoint-000000000099.safetensors").write_bytes(b"garbage")
    with pytest.warns(RuntimeWarning) as caught, pytest.raises(ValueError, match="no checkpoint in .* is usable"):
        _run(checkpoint=tmp_path, resume=True)
    assert len(caught) == 3 and "checkpoint-000000000099" in str(caught[0].message)
    assert "no older one is left" in str(caught[-1].message)


def test_a_checkpoint_of_another_run_is_refused(tmp_path, monkeypatch):
    assert _run(monkeypatch, stop_after=13, checkpoint=tmp_path, checkpoint_every=3) is None
    model = nn.Sequential(nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 3))
    X, y = _data()
    cases = [
        (dict(X=X[::-1].copy()), "data_sha256"),
        (dict(batch_size=4), "batch_size 8 there, 4 here"),
        (dict(shuffle=False), "shuffle True there, False here"),
        (dict(validation_data=None), "validation True there, False here"),
        (dict(optimizer=optim.SGD(model.parameters(), lr=0.1)), "optimizer 'Adam' there, 'SGD' here"),
        (dict(criterion=nn.CrossEntropyLoss(label_smoothing=0.1)), "loss"),
        (dict(epochs=1), "2 epochs done, more than epochs=1"),
    ]
    for change, match in cases:
        args = dict(X=X, y=y, criterion=nn.CrossEntropyLoss(), optimizer=optim.Adam(model.parameters()),
                    batch_size=8, epochs=4, validation_data=(X[:10], y[:10]))
        args.update(change)
        before = model.state_dict()
        with pytest.raises(ValueError, match=match):
            fp.fit(model, progress=False, checkpoint=tmp_path, resume=True, **args)
        _assert_bitwise(before, model.state_dict())  # nothing restored
    wider = nn.Sequential(nn.Linear(6, 11), nn.Tanh(), nn.Linear(11, 3))
    with pytest.raises(ValueError, match="model parameters"):
        fp.fit(wider, X, y, nn.CrossEntropyLoss(), optim.Adam(wider.parameters()), epochs=4, batch_size=8,
               validation_data=(X[:10], y[:10]), progress=False, checkpoint=tmp_path, resume=True)


def test_checkpoint_argument_errors(tmp_path):
    model = nn.Sequential(nn.Linear(6, 3))
    X, y = _data()
    (tmp_path / "file").write_text("x")
    for kw, error, match in [
        (dict(checkpoint_every=3), ValueError, "checkpoint_every needs checkpoint=DIR"),
        (dict(resume=True), ValueError, "resume=True needs checkpoint=DIR"),
        (dict(checkpoint=tmp_path, resume=1), TypeError, "resume must be a bool, got int"),
        (dict(checkpoint=3), TypeError, "checkpoint must be a folder path"),
        (dict(checkpoint=tmp_path / "file"), ValueError, "checkpoint must be a folder"),
        (dict(checkpoint=tmp_path, checkpoint_every=0), ValueError, "checkpoint_every must be a positive int"),
        (dict(checkpoint=tmp_path, checkpoint_every=2.5), TypeError, "checkpoint_every must be an int"),
        (dict(checkpoint=tmp_path, checkpoint_every=True), TypeError, "checkpoint_every must be an int"),
        (dict(checkpoint=tmp_path, y=np.array([None] * 45)), TypeError, "y must be numeric, got dtype object"),
    ]:
        args = dict(X=X, y=y, criterion=nn.CrossEntropyLoss(), optimizer=optim.SGD(model.parameters(), lr=0.1))
        args.update(kw)
        with pytest.raises(error, match=match):
            fp.fit(model, epochs=1, progress=False, **args)
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_resume_false_replaces_the_checkpoints_of_an_earlier_run(tmp_path):
    _run(checkpoint=tmp_path, checkpoint_every=5)
    # What a kill during a write leaves behind; the next write removes it (and nothing that is not ours).
    (tmp_path / ".checkpoint-000000000025.safetensors.4242.0badcafe.tmp").write_bytes(b"torn")
    (tmp_path / "notes.txt").write_text("mine")
    plain = _run(epochs=1)
    _assert_bitwise(plain, _run(epochs=1, checkpoint=tmp_path, checkpoint_every=5))
    assert sorted(os.listdir(tmp_path)) == ["checkpoint-000000000005.safetensors",
                                            "checkpoint-000000000006.safetensors", "notes.txt"]


# ------------------------------------------------------------- SIGKILL

WORKER = r"""
import os, sys, time
import numpy as np
import fusedprop as fp
from fusedprop import nn, optim

folder, out, log = sys.argv[1:4]
real = fp.TrainStep.__call__
fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

def logged(self, x, y):
    os.write(fd, f"{os.getpid()}\n".encode())  # one line per step started, before it runs
    time.sleep(0.003)  # every step takes a while, so a random kill lands inside training
    return real(self, x, y)

fp.TrainStep.__call__ = logged
fp.manual_seed(0)
rng = np.random.default_rng(0)
X, y = rng.standard_normal((120, 10)), rng.integers(0, 4, 120)
model = nn.Sequential(nn.Linear(10, 32, dtype=np.float64), nn.Tanh(), nn.Linear(32, 4, dtype=np.float64))
opt = optim.Adam(model.parameters(), lr=1e-2, amsgrad=True)
kw = {} if folder == "-" else dict(checkpoint=folder, checkpoint_every=5, resume=True)
history = fp.fit(model, X, y, nn.CrossEntropyLoss(), opt, epochs=20, batch_size=8, progress=False,
                 validation_data=(X[:30], y[:30]), **kw)
flat = {f"model.{k}": v for k, v in model.state_dict().items()}
for i, s in opt.state_dict()["state"].items():
    flat.update({f"opt.{i}.{k}": np.asarray(v) for k, v in s.items()})
flat.update({f"history.{k}": np.array(v) for k, v in history.items()})
np.savez(out, **flat)
"""
KILL_STEPS = 15 * 20  # 120 rows in batches of 8, 20 epochs


def _worker(tmp_path, folder, out, log):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(os.path.abspath(p) for p in sys.path))  # any cwd
    with open(tmp_path / "stderr.txt", "wb") as err:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, str(tmp_path / "worker.py"), str(folder), str(out), str(log)],
                                env=env, stdout=subprocess.DEVNULL, stderr=err)


def _lines(log) -> list:
    return log.read_text().split() if log.exists() else []


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_sigkilled_run_resumes_bitwise(tmp_path):
    (tmp_path / "worker.py").write_text(WORKER)
    reference = _worker(tmp_path, "-", tmp_path / "ref.npz", tmp_path / "ref.log")
    assert reference.wait(timeout=120) == 0, (tmp_path / "stderr.txt").read_text()
    chooser = random.Random(2026)
    log, folder = tmp_path / "kill.log", tmp_path / "checkpoints"
    kills = 4
    # Kill when this many steps have been started in all (a random point of the whole run), then a
    # random bit later: inside a step, inside a checkpoint's write or between them.
    targets = sorted(chooser.sample(range(5, KILL_STEPS - 20), kills))
    for target in targets:
        p = _worker(tmp_path, folder, tmp_path / "out.npz", log)
        deadline = time.monotonic() + 60
        while str(p.pid) not in (lines := _lines(log)) or len(lines) < target:
            assert p.poll() is None, (tmp_path / "stderr.txt").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.002)
        # Steps done <= steps started < KILL_STEPS - 20, and 10 ms is under 4 steps: the run is not over.
        time.sleep(chooser.uniform(0.0, 0.01))
        p.send_signal(signal.SIGKILL)
        assert p.wait(timeout=60) == -signal.SIGKILL
    final = _worker(tmp_path, folder, tmp_path / "out.npz", log)
    assert final.wait(timeout=120) == 0, (tmp_path / "stderr.txt").read_text()
    with np.load(tmp_path / "ref.npz") as ref, np.load(tmp_path / "out.npz") as out:
        assert sorted(ref.files) == sorted(out.files)
        for k in ref.files:
            assert ref[k].dtype == out[k].dtype and ref[k].tobytes() == out[k].tobytes(), k
    lines = _lines(log)
    assert 0 < lines.count(str(final.pid)) < KILL_STEPS  # the last run resumed from a checkpoint
    assert len(lines) <= KILL_STEPS + kills * (5 + 1)  # each kill repeats at most checkpoint_every steps (+1 cut)
    assert len(_checkpoints(folder)) == 2
