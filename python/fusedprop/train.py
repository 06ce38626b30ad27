"""Whole-step training: ``TrainStep``, ``fit`` and ``predict``.

``TrainStep(model, criterion, optimizer)`` is the PyTorch loop —
``zero_grad``, forward, loss, ``backward``, ``step`` — as one call. On the
cpp backend the whole step is ONE call into C++ with the GIL released:
every layer's fused forward, the loss and its gradient, every fused
backward and the optimizer update of every parameter, with the
intermediate buffers kept between steps. The numpy and numba backends run
the same step as a Python loop over their kernels.

The parameters stay the arrays users see: after a step ``p.data`` holds the
updated values, ``p.grad`` the batch's gradient and ``optimizer.state`` the
moments, exactly as after the eager loop, so the two can be mixed freely.
"""

from __future__ import annotations

import sys

import numpy as np

from . import _checkpoint, _runtime, backends
from . import functional as F
from . import _sequence
from ._train_plan import compile_loss, compile_model, compile_optimizer, targets_for
from ._arrays import as_array
from .nn.container import Sequential, _infer_in_one_call
from .predictor import _layer_tuples
from .nn.utils import clip_grad_norm_
from .optim.adam import Adam
from .optim.lr_scheduler import LRScheduler, ReduceLROnPlateau
from .tensor import Tensor, no_grad

__all__ = ["TrainStep", "fit", "predict"]


