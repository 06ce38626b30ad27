"""Cases of the training groups: train_step and digits (end to end)."""

from __future__ import annotations

import warnings
import zlib

import numpy as np

import fusedprop as fp

from . import reference
from .common import Case, Contender, jax_contender, missing_api, optional, rel_err, torch_contender

TRAIN_LR = {"sgd": 0.01, "adam": 1e-3}
DIGITS_BATCH = 64
DIGITS_SIZES = (64, 256, 256, 10)
DIGITS_LR = 1e-3


def _layers(sizes):
    return list(zip(sizes[:-1], sizes[1:]))


def train_flops(batch, sizes):
    """Forward 2·b·in·out per layer; backward 4·b·in·out (dW and dX), 2 for the first layer (no dX)."""
    return float(sum((4.0 if i == 0 else 6.0) * batch * n_in * n_out for i, (n_in, n_out) in enumerate(_layers(sizes))))


# ------------------------------------------------------- framework model makers

def fp_model(sizes, params0, kind, lr):
    """fusedprop's nn.Sequential (Linear, ReLU, ...), weights set to params0, its optimizer and criterion."""
    from fusedprop import nn, optim
    modules = []
    for i, (n_in, n_out) in enumerate(_layers(sizes)):
        modules.append(nn.Linear(n_in, n_out))
        if i + 2 < len(sizes):
            modules.append(nn.ReLU())
    model = nn.Sequential(*modules)
    params = list(model.parameters())
    flat = [a for pair in params0 for a in pair]
    if len(params) != len(flat):
        raise AssertionError(f"model has {len(params)} parameters, expected {len(flat)}")
    for p, a in zip(params, flat):
        p.data[...] = a
    opt = optim.SGD(params, lr=lr, momentum=0.9) if kind == "sgd" else optim.Adam(params, lr=lr)
    return model, params, opt, nn.CrossEntropyLoss()


def torch_model(sizes, params0, kind, lr):
    import torch
    modules = []
    for i, (n_in, n_out) in enumerate(_layers(sizes)):
        modules.append(torch.nn.Linear(n_in, n_out))
        if i + 2 < len(sizes):
            modules.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*modules)
    params = list(model.parameters())
    with torch.no_grad():
        for p, a in zip(params, [a for pair in params0 for a in pair]):
            p.copy_(torch.from_numpy(a))
    opt = (torch.optim.SGD(params, lr=lr, momentum=0.9) if kind == "sgd" else torch.optim.Adam(params, lr=lr))
    return model, params, opt, torch.nn.CrossEntropyLoss()


# ------------------------------------------------------------------ train step

