"""Checkpoints for ``fit``: what a run needs to continue bitwise after a kill.

A checkpoint is one ``fp.save`` file, ``checkpoint-<steps done>.safetensors``,
holding the model's and the optimizer's state dicts (and the scheduler's,
when fit has one), the shuffling
generator's state, the position (epoch, batches done in it), the epoch's
permutation and running loss total, and the history so far. Positions count
optimizer steps since the start, so names sort in training order. The
newest two are kept: a kill while one is written leaves the one before.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings

import numpy as np

from . import _runtime
from .serialization import load, save

KIND = "fusedprop.fit-checkpoint"
VERSION = 1
_NAME = re.compile(r"checkpoint-(\d{12})\.safetensors")
_TEMP = re.compile(r"\.checkpoint-\d{12}\.safetensors\.\d+\.[0-9a-f]+\.tmp")


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"fit: {name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"fit: {name} must be a positive int, got {value!r}")
    return int(value)


def open_run(directory, every, resume, *, X, y, batch_size: int, shuffle: bool, validation: bool, loss,
             optimizer, scheduler=None) -> "Checkpointer | None":
    """The checkpointer of one fit call (None without ``checkpoint``), after
    checking fit's three checkpoint arguments."""
    if not isinstance(resume, bool):
        raise TypeError(f"fit: resume must be a bool, got {type(resume).__name__}")
    if directory is None:
        if every is not None or resume:
            given = "checkpoint_every" if every is not None else "resume=True"
            raise ValueError(f"fit: {given} needs checkpoint=DIR (a folder for the checkpoints)")
        return None
    if isinstance(directory, bool) or not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"fit: checkpoint must be a folder path (str or os.PathLike), got {type(directory).__name__}")
    directory = os.fspath(directory)
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ValueError(f"fit: checkpoint must be a folder, but {directory!r} is a file")
    every = None if every is None else _positive_int(every, "checkpoint_every")
    # A resumed run must see the same data: one pass over it, cheap next to an epoch of training.
    fingerprint = hashlib.sha256()
    for a in (X, y):
        a = np.ascontiguousarray(a)
        if a.dtype.hasobject:
            raise TypeError(f"fit: y must be numeric, got dtype {a.dtype}")
        fingerprint.update(f"{a.dtype.str}{a.shape}".encode())
        fingerprint.update(a.reshape(-1).view(np.uint8))
    run = {"rows": len(X), "batch_size": batch_size, "shuffle": shuffle, "validation": validation,
           "loss": f"{loss.kind}/{loss.reduction}/{loss.label_smoothing!r}", "optimizer": type(optimizer).__name__,
           "data_sha256": fingerprint.hexdigest()}
    if scheduler is not None:  # absent without one: checkpoints written before schedulers still match
        run["scheduler"] = type(scheduler).__name__
    return Checkpointer(directory, every, resume, run, scheduler)


