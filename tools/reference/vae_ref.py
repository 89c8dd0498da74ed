"""Reference pieces for the VAE (AutoencoderKL decoder and encoder), see docs/spec/vae.md.

- the official model: diffusers' AutoencoderKL (pinned in tools/ci/setup_env.sh), built from a config,
  never downloaded; `make_diffusers_vae`, `attach_taps` / `attach_encoder_taps` (forward hooks ->
  ldm-named dumps), `run_diffusers` (decode) / `run_diffusers_encode` (encode: moments, mean, logvar);
- the two key-naming conventions: `ldm_decoder_layout` / `ldm_encoder_layout` (ldm names and shapes,
  written from the spec / CompVis ldm model.py), `ldm_to_diffusers` / `diffusers_to_ldm_map` (the
  spec's table, decoder and encoder; old diffusers attention names query/key/value/proj_attn too),
  `to_diffusers_state` / `from_diffusers_state` (1x1-conv <-> Linear);
- `LdmDecoder`, `LdmEncoder`: independent PyTorch models written from the spec / CompVis ldm
  `Decoder` and `Encoder`, with ldm parameter names (used to cross-check diffusers);
- the bit-exact weight generator `gen_tensor` (splitmix64, specified in tools/README.md and in
  GENERATOR_SPEC below) that C can reproduce.

Self-check: `tools/.venv/bin/python tools/reference/vae_ref.py`.
"""
import json
import math
import re
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

GN_EPS = 1e-6

# --------------------------------------------------------------------------------------------
# Weight generator (bit-exact, reproducible in C)
# --------------------------------------------------------------------------------------------

GENERATOR_SPEC = """\
latup VAE weight generator v1 (all integer arithmetic is on uint64, wrapping mod 2^64).
Tensors: every decoder tensor under its ldm name WITHOUT any prefix (e.g. "decoder.conv_in.weight",
"decoder.mid.attn_1.q.weight", "post_quant_conv.bias"), with its ldm shape (attention q/k/v/proj_out
weights as 1x1 convs [C,C,1,1]); each tensor is generated independently, so order does not matter
(ldm-name sorted order is used when listing them).
Seed: seed = fnv1a64(name) XOR G, G = the case's global seed (metadata "seed");
fnv1a64: h = 0xcbf29ce484222325; for each UTF-8 byte b of name: h = (h XOR b) * 0x100000001b3.
Stream: splitmix64 with state s = seed; for element i = 0, 1, ..., n-1 in row-major order:
  s = s + 0x9e3779b97f4a7c15; z = s; z = (z XOR (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z XOR (z >> 27)) * 0x94d049bb133111eb; x_i = z XOR (z >> 31).
Integer: k_i = (int64)((x_i >> 11) mod (2L+1)) - L, uniform in [-L, L].
Value (float32, always exact):
  name ends in ".bias" (conv and GroupNorm biases):        L = 6,  value = k / 64
  name ends in ".weight", 1-D (GroupNorm weights):         L = 6,  value = 1 + k / 32
  name ends in ".weight", 4-D [O,I,kh,kw] (all convs):     L = Lw (metadata, 15), value = k * 2^-e,
    fan_in = I*kh*kw, e = the smallest integer >= 0 with 6 * 4^e >= L*(L+1)*fan_in
    (so the variance L(L+1)/3 * 4^-e lies in (1/(2 fan_in), 2/fan_in]).
Check: per-tensor metadata "weights_checksums" = name -> [shape, sum of values in float64 (exact),
first 4 values]."""

GAMMA = np.uint64(0x9E3779B97F4A7C15)
M1 = np.uint64(0xBF58476D1CE4E5B9)
M2 = np.uint64(0x94D049BB133111EB)
FNV_OFF = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK = (1 << 64) - 1


def fnv1a64(s):
    h = FNV_OFF
    for b in s.encode("utf-8"):
        h = ((h ^ b) * FNV_PRIME) & MASK
    return h


def splitmix64(seed, n):
    """The first n outputs of splitmix64 started at state `seed` (numpy uint64 array)."""
    with np.errstate(over="ignore"):
        i = np.arange(1, n + 1, dtype=np.uint64)
        z = np.uint64(seed) + i * GAMMA
        z = (z ^ (z >> np.uint64(30))) * M1
        z = (z ^ (z >> np.uint64(27))) * M2
        return z ^ (z >> np.uint64(31))


