"""fp.Predictor, fp.predict and Sequential's one-call inference.

Against the eager model (bitwise on every backend: the same kernels on the
same weights) and the float64 NumPy reference, for every activation, dtype,
bias or none, batches 0 to 9 (across the small-batch cut-over) and 200;
snapshot semantics; 8 Python threads at once; the error policy.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import fusedprop as fp
from conftest import ALL_ACTIVATIONS
from fusedprop import nn
from helpers import run_in_threads

BATCHES = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 200)
MODULES = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
           "gelu": nn.GELU, "gelu_tanh": lambda: nn.GELU(approximate="tanh"), "silu": nn.SiLU,
           "identity": nn.Identity}


def model_of(act, dtype, bias=True, sizes=(24, 40, 33, 5)):
    fp.manual_seed(3)
    mods = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(nn.Linear(a, b, bias=bias, dtype=dtype))
        if i + 2 < len(sizes):
            mods.append(MODULES[act]())
    return nn.Sequential(*mods)


def reference(model, x):
    """The float64 oracle: the model's layers in NumPy."""
    from fusedprop._train_plan import compile_layers
    from fusedprop.backends import numpy_backend
    v = np.asarray(x, np.float64)
    for s in compile_layers(model):
        b = None if s.linear.bias is None else s.linear.bias.data.astype(np.float64)
        v = numpy_backend.linear(v, s.linear.weight.data.astype(np.float64), b, s.activation, s.negative_slope, None)
    return v


def eager(model, x):
    with fp.no_grad():
        return model(x).numpy()


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
@pytest.mark.parametrize("act", ALL_ACTIVATIONS)
@pytest.mark.parametrize("bias", (True, False))
def test_matches_the_eager_model_and_the_reference(backend, rng, dtype, act, bias):
    model = model_of(act, dtype, bias)
    pred = fp.Predictor(model)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for batch in BATCHES:
        x = rng.uniform(-2, 2, (batch, 24)).astype(dtype)
        y = pred(x)
        assert y.dtype == dtype and y.shape == (batch, 5)
        np.testing.assert_array_equal(y, eager(model, x))
        np.testing.assert_allclose(y, reference(model, x), rtol=tol, atol=tol)
        np.testing.assert_array_equal(fp.predict(model, x), y)


