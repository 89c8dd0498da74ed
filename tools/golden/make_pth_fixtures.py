#!/usr/bin/env python3
"""make_pth_fixtures.py — tiny PyTorch .pth files for tests/test_pth.c and the fuzz seed corpus.

    tools/.venv/bin/python tools/golden/make_pth_fixtures.py

Writes tests/data/pth/*.pth made by torch.save (wrappers, dtypes, nested dicts, shared storages,
a transposed view, scalars, pickle protocols 2 and 4, the legacy format), re-zipped variants
(deflate; ZIP64 records written by hand, checked with Python's zipfile; the entries in reverse
order), and expected.txt: for
each file the wrapper and, per tensor, dtype, shape, an exact float64 sum, a position-weighted
sum and the first values, computed here in Python so the C test checks values against torch,
not against itself. Copies valid and hostile inputs to fuzz/corpus/fuzz_pth/. Deterministic.
"""
import collections
import io
import math
import os
import shutil
import struct
import sys
import zipfile
import zlib

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "pth")
CORPUS = os.path.join(ROOT, "fuzz", "corpus", "fuzz_pth")
DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}
N_FIRST = 4


def rnd(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


def save(name, obj, **kw):
    path = os.path.join(OUT, name)
    torch.save(obj, path, **kw)
    return path


# ---- expectations ---------------------------------------------------------------------------------

def flatten(d, prefix=""):
    """What latup should load: tensors of nested dicts with '.'-joined keys, in insertion order."""
    for k, v in d.items():
        name = prefix + "." + k if prefix else k
        if isinstance(v, dict):
            yield from flatten(v, name)
        elif isinstance(v, torch.Tensor):
            yield name, v


def select(obj):
    for w in ("params_ema", "params", "state_dict"):
        if isinstance(obj.get(w), dict):
            return w, obj[w]
    return "-", obj


def fmt(x):
    return repr(float(x)) if not isinstance(x, int) else str(x)


def expectation(fname, obj):
    wrapper, sd = select(obj)
    tensors = list(flatten(sd))
    lines = [f"file {fname} {wrapper} {len(tensors)}"]
    for name, t in tensors:
        t = t.detach()
        dt = DTYPES[t.dtype]
        flat = t.reshape(-1)
        if dt == "I64":
            vals = [int(v) for v in flat.tolist()]
            s = sum(vals)
            ws = sum(v * (i % 7 + 1) for i, v in enumerate(vals))
        else:
            vals = [float(v) for v in flat.float().tolist()]  # f16/bf16 widen exactly
            s = math.fsum(vals)
            ws = math.fsum(v * (i % 7 + 1) for i, v in enumerate(vals))
        shape = " ".join(str(d) for d in t.shape)
        first = " ".join(fmt(v) for v in vals[:N_FIRST])
        lines.append(f"tensor {name} {dt} {t.dim()} {shape} {t.numel()} {fmt(s)} {fmt(ws)} "
                     f"{min(N_FIRST, len(vals))} {first}".replace("  ", " "))
    return lines


# ---- re-zipping -----------------------------------------------------------------------------------

def entries_of(path):
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


def rezip_deflate(src, dst):
    with zipfile.ZipFile(dst, "w") as z:
        for name, data in entries_of(src):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)


def rezip_reversed(src, dst):
    """The entries in reverse order: a central directory not sorted by name (torch 2.x writes
    version and .data/ after the storages; a reader that looks names up must not assume order)."""
    with zipfile.ZipFile(dst, "w") as z:
        for name, data in reversed(entries_of(src)):
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)


def rezip_zip64_local(src, dst):
    """Python's force_zip64: ZIP64 extra fields in the local headers (the directory stays 32-bit)."""
    with zipfile.ZipFile(dst, "w") as z:
        for name, data in entries_of(src):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            with z.open(info, "w", force_zip64=True) as f:
                f.write(data)


def write_zip64_central(src, dst):
    """A zip whose central directory uses ZIP64 for everything: saturated 32-bit sizes and offsets
    with the values in ZIP64 extra fields, a ZIP64 end-of-central-directory record and locator, and
    an EOCD with 0xFFFF/0xFFFFFFFF fields (what torch's writer does for files over 4 GiB)."""
    out = io.BytesIO()
    central = []
    for name, data in entries_of(src):
        nb = name.encode()
        crc = zlib.crc32(data) & 0xFFFFFFFF
        off = out.tell()
        extra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                              len(nb), len(extra)) + nb + extra + data)
        cextra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), off)
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF,
                                   0xFFFFFFFF, len(nb), len(cextra), 0, 0, 0, 0, 0xFFFFFFFF) + nb + cextra)
    cd_off = out.tell()
    for c in central:
        out.write(c)
    cd_size = out.tell() - cd_off
    z64 = out.tell()
    n = len(central)
    out.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, cd_size, cd_off))
    out.write(struct.pack("<IIQI", 0x07064B50, 0, z64, 1))
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))
    with open(dst, "wb") as f:
        f.write(out.getvalue())
    with zipfile.ZipFile(dst) as z:  # an independent reader must accept it
        assert z.testzip() is None
        assert [i.filename for i in z.infolist()] == [e[0] for e in entries_of(src)]