def splitmix64_scalar(seed, n):
    """Plain-Python twin of splitmix64 (used by the self-check)."""
    s, out = seed, []
    for _ in range(n):
        s = (s + 0x9E3779B97F4A7C15) & MASK
        z = s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        out.append(z ^ (z >> 31))
    return out


def conv_exponent(L, fan_in):
    e = 0
    while 6 * 4 ** e < L * (L + 1) * fan_in:
        e += 1
    return e


def tensor_rule(name, shape, Lw):
    """(kind, L, e) for a tensor; value = k*2^-e (+1 for GroupNorm weights)."""
    if name.endswith(".bias"):
        return "bias", 6, 6
    assert name.endswith(".weight"), name
    if len(shape) == 1:
        return "norm_weight", 6, 5
    assert len(shape) == 4, (name, shape)
    fan_in = int(shape[1] * shape[2] * shape[3])
    return "conv_weight", Lw, conv_exponent(Lw, fan_in)


def gen_tensor(name, shape, global_seed, Lw):
    kind, L, e = tensor_rule(name, shape, Lw)
    n = int(np.prod(shape, dtype=np.int64))
    seed = fnv1a64(name) ^ global_seed
    x = splitmix64(seed, n)
    k = ((x >> np.uint64(11)) % np.uint64(2 * L + 1)).astype(np.int64) - L
    v = np.ldexp(k.astype(np.float64), -e)
    if kind == "norm_weight":
        v = 1.0 + v
    out = v.astype(np.float32).reshape(shape)
    assert np.array_equal(out.astype(np.float64), v.reshape(shape))
    return out


def checksum(arr):
    a = np.asarray(arr, dtype=np.float64).ravel()
    return [list(arr.shape), float(a.sum()), [float(t) for t in a[:4]]]


# --------------------------------------------------------------------------------------------
# Config and ldm layout (written from docs/spec/vae.md)
# --------------------------------------------------------------------------------------------

class _Layout(OrderedDict):
    """ldm name -> shape, filled in forward order by the helpers below."""

    def conv(self, p, cin, cout, k):
        self[p + ".weight"] = (cout, cin, k, k)
        self[p + ".bias"] = (cout,)

    def norm(self, p, c):
        self[p + ".weight"] = (c,)
        self[p + ".bias"] = (c,)

    def resnet(self, p, cin, cout):
        self.norm(p + ".norm1", cin)
        self.conv(p + ".conv1", cin, cout, 3)
        self.norm(p + ".norm2", cout)
        self.conv(p + ".conv2", cout, cout, 3)
        if cin != cout:
            self.conv(p + ".nin_shortcut", cin, cout, 1)

    def mid(self, p, c):
        self.resnet(p + ".mid.block_1", c, c)
        self.norm(p + ".mid.attn_1.norm", c)
        for q in ("q", "k", "v", "proj_out"):
            self.conv(p + ".mid.attn_1." + q, c, c, 1)
        self.resnet(p + ".mid.block_2", c, c)


def ldm_decoder_layout(cfg):
    """OrderedDict ldm name -> shape for the decoder (+ post_quant_conv), in forward order."""
    zc, ch = cfg["latent_channels"], list(cfg["block_out_channels"])
    nl, nres = len(ch), cfg["layers_per_block"] + 1
    out = _Layout()
    if cfg["post_quant_conv"]:
        out.conv("post_quant_conv", zc, zc, 1)
    top = ch[-1]
    out.conv("decoder.conv_in", zc, top, 3)
    out.mid("decoder", top)
    cin = top
    for L in reversed(range(nl)):
        for m in range(nres):
            out.resnet(f"decoder.up.{L}.block.{m}", cin, ch[L])
            cin = ch[L]
        if L != 0:
            out.conv(f"decoder.up.{L}.upsample.conv", cin, cin, 3)
    out.norm("decoder.norm_out", ch[0])
    out.conv("decoder.conv_out", ch[0], 3, 3)
    return OrderedDict(out)


