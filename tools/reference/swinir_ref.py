"""SwinIR pixel-space reference (the LUA paper's baseline) and the extra ref_data it goes with.

    tools/.venv/bin/python tools/reference/swinir_ref.py                  # regenerate ALL of ref_data/
    tools/.venv/bin/python tools/reference/swinir_ref.py --extras-only    # only the files made here

The first form runs tools/golden/make_golden.py (the LUA cases, unchanged) and then writes:

  ref_data/sdxl/model.pth             .pth twin of sdxl/model.safetensors.gz ({"params_ema": sd}, BF16)
  ref_data/tiny/model.safetensors.gz  a tiny LUA case (F16) ...
  ref_data/tiny/model.pth             ... and its .pth twin ({"params": sd}, F16)
  ref_data/tiny/golden_pad.safetensors  input + out.x2 only
  ref_data/swinir/image_21x19.png, image_21x19.npy   the test image (k/255 values)
  ref_data/swinir/{classic_x2,classic_x3,classic_x4,direct_x2}.pth   SwinIR, official layout
  ref_data/swinir/golden_<name>.safetensors

(make_golden.py records its own sha256 in every file it writes, so it is left byte-for-byte
unchanged and the committed LUA files regenerate identically; everything new lives here.)

The SwinIR model is BasicSR's own `SwinIR` class from tools/.venv/basicsr_swinir/swinir_arch.py,
UNMODIFIED (loaded by lua_ref.load_swinir_arch with stubs). BasicSR's forward does not pad; the
original SwinIR repository's models/network_swinir.py does, inside forward:

    H, W = x.shape[2:]
    x = self.check_image_size(x)          # F.pad(x, (0, pw, 0, ph), 'reflect') to window multiples
    self.mean = self.mean.type_as(x)
    x = (x - self.mean) * self.img_range
    ... (identical to BasicSR) ...
    x = x / self.img_range + self.mean
    return x[:, :, :H*self.upscale, :W*self.upscale]

`SwinIRPadded` below is exactly that: reflect pad -> unmodified BasicSR SwinIR.forward (mean
subtraction, body, tail, mean added back) -> crop. The mean is added back at the padded size,
before the crop (elementwise, so the order does not change any value). NOTE: the SwinIR repo's
test script main_test_swinir.py pads differently, outside the model: it always pads by
(h // ws + 1) * ws - h (a whole extra window when already aligned) with torch.flip, i.e.
*symmetric* padding (edge sample repeated: padded[H+k] = x[H-1-k]); check_image_size then does
nothing. The golden data here follow network_swinir.py's own forward (reflect: x[H-2-k]).

Deterministic: fixed per-tensor seeds, one torch thread, no dates, torch.save zip (torch 1.13
writes fixed 1980-01-01 timestamps; the archive's root folder is the file's base name).
"""
import argparse
import collections
import copy
import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import warnings
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path[:0] = [os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), d) for d in ("reference", "golden")]  # the sibling groups of tools/
import golden_report  # noqa: E402
import lua_ref  # noqa: E402
import make_golden  # noqa: E402  (only its functions; nothing runs at import)
import st_io  # noqa: E402

warnings.filterwarnings("ignore", message="torch.meshgrid")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GENERATOR = "tools/reference/swinir_ref.py"
RGB_MEAN = (0.4488, 0.4371, 0.4040)   # BasicSR/SwinIR, used when in_chans == 3 (as float32)
NUM_FEAT = 64                          # hard-coded in SwinIR/BasicSR (conv_before_upsample width)
LN_EPS = 1e-5

TORCH_DTYPE = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}

# ----------------------------------------------------------------------------------------------
# SwinIR cases (ref_data/swinir/). trunk: E, depths, heads, ws, mlp, img_size; tail: upsampler, S.
TINY_TRUNK = dict(embed_dim=24, depths=[1], num_heads=[2], window_size=8, mlp_ratio=2.0,
                  img_size=32)
