"""Check ref_data/ (or --dir DIR): every file parses under the strict safetensors rules, model files
have exactly the spec's checkpoint layout, and the golden tensors are reproduced

  (1) by the BasicSR-based reference (tools/reference/lua_ref.py) re-built from the stored weights, and
  (2) by an independent float64 implementation written from docs/spec/lua.md alone
      (`spec_forward` below: reflect pad, windows, roll, band mask, relative index formula,
      pixel shuffle and crop all done by hand from the spec text, weights from the file).

  (3) .pth twins (<case>/model.pth): torch.load(weights_only=True) gives exactly the tensors of
      <case>/model.safetensors.gz (names, order, dtypes, bits); only whitelisted pickle globals;
  (5) ref_data/vae/ (no diffusers needed): every weight file holds exactly the whole VAE's tensors
      (decoder + encoder, quant convs for SD) in its naming, each value equal to the bit-exact
      generator's (tools/reference/vae_ref.py gen_tensor); every golden file's weights_checksums
      are the generator's; and the independent float64 models written from CompVis' ldm model.py
      (vae_ref.LdmEncoder: every encoder tensor; vae_ref.LdmDecoder: the decoder's "out") are
      within each tensor's recorded fp32-vs-fp64 error of the golden values.
  (4) ref_data/swinir/: the PNG (decoded here by hand) equals the .npy image; each SwinIR .pth
      has the official layout/dtypes/buffers; SwinIR rebuilt from it (tools/reference/swinir_ref.py)
      reproduces every golden tensor bit-exactly; an independent float64 SwinIR (mean, reflect
      pad, the trunk of `spec_forward`, tail and pixel shuffle by hand) is within the fp32 bound.

    tools/.venv/bin/python tools/golden/check_ref_data.py [--dir ref_data]

Exit status 0 when everything passes.
"""
import argparse
import json
import math
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn.functional as F

sys.path[:0] = [os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), d) for d in ("reference", "golden")]  # the sibling groups of tools/
import lua_ref  # noqa: E402
import st_io  # noqa: E402
import swinir_ref  # noqa: E402
import vae_ref  # noqa: E402  (diffusers is only imported by make_diffusers_vae, not used here)

warnings.filterwarnings("ignore", message="torch.meshgrid")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FAIL = []


def check(cond, msg):
    if not cond:
        FAIL.append(msg)
        print("  FAIL:", msg)
    return cond


def cfg_from_meta(meta):
    c = json.loads(meta["config"])
    return dict(in_chans=c["in_chans"], embed_dim=c["embed_dim"], depths=c["depths"],
                num_heads=c["num_heads"], window_size=c["window_size"],
                mlp_ratio=c["mlp_ratio"], img_size=c["img_size"], head_feat=c["head_feat"],
                scales=c["scales"]), c