def test_large_layers_across_the_cut_over(backend, rng):
    # W of 1 MiB and more: up to 8 rows skip packing, 9 and more use W^T packed once
    model = model_of("relu", np.float32, sizes=(512, 640, 10))
    pred = fp.Predictor(model)
    for batch in (1, 4, 5, 8, 9, 16, 64):
        x = rng.standard_normal((batch, 512)).astype(np.float32)
        np.testing.assert_array_equal(pred(x), eager(model, x))
        np.testing.assert_allclose(pred(x), reference(model, x), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_one_row_through_w_interleaved(isa, rng, cpp_only, threads, dtype):
    """A W of 2 MiB and more is also kept interleaved for one row of A
    (gemm/skinny.h, pack_nt_rows): the bits of W's own rows, for every
    activation, widths that leave part groups of rows and lanes (k and n not
    multiples of 8 or 4), with and without bias, and at 1-3 threads, which
    split the columns."""
    k, n = (801, 700) if dtype == np.float32 else (601, 503)  # 2.2 and 2.4 MB
    core = fp.backends.core_module()
    for act in ALL_ACTIVATIONS:
        for bias in (True, False):
            model = model_of(act, dtype, bias, sizes=(k, n, 9))
            w = model[0].weight.data
            assert w.nbytes >= 2 * 1024 * 1024
            assert core.PackedWeight(w).nbytes >= 2 * w.nbytes  # the panels and the interleaved rows
            pred = fp.Predictor(model)
            tol = 2e-5 if dtype == np.float32 else 1e-12
            for batch in (1, 2):  # 2 rows read W's own rows
                x = rng.uniform(-2, 2, (batch, k)).astype(dtype)
                threads(1)
                alone = pred(x)
                np.testing.assert_array_equal(alone, eager(model, x), err_msg=f"{act}, bias {bias}, batch {batch}")
                np.testing.assert_allclose(alone, reference(model, x), rtol=tol, atol=tol)
                for t in (2, 3):
                    threads(t)
                    np.testing.assert_array_equal(pred(x), alone, err_msg=f"{act}, {t} threads")
    small = model_of("relu", dtype, sizes=(64, 128, 9))[0].weight.data
    assert core.PackedWeight(small).nbytes < 2 * small.nbytes  # in L2: W's own rows are read


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
@pytest.mark.parametrize("sizes, batches", [
    ((64, 128, 96, 10), (23, 47, 48, 49, 61, 64, 100, 250)),
    # a narrow last layer (7 outputs, k = 300) reads W unpacked up to 256
    # rows with the AVX-512 kernels (gemm/config.h): batches whose shares
    # would fall under that cut-over while the whole batch does not
    ((64, 300, 7), (250, 256, 257, 300, 520, 600)),
    ((64, 300, 3), (30, 300, 600)),  # 3 outputs: unpacked at any batch
])
def test_batch_shares_across_threads_give_the_same_bits(isa, rng, cpp_only, threads, dtype, sizes, batches):
    """At 2 and 3 threads a Predictor sends shares of the batch through the
    whole network at once (inference_plan.cpp): shares start at whole row
    tiles of every ISA's kernels and take each layer's path (skinny or
    packed) that the whole batch takes, so the bits are the 1-thread ones,
    for batches below, at and above the split and with row-tile remainders."""
    model = model_of("gelu", dtype, sizes=sizes)
    pred = fp.Predictor(model)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for batch in batches:
        x = rng.uniform(-2, 2, (batch, 64)).astype(dtype)
        threads(1)
        alone = pred(x)
        np.testing.assert_array_equal(alone, eager(model, x))
        np.testing.assert_allclose(alone, reference(model, x), rtol=tol, atol=tol)
        for n in (2, 3):
            threads(n)
            np.testing.assert_array_equal(pred(x), alone, err_msg=f"batch {batch}, {n} threads")


def test_inputs_as_f_linear_takes_them(backend, rng):
    model = model_of("tanh", np.float32)
    pred = fp.Predictor(model)
    x = rng.standard_normal((3, 4, 24))
    y = pred(x)  # float64 input for a float32 model: converted, as model(x) does
    assert y.shape == (3, 4, 5) and y.dtype == np.float32
    np.testing.assert_array_equal(y, eager(model, x.astype(np.float32)))
    xs = rng.standard_normal((6, 48)).astype(np.float32)[:, ::2]  # every other column
    strided = np.asfortranarray(rng.standard_normal((6, 24)).astype(np.float32))[:, ::-1]
    np.testing.assert_array_equal(pred(strided), eager(model, np.ascontiguousarray(strided)))
    np.testing.assert_array_equal(pred(xs), eager(model, np.ascontiguousarray(xs)))
    np.testing.assert_array_equal(pred(rng.standard_normal(24).astype(np.float32)).shape, (5,))
    assert pred(fp.tensor(xs)).shape == (6, 5)


def test_a_snapshot_until_refresh(backend, rng):
    model = model_of("relu", np.float64)
    pred = fp.Predictor(model)
    x = rng.standard_normal((5, 24))
    before = pred(x)
    lin = model[0]
    lin.weight.data[...] *= 2.0  # in place
    model[2].bias.data[...] += 1.0
    np.testing.assert_array_equal(pred(x), before)
    assert not np.array_equal(eager(model, x), before)
    assert pred.refresh() is pred
    np.testing.assert_array_equal(pred(x), eager(model, x))
    # load_state_dict and a replaced array too
    state = model_of("relu", np.float64).state_dict()
    model.load_state_dict(state)
    lin.bias.data = lin.bias.data + 3.0
    assert not np.array_equal(pred(x), eager(model, x))
    pred.refresh()
    np.testing.assert_array_equal(pred(x), eager(model, x))


def test_the_snapshot_weights_start_on_cache_lines(backend):
    """The copies a Predictor reads start on 64-byte boundaries (NumPy's own
    arrays on 16: the small-batch kernels' row loads would split lines),
    after refresh() too, and are C-contiguous copies."""
    model = model_of("relu", np.float32, sizes=(24, 40, 33, 5))
    pred = fp.Predictor(model)
    for _ in range(2):
        weights = pred._snapshot.params[0::2]
        for w, lin in zip(weights, (model[0], model[2], model[4])):
            assert w.ctypes.data % 64 == 0 and w.flags.c_contiguous and w.dtype == np.float32
            assert not np.shares_memory(w, lin.weight.data)
            np.testing.assert_array_equal(w, lin.weight.data)
        for b, lin in zip(pred._snapshot.params[1::2], (model[0], model[2], model[4])):
            assert b.ctypes.data % 64 == 0 and not np.shares_memory(b, lin.bias.data)
        pred.refresh()
    # a chain with a norm keeps its copies the same way
    fp.manual_seed(3)
    ops = nn.Sequential(nn.Linear(24, 40), nn.LayerNorm(40), nn.ReLU(), nn.Linear(40, 5))
    copies = [p for p in fp.Predictor(ops)._snapshot.params if p is not None]
    assert len(copies) == 6  # two Linear layers and the LayerNorm, weight and bias each
    for p in copies:
        assert p.ctypes.data % 64 == 0 and p.flags.c_contiguous


def test_eight_threads_get_the_bits_they_would_alone(backend, rng):
    model = model_of("gelu", np.float32, sizes=(300, 257, 64, 3))
    pred = fp.Predictor(model)
    inputs = [rng.standard_normal((b, 300)).astype(np.float32) for b in (1, 3, 7, 9, 33, 64, 100, 250)]
    serial = [pred(x) for x in inputs]
    results = [None] * len(inputs)
    barrier = threading.Barrier(len(inputs))

    def work(i):
        barrier.wait()
        for _ in range(5):
            results[i] = pred(inputs[i])
            np.testing.assert_array_equal(results[i], serial[i])
    run_in_threads(len(inputs), work)


def test_repr_shows_the_chain(backend):
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3, bias=False), nn.Tanh(),
                          nn.Linear(3, 2, activation="gelu"))
    text = repr(fp.Predictor(model))
    assert text == ("Predictor(Linear(4, 8)+relu -> Linear(8, 3, bias=False)+tanh -> Linear(3, 2)+gelu, "
                    "dtype=float32)")