class TrainStep:
    """``step = TrainStep(model, criterion, optimizer); loss = step(x, y)``.

    Supported: ``nn.Sequential`` chains of ``Linear`` layers, each optionally
    followed by an activation module; ``MSELoss``, ``BCEWithLogitsLoss``,
    ``CrossEntropyLoss`` (class-index targets, any label smoothing) with
    reduction ``"mean"`` or ``"sum"``; ``SGD``, ``Adam``, ``AdamW``. Anything
    else raises a TypeError naming the module it cannot compile.

    ``clip_grad_norm=max_norm`` clips the step's gradients as
    ``nn.utils.clip_grad_norm_(model.parameters(), max_norm)`` (2-norm) between
    the backward and the update: on the cpp backend the C++ step then computes
    the gradients only and the optimizer's own ``step()`` (the same fused
    kernels) updates, so the result equals the eager loop with clipping.
    Without it the step stays one call into C++. Schedulers may change the
    optimizer's ``lr``/``momentum``/``betas`` between steps: each step reads them.

    ``comm``: an mpi4py communicator for data-parallel training. Every rank
    calls ``step(x, y)`` with the same global batch and computes the
    gradients of its contiguous slice; one collective sums them (in rank
    order: bitwise the same on every rank) and every rank applies the same
    update. Rank 0's parameters are copied to every rank here. See README,
    "Training on several processes and machines".
    """

    def __init__(self, model, criterion, optimizer, comm=None, clip_grad_norm=None) -> None:
        self.model, self.criterion, self.optimizer = model, criterion, optimizer
        self.clip_grad_norm = _check_clip(clip_grad_norm)
        # A chain of fused Linear layers runs as TrainPlan; one with norms,
        # dropout or standalone activations as SequencePlan (self._ops).
        self._layers, self._ops = compile_model(model)
        self._loss = compile_loss(criterion)
        # Parameter slots in the plan's order: (weight, bias) per layer or op, None where absent.
        if self._ops is None:
            self._slots = [p for s in self._layers for p in (s.linear.weight, s.linear.bias)]
            self._dtype = self._layers[0].linear.weight.data.dtype
            self._in = self._layers[0].linear.in_features
            self._out = self._layers[-1].linear.out_features
        else:
            self._slots = _sequence.slots(self._ops)
            self._dtype = _sequence.dtype_of(self._ops, "TrainStep")
            self._in, self._out = self._ops[0].width_in, self._ops[-1].width_out
            if comm is not None:
                stateful = [type(op.module).__name__ for op in self._ops if op.kind in ("batch_norm", "dropout")]
                if stateful:
                    raise TypeError(f"TrainStep: with comm= the model cannot hold {stateful[0]} yet (its batch "
                                    "statistics or mask would be per rank, not of the global batch)")
        compile_optimizer(optimizer, self._slots)
        in_model = {id(p) for p in self._slots if p is not None}
        # The optimizer's other parameters get no gradient from this model: as
        # after PyTorch's zero_grad(), they must not be stepped.
        self._outside = [p for g in optimizer.param_groups for p in g["params"] if id(p) not in in_model]
        groups = {id(p): g for g in optimizer.param_groups for p in g["params"]}
        self._slot_groups = [None if p is None else groups[id(p)] for p in self._slots]
        self._plan = None
        # SequencePlan runs BatchNorm -> activation -> Dropout (or activation -> Dropout) in one walk over
        # the batch (the same bits); False only in tests, which compare the two.
        self._fuse_elementwise = True
        self._last_grads = [None] * len(self._slots)  # see _compiled_step
        self._dp = None
        if comm is not None:
            from . import _distributed  # imports mpi4py: only with a comm

            self._dp = _distributed.DataParallel(comm, self._slots, self._dtype, "TrainStep")

    def __repr__(self) -> str:
        if self._ops is not None:
            chain = " -> ".join(type(op.module).__name__ + ("" if op.kind != "linear" or op.activation == "identity"
                                                            else f"+{op.activation}") for op in self._ops)
            return f"TrainStep({chain}, {type(self.criterion).__name__}, {type(self.optimizer).__name__})"
        chain = " -> ".join(f"Linear({s.linear.in_features}, {s.linear.out_features})"
                            + ("" if s.activation == "identity" else f"+{s.activation}") for s in self._layers)
        return f"TrainStep({chain}, {type(self.criterion).__name__}, {type(self.optimizer).__name__})"

    def __call__(self, x, y) -> float:
        x = _as_batch(x, self._dtype, self._in, "TrainStep")
        target = targets_for(self._loss, y, x.shape[0], self._out, self._dtype)
        if self._dp is not None:
            self._check_classes(target)
            rows = self._dp.local_slice(len(x))
            return self._distributed_step(x[rows], target[rows], len(x))
        if backends.current.NAME == "cpp":
            return self._compiled_step(x, target)
        return self._python_step(x, target)

    # ------------------------------------------------------------- cpp path
    def _compiled_plan(self):
        if self._plan is None and self._ops is not None:
            self._plan = backends.core_module().SequencePlan(str(self._dtype), _sequence.op_tuples(self._ops),
                                                             self._loss.kind, self._loss.reduction,
                                                             self._loss.label_smoothing,
                                                             self._fuse_elementwise)
        if self._plan is None:
            core = backends.core_module()
            layers = [(s.activation, s.negative_slope, s.linear.bias is not None, s.linear.in_features,
                       s.linear.out_features) for s in self._layers]
            self._plan = core.TrainPlan(str(self._dtype), layers, self._loss.kind, self._loss.reduction,
                                        self._loss.label_smoothing)
        return self._plan

    def _compiled_step(self, x, target, weight_sq=None) -> float:
        """The step on checked arrays. ``weight_sq``: None, or a float64 array
        of one element that receives the sum of squares of the weights (not
        the biases) before the update (scikit-learn's L2 loss term)."""
        plan = self._compiled_plan()
        self._clear_outside_grads()
        slots = self._slots
        params = [None if p is None else p.data for p in slots]
        # The buffers handed out last step, if p.grad still is one of them: the
        # C++ step checks dtype, shape and layout anyway, so only a new or
        # replaced p.grad needs _grad_buffer's checks (half the Python time of
        # a small step went to them).
        last = self._last_grads
        grads = [None if p is None else p.grad if p.grad is g and g is not None else _grad_buffer(p)
                 for p, g in zip(slots, last)]
        self._last_grads = grads
        if self._ops is None:
            tail = (weight_sq,)
        else:  # weight_sq is for fusedprop.sklearn's Linear chains only
            if weight_sq is not None:
                raise TypeError("TrainStep: weight_sq needs a chain of Linear layers and activations")
            extras, x = self._step_extras(x)
            tail = (extras,)
        if self.clip_grad_norm is None:  # the fast path: gradients and update in one call
            return plan.step(x, target, params, grads, _update_rules(self.optimizer, slots, self._slot_groups),
                             *tail)
        loss = plan.step(x, target, params, grads, [None] * len(slots), *tail)  # gradients only
        self._update()
        return loss

    def _step_extras(self, x) -> tuple:
        """(per-op extras, x as the plan takes it) for a training step of the op chain: counts the step
        (num_batches_tracked, dropout steps) as the eager modules would."""
        if self._ops[0].kind != "linear":
            x = np.ascontiguousarray(x)  # only the GEMM reads through strides
        return _sequence.train_extras(self._ops, len(x), "TrainStep"), x

    def _update(self) -> None:
        """The optimizer's own step on the gradients in p.grad, clipped first if asked."""
        if self.clip_grad_norm is not None:
            clip_grad_norm_([p for p in self._slots if p is not None], self.clip_grad_norm)
        self.optimizer.step()

    # ------------------------------------------------ data-parallel path
    def _distributed_step(self, x, target, n: int) -> float:
        """The step over ``comm`` on this rank's rows (x, target) of a global
        batch of n rows, already checked."""
        self._clear_outside_grads()
        loss = self._dp.gradients(self._local_grads, x, target, n, self._loss.reduction == "mean")
        # The eager update runs the compiled update's kernels: the same bits as one process would get.
        self._update()
        return loss

    def _check_classes(self, target) -> None:
        # On the whole batch, not on one rank's slice in C++: every rank raises the same error.
        if self._loss.kind == "cross_entropy" and len(target):
            bad = target[(target < 0) | (target >= self._out)]
            if bad.size:
                raise ValueError(f"TrainStep: target class index {bad[0]} is out of range [0, {self._out})")

    def _local_grads(self, x, target) -> float:
        """Gradients of (x, target) into the p.grad buffers, no update; the loss."""
        if backends.current.NAME == "cpp":
            slots = self._slots
            params = [None if p is None else p.data for p in slots]
            grads = [None if p is None else p.grad for p in slots]
            if self._ops is not None:
                extras, x = self._step_extras(x)
                return self._compiled_plan().step(x, target, params, grads, [None] * len(slots), extras)
            return self._compiled_plan().step(x, target, params, grads, [None] * len(slots))
        return self._python_grads(x, target)

    # ------------------------------------------------------ Python path
    def _clear_outside_grads(self) -> None:
        for p in self._outside:
            p.grad = None

    def _python_step(self, x, target) -> float:
        self._clear_outside_grads()
        loss = self._python_grads(x, target)
        self._update()
        return loss

    def _python_grads(self, x, target) -> float:
        if self._ops is not None:
            return self._python_op_grads(x, target)
        inputs, saved = [x], []
        for s in self._layers:
            lin = s.linear
            y, kept = F.linear_forward(inputs[-1], lin.weight.data, None if lin.bias is None else lin.bias.data,
                                       s.activation, negative_slope=s.negative_slope)
            inputs.append(y)
            saved.append(kept)
        out = Tensor(inputs.pop(), requires_grad=True)
        loss = self.criterion(out, target)
        loss.backward()
        grad = out.grad
        for i in reversed(range(len(self._layers))):
            s = self._layers[i]
            lin = s.linear
            grad, gw, gb = F.linear_backward(grad, inputs[i], lin.weight.data, saved[i], s.activation,
                                             negative_slope=s.negative_slope, needs_input_grad=i > 0)
            lin.weight.grad = gw
            if lin.bias is not None:
                lin.bias.grad = gb
        return float(loss.item())

    def _python_op_grads(self, x, target) -> float:
        extras, x = self._step_extras(x)
        params = [None if p is None else p.data for p in self._slots]
        out, saved = _sequence.python_forward(self._ops, params, extras, x, True)
        out = Tensor(out, requires_grad=True)
        loss = self.criterion(out, target)
        loss.backward()
        grads = _sequence.python_backward(self._ops, params, extras, saved, out.grad)
        for p, g in zip(self._slots, grads):
            if p is not None:
                p.grad = g
        return float(loss.item())

    # ------------------------------------------------------- inference
    def _forward(self, x) -> np.ndarray:
        """The model's output for x (no grad, nothing saved; running statistics, no dropout)."""
        if self._ops is not None:
            params = [None if p is None else p.data for p in self._slots]
            extras = _sequence.eval_extras(self._ops)
            if backends.current.NAME == "cpp":
                out = np.empty((x.shape[0], self._out), self._dtype)
                xc = x if self._ops[0].kind == "linear" else np.ascontiguousarray(x)
                self._compiled_plan().forward(xc, params, extras, out)
                return out
            return _sequence.python_forward(self._ops, params, extras, x, False)[0]
        if backends.current.NAME == "cpp":
            out = np.empty((x.shape[0], self._out), self._dtype)
            params = [None if p is None else p.data for s in self._layers
                      for p in (s.linear.weight, s.linear.bias)]
            self._compiled_plan().forward(x, params, out)
            return out
        return _forward_layers(self._layers, x)


