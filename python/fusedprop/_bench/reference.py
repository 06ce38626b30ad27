"""A hand-written NumPy MLP: the float64 oracle of the training benchmarks and,
run in float32, the "NumPy" baseline they are compared with.

PyTorch's semantics throughout: ``z = a @ W.T + b``, ReLU between layers,
mean cross-entropy on logits, ``torch.optim.SGD`` (momentum, dampening 0) and
``torch.optim.Adam`` update rules.
"""

from __future__ import annotations

import math

import numpy as np


def init_mlp(sizes, rng, dtype=np.float32):
    """[(W, b), ...] for layer sizes like (64, 128, 128, 10), PyTorch's default init."""
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / math.sqrt(n_in)
        params.append((rng.uniform(-bound, bound, (n_out, n_in)).astype(dtype),
                       rng.uniform(-bound, bound, n_out).astype(dtype)))
    return params


def forward(params, x):
    """Logits and the activations each layer saw: ([x, a1, ...], logits)."""
    inputs = [x]
    a = x
    for i, (w, b) in enumerate(params):
        z = a @ w.T
        z += b
        if i + 1 < len(params):
            np.maximum(z, 0, out=z)
            inputs.append(z)
        a = z
    return inputs, a


def cross_entropy(logits, y):
    """Mean cross-entropy and its gradient with respect to the logits."""
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(s[:, 0]) - shifted[np.arange(n), y]))
    grad = e / s
    grad[np.arange(n), y] -= 1
    grad /= n
    return loss, grad


def backward(params, inputs, grad_logits):
    """[(dW, db), ...]; no dX for the first layer (nobody needs it)."""
    grads = [None] * len(params)
    dz = grad_logits
    for i in range(len(params) - 1, -1, -1):
        w, _ = params[i]
        a = inputs[i]
        grads[i] = (dz.T @ a, dz.sum(axis=0))
        if i > 0:
            da = dz @ w
            da[a <= 0] = 0  # ReLU: its output was the next layer's input
            dz = da
    return grads


class SGD:
    """torch.optim.SGD with momentum (dampening 0, no Nesterov, no weight decay)."""

    def __init__(self, arrays, lr, momentum=0.0):
        self.arrays, self.lr, self.momentum = arrays, lr, momentum
        self.buf = [None] * len(arrays)

    def step(self, grads):
        for i, (p, g) in enumerate(zip(self.arrays, grads)):
            if self.momentum:
                if self.buf[i] is None:
                    self.buf[i] = g.copy()
                else:
                    self.buf[i] *= self.momentum
                    self.buf[i] += g
                g = self.buf[i]
            p -= self.lr * g


class Adam:
    """torch.optim.Adam (no weight decay, no amsgrad)."""

    def __init__(self, arrays, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.arrays, self.lr, self.betas, self.eps = arrays, lr, betas, eps
        self.m = [np.zeros_like(p) for p in arrays]
        self.v = [np.zeros_like(p) for p in arrays]
        self.t = 0

    def step(self, grads):
        b1, b2 = self.betas
        self.t += 1
        c1 = 1 - b1 ** self.t
        c2 = 1 - b2 ** self.t
        for p, g, m, v in zip(self.arrays, grads, self.m, self.v):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            denom = np.sqrt(v) / math.sqrt(c2)
            denom += self.eps
            p -= (self.lr / c1) * (m / denom)


def make_optimizer(kind, arrays, lr):
    if kind == "sgd":
        return SGD(arrays, lr, momentum=0.9)
    if kind == "adam":
        return Adam(arrays, lr)
    raise ValueError(kind)


class MLP:
    """Parameters, optimizer and one training step, all in NumPy."""

    def __init__(self, params, optimizer_kind, lr):
        self.params = [(w.copy(), b.copy()) for w, b in params]
        flat = [a for pair in self.params for a in pair]
        self.opt = make_optimizer(optimizer_kind, flat, lr)

    def step(self, x, y):
        inputs, logits = forward(self.params, x)
        loss, grad = cross_entropy(logits, y)
        grads = backward(self.params, inputs, grad)
        self.opt.step([g for pair in grads for g in pair])
        return loss

    def predict(self, x):
        return forward(self.params, x)[1]

    def flat(self):
        return [a for pair in self.params for a in pair]
