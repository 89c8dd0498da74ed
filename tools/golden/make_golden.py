"""Generate ref_data/: seeded random-weight LUA models and golden intermediate tensors.

    tools/.venv/bin/python tools/golden/make_golden.py            # all cases into ref_data/
    tools/.venv/bin/python tools/golden/make_golden.py --out DIR --case small

Deterministic: same seed and same software -> same bytes (no date, gzip mtime 0, one thread).
See tools/README.md for the cases and the tensor naming table.
"""
import argparse
import copy
import hashlib
import json
import math
import os
import platform
import re
import sys
import warnings
import zlib

import numpy as np
import torch
import torch.nn as nn

sys.path[:0] = [os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), d) for d in ("reference", "golden")]  # the sibling groups of tools/
import golden_report  # noqa: E402
import lua_ref  # noqa: E402
import st_io  # noqa: E402

warnings.filterwarnings("ignore", message="torch.meshgrid")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GENERATOR = "tools/golden/make_golden.py"
LN_EPS = 1e-5

INNER = r"layers\.\d+\.blocks\.\d+\..*"           # norm1, attn.*, attn_res, norm2, mlp.*
PRESHUFFLE = r"heads\.x\d+\.upsample\.\d*[02468]"     # conv output before each PixelShuffle

# Each input: (name, shape, full_skip, lean_extra_skip); skip lists are regexes (fullmatch).
# Profile "full" = the requested dump set; "lean" = full minus tensors that are redundant for
# testing (see tools/README.md "Size").
CASES = {
    # Small everything-on case: two RSTBs, both heads, F32 weights, padded and unpadded inputs.
    "small": dict(
        seed=1001,
        cfg=dict(in_chans=16, embed_dim=60, depths=[2, 2], num_heads=[6, 6], window_size=8,
                 mlp_ratio=2.0, head_feat=64, scales=[2, 4], img_size=32),
        wdtype="F32", compress=True, levels=15,
        inputs=[("pad", (2, 16, 13, 11), [],
                 [r"layers\.1\.blocks\.\d+\..*", PRESHUFFLE, r"heads\.x4\.upsample\.3"]),
                ("nopad", (1, 16, 16, 24), [],
                 [INNER, r"heads\..*"])]),
    # Released widths (E 360, 12 heads, ws 16, F 256), one RSTB of 2 blocks, x2 head only;
    # F16 weights, gzip-compressed file.
    "wide": dict(
        seed=2002,
        cfg=dict(in_chans=16, embed_dim=360, depths=[2], num_heads=[12], window_size=16,
                 mlp_ratio=2.0, head_feat=256, scales=[2], img_size=32),
        wdtype="F16", compress=True, levels=1,
        inputs=[("pad", (1, 16, 14, 13), [INNER, r"heads\.x2\.upsample\.0"],
                 [r"heads\.x2\.upsample\.1"])]),
    # SDXL-like 4-channel latents, BF16 weights, non-square padding.
    "sdxl": dict(
        seed=3003,
        cfg=dict(in_chans=4, embed_dim=60, depths=[2], num_heads=[6], window_size=8,
                 mlp_ratio=2.0, head_feat=64, scales=[2, 4], img_size=32),
        wdtype="BF16", compress=True, levels=15,
        inputs=[("pad", (2, 4, 12, 20), [],
                 [r"layers\.0\.blocks\.0\..*", PRESHUFFLE, r"heads\.x4\.upsample\.3"])]),
}


def rng_for(seed, name):
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])


def quant_uniform(rng, shape, step, kmax):
    """Integers uniform in [-kmax, kmax] times a power-of-two step: exact in F32/F16/BF16
    (|k| <= 127 fits bf16's 8 significant bits; step >= 2^-14 keeps F16 values normal)."""
    k = rng.integers(-kmax, kmax + 1, size=shape)
    return (k * step).astype(np.float32)