def _forward_layers(layers, x) -> np.ndarray:
    """Inference through the fused layers: one F.linear per layer, nothing saved."""
    for s in layers:
        lin = s.linear
        x = F.linear(x, lin.weight.data, None if lin.bias is None else lin.bias.data, s.activation,
                     negative_slope=s.negative_slope)
    return x


def _check_clip(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"TrainStep: clip_grad_norm must be None or a number (the max norm), got "
                        f"{type(value).__name__}")
    if not value >= 0:
        raise ValueError(f"TrainStep: clip_grad_norm must be >= 0, got {value}")
    return float(value)


def _as_batch(x, dtype, n_in: int, fn: str) -> np.ndarray:
    x = as_array(x.data if isinstance(x, Tensor) else x, fn, "x")
    if x.dtype.kind != "f":
        raise TypeError(f"{fn}: x must be a floating-point array, got dtype {x.dtype}")
    if x.ndim != 2 or x.shape[1] != n_in:
        raise ValueError(f"{fn}: x must have shape (batch, {n_in}), got {x.shape}")
    return x.astype(dtype, copy=False)


def _grad_buffer(p) -> np.ndarray:
    """p.grad, allocated once and then overwritten in place by every step."""
    g = p.grad
    if g is not None and g.__class__ is np.ndarray and g.flags.c_contiguous and g.flags.writeable \
            and g.shape == p.data.shape and g.dtype == p.data.dtype:
        return g
    g = p.grad = np.empty_like(p.data)
    return g


