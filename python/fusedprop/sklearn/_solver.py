"""scikit-learn's MLP update rules, run by fusedprop's optimizers and TrainStep.

scikit-learn's gradient for a batch of n rows is ``(P - Y) / n`` at the
output (before the chain rule) plus ``alpha * W / n`` on each weight matrix
(never on the intercepts). fusedprop's losses with ``reduction="mean"`` give
``(P - Y) / n`` for CrossEntropyLoss, ``(P - Y) / (n k)`` for
BCEWithLogitsLoss over k outputs and ``2 (P - Y) / (n k)`` for MSELoss, so
scikit-learn's gradient is ``c`` times fusedprop's, with ``c`` = 1, k and
k / 2. Rather than scale the loss, every update below absorbs ``c``
exactly:

* L2: ``weight_decay = alpha / (c n)`` on the weights' parameter group (0 on
  the biases' group), set before every step because n changes on the last
  batch; the optimizer then sees ``grad / c`` in full.
* SGD: scikit-learn's ``v = mu v - lr g; W += v`` (Nesterov: ``W += mu v -
  lr g``) is PyTorch's ``b = mu b + g; W -= lr b`` (Nesterov: ``W -= lr (g +
  mu b)``) with ``v = -lr b``, so fusedprop's SGD runs with ``lr * c``. When
  scikit-learn's schedule changes the learning rate (invscaling, adaptive)
  its velocity keeps the old one while PyTorch's buffer would take the new
  one: the momentum buffers are rescaled by ``old / new`` at that moment,
  which keeps the two identical.
* Adam: scikit-learn computes ``lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``,
  PyTorch ``lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``; they
  agree when PyTorch's eps is ``eps / sqrt(1 - b2^t)``, and the scale c of
  the gradient scales m and sqrt(v) alike, so eps is also divided by c. It is
  set before every step.
"""

from __future__ import annotations

import math

from ..optim.adam import Adam
from ..optim.sgd import SGD


class Solver:
    """The optimizer of one estimator: scikit-learn's SGDOptimizer or
    AdamOptimizer (its learning-rate schedule and stopping rule included) on a
    fusedprop optimizer over ``model``'s parameters. Picklable."""

    def __init__(self, est, model, grad_scale: float) -> None:
        linears = list(model)
        weights = [lin.weight for lin in linears]
        biases = [lin.bias for lin in linears]
        groups = [{"params": weights}, {"params": biases, "weight_decay": 0.0}]
        self.kind = est.solver
        self.grad_scale = float(grad_scale)
        self.alpha = float(est.alpha)
        self.learning_rate_init = float(est.learning_rate_init)
        self.learning_rate = self.learning_rate_init  # scikit-learn's current rate
        self.lr_schedule = est.learning_rate
        self.power_t = float(est.power_t)
        if self.kind == "sgd":
            momentum = float(est.momentum)
            # fusedprop's SGD (as PyTorch's) refuses nesterov without momentum; then both are plain SGD
            self.optimizer = SGD(groups, lr=self.learning_rate * self.grad_scale, momentum=momentum,
                                 nesterov=bool(est.nesterovs_momentum) and momentum > 0)
        else:
            self.beta_2 = float(est.beta_2)
            self.epsilon = float(est.epsilon)
            self.t = 0
            self.optimizer = Adam(groups, lr=self.learning_rate, betas=(float(est.beta_1), self.beta_2),
                                  eps=self.epsilon)

    def before_step(self, n_rows: int) -> None:
        """Set the hyperparameters of the next step on a batch of ``n_rows``."""
        weights_group = self.optimizer.param_groups[0]
        weights_group["weight_decay"] = self.alpha / (self.grad_scale * n_rows)
        if self.kind == "adam":
            self.t += 1
            eps = self.epsilon / (self.grad_scale * math.sqrt(1.0 - self.beta_2 ** self.t))
            for g in self.optimizer.param_groups:
                g["eps"] = eps

    def _set_learning_rate(self, new: float) -> None:
        old, self.learning_rate = self.learning_rate, float(new)
        if self.kind != "sgd" or old == self.learning_rate:
            return
        for g in self.optimizer.param_groups:
            g["lr"] = self.learning_rate * self.grad_scale
        ratio = old / self.learning_rate
        for state in self.optimizer.state.values():
            buf = state.get("momentum_buffer")
            if buf is not None:
                buf *= ratio

    def iteration_ends(self, time_step: int) -> None:
        """scikit-learn's end-of-epoch rule: invscaling decays the SGD rate."""
        if self.kind == "sgd" and self.lr_schedule == "invscaling":
            self._set_learning_rate(self.learning_rate_init / (time_step + 1) ** self.power_t)

    def trigger_stopping(self, msg: str, verbose) -> bool:
        """scikit-learn's rule when the loss stops improving: stop, or (SGD,
        adaptive) divide the learning rate by 5 until it is at most 1e-6."""
        if self.kind != "sgd" or self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self._set_learning_rate(self.learning_rate / 5.0)
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False