def gen_param(name, shape, kind, seed, levels):
    rng = rng_for(seed, name)
    if kind == "ln_weight":          # 1 + 0.2*U, step 1/32
        return (1.0 + quant_uniform(rng, shape, 2.0 ** -5, 6)).astype(np.float32)
    if kind in ("ln_bias", "bias"):  # ~0.1*U, step 1/64
        return quant_uniform(rng, shape, 2.0 ** -6, 6)
    if kind == "rel_table":          # ~N(0,1), step 1/8, clipped to +-4
        x = np.clip(np.round(rng.standard_normal(shape) * 8.0), -32, 32) / 8.0
        return x.astype(np.float32)
    assert kind == "weight"
    fan_in = int(np.prod(shape[1:]))
    gain = 1.0
    target_std = gain / math.sqrt(fan_in)            # variance-preserving
    unit_std = math.sqrt(levels * (levels + 1) / 3.0)  # std of uniform ints in [-L, L]
    step = 2.0 ** round(math.log2(target_std / unit_std))
    assert step >= 2.0 ** -14
    return quant_uniform(rng, shape, step, levels)


def param_kinds(model):
    kinds = {}
    for mname, m in model.named_modules():
        pre = mname + "." if mname else ""
        if isinstance(m, nn.LayerNorm):
            kinds[pre + "weight"] = "ln_weight"
            kinds[pre + "bias"] = "ln_bias"
        elif isinstance(m, (nn.Linear, nn.Conv2d)):
            kinds[pre + "weight"] = "weight"
            kinds[pre + "bias"] = "bias"
        for pn, _ in m.named_parameters(recurse=False):
            if pn == "relative_position_bias_table":
                kinds[pre + pn] = "rel_table"
    return kinds


def build_case(case):
    cfg = case["cfg"]
    with torch.no_grad():
        model = lua_ref.make_model(cfg)
        lua_ref.check_layout(model, cfg)
        kinds = param_kinds(model)
        for name, p in model.named_parameters():
            v = gen_param(name, tuple(p.shape), kinds[name], case["seed"], case["levels"])
            st_io.encode(v, case["wdtype"])  # raises unless exactly representable
            p.copy_(torch.from_numpy(v))
    model.eval()
    return model


def versions():
    return dict(torch_version=torch.__version__, numpy_version=np.__version__,
                python_version=platform.python_version())