def make_legacy_deterministic(path):
    """The legacy format names storages by id() of the Python object: replace each key with a
    same-length counter so reruns write the same bytes."""
    import pickle

    class Unpickler(pickle.Unpickler):
        def persistent_load(self, pid):
            return None

        def find_class(self, mod, name):
            return lambda *a, **k: None

    with open(path, "rb") as f:
        for _ in range(4):  # magic, protocol version, sys info, the object
            Unpickler(f).load()
        keys = pickle.load(f)
    data = open(path, "rb").read()
    for i, k in enumerate(keys):
        new = str(i).zfill(len(k))
        data = data.replace(k.encode(), new.encode())
    with open(path, "wb") as f:
        f.write(data)


# ---- hostile seeds for the fuzzer -----------------------------------------------------------------

def torch_like_zip(pkl, data=None):
    """A stored zip laid out like torch's: archive/data.pkl, archive/data/0, archive/byteorder."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, body in [("archive/data.pkl", pkl), ("archive/byteorder", b"little")] + \
                          ([("archive/data/0", data)] if data is not None else []):
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), body)
    return buf.getvalue()


def hostile_seeds():
    tensor = (b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n"
              b"((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQ"
              b"K\x00K\x02K\x02\x86K\x02K\x01\x86\x89h\x00)RtRs.")
    seeds = {
        "hostile_os_system.pth": torch_like_zip(b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00lsR."),
        "hostile_deep_mark.pth": torch_like_zip(b"\x80\x02" + b"(" * 200 + b"."),
        "hostile_deep_list.pth": torch_like_zip(b"\x80\x02" + b"]" * 300 + b"a" * 299 + b"."),
        "hostile_memo.pth": torch_like_zip(b"\x80\x02}q\x00h\x05."),
        "hostile_numel.pth": torch_like_zip(tensor, struct.pack("<3f", 1, 2, 3)),
        "tiny_valid.pth": torch_like_zip(tensor, struct.pack("<4f", 1, 2, 3, 4)),
    }
    # raw pickles over the harness's storages archive/data/0..3 (64, 16, 8, 0 bytes)
    seeds["raw_tensor16.pkl"] = tensor.replace(b"K\x04tQK\x00K\x02K\x02\x86K\x02K\x01\x86",
                                               b"K\x10tQK\x00K\x04K\x04\x86K\x04K\x01\x86")
    seeds["raw_os_system.pkl"] = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00lsR."
    seeds["raw_codecs.pkl"] = b"\x80\x02}(X\x01\x00\x00\x00bc_codecs\nencode\nX\x03\x00\x00\x00abcX\x06\x00\x00\x00latin1\x86Ru."
    return seeds


# ---- the fixtures ---------------------------------------------------------------------------------

def sd_of(dtype, scale=1.0):
    sd = collections.OrderedDict()
    sd["conv_first.weight"] = torch.nn.Parameter((scale * rnd(4, 3, 3, 3)).to(dtype))
    sd["conv_first.bias"] = rnd(4, dtype=dtype)
    sd["layers.0.norm.weight"] = rnd(8, dtype=dtype)
    sd["layers.0.attn.qkv.weight"] = rnd(12, 4, dtype=dtype)
    return sd


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    lines = [f"# generated by tools/golden/make_pth_fixtures.py (torch {torch.__version__}); do not edit",
             "# file <name> <wrapper or -> <n tensors>",
             "# tensor <name> <dtype> <ndim> <dims...> <numel> <sum> <sum of v[i]*(i%7+1)> <k> <first k values>",
             "# fail <name> <substring of the error message>"]

    def ok(fname, obj, **kw):
        save(fname, obj, **kw)
        lines.extend(expectation(fname, obj))
        return obj

    # params_ema wins over params, whatever their order in the file
    ema = ok("ema_f32.pth", {"params": sd_of(torch.float32, 9.0), "params_ema": sd_of(torch.float32), "iter": 1000})

    # F16 with special values: -0, smallest subnormal, smallest normal, max, inf
    sd = sd_of(torch.float16)
    sd["special"] = torch.tensor([-0.0, 2 ** -24, 2 ** -14, 65504.0, float("inf"), -1.5], dtype=torch.float16)
    ok("params_f16.pth", {"params": sd, "meta": "not a tensor"})

    ok("state_dict_bf16.pth", {"epoch": 3, "state_dict": sd_of(torch.bfloat16),
                               "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "betas": (0.9, 0.99)}]}})

    class Block(torch.nn.Module):  # a real module's state_dict: OrderedDict + _metadata via BUILD
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(4, 3)
            ws = 2
            coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
            rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous() + (ws - 1)
            self.register_buffer("relative_position_index", rel[:, :, 0] * (2 * ws - 1) + rel[:, :, 1])

    ok("bare_i64.pth", Block().state_dict())

    ok("nested.pth", {"a": {"b": {"c": rnd(2, 2)}, "d": rnd(3)}, "e": rnd(1, 5), "step": 5, "name": "foo",
                      "none": None, "list": [1, 2.5, True], "big": 2 ** 70, "neg": -123456789, "f": 1.5,
                      "bytes": b"abc", "t": (1, "x")})

    flat = torch.arange(20, dtype=torch.float32) * 0.5 - 3.0
    other = rnd(3)
    w = flat[0:6].view(2, 3)
    ok("shared.pth", collections.OrderedDict([("w", w), ("b", flat[6:10]), ("c", flat[10:20].view(5, 2)),
                                              ("tied", w), ("other", other), ("row", flat[12:16].view(1, 4, 1)),
                                              # a size-1 dimension with a stride torch never checks
                                              ("col_t", flat[0:4].view(4, 1).t())]))

    ok("scalar.pth", {"s": torch.tensor(2.5), "empty": torch.zeros(0, 3), "one": torch.tensor([7.0]),
                      "i": torch.tensor(-4, dtype=torch.int64)})

    ok("proto4.pth", {"params_ema": {"x": rnd(2, 3), "y": {"z": torch.arange(5)}}, "note": "pickle protocol 4"},
       pickle_protocol=4)

    save("noncontig.pth", {"w": rnd(3, 4).t()})
    lines.append("fail noncontig.pth non-contiguous view")
    save("legacy.pth", {"w": rnd(2)}, _use_new_zipfile_serialization=False)
    make_legacy_deterministic(os.path.join(OUT, "legacy.pth"))
    lines.append("fail legacy.pth legacy PyTorch (<1.6) format")

    # the same state dict in other zip encodings
    src = os.path.join(OUT, "ema_f32.pth")
    for fname, fn in [("deflate.pth", rezip_deflate), ("zip64_local.pth", rezip_zip64_local),
                      ("zip64_central.pth", write_zip64_central), ("unsorted.pth", rezip_reversed)]:
        fn(src, os.path.join(OUT, fname))
        lines.extend(expectation(fname, ema))

    with open(os.path.join(OUT, "expected.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")

    total = 0
    for f in sorted(os.listdir(OUT)):
        size = os.path.getsize(os.path.join(OUT, f))
        total += size
        assert size < 20000, f"{f} is {size} bytes"
        print(f"{size:7d}  tests/data/pth/{f}")
    assert total < 200000, total
    print(f"{total:7d}  total")

    # fuzz seeds: every valid fixture and a few hostile inputs
    os.makedirs(CORPUS, exist_ok=True)
    for f in os.listdir(CORPUS):
        if not f.startswith("crash-"):  # regression inputs found by fuzzing are kept
            os.remove(os.path.join(CORPUS, f))
    for f in sorted(os.listdir(OUT)):
        if f.endswith(".pth"):
            shutil.copy(os.path.join(OUT, f), os.path.join(CORPUS, f))
        if f.endswith(".pth") and zipfile.is_zipfile(os.path.join(OUT, f)):
            # the bare pickle too: fuzz_pth wraps inputs starting with 0x80 in a valid archive
            with zipfile.ZipFile(os.path.join(OUT, f)) as z:
                pkl = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
                with open(os.path.join(CORPUS, f[:-4] + ".pkl"), "wb") as fh:
                    fh.write(z.read(pkl))
    for f, data in hostile_seeds().items():
        with open(os.path.join(CORPUS, f), "wb") as fh:
            fh.write(data)
    print(f"fuzz seeds: {len(os.listdir(CORPUS))} files in fuzz/corpus/fuzz_pth/")


if __name__ == "__main__":
    sys.exit(main())