def ldm_encoder_layout(cfg):
    """OrderedDict ldm name -> shape for the encoder (+ quant_conv, present exactly when
    post_quant_conv is: SD-style), in forward order. CompVis ldm Encoder: conv_in 3 -> ch[0];
    down.i: layers_per_block ResnetBlocks to ch[i], then (all but the last level) a 3x3 stride-2
    conv after a (0,1,0,1) zero pad; mid; norm_out; conv_out -> 2 zc (mean, logvar)."""
    zc, ch = cfg["latent_channels"], list(cfg["block_out_channels"])
    nl, nres = len(ch), cfg["layers_per_block"]
    out = _Layout()
    out.conv("encoder.conv_in", 3, ch[0], 3)
    cin = ch[0]
    for i in range(nl):
        for j in range(nres):
            out.resnet(f"encoder.down.{i}.block.{j}", cin, ch[i])
            cin = ch[i]
        if i != nl - 1:
            out.conv(f"encoder.down.{i}.downsample.conv", cin, cin, 3)
    out.mid("encoder", cin)
    out.norm("encoder.norm_out", cin)
    out.conv("encoder.conv_out", cin, 2 * zc, 3)
    if cfg["post_quant_conv"]:
        out.conv("quant_conv", 2 * zc, 2 * zc, 1)
    return OrderedDict(out)


def gen_weights(cfg, global_seed, Lw):
    """ldm-named float32 decoder weights (name-sorted OrderedDict)."""
    lay = ldm_decoder_layout(cfg)
    return OrderedDict((k, gen_tensor(k, lay[k], global_seed, Lw)) for k in sorted(lay))


def gen_encoder_weights(cfg, global_seed, Lw):
    """ldm-named float32 encoder (+ quant_conv) weights, the same generator and seed rule
    (name-sorted OrderedDict)."""
    lay = ldm_encoder_layout(cfg)
    return OrderedDict((k, gen_tensor(k, lay[k], global_seed, Lw)) for k in sorted(lay))


# --------------------------------------------------------------------------------------------
# Name mapping (spec table)
# --------------------------------------------------------------------------------------------

_ATTN_NEW = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
_ATTN_OLD = {"norm": "group_norm", "q": "query", "k": "key", "v": "value", "proj_out": "proj_attn"}


def ldm_to_diffusers(name, num_levels, old_attention=False):
    """ldm decoder or encoder name (no prefix) -> diffusers name. The decoder's up.L is
    up_blocks.(nl-1-L); the encoder's down.i is down_blocks.i."""
    if name.startswith(("post_quant_conv.", "quant_conv.")):
        return name
    m = re.fullmatch(r"(encoder|decoder)\.(.*)", name)
    assert m, name
    part, r = m.groups()
    if re.fullmatch(r"(conv_in|conv_out)\.(weight|bias)", r):
        return name
    m = re.fullmatch(r"norm_out\.(weight|bias)", r)
    if m:
        return f"{part}.conv_norm_out." + m.group(1)
    m = re.fullmatch(r"mid\.block_([12])\.(.*)", r)
    if m:
        return f"{part}.mid_block.resnets.{int(m.group(1)) - 1}.{_resnet_inner(m.group(2))}"
    m = re.fullmatch(r"mid\.attn_1\.(norm|q|k|v|proj_out)\.(weight|bias)", r)
    if m:
        t = (_ATTN_OLD if old_attention else _ATTN_NEW)[m.group(1)]
        return f"{part}.mid_block.attentions.0.{t}.{m.group(2)}"
    if part == "decoder":
        m = re.fullmatch(r"up\.(\d+)\.block\.(\d+)\.(.*)", r)
        if m:
            i = num_levels - 1 - int(m.group(1))
            return f"decoder.up_blocks.{i}.resnets.{m.group(2)}.{_resnet_inner(m.group(3))}"
        m = re.fullmatch(r"up\.(\d+)\.upsample\.conv\.(weight|bias)", r)
        if m:
            i = num_levels - 1 - int(m.group(1))
            return f"decoder.up_blocks.{i}.upsamplers.0.conv.{m.group(2)}"
    else:
        m = re.fullmatch(r"down\.(\d+)\.block\.(\d+)\.(.*)", r)
        if m:
            return f"encoder.down_blocks.{m.group(1)}.resnets.{m.group(2)}.{_resnet_inner(m.group(3))}"
        m = re.fullmatch(r"down\.(\d+)\.downsample\.conv\.(weight|bias)", r)
        if m:
            return f"encoder.down_blocks.{m.group(1)}.downsamplers.0.conv.{m.group(2)}"
    raise KeyError(name)


def _resnet_inner(s):
    m = re.fullmatch(r"(norm1|conv1|norm2|conv2|nin_shortcut)\.(weight|bias)", s)
    assert m, s
    return ("conv_shortcut" if m.group(1) == "nin_shortcut" else m.group(1)) + "." + m.group(2)


