"""fp.save / fp.load: exact round trips of every state, safetensors interop
both ways, atomic writes, and fuzzed files that must all raise ValueError."""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import tracemalloc
from collections import OrderedDict

import numpy as np
import pytest

import fusedprop as fp
from fusedprop import nn, optim
from fusedprop import serialization

OPTIMIZERS = {
    "sgd_momentum": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "sgd_nesterov": lambda p: optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True),
    "adam": lambda p: optim.Adam(p, lr=1e-2),
    "adam_amsgrad": lambda p: optim.Adam(p, lr=1e-2, weight_decay=1e-2, amsgrad=True),
    "adamw": lambda p: optim.AdamW(p, lr=1e-2),
    "adamw_amsgrad": lambda p: optim.AdamW(p, lr=1e-2, amsgrad=True),
}


def _model(dtype, seed=0):
    fp.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7, dtype=dtype), nn.ReLU(), nn.Linear(7, 3, bias=False, dtype=dtype))


def assert_same(a, b, where="obj"):
    """Same types all the way down, arrays and floats bitwise."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, np.ndarray):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), where
        assert a.tobytes() == b.tobytes(), where
        assert b.flags.writeable and b.flags.c_contiguous and b.flags.owndata, where
    elif isinstance(a, dict):
        assert [(type(k), k) for k in a] == [(type(k), k) for k in b], where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), where
    elif isinstance(a, float):
        assert struct.pack("<d", a) == struct.pack("<d", b), f"{where}: {a!r} vs {b!r}"
    else:
        assert a == b, where


def _trained(dtype, opt_name, backend_rng):
    model = _model(dtype)
    opt = OPTIMIZERS[opt_name](model.parameters())
    step = fp.TrainStep(model, nn.MSELoss(), opt)
    for _ in range(3):
        step(backend_rng.standard_normal((6, 5)), backend_rng.standard_normal((6, 3)))
    return model, opt, step


# ------------------------------------------------------------- round trips

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opt_name", OPTIMIZERS)
def test_model_and_optimizer_state_round_trip_bitwise(backend, rng, tmp_path, dtype, opt_name):
    model, opt, step = _trained(dtype, opt_name, rng)
    obj = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}
    path = tmp_path / "state.safetensors"
    fp.save(obj, path)
    loaded = fp.load(path)
    assert_same(obj, loaded)
    state = loaded["optimizer"]["state"]
    if opt_name.startswith("adam"):
        assert type(state[0]["step"]) is float and state[0]["step"] == 3.0
        assert ("max_exp_avg_sq" in state[0]) == opt_name.endswith("amsgrad")
    else:
        assert set(state[0]) == {"momentum_buffer"}
    # The restored pair continues exactly as the original.
    model2 = _model(dtype, seed=99)
    opt2 = OPTIMIZERS[opt_name](model2.parameters())
    model2.load_state_dict(loaded["model"])
    opt2.load_state_dict(loaded["optimizer"])
    step2 = fp.TrainStep(model2, nn.MSELoss(), opt2)
    x, y = rng.standard_normal((6, 5)), rng.standard_normal((6, 3))
    assert step(x, y) == step2(x, y)
    assert_same(model.state_dict(), model2.state_dict())
    assert_same(opt.state_dict(), opt2.state_dict())


def test_every_value_kind_round_trips(tmp_path):
    nan_payload = struct.unpack("<d", struct.pack("<Q", 0x7FF8_0000_DEAD_BEEF))[0]
    obj = OrderedDict([
        ("floats", [0.1, -0.0, 1e-308, 5e-324, 1.7976931348623157e308, 1e16, 3.0, float("inf"), float("-inf"),
                    float("nan"), nan_payload]),
        ("ints", (0, -1, 2**64 + 1, -(10**60))),
        ("misc", [None, True, False, "", "héllo \u2603 \"quoted\" \\", "lone \udc80 surrogate", {}, [], ()]),
        ("odd keys", {"\udc80": np.ones(1), "__metadata__": np.ones(2), "new\nline": np.ones(3)}),
        (7, {"int key": 1, 3: "three", "": "empty key"}),
        ("scalars", [np.float32(1.5), np.float64(-0.0), np.float16(2.0), np.int8(-3), np.uint64(2**64 - 1),
                     np.bool_(True), np.int64(-5)]),
        ("arrays", {str(np.dtype(t)): np.arange(6).reshape(2, 3).astype(t)
                    for t in (np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
                              np.uint8, np.uint16, np.uint32, np.uint64, np.bool_)}),
        ("odd arrays", [np.array(2.5), np.zeros((0, 4), np.float32), np.zeros((3, 0, 2)), np.ones(1, bool)]),
        ("generator", np.random.default_rng(5).bit_generator.state),
        ("nested", {"a": {"b": {"c": [np.full(3, np.nan, np.float32), {"d": (1, [2.5])}]}}}),
        ("same name", {"a.b": np.ones(2)}),
        ("a", {"b": np.zeros(2)}),  # its dotted name collides with the one above
    ])
    path = tmp_path / "kinds.safetensors"
    fp.save(obj, path)
    assert_same(obj, fp.load(path))


def test_arrays_come_back_contiguous_native_and_owned(tmp_path):
    base = np.arange(24.0).reshape(4, 6)
    obj = {"strided": base[::2, 1::2], "fortran": np.asfortranarray(base), "big_endian": base.astype(">f4"),
           "read_only": np.frombuffer(b"\x01\x02\x03\x04", np.uint8)}
    fp.save(obj, tmp_path / "a.safetensors")
    loaded = fp.load(tmp_path / "a.safetensors")
    for k, a in obj.items():
        b = loaded[k]
        np.testing.assert_array_equal(a, b)
        assert b.dtype == a.dtype.newbyteorder("=") and b.flags.c_contiguous and b.flags.writeable


def test_random_structures_round_trip(tmp_path):
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    hnp = pytest.importorskip("hypothesis.extra.numpy")
    dtypes = st.sampled_from([np.float16, np.float32, np.float64, np.int8, np.int32, np.uint16, np.uint64, np.bool_])
    arrays = dtypes.flatmap(lambda t: hnp.arrays(t, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0,
                                                                      max_side=3)))
    leaves = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | arrays)
    keys = st.text(max_size=6) | st.integers(-5, 5)
    tree = st.recursive(leaves, lambda kids: st.lists(kids, max_size=3) | st.tuples(kids, kids)
                        | st.dictionaries(keys, kids, max_size=3), max_leaves=12)
    path = tmp_path / "h.safetensors"

    @hypothesis.settings(max_examples=60, deadline=None, derandomize=True)
    @hypothesis.given(st.dictionaries(keys, tree, max_size=4))
    def check(obj):
        fp.save(obj, path)
        assert_same(obj, fp.load(path))

    check()


def test_saved_file_is_deterministic_and_leaves_no_temporary(tmp_path):
    model, opt, _ = _trained(np.float32, "adam", np.random.default_rng(0))
    obj = {"model": model.state_dict(), "optimizer": opt.state_dict()}
    fp.save(obj, tmp_path / "a.safetensors")
    fp.save(obj, tmp_path / "b.safetensors")
    fp.save(obj, tmp_path / "b.safetensors")  # over an existing file
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["a.safetensors", "b.safetensors"]


# ------------------------------------------------------------------ interop

def test_our_files_are_plain_safetensors_to_the_library(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    model, opt, _ = _trained(np.float64, "adam_amsgrad", np.random.default_rng(0))
    fp.save(model.state_dict(), tmp_path / "m.safetensors")
    plain = st_numpy.load_file(str(tmp_path / "m.safetensors"))
    assert_same(dict(model.state_dict()), {k: plain[k].copy() for k in model.state_dict()})
    assert set(plain) == set(model.state_dict())
    fp.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "both.safetensors")
    plain = st_numpy.load_file(str(tmp_path / "both.safetensors"))
    np.testing.assert_array_equal(plain["optimizer.state.0.exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    np.testing.assert_array_equal(plain["model.0.weight"], model[0].weight.data)


def test_plain_safetensors_file_loads_as_flat_dict(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    tensors = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "flags": np.array([True, False]),
               "counts": np.arange(3, dtype=np.uint16), "half": np.ones(2, np.float16)}
    st_numpy.save_file(tensors, str(tmp_path / "plain.safetensors"), metadata={"format": "np"})
    loaded = fp.load(tmp_path / "plain.safetensors")
    assert type(loaded) is dict and set(loaded) == set(tensors)
    for k, a in tensors.items():
        assert_same(a, loaded[k], k)


def test_pytorch_state_dict_loads_into_fusedprop_and_back(tmp_path, rng):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3, bias=False))
    st_torch.save_file(tm.state_dict(), str(tmp_path / "torch.safetensors"))
    model = _model(np.float32, seed=3)
    model.load_state_dict(fp.load(tmp_path / "torch.safetensors"))
    for k, v in tm.state_dict().items():
        assert model.state_dict()[k].tobytes() == v.numpy().tobytes()
    x = rng.standard_normal((4, 5)).astype(np.float32)
    np.testing.assert_allclose(model(x).numpy(), tm(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    # ... and ours into PyTorch, after a fusedprop training step.
    opt = optim.SGD(model.parameters(), lr=0.1)
    fp.TrainStep(model, nn.MSELoss(), opt)(x, rng.standard_normal((4, 3)))
    fp.save(model.state_dict(), tmp_path / "ours.safetensors")
    tm2 = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3, bias=False))
    tm2.load_state_dict(st_torch.load_file(str(tmp_path / "ours.safetensors")))
    for k, v in model.state_dict().items():
        assert tm2.state_dict()[k].numpy().tobytes() == v.tobytes()


def test_pytorch_only_dtype_is_refused_by_name(tmp_path):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    st_torch.save_file({"w": torch.ones(2, dtype=torch.bfloat16)}, str(tmp_path / "bf16.safetensors"))
    with pytest.raises(ValueError, match=r"bf16\.safetensors.*'w' has dtype 'BF16'"):
        fp.load(tmp_path / "bf16.safetensors")


# --------------------------------------------------------- atomic writes

def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "s.safetensors"
    fp.save({"v": np.ones(3)}, path)
    before = path.read_bytes()

    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(serialization.os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        fp.save({"v": np.zeros(3)}, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["s.safetensors"]


def test_write_fsyncs_the_file_and_the_folder(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def record(fd):
        synced.append(os.path.realpath(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else fd)
        real(fd)

    monkeypatch.setattr(serialization.os, "fsync", record)
    fp.save({"v": np.ones(3)}, tmp_path / "s.safetensors")
    assert len(synced) == 2
    if os.path.exists("/proc/self/fd"):
        assert synced[0].endswith(".tmp") and synced[1] == os.path.realpath(tmp_path)


# ------------------------------------------------------------------ errors

@pytest.mark.parametrize("obj, match", [
    ([np.ones(2)], "obj must be a dict"),
    (np.ones(2), "obj must be a dict"),
    ({"a": {1.5: 2}}, r"keys of obj\['a'\] must be str or int, got float"),
    ({"a": {True: 2}}, "must be str or int, got bool"),
    ({"a": {(1, 2): 2}}, "must be str or int, got tuple"),
    ({"a": {1, 2}}, r"obj\['a'\] is a set"),
    ({"a": [object()]}, r"obj\['a'\]\[0\] is a object"),
    ({"a": np.ones(2, complex)}, "array of dtype complex128"),
    ({"a": np.array(["x"])}, "array of dtype <U1"),
    ({"a": np.ones(2, object)}, "array of dtype object"),
    ({"a": np.complex64(1)}, "NumPy scalar of dtype complex64"),
    ({"a": fp.tensor([1.0])}, r"is a Tensor.*convert it with \.numpy\(\)"),
])
def test_save_refuses_what_it_cannot_store(tmp_path, obj, match):
    with pytest.raises(TypeError, match=match):
        fp.save(obj, tmp_path / "x.safetensors")
    assert os.listdir(tmp_path) == []


def test_save_and_load_argument_errors(tmp_path):
    loop: dict = {"a": []}
    loop["a"].append(loop)
    with pytest.raises(ValueError, match=r"obj\['a'\]\[0\] contains itself"):
        fp.save(loop, tmp_path / "x.safetensors")
    deep: dict = {}
    node = deep
    for _ in range(150):
        node["k"] = {}
        node = node["k"]
    with pytest.raises(ValueError, match="nested more than 100 levels"):
        fp.save(deep, tmp_path / "x.safetensors")
    for fn in (lambda p: fp.save({}, p), fp.load):
        with pytest.raises(TypeError, match="path must be a str or os.PathLike, got int"):
            fn(3)
        with pytest.raises(ValueError, match="path must not be empty"):
            fn("")
    with pytest.raises(FileNotFoundError):
        fp.load(tmp_path / "missing.safetensors")
    with pytest.raises(FileNotFoundError):
        fp.save({}, tmp_path / "no folder" / "x.safetensors")
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------ fuzzed files

@pytest.fixture
def good_file(tmp_path):
    model, opt, _ = _trained(np.float32, "adam_amsgrad", np.random.default_rng(1))
    path = tmp_path / "good.safetensors"
    fp.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "note": "x", "loss": [0.5, float("nan")]},
            path)
    return path


def _header_end(blob: bytes) -> int:
    return 8 + int.from_bytes(blob[:8], "little")


def _write(path, blob: bytes) -> None:
    # Not write_bytes: an O_TRUNC open costs milliseconds on some file systems, ftruncate does not.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, blob, 0)
    finally:
        os.close(fd)


def _refused(path, blob: bytes, match=None) -> None:
    _write(path, blob)
    with pytest.raises(ValueError, match=match) as info:
        fp.load(path)
    assert repr(str(path)) in str(info.value)


def test_truncated_files_are_refused(good_file, tmp_path):
    blob = good_file.read_bytes()
    end = _header_end(blob)
    rng = np.random.default_rng(2)
    cuts = list(range(end + 1)) + rng.integers(end + 1, len(blob), 40).tolist() + [len(blob) - 1]
    bad = tmp_path / "cut.safetensors"
    _write(bad, blob)
    fd = os.open(bad, os.O_RDWR)
    try:
        for cut in sorted(set(cuts), reverse=True):  # only shrinking: fast on every file system
            os.ftruncate(fd, cut)
            with pytest.raises(ValueError, match="cut.safetensors"):
                fp.load(bad)
    finally:
        os.close(fd)
    _refused(bad, blob + b"\0", "cover")  # a byte too many


def test_every_byte_is_covered_by_the_checksum(good_file, tmp_path):
    blob = bytearray(good_file.read_bytes())
    rng = np.random.default_rng(3)
    # One flipped bit at every byte (length, header, padding, data), then a deterministic sample of more.
    flips = [(i, int(rng.integers(8))) for i in range(len(blob))]
    flips += [(int(i), int(b)) for i, b in zip(rng.integers(0, len(blob), 400), rng.integers(0, 8, 400))]
    fd = os.open(good_file, os.O_RDWR)
    try:
        for i, bit in flips:  # flipped in place: no file is rewritten
            os.pwrite(fd, bytes([blob[i] ^ (1 << bit)]), i)
            with pytest.raises(ValueError, match="good.safetensors"):
                fp.load(good_file)
            os.pwrite(fd, bytes([blob[i]]), i)
    finally:
        os.close(fd)
    assert fp.load(good_file)["note"] == "x"


def test_random_bytes_are_refused(tmp_path):
    rng = np.random.default_rng(4)
    bad = tmp_path / "random.bin"
    for size in [0, 1, 7, 8, 9, 16, 100, 1000, 5000]:
        for _ in range(10):
            blob = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
            _refused(bad, blob)
            if size > 8:  # a plausible header length in front of random bytes
                _refused(bad, max(0, size - 8 - int(rng.integers(0, 3))).to_bytes(8, "little") + blob[8:])
    for text in [b"", b"{}", b"not safetensors", json.dumps({"a": 1}).encode(), b"PK\x03\x04" + bytes(100)]:
        _refused(bad, text)
    np.savez(tmp_path / "arrays.npz", a=np.ones(3))
    _refused(tmp_path / "arrays.npz", (tmp_path / "arrays.npz").read_bytes())
    with pytest.raises(OSError):  # as open() does
        fp.load(tmp_path)


def _plain(header, data: bytes = b"", length=None) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return (len(text) if length is None else length).to_bytes(8, "little") + text + data


def _t(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


CRAFTED = {
    "huge header length": (_plain({}, length=2**64 - 1), "header length field"),
    "header longer than file": (_plain({"a": _t("F32", [1], 0, 4)}, bytes(4), length=10**6), "header length"),
    "header length 0": (_plain(b"", length=0), "header length"),
    "not json": (_plain(b"{not json}   "), "not valid JSON"),
    "not utf-8": (_plain(b'{"\xff": 1}'), "not UTF-8"),
    "json list": (_plain(b"[1, 2]  "), "not an object"),
    "deep json": (_plain(b"[" * 100_000 + b"]" * 100_000), "not valid JSON"),
    "NaN constant": (_plain(b'{"a": NaN}'), "not valid JSON"),
    "duplicate key": (_plain(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                             b'"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\0"), "duplicate key"),
    "huge tensor": (_plain({"a": _t("F64", [2**40, 2**40], 0, 8)}, bytes(8)), "needs"),
    "huge offsets": (_plain({"a": _t("U8", [1], 2**62, 2**62 + 1)}, bytes(1)), "leaves a gap"),
    "offsets past the data": (_plain({"a": _t("U8", [8], 0, 8)}, bytes(4)), "cover 8 bytes of data but the file "
                                                                            "holds 4"),
    "overlapping": (_plain({"a": _t("F32", [2], 0, 8), "b": _t("F32", [2], 4, 12)}, bytes(12)), "overlaps"),
    "same offsets": (_plain({"a": _t("F32", [2], 0, 8), "b": _t("F32", [2], 0, 8)}, bytes(8)), "overlaps"),
    "gap": (_plain({"a": _t("F32", [1], 0, 4), "b": _t("F32", [1], 8, 12)}, bytes(12)), "gap"),
    "reversed offsets": (_plain({"a": _t("F32", [1], 4, 0)}, bytes(4)), "needs 4 bytes"),
    "negative dim": (_plain({"a": _t("F32", [-1], 0, 4)}, bytes(4)), "shape"),
    "bool dim": (_plain({"a": _t("F32", [True], 0, 4)}, bytes(4)), "shape"),
    "float dim": (_plain({"a": _t("F32", [1.0], 0, 4)}, bytes(4)), "shape"),
    "many dims": (_plain({"a": _t("U8", [1] * 100, 0, 1)}, bytes(1)), "shape"),
    "unknown dtype": (_plain({"a": _t("F128", [1], 0, 16)}, bytes(16)), "dtype 'F128'"),
    "missing field": (_plain({"a": {"dtype": "F32", "shape": [1]}}, bytes(4)), "exactly dtype"),
    "extra field": (_plain({"a": dict(_t("F32", [1], 0, 4), x=1)}, bytes(4)), "exactly dtype"),
    "metadata not strings": (_plain({"__metadata__": {"a": 1}}), "__metadata__"),
    "bad bool bytes": (_plain({"a": _t("BOOL", [2], 0, 2)}, b"\x01\x07"), "bool tensor"),
    "half our metadata": (_plain({"__metadata__": {"fusedprop.format": "fusedprop.state"}}), "lacks"),
}


@pytest.mark.parametrize("name", CRAFTED)
def test_crafted_headers_are_refused_without_large_allocations(tmp_path, name):
    blob, match = CRAFTED[name]
    path = tmp_path / "crafted.safetensors"
    path.write_bytes(blob)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=match):
            fp.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * len(blob) + 2**20, f"{name}: {peak} bytes allocated for a {len(blob)}-byte file"


def _ours(structure, tensors: dict, version="1", fmt="fusedprop.state") -> bytes:
    """A file in our format, built from the format's description in
    serialization.py (an independent writer: the checksum is the SHA-256 of
    the file with its own 64 hex digits replaced by zeros)."""
    header, offset, data = {}, 0, b""
    for name, a in tensors.items():
        header[name] = _t(serialization._NAMES[a.dtype], list(a.shape), offset, offset + a.nbytes)
        offset += a.nbytes
        data += a.tobytes()
    header["__metadata__"] = {"fusedprop.format": fmt, "fusedprop.version": version,
                              "fusedprop.structure": structure if isinstance(structure, str) else json.dumps(structure),
                              "fusedprop.sha256": "0" * 64}
    text = json.dumps(header, separators=(",", ":")).encode()
    blob = _plain(text, data)
    digest = hashlib.sha256(blob).hexdigest()
    return blob.replace(b'"fusedprop.sha256":"' + b"0" * 64 + b'"', b'"fusedprop.sha256":"' + digest.encode() + b'"')


def test_independent_writer_agrees_with_load(tmp_path):
    structure = {"dict": [["w", {"tensor": "w"}], ["n", 3], ["f", {"float": struct.pack(">d", -math.inf).hex()}]]}
    path = tmp_path / "ours.safetensors"
    path.write_bytes(_ours(structure, {"w": np.arange(3.0)}))
    assert_same(fp.load(path), {"w": np.arange(3.0), "n": 3, "f": -math.inf})


OURS_BROKEN = {
    "newer version": (_ours({"dict": []}, {}, version="2"), "format version 2, newer than this fusedprop reads"),
    "bad version": (_ours({"dict": []}, {}, version="1.0"), "not a number"),
    "other format": (_ours({"dict": []}, {}, fmt="other"), "format is 'other'"),
    "missing tensor": (_ours({"dict": [["w", {"tensor": "v"}]]}, {"w": np.ones(1)}), "bad node"),
    "unreferenced tensor": (_ours({"dict": []}, {"w": np.ones(1)}), "not referenced"),
    "tensor twice": (_ours({"list": [{"tensor": "w"}, {"tensor": "w"}]}, {"w": np.ones(1)}), "referenced twice"),
    "not a dict": (_ours({"list": []}, {}), "not a dict"),
    "bare json list": (_ours([1, 2], {}), "unknown node"),
    "unknown tag": (_ours({"set": [1]}, {}), "bad node"),
    "two tags": (_ours({"list": [], "dict": []}, {}), "unknown node"),
    "bool key": (_ours({"dict": [[True, 1]]}, {}), "bad dict entry"),
    "duplicate key": (_ours({"dict": [["a", 1], ["a", 2]]}, {}), "bad dict entry"),
    "finite float tag": (_ours({"dict": [["f", {"float": struct.pack(">d", 1.0).hex()}]]}, {}), "bad node"),
    "bad scalar": (_ours({"dict": [["s", {"scalar": "float32", "hex": "00"}]]}, {}), "bad node"),
    "object scalar": (_ours({"dict": [["s", {"scalar": "object", "hex": "00" * 8}]]}, {}), "bad node"),
    "deep structure": (_ours({"dict": [["a", json.loads('{"list":[' * 150 + "]}" * 150)]]}, {}), "nested more"),
    "structure not json": (_ours('{"dict": [}', {}), "structure is not valid JSON"),
}


@pytest.mark.parametrize("name", OURS_BROKEN)
def test_broken_files_of_our_format_are_refused(tmp_path, name):
    blob, match = OURS_BROKEN[name]
    path = tmp_path / "ours.safetensors"
    path.write_bytes(blob)
    with pytest.raises(ValueError, match=match):
        fp.load(path)


def test_a_newer_version_written_by_save_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(serialization, "FORMAT_VERSION", 2)
    fp.save({"a": 1}, tmp_path / "v2.safetensors")
    monkeypatch.setattr(serialization, "FORMAT_VERSION", 1)
    with pytest.raises(ValueError, match=r"v2\.safetensors.*format version 2, newer"):
        fp.load(tmp_path / "v2.safetensors")


def test_import_does_not_load_safetensors():
    import subprocess
    import sys

    code = "import sys, fusedprop; print('safetensors' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]
