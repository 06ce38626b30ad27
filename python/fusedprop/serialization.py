"""``fp.save`` and ``fp.load``: state dicts in safetensors files, safe to load
and checked end to end.

A file is an ordinary safetensors file: an 8-byte little-endian header length
N, N bytes of JSON header (padded with spaces to a multiple of 8), then the
tensor bytes, tensor after tensor. Everything that is not a tensor lives in
the header's ``__metadata__`` (string -> string):

``fusedprop.format``     ``"fusedprop.state"``
``fusedprop.version``    ``"1"``; a reader refuses a higher one
``fusedprop.structure``  the object as JSON, each array replaced by a
                         reference to its tensor (the grammar is in _encode)
``fusedprop.sha256``     SHA-256 of the whole file with these 64 hex digits
                         replaced by 64 ``0``: every byte of the file is
                         covered (length, header, padding and data)

Loading never unpickles or evaluates anything: the header is parsed here,
bounds-checked against the real file size before anything is allocated, the
checksum is verified, and only then are the bytes handed to the safetensors
library. Safetensors files without fusedprop's metadata (e.g. written by
``safetensors.torch.save_file(torch_model.state_dict(), path)``) load as a
flat dict of NumPy arrays; they carry no checksum, so only their structure
can be checked.
"""

from __future__ import annotations

import hashlib
import math
import os
import stat
import struct
from collections import OrderedDict

import numpy as np

__all__ = ["save", "load"]

FORMAT = "fusedprop.state"
FORMAT_VERSION = 1
_KEYS = ("fusedprop.format", "fusedprop.version", "fusedprop.structure", "fusedprop.sha256")
_DIGEST_KEY = "fusedprop.sha256"
_ZERO_DIGEST = "0" * 64
# The safetensors library's own limit: a header is metadata, never the data.
_MAX_HEADER = 100_000_000
_MAX_DEPTH = 100
_MAX_NDIM = 64

# safetensors dtype names <-> NumPy (the dtypes both NumPy and PyTorch hold).
_DTYPES = {
    "F16": np.float16, "F32": np.float32, "F64": np.float64,
    "I8": np.int8, "I16": np.int16, "I32": np.int32, "I64": np.int64,
    "U8": np.uint8, "U16": np.uint16, "U32": np.uint32, "U64": np.uint64,
    "BOOL": np.bool_,
}
_NAMES = {np.dtype(t): name for name, t in _DTYPES.items()}


# ------------------------------------------------------------------ saving