def is_attn_linear(ldm_name):
    return re.fullmatch(r"(en|de)coder\.mid\.attn_1\.(q|k|v|proj_out)\.weight", ldm_name) is not None


def diffusers_to_ldm_map(cfg, old_attention=False, encoder=False):
    """diffusers name -> ldm name: the decoder's (+ post_quant_conv), and with encoder=True the
    encoder's (+ quant_conv) too."""
    lay = OrderedDict(ldm_decoder_layout(cfg))
    if encoder:
        lay.update(ldm_encoder_layout(cfg))
    nl = len(cfg["block_out_channels"])
    return {ldm_to_diffusers(k, nl, old_attention): k for k in lay}


def to_diffusers_state(ldm_sd, cfg, old_attention=False):
    """ldm-named dict (numpy or torch) -> diffusers-named dict; attention weights [C,C,1,1]->[C,C]."""
    nl = len(cfg["block_out_channels"])
    out = OrderedDict()
    for k, v in ldm_sd.items():
        if is_attn_linear(k):
            v = v[:, :, 0, 0]
        out[ldm_to_diffusers(k, nl, old_attention)] = v
    return out


def from_diffusers_state(d_sd, cfg, old_attention=False, encoder=False):
    """diffusers-named dict -> ldm-named dict; Linear [C,C] -> [C,C,1,1]. Unknown keys ignored
    (the encoder's too unless encoder=True)."""
    inv = diffusers_to_ldm_map(cfg, old_attention, encoder)
    out = OrderedDict()
    for k, v in d_sd.items():
        if k in inv:
            lk = inv[k]
            if is_attn_linear(lk):
                v = v[:, :, None, None]
            out[lk] = v
    return out


# --------------------------------------------------------------------------------------------
# diffusers model and taps
# --------------------------------------------------------------------------------------------

def diffusers_config(cfg):
    nl = len(cfg["block_out_channels"])
    return dict(in_channels=3, out_channels=3,
                down_block_types=("DownEncoderBlock2D",) * nl,
                up_block_types=("UpDecoderBlock2D",) * nl,
                block_out_channels=tuple(cfg["block_out_channels"]),
                layers_per_block=cfg["layers_per_block"], act_fn="silu",
                latent_channels=cfg["latent_channels"], norm_num_groups=cfg["norm_num_groups"],
                sample_size=32, scaling_factor=cfg["scaling_factor"],
                shift_factor=cfg["shift_factor"] if cfg["shift_factor"] else None,
                force_upcast=True,
                use_quant_conv=cfg["post_quant_conv"], use_post_quant_conv=cfg["post_quant_conv"])


def make_diffusers_vae(cfg, ldm_sd=None):
    """diffusers AutoencoderKL from a config (no hub). If ldm_sd is given, the parts it holds (the
    decoder + post_quant_conv when it has decoder.* names, the encoder + quant_conv when it has
    encoder.* names) are loaded from it through the name mapping, strictly: every tensor of
    those parts, and nothing else; a part it lacks keeps diffusers' seeded initialisation."""
    from diffusers import AutoencoderKL
    torch.manual_seed(0)  # the parts not loaded: unused, but deterministic
    m = AutoencoderKL(**diffusers_config(cfg))
    m.eval()
    if ldm_sd is not None:
        keys = []
        if any(k.startswith("decoder.") for k in ldm_sd):
            keys += decoder_keys(m)
        if any(k.startswith("encoder.") for k in ldm_sd):
            keys += encoder_keys(m)
        load_state(m, to_diffusers_state(ldm_sd, cfg), keys)
    return m


def decoder_keys(model):
    return [k for k in model.state_dict() if k.startswith("decoder.") or k.startswith("post_quant_conv.")]


def encoder_keys(model):
    return [k for k in model.state_dict() if k.startswith("encoder.") or k.startswith("quant_conv.")]


def load_state(model, d_sd, want):
    """Copy the tensors named `want` (diffusers names) from d_sd, requiring exactly those keys and
    the model's shapes."""
    got = sorted(d_sd)
    if sorted(want) != got:
        raise KeyError(f"key mismatch: missing {sorted(set(want) - set(got))}, "
                       f"unexpected {sorted(set(got) - set(want))}")
    sd = model.state_dict()
    with torch.no_grad():
        for k in want:
            v = torch.as_tensor(np.asarray(d_sd[k], dtype=np.float32) if not torch.is_tensor(d_sd[k])
                                else d_sd[k])
            if tuple(v.shape) != tuple(sd[k].shape):
                raise ValueError(f"{k}: shape {tuple(v.shape)} != {tuple(sd[k].shape)}")
            sd[k].copy_(v.to(sd[k].dtype))


