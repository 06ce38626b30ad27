"""The packed GEMM of the compiled core (F.matmul on the cpp backend).

Oracle: NumPy in float64. Covers the XNNPACK-style size grid around the
register tile and the K block of every ISA this machine runs (switched at run
time with the private ``_core._set_isa``), operands and outputs of any
strides, both dtypes, 1 and 2 threads, and bitwise equality across thread
counts.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import fusedprop as fp
from fusedprop import functional as F
from fusedprop.backends import numpy_backend
from helpers import same_error

_core = pytest.importorskip("fusedprop._core")
DTYPES = (np.float32, np.float64)
TOL = {np.float32: 2e-5, np.float64: 1e-12}

pytestmark = pytest.mark.usefixtures("cpp_only")


def blocks(dtype):
    info = _core.gemm_kernel_info()
    return info["gemm_f32_blocks" if dtype == np.float32 else "gemm_f64_blocks"]


def check(c, a, b, dtype):
    """c == a @ b up to a rounding bound scaled by |a| @ |b| (elementwise)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    ref = a64 @ b64
    mag = np.abs(a64) @ np.abs(b64)
    assert c.dtype == dtype
    assert c.shape == ref.shape
    err = np.abs(c.astype(np.float64) - ref)
    bad = err > TOL[dtype] * (mag + 1e-300)
    assert not bad.any(), f"max err {err.max()} at {np.argwhere(bad)[:3].tolist()}"


def rand(rng, shape, dtype):
    return rng.uniform(-1, 1, size=shape).astype(dtype)


# ------------------------------------------------------------------ size grid

@pytest.mark.parametrize("dtype", DTYPES)
def test_size_grid(isa, dtype):
    """m in 1..MR, MR+1, 2MR+3; n in 1..NR, NR+1, 3NR-1; k around KC.

    K is cut into blocks of at most KC, except that a last sliver under KC/4
    is spread over the others (driver.cpp, k_block): KC+1 is one block of
    KC+1, 1.25 KC the smallest k cut in two, 2 KC+7 two blocks of KC+4.
    k = 2, 7 and 1 give the kernels' unrolled k loop (4 steps) a remainder of
    2, 3 and 1 steps; KC-1 does too, for KC even."""
    bs = blocks(dtype)
    mr, nr, kc = bs["mr"], bs["nr"], bs["kc"]
    ms = list(range(1, mr + 1)) + [mr + 1, 2 * mr + 3]
    ns = list(range(1, nr + 1)) + [nr + 1, 3 * nr - 1]
    ks = [0, 1, 2, 7, kc - 1, kc, kc + 1, kc + kc // 4, 2 * kc + 7]
    rng = np.random.default_rng(0)
    for k in ks:
        for m in ms:
            # Every n for the cheap k; a sample of the n grid for the large k.
            for n in (ns if k <= kc + 1 or m in (1, mr, 2 * mr + 3) else ns[::3]):
                a, b = rand(rng, (m, k), dtype), rand(rng, (k, n), dtype)
                check(F.matmul(a, b), a, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(300, 500, 600), (1000, 257, 300), (20, 700, 515), (13, 4100, 40), (2, 3, 4000),
                                   (64, 256, 784), (7, 1000, 1087)])
def test_large(isa, threads, dtype, shape):
    m, n, k = shape
    rng = np.random.default_rng(1)
    a, b = rand(rng, (m, k), dtype), rand(rng, (k, n), dtype)
    threads(1)
    c1 = F.matmul(a, b)
    check(c1, a, b, dtype)
    threads(2)
    c2 = F.matmul(a, b)
    assert np.array_equal(c1, c2), "results differ between 1 and 2 threads"
    threads(3)  # more threads than cores: still the same bits
    assert np.array_equal(c1, F.matmul(a, b))