def _update_rules(optimizer, slots: list, groups: list) -> list:
    """One entry per parameter slot: how the C++ step updates it, with the
    optimizer's own state arrays (its helpers create them as its step() would).
    Read every step: the hyperparameters may change (schedulers)."""
    adam = isinstance(optimizer, Adam)
    rules = []
    for p, g in zip(slots, groups):
        if p is None:
            rules.append(None)
        elif adam:
            st = optimizer._state_of(p, g["amsgrad"])
            st["step"] += 1.0
            beta1, beta2 = g["betas"]
            rules.append(("adam", st["step"], g["lr"], beta1, beta2, g["eps"], g["weight_decay"],
                          optimizer._decoupled, st["exp_avg"], st["exp_avg_sq"],
                          st["max_exp_avg_sq"] if g["amsgrad"] else None))
        else:
            buf, first = optimizer._momentum_buffer_of(p) if g["momentum"] != 0 else (None, False)
            rules.append(("sgd", g["lr"], g["momentum"], g["dampening"], g["weight_decay"], g["nesterov"], first, buf))
    return rules


# ------------------------------------------------------------------- fit

def fit(model, X, y, criterion, optimizer, epochs: int = 10, batch_size: int = 64, shuffle: bool = True,
        validation_data=None, progress: bool = True, checkpoint=None, checkpoint_every=None,
        resume: bool = False, comm=None, scheduler=None) -> dict:
    """Train ``model`` on (X, y) with ``TrainStep``; returns the history.

    ``history["loss"]`` holds each epoch's mean training loss (weighted by
    batch size); with ``validation_data=(X_val, y_val)`` also
    ``history["val_loss"]`` and, for CrossEntropyLoss, ``history["val_accuracy"]``.
    Shuffling uses fusedprop's generator (``fp.manual_seed``). A tqdm progress
    bar is shown when ``progress`` is true and stderr is a terminal.

    ``checkpoint=DIR`` writes a checkpoint (an ``fp.save`` file) into the
    folder DIR at the end of every epoch and, with ``checkpoint_every=N``,
    after every N-th optimizer step; the newest two are kept. With
    ``resume=True`` the run continues from the newest usable checkpoint in DIR
    (a corrupt one is skipped with a RuntimeWarning naming it) or starts
    fresh when there is none. A run killed at any moment (SIGKILL included)
    and resumed with the same arguments ends with parameters, optimizer state
    and history bitwise equal to an uninterrupted run, repeating at most N
    steps. A checkpoint from a run with other data, batch size, shuffling,
    loss, optimizer, scheduler or model raises ValueError. With ``resume=False`` any
    checkpoints already in DIR are replaced as the new run writes its own.

    ``scheduler`` (an ``optim.lr_scheduler`` scheduler of ``optimizer``) is
    stepped by its ``interval`` attribute: ``"batch"`` (``OneCycleLR``'s)
    after every optimizer step, ``"epoch"`` (every other scheduler's) at each
    epoch's end; ``ReduceLROnPlateau`` at each epoch's end with the epoch's
    validation loss, or its training loss without ``validation_data``. Set
    ``scheduler.interval = "batch"`` to step any other one per batch (e.g. a
    ``LambdaLR`` warm-up counted in steps). Checkpoints hold the scheduler's
    state, so a resumed run continues its schedule.

    ``comm``: an mpi4py communicator for data-parallel training (see
    ``TrainStep``). Every rank calls fit with the same arguments and data;
    ``batch_size`` is the global batch, each rank computes its slice. Rank
    0's generator state is copied to every rank, so all draw the same
    shuffles. Only rank 0 shows progress and writes checkpoints; every rank
    reads them on resume (the folder must be visible to all). Validation is
    split across the ranks. Every rank returns the same history. An
    exception on any rank ends the whole job with ``MPI_Abort``.
    """
    if comm is not None:
        from . import _distributed  # imports mpi4py: only with a comm

        return _distributed.run_or_abort(_distributed.check_comm(comm, "fit"), _fit, model, X, y, criterion,
                                         optimizer, epochs, batch_size, shuffle, validation_data, progress,
                                         checkpoint, checkpoint_every, resume, comm, scheduler)
    return _fit(model, X, y, criterion, optimizer, epochs, batch_size, shuffle, validation_data, progress,
                checkpoint, checkpoint_every, resume, None, scheduler)