def load_decoder_state(model, d_sd, cfg):
    """Copy every decoder tensor, requiring exactly the decoder's keys and shapes."""
    load_state(model, d_sd, decoder_keys(model))


def prepare_fp64(model):
    """model.double(), and make the attention really fp64: diffusers' VAE attention has
    upcast_softmax=True, whose `.float()` would round fp64 scores to fp32 (a no-op in fp32)."""
    model.double()
    for m in model.modules():
        if hasattr(m, "upcast_softmax"):
            m.upcast_softmax = False
    return model


def _nc_to_chw(t, h, w):
    """[B,N,C] (N = h*w row-major) -> [B,C,h,w]."""
    b, n, c = t.shape
    assert n == h * w
    return t.transpose(1, 2).reshape(b, c, h, w)


def attach_taps(model, cfg, taps):
    """Forward hooks on a diffusers AutoencoderKL that record ldm-named tensors into `taps`."""
    dec = model.decoder
    nl = len(cfg["block_out_channels"])
    hooks = []
    shape = {}

    def rec(name, fn=None):
        def hook(mod, inp, out):
            t = out if fn is None else fn(out)
            taps[name] = t.detach().clone()
        return hook

    def reg(mod, name, fn=None):
        hooks.append(mod.register_forward_hook(rec(name, fn)))

    if model.post_quant_conv is not None:
        reg(model.post_quant_conv, "post_quant_conv")
    reg(dec.conv_in, "conv_in")
    mid = dec.mid_block
    r0 = mid.resnets[0]
    reg(r0.norm1, "mid.block_1.norm1")
    reg(r0.conv1, "mid.block_1.conv1")
    reg(r0, "mid.block_1")
    att = mid.attentions[0]

    def att_pre(mod, inp):
        x = inp[0]
        shape["hw"] = (x.shape[2], x.shape[3])
    hooks.append(att.register_forward_pre_hook(att_pre))

    def chw_from_bcn(t):   # group_norm sees [B,C,N]
        h, w = shape["hw"]
        return t.reshape(t.shape[0], t.shape[1], h, w)

    def chw_from_bnc(t):
        h, w = shape["hw"]
        return _nc_to_chw(t, h, w)
    reg(att.group_norm, "mid.attn_1.norm", chw_from_bcn)
    reg(att.to_q, "mid.attn_1.q", chw_from_bnc)
    reg(att.to_k, "mid.attn_1.k", chw_from_bnc)
    reg(att.to_v, "mid.attn_1.v", chw_from_bnc)

    def out_pre(mod, inp):
        taps["mid.attn_1.attn"] = chw_from_bnc(inp[0]).detach().clone()
    hooks.append(att.to_out[0].register_forward_pre_hook(out_pre))
    reg(att, "mid.attn_1")
    reg(mid.resnets[1], "mid.block_2")
    for i, ub in enumerate(dec.up_blocks):
        L = nl - 1 - i
        for mi, rn in enumerate(ub.resnets):
            reg(rn, f"up.{L}.block.{mi}")
        if ub.upsamplers is not None:
            assert L != 0
            reg(ub.upsamplers[0], f"up.{L}.upsample")
        else:
            assert L == 0
    reg(dec.conv_act, "norm_out")
    reg(dec.conv_out, "out")
    return hooks


def tensor_order(cfg):
    nl, nres = len(cfg["block_out_channels"]), cfg["layers_per_block"] + 1
    o = ["input"] + (["post_quant_conv"] if cfg["post_quant_conv"] else [])
    o += ["conv_in", "mid.block_1.norm1", "mid.block_1.conv1", "mid.block_1", "mid.attn_1.norm",
          "mid.attn_1.q", "mid.attn_1.k", "mid.attn_1.v", "mid.attn_1.attn", "mid.attn_1",
          "mid.block_2"]
    for L in reversed(range(nl)):
        o += [f"up.{L}.block.{m}" for m in range(nres)]
        if L != 0:
            o.append(f"up.{L}.upsample")
    return o + ["norm_out", "out"]


def _run_hooked(hooks, fn):
    """fn() under no_grad, then the forward hooks removed (also when fn raises)."""
    try:
        with torch.no_grad():
            return fn()
    finally:
        for h in hooks:
            h.remove()


