"""The small-batch kernels with no packing (csrc/gemm/skinny.h) against the
NumPy reference in float64.

Both layouts (nt: x W^T with W row-major, as F.linear hands it over; nn: a
row-major B, as dZ W in the backward), every activation, f32 and f64, bias
or none, the pre-activation store, rows around the cut-over and the kernels'
2-row blocks, k below/at/above a vector and with a masked tail, n below/at/
above the 8-output and 64-column blocks, strided and transposed inputs,
strided outputs, on every ISA; the AVX-512 build's 4 x 4 blocks (rows 4 to
17) and its cut-over for narrow layers; and the properties the path
promises: the same bits at every thread count (columns or rows split), on
the AVX2 and the AVX-512 build, and a row's bits independent of how many
rows come with it.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import ALL_ACTIVATIONS as ACTIVATIONS
from fusedprop import functional as F
from fusedprop.backends import numpy_backend as ref_backend

_core = pytest.importorskip("fusedprop._core")
pytestmark = pytest.mark.usefixtures("cpp_only")

DTYPES = (np.float32, np.float64)
TOL = {np.float32: 2e-5, np.float64: 1e-12}
ROWS = (1, 2, 3, 4)  # always skinny; 5..8 only for a large B
KS = (1, 7, 8, 9, 33, 100)
NS = (1, 3, 8, 9, 17, 64, 65, 130)


def f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def bound(x, w, b, dtype):
    mag = np.abs(f64(x)) @ np.abs(f64(w)).T + (0 if b is None else np.abs(f64(b)))
    return TOL[dtype] * (1 + mag)


def data(rng, m, k, n, dtype):
    x = rng.uniform(-2, 2, (m, k)).astype(dtype)
    w = (rng.uniform(-1, 1, (n, k)) / np.sqrt(k)).astype(dtype)
    b = rng.uniform(-1, 1, n).astype(dtype)
    return x, w, b


@pytest.fixture(autouse=True)
def table_cutover():
    _core._set_skinny_max_rows(-1)
    yield
    _core._set_skinny_max_rows(-1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", ROWS)
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("n", NS)
def test_nt_shapes(isa, rng, dtype, m, k, n):
    x, w, b = data(rng, m, k, n, dtype)
    for bias in (b, None):
        y = F.linear(x, w, bias, "relu")
        want = ref_backend.linear(f64(x), f64(w), f64(bias), "relu", 0.01, None)
        assert np.all(np.abs(y - want) <= bound(x, w, bias, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", ROWS)
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("n", NS + (130 + 64,))
def test_nn_shapes(isa, rng, dtype, m, k, n):
    a = rng.uniform(-2, 2, (m, k)).astype(dtype)
    bmat = rng.uniform(-1, 1, (k, n)).astype(dtype)  # row-major: the nn layout
    c = F.matmul(a, bmat)
    want = f64(a) @ f64(bmat)
    assert np.all(np.abs(c - want) <= TOL[dtype] * (1 + np.abs(f64(a)) @ np.abs(f64(bmat))))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_every_activation_and_the_saved_tensor(isa, rng, dtype, act):
    x, w, b = data(rng, 3, 37, 21, dtype)
    y, saved = F.linear_forward(x, w, b, act, negative_slope=0.2)
    want, want_saved = ref_backend.linear_forward(f64(x), f64(w), f64(b), act, 0.2)
    tol = bound(x, w, b, dtype)
    assert np.all(np.abs(y - want) <= tol * (1 + np.abs(want)))
    if want_saved is not None:
        assert np.all(np.abs(saved - want_saved) <= tol * (1 + np.abs(want_saved)))
    # the inference call (no saved tensor) gives the same bits
    np.testing.assert_array_equal(F.linear(x, w, b, act, negative_slope=0.2), y)


@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_inputs_and_outputs(isa, rng, dtype):
    m, k, n = 3, 50, 19
    big_x = rng.uniform(-2, 2, (2 * m, 2 * k)).astype(dtype)
    x = big_x[::2, ::2]  # strided rows and columns: the nt kernel reads a copy
    w = (rng.uniform(-1, 1, (n, k)) / 7).astype(dtype)
    b_big = rng.uniform(-1, 1, 2 * n).astype(dtype)
    b = b_big[::2]
    out_big = np.full((m, 3 * n), np.nan, dtype)
    out = out_big[:, n:2 * n]  # a row stride of 3n
    F.linear(x, w, b, "tanh", out=out)
    want = ref_backend.linear(f64(x), f64(w), f64(b), "tanh", 0.01, None)
    assert np.all(np.abs(out - want) <= bound(x, w, b, dtype))
    assert np.isnan(out_big[:, :n]).all() and np.isnan(out_big[:, 2 * n:]).all()
    # x transposed (column-major), W given as the transpose of a (k, n) array:
    # B = W^T is then row-major, the nn layout
    xt = np.asfortranarray(x)
    wt = np.ascontiguousarray(w.T).T
    y = F.linear(xt, wt, b, "tanh")
    assert np.all(np.abs(y - want) <= bound(x, w, b, dtype))
    # an out with a non-unit column stride leaves the skinny path: still right
    out2 = np.empty((m, 2 * n), dtype)[:, ::2]
    F.linear(x, w, b, "tanh", out=out2)
    assert np.all(np.abs(out2 - want) <= bound(x, w, b, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_same_values_as_the_packed_path(isa, rng, dtype):
    x, w, b = data(rng, 4, 300, 70, dtype)
    skinny = F.linear(x, w, b, "gelu")
    _core._set_skinny_max_rows(0)
    packed = F.linear(x, w, b, "gelu")
    np.testing.assert_allclose(skinny, packed, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_b_takes_more_rows(isa, rng, dtype):
    info = _core.gemm_kernel_info()
    rows = info["skinny_max_rows_large_b"]
    assert rows > info["skinny_max_rows"]
    k, n = 512, 512  # B of 1 MiB in f32: over the large-B threshold
    x, w, b = data(rng, rows, k, n, dtype)
    y = F.linear(x, w, b, "relu")
    want = ref_backend.linear(f64(x), f64(w), f64(b), "relu", 0.01, None)
    assert np.all(np.abs(y - want) <= bound(x, w, b, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_bits_do_not_depend_on_threads_or_on_the_other_rows(isa, rng, threads, dtype):
    k, n = 700, 1100  # B over the parallel threshold: the columns are split
    x, w, b = data(rng, 4, k, n, dtype)
    threads(1)
    one = F.linear(x, w, b, "silu")
    for t in (2, 3):
        threads(t)
        np.testing.assert_array_equal(F.linear(x, w, b, "silu"), one)
    # row i computed alone, in pairs or in a block of 3 gives the same bits
    for i in range(4):
        np.testing.assert_array_equal(F.linear(x[i:i + 1], w, b, "silu"), one[i:i + 1])
    np.testing.assert_array_equal(F.linear(x[1:4], w, b, "silu"), one[1:4])
    # the nn layout too (dZ W in the backward)
    bmat = rng.uniform(-1, 1, (k, n)).astype(dtype)
    threads(1)
    c1 = F.matmul(x, bmat)
    threads(2)
    np.testing.assert_array_equal(F.matmul(x, bmat), c1)
    np.testing.assert_array_equal(F.matmul(x[2:3], bmat), c1[2:3])


def test_special_values_propagate(isa, rng):
    x, w, b = data(rng, 2, 20, 10, np.float32)
    x[0, 3] = np.nan
    w[4, 0] = np.inf
    y = F.linear(x, w, b, "relu")
    want = ref_backend.linear(f64(x), f64(w), f64(b), "relu", 0.01, None)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(want))


def test_backward_takes_the_nn_path(isa, rng):
    # dX = dZ W for a small batch goes through the nn kernel: check it with
    # the oracle at a shape where only that path runs
    x, w, b = data(rng, 3, 45, 70, np.float64)
    y, saved = F.linear_forward(x, w, b, "tanh")
    gy = rng.standard_normal(y.shape)
    gx, gw, gb = F.linear_backward(gy, x, w, saved, "tanh")
    wgx, wgw, wgb = ref_backend.linear_backward(gy, x, w, saved, "tanh", 0.01, True)
    np.testing.assert_allclose(gx, wgx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, wgw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gb, wgb, rtol=1e-12, atol=1e-12)


# The AVX-512 build of the nt kernel takes 4 x 4 blocks (skinny_ymm.h): rows
# in fours, then pairs and singles, columns in fours within blocks of 8.
FOUR_ROWS = (4, 5, 6, 7, 8, 9, 12, 13, 17)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", FOUR_ROWS)
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("n", (1, 3, 4, 5, 8, 9, 13, 65))
def test_nt_four_row_blocks(isa, rng, dtype, m, k, n):
    _core._set_skinny_max_rows(64)
    x, w, b = data(rng, m, k, n, dtype)
    y, saved = F.linear_forward(x, w, b, "silu")
    want, want_saved = ref_backend.linear_forward(f64(x), f64(w), f64(b), "silu", 0.01)
    tol = bound(x, w, b, dtype)
    assert np.all(np.abs(y - want) <= tol)
    assert np.all(np.abs(saved - want_saved) <= tol)
    # each row's bits as when it is computed alone
    for i in (0, m // 2, m - 1):
        np.testing.assert_array_equal(F.linear(x[i:i + 1], w, b, "silu"), y[i:i + 1])


def test_avx2_and_avx512_kernels_give_the_same_bits(rng):
    """Both builds of skinny_ymm.h sum every output the same way (skinny.h)."""
    isas = _core._available_isas()
    if "avx512" not in isas or "avx2" not in isas:
        pytest.skip("needs a CPU with both AVX2 and AVX-512")
    previous = _core.gemm_kernel_info()["isa"]
    _core._set_skinny_max_rows(64)
    try:
        for dtype in DTYPES:
            for m, k, n in ((1, 33, 9), (3, 100, 17), (4, 7, 5), (5, 64, 33), (13, 300, 70), (17, 9, 130)):
                x, w, b = data(rng, m, k, n, dtype)
                got = {}
                for name in ("avx2", "avx512"):
                    _core._set_isa(name)
                    got[name] = [F.linear_forward(x, w, b, act, negative_slope=0.2) for act in ACTIVATIONS]
                for (y2, z2), (y5, z5) in zip(got["avx2"], got["avx512"]):
                    np.testing.assert_array_equal(y2, y5)
                    if z2 is not None:
                        np.testing.assert_array_equal(z2, z5)
    finally:
        _core._set_isa(previous)


@pytest.mark.parametrize("dtype", DTYPES)
def test_narrow_layers_take_more_rows(isa, rng, dtype):
    """With 4 x 4 blocks a layer of few outputs reads W unpacked at larger
    batches (gemm/config.h): there a row's bits do not depend on the batch,
    where the packed path's would."""
    info = _core.gemm_kernel_info()
    if isa == "avx512":
        assert info["skinny_max_rows_narrow"] > info["skinny_max_rows_large_b"]
        assert info["skinny_max_rows_few_outputs"] >= 1 << 20
    else:
        assert info["skinny_max_rows_narrow"] == info["skinny_max_rows"]
    for m, k, n in ((info["skinny_max_rows_narrow"], 300, 10), (1000, 64, 4)):
        skinny = m <= (info["skinny_max_rows_narrow"] if n > 4 else info["skinny_max_rows_few_outputs"])
        x, w, b = data(rng, m, k, n, dtype)
        y = F.linear(x, w, b, "tanh")
        want = ref_backend.linear(f64(x), f64(w), f64(b), "tanh", 0.01, None)
        assert np.all(np.abs(y - want) <= bound(x, w, b, dtype))
        alone = np.concatenate([F.linear(x[i:i + 1], w, b, "tanh") for i in range(0, m, 37)])
        if skinny:
            np.testing.assert_array_equal(y[::37], alone)


@pytest.mark.parametrize("dtype", DTYPES)
def test_many_rows_of_a_small_b_split_over_threads(isa, rng, threads, dtype):
    """A narrow layer at a large batch splits its rows over threads (B is too
    small to split): the same bits at every thread count."""
    _core._set_skinny_max_rows(1 << 20)
    x, w, b = data(rng, 9001, 600, 3, dtype)  # 32 MFLOP: over the pool's threshold
    threads(1)
    one = F.linear(x, w, b, "relu")
    want = ref_backend.linear(f64(x), f64(w), f64(b), "relu", 0.01, None)
    assert np.all(np.abs(one - want) <= bound(x, w, b, dtype))
    for t in (2, 3):
        threads(t)
        np.testing.assert_array_equal(F.linear(x, w, b, "relu"), one)
