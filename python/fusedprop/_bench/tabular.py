"""The tabular recipe of the train_step group (issue #23): each hidden layer
Linear (no bias: BatchNorm's beta is the shift) -> BatchNorm1d -> ReLU ->
Dropout(p), a last Linear to one logit, BCEWithLogitsLoss, AdamW and a
cosine schedule stepped every call; one timed call is one training step.

Masks differ between frameworks (each draws its own), so the check replays
the first step in float64 NumPy with the masks that contender used:
fusedprop's from its Philox key, PyTorch's read off the Dropout outputs by a
hook on the checked call only, JAX's drawn again from the same PRNG key.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

import fusedprop as fp

from .common import Case, Contender, jax_contender, missing_api, rel_err, torch_contender

LR, WD, BETAS, EPS, BN_EPS, MOMENTUM, T_MAX = 1e-3, 1e-2, (0.9, 0.999), 1e-8, 1e-5, 0.1, 1000
SEED = 23


def tabular_flops(batch, sizes):
    """GEMM flops of the step (the norms and dropout are O(b * width), not counted)."""
    layers = list(zip(sizes[:-1], sizes[1:]))
    return float(sum((4.0 if i == 0 else 6.0) * batch * a * b for i, (a, b) in enumerate(layers)))


def _init(sizes, rng, dtype):
    """[(W, gamma, beta)] per hidden layer and (W, b) for the last, PyTorch's default init."""
    hidden = []
    for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
        bound = 1.0 / math.sqrt(n_in)
        hidden.append((rng.uniform(-bound, bound, (n_out, n_in)).astype(dtype), np.ones(n_out, dtype),
                       np.zeros(n_out, dtype)))
    bound = 1.0 / math.sqrt(sizes[-2])
    last = (rng.uniform(-bound, bound, (sizes[-1], sizes[-2])).astype(dtype),
            rng.uniform(-bound, bound, sizes[-1]).astype(dtype))
    return hidden, last


def _flat(hidden, last):
    return [a for layer in hidden for a in layer] + list(last)


def reference_step(hidden, last, x, y, masks, p):
    """(loss, parameters after one AdamW step) in float64 with the given keep masks."""
    f = np.float64
    v, cache = x.astype(f), []
    for (w, g, b), keep in zip(hidden, masks):
        z = v @ w.astype(f).T
        mu, var = z.mean(0), z.var(0)
        inv = 1 / np.sqrt(var + BN_EPS)
        xh = (z - mu) * inv
        h = np.maximum(xh * g + b, 0)
        out = np.where(keep, h / (1 - p), 0)
        cache.append((v, xh, inv, h))
        v = out
    w2, b2 = (a.astype(f) for a in last)
    logits = v @ w2.T + b2
    t = y.astype(f)
    loss = float(np.mean(np.maximum(logits, 0) - logits * t + np.log1p(np.exp(-np.abs(logits)))))
    d = (1 / (1 + np.exp(-logits)) - t) / logits.size
    grads_last = [d.T @ v, d.sum(0)]
    dv = d @ w2
    grads = []
    for (w, g, b), keep, (vin, xh, inv, h) in reversed(list(zip(hidden, masks, cache))):
        dh = np.where(keep, dv / (1 - p), 0) * (h > 0)
        dg, db = (dh * xh).sum(0), dh.sum(0)
        dxh = dh * g
        n = len(xh)
        dz = inv / n * (n * dxh - dxh.sum(0) - xh * (dxh * xh).sum(0))
        grads = [dz.T @ vin, dg, db] + grads
        dv = dz @ w.astype(f)
    flat = [a.astype(f) for a in _flat(hidden, last)]
    new = []
    for p_, g_ in zip(flat, grads + grads_last):
        # AdamW's first step: m_hat = g, v_hat = g^2
        new.append(p_ * (1 - LR * WD) - LR * g_ / (np.abs(g_) + EPS))
    return loss, new