def save(obj, path) -> None:
    """Write ``obj`` to ``path`` as a safetensors file, atomically.

    ``obj`` is a dict: a model's or an optimizer's ``state_dict()``, or a dict
    of such and of plain values. Allowed inside: dicts (and OrderedDicts) with
    str or int keys, lists, tuples, NumPy arrays of a float, int, uint or bool
    dtype, NumPy scalars of those dtypes, and Python ``None``, ``bool``,
    ``int``, ``float`` (NaN, ±Inf and -0.0 included) and ``str``. ``fp.load``
    gives back the same structure with the same types and bitwise-equal
    values (arrays C-contiguous, in native byte order). Anything else raises
    TypeError naming where it is.

    The file is written to a temporary file in the same folder, flushed and
    fsynced, renamed over ``path`` and the folder fsynced: a crash at any
    moment leaves the old file or the new one, never a torn one.
    """
    path = _check_path(path, "save")
    if not isinstance(obj, dict):
        raise TypeError(f"save: obj must be a dict (a state_dict or a dict of them), got {type(obj).__name__}")
    tensors: list = []  # (name, contiguous little-endian array)
    structure = _encode(obj, "obj", tensors, set(), {"__metadata__"}, [], 0)
    meta = {"fusedprop.format": FORMAT, "fusedprop.version": str(FORMAT_VERSION),
            "fusedprop.structure": _dumps(structure), _DIGEST_KEY: _ZERO_DIGEST}
    # Widest items first: the data starts 8-aligned, so every tensor is aligned.
    tensors.sort(key=lambda t: -t[1].dtype.itemsize)
    header: dict = {"__metadata__": meta}
    offset = 0
    for name, a in tensors:
        header[name] = {"dtype": _NAMES[a.dtype.newbyteorder("=")], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = _dumps(header).encode("ascii")
    text += b" " * (-(8 + len(text)) % 8)
    prefix = len(text).to_bytes(8, "little")
    data = [_bytes_of(a) for _, a in tensors]
    digest = hashlib.sha256(prefix)
    digest.update(text)
    for chunk in data:
        digest.update(chunk)
    text = _patch_digest(text, _ZERO_DIGEST, digest.hexdigest())
    _atomic_write(path, [prefix, text, *data])


def _encode(value, where: str, tensors: list, active: set, used: set, names: list, depth: int):
    """The JSON node for value. Grammar (every JSON object is a tag):
    null / true / false / int / string as themselves; a finite float as a JSON
    number (Python writes its shortest exact repr, with a '.' or an 'e');
    {"float": "<16 hex digits>"} a NaN or infinity (its IEEE bits);
    {"dict": [[key, node], ...]}, {"odict": ...} an OrderedDict;
    {"list": [...]}, {"tuple": [...]}; {"tensor": "<name>"} an array;
    {"scalar": "<dtype>", "hex": "<its bytes, little-endian>"} a NumPy scalar."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"save: {where} is nested more than {_MAX_DEPTH} levels deep")
    if isinstance(value, np.ndarray):
        return {"tensor": _add_tensor(value, where, tensors, used, names)}
    if isinstance(value, np.generic):
        dtype = _storable(value.dtype, where, "NumPy scalar")
        return {"scalar": dtype.name, "hex": np.asarray(value, dtype.newbyteorder("<")).tobytes().hex()}
    # Subclasses (IntEnum, a str subclass...) are saved as their base type.
    if value is None:
        return None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        value = float(value)
        return value if math.isfinite(value) else {"float": struct.pack(">d", value).hex()}
    if isinstance(value, (dict, list, tuple)):
        if id(value) in active:
            raise ValueError(f"save: {where} contains itself")
        active.add(id(value))
        try:
            if isinstance(value, dict):
                pairs = []
                for k, v in value.items():
                    if isinstance(k, bool) or not isinstance(k, (str, int)):
                        raise TypeError(f"save: the keys of {where} must be str or int, got {type(k).__name__} "
                                        f"{k!r}")
                    key = str(k) if isinstance(k, str) else int(k)
                    pairs.append([key, _encode(v, f"{where}[{k!r}]", tensors, active, used, names + [str(k)],
                                               depth + 1)])
                return {"odict" if isinstance(value, OrderedDict) else "dict": pairs}
            items = [_encode(v, f"{where}[{i}]", tensors, active, used, names + [str(i)], depth + 1)
                     for i, v in enumerate(value)]
            return {"tuple" if isinstance(value, tuple) else "list": items}
        finally:
            active.discard(id(value))
    hint = "; convert it with .numpy()" if hasattr(value, "numpy") else ""
    raise TypeError(f"save: {where} is a {type(value).__name__}; expected a NumPy array, a NumPy scalar, a dict, "
                    f"list, tuple, None, bool, int, float or str{hint}")


def _storable(dtype: np.dtype, where: str, what: str) -> np.dtype:
    if dtype.newbyteorder("=") not in _NAMES:
        raise TypeError(f"save: {where} is a {what} of dtype {dtype}; safetensors holds float16/32/64, "
                        "int8-64, uint8-64 and bool")
    return dtype.newbyteorder("=")


def _add_tensor(a: np.ndarray, where: str, tensors: list, used: set, names: list) -> str:
    dtype = _storable(a.dtype, where, "array")
    # The dotted path is the tensor's name, so PyTorch's load_file gives the
    # keys of a state dict as they are; odd or taken names get a generated one.
    name = ".".join(names)
    if not name or not (name.isascii() and name.isprintable()) or name in used:
        i = len(tensors)
        while f"tensor.{i}" in used:
            i += 1
        name = f"tensor.{i}"
    used.add(name)
    # asarray, not ascontiguousarray: that one turns a 0-d array into shape (1,).
    tensors.append((name, np.asarray(a, dtype=dtype.newbyteorder("<"), order="C")))
    return name


def _bytes_of(a: np.ndarray) -> memoryview:
    return memoryview(a.reshape(-1).view(np.uint8))


def _dumps(value) -> str:
    import json  # here, not at the top: import fusedprop stays light

    return json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _digest_field(hexdigest: str) -> bytes:
    return f'"{_DIGEST_KEY}":"{hexdigest}"'.encode("ascii")


def _patch_digest(header: bytes, old: str, new: str) -> bytes:
    field = _digest_field(old)
    if header.count(field) != 1:
        raise ValueError("the checksum field must appear exactly once in the header")
    return header.replace(field, _digest_field(new))


def _atomic_write(path: str, chunks: list) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    # os.open applies the umask, so the file gets the usual permissions.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX; Windows cannot open a folder)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder; the rename is done
        pass
    finally:
        os.close(fd)


def _check_path(path, fn: str) -> str:
    if isinstance(path, bool) or not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{fn}: path must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fsdecode(os.fspath(path))
    if not path:
        raise ValueError(f"{fn}: path must not be empty")
    return path


# ----------------------------------------------------------------- loading

def load(path) -> dict:
    """Read a file written by ``fp.save``, or any safetensors file.

    Returns what ``save`` was given (see ``save``). A plain safetensors file
    without fusedprop's metadata loads as ``{name: array}``, so
    ``model.load_state_dict(fp.load(path))`` takes a file written by
    ``safetensors.torch.save_file(torch_model.state_dict(), path)``.

    A file that is truncated, has any bit changed, is not safetensors, comes
    from a newer format version, or holds a dtype NumPy has no type for
    raises ValueError naming the file and the problem; nothing partial is
    returned. A missing or unreadable file raises OSError, as ``open`` does.
    """
    path = _check_path(path, "load")
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise _bad(path, "it is not a regular file")
        size = st.st_size
        if size < 8:
            raise _bad(path, f"it has {size} bytes, fewer than a safetensors header length (8)")
        n = int.from_bytes(f.read(8), "little")
        if n < 2 or n > size - 8 or n > _MAX_HEADER:
            raise _bad(path, f"its header length field says {n} bytes, but the file has {size} bytes "
                             f"(at most {min(size - 8, _MAX_HEADER)} possible): truncated or not safetensors")
        text = f.read(n)
        header = _parse_header(path, text)
        meta = header.pop("__metadata__", None)
        specs = _check_tensors(path, header, size - 8 - n)
        f.seek(0)
        blob = f.read(size + 1)
    if len(blob) != size or blob[8:8 + n] != text:
        raise _bad(path, "it changed while being read")
    ours = isinstance(meta, dict) and any(k in meta for k in _KEYS)
    structure = _verify(path, meta, text, blob) if ours else None
    arrays = _tensors(path, blob, specs)
    if structure is None:
        return dict(arrays)
    refs: set = set()
    obj = _decode(path, structure, arrays, refs, 0)
    unused = sorted(set(arrays) - refs)
    if unused:
        raise _bad(path, f"tensor(s) {', '.join(map(repr, unused[:5]))} are not referenced by its structure")
    if not isinstance(obj, dict):
        raise _bad(path, f"its structure is a {type(obj).__name__}, not a dict")
    return obj


def _bad(path: str, why: str) -> ValueError:
    return ValueError(f"load: cannot load {path!r}: {why}")


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def _json(path: str, text, what: str):
    import json

    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and too-long ints are ValueErrors
        raise _bad(path, f"its {what} is not valid JSON ({e})") from None


def _parse_header(path: str, text: bytes) -> dict:
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _bad(path, f"its header is not UTF-8 ({e})") from None
    header = _json(path, decoded, "header")
    if not isinstance(header, dict):
        raise _bad(path, f"its header is a JSON {type(header).__name__}, not an object")
    meta = header.get("__metadata__")
    if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        raise _bad(path, "its __metadata__ is not an object of strings")
    return header


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _check_tensors(path: str, header: dict, data_len: int) -> list:
    """(name, dtype, shape, begin, end) sorted by offset, after checking that
    the tensors tile the data exactly: sizes agree with shapes (Python ints,
    no overflow), nothing overlaps, nothing lies outside the file."""
    specs = []
    for name, spec in header.items():
        if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
            raise _bad(path, f"tensor {name!r} must have exactly dtype, shape and data_offsets")
        dtype, shape, offsets = spec["dtype"], spec["shape"], spec["data_offsets"]
        if dtype not in _DTYPES:
            raise _bad(path, f"tensor {name!r} has dtype {dtype!r}; NumPy can hold {', '.join(_DTYPES)}")
        if not (isinstance(shape, list) and len(shape) <= _MAX_NDIM and all(map(_is_count, shape))):
            raise _bad(path, f"tensor {name!r} has shape {shape!r}, not a list of non-negative ints")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_count, offsets))):
            raise _bad(path, f"tensor {name!r} has data_offsets {offsets!r}, not two non-negative ints")
        begin, end = offsets
        nbytes = math.prod(shape) * np.dtype(_DTYPES[dtype]).itemsize
        if end - begin != nbytes:
            raise _bad(path, f"tensor {name!r} of shape {shape} and dtype {dtype} needs {nbytes} bytes but its "
                             f"data_offsets {offsets} span {end - begin}")
        specs.append((name, dtype, tuple(shape), begin, end))
    specs.sort(key=lambda s: (s[3], s[4]))
    position = 0
    for name, _, _, begin, end in specs:
        if begin != position:
            why = "overlaps the tensor before it" if begin < position else "leaves a gap before it"
            raise _bad(path, f"tensor {name!r} at data_offsets [{begin}, {end}] {why}")
        position = end
    if position != data_len:
        raise _bad(path, f"its tensors cover {position} bytes of data but the file holds {data_len}: "
                         "truncated or padded")
    return specs


def _verify(path: str, meta: dict, text: bytes, blob: bytes):
    """Our metadata: format, version and checksum; returns the structure."""
    missing = [k for k in _KEYS if k not in meta]
    if missing:
        raise _bad(path, f"its fusedprop metadata lacks {', '.join(missing)}")
    if meta["fusedprop.format"] != FORMAT:
        raise _bad(path, f"its format is {meta['fusedprop.format']!r}, not {FORMAT!r}")
    version = meta["fusedprop.version"]
    if not (version.isascii() and version.isdigit()):
        raise _bad(path, f"its format version {version!r} is not a number")
    if int(version) > FORMAT_VERSION:
        raise _bad(path, f"it was written in format version {version}, newer than this fusedprop reads "
                         f"({FORMAT_VERSION}); upgrade fusedprop")
    digest = meta[_DIGEST_KEY]
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise _bad(path, "its checksum is not 64 hex digits")
    try:
        zeroed = _patch_digest(text, digest, _ZERO_DIGEST)
    except ValueError as e:
        raise _bad(path, str(e)) from None
    h = hashlib.sha256(blob[:8])
    h.update(zeroed)
    h.update(memoryview(blob)[8 + len(text):])
    if h.hexdigest() != digest:
        raise _bad(path, "its SHA-256 does not match its contents: the file is corrupt")
    return _json(path, meta["fusedprop.structure"], "structure")


def _tensors(path: str, blob: bytes, specs: list) -> dict:
    import safetensors.numpy  # lazily: import fusedprop stays light

    try:
        loaded = safetensors.numpy.load(blob)
    except Exception as e:  # the library's own check, after ours: any refusal is a bad file
        raise _bad(path, f"safetensors refused it ({type(e).__name__}: {e})") from None
    out = {}
    for name, dtype, shape, _, _ in specs:
        a = loaded.get(name)
        if a is None or a.shape != shape or a.dtype != np.dtype(_DTYPES[dtype]):
            raise _bad(path, f"safetensors read tensor {name!r} differently from its header")
        if dtype == "BOOL" and a.size and a.view(np.uint8).max() > 1:
            raise _bad(path, f"bool tensor {name!r} holds bytes other than 0 and 1")
        out[name] = np.array(a, copy=True, order="C")
    if len(loaded) != len(specs):
        raise _bad(path, "safetensors read a different set of tensors from its header")
    return out


def _decode(path: str, node, arrays: dict, refs: set, depth: int):
    if depth > _MAX_DEPTH:
        raise _bad(path, f"its structure is nested more than {_MAX_DEPTH} levels deep")
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if not isinstance(node, dict) or len(node) != (2 if "scalar" in node else 1):
        raise _bad(path, f"its structure has an unknown node {_short(node)}")
    tag = "scalar" if "scalar" in node else next(iter(node))
    body = node[tag]
    if tag == "tensor" and isinstance(body, str) and body in arrays:
        if body in refs:
            raise _bad(path, f"tensor {body!r} is referenced twice")
        refs.add(body)
        return arrays[body]
    if tag in ("dict", "odict") and isinstance(body, list):
        out = OrderedDict() if tag == "odict" else {}
        for pair in body:
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], (str, int))
                    and not isinstance(pair[0], bool)) or pair[0] in out:
                raise _bad(path, f"its structure has a bad dict entry {_short(pair)}")
            out[pair[0]] = _decode(path, pair[1], arrays, refs, depth + 1)
        return out
    if tag in ("list", "tuple") and isinstance(body, list):
        items = [_decode(path, v, arrays, refs, depth + 1) for v in body]
        return tuple(items) if tag == "tuple" else items
    if tag == "float" and isinstance(body, str) and len(body) == 16:
        try:
            value = struct.unpack(">d", bytes.fromhex(body))[0]
        except ValueError:
            value = 0.0
        if not math.isfinite(value):
            return value
    if tag == "scalar" and isinstance(body, str) and isinstance(node.get("hex"), str):
        dtype = np.dtype(body) if body in {np.dtype(t).name for t in _DTYPES.values()} else None
        try:
            raw = bytes.fromhex(node["hex"])
        except ValueError:
            raw = b""
        if dtype is not None and len(raw) == dtype.itemsize:
            return np.frombuffer(raw, dtype.newbyteorder("<")).astype(dtype)[0]
    raise _bad(path, f"its structure has a bad node {_short(node)}")


def _short(node) -> str:
    text = repr(node)
    return text if len(text) <= 80 else text[:77] + "..."