SWINIR_CASES = {
    # the paper's classical-SR layout at reduced width: two RSTBs (shifted blocks: the stored
    # attn_masks are built for img_size 16 = 2x2 windows and do NOT fit the 24x24 padded image).
    # Size: layers.1's blocks and the pixel-shuffle output are not dumped (the same code as
    # layers.0 and as the LUA heads' shuffles, both checked elsewhere).
    "classic_x2": dict(seed=4002, upscale=2, upsampler="pixelshuffle", wdtype="F16", levels=15,
                       trunk=dict(embed_dim=60, depths=[2, 2], num_heads=[6, 6], window_size=8,
                                  mlp_ratio=2.0, img_size=16),
                       dump="all", skip=[r"layers\.1\.blocks\..*", r"upsample\.\d+"]),
    # the other tail layouts, tiny trunk, outputs only
    "classic_x3": dict(seed=4003, upscale=3, upsampler="pixelshuffle", wdtype="F16", levels=15,
                       trunk=TINY_TRUNK, dump="out"),
    "classic_x4": dict(seed=4004, upscale=4, upsampler="pixelshuffle", wdtype="F16", levels=15,
                       trunk=TINY_TRUNK, dump="out"),
    "direct_x2": dict(seed=4005, upscale=2, upsampler="pixelshuffledirect", wdtype="F16",
                      levels=15, trunk=TINY_TRUNK, dump="out"),
}
IMAGE_SEED = 4000
IMAGE_H, IMAGE_W = 21, 19

# A tiny LUA case (C 16, E 24, one RSTB of 2 blocks, F 16, x2) for the F16 + {"params"} .pth twin.
# img_size 16 (2x2 windows: a shifted block with a stored 4-window mask that does not fit the
# 16x16 padded input) keeps model.pth < 300 KB; img_size 8 would equal the window and make
# BasicSR drop the shift altogether.
TINY_LUA = dict(
    seed=5005,
    cfg=dict(in_chans=16, embed_dim=24, depths=[2], num_heads=[2], window_size=8,
             mlp_ratio=2.0, head_feat=16, scales=[2], img_size=16),
    wdtype="F16", compress=True, levels=15,
    inputs=[("pad", (1, 16, 10, 9), [r"(?!input$|out\.).*"], [])])

# .pth twins of LUA cases: case -> (wrapper key, weight dtype)
PTH_TWINS = {"sdxl": ("params_ema", "BF16"), "tiny": ("params", "F16")}


# ----------------------------------------------------------------------------------------------
# The model
def swinir_kwargs(case):
    t = case["trunk"]
    return dict(img_size=t["img_size"], patch_size=1, in_chans=3, embed_dim=t["embed_dim"],
                depths=list(t["depths"]), num_heads=list(t["num_heads"]),
                window_size=t["window_size"], mlp_ratio=t["mlp_ratio"], upscale=case["upscale"],
                img_range=1.0, upsampler=case["upsampler"], resi_connection="1conv")


class SwinIRPadded(nn.Module):
    """network_swinir.py's forward around BasicSR's unmodified SwinIR: reflect pad to window
    multiples (check_image_size), BasicSR SwinIR.forward (mean subtraction, body, tail, mean
    added back), crop to [:H*S, :W*S]. `self.net.state_dict()` is the official checkpoint layout
    (the "params" of the released .pth files); the wrapper adds no parameters or buffers."""

    def __init__(self, **kw):
        super().__init__()
        sw = lua_ref.load_swinir_arch()
        self.net = sw.SwinIR(**kw)
        self.window_size = kw["window_size"]
        self.upscale = kw["upscale"]
        self.taps = None

    def _tap(self, name, t):
        if self.taps is not None:
            self.taps[name] = t.detach().clone()

    def check_image_size(self, x):  # = network_swinir.SwinIR.check_image_size
        _, _, h, w = x.size()
        ws = self.window_size
        mod_pad_h = (ws - h % ws) % ws
        mod_pad_w = (ws - w % ws) % ws
        return F.pad(x, (0, mod_pad_w, 0, mod_pad_h), "reflect")

    def forward(self, x):
        H, W = x.shape[2:]
        self._tap("input", x)
        xp = self.check_image_size(x)
        self._tap("pad", xp)
        y = self.net(xp)  # unmodified BasicSR forward
        y = y[:, :, : H * self.upscale, : W * self.upscale]
        self._tap(f"out.x{self.upscale}", y)
        return y


def make_swinir(case):
    m = SwinIRPadded(**swinir_kwargs(case))
    m.eval()
    return m