def tabular_case(batch, sizes, p, dtype="float32"):
    rng = np.random.default_rng([23, zlib.crc32(repr((batch, sizes, p)).encode())])
    x = rng.standard_normal((batch, sizes[0])).astype(dtype)
    y = (rng.random((batch, sizes[-1])) > 0.5).astype(dtype)
    hidden0, last0 = _init(sizes, rng, dtype)
    flat0 = _flat(hidden0, last0)
    width = sizes[1:-1]

    def check(observed):
        loss, arrays, masks = observed
        if len(arrays) != len(flat0) or any(np.shape(a) != b.shape for a, b in zip(arrays, flat0)):
            return float("inf"), "parameters of the wrong number or shape"
        ref_loss, ref_new = reference_step(hidden0, last0, x, y, masks, p)
        update = np.concatenate([(np.asarray(a, np.float64) - b).ravel() for a, b in zip(arrays, flat0)])
        ref_update = np.concatenate([(a - b).ravel() for a, b in zip(ref_new, flat0)])
        # AdamW's first step is lr * sign(g) where |g| >> eps: an element whose
        # float32 gradient is within rounding of 0 may flip, a right answer; 2e-2.
        return (max(rel_err(loss, ref_loss) / 1e-4, rel_err(update, ref_update) / 2e-2),
                f"loss {loss:.4f}")

    def fp_model():
        from fusedprop import nn, optim
        fp.manual_seed(SEED)  # Dropout modules get streams 0, 1, ... and step 0 on the checked call
        mods = []
        for i, n_out in enumerate(width):
            mods += [nn.Linear(sizes[i], n_out, bias=False), nn.BatchNorm1d(n_out, eps=BN_EPS, momentum=MOMENTUM),
                     nn.ReLU(), nn.Dropout(p)]
        mods.append(nn.Linear(sizes[-2], sizes[-1]))
        model = nn.Sequential(*mods)
        params = list(model.parameters())
        for q, a in zip(params, flat0):
            q.data[...] = a
        opt = optim.AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)
        sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=T_MAX)
        return model, params, opt, sched, nn.BCEWithLogitsLoss()

    def fp_masks():
        from fusedprop.backends import _philox
        return [_philox.keep_mask(batch * n, p, SEED, i, 0).reshape(batch, n) for i, n in enumerate(width)]

    def fp_eager_factory():
        model, params, opt, sched, crit = fp_model()

        def run():
            opt.zero_grad()
            loss = crit(model(x), y)
            loss.backward()
            opt.step()
            sched.step()
            return loss.item()
        return run, (lambda loss: (loss, [q.data for q in params], fp_masks()))

    def fp_trainstep_factory():
        model, params, opt, sched, crit = fp_model()
        step = fp.TrainStep(model, crit, opt)

        def run():
            loss = step(x, y)
            sched.step()
            return loss
        return run, (lambda loss: (loss, [q.data for q in params], fp_masks()))

    def torch_factory():
        import torch
        # Seeded like the other contenders: the check reads torch's masks off its outputs, and an unlucky
        # mask can push the sign flips of near-zero float32 gradients (see check) past the tolerance.
        torch.manual_seed(SEED)
        mods = []
        for i, n_out in enumerate(width):
            mods += [torch.nn.Linear(sizes[i], n_out, bias=False),
                     torch.nn.BatchNorm1d(n_out, eps=BN_EPS, momentum=MOMENTUM), torch.nn.ReLU(), torch.nn.Dropout(p)]
        mods.append(torch.nn.Linear(sizes[-2], sizes[-1]))
        model = torch.nn.Sequential(*mods)
        params = list(model.parameters())
        with torch.no_grad():
            for q, a in zip(params, flat0):
                q.copy_(torch.from_numpy(a))
        opt = torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=T_MAX)
        crit = torch.nn.BCEWithLogitsLoss()
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        masks = []
        hooks = [m.register_forward_hook(lambda mod, inp, out: masks.append((out != 0).numpy().copy()))
                 for m in model if isinstance(m, torch.nn.Dropout)]

        def run():
            opt.zero_grad()
            loss = crit(model(tx), ty)
            loss.backward()
            opt.step()
            sched.step()
            for h in hooks:  # the checked first call only: timed calls run without hooks
                h.remove()
            hooks.clear()
            return loss.item()
        # Where ReLU gave 0 the mask cannot be read off, and does not matter: dropout's output and gradient are 0.
        return run, (lambda loss: (loss, [q.detach().numpy() for q in params], masks))

    def jax_factory():
        import jax
        import jax.numpy as jnp
        import optax

        def loss_of(ps, v, labels, keys):
            *hid, (w2, b2) = ps
            stats = []
            for (w, g, b), k in zip(hid, keys):
                z = v @ w.T
                mu, var = z.mean(0), z.var(0)
                stats.append((mu, var * (len(z) / (len(z) - 1))))
                h = jnp.maximum((z - mu) / jnp.sqrt(var + BN_EPS) * g + b, 0)
                v = jnp.where(jax.random.bernoulli(k, 1 - p, h.shape), h / (1 - p), 0)
            logits = v @ w2.T + b2
            return optax.sigmoid_binary_cross_entropy(logits, labels).mean(), stats

        sched = optax.cosine_decay_schedule(LR, T_MAX)
        tx = optax.adamw(sched, b1=BETAS[0], b2=BETAS[1], eps=EPS, weight_decay=WD)

        @jax.jit
        def step(ps, state, running, key, v, labels):
            key, sub = jax.random.split(key)
            keys = jax.random.split(sub, len(width))
            (loss, stats), grads = jax.value_and_grad(loss_of, has_aux=True)(ps, v, labels, keys)
            updates, state = tx.update(grads, state, ps)
            running = [((1 - MOMENTUM) * rm + MOMENTUM * m, (1 - MOMENTUM) * rv + MOMENTUM * s)
                       for (rm, rv), (m, s) in zip(running, stats)]
            return optax.apply_updates(ps, updates), state, running, key, loss

        key0 = jax.random.PRNGKey(SEED)
        box = {"ps": [tuple(jnp.asarray(a) for a in layer) for layer in hidden0] + [tuple(map(jnp.asarray, last0))],
               "running": [(jnp.zeros(n), jnp.ones(n)) for n in width], "key": key0}
        box["state"] = tx.init(box["ps"])
        jx, jy = jnp.asarray(x), jnp.asarray(y)

        def run():
            box["ps"], box["state"], box["running"], box["key"], loss = step(
                box["ps"], box["state"], box["running"], box["key"], jx, jy)
            return float(loss)

        def masks():
            _, sub = jax.random.split(key0)
            return [np.asarray(jax.random.bernoulli(k, 1 - p, (batch, n)))
                    for k, n in zip(jax.random.split(sub, len(width)), width)]
        return run, (lambda loss: (loss, [np.asarray(a) for layer in box["ps"] for a in layer], masks()))

    reason = missing_api("nn.Sequential", "nn.Linear", "nn.BatchNorm1d", "nn.Dropout", "nn.BCEWithLogitsLoss",
                         "optim.AdamW", "optim.lr_scheduler", "TrainStep")
    contenders = [
        Contender("fusedprop eager", "fusedprop", None if reason else fp_eager_factory, reason),
        Contender("fusedprop TrainStep", "fusedprop", None if reason else fp_trainstep_factory, reason),
        torch_contender("torch eager", torch_factory),
        jax_contender("jax jit", jax_factory, extra=("optax",)),
    ]
    arch = "-".join(map(str, sizes))
    return Case("train_step", f"b{batch} {arch} BN+ReLU+Dropout({p}) AdamW cosine", dtype,
                tabular_flops(batch, sizes), contenders, check, 1.0, stateful=True,
                params={"batch": batch, "sizes": list(sizes), "optimizer": "adamw", "dropout": p})