def run_diffusers(model, cfg, z):
    taps = {}
    out = _run_hooked(attach_taps(model, cfg, taps), lambda: model.decode(z).sample)
    taps["input"] = z.detach().clone()
    assert torch.equal(out, taps["out"])
    return taps


def attach_encoder_taps(model, cfg, taps):
    """Forward hooks on a diffusers AutoencoderKL's encoder (and quant_conv) that record the
    encoder's tensors under ldm names (encoder_tensor_order)."""
    enc = model.encoder
    hooks = []

    def reg(mod, name):
        def hook(m, inp, out):
            taps[name] = out.detach().clone()
        hooks.append(mod.register_forward_hook(hook))

    reg(enc.conv_in, "encoder.conv_in")
    for i, db in enumerate(enc.down_blocks):
        for j, rn in enumerate(db.resnets):
            reg(rn, f"encoder.down.{i}.block.{j}")
        if db.downsamplers is not None:
            reg(db.downsamplers[0], f"encoder.down.{i}.downsample")
    mid = enc.mid_block
    reg(mid.resnets[0], "encoder.mid.block_1")
    reg(mid.attentions[0], "encoder.mid.attn_1")
    reg(mid.resnets[1], "encoder.mid.block_2")
    reg(enc.conv_act, "encoder.norm_out")
    reg(enc.conv_out, "encoder.conv_out")
    if model.quant_conv is not None:
        reg(model.quant_conv, "quant_conv")
    return hooks


def encoder_tensor_order(cfg):
    nl, nres = len(cfg["block_out_channels"]), cfg["layers_per_block"]
    o = ["input", "encoder.conv_in"]
    for i in range(nl):
        o += [f"encoder.down.{i}.block.{j}" for j in range(nres)]
        if i != nl - 1:
            o.append(f"encoder.down.{i}.downsample")
    o += ["encoder.mid.block_1", "encoder.mid.attn_1", "encoder.mid.block_2", "encoder.norm_out",
          "encoder.conv_out"]
    return o + (["quant_conv"] if cfg["post_quant_conv"] else []) + ["mean", "logvar"]


def run_diffusers_encode(model, cfg, x):
    """AutoencoderKL.encode(x) with the encoder's taps; "mean" = latent_dist.mean, "logvar" =
    latent_dist.logvar (clamped to [-30, 20] as diffusers does)."""
    taps = {}
    post = _run_hooked(attach_encoder_taps(model, cfg, taps), lambda: model.encode(x).latent_dist)
    taps["input"] = x.detach().clone()
    taps["mean"] = post.mean.detach().clone()
    taps["logvar"] = post.logvar.detach().clone()
    moments = taps["quant_conv" if cfg["post_quant_conv"] else "encoder.conv_out"]
    zc = cfg["latent_channels"]
    assert torch.equal(taps["mean"], moments[:, :zc])
    assert torch.equal(taps["logvar"], moments[:, zc:].clamp(-30.0, 20.0))
    return taps


# --------------------------------------------------------------------------------------------
# Independent decoder written from the spec / CompVis ldm (ldm parameter names)
# --------------------------------------------------------------------------------------------

class ResnetBlock(nn.Module):
    def __init__(self, cin, cout, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=GN_EPS)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, cout, eps=GN_EPS)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        y = self.conv1(F.silu(self.norm1(x)))
        y = self.conv2(F.silu(self.norm2(y)))
        if hasattr(self, "nin_shortcut"):
            x = self.nin_shortcut(x)
        return x + y


class AttnBlock(nn.Module):
    def __init__(self, c, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, c, eps=GN_EPS)
        self.q = nn.Conv2d(c, c, 1)
        self.k = nn.Conv2d(c, c, 1)
        self.v = nn.Conv2d(c, c, 1)
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x):
        n = self.norm(x)
        q, k, v = self.q(n), self.k(n), self.v(n)
        b, c, h, w = q.shape
        q = q.reshape(b, c, h * w).permute(0, 2, 1)        # [B,N,C]
        k = k.reshape(b, c, h * w)                           # [B,C,N]
        s = torch.bmm(q, k) * (int(c) ** (-0.5))             # [B,Nq,Nk]
        p = torch.softmax(s, dim=2)
        v = v.reshape(b, c, h * w)
        o = torch.bmm(v, p.permute(0, 2, 1)).reshape(b, c, h, w)
        return x + self.proj_out(o)


class Upsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Mid(nn.Module):
    def __init__(self, c, g):
        super().__init__()
        self.block_1 = ResnetBlock(c, c, g)
        self.attn_1 = AttnBlock(c, g)
        self.block_2 = ResnetBlock(c, c, g)


class _Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch, g = list(cfg["block_out_channels"]), cfg["norm_num_groups"]
        nres = cfg["layers_per_block"] + 1
        self.conv_in = nn.Conv2d(cfg["latent_channels"], ch[-1], 3, padding=1)
        self.mid = _Mid(ch[-1], g)
        self.up = nn.ModuleList()
        cin = ch[-1]
        ups = [None] * len(ch)
        for L in reversed(range(len(ch))):
            m = nn.Module()
            m.block = nn.ModuleList()
            for _ in range(nres):
                m.block.append(ResnetBlock(cin, ch[L], g))
                cin = ch[L]
            if L != 0:
                m.upsample = Upsample(cin)
            ups[L] = m
        for m in ups:
            self.up.append(m)
        self.norm_out = nn.GroupNorm(g, ch[0], eps=GN_EPS)
        self.conv_out = nn.Conv2d(ch[0], 3, 3, padding=1)

    def forward(self, h):
        h = self.conv_in(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        for L in reversed(range(len(self.up))):
            for blk in self.up[L].block:
                h = blk(h)
            if L != 0:
                h = self.up[L].upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class LdmDecoder(nn.Module):
    """post_quant_conv (optional) + decoder, parameter names = ldm names."""

    def __init__(self, cfg):
        super().__init__()
        zc = cfg["latent_channels"]
        self.has_pqc = bool(cfg["post_quant_conv"])
        if self.has_pqc:
            self.post_quant_conv = nn.Conv2d(zc, zc, 1)
        self.decoder = _Decoder(cfg)

    def forward(self, z):
        if self.has_pqc:
            z = self.post_quant_conv(z)
        return self.decoder(z)


class Downsample(nn.Module):
    """ldm Downsample(with_conv=True): zero pad (0,1,0,1) (right and bottom), 3x3 conv stride 2."""

    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))


class _Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch, g = list(cfg["block_out_channels"]), cfg["norm_num_groups"]
        self.conv_in = nn.Conv2d(3, ch[0], 3, padding=1)
        self.down = nn.ModuleList()
        cin = ch[0]
        for i, c in enumerate(ch):
            m = nn.Module()
            m.block = nn.ModuleList()
            for _ in range(cfg["layers_per_block"]):
                m.block.append(ResnetBlock(cin, c, g))
                cin = c
            if i != len(ch) - 1:
                m.downsample = Downsample(cin)
            self.down.append(m)
        self.mid = _Mid(cin, g)
        self.norm_out = nn.GroupNorm(g, cin, eps=GN_EPS)
        self.conv_out = nn.Conv2d(cin, 2 * cfg["latent_channels"], 3, padding=1)

    def forward(self, x, rec):
        h = rec["encoder.conv_in"] = self.conv_in(x)
        for i, lev in enumerate(self.down):
            for j, blk in enumerate(lev.block):
                h = rec[f"encoder.down.{i}.block.{j}"] = blk(h)
            if i != len(self.down) - 1:
                h = rec[f"encoder.down.{i}.downsample"] = lev.downsample(h)
        h = rec["encoder.mid.block_1"] = self.mid.block_1(h)
        h = rec["encoder.mid.attn_1"] = self.mid.attn_1(h)
        h = rec["encoder.mid.block_2"] = self.mid.block_2(h)
        h = rec["encoder.norm_out"] = F.silu(self.norm_out(h))
        return self.conv_out(h)


class LdmEncoder(nn.Module):
    """encoder + quant_conv (optional), parameter names = ldm names; forward(x) -> dict of the
    encoder's tensors under the names of encoder_tensor_order (mean, logvar from the moments as
    ldm's DiagonalGaussianDistribution: chunk in two, logvar clamped to [-30, 20])."""

    def __init__(self, cfg):
        super().__init__()
        self.zc = cfg["latent_channels"]
        self.has_qc = bool(cfg["post_quant_conv"])
        self.encoder = _Encoder(cfg)
        if self.has_qc:
            self.quant_conv = nn.Conv2d(2 * self.zc, 2 * self.zc, 1)

    def forward(self, x):
        rec = {"input": x}
        h = rec["encoder.conv_out"] = self.encoder(x, rec)
        if self.has_qc:
            h = rec["quant_conv"] = self.quant_conv(h)
        rec["mean"] = h[:, :self.zc]
        rec["logvar"] = torch.clamp(h[:, self.zc:], -30.0, 20.0)
        return rec