def attach_taps(model, taps):
    """Hooks recording the golden tensors (names in tools/README.md). `conv_after_body` is the
    INPUT of the next tail module (conv_before_upsample / upsample), i.e. conv_after_body(...) +
    conv_first output, as in the LUA golden files."""
    hs = []
    net = model.net
    model.taps = taps
    out_hook, in_hook = lua_ref.tap_hooks(taps)

    hs.append(net.conv_first.register_forward_hook(out_hook("conv_first")))
    hs.append(net.patch_embed.register_forward_hook(out_hook("patch_embed")))
    for i, layer in enumerate(net.layers):
        for j, blk in enumerate(layer.residual_group.blocks):
            hs.append(blk.register_forward_hook(out_hook(f"layers.{i}.blocks.{j}")))
        hs.append(layer.register_forward_hook(out_hook(f"layers.{i}")))
    hs.append(net.norm.register_forward_hook(out_hook("norm")))
    if net.upsampler == "pixelshuffle":
        hs.append(net.conv_before_upsample.register_forward_pre_hook(in_hook("conv_after_body")))
        hs.append(net.conv_before_upsample.register_forward_hook(out_hook("conv_before_upsample")))
        for k, m in enumerate(net.upsample):
            if isinstance(m, nn.PixelShuffle):
                hs.append(m.register_forward_hook(out_hook(f"upsample.{k}")))
        hs.append(net.conv_last.register_forward_hook(out_hook("conv_last")))
    else:
        hs.append(net.upsample.register_forward_pre_hook(in_hook("conv_after_body")))
        for k, m in enumerate(net.upsample):
            if isinstance(m, nn.PixelShuffle):
                hs.append(m.register_forward_hook(out_hook(f"upsample.{k}")))
    return hs


def tensor_order(case):
    """Golden tensor names in forward order (what attach_taps + SwinIRPadded record)."""
    s = case["upscale"]
    if case["dump"] == "out":
        return ["input", f"out.x{s}"]
    names = ["input", "pad", "conv_first", "patch_embed"]
    for i, d in enumerate(case["trunk"]["depths"]):
        names += [f"layers.{i}.blocks.{j}" for j in range(d)] + [f"layers.{i}"]
    names += ["norm", "conv_after_body"]
    assert case["upsampler"] == "pixelshuffle"
    names.append("conv_before_upsample")
    n = 1 if s == 3 else int(round(np.log2(s)))
    names += [f"upsample.{2 * k + 1}" for k in range(n)]
    names += ["conv_last", f"out.x{s}"]
    skips = [re.compile(p) for p in case.get("skip", [])]
    return [n for n in names if not any(p.fullmatch(n) for p in skips)]


def run_taps(model, x):
    return lua_ref.collect_taps(model, attach_taps, lambda: model(x))


def build_swinir(case):
    """Official-layout SwinIR with every parameter random (make_golden.gen_param levels, exact
    in the stored dtype). Returns the wrapper model (float32)."""
    with torch.no_grad():
        model = make_swinir(case)
        kinds = make_golden.param_kinds(model.net)
        for name, p in model.net.named_parameters():
            v = make_golden.gen_param(name, tuple(p.shape), kinds[name], case["seed"],
                                      case["levels"])
            st_io.encode(v, case["wdtype"])  # raises unless exactly representable
            p.copy_(torch.from_numpy(v))
    model.eval()
    return model


def expected_swinir_layout(case):
    """name -> shape of the official SwinIR state_dict, written out by hand (checked against
    BasicSR's class in check_ref_data.py and here)."""
    t = case["trunk"]
    E, ws, s = t["embed_dim"], t["window_size"], case["upscale"]
    hid = int(E * t["mlp_ratio"])
    d = lua_ref.trunk_layout(3, E, t["depths"], t["num_heads"], ws, hid, t["img_size"])
    if case["upsampler"] == "pixelshuffle":
        Fn = NUM_FEAT
        d.update({"conv_before_upsample.0.weight": (Fn, E, 3, 3),
                  "conv_before_upsample.0.bias": (Fn,)})
        if s == 3:
            d.update({"upsample.0.weight": (9 * Fn, Fn, 3, 3), "upsample.0.bias": (9 * Fn,)})
        else:
            for k in range(int(round(np.log2(s)))):
                d.update({f"upsample.{2 * k}.weight": (4 * Fn, Fn, 3, 3),
                          f"upsample.{2 * k}.bias": (4 * Fn,)})
        d.update({"conv_last.weight": (3, Fn, 3, 3), "conv_last.bias": (3,)})
    else:
        d.update({"upsample.0.weight": (3 * s * s, E, 3, 3), "upsample.0.bias": (3 * s * s,)})
    return d