@pytest.fixture
def set_blocks(isa):
    """``set_blocks(dtype, mc=, nc=, nb=)`` overrides the active ISA's cache
    blocks (KC, which fixes the rounding, stays); all restored afterwards."""
    saved = {dt: dict(blocks(dt)) for dt in DTYPES}

    def override(dtype, **sizes):
        bs = {**saved[dtype], **sizes}
        _core._set_gemm_blocks(isa, np.dtype(dtype).name, bs["mc"], bs["kc"], bs["nc"], bs["nb"])

    yield override
    for dt, bs in saved.items():
        _core._set_gemm_blocks(isa, np.dtype(dt).name, bs["mc"], bs["kc"], bs["nc"], bs["nb"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("row_panels", [31, 2])  # several row blocks; one (at 1 thread: B packed a slab at a time)
@pytest.mark.parametrize("b_layout", ["rows", "transposed"])  # B row-major; B = W^T (a layer's forward)
def test_cache_blocks_do_not_change_bits(isa, threads, set_blocks, dtype, row_panels, b_layout):
    """MC, NC and the slab width NB only reorder whole tiles: the same bits
    for every choice, including slabs of one micro-panel (the BLIS order),
    slabs that do not divide a thread's column chunk, and one slab for all."""
    rng = np.random.default_rng(5)
    mr, nr = blocks(dtype)["mr"], blocks(dtype)["nr"]
    m, k, n = row_panels * mr + 3, 900, 11 * nr + 5  # edge tiles both ways, 3 K blocks, over the parallel threshold
    a = rand(rng, (m, k), dtype)
    b = rand(rng, (k, n), dtype) if b_layout == "rows" else rand(rng, (n, k), dtype).T
    threads(1)
    ref = F.matmul(a, b)
    check(ref, a, b, dtype)
    for mc, nc, nb in [(mr, 4 * nr, nr), (2 * mr, 5 * nr, 3 * nr), (4 * mr, 64 * nr, 2 * nr), (48 * mr, 64 * nr, 64 * nr)]:
        set_blocks(dtype, mc=mc, nc=nc, nb=nb)
        for n_threads in (1, 2):
            threads(n_threads)
            # NaN-filled: a tile the loops skip stays NaN (a fresh array may
            # reuse the memory of an earlier, correct result)
            out = np.full_like(ref, np.nan)
            F.matmul(a, b, out=out)
            assert np.array_equal(out, ref), (mc, nc, nb, n_threads)


def test_set_gemm_blocks_rejects_sizes_off_the_tile(isa, set_blocks):
    mr, nr = blocks(np.float32)["mr"], blocks(np.float32)["nr"]
    for bad in [dict(mc=mr + 1), dict(nc=nr + 1), dict(nb=nr + 1), dict(nb=0)]:
        with pytest.raises(ValueError, match="invalid ISA or block sizes"):
            set_blocks(np.float32, **bad)


# -------------------------------------------------------------------- strides

def layouts(x):
    """The same matrix in several memory layouts."""
    yield "c", x
    yield "f", np.asfortranarray(x)
    yield "strided", np.repeat(np.repeat(x, 2, axis=0), 3, axis=1)[::2, ::3]
    yield "neg", np.ascontiguousarray(x[::-1, ::-1])[::-1, ::-1]
    yield "neg_f", np.asfortranarray(x[::-1])[::-1]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", [37, 300])  # one row block (A shared by the threads), several (B shared)
def test_operand_strides(isa, threads, dtype, m):
    rng = np.random.default_rng(2)
    n, k = 450, 300  # above the parallel threshold
    a, b = rand(rng, (m, k), dtype), rand(rng, (k, n), dtype)
    for n_threads in (1, 2):
        threads(n_threads)
        ref = F.matmul(a, b)
        check(ref, a, b, dtype)
        for la, av in layouts(a):
            for lb, bv in layouts(b):
                assert np.array_equal(av, a) and np.array_equal(bv, b)
                c = F.matmul(av, bv)
                assert np.array_equal(c, ref), (la, lb)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("row_bytes", [1024, 2048, 4096, 8192])
def test_row_strides_that_alias_in_cache(isa, dtype, row_bytes):
    """x @ W^T with rows of x and W a multiple of 1 KiB apart: the packing
    then reads a cache line of k per group of rows at a time, or (4 KiB
    multiples, f32 B panels) stages chunks of 128 k (pack_avx2.cpp), k a
    multiple of 16 / 8 or not, with k tails; the same bits as the same
    product from contiguous copies, and right against float64."""
    rng = np.random.default_rng(11)
    stride = row_bytes // np.dtype(dtype).itemsize
    for m, n, k in [(13, 37, stride), (25, 70, stride - 3), (12, 33, 40), (40, 64, stride // 2 + 5)]:
        xbuf, wbuf = rand(rng, (m, stride), dtype), rand(rng, (n, stride), dtype)
        x, w = xbuf[:, :k], wbuf[:, :k]  # views: the row stride stays `stride`
        c = F.matmul(x, w.T)
        check(c, x, w.T, dtype)
        assert np.array_equal(c, F.matmul(np.ascontiguousarray(x), np.ascontiguousarray(w).T)), (m, n, k)


@pytest.mark.parametrize("dtype", DTYPES)
def test_transposed_views_and_zero_strides(isa, dtype):
    rng = np.random.default_rng(3)
    w = rand(rng, (19, 33), dtype)
    x = rand(rng, (7, 33), dtype)
    check(F.matmul(x, w.T), x, w.T, dtype)  # x @ W^T through strides
    row = rand(rng, (1, 33), dtype)
    a0 = np.broadcast_to(row, (9, 33))  # zero row stride
    check(F.matmul(a0, w.T), a0, w.T, dtype)
    b0 = np.broadcast_to(rand(rng, (33, 1), dtype), (33, 5))  # zero column stride
    check(F.matmul(x, b0), x, b0, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [70, 700])  # one K block; several (the kernels add into C)
def test_out_layouts(isa, threads, dtype, k):
    rng = np.random.default_rng(4)
    m, n = 23, 35
    a, b = rand(rng, (m, k), dtype), rand(rng, (k, n), dtype)
    ref = F.matmul(a, b)
    for n_threads in (1, 2):
        threads(n_threads)
        outs = {
            "c": np.empty((m, n), dtype),
            "f": np.empty((m, n), dtype, order="F"),
            "strided": np.empty((2 * m, 3 * n), dtype)[::2, ::3],
            "neg": np.empty((m, n), dtype)[::-1, ::-1],
            "neg_rows": np.empty((m, n), dtype)[::-1],  # unit columns: tiles go straight into C
        }
        for name, out in outs.items():
            out[...] = np.nan
            got = F.matmul(a, b, out=out)
            assert got is out, name
            assert np.array_equal(out, ref), name
    # A buffer whose strides are not whole elements: computed, then copied.
    raw = np.zeros(m * n * a.itemsize + 1, np.uint8)[1:].view(dtype).reshape(m, n)
    assert np.array_equal(F.matmul(a, b, out=raw), ref)


@pytest.mark.parametrize("dtype", DTYPES)
def test_short_row_tiles_write_only_their_rows(isa, dtype):
    """A last row panel of m mod MR rows goes straight into C (row kernels):
    the rows just past the output, in the same buffer, must stay untouched,
    through every K block and the fused bias + activation epilogue."""
    rng = np.random.default_rng(5)
    mr, nr, kc = (blocks(dtype)[key] for key in ("mr", "nr", "kc"))
    n = 2 * nr  # whole column panels: the direct path
    for m in range(1, 2 * mr + 1):
        for k in (3, 2 * kc + 7):
            x, w, b = rand(rng, (m, k), dtype), rand(rng, (n, k), dtype), rand(rng, (n,), dtype)
            buf = np.full((m + mr, n), np.nan, dtype)
            got = F.linear(x, w, b, "relu", out=buf[:m])
            assert np.shares_memory(got, buf)
            assert np.isnan(buf[m:]).all(), f"m={m} k={k}: rows past the output were written"
            want = np.maximum(x.astype(np.float64) @ w.T.astype(np.float64) + b, 0)
            np.testing.assert_allclose(buf[:m], want, rtol=TOL[dtype] * 50, atol=TOL[dtype] * k)


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_and_k0(isa, dtype):
    for m, n, k in [(0, 5, 3), (4, 0, 3), (0, 0, 0), (3, 4, 0), (7, 17, 0)]:
        a, b = np.ones((m, k), dtype), np.ones((k, n), dtype)
        c = F.matmul(a, b)
        assert c.shape == (m, n) and c.dtype == dtype
        assert not c.any()
    out = np.full((3, 4), 7.0, dtype)
    F.matmul(np.ones((3, 0), dtype), np.ones((0, 4), dtype), out=out)
    assert not out.any()


def test_nan_inf_propagate(isa):
    a = np.array([[np.nan, 1.0], [np.inf, 0.0], [1.0, 2.0]])
    b = np.array([[1.0, 0.0], [0.0, 1.0]])
    with np.errstate(invalid="ignore"):
        expected = a @ b
    np.testing.assert_array_equal(F.matmul(a, b), expected)


# ------------------------------------------------------------------ dispatch

def test_kernel_info_and_cpu_info():
    info = _core.gemm_kernel_info()
    for key in ("isa", "gemm_f32_tile", "gemm_f64_tile", "gemm_f32_blocks", "gemm_f64_blocks"):
        assert key in info
    assert info["isa"] in ("avx512", "avx2", "reference")
    mr, nr = map(int, info["gemm_f32_tile"].split("x"))
    assert (mr, nr) == (info["gemm_f32_blocks"]["mr"], info["gemm_f32_blocks"]["nr"])
    assert fp.cpu_info()["isa"] == info["isa"]
    features = _core.cpu_features()
    if features["avx2"] and features["fma"]:
        assert "avx2" in _core._available_isas()
    if all(features[f] for f in ("avx512f", "avx512dq", "avx512bw", "avx512vl", "avx2", "fma")):
        assert "avx512" in _core._available_isas()
    assert "reference" in _core._available_isas()


def test_default_isa_is_the_widest_available():
    code = "from fusedprop import _core; print(_core.gemm_kernel_info()['isa'])"
    env = {k: v for k, v in os.environ.items() if k != "FUSEDPROP_ISA"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.abspath(__file__)) + "/..")
    assert out.stdout.strip() == _core._available_isas()[-1]  # listed narrowest first


def test_fma_peak_follows_the_active_isa(isa):
    expected = {"avx512": "avx512f+fma", "avx2": "avx2+fma", "reference": "portable"}[isa]
    assert _core.fma_peak_isa() == expected
    assert _core.measure_peak_gflops("float32", 1, 0.01) > 0


def test_set_isa_rejects_unknown():
    with pytest.raises(ValueError, match="_set_isa"):
        _core._set_isa("sse9")


@pytest.mark.parametrize("forced", _core._available_isas())
def test_env_forces_isa(forced):
    """FUSEDPROP_ISA picks the kernels (and the peak loop) of any available ISA."""
    code = "from fusedprop import _core; print(_core.gemm_kernel_info()['isa'], _core.fma_peak_isa())"
    env = dict(os.environ, FUSEDPROP_ISA=forced)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.abspath(__file__)) + "/..")
    peak = {"avx512": "avx512f+fma", "avx2": "avx2+fma", "reference": "portable"}[forced]
    assert out.stdout.split() == [forced, peak]


# -------------------------------------------------------------------- errors

def _same_error(call):
    return same_error(call, numpy_backend, _core)


def test_errors_match_reference():
    f32 = np.ones((3, 4), np.float32)
    f64 = np.ones((4, 5))
    cases = [
        lambda m: m.matmul([[1.0]], f64, None),
        lambda m: m.matmul(f64.T, "b", None),
        lambda m: m.matmul(np.ones((3, 4), np.int64), f64, None),
        lambda m: m.matmul(np.ones((3, 4), ">f8"), f64, None),
        lambda m: m.matmul(f32, f64, None),
        lambda m: m.matmul(np.ones(4), f64, None),
        lambda m: m.matmul(f64, np.ones((4, 5, 1)), None),
        lambda m: m.matmul(np.ones((3, 5)), f64, None),
        lambda m: m.matmul(np.ones((3, 4)), f64, np.ones((3, 4))),
        lambda m: m.matmul(np.ones((3, 4)), f64, np.ones((3, 5), np.float32)),
        lambda m: m.matmul(np.ones((3, 4)), f64, [[0.0]]),
    ]
    kinds = [TypeError, TypeError, TypeError, TypeError, TypeError, ValueError, ValueError, ValueError, ValueError,
             TypeError, TypeError]
    for case, kind in zip(cases, kinds):
        assert isinstance(_same_error(case), kind)


def test_out_read_only_and_overlap():
    a = np.ones((4, 4))
    b = np.ones((4, 4))
    ro = np.zeros((4, 4))
    ro.flags.writeable = False
    _same_error(lambda m: m.matmul(a, b, ro))
    _same_error(lambda m: m.matmul(a, b, a))
    _same_error(lambda m: m.matmul(a, b, b.T))
    big = np.zeros((8, 8))
    # Interleaved, disjoint views of one buffer are fine...
    assert np.array_equal(F.matmul(big[::2, ::2], b, out=big[1::2, ::2]), np.zeros((4, 4)))
    # ...overlapping ones are not.
    _same_error(lambda m: m.matmul(big[:4, :4], b, big[2:6, 2:6]))


def test_gil_released_threads_agree():
    import threading

    rng = np.random.default_rng(5)
    a, b = rand(rng, (200, 300), np.float32), rand(rng, (300, 150), np.float32)
    ref = F.matmul(a, b)
    results = [None] * 4

    def work(i):
        results[i] = F.matmul(a, b)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for r in results:
        assert np.array_equal(r, ref)


# ------------------------------------------------------------ direct operands

@pytest.fixture
def direct_mode():
    """``direct_mode(m)`` sets the private direct-operands mode; restored afterwards."""
    yield _core._set_direct_operands
    _core._set_direct_operands(-1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads_n", [1, 2, 3])
def test_direct_operands_give_the_packed_bits(isa, dtype, threads_n, threads, direct_mode):
    """A column-major A and a row-major B (the backward's dW = dZ^T X and
    dX = dZ W), read unpacked where the AVX-512 kernels allow it (driver.cpp,
    choose_direct): bitwise the packed product, for rows below, at and above
    MR (a row-edge tile with a half-width column edge: 19 x 10), columns below
    NR/2, at NR/2 and past whole panels (the edge panel comes packed), k in
    one and several K blocks, strided and zero-strided operands, every tile
    written (into a NaN-filled out), and right against float64."""
    threads(threads_n)
    assert _core.gemm_kernel_info()["direct_operands"] == (isa == "avx512")
    kc = blocks(dtype)["kc"]
    rng = np.random.default_rng(5)
    for m, n, k in [(1, 1, 1), (5, 7, 3), (12, 32, 16), (13, 33, 17), (19, 10, 64), (25, 70, 2 * kc + 7),
                    (11, 16, 300), (40, 10, kc + 1), (130, 100, 32), (7, 5, 1000)]:
        a_c = np.asfortranarray(rand(rng, (m, k), dtype))  # unit row stride
        a_s = np.asfortranarray(rand(rng, (m + 5, k), dtype))[2:m + 2]  # column stride m + 5
        a_0 = np.broadcast_to(rand(rng, (m, 1), dtype), (m, k))  # zero column stride
        a_r = np.asfortranarray(rand(rng, (m, k), dtype))[:, ::-1]  # negative column stride: packed
        b_c = rand(rng, (k, n), dtype)
        b_s = rand(rng, (k, n + 9), dtype)[:, 3:n + 3]  # row stride n + 9
        b_r = rand(rng, (k, n), dtype)[::-1]  # negative row stride: packed
        for a in (a_c, a_s, a_0, a_r):
            for b in (b_c, b_s, b_r):
                results = []
                for mode in (0, 1, -1):
                    direct_mode(mode)
                    out = np.full((m, n), np.nan, dtype)
                    F.matmul(a, b, out=out)
                    results.append(out)
                check(results[1], a, b, dtype)
                assert np.array_equal(results[1], results[0]), (m, n, k, a.strides, b.strides)
                assert np.array_equal(results[2], results[0]), (m, n, k, a.strides, b.strides)


def test_direct_operands_in_the_layer_backward(isa, direct_mode):
    """linear_backward's dW and dX (the products the direct path is for) give
    the packed path's bits, with and without the input's gradient."""
    rng = np.random.default_rng(6)
    for dtype in DTYPES:
        for batch, n_in, n_out in [(32, 64, 128), (7, 130, 10), (128, 784, 256)]:
            x, w = rand(rng, (batch, n_in), dtype), rand(rng, (n_out, n_in), dtype)
            g = rand(rng, (batch, n_out), dtype)
            for needs_x in (True, False):
                got = []
                for mode in (0, 1):
                    direct_mode(mode)
                    got.append(F.linear_backward(g, x, w, None, "identity", needs_input_grad=needs_x))
                for packed, direct in zip(*got):
                    assert (packed is None) == (direct is None)
                    if packed is not None:
                        assert np.array_equal(packed, direct), (dtype, batch, n_in, n_out, needs_x)


_GUARDED = r"""
import ctypes, mmap, sys
import numpy as np
from fusedprop import functional as F, _core

_core._set_isa(sys.argv[1])
_core._set_direct_operands(1)
dtype = np.dtype(sys.argv[2])
libc = ctypes.CDLL(None)
keep = []

def guarded(shape, order):
    # an array whose last element is the last one before a PROT_NONE page
    nbytes = int(np.prod(shape)) * dtype.itemsize
    pages = -(-nbytes // mmap.PAGESIZE) + 1
    buf = mmap.mmap(-1, pages * mmap.PAGESIZE)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    assert libc.mprotect(ctypes.c_void_p(addr + (pages - 1) * mmap.PAGESIZE), mmap.PAGESIZE, 0) == 0
    keep.append(buf)
    flat = np.frombuffer(buf, dtype, count=nbytes // dtype.itemsize, offset=(pages - 1) * mmap.PAGESIZE - nbytes)
    return flat.reshape(shape[::-1]).T if order == "F" else flat.reshape(shape)

rng = np.random.default_rng(0)
for m, n, k in [(19, 10, 64), (19, 5, 64), (13, 33, 17), (7, 16, 5), (25, 70, 40)]:
    for a_order in "FC":  # column-major A (UkernelTable::direct), row-major A (direct_row_a)
        a, b = guarded((m, k), a_order), guarded((k, n), "C")
        a[...] = rng.uniform(-1, 1, (m, k))
        b[...] = rng.uniform(-1, 1, (k, n))
        c = F.matmul(a, b)
        assert np.allclose(c, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-4, atol=1e-4)
print("ok")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mprotect through ctypes: Linux only")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_direct_operands_read_nothing_past_the_operands(isa, dtype):
    """A direct A (either layout) and B that end right before an unreadable
    page: the kernels read neither past A's rows (a row-edge tile must not take the
    half-width kernel, which reads MR rows) nor past B's last row (the
    column-edge panel comes packed). A read past them would crash the child."""
    run = subprocess.run([sys.executable, "-c", _GUARDED, isa, dtype], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", (run.returncode, run.stderr[-2000:])


@pytest.mark.parametrize("dtype", DTYPES)
def test_direct_row_major_a_gives_the_packed_bits(isa, dtype, direct_mode):
    """x W^T + b through a direct row-major A (the layer's input read where
    it lies, UkernelTable::direct_row_a) for every epilogue, with and without
    a bias, saving Z or not: bitwise the packed path, for row edges (19 rows,
    a half-width column edge of 10) and K blocks in and out of the rule, x
    contiguous and with padded rows."""
    from conftest import ALL_ACTIVATIONS
    rng = np.random.default_rng(7)
    kc = blocks(dtype)["kc"]
    for m, n, k in [(9, 10, 16), (19, 10, 64), (13, 33, 17), (25, 70, 200), (40, 16, kc + 1)]:
        xs = {"contiguous": rand(rng, (m, k), dtype), "padded": rand(rng, (m, k + 7), dtype)[:, 2:k + 2]}
        w, b = rand(rng, (n, k), dtype), rand(rng, n, dtype)
        for act in ALL_ACTIVATIONS:
            for name, x in xs.items():
                for bias in (b, None):
                    got = []
                    for mode in (0, 1, -1):
                        direct_mode(mode)
                        got.append((F.linear(x, w, bias, act), *F.linear_forward(x, w, bias, act)))
                    for other in got[1:]:
                        for u, v in zip(got[0], other):
                            assert (u is None) == (v is None)
                            if u is not None:
                                assert np.array_equal(u, v), (m, n, k, act, name, bias is None)