def make_ldm_encoder(cfg, ldm_sd):
    m = LdmEncoder(cfg)
    sd = OrderedDict((k, torch.as_tensor(np.asarray(v))) for k, v in ldm_sd.items())
    m.load_state_dict(sd, strict=True)
    return m.eval()


def make_ldm_decoder(cfg, ldm_sd):
    m = LdmDecoder(cfg)
    sd = OrderedDict((k, torch.as_tensor(np.asarray(v))) for k, v in ldm_sd.items())
    m.load_state_dict(sd, strict=True)
    return m.eval()


def count_params(cfg, layout=ldm_decoder_layout):
    return sum(int(np.prod(s)) for s in layout(cfg).values())


def self_check():
    # generator twins
    assert fnv1a64("") == FNV_OFF and fnv1a64("a") == 0xAF63DC4C8601EC8C
    seed = fnv1a64("decoder.conv_in.weight") ^ 12345
    assert [int(t) for t in splitmix64(seed, 5)] == splitmix64_scalar(seed, 5)
    assert splitmix64_scalar(0, 1)[0] == 0xE220A8397B1DCDAF  # splitmix64 reference value
    # parameter counts of the real decoder (spec: 49,490,199 SD/SDXL, 49,545,475 SD3/FLUX)
    real = dict(latent_channels=4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                norm_num_groups=32, post_quant_conv=True)
    assert count_params(real) == 49_490_199, count_params(real)
    # encoder + quant_conv: 83,653,863 - 49,490,199 (SD VAE), 83,819,683 - 49,545,475 (FLUX ae)
    assert count_params(real, ldm_encoder_layout) == 34_163_664, count_params(real, ldm_encoder_layout)
    real.update(latent_channels=16, post_quant_conv=False)
    assert count_params(real) == 49_545_475, count_params(real)
    assert count_params(real, ldm_encoder_layout) == 34_274_208, count_params(real, ldm_encoder_layout)
    # layout == the independent module's state_dict (names, shapes, order-free)
    for c in (dict(real), dict(real, latent_channels=4, post_quant_conv=True)):
        c["norm_num_groups"] = 32
        lay = ldm_decoder_layout(c)
        sd = LdmDecoder(c).state_dict()
        assert {k: tuple(v.shape) for k, v in sd.items()} == dict(lay)
        # the mapped names/shapes == diffusers' decoder state_dict (both attention spellings)
        c.update(scaling_factor=1.0, shift_factor=0.0)
        dm = make_diffusers_vae(c).state_dict()
        want = {k: tuple(dm[k].shape) for k in dm if k.startswith(("decoder.", "post_quant_conv."))}
        got = {ldm_to_diffusers(k, 4): (s[:2] if is_attn_linear(k) else s) for k, s in lay.items()}
        assert got == want, set(got.items()) ^ set(want.items())
        old = {ldm_to_diffusers(k, 4, True) for k in lay}
        assert len(old) == len(lay) and {n for n in old if "attentions" in n} == {
            f"decoder.mid_block.attentions.0.{a}.{b}" for a in ("group_norm", "query", "key",
                                                                "value", "proj_attn")
            for b in ("weight", "bias")}
        # the encoder: layout == LdmEncoder's state_dict, and through the mapping == diffusers'
        # encoder (+ quant_conv) state_dict; the old attention names map one to one
        elay = ldm_encoder_layout(c)
        assert {k: tuple(v.shape) for k, v in LdmEncoder(c).state_dict().items()} == dict(elay)
        want = {k: tuple(dm[k].shape) for k in dm if k.startswith(("encoder.", "quant_conv."))}
        got = {ldm_to_diffusers(k, 4): (s[:2] if is_attn_linear(k) else s) for k, s in elay.items()}
        assert got == want, set(got.items()) ^ set(want.items())
        assert len({ldm_to_diffusers(k, 4, True) for k in elay}) == len(elay)
        assert not set(elay) & set(lay)
    print("vae_ref self-check ok:", json.dumps(
        {"sd_params": 49_490_199, "flux_params": 49_545_475, "sd_encoder_params": 34_163_664,
         "flux_encoder_params": 34_274_208}))


if __name__ == "__main__":
    self_check()