def train_step_case(batch, sizes, kind, dtype="float32"):
    rng = np.random.default_rng([7, zlib.crc32(repr((batch, sizes, kind)).encode())])
    x = rng.standard_normal((batch, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], batch)
    params0 = reference.init_mlp(sizes, rng, dtype)
    flat0 = [a for pair in params0 for a in pair]
    lr = TRAIN_LR[kind]
    ref_mlp = reference.MLP([(w.astype(np.float64), b.astype(np.float64)) for w, b in params0], kind, lr)
    ref_loss = ref_mlp.step(x.astype(np.float64), y)
    ref_delta = [p - a for p, a in zip(ref_mlp.flat(), flat0)]

    ref_update = np.concatenate([d.ravel() for d in ref_delta])
    loss_tol, update_tol = (1e-4, 1e-2) if np.dtype(dtype) == np.float32 else (1e-10, 1e-9)

    def check(observed):
        # The loss, and every parameter's update as one vector: per array, a
        # near-zero one (the last bias's gradient sums p - onehot over the
        # batch, which cancels) would compare float32 rounding with nothing.
        loss, arrays = observed
        if len(arrays) != len(flat0) or any(np.shape(p) != a.shape for p, a in zip(arrays, flat0)):
            return float("inf"), "parameters of the wrong number or shape"
        update = np.concatenate([(np.asarray(p, dtype=np.float64) - a).ravel() for p, a in zip(arrays, flat0)])
        # One ReLU whose input is within float32 rounding of 0 may switch
        # sides: that moves the float32 update by ~1e-3 of its norm (one
        # sample's share), a right answer. Hence 1e-2 for the update, 1e-4 for
        # the loss, as one error scaled to a tolerance of 1.
        return (max(rel_err(loss, ref_loss) / loss_tol, rel_err(update, ref_update) / update_tol),
                f"loss {float(loss):.4f}")

    def np_factory():
        mlp = reference.MLP(params0, kind, lr)
        return (lambda: mlp.step(x, y)), (lambda loss: (loss, mlp.flat()))

    def fp_eager_factory():
        model, params, opt, criterion = fp_model(sizes, params0, kind, lr)

        def run():
            opt.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            opt.step()
            return loss.item()
        return run, (lambda loss: (loss, [p.data for p in params]))

    def fp_trainstep_factory():
        model, params, opt, criterion = fp_model(sizes, params0, kind, lr)
        step = fp.TrainStep(model, criterion, opt)
        return (lambda: step(x, y)), (lambda loss: (loss, [p.data for p in params]))

    def torch_factory():
        import torch
        model, params, opt, criterion = torch_model(sizes, params0, kind, lr)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def run():
            opt.zero_grad()
            loss = criterion(model(tx), ty)
            loss.backward()
            opt.step()
            return loss.item()
        return run, (lambda loss: (loss, [p.detach().numpy() for p in params]))

    def torch_compile_factory():
        import torch
        model, params, opt, criterion = torch_model(sizes, params0, kind, lr)
        with warnings.catch_warnings():  # see first_then_step
            warnings.simplefilter("ignore", DeprecationWarning)
            compiled = torch.compile(model)  # default mode; the first (checked) call compiles
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def step():
            opt.zero_grad()
            loss = criterion(compiled(tx), ty)
            loss.backward()
            opt.step()
            return loss.item()

        def first_then_step():
            # compiling, torch itself trips its own DeprecationWarnings (which
            # the test suite turns into errors): quiet for that call only
            box["run"] = step
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                return step()
        box = {"run": first_then_step}
        return (lambda: box["run"]()), (lambda loss: (loss, [p.detach().numpy() for p in params]))

    def jax_factory():
        import jax
        import jax.numpy as jnp
        import optax

        def loss_of(ps, v, labels):
            for i, (w, b) in enumerate(ps):
                v = v @ w.T + b
                if i + 1 < len(ps):
                    v = jnp.maximum(v, 0)
            return optax.softmax_cross_entropy_with_integer_labels(v, labels).mean()

        # optax's sgd with momentum and adam make PyTorch's updates (dampening
        # 0, no Nesterov; eps added to sqrt(v_hat))
        tx = optax.sgd(lr, momentum=0.9) if kind == "sgd" else optax.adam(lr)

        @jax.jit
        def step(ps, state, v, labels):
            loss, grads = jax.value_and_grad(loss_of)(ps, v, labels)
            updates, state = tx.update(grads, state, ps)
            return optax.apply_updates(ps, updates), state, loss
        box = {"ps": [(jnp.asarray(w), jnp.asarray(b)) for w, b in params0]}
        box["state"] = tx.init(box["ps"])
        jx, jy = jnp.asarray(x), jnp.asarray(y)

        def run():
            box["ps"], box["state"], loss = step(box["ps"], box["state"], jx, jy)
            return float(loss)
        return run, (lambda loss: (loss, [np.asarray(a) for pair in box["ps"] for a in pair]))

    nn_reason = missing_api("nn.Sequential", "nn.Linear", "nn.ReLU", "nn.CrossEntropyLoss", "optim.SGD", "optim.Adam")
    step_reason = nn_reason or missing_api("TrainStep")
    contenders = [
        Contender("fusedprop eager", "fusedprop", None if nn_reason else fp_eager_factory, nn_reason),
        Contender("fusedprop TrainStep", "fusedprop", None if step_reason else fp_trainstep_factory, step_reason),
        Contender("numpy (hand-written)", "numpy", np_factory),
        torch_contender("torch eager", torch_factory),
        torch_contender("torch.compile", torch_compile_factory),
        jax_contender("jax jit", jax_factory, extra=("optax",)),
    ]
    arch = "-".join(map(str, sizes))
    name = {"sgd": "SGD momentum", "adam": "Adam"}[kind]
    return Case("train_step", f"b{batch} {arch} {name}", dtype, train_flops(batch, sizes), contenders, check, 1.0,
                stateful=True, params={"batch": batch, "sizes": list(sizes), "optimizer": kind})


# ---------------------------------------------------------------------- digits