class Checkpointer:
    def __init__(self, directory: str, every, resume: bool, run: dict, scheduler=None) -> None:
        self.directory, self.every, self.resume, self.run = directory, every, resume, run
        self.scheduler = scheduler
        n, bs = run["rows"], run["batch_size"]
        self.steps_per_epoch = -(-n // bs)

    # ---------------------------------------------------------------- files
    def _existing(self) -> list:
        """(position, path) of the checkpoints in the folder, newest first."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        found = [(int(m.group(1)), os.path.join(self.directory, name))
                 for name in names if (m := _NAME.fullmatch(name))]
        return sorted(found, reverse=True)

    def _write(self, position: int, content: dict) -> None:
        os.makedirs(self.directory, exist_ok=True)
        path = os.path.join(self.directory, f"checkpoint-{position:012d}.safetensors")
        save(content, path)
        # Keep this one and the newest before it. Later positions are from a
        # run this one has replaced (resume=False, or resumed past a corrupt file).
        older = [p for pos, p in self._existing() if pos < position]
        stale = [p for pos, p in self._existing() if pos > position] + older[1:]
        stale += [os.path.join(self.directory, name) for name in os.listdir(self.directory) if _TEMP.fullmatch(name)]
        for p in stale:
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass

    def _content(self, model, optimizer, epoch: int, step: int, order, total: float, history: dict) -> dict:
        content = {"kind": KIND, "version": VERSION, "run": self.run, "epoch": epoch, "step": step,
                   "order": order, "total": total, "history": history,
                   "generator": _runtime.generator().bit_generator.state,
                   "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                   "dropout": _dropout_state(model)}
        if self.scheduler is not None:
            content["scheduler"] = self.scheduler.state_dict()
        return content

    # ------------------------------------------------------------ training
    def step_done(self, model, optimizer, epoch: int, step: int, order, total: float, history: dict) -> None:
        """After batch ``step`` (1-based) of ``epoch``: a checkpoint every N steps.
        An epoch's last batch is left to epoch_done, which follows it."""
        if self.every is None or step >= self.steps_per_epoch:
            return
        position = epoch * self.steps_per_epoch + step
        if position % self.every == 0:
            shuffled = order if self.run["shuffle"] else None
            self._write(position, self._content(model, optimizer, epoch, step, shuffled, total, history))

    def epoch_done(self, model, optimizer, epoch: int, history: dict) -> None:
        position = (epoch + 1) * self.steps_per_epoch
        self._write(position, self._content(model, optimizer, epoch + 1, 0, None, 0.0, history))

    # ------------------------------------------------------------- resuming
    def restore(self, model, optimizer, history: dict, epochs: int) -> tuple:
        """(epoch, step, order, total) to continue from, with the model, the
        optimizer, the generator and history set from the newest usable
        checkpoint; (0, 0, None, 0.0) and nothing changed when there is none."""
        if not self.resume:
            return 0, 0, None, 0.0
        existing = self._existing()
        for i, (_, path) in enumerate(existing):
            try:
                state = self._read(path, history)
            except ValueError as e:
                nxt = f"trying {existing[i + 1][1]!r}" if i + 1 < len(existing) else "no older one is left"
                warnings.warn(f"fit: skipping unusable checkpoint {path!r} ({e}); {nxt}", RuntimeWarning,
                              stacklevel=3)
                continue
            return self._apply(path, state, model, optimizer, history, epochs)
        if existing:
            raise ValueError(f"fit: resume=True but no checkpoint in {self.directory!r} is usable (see the "
                             "warnings); delete them or pass resume=False to start again")
        return 0, 0, None, 0.0

    def _read(self, path: str, history: dict) -> dict:
        """A checkpoint's content after checking its shape; ValueError if it is
        corrupt or not a checkpoint (the caller then tries the one before)."""
        state = load(path)
        expected = {"kind", "version", "run", "epoch", "step", "order", "total", "history", "generator", "model",
                    "optimizer"}
        # "dropout" (Dropout's seed and step counts) is absent from checkpoints of earlier builds.
        if set(state) - {"scheduler", "dropout"} != expected or state["kind"] != KIND:
            raise ValueError(f"{path!r} is not a fit checkpoint")
        if state["version"] != VERSION:
            raise ValueError(f"{path!r} is a version {state['version']!r} checkpoint; this fusedprop reads {VERSION}")
        return state

    def _apply(self, path: str, state: dict, model, optimizer, history: dict, epochs: int) -> tuple:
        run = state["run"]
        run = run if isinstance(run, dict) else {}
        # Both ways: a key only one run has (a scheduler) is a difference too.
        keys = list(self.run) + [k for k in run if k not in self.run]
        changed = [f"{k} {run.get(k)!r} there, {self.run.get(k)!r} here" for k in keys
                   if run.get(k) != self.run.get(k)]
        if changed:
            raise ValueError(f"fit: checkpoint {path!r} is from a different run ({'; '.join(changed)}); pass "
                             "resume=False or use another checkpoint folder")
        epoch, step, order, total = state["epoch"], state["step"], state["order"], state["total"]
        n, spe = self.run["rows"], self.steps_per_epoch
        saved_history = state["history"]
        problems = []
        if not (isinstance(epoch, int) and 0 <= epoch and isinstance(step, int) and 0 <= step < max(spe, 1)):
            problems.append(f"position epoch={epoch!r}, step={step!r}")
        elif epoch > epochs or (epoch == epochs and step):
            problems.append(f"{epoch} epochs done, more than epochs={epochs}")
        if not isinstance(total, float):
            problems.append(f"loss total {total!r}")
        if step and self.run["shuffle"] and not (isinstance(order, np.ndarray) and order.shape == (n,)
                                                 and order.dtype.kind == "i"):
            problems.append("the permutation of its epoch")
        if not (isinstance(saved_history, dict) and set(saved_history) == set(history)
                and all(isinstance(v, list) and len(v) == epoch for v in saved_history.values())):
            problems.append("history")
        params = model.state_dict()  # parameters and buffers (BatchNorm's running statistics)
        saved_model = state["model"]
        if not (isinstance(saved_model, dict) and set(saved_model) == set(params)
                and all(isinstance(v, np.ndarray) and v.dtype == params[k].dtype
                        and v.shape == params[k].shape for k, v in saved_model.items())):
            problems.append("model parameters (names, shapes or dtypes differ from this model's)")
        saved_dropout = state.get("dropout")
        if saved_dropout is not None and not _dropout_state_fits(saved_dropout, model):
            problems.append("dropout modules")
        probe = np.random.default_rng()
        try:
            probe.bit_generator.state = state["generator"]
        except (TypeError, ValueError, KeyError):
            problems.append("generator state")
        if problems:
            raise ValueError(f"fit: checkpoint {path!r} does not fit this run: {', '.join(problems)}")
        backup, backup_opt = model.state_dict(), optimizer.state_dict()
        model.load_state_dict(saved_model)
        try:
            optimizer.load_state_dict(state["optimizer"])
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            model.load_state_dict(backup)  # nothing partial
            raise ValueError(f"fit: checkpoint {path!r} does not fit this optimizer ({e})") from None
        if self.scheduler is not None:
            saved = state.get("scheduler")
            if not isinstance(saved, dict):
                model.load_state_dict(backup)
                optimizer.load_state_dict(backup_opt)
                raise ValueError(f"fit: checkpoint {path!r} holds no state of the scheduler")
            self.scheduler.load_state_dict(saved)
        _runtime.generator().bit_generator.state = state["generator"]
        if saved_dropout is not None:
            _restore_dropout(saved_dropout, model)
        for k in history:
            history[k][:] = saved_history[k]
        if step and not self.run["shuffle"]:
            order = np.arange(n)
        return epoch, step, (order if step else None), total


# ------------------------------------------------------------------ dropout

def _dropout_modules(model) -> dict:
    from .nn.dropout import Dropout
    return {name: m for name, m in model.named_modules() if type(m) is Dropout}


def _dropout_state(model) -> dict:
    """What the masks of the next steps depend on: the seed, each Dropout's stream and step count."""
    return {"seed": _runtime.dropout_seed(),
            "modules": {name: [m._stream, m.steps_done()] for name, m in _dropout_modules(model).items()}}


def _dropout_state_fits(saved, model) -> bool:
    mods = saved.get("modules") if isinstance(saved, dict) else None
    return (isinstance(mods, dict) and set(mods) == set(_dropout_modules(model))
            and isinstance(saved.get("seed"), int)
            and all(isinstance(v, list) and len(v) == 2 and all(isinstance(i, int) for i in v) for v in mods.values()))


def _restore_dropout(saved, model) -> None:
    _runtime.restore_dropout_seed(saved["seed"])
    for name, m in _dropout_modules(model).items():
        m.restore_steps(*saved["modules"][name])
