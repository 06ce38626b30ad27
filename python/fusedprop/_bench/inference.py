"""Cases of the inference group: a whole MLP's forward pass, batch 1 to 1024.

Contenders, each on the same weights: ``fp.Predictor`` (frozen, pre-packed,
one C++ call), fusedprop's ``model(x)`` under ``no_grad``, NumPy, PyTorch
eager under ``no_grad``, ONNX Runtime on ``fp.onnx.export``'s file (all graph
optimisations, ``intra_op_num_threads`` = the run's threads) and JAX ``jit``.
JAX is started single-threaded (XLA's flags are read once per process, at
import): it is timed at 1 thread only, and says so in the 2-thread table.
"""

from __future__ import annotations

import os
import tempfile
import zlib

import numpy as np

import fusedprop as fp

from . import reference
from .common import Case, Contender, jax_contender, missing_api, optional, rel_err, tol_for, torch_contender



def inference_flops(batch, sizes) -> float:
    return float(sum(2.0 * batch * i * o for i, o in zip(sizes[:-1], sizes[1:])))


def _fp_model(sizes, params):
    from fusedprop import nn
    modules = []
    for i, (w, b) in enumerate(params):
        lin = nn.Linear(w.shape[1], w.shape[0], dtype=w.dtype)
        lin.weight.data[...] = w
        lin.bias.data[...] = b
        modules.append(lin)
        if i + 1 < len(params):
            modules.append(nn.ReLU())
    return nn.Sequential(*modules).eval()


def _ort_contender(sizes, params, x) -> Contender:
    ort, reason = optional("onnxruntime")
    if reason is None:
        _, reason = optional("onnx")
    if reason is None:
        reason = missing_api("onnx.export")

    def factory():
        folder = tempfile.mkdtemp(prefix="fusedprop-bench-")
        path = os.path.join(folder, "mlp.onnx")
        fp.onnx.export(_fp_model(sizes, params), path)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = fp.get_num_threads()  # the run's thread count (bench.all_threads)
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        feed = {name: x}
        return (lambda: session.run(None, feed)[0]), (lambda y: y)
    return Contender("onnxruntime", "onnxruntime", None if reason else factory, reason)


def _jax_factory(params, x):
    def factory():
        import jax
        import jax.numpy as jnp
        jparams = [(jnp.asarray(w), jnp.asarray(b)) for w, b in params]

        @jax.jit
        def forward(ps, v):
            for i, (w, b) in enumerate(ps):
                v = v @ w.T + b
                if i + 1 < len(ps):
                    v = jnp.maximum(v, 0)
            return v
        jx = jnp.asarray(x)
        return (lambda: forward(jparams, jx).block_until_ready()), (lambda y: np.asarray(y))
    return factory


def inference_case(batch, sizes, dtype="float32") -> Case:
    rng = np.random.default_rng([11, zlib.crc32(repr((batch, sizes)).encode())])
    params = reference.init_mlp(sizes, rng, dtype)
    x = rng.standard_normal((batch, sizes[0])).astype(dtype)
    ref = x.astype(np.float64)
    for i, (w, b) in enumerate(params):
        ref = ref @ w.astype(np.float64).T + b
        if i + 1 < len(params):
            ref = np.maximum(ref, 0)

    def check(observed):
        return rel_err(observed, ref), None

    def predictor_factory():
        pred = fp.Predictor(_fp_model(sizes, params))
        return (lambda: pred(x)), (lambda y: y)

    def model_factory():
        model = _fp_model(sizes, params)

        def run():
            with fp.no_grad():
                return model(x)
        return run, (lambda y: y.numpy())

    def numpy_factory():
        def run():
            v = x
            for i, (w, b) in enumerate(params):
                v = v @ w.T + b
                if i + 1 < len(params):
                    v = np.maximum(v, 0)
            return v
        return run, (lambda y: y)

    def torch_factory():
        import torch
        layers = []
        for i, (w, b) in enumerate(params):
            lin = torch.nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(w))
                lin.bias.copy_(torch.from_numpy(b))
            layers.append(lin)
            if i + 1 < len(params):
                layers.append(torch.nn.ReLU())
        model = torch.nn.Sequential(*layers).eval()
        tx = torch.from_numpy(x)

        def run():
            with torch.no_grad():
                return model(tx)
        return run, (lambda y: y.numpy())

    reason = missing_api("Predictor")
    contenders = [
        Contender("fusedprop Predictor", "fusedprop", None if reason else predictor_factory, reason, backend="cpp"),
        Contender("fusedprop model(x)", "fusedprop", model_factory, backend="cpp"),
        Contender("numpy", "numpy", numpy_factory),
        torch_contender("torch eager", torch_factory),
        _ort_contender(sizes, params, x),
        jax_contender("jax jit", _jax_factory(params, x)),
    ]
    label = f"b={batch} {'-'.join(map(str, sizes))}"
    return Case("inference", label, dtype, inference_flops(batch, sizes), contenders, check, tol_for(dtype),
                params={"batch": batch, "sizes": sizes,
                        # one row reads every weight once: the GB/s that bounds it
                        "weight_bytes": sum(w.nbytes + b.nbytes for w, b in params) if batch == 1 else None})