# ----------------------------------------------------------------------------------------------
# Independent implementation from docs/spec/lua.md (float64, no BasicSR code).
def spec_forward(sd, cfg, x, record):
    """sd: name -> float64/int64 torch tensors; x: [B,C,H,W] float64. Records intermediates
    under the golden names into `record`."""
    E, ws = cfg["embed_dim"], cfg["window_size"]
    shift = ws // 2
    eps = 1e-5
    B, C, H0, W0 = x.shape
    ph, pw = (ws - H0 % ws) % ws, (ws - W0 % ws) % ws
    # 0. reflect pad bottom/right, edge sample excluded: padded[H+k] = x[H-2-k]
    assert ph < H0 and pw < W0
    rows = list(range(H0)) + [H0 - 2 - k for k in range(ph)]
    cols = list(range(W0)) + [W0 - 2 - k for k in range(pw)]
    xp = x[:, :, rows][:, :, :, cols]
    H, W = H0 + ph, W0 + pw
    record["input"], record["pad"] = x, xp

    def conv(t, name):
        return F.conv2d(t, sd[name + ".weight"], sd[name + ".bias"], padding=1)

    def ln(t, name):
        mu = t.mean(-1, keepdim=True)
        var = ((t - mu) ** 2).mean(-1, keepdim=True)
        return (t - mu) / torch.sqrt(var + eps) * sd[name + ".weight"] + sd[name + ".bias"]

    def lin(t, name):
        return t @ sd[name + ".weight"].T + sd[name + ".bias"]

    def tokens(f):  # [B,E,H,W] -> [B,H*W,E], token = h*W + w
        return f.permute(0, 2, 3, 1).reshape(B, H * W, E)

    def image(t):
        return t.reshape(B, H, W, E).permute(0, 3, 1, 2)

    f0 = conv(xp, "conv_first")
    record["conv_first"] = f0
    t = ln(tokens(f0), "patch_embed.norm")
    record["patch_embed"] = t
    N = ws * ws
    # relative index from the formula
    ya, xa = np.divmod(np.arange(N), ws)
    rel = ((ya[:, None] - ya[None, :] + ws - 1) * (2 * ws - 1) + (xa[:, None] - xa[None, :] + ws - 1))
    rel = torch.from_numpy(rel)

    def band(n):
        lab = np.zeros(n, dtype=np.int64)
        lab[n - ws: n - shift] = 1
        lab[n - shift:] = 2
        return lab

    lab = torch.from_numpy(3 * band(H)[:, None] + band(W)[None, :])  # [H,W]

    def part(u):  # [B,H,W,X] -> [B*nW, N, X], windows row-major, batch-major
        X = u.shape[-1]
        u = u.reshape(B, H // ws, ws, W // ws, ws, X).permute(0, 1, 3, 2, 4, 5)
        return u.reshape(-1, N, X)

    def unpart(u):
        X = u.shape[-1]
        u = u.reshape(B, H // ws, W // ws, ws, ws, X).permute(0, 1, 3, 2, 4, 5)
        return u.reshape(B, H, W, X)

    lw = part(lab.reshape(1, H, W, 1).expand(B, H, W, 1).double())[..., 0]  # [B*nW, N]
    shifted_mask = torch.where(lw[:, :, None] != lw[:, None, :], -100.0, 0.0).double()

    for i, (depth, nh) in enumerate(zip(cfg["depths"], cfg["num_heads"])):
        r = t
        for j in range(depth):
            p = f"layers.{i}.residual_group.blocks.{j}."
            g = f"layers.{i}.blocks.{j}"
            u = ln(t, p + "norm1")
            record[g + ".norm1"] = u
            u = u.reshape(B, H, W, E)
            if j % 2 == 1:
                u = torch.roll(u, shifts=(-shift, -shift), dims=(1, 2))
            u = part(u)
            qkv = lin(u, p + "attn.qkv")
            record[g + ".attn.qkv"] = qkv
            hd = E // nh
            q, k, v = qkv[..., :E], qkv[..., E:2 * E], qkv[..., 2 * E:]
            heads = lambda z: z.reshape(z.shape[0], N, nh, hd).permute(0, 2, 1, 3)  # noqa: E731
            q, k, v = heads(q), heads(k), heads(v)
            a = (q * hd ** -0.5) @ k.transpose(-1, -2)
            table = sd[p + "attn.relative_position_bias_table"]
            a = a + table[rel.reshape(-1)].reshape(N, N, nh).permute(2, 0, 1)[None]
            if j % 2 == 1:
                a = a + shifted_mask[:, None]
            a = torch.softmax(a, -1)
            o = (a @ v).permute(0, 2, 1, 3).reshape(-1, N, E)
            record[g + ".attn.out"] = o
            o = lin(o, p + "attn.proj")
            record[g + ".attn.proj"] = o
            o = unpart(o)
            if j % 2 == 1:
                o = torch.roll(o, shifts=(shift, shift), dims=(1, 2))
            t = t + o.reshape(B, H * W, E)
            record[g + ".attn_res"] = t
            u = ln(t, p + "norm2")
            record[g + ".norm2"] = u
            hdn = lin(u, p + "mlp.fc1")
            hdn = 0.5 * hdn * (1.0 + torch.erf(hdn / math.sqrt(2.0)))
            record[g + ".mlp.act"] = hdn
            m = lin(hdn, p + "mlp.fc2")
            record[g + ".mlp.fc2"] = m
            t = t + m
            record[g] = t
        c = conv(image(t), f"layers.{i}.conv")
        record[f"layers.{i}.conv"] = c
        t = tokens(c) + r
        record[f"layers.{i}"] = t
    t = ln(t, "norm")
    record["norm"] = t
    f = conv(image(t), "conv_after_body") + f0
    record["conv_after_body"] = f

    def shuffle(z):  # out[c, h*2+i, w*2+j] = in[c*4 + i*2 + j, h, w]
        b, c4, h, w = z.shape
        c = c4 // 4
        return z.reshape(b, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c, 2 * h, 2 * w)

    for s in cfg["scales"]:
        p = f"heads.x{s}"
        y = conv(f, p + ".conv_before.0")
        y = torch.where(y >= 0, y, 0.01 * y)
        record[p + ".conv_before"] = y
        for st in range(int(round(math.log2(s)))):
            y = conv(y, f"{p}.upsample.{2 * st}")
            record[f"{p}.upsample.{2 * st}"] = y
            y = shuffle(y)
            record[f"{p}.upsample.{2 * st + 1}"] = y
        y = conv(y, p + ".conv_last")
        record[p + ".conv_last"] = y
        record[f"out.x{s}"] = y[:, :, : H0 * s, : W0 * s]


# ----------------------------------------------------------------------------------------------
def reader_selftest():
    """The strict reader accepts what the writer makes and rejects the spec's bad cases."""
    import struct
    good = st_io.dumps([("a", np.arange(6, dtype=np.float32).reshape(2, 3), "F32"),
                        ("b", np.array([1.5, -2.0], dtype=np.float32), "BF16"),
                        ("c", np.array([0.5], dtype=np.float32), "F16"),
                        ("i", np.array([[1, 2]], dtype=np.int64), "I64")], {"k": "v"})
    t, m, n = st_io.loads(good)
    check(n == ["a", "b", "c", "i"] and m == {"k": "v"} and (8 + struct.unpack("<Q", good[:8])[0])
          % 8 == 0, "reader self-test: round trip")
    check(np.array_equal(st_io.as_float(*t["b"][::2]), [1.5, -2.0]), "reader self-test: bf16")

    def hdr(obj, data=b"", pad=b""):
        h = json.dumps(obj).encode() + pad
        return struct.pack("<Q", len(h)) + h + data

    bad = {
        "short file": b"\0" * 7,
        "header past end": struct.pack("<Q", 100) + b"{}",
        "huge header": struct.pack("<Q", 100_000_001) + b"{}",
        "not an object": hdr([1]),
        "no brace": struct.pack("<Q", 3) + b" {}",
        "bad utf8": struct.pack("<Q", 3) + b"{\xff}",
        "unknown dtype": hdr({"x": {"dtype": "Q8", "shape": [1], "data_offsets": [0, 1]}}, b"0"),
        "non-string meta": hdr({"__metadata__": {"a": 1}}),
        "size mismatch": hdr({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"0" * 4),
        "hole": hdr({"x": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"0" * 8),
        "trailing data": hdr({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"0" * 5),
    }
    dup = b"{" + b",".join([b'"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}'] * 2) + b"}"
    bad["duplicate"] = struct.pack("<Q", len(dup)) + dup + b"0" * 4
    for what, data in bad.items():
        try:
            st_io.loads(data)
            check(False, f"reader self-test: accepted {what}")
        except st_io.FormatError:
            pass
    st_io.loads(hdr({}, pad=b"   "))  # trailing spaces allowed
    print(f"  reader self-test: round trip + {len(bad)} rejections OK")


def check_model_file(path):
    tensors, meta, names = st_io.load(path)
    cfg, cfull = cfg_from_meta(meta)
    exp = lua_ref.expected_layout(cfg)
    got = {k: shape for k, (dt, shape, a) in tensors.items()}
    check(got == exp, f"{path}: layout differs from spec")
    ok_dt = True
    for k, (dt, shape, a) in tensors.items():
        want = ("I64" if k.endswith("relative_position_index") else
                "F32" if k.endswith("attn_mask") else meta["weights_dtype"])
        ok_dt &= check(dt == want, f"{path}: {k} dtype {dt} != {want}")
    # buffers are exactly what BasicSR computes for img_size
    ref = lua_ref.make_model(cfg).state_dict()
    for k in tensors:
        if k.endswith(lua_ref.BUFFER_SUFFIXES):
            check(np.array_equal(st_io.as_float(*tensors[k][::2]), ref[k].numpy()),
                  f"{path}: buffer {k} differs from BasicSR's")
    sd = {k: torch.from_numpy(np.array(st_io.as_float(dt, a))) for k, (dt, s, a) in
          tensors.items()}
    nparams = sum(int(np.prod(s)) for k, s in got.items()
                  if not k.endswith(lua_ref.BUFFER_SUFFIXES))
    print(f"  {os.path.relpath(path, ROOT)}: {len(tensors)} tensors, {nparams:,} params, "
          f"{meta['weights_dtype']}, layout OK, dtypes {'OK' if ok_dt else 'BAD'}")
    return cfg, sd


def check_golden(path, cfg, sd):
    tensors, meta, names = st_io.load(path)
    fp64 = json.loads(meta["fp64_maxabs"])
    check(set(fp64) == set(names), f"{path}: fp64_maxabs keys differ from tensors")
    for k, (dt, s, a) in tensors.items():
        check(dt == "F32", f"{path}: {k} is {dt}")
    gold = {k: torch.from_numpy(np.array(a)) for k, (dt, s, a) in tensors.items()}
    x = gold["input"]
    # (1) BasicSR reference from the stored weights (strict load), same thread count
    model = lua_ref.make_model(cfg)
    model.load_state_dict(sd, strict=True)
    model.eval()
    taps = {}
    hs = lua_ref.attach_taps(model, taps)
    with torch.no_grad():
        f = model.trunk(x)
        for s in cfg["scales"]:
            model.head(f, s, x.shape[2], x.shape[3])
    for h in hs:
        h.remove()
    # batch-2 files keep intermediates of batch element 0 only: compare the leading rows
    for t in (taps,):
        for k in gold:
            t[k] = t[k][: gold[k].shape[0]]
    n_exact = sum(torch.equal(taps[k], gold[k]) for k in gold)
    worst = max(float((taps[k] - gold[k]).abs().max()) for k in gold)
    check(worst <= 1e-5, f"{path}: reference rebuilt from file differs by {worst:.3e}")
    # fp64 run of the same reference, to compare the spec implementation against directly
    model64 = model.double()
    taps64 = {}
    hs = lua_ref.attach_taps(model64, taps64)
    with torch.no_grad():
        f = model64.trunk(x.double())
        for s in cfg["scales"]:
            model64.head(f, s, x.shape[2], x.shape[3])
    for h in hs:
        h.remove()
    # (2) independent spec implementation, float64
    rec = {}
    sd64 = {k: (v.double() if v.is_floating_point() else v) for k, v in sd.items()}
    with torch.no_grad():
        spec_forward(sd64, cfg, x.double(), rec)
    for t in (taps64, rec):
        for k in gold:
            t[k] = t[k][: gold[k].shape[0]]
    worst_ratio, worst_name = 0.0, ""
    d64 = max(float((rec[k] - taps64[k]).abs().max()) for k in gold)
    check(d64 <= 1e-9, f"{path}: spec fp64 forward vs BasicSR fp64 forward: {d64:.3e}")
    for k in gold:
        d = float((rec[k] - gold[k].double()).abs().max())
        lim = fp64[k][0] * 1.01 + 1e-9
        ratio = d / lim
        if ratio > worst_ratio:
            worst_ratio, worst_name = ratio, k
        check(d <= lim, f"{path}: spec forward vs golden {k}: {d:.3e} > fp64 bound {lim:.3e}")
    print(f"  {os.path.relpath(path, ROOT)}: {len(gold)} tensors; reference from file: "
          f"{n_exact}/{len(gold)} bit-exact (worst {worst:.1e}); spec fp64 forward vs BasicSR fp64 "
          f"{d64:.1e}, vs golden within the fp32-vs-fp64 bound (worst {worst_ratio:.3f} of "
          f"bound, {worst_name})")


# ----------------------------------------------------------------------------------------------
# .pth files (torch.save zip) and the SwinIR pixel-space cases
PTH_GLOBALS = {"collections OrderedDict", "torch._utils _rebuild_tensor_v2", "torch FloatStorage",
               "torch HalfStorage", "torch BFloat16Storage", "torch LongStorage"}
# opcodes listed in docs/spec/formats.md ("Opcodes seen in such files")
PTH_OPCODES = {"PROTO", "FRAME", "EMPTY_DICT", "EMPTY_LIST", "EMPTY_TUPLE", "MARK", "BINUNICODE",
               "SHORT_BINUNICODE", "BINPUT", "LONG_BINPUT", "BINGET", "LONG_BINGET", "TUPLE",
               "TUPLE1", "TUPLE2", "TUPLE3", "GLOBAL", "BINPERSID", "REDUCE", "BUILD", "SETITEM",
               "SETITEMS", "APPENDS", "BININT", "BININT1", "BININT2", "LONG1", "BINFLOAT",
               "NEWTRUE", "NEWFALSE", "NONE", "STOP"}
TORCH_OF = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64}


def check_pth_container(path):
    """Zip layout as formats.md describes it and the pickle's globals/opcodes; returns the wrapper
    dict loaded with torch.load(weights_only=True)."""
    import pickletools
    import zipfile
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        root = os.path.splitext(os.path.basename(path))[0]
        names = [i.filename for i in infos]
        check(all(i.compress_type == zipfile.ZIP_STORED for i in infos),
              f"{path}: zip entries must be stored")
        check(f"{root}/data.pkl" in names and f"{root}/version" in names,
              f"{path}: expected {root}/data.pkl and {root}/version")
        pkl = z.read(f"{root}/data.pkl")
    ops, globs = set(), set()
    for op, arg, pos in pickletools.genops(pkl):
        ops.add(op.name)
        if op.name == "GLOBAL":
            globs.add(arg)
    check(globs <= PTH_GLOBALS, f"{path}: unexpected pickle globals {sorted(globs - PTH_GLOBALS)}")
    check(ops <= PTH_OPCODES, f"{path}: opcodes outside formats.md's list {sorted(ops - PTH_OPCODES)}")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    check(isinstance(obj, dict) and len(obj) == 1, f"{path}: expected a one-key wrapper dict")
    return obj, sorted(ops), sorted(globs)


def check_pth_twin(path, st_path, want_key):
    """model.pth holds exactly the tensors of model.safetensors.gz (same names, order, dtypes,
    bits) under `want_key`."""
    obj, ops, globs = check_pth_container(path)
    if not check(list(obj) == [want_key], f"{path}: wrapper key {list(obj)} != ['{want_key}']"):
        return
    sd = obj[want_key]
    tensors, meta, names = st_io.load(st_path)
    check(list(sd) == names, f"{path}: names/order differ from {os.path.basename(st_path)}")
    bad = []
    for k in names:
        dt, shape, a = tensors[k]
        v = sd.get(k)
        if v is None or v.dtype != TORCH_OF[dt] or tuple(v.shape) != shape:
            bad.append(k)
            continue
        got = (v.view(torch.int16).numpy().view(np.uint16) if dt == "BF16" else v.numpy())
        if not np.array_equal(got, a):
            bad.append(k)
    check(not bad, f"{path}: {len(bad)} tensors differ from {st_path}, e.g. {bad[:3]}")
    print(f"  {os.path.relpath(path, ROOT)}: {{'{want_key}': {len(sd)} tensors}} identical to "
          f"{os.path.basename(st_path)} (names, order, dtypes, bits); globals {len(globs)} "
          f"whitelisted, opcodes {' '.join(ops)}")


def png_decode(path):
    """Minimal independent PNG reader (8-bit RGB, non-interlaced, filters 0-4) -> uint8 [H,W,3]."""
    import struct
    import zlib
    data = open(path, "rb").read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: PNG signature")
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc, = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        check(crc == zlib.crc32(typ + body) & 0xFFFFFFFF, f"{path}: CRC of {typ}")
        if typ == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif typ == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype, comp, filt, inter = hdr
    check((depth, ctype, comp, filt, inter) == (8, 2, 0, 0, 0), f"{path}: not 8-bit RGB")
    raw = zlib.decompress(idat)
    stride, bpp = w * 3, 3
    out = np.zeros((h, stride), dtype=np.int64)
    prev = np.zeros(stride, dtype=np.int64)
    filters = []
    for y in range(h):
        row = raw[y * (stride + 1):(y + 1) * (stride + 1)]
        ft, cur = row[0], [int(b) for b in row[1:]]
        filters.append(ft)
        for i in range(stride):
            a = cur[i - bpp] if i >= bpp else 0
            b = int(prev[i])
            c = int(prev[i - bpp]) if i >= bpp else 0
            if ft == 1:
                cur[i] = (cur[i] + a) & 255
            elif ft == 2:
                cur[i] = (cur[i] + b) & 255
            elif ft == 3:
                cur[i] = (cur[i] + (a + b) // 2) & 255
            elif ft == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out[y] = cur
        prev = out[y]
    return out.reshape(h, w, 3).astype(np.uint8), sorted(set(filters))


def swinir_case_from_meta(meta):
    c = json.loads(meta["config"])
    trunk = dict(embed_dim=c["embed_dim"], depths=c["depths"], num_heads=c["num_heads"],
                 window_size=c["window_size"], mlp_ratio=c["mlp_ratio"], img_size=c["img_size"])
    return dict(upscale=c["upscale"], upsampler=c["upsampler"], trunk=trunk,
                wdtype=meta["weights_dtype"]), c


def spec_swinir_forward(sd, case, c, x, record):
    """Independent float64 SwinIR (network_swinir.py semantics): reflect pad, (x - mean) *
    img_range, the trunk of `spec_forward` (same layer names), tail, / img_range + mean, crop."""
    s = case["upscale"]
    B, C, H0, W0 = x.shape
    mean = torch.tensor(c["rgb_mean"], dtype=torch.float32).double().view(1, 3, 1, 1)
    ws = case["trunk"]["window_size"]
    ph, pw = (ws - H0 % ws) % ws, (ws - W0 % ws) % ws
    rows = list(range(H0)) + [H0 - 2 - k for k in range(ph)]
    cols = list(range(W0)) + [W0 - 2 - k for k in range(pw)]
    rec = {}
    cfg = dict(case["trunk"], scales=[])
    # reflect padding commutes with the per-channel mean subtraction
    spec_forward(sd, cfg, (x - mean) * c["img_range"], rec)
    record.update(rec)
    record["input"], record["pad"] = x, x[:, :, rows][:, :, :, cols]

    def conv(t, name):
        return F.conv2d(t, sd[name + ".weight"], sd[name + ".bias"], padding=1)

    def shuffle(z, r):  # out[c, h*r+i, w*r+j] = in[c*r*r + i*r + j, h, w]
        b, cr, h, w = z.shape
        return (z.reshape(b, cr // (r * r), r, r, h, w).permute(0, 1, 4, 2, 5, 3)
                .reshape(b, cr // (r * r), h * r, w * r))

    f = rec["conv_after_body"]
    if case["upsampler"] == "pixelshuffle":
        y = conv(f, "conv_before_upsample.0")
        y = torch.where(y >= 0, y, 0.01 * y)
        record["conv_before_upsample"] = y
        stages = [3] if s == 3 else [2] * int(round(math.log2(s)))
        for k, r in enumerate(stages):
            y = shuffle(conv(y, f"upsample.{2 * k}"), r)
            record[f"upsample.{2 * k + 1}"] = y
        y = conv(y, "conv_last")
        record["conv_last"] = y
    else:
        y = shuffle(conv(f, "upsample.0"), s)
        record["upsample.1"] = y
    y = y / c["img_range"] + mean
    record[f"out.x{s}"] = y[:, :, : H0 * s, : W0 * s]


def is_swinir_golden(path):
    if not (os.path.basename(path).startswith("golden_") and path.endswith(".safetensors")):
        return False
    try:
        return st_io.load(path)[1].get("model") == "swinir"
    except (OSError, st_io.FormatError):
        return False


def check_swinir_dir(d):
    files = sorted(os.listdir(d))
    # the test image: PNG (decoded here) == npy == k/255 in float32
    img = {}
    for f in files:
        if f.endswith(".png"):
            k, filters = png_decode(os.path.join(d, f))
            npy = os.path.join(d, f[:-4] + ".npy")
            if not check(os.path.isfile(npy), f"{npy} missing"):
                continue
            x = np.load(npy)
            ok = (x.dtype == np.float32 and x.shape == (3,) + k.shape[:2] and np.array_equal(
                x, k.transpose(2, 0, 1).astype(np.float32) / np.float32(255)))
            check(ok, f"{npy}: not the PNG's k/255 values as float32 [3,H,W]")
            img[f[:-4]] = x
            print(f"  {os.path.relpath(os.path.join(d, f), ROOT)}: {k.shape[1]}x{k.shape[0]} RGB, "
                  f"PNG filters {filters}, equals {os.path.basename(npy)} (k/255, float32)")
    total = 0
    for f in files:
        gpath = os.path.join(d, f)
        if not is_swinir_golden(gpath):
            continue
        tensors, meta, names = st_io.load(gpath)
        case, c = swinir_case_from_meta(meta)
        wpath = os.path.join(d, meta["weights"])
        total += os.path.getsize(gpath) + os.path.getsize(wpath)
        # weights: official layout, dtypes, buffers as BasicSR computes them
        obj, ops, globs = check_pth_container(wpath)
        if not check(list(obj) == ["params"], f"{wpath}: wrapper key {list(obj)} != ['params']"):
            continue
        sd = obj["params"]
        ref = swinir_ref.make_swinir(case).net.state_dict()
        exp = swinir_ref.expected_swinir_layout(case)
        got = {k: tuple(v.shape) for k, v in sd.items()}
        check(got == exp and list(sd) == list(ref), f"{wpath}: layout differs from the official")
        for k, v in sd.items():
            want = (torch.int64 if k.endswith("relative_position_index") else
                    torch.float32 if k.endswith("attn_mask") else TORCH_OF[case["wdtype"]])
            check(v.dtype == want, f"{wpath}: {k} dtype {v.dtype} != {want}")
            if k.endswith(lua_ref.BUFFER_SUFFIXES):
                check(torch.equal(v, ref[k]), f"{wpath}: buffer {k} differs from BasicSR's")
        # (1) rebuilt SwinIR (BasicSR, network_swinir.py pad/crop) reproduces the golden bits
        gold = {k: torch.from_numpy(np.array(a)) for k, (dt, s, a) in tensors.items()}
        for k, (dt, s, a) in tensors.items():
            check(dt == "F32", f"{gpath}: {k} is {dt}")
        x = gold["input"]
        key = meta["input"]
        if key in img:
            check(torch.equal(x, torch.from_numpy(img[key])[None]), f"{gpath}: input != {key}.npy")
        model = swinir_ref.make_swinir(case)
        model.net.load_state_dict(sd, strict=True)
        model.eval()
        taps = swinir_ref.run_taps(model, x)
        check(set(names) <= set(taps), f"{gpath}: names not produced by the reference")
        n_exact = sum(torch.equal(taps[k], gold[k]) for k in names)
        check(n_exact == len(names), f"{gpath}: only {n_exact}/{len(names)} tensors bit-exact")
        # (2) independent float64 SwinIR
        fp64 = json.loads(meta["fp64_maxabs"])
        check(set(fp64) == set(names), f"{gpath}: fp64_maxabs keys differ from tensors")
        sd64 = {k: (v.double() if v.is_floating_point() else v) for k, v in sd.items()}
        rec = {}
        with torch.no_grad():
            spec_swinir_forward(sd64, case, c, x.double(), rec)
        worst_ratio, worst_name = 0.0, ""
        for k in names:
            dd = float((rec[k] - gold[k].double()).abs().max())
            lim = fp64[k][0] * 1.01 + 1e-9
            if dd / lim > worst_ratio:
                worst_ratio, worst_name = dd / lim, k
            check(dd <= lim, f"{gpath}: spec forward vs golden {k}: {dd:.3e} > bound {lim:.3e}")
        print(f"  {os.path.relpath(wpath, ROOT)}: {{'params': {len(sd)} tensors}}, "
              f"{case['wdtype']}, {c['upsampler']} x{c['upscale']}, official layout + buffers OK")
        print(f"  {os.path.relpath(gpath, ROOT)}: {len(names)} tensors; SwinIR from the .pth: "
              f"{n_exact}/{len(names)} bit-exact; spec fp64 SwinIR vs golden within the fp32 bound "
              f"(worst {worst_ratio:.3f} of bound, {worst_name})")
    return total


# ----------------------------------------------------------------------------------------------
# ref_data/vae/ (make_vae_golden.py): weights from the generator, goldens vs the independent models

def _vae_cfg(meta):
    c = json.loads(meta["config"])
    return dict(latent_channels=c["latent_channels"], block_out_channels=tuple(c["block_out_channels"]),
                layers_per_block=c["layers_per_block"], norm_num_groups=c["norm_num_groups"],
                post_quant_conv=c["post_quant_conv"] if "post_quant_conv" in c else c["quant_conv"])


def _vae_expected_names(variant, cfg, names):
    """variant's tensor names -> ldm names (None: an extra the VAE loader must ignore)."""
    inv = vae_ref.diffusers_to_ldm_map(cfg, variant == "diffusers_old", encoder=True)
    out = {}
    for n in names:
        if variant == "ldm":
            out[n] = n
        elif variant in ("ldm_prefixed", "pth"):
            out[n] = n[len("first_stage_model."):] if n.startswith("first_stage_model.") else None
        else:
            out[n] = inv.get(n, n)
    return out


def check_vae_weight_file(path, variant, cfg, seed, Lw):
    """Exactly the whole VAE (decoder + encoder) under variant's names, every value the
    generator's; returns the number of tensors."""
    if variant == "pth":
        import gzip
        import io
        data = open(path, "rb").read()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        sd = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)["state_dict"]
        arrays = {k: v.float().numpy() if v.is_floating_point() else v.numpy() for k, v in sd.items()}
    else:
        t, _, _ = st_io.load(path)
        arrays = {k: (st_io.as_float(dt, a).reshape(sh) if dt != "I64" else np.asarray(a))
                  for k, (dt, sh, a) in t.items()}
    lay = dict(vae_ref.ldm_decoder_layout(cfg))
    lay.update(vae_ref.ldm_encoder_layout(cfg))
    names = _vae_expected_names(variant, cfg, arrays)
    ldm_names = {v for v in names.values() if v is not None}
    check(ldm_names == set(lay), f"{path}: VAE tensors differ from the layout: "
          f"{sorted(ldm_names ^ set(lay))[:6]}")
    bad = []
    for n, a in arrays.items():
        k = names[n]
        if k is None or k not in lay:
            continue
        want = vae_ref.gen_tensor(k, lay[k], seed, Lw)
        if vae_ref.is_attn_linear(k) and variant.startswith("diffusers"):
            want = want[:, :, 0, 0]
        if a.shape != want.shape or not np.array_equal(a.astype(np.float32), want):
            bad.append(n)
    check(not bad, f"{path}: {len(bad)} tensors differ from the generator: {bad[:4]}")
    return len(arrays)


def check_vae_dir(d):
    total = 0
    goldens = [f for f in sorted(os.listdir(d)) if f.startswith("golden_") and f != "golden_tiled.safetensors"]
    seen_files = set()
    for f in goldens:
        gpath = os.path.join(d, f)
        tensors, meta, names = st_io.load(gpath)
        total += os.path.getsize(gpath)
        cfg = _vae_cfg(meta)
        seed, Lw = int(meta["seed"]), int(meta["weights_Lw"])
        enc = f.startswith("golden_enc_")
        # the weights: the generator reproduces the checksums (values, for the stored files)
        cks = json.loads(meta["weights_checksums"])
        lay = vae_ref.ldm_encoder_layout(cfg) if enc else vae_ref.ldm_decoder_layout(cfg)
        check(set(cks) == set(lay), f"{gpath}: weights_checksums names differ from the layout")
        w = {k: vae_ref.gen_tensor(k, lay[k], seed, Lw) for k in lay}
        bad = [k for k in cks if json.loads(json.dumps(vae_ref.checksum(w[k]))) != cks[k]]
        check(not bad, f"{gpath}: checksums differ from the generator: {bad[:4]}")
        files = json.loads(meta["weights"]) if meta["weights"].startswith("{") else {}
        for variant, wf in files.items():
            if wf in seen_files:
                continue
            seen_files.add(wf)
            n = check_vae_weight_file(os.path.join(d, wf), variant, cfg, seed, Lw)
            total += os.path.getsize(os.path.join(d, wf))
            print(f"  {os.path.relpath(os.path.join(d, wf), ROOT)}: {n} tensors, the whole VAE "
                  f"({variant} names), every value the generator's")
        # the independent float64 model vs the golden tensors, within the recorded fp32 error
        gold = {k: torch.from_numpy(np.array(a).reshape(s)) for k, (dt, s, a) in tensors.items()}
        fp64 = json.loads(meta["fp64_maxabs"])
        check(set(fp64) == set(names), f"{gpath}: fp64_maxabs keys differ from tensors")
        x = gold["input"].double()
        wt = {k: torch.from_numpy(v).double() for k, v in w.items()}
        with torch.no_grad():
            if enc:
                m = vae_ref.LdmEncoder(cfg).double()
                m.load_state_dict(wt, strict=True)
                rec = m.eval()(x)
            else:
                m = vae_ref.LdmDecoder(cfg).double()
                m.load_state_dict(wt, strict=True)
                rec = {"out": m.eval()(x)}
        worst, wname, n_cmp = 0.0, "", 0
        for k in names:
            if k == "input" or k not in rec:
                continue
            r = rec[k][: gold[k].shape[0]]
            if not check(tuple(r.shape) == tuple(gold[k].shape), f"{gpath}: {k} shape {tuple(gold[k].shape)}, "
                         f"independent model {tuple(r.shape)}"):
                continue
            dd = float((r - gold[k].double()).abs().max())
            lim = fp64[k][0] * 1.01 + 1e-9
            n_cmp += 1
            if dd / lim > worst:
                worst, wname = dd / lim, k
            check(dd <= lim, f"{gpath}: independent fp64 model vs golden {k}: {dd:.3e} > bound {lim:.3e}")
        check(n_cmp >= (len(names) - 1 if enc else 1), f"{gpath}: only {n_cmp} tensors compared")
        if enc:
            sz = json.loads(meta["sizes"])
            H, W = sz["image"]
            fct = 2 ** (len(cfg["block_out_channels"]) - 1)
            check(sz["latent"] == [H // fct, W // fct] == list(gold["mean"].shape[2:]),
                  f"{gpath}: latent size {sz['latent']} is not floor(H/{fct}) x floor(W/{fct})")
        print(f"  {os.path.relpath(gpath, ROOT)}: weights_checksums = the generator's; independent "
              f"fp64 {'LdmEncoder' if enc else 'LdmDecoder'} vs {n_cmp} golden tensor(s) within the "
              f"fp32 bound (worst {worst:.3f} of bound, {wname})")
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.join(ROOT, "ref_data"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    reader_selftest()
    total = 0
    for case in sorted(os.listdir(args.dir)):
        d = os.path.join(args.dir, case)
        if not os.path.isdir(d):
            continue
        files = sorted(os.listdir(d))
        mf = [f for f in files if f.startswith("model.safetensors")]
        if not mf:
            if case == "vae":
                total += check_vae_dir(d)
                continue
            if any(is_swinir_golden(os.path.join(d, f)) for f in files):
                total += check_swinir_dir(d)
                continue
            print(f"  {os.path.relpath(d, ROOT)}: no model file, not a golden case (skipped)")
            continue
        if not check(len(mf) == 1, f"{d}: expected one model file"):
            continue
        cfg, sd = check_model_file(os.path.join(d, mf[0]))
        for f in files:
            if f.startswith("golden_"):
                check_golden(os.path.join(d, f), cfg, sd)
        for f in files:
            if f.endswith(".pth"):
                want = swinir_ref.PTH_TWINS.get(case, ("params_ema",))[0]
                check_pth_twin(os.path.join(d, f), os.path.join(d, mf[0]), want)
        total += sum(os.path.getsize(os.path.join(d, f)) for f in files
                     if f.startswith(("model.safetensors", "golden_")) or f.endswith(".pth"))
    print(f"total size of golden cases {total:,} bytes")
    if FAIL:
        print(f"{len(FAIL)} check(s) FAILED")
        sys.exit(1)
    print("all ref_data checks passed")


if __name__ == "__main__":
    main()