def config_json(case):
    t = case["trunk"]
    c = dict(model="swinir", upsampler=case["upsampler"], upscale=case["upscale"], in_chans=3,
             embed_dim=t["embed_dim"], depths=t["depths"], num_heads=t["num_heads"],
             window_size=t["window_size"], mlp_ratio=t["mlp_ratio"], img_size=t["img_size"],
             img_range=1.0, resi_connection="1conv", num_feat=NUM_FEAT, rgb_mean=list(RGB_MEAN),
             rgb_mean_dtype="float32", ln_eps=LN_EPS, patch_size=1, ape=False, patch_norm=True,
             padding="reflect, bottom/right, to window multiples (network_swinir.py "
                     "check_image_size); output cropped to [:H*S, :W*S] after the mean is added")
    return json.dumps(c, separators=(",", ":"))


# ----------------------------------------------------------------------------------------------
# Files
def script_sha():
    with open(os.path.abspath(__file__), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def file_sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def converted_state_dict(sd, wdtype):
    """state_dict -> same OrderedDict (same order, same `_metadata` as state_dict() makes) with
    the float parameters in `wdtype`; buffers kept as state_dict() has them (relative_position_index
    int64, attn_mask float32). Every value must convert exactly."""
    out = collections.OrderedDict()
    for k, v in sd.items():
        if v.dtype == torch.int64 or k.endswith("attn_mask"):
            out[k] = v
        else:
            w = v.to(TORCH_DTYPE[wdtype])
            assert torch.equal(w.float(), v), f"{k}: not exact in {wdtype}"
            out[k] = w
    if hasattr(sd, "_metadata"):
        out._metadata = copy.deepcopy(sd._metadata)
    return out


def save_pth(path, key, sd):
    """torch.save({key: sd}) with the default (zip) serialization; returns the size. Verifies the
    file loads back (weights_only) identical: same keys in the same order, dtypes, values."""
    torch.save({key: sd}, path)
    back = torch.load(path, map_location="cpu", weights_only=True)
    assert list(back) == [key], list(back)
    got = back[key]
    assert list(got) == list(sd), "key order differs after torch.load"
    for k, v in sd.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape and torch.equal(got[k], v), k
    return os.path.getsize(path)


def png_bytes(img):
    """8-bit RGB PNG of img [H, W, 3] uint8, written by hand: IHDR, one IDAT (zlib level 9), IEND.
    Row filters cycle through all five types (row y uses filter y % 5: None, Sub, Up, Average,
    Paeth) so a decoder's unfiltering is exercised."""
    h, w, c = img.shape
    assert c == 3 and img.dtype == np.uint8
    bpp = 3
    raw = bytearray()
    prev = np.zeros(w * c, dtype=np.int64)
    for y in range(h):
        cur = img[y].reshape(-1).astype(np.int64)
        left = np.concatenate([np.zeros(bpp, np.int64), cur[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int64), prev[:-bpp]])
        ft = y % 5
        if ft == 0:
            pred = np.zeros_like(cur)
        elif ft == 1:
            pred = left
        elif ft == 2:
            pred = prev
        elif ft == 3:
            pred = (left + prev) // 2
        else:
            p = left + prev - upleft
            pa, pb, pc = np.abs(p - left), np.abs(p - prev), np.abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
        raw.append(ft)
        raw += ((cur - pred) % 256).astype(np.uint8).tobytes()
        prev = cur

    def chunk(typ, data):
        return (struct.pack(">I", len(data)) + typ + data
                + struct.pack(">I", zlib.crc32(typ + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b""))


def make_image():
    """uint8 [H, W, 3]: a smooth colour ramp plus seeded noise, with 0 and 255 present."""
    rng = make_golden.rng_for(IMAGE_SEED, f"image_{IMAGE_H}x{IMAGE_W}")
    yy, xx = np.mgrid[0:IMAGE_H, 0:IMAGE_W]
    base = np.stack([yy * 255.0 / (IMAGE_H - 1), xx * 255.0 / (IMAGE_W - 1),
                     (yy + xx) * 255.0 / (IMAGE_H + IMAGE_W - 2)], -1)
    noise = rng.integers(-60, 61, size=base.shape)
    k = np.clip(np.round(base) + noise, 0, 255).astype(np.uint8)
    k[0, 0] = (0, 255, 0)
    k[-1, -1] = (255, 0, 255)
    return k


def image_chw_float(k):
    """uint8 [H, W, 3] -> float32 [3, H, W], value np.float32(k) / np.float32(255)."""
    return (k.transpose(2, 0, 1).astype(np.float32) / np.float32(255)).astype(np.float32)


def write_image(outdir):
    k = make_image()
    png = png_bytes(k)
    ppath = os.path.join(outdir, f"image_{IMAGE_H}x{IMAGE_W}.png")
    with open(ppath, "wb") as f:
        f.write(png)
    x = image_chw_float(k)
    npath = os.path.join(outdir, f"image_{IMAGE_H}x{IMAGE_W}.npy")
    np.save(npath, x)
    try:  # cross-check with PIL when it is there (not needed to generate)
        from PIL import Image
        with Image.open(ppath) as im:
            assert im.mode == "RGB" and np.array_equal(np.asarray(im), k), "PIL decodes differently"
    except ImportError:
        pass
    return x, [(ppath, len(png)), (npath, os.path.getsize(npath))]


def common_meta(name, case, wfile):
    m = dict(case=name, model="swinir", config=config_json(case), seed=str(case["seed"]),
             weights=wfile, weights_dtype=case["wdtype"], weights_wrapper="params",
             generator=GENERATOR, generator_sha256=script_sha(),
             date="not recorded (deterministic output)",
             reference="SwinIR = basicsr/archs/swinir_arch.py (basicsr-volta 1.4.4, unmodified) "
                       "inside network_swinir.py's pad/crop (tools/reference/swinir_ref.py SwinIRPadded)",
             image=f"image_{IMAGE_H}x{IMAGE_W}.png / .npy (values k/255, float32)")
    m.update(make_golden.versions())
    return m


def make_swinir_case(name, outdir, summary):
    case = SWINIR_CASES[name]
    model = build_swinir(case)
    got = {k: tuple(v.shape) for k, v in model.net.state_dict().items()}
    assert got == expected_swinir_layout(case), "layout differs from the hand-written one"
    wfile = f"{name}.pth"
    sd = converted_state_dict(model.net.state_dict(), case["wdtype"])
    wsize = save_pth(os.path.join(outdir, wfile), "params", sd)
    nparams = sum(p.numel() for p in model.net.parameters())
    files = [(os.path.join(outdir, wfile), wsize)]
    print(f"[swinir/{name}] {wfile}: {wsize:,} bytes, {nparams:,} parameters ({case['wdtype']}), "
          f"{len(sd)} state_dict entries")
    x = torch.from_numpy(np.load(os.path.join(outdir, f"image_{IMAGE_H}x{IMAGE_W}.npy")))[None]
    model64 = copy.deepcopy(model).double()
    t32 = run_taps(model, x)
    t64 = run_taps(model64, x.double())
    order = tensor_order(case)
    assert set(order) <= set(t32), set(order) - set(t32)
    fp64, tensors = {}, []
    golden_report.print_header(32, 20)
    for k in order:
        a = t32[k]
        d, r = golden_report.fp64_error(a, t64[k])
        fp64[k] = [d, r]
        tensors.append((k, a.contiguous().numpy(), "F32"))
        golden_report.print_row(k, a.shape, r, d, 32, 20)
        w = summary.setdefault(name, [0.0, "", 0.0])
        if d > w[0]:
            w[0], w[1] = d, k
        w[2] = max(w[2], d / max(r, 1e-30))
    meta = common_meta(name, case, wfile)
    meta["input"] = f"image_{IMAGE_H}x{IMAGE_W}"
    meta["input_shape"] = json.dumps(list(x.shape))
    meta["fp64_maxabs"] = json.dumps(fp64, separators=(",", ":"))
    meta["fp64_maxabs_doc"] = ("name -> [max |fp32 forward - fp64 forward| (model.double(), same "
                               "weights and input; the mean constants stay float32 values), "
                               "max |fp64 value|]")
    gpath = os.path.join(outdir, f"golden_{name}.safetensors")
    gsize = st_io.save(gpath, tensors, meta)
    files.append((gpath, gsize))
    print(f"  -> {os.path.relpath(gpath, ROOT)}: {gsize:,} bytes")
    return files


# ----------------------------------------------------------------------------------------------
# LUA extras: the tiny case and the .pth twins
def make_tiny_lua(outdir, summary):
    """The tiny LUA case through make_golden's own case machinery (same file formats/metadata),
    with the generator fields pointing here."""
    orig = make_golden.common_meta

    def meta(name, case, wfile):
        m = orig(name, case, wfile)
        m["generator"] = GENERATOR + " (make_golden.py's case machinery)"
        m["generator_sha256"] = script_sha()
        m["make_golden_sha256"] = file_sha(os.path.join(ROOT, "tools", "golden", "make_golden.py"))
        return m

    make_golden.CASES["tiny"] = TINY_LUA
    make_golden.common_meta = meta
    try:
        return make_golden.make_case("tiny", outdir, summary, "lean")
    finally:
        make_golden.common_meta = orig
        del make_golden.CASES["tiny"]


def make_pth_twin(name, outdir):
    """model.pth = torch.save({key: state_dict}) of exactly the model in model.safetensors.gz:
    rebuilt from the same seeds, checked tensor by tensor (names, order, dtypes, bits) against
    the safetensors file before writing."""
    key, wdtype = PTH_TWINS[name]
    case = TINY_LUA if name == "tiny" else make_golden.CASES[name]
    assert case["wdtype"] == wdtype
    model = make_golden.build_case(case)
    sd = converted_state_dict(model.state_dict(), wdtype)
    st_path = os.path.join(outdir, "model.safetensors.gz")
    tensors, meta, names = st_io.load(st_path)
    assert names == list(sd), f"{st_path}: names/order differ from the state_dict"
    for k, v in sd.items():
        dt, shape, a = tensors[k]
        assert shape == tuple(v.shape), k
        if dt == "BF16":
            assert v.dtype == torch.bfloat16
            bits = v.view(torch.int16).numpy().view(np.uint16)
            assert np.array_equal(bits, a), k
        else:
            want = {"F32": torch.float32, "F16": torch.float16, "I64": torch.int64}[dt]
            assert v.dtype == want, (k, v.dtype, dt)
            assert np.array_equal(v.numpy(), a), k
    path = os.path.join(outdir, "model.pth")
    size = save_pth(path, key, sd)
    print(f"[{name}] model.pth: {size:,} bytes, {{'{key}': state_dict}}, {wdtype} weights, "
          f"{len(sd)} entries; identical to model.safetensors.gz (names, order, dtypes, bits)")
    return [(path, size)]


# ----------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "ref_data"))
    ap.add_argument("--extras-only", action="store_true",
                    help="skip make_golden.py (the LUA cases small/wide/sdxl and demo)")
    args = ap.parse_args()
    if not args.extras_only:
        subprocess.check_call([sys.executable, os.path.join(ROOT, "tools", "golden", "make_golden.py"),
                               "--out", args.out])
    torch.set_num_threads(1)  # fixed reduction order -> reproducible bytes
    files = []
    lua_summary = {}
    files += make_tiny_lua(os.path.join(args.out, "tiny"), lua_summary)
    for name in PTH_TWINS:
        files += make_pth_twin(name, os.path.join(args.out, name))
    sdir = os.path.join(args.out, "swinir")
    os.makedirs(sdir, exist_ok=True)
    _, f = write_image(sdir)
    files += f
    summary = {}
    for name in SWINIR_CASES:
        files += make_swinir_case(name, sdir, summary)
    print("\nworst fp32-vs-fp64 per SwinIR golden file:")
    for name, (d, k, r) in summary.items():
        print(f"  golden_{name:12s} max abs {d:.3e} ({k}), max rel {r:.2e}")
    golden_report.print_files(files, ROOT, 45, "files written here:")


if __name__ == "__main__":
    main()