def _fit(model, X, y, criterion, optimizer, epochs, batch_size, shuffle, validation_data, progress, checkpoint,
         checkpoint_every, resume, comm, scheduler) -> dict:
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"fit: {name} must be a positive int, got {value!r}")
    per_batch = _check_scheduler(scheduler, optimizer)
    step = TrainStep(model, criterion, optimizer, comm=comm)
    X = _as_batch(X, step._dtype, step._in, "fit")
    y = as_array(y.data if isinstance(y, Tensor) else y, "fit", "y")
    if len(y) != len(X):
        raise ValueError(f"fit: X has {len(X)} rows but y has {len(y)}")
    n = len(X)
    dp = step._dp
    if dp is not None:
        dp.agree("fit", rows=n, batch_size=int(batch_size), epochs=int(epochs), shuffle=bool(shuffle),
                 validation=validation_data is not None, checkpoint=checkpoint is not None, resume=resume)
        step._check_classes(targets_for(step._loss, y, n, step._out, step._dtype))
        if shuffle:
            dp.share_generator(_runtime.generator())
    history: dict = {"loss": []}
    if validation_data is not None:
        history["val_loss"] = []
        if step._loss.kind == "cross_entropy":
            history["val_accuracy"] = []
    saver = _checkpoint.open_run(checkpoint, checkpoint_every, resume, X=X, y=y, batch_size=int(batch_size),
                                 shuffle=bool(shuffle), validation=validation_data is not None, loss=step._loss,
                                 optimizer=optimizer, scheduler=scheduler)
    # Where to start: a resumed run's epoch, batches done in it, its permutation and running loss total.
    first_epoch, done, order, total = (0, 0, None, 0.0) if saver is None else \
        saver.restore(model, optimizer, history, epochs)
    if dp is not None and saver is not None:
        dp.agree("fit: resuming", epoch=first_epoch, step=done, total=total, parameters=dp.parameter_digest())
    writes = saver is not None and (dp is None or dp.rank == 0)
    bar = _progress_bar(epochs, progress and (dp is None or dp.rank == 0))
    if bar is not None and first_epoch:
        bar.update(first_epoch)
    model.train()
    for epoch in range(first_epoch, epochs):
        if order is None:
            order = _runtime.generator().permutation(n) if shuffle else np.arange(n)
            total = 0.0
        for start in range(done * batch_size, n, batch_size):
            idx = order[start:start + batch_size]
            if dp is None:
                loss = step(X[idx], y[idx])
            else:  # only this rank's rows are gathered
                mine = idx[dp.local_slice(len(idx))]
                loss = step._distributed_step(X[mine], targets_for(step._loss, y[mine], len(mine), step._out,
                                                                   step._dtype), len(idx))
            total += loss * (len(idx) if step._loss.reduction == "mean" else 1)
            if per_batch:
                scheduler.step()
            if writes:
                saver.step_done(model, optimizer, epoch, start // batch_size + 1, order, total, history)
        epoch_loss = total / n if step._loss.reduction == "mean" and n else total
        history["loss"].append(epoch_loss)
        postfix = {"loss": f"{epoch_loss:.4f}"}
        if validation_data is not None:
            val_loss, val_acc = _evaluate(step, *validation_data)
            history["val_loss"].append(val_loss)
            postfix["val_loss"] = f"{val_loss:.4f}"
            if val_acc is not None:
                history["val_accuracy"].append(val_acc)
                postfix["val_acc"] = f"{val_acc:.4f}"
        if scheduler is not None and not per_batch:
            _step_per_epoch(scheduler, history)
        if writes:
            saver.epoch_done(model, optimizer, epoch, history)
        order, done = None, 0
        if bar is not None:
            bar.set_postfix(postfix)
            bar.update(1)
    if bar is not None:
        bar.close()
    return history


def _check_scheduler(scheduler, optimizer) -> bool:
    """Whether fit steps ``scheduler`` per batch (else per epoch, or never without one)."""
    if scheduler is None:
        return False
    if not isinstance(scheduler, LRScheduler):
        raise TypeError(f"fit: scheduler must be an fp.optim.lr_scheduler scheduler, got {type(scheduler).__name__}")
    if scheduler.optimizer is not optimizer:
        raise ValueError("fit: scheduler must schedule the optimizer given to fit, but it holds another one")
    interval = getattr(scheduler, "interval", "epoch")
    if interval not in ("batch", "epoch"):
        raise ValueError(f"fit: scheduler.interval must be 'batch' or 'epoch', got {interval!r}")
    return interval == "batch"


def _step_per_epoch(scheduler, history: dict) -> None:
    if isinstance(scheduler, ReduceLROnPlateau):
        scheduler.step(history["val_loss"][-1] if "val_loss" in history else history["loss"][-1])
    else:
        scheduler.step()


def _evaluate(step: TrainStep, X, y):
    X = _as_batch(X, step._dtype, step._in, "fit: validation_data")
    if step._dp is not None:
        return _evaluate_distributed(step, X, y)
    out = step._forward(X)
    target = targets_for(step._loss, y, len(X), step._out, step._dtype)
    with no_grad():
        loss = float(step.criterion(Tensor(out), target).item())
    acc = float(np.mean(out.argmax(axis=1) == target)) if step._loss.kind == "cross_entropy" else None
    return loss, acc


def _evaluate_distributed(step: TrainStep, X, y):
    """_evaluate with each rank on its slice of (X, y), the parts added in rank order."""
    n = len(X)
    target = targets_for(step._loss, y, n, step._out, step._dtype)
    rows = step._dp.local_slice(n)
    loss = correct = 0.0
    if rows.stop > rows.start:
        out = step._forward(X[rows])
        with no_grad():
            loss = float(step.criterion(Tensor(out), target[rows]).item())
        if step._loss.reduction == "mean":
            loss *= (rows.stop - rows.start) / n
        if step._loss.kind == "cross_entropy":
            correct = float(np.sum(out.argmax(axis=1) == target[rows]))
    loss, correct = step._dp.sum([loss, correct], "fit: validation")
    return float(loss), (float(correct / n) if step._loss.kind == "cross_entropy" else None)


def _progress_bar(total: int, progress: bool):
    if not progress or not sys.stderr.isatty():
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="epoch", leave=False)