def script_sha():
    with open(os.path.abspath(__file__), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def cfg_json(cfg):
    c = dict(in_chans=cfg["in_chans"], out_chans=cfg["in_chans"], embed_dim=cfg["embed_dim"],
             depths=cfg["depths"], num_heads=cfg["num_heads"], window_size=cfg["window_size"],
             mlp_ratio=cfg["mlp_ratio"], head_feat=cfg["head_feat"], scales=cfg["scales"],
             img_size=cfg["img_size"], ln_eps=LN_EPS)
    return json.dumps(c, separators=(",", ":"))


def common_meta(name, case, wfile):
    m = dict(case=name, config=cfg_json(case["cfg"]), seed=str(case["seed"]), weights=wfile,
             generator=GENERATOR, generator_sha256=script_sha(),
             date="not recorded (deterministic output)",
             reference="docs/spec/lua.md; trunk = basicsr/archs/swinir_arch.py "
                       "(basicsr-volta 1.4.4, unmodified)")
    m.update(versions())
    return m


def write_model(name, case, model, outdir):
    wfile = "model.safetensors" + (".gz" if case["compress"] else "")
    tensors = []
    for k, v in model.state_dict().items():
        if v.dtype == torch.int64:
            tensors.append((k, v.numpy(), "I64"))
        elif k.endswith("attn_mask"):
            tensors.append((k, v.numpy(), "F32"))  # buffer exactly as state_dict() has it
        else:
            tensors.append((k, v.numpy(), case["wdtype"]))
    meta = common_meta(name, case, wfile)
    meta["weights_dtype"] = case["wdtype"]
    meta["layout"] = "state_dict of lua_flux.pth['params_ema'] (docs/spec/lua.md)"
    meta["weight_levels"] = ("conv/linear: uniform ints in [-%d,%d] x 2^k (variance ~1/fan_in); "
                             "biases: ints in [-6,6]/64; LayerNorm: 1+ints[-6,6]/32, ints[-6,6]/64;"
                             " rel. pos. bias table: round(N(0,1)*8)/8 clipped to +-4"
                             % (case["levels"], case["levels"]))
    size = st_io.save(os.path.join(outdir, wfile), tensors, meta, compress=case["compress"])
    return wfile, size


def run_taps(model, x, case):
    return lua_ref.run_taps(model, x, case["cfg"]["scales"])


def kind_of(name):
    k = re.sub(r"\.\d+(?=\.|$)", ".*", name)
    return re.sub(r"x\d+", "xS", k)


def selected(order, skips):
    pats = [re.compile(p) for p in skips]
    return [n for n in order if not any(p.fullmatch(n) for p in pats)]


def make_case(name, outdir, summary, profile):
    case = CASES[name]
    cfg = case["cfg"]
    os.makedirs(outdir, exist_ok=True)
    model = build_case(case)
    model64 = copy.deepcopy(model).double()
    wfile, wsize = write_model(name, case, model, outdir)
    files = [(os.path.join(outdir, wfile), wsize)]
    print(f"[{name}] {wfile}: {wsize:,} bytes, {lua_ref.count_params(model):,} parameters "
          f"({case['wdtype']})")
    for iname, shape, full_skip, lean_skip in case["inputs"]:
        x = rng_for(case["seed"], "input:" + iname).standard_normal(shape, dtype=np.float32)
        xt = torch.from_numpy(x)
        t32 = run_taps(model, xt, case)
        t64 = run_taps(model64, xt.double(), case)
        order = lua_ref.tensor_order(cfg)
        assert sorted(order) == sorted(t32.keys()), (set(order) ^ set(t32.keys()))
        skips = list(full_skip) + (list(lean_skip) if profile == "lean" else [])
        order = selected(order, skips)
        fp64 = {}
        tensors = []
        print(f"[{name}/{iname}] input {list(shape)}")
        golden_report.print_header(44, 22)
        for k in order:
            a = t32[k]
            d, r = golden_report.fp64_error(a, t64[k])
            fp64[k] = [d, r]
            if shape[0] > 1 and k != "input" and not k.startswith("out."):
                # intermediates of batch element 0 only (batch-major first dim: the first
                # 1/B of the rows); input and outputs keep the whole batch
                a = a[: a.shape[0] // shape[0]]
            tensors.append((k, a.contiguous().numpy(), "F32"))
            golden_report.print_row(k, a.shape, r, d, 44, 22)
            golden_report.add_worst(summary, kind_of(k), d, r)
        meta = common_meta(name, case, wfile)
        meta["input"] = iname
        meta["profile"] = profile
        meta["batch_dumped"] = ("input and out.x* hold the whole batch; every other tensor holds "
                                "batch element 0 only (its first dim is 1, or nW for windows)")
        meta["input_shape"] = json.dumps(list(shape))
        meta["fp64_maxabs"] = json.dumps(fp64, separators=(",", ":"))
        meta["fp64_maxabs_doc"] = ("name -> [max |fp32 forward - fp64 forward| (model.double(), "
                                   "same weights and input), max |fp64 value|]")
        gpath = os.path.join(outdir, f"golden_{iname}.safetensors")
        gsize = st_io.save(gpath, tensors, meta)
        files.append((gpath, gsize))
        print(f"  -> {os.path.relpath(gpath, ROOT)}: {gsize:,} bytes")
    return files


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "ref_data"))
    ap.add_argument("--case", action="append", choices=sorted(CASES))
    ap.add_argument("--profile", choices=["full", "lean"], default="lean",
                    help="full: every requested tensor; lean: drop redundant ones (README 'Size')")
    args = ap.parse_args()
    torch.set_num_threads(1)  # fixed reduction order -> reproducible bytes
    lua_ref.self_check()
    summary = {}
    files = []
    for name in args.case or list(CASES):
        files += make_case(name, os.path.join(args.out, name), summary, args.profile)
    golden_report.print_worst(summary, 40, "all cases/inputs")
    # the demo latent for `make demo` (an input, not golden data)
    demo = os.path.join(args.out, "demo", "latent.npy")
    os.makedirs(os.path.dirname(demo), exist_ok=True)
    np.save(demo, np.random.default_rng(2026).standard_normal((16, 24, 40)).astype(np.float32))
    files.append((demo, os.path.getsize(demo)))
    golden_report.print_files(files, ROOT, 45)


if __name__ == "__main__":
    main()
