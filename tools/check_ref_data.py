"""Check ref_data/ (or --dir DIR): every file parses under the strict safetensors rules, model files
have exactly the spec's checkpoint layout, and the golden tensors are reproduced

  (1) by the BasicSR-based reference (tools/lua_ref.py) re-built from the stored weights, and
  (2) by an independent float64 implementation written from shared/spec/lua.md alone
      (`spec_forward` below: reflect pad, windows, roll, band mask, relative index formula,
      pixel shuffle and crop all done by hand from the spec text, weights from the file).

    tools/.venv/bin/python tools/check_ref_data.py [--dir ref_data]

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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lua_ref  # noqa: E402
import st_io  # noqa: E402

warnings.filterwarnings("ignore", message="torch.meshgrid")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

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
# Independent implementation from shared/spec/lua.md (float64, no BasicSR code).
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
            print(f"  {os.path.relpath(d, ROOT)}: no model file, not a golden case (skipped)")
            continue
        if not check(len(mf) == 1, f"{d}: expected one model file"):
            continue
        cfg, sd = check_model_file(os.path.join(d, mf[0]))
        for f in files:
            if f.startswith("golden_"):
                check_golden(os.path.join(d, f), cfg, sd)
        total += sum(os.path.getsize(os.path.join(d, f)) for f in files
                     if f.startswith(("model.safetensors", "golden_")))
    print(f"total size of golden cases {total:,} bytes")
    if FAIL:
        print(f"{len(FAIL)} check(s) FAILED")
        sys.exit(1)
    print("all ref_data checks passed")


if __name__ == "__main__":
    main()