def _predict_in_one_call(model, X, batch_size: int):
    """predict through Sequential's one-call inference (its plan cache, no
    per-call compile); None where that does not apply: the general path below
    then runs, and raises the usual errors."""
    X = as_array(X.data if isinstance(X, Tensor) else X, "predict", "X")
    if X.ndim != 2 or X.dtype.kind != "f":
        return None
    plan = model._plan if model._plan is not None else model._build_plan()
    with no_grad():
        if len(X) <= batch_size:
            y = _infer_in_one_call(plan, X)
            return None if y is None else y.data
        parts = []
        for start in range(0, len(X), batch_size):
            y = _infer_in_one_call(plan, X[start:start + batch_size])
            if y is None:
                return None
            parts.append(y.data)
        return np.concatenate(parts)


def predict(model, X, batch_size: int = 1024) -> np.ndarray:
    """The model's outputs for X in eval mode, ``batch_size`` rows at a time,
    through the fused inference kernels: on the cpp backend one call into
    C++ per batch (the network's layers chained there, as ``Predictor`` does,
    but on the model's own weights: nothing is copied or packed ahead)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"predict: batch_size must be a positive int, got {batch_size!r}")
    if backends.current.NAME == "cpp" and isinstance(model, Sequential):
        out = _predict_in_one_call(model, X, batch_size)
        if out is not None:
            return out
    layers, ops = compile_model(model, "predict")
    if ops is not None:  # norms or dropout: the eval forward of a Predictor snapshot
        from .predictor import Predictor

        pred = Predictor(model)
        X = _as_batch(X, pred._snapshot.dtype, pred.in_features, "predict")
        return np.concatenate([pred(X[s:s + batch_size]) for s in range(0, len(X), batch_size)]) if len(X) \
            else pred(X)
    dtype = layers[0].linear.weight.data.dtype
    X = _as_batch(X, dtype, layers[0].linear.in_features, "predict")
    if backends.current.NAME == "cpp":
        plan = backends.core_module().InferencePlan("predict", str(dtype), _layer_tuples(layers))
        params = [None if p is None else np.ascontiguousarray(p.data)
                  for s in layers for p in (s.linear.weight, s.linear.bias)]
        if len(X) <= batch_size:
            return plan.forward(X, params)
        out = np.empty((len(X), layers[-1].linear.out_features), dtype)
        for start in range(0, len(X), batch_size):
            out[start:start + batch_size] = plan.forward(X[start:start + batch_size], params)
        return out
    was_training = model.training
    model.eval()
    try:
        out = np.empty((len(X), layers[-1].linear.out_features), dtype)
        for start in range(0, len(X), batch_size):
            out[start:start + batch_size] = _forward_layers(layers, X[start:start + batch_size])
        return out
    finally:
        model.train(was_training)