def load_digits_split(subset=None):
    """scikit-learn's bundled digits (no download), scaled to [0, 1], a fixed 75/25 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    if subset:
        x, y = x[:subset], y[:subset]
    return train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)


def _epochs(n, epochs, seed):
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, DIGITS_BATCH):
            yield order[start:start + DIGITS_BATCH]


def _accuracy(scores, y):
    scores = np.asarray(scores)
    pred = scores.argmax(axis=1) if scores.ndim == 2 else scores
    return float(np.mean(pred == y))


def digits_case(epochs, subset=None):
    _, sk_reason = optional("sklearn")
    if sk_reason:
        return Case("digits", f"{'-'.join(map(str, DIGITS_SIZES))} Adam {epochs} ep", "float32", None,
                    [Contender(n, f, unavailable=f"scikit-learn {sk_reason} (it holds the data set)")
                     for n, f in (("fusedprop fit", "fusedprop"), ("numpy (hand-written)", "numpy"),
                                  ("torch", "torch"), ("sklearn MLPClassifier", "sklearn"))],
                    lambda r: (0.0, ""), 0.0)
    xtr, xte, ytr, yte = load_digits_split(subset)
    threshold = 0.9 if epochs >= 10 else 0.8 if subset is None else 0.0
    flops = epochs * len(xtr) * train_flops(1, DIGITS_SIZES)

    def params0():
        return reference.init_mlp(DIGITS_SIZES, np.random.default_rng(0))

    def check(acc):
        acc = float(acc)
        return (0.0 if acc >= threshold else threshold - acc), f"test acc {acc:.3f}"

    def np_factory():
        def run():
            mlp = reference.MLP(params0(), "adam", DIGITS_LR)
            for idx in _epochs(len(xtr), epochs, 1):
                mlp.step(xtr[idx], ytr[idx])
            return _accuracy(mlp.predict(xte), yte)
        return run, None

    def fp_fit_factory():
        def run():
            model, _, opt, criterion = fp_model(DIGITS_SIZES, params0(), "adam", DIGITS_LR)
            fp.manual_seed(1)
            fp.fit(model, xtr, ytr, criterion, opt, epochs=epochs, batch_size=DIGITS_BATCH, shuffle=True,
                   progress=False)
            return _accuracy(fp.predict(model, xte), yte)
        return run, None

    def fp_eager_factory():
        def run():
            model, _, opt, criterion = fp_model(DIGITS_SIZES, params0(), "adam", DIGITS_LR)
            for idx in _epochs(len(xtr), epochs, 1):
                opt.zero_grad()
                loss = criterion(model(xtr[idx]), ytr[idx])
                loss.backward()
                opt.step()
            model.eval()
            with fp.no_grad():
                return _accuracy(model(xte).numpy(), yte)
        return run, None

    def torch_factory():
        import torch

        def run():
            model, _, opt, criterion = torch_model(DIGITS_SIZES, params0(), "adam", DIGITS_LR)
            txtr, tytr = torch.from_numpy(xtr), torch.from_numpy(ytr)
            for idx in _epochs(len(xtr), epochs, 1):
                ti = torch.from_numpy(idx)
                opt.zero_grad()
                loss = criterion(model(txtr[ti]), tytr[ti])
                loss.backward()
                opt.step()
            with torch.no_grad():
                return _accuracy(model(torch.from_numpy(xte)).numpy(), yte)
        return run, None

    def sklearn_factory():
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        def run():
            clf = MLPClassifier(hidden_layer_sizes=(256, 256), solver="adam", batch_size=DIGITS_BATCH,
                                max_iter=epochs, learning_rate_init=DIGITS_LR, alpha=0, tol=0,
                                n_iter_no_change=epochs, random_state=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                clf.fit(xtr, ytr)
            return float(clf.score(xte, yte))
        return run, None

    nn_reason = missing_api("nn.Sequential", "nn.Linear", "nn.ReLU", "nn.CrossEntropyLoss", "optim.Adam")
    fit_reason = nn_reason or missing_api("fit", "predict")
    contenders = [
        Contender("fusedprop fit", "fusedprop", None if fit_reason else fp_fit_factory, fit_reason),
        Contender("fusedprop eager", "fusedprop", None if nn_reason else fp_eager_factory, nn_reason),
        Contender("numpy (hand-written)", "numpy", np_factory),
        torch_contender("torch", torch_factory),
        Contender("sklearn MLPClassifier", "sklearn", sklearn_factory),
    ]
    return Case("digits", f"{'-'.join(map(str, DIGITS_SIZES))} Adam {epochs} ep", "float32", flops, contenders,
                check, 0.0, params={"epochs": epochs, "batch": DIGITS_BATCH, "train": len(xtr), "test": len(xte)})