def test_bad_input(backend, rng):
    class Custom(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(TypeError, match="Custom"):
        fp.Predictor(nn.Sequential(nn.Linear(3, 4), Custom()))
    with pytest.raises(TypeError, match="nn.Sequential or nn.Linear"):
        fp.Predictor(nn.ReLU())
    pred = fp.Predictor(model_of("relu", np.float32))
    with pytest.raises(ValueError, match=r"\(\.\.\., 24\)"):
        pred(np.zeros((2, 23), np.float32))
    with pytest.raises(ValueError, match=r"\(\.\.\., 24\)"):
        pred(np.zeros((), np.float32))
    with pytest.raises(TypeError, match="floating-point"):
        pred(np.zeros((2, 24), np.int64))
    with pytest.raises(TypeError):
        pred("not an array")


def test_the_plan_checks_bound_and_given_weights(rng, cpp_only):
    """A Predictor's weights are checked once, when bound to its plan; the
    plan's own errors for weights missing, of the wrong kind or shape."""
    core = fp.backends.core_module()
    plan = core.InferencePlan("Predictor", "float32", [("relu", 0.01, True, 3, 4)])
    x = rng.standard_normal((2, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="none bound"):
        plan.forward(x)
    with pytest.raises(TypeError, match="params must be a list"):
        plan.forward(x, (np.zeros((4, 3), np.float32), np.zeros(4, np.float32)))
    with pytest.raises(ValueError, match="expected"):
        plan.bind([np.zeros((4, 2), np.float32), np.zeros(4, np.float32)])
    w, b = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    plan.bind([w, b])
    want = plan.forward(x, [w, b])
    del w, b  # the plan keeps the bound arrays alive
    np.testing.assert_array_equal(plan.forward(x), want)


def test_a_stale_packing_is_never_used(rng, cpp_only):
    """W^T packed for one ISA's kernels, then the ISA switched: still right."""
    core = fp.backends.core_module()
    isas = core._available_isas()
    if len(isas) < 2:
        pytest.skip("one GEMM ISA on this CPU")
    model = model_of("relu", np.float32, sizes=(300, 200, 7))
    x = rng.standard_normal((64, 300)).astype(np.float32)
    previous = core.gemm_kernel_info()["isa"]
    try:
        core._set_isa(isas[-1])
        pred = fp.Predictor(model)
        for isa in isas:
            core._set_isa(isa)
            np.testing.assert_array_equal(pred(x), eager(model, x))
    finally:
        core._set_isa(previous)


def test_sequential_in_eval_runs_in_one_call_with_the_same_bits(rng, cpp_only):
    from fusedprop import functional as F
    model = model_of("silu", np.float32)
    x = rng.standard_normal((6, 24)).astype(np.float32)
    want = x
    for i in (0, 2, 4):
        lin = model[i]
        act = "silu" if i < 4 else "identity"
        want = F.linear(want, lin.weight.data, lin.bias.data, act)
    model.eval()
    got = model(x)
    assert isinstance(got, fp.Tensor) and not got.requires_grad
    np.testing.assert_array_equal(got.numpy(), want)
    model.train()
    with fp.no_grad():
        np.testing.assert_array_equal(model(x).numpy(), want)
    # training mode with grad on still records the graph
    y = model(x)
    assert y.requires_grad
    np.testing.assert_array_equal(y.numpy(), want)


def test_predict_batches(backend, rng):
    model = model_of("tanh", np.float64)
    x = rng.standard_normal((50, 24))
    whole = fp.predict(model, x)
    np.testing.assert_allclose(fp.predict(model, x, batch_size=7), whole, rtol=1e-12, atol=1e-12)
    assert fp.predict(model, x[:0]).shape == (0, 5)
    with pytest.raises(ValueError, match="batch_size"):
        fp.predict(model, x, batch_size=0)
