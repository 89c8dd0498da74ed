"""Tiny, dependency-free safetensors writer and strict reader (numpy only).

Format (docs/spec/formats.md): [u64 LE header length N][N bytes UTF-8 JSON][data].
JSON: {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}},
offsets relative to 8+N, row-major little-endian.

Writer: header JSON compact, in insertion order, padded with spaces so 8+N is a multiple of 8;
tensors stored contiguously in the given order. Deterministic: same input -> same bytes.
Reader: applies every rejection rule of the spec (it is the Python twin of the C reader).

Dtypes: F32, F16, BF16, I64 (also F64, I32 for convenience in tools, never written to ref_data).
BF16 values are handled as uint16 bit patterns (numpy has no bfloat16): f32 bits >> 16.
"""
import gzip
import io
import json
import struct

import numpy as np

DTYPE_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4}
_NP = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4"}


def f32_to_bf16_bits(a):
    """float32 array -> uint16 bf16 bit patterns; the values must be exactly representable."""
    a = np.ascontiguousarray(a, dtype="<f4")
    bits = a.view("<u4")
    if np.any(bits & 0xFFFF):
        raise ValueError("value not exactly representable in bfloat16")
    return (bits >> 16).astype("<u2")


def bf16_bits_to_f32(b):
    b = np.ascontiguousarray(b, dtype="<u2")
    return (b.astype("<u4") << 16).view("<f4")


def encode(arr, dtype):
    """numpy array (any float/int) -> (raw little-endian bytes) in dtype; exactness is enforced
    for the narrowing float formats."""
    arr = np.asarray(arr)
    if dtype == "BF16":
        return f32_to_bf16_bits(arr.astype(np.float32)).tobytes()
    out = np.ascontiguousarray(arr.astype(_NP[dtype]))
    if dtype in ("F16", "F32") and arr.dtype.kind == "f":
        if not np.array_equal(out.astype(np.float64), arr.astype(np.float64)):
            raise ValueError(f"value not exactly representable in {dtype}")
    if dtype in ("I64", "I32"):
        if not np.array_equal(out.astype(np.int64), arr.astype(np.int64)):
            raise ValueError(f"value not exactly representable in {dtype}")
    return out.tobytes()


def dumps(tensors, metadata=None):
    """tensors: list of (name, numpy array, dtype str). Returns the file bytes."""
    header = {}
    blobs = []
    off = 0
    names = set()
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("metadata keys and values must be str")
        header["__metadata__"] = dict(metadata)
    for name, arr, dtype in tensors:
        if name in names or name == "__metadata__":
            raise ValueError(f"duplicate or reserved tensor name {name!r}")
        names.add(name)
        raw = encode(arr, dtype)
        shape = [int(d) for d in np.shape(arr)]
        n = int(np.prod(shape, dtype=np.int64)) if shape else 1
        assert len(raw) == n * DTYPE_SIZE[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hj = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    hj += b" " * ((-(8 + len(hj))) % 8)
    return struct.pack("<Q", len(hj)) + hj + b"".join(blobs)


def gzip_bytes(data):
    """Deterministic gzip (no file name, mtime 0)."""
    bio = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=bio, mtime=0) as g:
        g.write(data)
    return bio.getvalue()


def save(path, tensors, metadata=None, compress=False):
    data = dumps(tensors, metadata)
    if compress:
        data = gzip_bytes(data)
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


class FormatError(ValueError):
    pass


def loads(data):
    """Strict parse. Returns (dict name -> (dtype, shape, numpy array as stored; BF16 as uint16 bits),
    metadata dict, ordered list of names as they appear in the header)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) < 8:
        raise FormatError("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n > 100_000_000:
        raise FormatError("header length > 100,000,000")
    if 8 + n > len(data):
        raise FormatError("header runs past end of file")
    hb = data[8 : 8 + n]
    if hb[:1] != b"{":
        raise FormatError("header does not start with '{'")
    try:
        htxt = hb.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"header is not UTF-8: {e}")

    def no_dups(pairs):
        d = {}
        for k, v in pairs:
            if k in d:
                raise FormatError(f"duplicate name {k!r}")
            d[k] = v
        return d

    try:
        header = json.loads(htxt.rstrip(" "), object_pairs_hook=no_dups)
    except json.JSONDecodeError as e:
        raise FormatError(f"header is not valid JSON: {e}")
    if not isinstance(header, dict):
        raise FormatError("header is not a JSON object")
    meta = header.pop("__metadata__", {}) or {}
    if not isinstance(meta, dict) or any(not isinstance(v, str) for v in meta.values()):
        raise FormatError("__metadata__ values must be strings")
    body = memoryview(data)[8 + n :]
    spans = []
    out = {}
    for name, info in header.items():
        dt = info.get("dtype")
        if dt not in DTYPE_SIZE:
            raise FormatError(f"tensor {name!r}: unknown dtype {dt!r}")
        shape = info.get("shape")
        b, e = info.get("data_offsets")
        cnt = 1
        for d in shape:
            if not isinstance(d, int) or d < 0:
                raise FormatError(f"tensor {name!r}: bad shape")
            cnt *= d
            if cnt > 2**62:
                raise FormatError(f"tensor {name!r}: element count overflow")
        if not (0 <= b <= e) or e - b != cnt * DTYPE_SIZE[dt]:
            raise FormatError(f"tensor {name!r}: data_offsets do not match shape*dtype size")
        spans.append((b, e, name))
        arr = np.frombuffer(body[b:e], dtype=_NP[dt]).reshape(shape)
        out[name] = (dt, tuple(shape), arr)
    pos = 0
    for b, e, name in sorted(spans):
        if b != pos:
            raise FormatError(f"tensor {name!r}: hole or overlap at {b} (expected {pos})")
        pos = e
    if pos != len(body):
        raise FormatError("tensor data does not end exactly at end of file")
    return out, meta, list(header.keys())


def load(path):
    with open(path, "rb") as f:
        return loads(f.read())


def as_float(dtype, arr):
    """Stored array -> float32/float64/int64 numpy array of its values."""
    if dtype == "BF16":
        return bf16_bits_to_f32(arr)
    if dtype == "F16":
        return arr.astype(np.float32)
    return np.array(arr)
